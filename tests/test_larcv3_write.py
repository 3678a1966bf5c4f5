"""larcv3 writing: our events -> larcv3 HDF5 -> read back, in the real file's layout."""

import h5py
import numpy as np

import lartpcnet.data as data
from lartpcnet.cli import main
from lartpcnet.data.labels import HIP, MIP
from lartpcnet.data.larcv3 import write_larcv3
from lartpcnet.sim.samples import generate_event, load_sample
from tests.test_larcv3_and_cli import SBND


def test_planes_round_trip_with_origin_and_semantic_labels(tmp_path):
    events = [generate_event(load_sample("sbnd_cosmic"), 6, i) for i in range(2)]
    path = tmp_path / "out.h5"
    assert write_larcv3(path, events) == 2
    with data.open(path) as f:
        assert f.image == "wire" and len(f) == 2
        for original, event in zip(events, f, strict=True):
            for a, b in zip(original.planes, event.planes, strict=True):
                order = np.lexsort((b.coords[:, 1], b.coords[:, 0]))
                ref = np.lexsort((a.coords[:, 1], a.coords[:, 0]))
                assert np.array_equal(a.coords[ref], b.coords[order])
                assert np.array_equal(a.values[ref], b.values[order])
                assert np.array_equal(a.origin[ref], b.origin[order])
    with h5py.File(path) as ours, h5py.File(SBND) as real:  # same compound layouts as the experiment's file
        for table in ("extents", "image_meta", "voxel_extents", "voxels"):
            theirs = real[f"Data/sparse2d_sbndwire_group/{table}"].dtype
            assert ours[f"Data/sparse2d_wire_group/{table}"].dtype == theirs
        assert ours["Events/event_id"].dtype == real["Events/event_id"].dtype


def test_voxels_round_trip_with_semantic(tmp_path):
    events = [generate_event(load_sample("pilarnet3d"), 3, i) for i in range(2)]
    write_larcv3(tmp_path / "v.h5", events)
    with data.open(tmp_path / "v.h5") as f:
        for original, event in zip(events, f, strict=True):
            a, b = original.voxels, event.voxels
            assert np.array_equal(a.coords, b.coords) and np.array_equal(a.values, b.values)
            expected = np.where(a.semantic == HIP, MIP, a.semantic)  # larcv has one track class
            assert np.array_equal(expected, b.semantic)


def test_convert_command(tmp_path, capsys):
    src = tmp_path / "sim.h5"
    assert main(["simulate", "--sample", "1e1p", "--events", "2", "--out", str(src), "--no-progress"]) == 0
    assert main(["convert", str(src), "--to", "larcv3", "--out", str(tmp_path / "l3.h5"), "--json"]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "l3.h5"), "--json"]) == 0
    assert '"format": "larcv3"' in capsys.readouterr().out
