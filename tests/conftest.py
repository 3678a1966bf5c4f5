"""Helpers shared by the tests: the tiny training config, a trained tiny checkpoint with its
events, and reading prediction files."""

from pathlib import Path

import h5py
import pytest
import yaml

from lartpcnet.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
REAL_SBND = FIXTURES / "sbnd_cosmic_tagging_5events.h5"

TINY = {
    "name": "tiny",
    "model": {"name": "uresnet", "network": {"depth": 2, "filters": 4, "reps": 1},
              "loss": {"weighting": "sparsessnet"}},
    "data": {"train": {"sample": "1e1p_le", "seed": 1}, "validation": {"sample": "1e1p_le", "seed": 2, "events": 4},
             "plane": 2, "workers": 0},
    "optimizer": {"name": "adam", "lr": 0.01},
    "batch_size": 2,
    "iterations": 6,
    "validate_every": 3,
    "checkpoint_every": 3,
}

PREDICTION_FIELDS = ("events/index", "sites/offsets", "sites/label", "sites/scores", "sites/two_class_label",
                     "sites/two_class_scores", "sites/coords")


def read_prediction_file(path) -> dict:
    with h5py.File(path) as f:
        return {key: f[key][:] for key in PREDICTION_FIELDS}


def crash_runner_on_call(monkeypatch, call: int = 3):
    """Makes ``lartpcnet.runner.run`` raise RuntimeError("killed") on its ``call``-th call: a job
    killed mid-way, for resume tests. Returns the real ``run``, to put back for the resume."""
    from lartpcnet import runner

    calls = {"n": 0}
    real = runner.run

    def crashes(*args):
        calls["n"] += 1
        if calls["n"] == call:
            raise RuntimeError("killed")
        return real(*args)

    monkeypatch.setattr(runner, "run", crashes)
    return real


def train_tiny(folder: Path, config: dict = TINY) -> Path:
    """Trains ``config`` into ``folder/run``; returns its last checkpoint."""
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder / "run" / "checkpoints" / f"ckpt-{config['iterations']}.pt"


def simulate(out: Path, sample: str = "1e1p_le", events: int = 6, seed: int = 9) -> Path:
    assert main(["simulate", "--sample", sample, "--events", str(events), "--seed", str(seed), "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny SparseSSNet checkpoint and six collection-plane events it was not trained on."""
    folder = tmp_path_factory.mktemp("model")
    return train_tiny(folder), simulate(folder / "events.h5")
