"""lartpcnet merge: the outputs of predict --shard K/N put back together into the file of an
unsharded predict, and every way shards can fail to be one job's refused in one line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import tests.test_maskrcnn_cli as maskrcnn_cli
from lartpcnet import checkpoint, predictions, runner
from lartpcnet.cli import main
from lartpcnet.parts import merge_tables, take_entries
from tests.conftest import simulate
from tests.test_reliability import one_line_error

ROOT = Path(__file__).resolve().parents[1]
smaskrcnn = maskrcnn_cli.tiny  # the tiny sMask-RCNN checkpoint and 3 events: per-event detection tables


def predict(model, events, out, *extra) -> Path:
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(out), "--no-progress",
                 *extra]) == 0
    return out


def merge(out, *shards, extra=()) -> int:
    return main(["merge", str(out), *map(str, shards), "--no-progress", *extra])


def contents(path) -> tuple[dict, dict]:
    """Every dataset (name -> array) and attribute of an HDF5 file."""
    datasets = {}

    def take(name: str, obj) -> None:  # (visititems stops at the first callback that returns a value)
        if isinstance(obj, h5py.Dataset):
            datasets[name] = obj[()]

    with h5py.File(path) as f:
        f.visititems(take)
        return datasets, dict(f.attrs)


def assert_same_file(a, b) -> None:
    (tables_a, attrs_a), (tables_b, attrs_b) = contents(a), contents(b)
    assert list(tables_a) == list(tables_b) and {"events/index", "sites/offsets", "sites/scores"} <= set(tables_a)
    for name, values in tables_a.items():
        assert values.dtype == tables_b[name].dtype and np.array_equal(values, tables_b[name]), name
    assert attrs_a == attrs_b
    assert Path(a).read_bytes() == Path(b).read_bytes()  # the same content, even the same bytes


@pytest.fixture(scope="module")
def runs(trained, tmp_path_factory):
    """An unsharded predict of the six events, its three shards of 3, and shard 0 of 2."""
    model, events = trained
    folder = tmp_path_factory.mktemp("shards")
    whole = predict(model, events, folder / "whole.h5")
    thirds = [predict(model, events, folder / f"s{k}of3.h5", "--shard", f"{k}/3") for k in range(3)]
    return whole, thirds, predict(model, events, folder / "s0of2.h5", "--shard", "0/2")


def test_three_shards_merge_into_the_file_of_an_unsharded_predict(trained, runs, tmp_path, capsys):
    _, events = trained
    whole, thirds, _ = runs
    out = tmp_path / "merged.h5"
    assert merge(out, thirds[2], thirds[0], thirds[1], extra=["--json"]) == 0  # in any order
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 6 and summary["shards"] == [str(thirds[2]), str(thirds[0]), str(thirds[1])]
    assert_same_file(out, whole)
    _, job = predictions.header(out)
    assert job["shard"] is None and job["input_events"] == 6 and job["input"]["path"] == str(events.resolve())
    assert predictions.header(thirds[1])[1]["shard"] == "1/3"

    # the project's readers: predict's per-event outputs, one event's predictions, the display
    assert [event for event, _ in predictions.outputs(out)] == list(range(6))
    for event in range(6):
        got, want = predictions.read(out, event), predictions.read(whole, event)
        assert got.keys() == want.keys()
        for key in ("coords", "label", "scores", "two_class_label", "two_class_scores"):
            assert np.array_equal(got[key], want[key]), key
    assert main(["display", str(events), "--event", "4", "--predictions", str(out), "--out",
                 str(tmp_path / "e4.png")]) == 0
    assert (tmp_path / "e4.png").read_bytes()[:4] == b"\x89PNG"

    # the output: never silently replaced, never one of the shards
    capsys.readouterr()
    assert merge(out, *thirds) == 2
    one_line_error(capsys, "merged.h5 exists; add --overwrite")
    assert merge(out, *thirds, extra=["--overwrite"]) == 0
    before = thirds[0].read_bytes()
    capsys.readouterr()
    assert merge(thirds[0], *thirds, extra=["--overwrite"]) == 2
    one_line_error(capsys, "s0of3.h5 is the input file")
    assert thirds[0].read_bytes() == before


def test_a_missing_shard_is_refused_naming_its_events(runs, tmp_path, capsys):
    _, thirds, _ = runs
    assert merge(tmp_path / "m.h5", thirds[0], thirds[2]) == 2
    one_line_error(capsys, "the shards miss events 1, 4 of the input's 6 events: shard 1/3 is not among them")
    assert not (tmp_path / "m.h5").exists()


def test_overlapping_shards_are_refused_naming_both_files_and_the_events(runs, tmp_path, capsys):
    whole, thirds, half = runs
    assert merge(tmp_path / "m.h5", thirds[0], thirds[1], thirds[2], thirds[1]) == 2  # a shard twice
    one_line_error(capsys, f"{thirds[1]} and {thirds[1]} both hold events 1, 4: each event must be in one shard")
    assert merge(tmp_path / "m.h5", *thirds, half) == 2  # shards of 3 and of 2
    one_line_error(capsys, f"{thirds[0]} and {half} both hold event 0:")
    assert merge(tmp_path / "m.h5", whole, thirds[2]) == 2
    one_line_error(capsys, f"{whole} and {thirds[2]} both hold events 2, 5")
    assert not (tmp_path / "m.h5").exists()


def test_shards_of_different_n_that_hold_every_event_once_merge_and_empty_shards_add_nothing(trained, runs, tmp_path):
    model, events = trained
    whole, _, half = runs
    quarters = [predict(model, events, tmp_path / f"s{k}of4.h5", "--shard", f"{k}/4") for k in (1, 3)]
    empty = predict(model, events, tmp_path / "s7of9.h5", "--shard", "7/9")  # no event 7 among 6
    assert len(contents(empty)[0]["events/index"]) == 0
    assert merge(tmp_path / "m.h5", quarters[1], empty, half, quarters[0]) == 0
    assert_same_file(tmp_path / "m.h5", whole)


def test_shards_of_another_model_input_or_settings_are_refused(trained, runs, tmp_path, capsys):
    model, events = trained
    _, thirds, _ = runs
    state = checkpoint.load_checkpoint(model)
    name = next(iter(state["model"]))
    state["model"][name] = state["model"][name] + 1e-3
    other_model = tmp_path / "other.pt"
    checkpoint.save_checkpoint(other_model, state)
    shard = predict(other_model, events, tmp_path / "model.h5", "--shard", "1/3")
    capsys.readouterr()
    assert merge(tmp_path / "m.h5", thirds[0], shard, thirds[2]) == 2
    one_line_error(capsys, f"{thirds[0]} and {shard} are not shards of one job: their model (weights sha256) differs",
                   checkpoint.sha256(other_model)[:20])

    other_input = simulate(tmp_path / "other.h5", events=6, seed=10)
    shard = predict(model, other_input, tmp_path / "input.h5", "--shard", "1/3")
    capsys.readouterr()
    assert merge(tmp_path / "m.h5", thirds[0], shard, thirds[2]) == 2
    one_line_error(capsys, f"{thirds[0]} and {shard} are not shards of one job: their input.")

    shard = predict(model, events, tmp_path / "tta.h5", "--shard", "1/3", "--tta")
    capsys.readouterr()
    assert merge(tmp_path / "m.h5", thirds[0], shard, thirds[2]) == 2
    one_line_error(capsys, "their settings.tta differs (False and True)")
    assert not (tmp_path / "m.h5").exists()

    # the same input read from a copy elsewhere (as a grid job reads its own) is the same input
    copy = tmp_path / "copy" / events.name
    copy.parent.mkdir()
    shutil.copy2(events, copy)
    shard = predict(model, copy, tmp_path / "copy.h5", "--shard", "1/3")
    assert merge(tmp_path / "m.h5", thirds[0], shard, thirds[2]) == 0
    assert np.array_equal(contents(tmp_path / "m.h5")[0]["sites/scores"], contents(runs[0])[0]["sites/scores"])


def test_an_unfinished_or_old_shard_is_named(runs, tmp_path, capsys):
    _, thirds, _ = runs
    (tmp_path / "s1.h5.parts").mkdir()
    assert merge(tmp_path / "m.h5", thirds[0], tmp_path / "s1.h5", thirds[2]) == 2
    one_line_error(capsys, "s1.h5: is not finished (its parts are in", "rerun its lartpcnet predict, which resumes")
    assert merge(tmp_path / "m.h5", thirds[0], tmp_path / "s9.h5") == 2
    one_line_error(capsys, "s9.h5: no such file")
    old = shutil.copy(thirds[1], tmp_path / "old.h5")
    with h5py.File(old, "a") as f:
        del f.attrs["job"]
    assert merge(tmp_path / "m.h5", thirds[0], old, thirds[2]) == 2
    one_line_error(capsys, "old.h5: field 'job': records no job (written by an older lartpcnet)")
    with h5py.File(old, "a") as f:
        f.attrs["job"] = json.dumps({"shard": "1/3"})
    assert merge(tmp_path / "m.h5", thirds[0], old, thirds[2]) == 2
    one_line_error(capsys, "old.h5: field 'job': holds a damaged job record (input, input_events, model")
    assert not (tmp_path / "m.h5").exists()


def test_taking_entries_keeps_each_entrys_rows_of_every_group():
    tables = {"events/index": np.array([5, 2, 9]), "sites/offsets": np.array([0, 2, 2, 5]),
              "sites/label": np.arange(5), "boxes/offsets": np.array([0, 1, 3, 4]), "boxes/score": np.arange(4) * 10}
    taken = take_entries(tables, [1, 2, 0])
    assert taken["events/index"].tolist() == [2, 9, 5]
    assert taken["sites/offsets"].tolist() == [0, 0, 3, 5] and taken["sites/label"].tolist() == [2, 3, 4, 0, 1]
    assert taken["boxes/offsets"].tolist() == [0, 2, 3, 4] and taken["boxes/score"].tolist() == [10, 20, 30, 0]
    back = merge_tables([take_entries(tables, [0]), take_entries(tables, [1, 2])])
    assert all(np.array_equal(back[name], tables[name]) for name in tables)


def test_instance_shards_merge_with_their_per_event_detections(smaskrcnn, tmp_path):
    model, events = smaskrcnn
    whole = predict(model, events, tmp_path / "whole.h5")
    halves = [predict(model, events, tmp_path / f"s{k}.h5", "--shard", f"{k}/2") for k in range(2)]
    assert merge(tmp_path / "m.h5", *halves) == 0
    assert_same_file(tmp_path / "m.h5", whole)
    tables = contents(whole)[0]
    assert {"detections/offsets", "detections/boxes", "sites/instance"} <= set(tables)
    assert tables["detections/offsets"][-1] == len(tables["detections/scores"]) > 0


def test_the_local_grid_script_runs_three_shards_and_merges_them(trained, tmp_path):
    model, _ = trained
    env = {**os.environ, "MODEL": str(model), "SAMPLE": "1e1p_le", "EVENTS": "5", "SEED": "3",
           "LARTPCNET": str(Path(sys.executable).parent / "lartpcnet")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "grid_local.sh"), str(tmp_path / "grid")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "merged 3 shards (5 events)" in run.stdout
    merged = tmp_path / "grid" / "predictions.h5"
    assert contents(merged)[0]["events/index"].tolist() == list(range(5))
    assert predictions.header(merged)[1]["shard"] is None
    shards = sorted((tmp_path / "grid").glob("shard-*-of-3.h5"))
    assert [predictions.header(s)[1]["shard"] for s in shards] == ["0/3", "1/3", "2/3"]
    assert sum(len(contents(s)[0]["events/index"]) for s in shards) == 5
    again = subprocess.run(["bash", str(ROOT / "scripts" / "grid_local.sh"), str(tmp_path / "grid")], env=env,
                           capture_output=True, text=True, timeout=120)  # finished shards are kept
    assert again.returncode == 0 and "merged 3 shards" in again.stdout, again.stderr
    assert runner.merge(tmp_path / "again.h5", shards)["events"] == 5
