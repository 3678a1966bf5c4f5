"""larcv2 ROOT reading (through uproot) on a fixture written in larcv2's class layout.

tests/fixtures/larcv2_events.root comes from scripts/make_larcv2_fixture.py (needs CERN ROOT),
which also saved the dense images and particle columns it wrote into larcv2_events.npz.
"""

from pathlib import Path

import numpy as np
import pytest

import lartpcnet.data as data
from lartpcnet.cli import main
from lartpcnet.data.larcv2 import Larcv2Events
from lartpcnet.errors import DataError

FIXTURE = Path(__file__).parent / "fixtures" / "larcv2_events.root"
EXPECTED = np.load(FIXTURE.with_suffix(".npz"))


def test_images_decode_column_major_into_row_col():
    with data.open(FIXTURE) as f:
        assert isinstance(f, Larcv2Events) and len(f) == 3
        for i in range(3):
            event = f[i]
            assert len(event.planes) == 3
            for k, plane in enumerate(event.planes):
                dense = np.zeros(plane.shape, np.float32)
                dense[plane.coords[:, 0], plane.coords[:, 1]] = plane.values
                assert np.array_equal(dense, EXPECTED[f"event{i}_plane{k}"])
                assert (plane.values != 0).all()


def test_particle_table():
    with data.open(FIXTURE) as f:
        table = f[1].particles
    assert np.array_equal(table["pdg"], EXPECTED["event1_pdg"])
    np.testing.assert_allclose(table["energy_init"], EXPECTED["event1_energy_init"], rtol=1e-6)


def test_info_and_display(tmp_path, capsys):
    import json

    assert main(["info", str(FIXTURE), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["format"] == "larcv2" and desc["events"] == 3
    assert desc["products"] == ["image2d_wire", "particle_mctruth"]
    assert desc["per_event"][0]["planes"][0]["shape"] == [96, 128]
    assert main(["display", str(FIXTURE), "--out", str(tmp_path / "e.png")]) == 0


def test_truncated_root_file_is_named(tmp_path):
    bad = tmp_path / "cut.root"
    bad.write_bytes(FIXTURE.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"cut\.root"):
        with data.open(bad) as f:
            f[0]
