"""scripts/choose_checkpoint.py: the shipping rule of docs/models.md."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY, train_tiny

SCRIPT = Path(__file__).parents[1] / "scripts" / "choose_checkpoint.py"
spec = importlib.util.spec_from_file_location("choose_checkpoint", SCRIPT)
choose = importlib.util.module_from_spec(spec)
spec.loader.exec_module(choose)


def test_noise_is_the_spread_of_consecutive_validations_and_the_rule_needs_two_sigmas():
    rows = [{"iteration": 250 * (k + 1), "mean_iou": v} for k, v in enumerate([0.50, 0.52, 0.51, 0.53, 0.60])]
    sigma = 1.4826 * 0.02 / 2 ** 0.5  # the median step is 0.02
    assert choose.noise([r["mean_iou"] for r in rows]) == pytest.approx(sigma)
    shipped = choose.decide(rows, "mean_iou", shipped=0.55)
    assert shipped["best_iteration"] == 1250 and shipped["ship"]  # 0.05 > 2 sigma = 0.042
    kept = choose.decide(rows, "mean_iou", shipped=0.57)
    assert not kept["ship"] and "not more" in kept["reason"]  # 0.03 < 0.042
    assert not choose.decide(rows[:2], "mean_iou", shipped=0.0)["ship"]  # noise not measured yet
    first = choose.decide(rows, "mean_iou", shipped=None)  # no weights ship yet: the best is the first
    assert first["ship"] and first["best_iteration"] == 1250 and "first" in first["reason"]


def test_the_shipped_weights_are_scored_on_the_runs_own_validation_events(tmp_path):
    config = dict(TINY, iterations=12, validate_every=3, checkpoint_every=3)
    last = train_tiny(tmp_path, config)
    run = last.parents[1]
    against = run / "checkpoints" / "ckpt-3.pt"  # stands in for shipped weights: its validation is known
    proc = subprocess.run([sys.executable, str(SCRIPT), str(run), "--metric", "nonzero_accuracy", "--against",
                           str(against), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    logged = [json.loads(line) for line in (run / "validation.jsonl").read_text().splitlines()]
    assert [v["iteration"] for v in result["validations"]] == [3, 6, 9, 12]
    assert result["shipped"] == pytest.approx(logged[0]["nonzero_accuracy"], abs=1e-3)
    best = max(logged, key=lambda v: v["nonzero_accuracy"])
    assert result["best_iteration"] == best["iteration"] and result["noise"] is not None
