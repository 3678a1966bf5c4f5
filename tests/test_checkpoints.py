"""Checkpoints never run code, shipped weights are checked, and resume survives damaged or
changed runs (issue: security; issue: never lose or corrupt data, item 11)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lartpcnet import checkpoint
from lartpcnet.cli import main
from tests.conftest import TINY

EVIL = """
import os, sys, torch
class Evil:
    def __reduce__(self):
        return (os.system, ('echo PWNED > pwned.txt',))
torch.save({'x': Evil(), 'network': {}, 'model': {}, 'model_name': 'uresnet', 'config': {}}, sys.argv[1])
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    events = folder / "events.h5"
    assert main(["simulate", "--sample", "1e1p_le", "--events", "2", "--seed", "9", "--out", str(events),
                 "--no-progress"]) == 0
    return folder, events


@pytest.fixture
def evil(tmp_path):
    path = tmp_path / "evil.pt"
    subprocess.run([sys.executable, "-c", EVIL, str(path)], check=True, cwd=tmp_path)
    assert not (tmp_path / "pwned.txt").exists()
    return path


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lartpcnet.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_a_pickle_that_runs_code_is_refused_by_predict_evaluate_and_resume(evil, tiny_run, tmp_path):
    folder, events = tiny_run
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    shutil.copy(evil, run / "checkpoints" / "ckpt-9.pt")  # the newest: --resume tries it first
    for args in (["predict", "--model", str(evil), "--in", str(events), "--out", str(tmp_path / "p.h5")],
                 ["evaluate", "--model", str(evil), "--in", str(events)]):
        result = _cli([*args, "--no-progress"], tmp_path)
        assert result.returncode == 2, result.stderr
        assert "refused: it holds Python objects" in result.stderr and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    # --resume skips the refused file, says so, and continues from the newest one that loads
    result = _cli(["train", str(folder / "tiny.yaml"), "--out", str(run), "--resume", "--no-progress",
                   "--set", "iterations=7"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipping ckpt-9.pt" in result.stderr and "resuming from ckpt-6.pt instead" in result.stderr
    assert not (tmp_path / "pwned.txt").exists()
    assert not (run / "pwned.txt").exists()


def test_checkpoints_hold_only_what_weights_only_loads(tiny_run):
    folder, _ = tiny_run
    state = torch.load(folder / "run" / "checkpoints" / "ckpt-6.pt", weights_only=True)
    assert state["format"] == checkpoint.FORMAT and state["iteration"] == 6
    with pytest.raises(TypeError, match="plain values"):
        checkpoint.save_checkpoint(folder / "x.pt", {"model": {}, "bad": object()})
    assert not (folder / "x.pt").exists()


@pytest.mark.parametrize("name", ["sparsessnet_uboone", "uresnet3d_pilarnet", "cosmictagger_sbnd"])
def test_every_shipped_file_matches_its_listed_sha256(name):
    path = checkpoint.verify_shipped(name)
    assert checkpoint.sha256(path) == checkpoint.shipped_models()[name]["sha256"]
    state = checkpoint.load_checkpoint(path)
    assert state["model_name"] in ("uresnet", "cosmictagger")


def test_a_damaged_shipped_file_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    good = checkpoint.shipped_path("uresnet3d_pilarnet")
    folder = tmp_path / "weights"
    folder.mkdir()
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep inside the weights
    (folder / good.name).write_bytes(bytes(data))
    (folder / "models.json").write_text((good.parent / "models.json").read_text())
    monkeypatch.setattr(checkpoint, "weights_folder", lambda: folder)
    checkpoint.shipped_models.cache_clear()
    try:
        assert main(["evaluate", "--model", "uresnet3d_pilarnet", "--sample", "michel", "--events", "1",
                     "--no-progress"]) == 2
    finally:
        checkpoint.shipped_models.cache_clear()
    err = capsys.readouterr().err
    assert "differs from the" in err and "reinstall lartpcnet" in err and err.count("\n") == 1


def test_truncated_and_foreign_files_are_one_line_errors(tiny_run, tmp_path):
    folder, _ = tiny_run
    good = (folder / "run" / "checkpoints" / "ckpt-6.pt").read_bytes()
    cases = {"truncated.pt": good[: len(good) // 3], "empty.pt": b"", "text.pt": b"not a checkpoint\n"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(checkpoint.DataError, match="cannot be read as a checkpoint") as err:
            checkpoint.load_checkpoint(tmp_path / name)
        assert "\n" not in str(err.value)
    torch.save({"just": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(checkpoint.DataError, match="missing 'model'"):
        checkpoint.load_checkpoint(tmp_path / "other.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(checkpoint.DataError, match="holds a list"):
        checkpoint.load_checkpoint(tmp_path / "list.pt")


def test_resume_falls_back_past_a_truncated_checkpoint_and_clears_temporaries(tiny_run, tmp_path, capsys):
    folder, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    newest = run / "checkpoints" / "ckpt-6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    stale = run / "checkpoints" / ".ckpt-9.pt.k3j2h1.pt"  # what a kill during torch.save leaves
    stale.write_bytes(b"partial")
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(run), "--resume", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "skipping ckpt-6.pt" in err and "resuming from ckpt-3.pt instead" in err
    assert not stale.exists()
    assert checkpoint.load_checkpoint(newest, training=True)["iteration"] == 6  # rewritten whole


def test_resume_refuses_changed_settings_unless_set_explicitly(tiny_run, tmp_path, capsys):
    folder, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(folder / "run", run)
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({**TINY, "batch_size": 3, "iterations": 7}))
    assert main(["train", str(changed), "--out", str(run), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "batch_size: 2 -> 3" in err and "--set" in err and err.count("\n") == 1
    assert yaml.safe_load((run / "config.yaml").read_text())["batch_size"] == 2  # left as it was
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(run), "--resume", "--no-progress",
                 "--set", "batch_size=3", "--set", "optimizer.lr=0.001", "--set", "iterations=7"]) == 0
    log = (run / "changes.log").read_text()
    assert "batch_size: 2 -> 3" in log and "optimizer.lr: 0.01 -> 0.001" in log


def test_init_from_starts_at_the_weights_iteration_with_a_fresh_optimizer(tiny_run, tmp_path):
    folder, _ = tiny_run
    source = folder / "run" / "checkpoints" / "ckpt-3.pt"
    out = tmp_path / "continued"
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(out), "--init-from", str(source),
                 "--no-progress"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["ckpt-6.pt"]
    assert "optimizer starts anew" in (out / "changes.log").read_text()
    status = (out / "status.txt").read_text()
    assert status.startswith("iteration 6/6, ") and "validation nonzero_accuracy" in status


def test_no_unsafe_loader_in_the_source():
    src = Path(__file__).parents[1] / "src"
    banned = ("weights_only=False", "pickle.load", "yaml.load(", "eval(", "exec(")
    hits = [f"{path}:{n}: {line.strip()}" for path in src.rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if any(b in line.replace(" ", "") for b in (b.replace(" ", "") for b in banned))
            and ".eval()" not in line and "_eval(" not in line]
    assert not hits, hits


def test_models_lists_every_shipped_model_with_its_sha256(capsys):
    import json

    assert main(["models", "--verify", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    assert set(rows) == set(checkpoint.shipped_models())
    for name, row in rows.items():
        assert row["sha256_ok"] and row["sha256"] == checkpoint.sha256(checkpoint.shipped_path(name))
        assert row["task"] in ("segmentation", "tagging", "instance") and row["metrics"]
