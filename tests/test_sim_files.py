"""Own HDF5 format round trips, bad files, reproducibility, resumable simulation, sample configs, CLI."""

import json

import h5py
import numpy as np
import pytest

import lartpcnet.data as data
from lartpcnet.cli import main
from lartpcnet.data.h5format import EventFile, write_events
from lartpcnet.errors import DataError
from lartpcnet.sim import run as sim_run
from lartpcnet.sim.samples import generate_event, load_sample, sample_names


@pytest.fixture(scope="module")
def events():
    config = load_sample("sbnd_cosmic")
    return [generate_event(config, 4, i) for i in range(3)]


@pytest.fixture
def event_file(tmp_path, events):
    path = tmp_path / "events.h5"
    write_events(path, events, {"sample": "sbnd_cosmic", "geometry": "sbnd", "seed": 4})
    return path


def assert_events_equal(a, b):
    assert len(a.planes) == len(b.planes)
    for p, q in zip(a.planes, b.planes, strict=True):
        for field in ("coords", "values", "semantic", "instance", "interaction", "origin"):
            assert np.array_equal(getattr(p, field), getattr(q, field)), field
        assert tuple(p.shape) == tuple(q.shape)
    assert np.array_equal(a.particles, b.particles)
    assert np.array_equal(a.interactions, b.interactions)


def test_round_trip(event_file, events):
    with data.open(event_file) as f:
        assert isinstance(f, EventFile) and len(f) == 3
        for i, event in enumerate(events):
            assert_events_equal(f[i], event)
            assert f[i].meta["index"] == i and f[i].meta["kind"] == event.meta["kind"]


def test_voxel_round_trip(tmp_path):
    config = load_sample("pilarnet3d")
    original = [generate_event(config, 1, i) for i in range(2)]
    write_events(tmp_path / "v.h5", original)
    with data.open(tmp_path / "v.h5") as f:
        for i in range(2):
            assert np.array_equal(f[i].voxels.coords, original[i].voxels.coords)
            assert np.array_equal(f[i].voxels.values, original[i].voxels.values)


def test_same_seed_same_event_bit_for_bit():
    config = load_sample("particle_bomb")
    assert_events_equal(generate_event(config, 9, 5), generate_event(config, 9, 5))
    other = generate_event(config, 10, 5)
    assert not np.array_equal(other.planes[0].values[:10], generate_event(config, 9, 5).planes[0].values[:10])


def test_simulate_same_bytes_for_any_workers_and_resumes_after_a_crash(tmp_path, monkeypatch):
    args = dict(sample="1e1p", events=9, seed=2, progress=False)
    sim_run.simulate(out=tmp_path / "a.h5", workers=2, part_size=4, **args)
    # a job that dies at event 6: parts 0 (events 0-3) is kept, the file does not exist
    real = sim_run._one

    def dies_at_six(index):
        if index == 6:
            raise RuntimeError("killed")
        return real(index)

    monkeypatch.setattr(sim_run, "_one", dies_at_six)
    with pytest.raises(RuntimeError, match="killed"):
        sim_run.simulate(out=tmp_path / "b.h5", workers=1, part_size=4, **args)
    assert not (tmp_path / "b.h5").exists()
    assert (tmp_path / "b.h5.parts" / "part-000000000-000000004.h5").exists()
    monkeypatch.setattr(sim_run, "_one", real)
    summary = sim_run.simulate(out=tmp_path / "b.h5", workers=1, part_size=4, **args)
    assert summary["resumed_events"] == 4 and summary["generated"] == 5
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    assert not (tmp_path / "b.h5.parts").exists()


def test_resume_refuses_parts_of_another_job(tmp_path):
    parts = tmp_path / "c.h5.parts"
    parts.mkdir()
    (parts / "job.json").write_text(json.dumps({"sample": "other"}))
    (parts / "part-000000000-000000001.h5").write_bytes(b"finished work of that job")
    with pytest.raises(DataError, match=r"different job.*to start over, remove"):
        sim_run.simulate("1e1p", 2, 0, tmp_path / "c.h5", progress=False)
    assert (parts / "part-000000000-000000001.h5").exists()  # nothing of it lost


