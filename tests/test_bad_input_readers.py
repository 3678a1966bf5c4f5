"""Every reader refuses bad input with one line naming the file, event and field; the larcv3 round
trip keeps every label; readers say which truth labels their events carry.

The bad files are made in tests/badfiles.py (one damage per case, with the words its error holds).
"""

import json
import shutil

import h5py
import numpy as np
import pytest

import lartpcnet.data as data
from lartpcnet.cli import main
from lartpcnet.data.event import LABEL_FIELDS
from lartpcnet.data.h5format import EventFile, write_events
from lartpcnet.data.larcv3 import Larcv3Events, write_larcv3
from lartpcnet.errors import DataError
from tests import badfiles
from tests.badfiles import CASES, LARCV2, SBND, build, make_events


def read_all(path) -> None:
    """Opens ``path`` and touches every image and table of every event."""
    with data.open(path) as reader:
        for i in range(len(reader)):
            event = reader[i]
            for image in [*event.planes, *([event.voxels] if event.voxels is not None else [])]:
                for field in ("coords", "values", *LABEL_FIELDS):
                    np.asarray(getattr(image, field)).sum()
            for table in (event.particles, event.interactions):
                if table is not None:
                    table.tobytes()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_one_line_error(case, tmp_path, capsys):
    path = build(case, tmp_path)
    with pytest.raises(DataError) as caught:
        read_all(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for words in case.expect:
        assert words in message, (words, message)
    # the command line shows the same line, alone, without a traceback
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"lartpcnet info: error: {message}\n"


def _sorted(image):
    order = np.lexsort(image.coords.T[::-1])
    return {field: getattr(image, field)[order] for field in ("coords", "values", *LABEL_FIELDS)}


def assert_same_sites(a, b):
    assert a.shape == b.shape
    left, right = _sorted(a), _sorted(b)
    for field, values in left.items():
        assert np.array_equal(values, right[field]), field


@pytest.mark.parametrize("sample", ["particle_bomb", "pilarnet3d"])
def test_larcv3_round_trip_keeps_every_label(sample, tmp_path, capsys):
    sim, larcv3, back = tmp_path / "x.h5", tmp_path / "y.h5", tmp_path / "z.h5"
    assert main(["simulate", "--sample", sample, "--events", "3", "--seed", "1", "--out", str(sim),
                 "--no-progress"]) == 0
    assert main(["convert", str(sim), "--to", "larcv3", "--out", str(larcv3)]) == 0
    assert main(["convert", str(larcv3), "--to", "lartpcnet", "--out", str(back)]) == 0
    capsys.readouterr()
    with data.open(sim) as original, data.open(larcv3) as converted, data.open(back) as returned:
        assert set(converted.truth_labels) == set(returned.truth_labels) == set(original.truth_labels)
        assert {"semantic", "instance", "interaction"} <= set(original.truth_labels)
        for i in range(len(original)):
            a, b, c = original[i], converted[i], returned[i]
            images = [(p, q, r) for p, q, r in zip(a.planes, b.planes, c.planes, strict=True)]
            if a.voxels is not None:
                images.append((a.voxels, b.voxels, c.voxels))
            assert images
            for p, q, r in images:
                assert (p.semantic >= 0).any() and (p.instance >= 0).any()  # something to keep
                assert_same_sites(p, q)
                assert_same_sites(p, r)


def test_round_trip_keeps_origin_and_hip(tmp_path):
    events = make_events()
    events[0].planes[1].semantic[:5] = 0  # HIP, which larcv/SPINE codes merge into track
    write_larcv3(tmp_path / "l3.h5", events)
    with data.open(tmp_path / "l3.h5") as f:
        assert f.label_kind == "semantic" and f.truth_labels == LABEL_FIELDS
        for original, event in zip(events, f, strict=True):
            for a, b in zip([*original.planes, original.voxels], [*event.planes, event.voxels], strict=True):
                assert_same_sites(a, b)
    with h5py.File(tmp_path / "l3.h5") as f:  # larcv/SPINE tools still find their codes
        assert "sparse2d_wire_segment_group" in f["Data"] and "sparse3d_wire_cosmicseg_group" in f["Data"]


def test_spine_codes_alone_still_read(tmp_path):
    path = badfiles.good_larcv3(tmp_path / "l3.h5")
    with h5py.File(path, "r+") as f:
        del f["Data/sparse2d_wire_semantic_group"]
    events = make_events()
    with data.open(path) as f:
        assert f.label_kind == "spine"
        event = f[0]
    for a, b in zip(events[0].planes, event.planes, strict=True):
        want = np.array([-1, 1, 1, 2, 3, 4], np.int8)[_sorted(a)["semantic"] + 1]  # HIP reads as MIP
        assert np.array_equal(_sorted(b)["semantic"], want)


def test_real_sbnd_file_reads_as_before():
    with data.open(SBND) as f:
        assert isinstance(f, Larcv3Events)
        assert (f.image, f.labels, f.label_kind) == ("sbndwire", "sbnd_cosmicseg", "origin")
        assert f.truth_labels == ("origin",)
        event = f[0]
        with h5py.File(SBND) as h5:
            n = int(h5["Data/sparse2d_sbndwire_group/voxel_extents"][0]["N"])
        assert len(event.planes[0]) == n
        assert set(np.unique(event.planes[0].origin)) == {0, 1, 2}
        assert (event.planes[0].semantic == -1).all()


def test_truth_labels_without_reading_events(tmp_path, capsys):
    path = badfiles.good_lartpcnet(tmp_path / "good.h5")
    with data.open(path) as f:
        assert f.truth_labels == LABEL_FIELDS
    with data.open(LARCV2) as f:
        assert f.truth_labels == ()
    # a larcv2 file converted to lartpcnet carries no truth, and says so
    assert main(["convert", str(LARCV2), "--to", "lartpcnet", "--out", str(tmp_path / "from2.h5")]) == 0
    with data.open(tmp_path / "from2.h5") as f:
        assert f.truth_labels == ()
    # a file from before the truth_labels attribute: the first rows tell
    with h5py.File(tmp_path / "from2.h5", "r+") as f:
        del f.attrs["truth_labels"]
    shutil.copy(path, tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5", "r+") as f:
        del f.attrs["truth_labels"]
    with data.open(tmp_path / "from2.h5") as unlabelled, data.open(tmp_path / "old.h5") as labelled:
        assert unlabelled.truth_labels == () and labelled.truth_labels == LABEL_FIELDS
    capsys.readouterr()
    assert main(["info", str(tmp_path / "from2.h5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["truth_labels"] == []


@pytest.mark.parametrize("kind", ["lartpcnet", "larcv3", "larcv2"])
def test_an_event_without_sites_reads_as_empty_images(kind, tmp_path):
    path = tmp_path / f"empty.{'root' if kind == 'larcv2' else 'h5'}"
    if kind == "lartpcnet":
        badfiles.good_lartpcnet(path, empty=1)
    elif kind == "larcv3":
        badfiles.good_larcv3(path, empty=1)
    else:
        badfiles.good_larcv2(path)  # event 0's image 1 is all zeros
    with data.open(path) as f:
        event = f[0 if kind == "larcv2" else 1]
        images = [event.planes[1]] if kind == "larcv2" else [*event.planes, event.voxels]
        for image in images:
            assert len(image) == 0 and image.coords.shape == (0, len(image.shape))
            assert all(len(getattr(image, field)) == 0 for field in LABEL_FIELDS)
        assert len(f[0 if kind != "larcv2" else 1].planes[0]) > 0


def test_integral_float_coordinates_are_accepted(tmp_path):
    path = badfiles.good_lartpcnet(tmp_path / "f.h5")
    with h5py.File(path) as f:
        coords = f["planes/0/coords"][:]
    badfiles.replace(path, "planes/0/coords", coords.astype(np.float64))
    with EventFile(path) as f:
        assert np.array_equal(f[1].planes[0].coords, make_events()[1].planes[0].coords)
        assert f[1].planes[0].coords.dtype == np.int32


@pytest.mark.parametrize("writer", ["lartpcnet", "larcv3"])
def test_writers_refuse_duplicate_sites(writer, tmp_path):
    events = make_events()
    plane = events[2].planes[1]
    plane.coords[7] = plane.coords[3]
    out = tmp_path / "dup.h5"
    with pytest.raises(DataError, match=r"dup\.h5: event 2: .*duplicate coordinates: site .* listed 2 times"):
        if writer == "lartpcnet":
            write_events(out, events)
        else:
            write_larcv3(out, events)
    assert not out.exists()


def test_writer_refuses_a_second_layout_as_a_data_error(tmp_path):
    events = make_events()
    events[1].voxels = None
    with pytest.raises(DataError, match=r"event 1: has 3 planes and no voxels, the events before it 3 planes and "
                                        r"voxels"):
        write_events(tmp_path / "mixed.h5", events)


def test_larcv3_files_are_deterministic_and_compressed(tmp_path):
    # the same events give the same bytes: no stray memory in the structs' padding
    for name in ("a.h5", "b.h5"):
        write_larcv3(tmp_path / name, make_events())
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    with h5py.File(tmp_path / "a.h5") as f:  # every table gzip'd, as in the SBND file: damage fails its checksum
        tables = []
        f.visititems(lambda name, obj: tables.append(obj) if isinstance(obj, h5py.Dataset) else None)
        assert tables and all(t.compression == "gzip" for t in tables)


def test_lartpcnet_files_have_checksummed_metadata(tmp_path):
    # superblock 2+ (HDF5 1.10 format): object headers and chunk indexes carry checksums, so a
    # damaged one is an error instead of a chunk that silently reads as zeros
    path = badfiles.good_lartpcnet(tmp_path / "good.h5")
    with h5py.File(path) as f:
        assert f.id.get_create_plist().get_version()[0] >= 2
