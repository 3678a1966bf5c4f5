"""The larcv3 reader on the real SBND file, bad-file errors, and the CLI contract."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from lartpcnet.cli import main
from lartpcnet.data.larcv3 import Larcv3File
from lartpcnet.errors import DataError

SBND = Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"


def test_real_sbnd_file_reads_correctly():
    with Larcv3File(SBND) as f:
        assert len(f) == 5
        assert f.producers("sparse2d") == ["sbnd_cosmicseg", "sbndwire"]
        for event in range(len(f)):
            wire = f.sparse2d("sbndwire", event)
            label = f.sparse2d("sbnd_cosmicseg", event)
            assert [p.projection for p in wire] == [0, 1, 2]
            for w, lab in zip(wire, label, strict=True):
                assert w.shape == (1280, 2048)
                assert np.array_equal(w.coords, lab.coords)  # label sites are the wire sites
                assert set(np.unique(lab.values)) <= {0.0, 1.0, 2.0}
                assert (w.values > 0).all()
                assert w.coords[:, 0].max() < 1280 and w.coords[:, 1].max() < 2048
            # Wires sit centred in the 2048 columns: 1984 on planes 0/1, 1664 on the collection plane.
            assert wire[2].coords[:, 1].min() >= (2048 - 1664) // 2 - 1
            assert wire[2].coords[:, 1].max() <= (2048 + 1664) // 2
            assert wire[0].coords[:, 1].min() >= (2048 - 1984) // 2 - 1
        particles = f.particles("sbndneutrino", 0)
        assert {"pdg", "energy_init", "vtx"} <= set(particles.dtype.names)
        clusters = f.cluster2d("sbndsegmerged", 0)
        assert len(clusters) == 3 and all(len(c) > 0 for c in clusters)


def _copy(tmp_path, name="copy.h5"):
    target = tmp_path / name
    shutil.copy(SBND, target)
    return target


def test_truncated_file_is_named(tmp_path):
    target = tmp_path / "truncated.h5"
    target.write_bytes(SBND.read_bytes()[:500_000])
    with pytest.raises(DataError, match=r"truncated\.h5: corrupt or truncated"):
        from lartpcnet.data.info import describe

        describe(target)


def test_nan_value_names_event_and_field(tmp_path):
    target = _copy(tmp_path)
    with h5py.File(target, "r+") as f:
        voxels = f["Data/sparse2d_sbndwire_group/voxels"]
        extents = f["Data/sparse2d_sbndwire_group/voxel_extents"][:]
        row = voxels[int(extents[6]["first"])]  # first pixel of event 2, plane 0
        row["value"] = np.nan
        voxels[int(extents[6]["first"])] = row
    with Larcv3File(target) as f:
        f.sparse2d("sbndwire", 1)  # other events still read
        with pytest.raises(DataError, match=r"copy.h5: event 2: field '/Data/sparse2d_sbndwire_group/voxels'.*NaN"):
            f.sparse2d("sbndwire", 2)


def test_voxel_id_out_of_range_is_named(tmp_path):
    target = _copy(tmp_path)
    with h5py.File(target, "r+") as f:
        voxels = f["Data/sparse2d_sbndwire_group/voxels"]
        row = voxels[0]
        row["id"] = 2048 * 1280 + 5
        voxels[0] = row
    with Larcv3File(target) as f, pytest.raises(DataError, match=r"event 0.*outside the image"):
        f.sparse2d("sbndwire", 0)


def test_missing_product_and_event_out_of_range(tmp_path):
    with Larcv3File(SBND) as f:
        with pytest.raises(DataError, match="no product 'sparse3d_x'"):
            f.sparse3d("x", 0)
        with pytest.raises(DataError, match="event 7: event index out of range"):
            f.sparse2d("sbndwire", 7)


def test_info_json_is_one_object(capsys):
    assert main(["info", str(SBND), "--json"]) == 0
    out = capsys.readouterr().out
    desc = json.loads(out)  # exactly one JSON document
    assert out.count("\n") == 1
    assert desc["format"] == "larcv3" and desc["events"] == 5
    assert "sparse2d_sbndwire" in desc["products"]
    with Larcv3File(SBND) as f:
        for event, entry in enumerate(desc["per_event"]):
            assert len(entry["planes"]) == 3
            for plane, truth in zip(entry["planes"], f.sparse2d("sbnd_cosmicseg", event), strict=True):
                assert plane["shape"] == [1280, 2048]
                assert plane["active"] == len(truth.values)
                assert sum(plane["labels"].values()) == plane["active"]
                assert plane["labels"].get("2", 0) == int((truth.values == 2).sum())


def test_wrong_label_code_is_an_error(tmp_path, capsys):
    target = _copy(tmp_path, "badlabel.h5")
    with h5py.File(target, "r+") as f:
        voxels = f["Data/sparse2d_sbnd_cosmicseg_group/voxels"]
        row = voxels[10]
        row["value"] = 1.5
        voxels[10] = row
    assert main(["info", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "badlabel.h5: event 0: field 'sparse2d_sbnd_cosmicseg/voxels'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content,message", [(None, "no such file"), (b"not hdf5 at all", "unrecognised format")])
def test_cli_errors_are_one_line(tmp_path, capsys, content, message):
    target = tmp_path / "input.h5"
    if content is not None:
        target.write_bytes(content)
    assert main(["info", str(target), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and captured.err.count("\n") == 1


def test_display_writes_an_image(tmp_path, capsys):
    out = tmp_path / "event3.png"
    assert main(["display", str(SBND), "--event", "3", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["display", str(SBND), "--event", "9", "--out", str(out)]) == 2
    assert "event 9: event index out of range" in capsys.readouterr().err