def test_a_job_that_failed_before_its_first_part_does_not_block_the_corrected_one(tmp_path):
    parts = tmp_path / "d.h5.parts"
    parts.mkdir()
    (parts / "job.json").write_text(json.dumps({"sample": "the failed run's"}))  # and no part
    summary = sim_run.simulate("1e1p", 2, 0, tmp_path / "d.h5", progress=False)
    assert summary["events"] == 2 and not parts.exists()


def test_truncated_file_is_named(tmp_path, event_file):
    bad = tmp_path / "cut.h5"
    bad.write_bytes(event_file.read_bytes()[:20_000])
    with pytest.raises(DataError, match=r"cut\.h5: corrupt or truncated"):
        data.open(bad)


def test_wrong_schema_version_is_named(tmp_path, event_file):
    with h5py.File(event_file, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(DataError, match="field 'schema_version': schema version 99"):
        data.open(event_file)


def _edit(path, dataset, index, value):
    with h5py.File(path, "r+") as f:
        ds = f[dataset]
        ds[index] = value


def test_nan_values_name_event_and_field(event_file):
    with EventFile(event_file) as f:
        first_of_event_1 = int(f._offsets["planes/1"][1])
    _edit(event_file, "planes/1/values", first_of_event_1, np.nan)
    with data.open(event_file) as f:
        f[0]  # other events still read
        with pytest.raises(DataError, match=r"event 1: field 'planes/1/values': NaN"):
            f[1]


def test_bad_coordinates_and_labels_are_named(event_file):
    _edit(event_file, "planes/0/coords", 0, [5000, 1])
    _edit(event_file, "planes/2/semantic", 3, 9)
    with data.open(event_file) as f, pytest.raises(DataError, match="event 0: field 'planes/0/coords'"):
        f[0]
    _edit(event_file, "planes/0/coords", 0, [1, 1])
    with data.open(event_file) as f, pytest.raises(DataError, match="field 'planes/2/semantic': semantic codes"):
        f[0]


def test_inconsistent_offsets_are_named(event_file):
    with h5py.File(event_file, "r+") as f:
        f.attrs["events"] = 5
    with pytest.raises(DataError, match="field 'planes/0/offsets'"):
        data.open(event_file)


def test_every_sample_loads_and_generates():
    assert {"particle_bomb", "mpv", "1e1p", "1e1p_le", "1mu1p_le", "pilarnet3d", "sbnd_cosmic",
            "uboone_nue_cosmics", "michel"} <= set(sample_names())
    for name in sample_names():
        config = load_sample(name)
        event = generate_event(config, 0, 0)
        if "planes" in config.outputs:
            assert len(event.planes) == 3 and sum(len(p) for p in event.planes) > 0
        if "voxels" in config.outputs:
            assert event.voxels is not None and len(event.voxels) > 0


def test_bad_sample_config_names_the_field(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: x\ndescription: y\ngeometry: microboone\noutputs: [planes]\n"
                    "bomb:\n  - fraction: 1.0\n    multiplicity: [1, 2]\n"
                    "    particles: {kaon: {max: 1, kinetic: [1, 2]}}\n")
    with pytest.raises(DataError, match=r"mine\.yaml: field 'bomb\.0'.*unknown particles"):
        load_sample(str(path))
    with pytest.raises(ValueError, match="unknown sample 'nope'"):
        load_sample("nope")


def test_cli_simulate_info_display(tmp_path, capsys):
    out = tmp_path / "sim.h5"
    assert main(["simulate", "--sample", "michel", "--events", "3", "--seed", "1", "--out", str(out),
                 "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 3 and out.exists()
    assert main(["info", str(out), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["format"] == "lartpcnet" and desc["events"] == 3 and desc["sample"] == "michel"
    assert all(e["voxels"] > 0 and "4" in e["voxel_labels"] for e in desc["per_event"])  # Michel voxels
    png = tmp_path / "d.png"
    assert main(["display", str(out), "--event", "2", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["simulate", "--sample", "nope", "--events", "1", "--out", str(out)]) == 2
    assert "unknown sample" in capsys.readouterr().err


def test_real_sbnd_file_through_open():
    from pathlib import Path

    sbnd = Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
    with data.open(sbnd) as f:
        event = f[2]
        assert len(event.planes) == 3
        assert set(np.unique(event.planes[0].origin)) <= {0, 1, 2}

