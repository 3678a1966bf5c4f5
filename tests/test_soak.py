"""Soak test (slow, outside CI): ten kill -9 / resume cycles of ``predict`` and of ``train`` at
random moments, each checked against an uninterrupted run: nothing lost, nothing duplicated,
results bit-exact.

    .venv/bin/python -m pytest -m slow tests/test_soak.py

Each kill lands a seeded random time after the job has made progress (a new part or checkpoint),
so every cycle kills the job mid-work rather than at start-up; the result is in docs/reliability.md.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import PREDICTION_FIELDS, TINY, read_prediction_file, simulate

pytestmark = pytest.mark.slow

CYCLES = 10
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lartpcnet.cli", *args, "--no-progress"], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def progress_marks(folder: Path, pattern: str) -> set[str]:
    return {p.name for p in folder.glob(pattern)} if folder.exists() else set()


def kill_cycles(args: list[str], folder: Path, pattern: str, rng: np.random.Generator, max_delay: float) -> int:
    """Starts the job CYCLES times, each time killing it with SIGKILL a random 0..max_delay s after
    it made progress (a new file matching ``pattern`` in ``folder``). Returns how many runs were
    killed while still working."""
    kills = 0
    for _ in range(CYCLES):
        before = progress_marks(folder, pattern)
        job = cli(*args)
        deadline = time.time() + 300
        while job.poll() is None and time.time() < deadline and progress_marks(folder, pattern) <= before:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, max_delay))
        if job.poll() is None:
            job.send_signal(signal.SIGKILL)
            kills += 1
        job.wait()
        job.stderr.close()
    return kills


def finish(args: list[str]) -> None:
    job = cli(*args)
    _, err = job.communicate(timeout=600)
    assert job.returncode == 0, err.decode()[-2000:]


def test_predict_survives_ten_kills_bit_exact(trained, tmp_path):
    model, _ = trained
    events = simulate(tmp_path / "events.h5", events=300, seed=31)
    reference, soaked = tmp_path / "reference.h5", tmp_path / "soaked.h5"
    common = ["predict", "--model", str(model), "--in", str(events), "--part-size", "4", "--batch-size", "2"]
    finish([*common, "--out", str(reference)])

    kills = kill_cycles([*common, "--out", str(soaked)], tmp_path / "soaked.h5.parts", "part-*.h5",
                        np.random.default_rng(2026), max_delay=0.4)
    assert kills == CYCLES, f"only {kills} of {CYCLES} runs were killed while working"
    finish([*common, "--out", str(soaked)])

    got, want = read_prediction_file(soaked), read_prediction_file(reference)
    assert sorted(got["events/index"].tolist()) == list(range(300))  # each event once: nothing lost or duplicated
    for key in PREDICTION_FIELDS:
        assert np.array_equal(got[key], want[key]), key
    assert not (tmp_path / "soaked.h5.parts").exists()


def test_training_survives_ten_kills_bit_exact(tmp_path):
    config = dict(TINY, iterations=150, checkpoint_every=2, validate_every=50)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    finish(["train", str(tmp_path / "tiny.yaml"), "--out", str(tmp_path / "reference")])

    soaked = tmp_path / "soaked"
    args = ["train", str(tmp_path / "tiny.yaml"), "--out", str(soaked), "--resume"]
    kills = kill_cycles(args, soaked / "checkpoints", "ckpt-*.pt", np.random.default_rng(2027), max_delay=0.3)
    assert kills == CYCLES, f"only {kills} of {CYCLES} runs were killed while working"
    finish(args)

    def final(run: Path) -> dict:
        return torch.load(run / "checkpoints" / "ckpt-150.pt", weights_only=True)

    got, want = final(soaked), final(tmp_path / "reference")
    assert got["model"].keys() == want["model"].keys()
    for key, value in want["model"].items():
        assert torch.equal(got["model"][key], value), key
    assert torch.equal(torch.cat([v.flatten() for s in got["optimizer"]["state"].values() for v in s.values()
                                  if torch.is_tensor(v)]),
                       torch.cat([v.flatten() for s in want["optimizer"]["state"].values() for v in s.values()
                                  if torch.is_tensor(v)]))

    def log(run: Path) -> list[tuple[str, str]]:
        return [(r["iteration"], r["loss"]) for r in csv.DictReader((run / "log.csv").open())]

    assert log(soaked) == log(tmp_path / "reference")  # every iteration once, the same losses to the last digit
    assert (soaked / "validation.jsonl").read_text().count("\n") == (tmp_path / "reference" / "validation.jsonl"
                                                                     ).read_text().count("\n")
