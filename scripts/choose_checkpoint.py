"""Chooses a run's checkpoint to ship, by the rule in docs/models.md, on validation events only.

    .venv/bin/python scripts/choose_checkpoint.py RUN [--metric mean_iou] [--against cosmictagger_sbnd]

The rule:
1. Candidates are the run's checkpoints that have a validation line at their iteration
   (``RUN/validation.jsonl``: the run's own validation events, never test events or real files).
2. The checkpoint-to-checkpoint noise is sigma = 1.4826 * median |v(i+1) - v(i)| / sqrt(2) over
   consecutive validations: the spread of one validation value about the curve, robust to the
   curve's own rise (the median of the differences, scaled to a standard deviation).
3. The best candidate has the highest ``--metric``.
4. It is shipped only if it beats the shipped weights, scored on the same validation events now,
   by more than 2 sigma. Where no weights ship yet, the best candidate is the first to ship.

Prints the table and the decision; ``--json`` prints them as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

import torch

NOISE_SIGMAS = 2.0


def noise(values: list[float]) -> float | None:
    """Checkpoint-to-checkpoint noise of one validation value (None: fewer than three values)."""
    if len(values) < 3:
        return None
    steps = [abs(b - a) for a, b in itertools.pairwise(values)]
    return 1.4826 * statistics.median(steps) / math.sqrt(2)


def decide(validations: list[dict], metric: str, shipped: float | None) -> dict:
    """The rule on ``validations`` (one dict per validation, with ``iteration`` and ``metric``);
    ``shipped`` None: no weights ship yet."""
    rows = [v for v in validations if v.get(metric) is not None]
    if not rows:
        raise ValueError(f"no validation line holds {metric!r}")
    sigma = noise([v[metric] for v in rows])
    best = max(rows, key=lambda v: v[metric])
    margin = None if shipped is None or sigma is None else best[metric] - shipped
    ship = shipped is None or (margin is not None and margin > NOISE_SIGMAS * sigma)
    if shipped is None:
        reason = "no weights ship yet: the best checkpoint is the first"
    elif sigma is None:
        reason = "fewer than three validations: the noise is not measured yet"
    else:
        reason = (f"beats the shipped weights by {margin:+.4f}, {'more' if ship else 'not more'} than "
                  f"{NOISE_SIGMAS:g} x noise ({NOISE_SIGMAS * sigma:.4f})")
    return {"metric": metric, "best_iteration": int(best["iteration"]), "best": best[metric], "shipped": shipped,
            "noise": sigma, "margin": margin, "ship": ship, "reason": reason}


def shipped_score(run: Path, against: str, metric: str) -> float | None:
    """The shipped weights' ``metric`` on the run's own validation events (None: none ship)."""
    from lartpcnet import runner
    from lartpcnet.checkpoint import shipped_path
    from lartpcnet.train.config import load_config
    from lartpcnet.train.trainer import validation_items

    if shipped_path(against) is None and not Path(against).is_file():  # a name with no weights yet
        return None
    config = load_config(run / "config.yaml")
    model = runner.load_model(against)
    items = validation_items(config, model.task)
    return runner.score(model.net, model.task, items, config.data, config.batch_size, torch.device("cpu"))[metric]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--metric", default="mean_iou")
    parser.add_argument("--against", default=None, help="the shipped model to beat (default: the run's config name)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    lines = (args.run / "validation.jsonl").read_text().splitlines()
    validations = [json.loads(line) for line in lines if line.strip()]
    saved = {int(p.stem.split("-")[1]) for p in (args.run / "checkpoints").glob("ckpt-*.pt")}
    candidates = [v for v in validations if int(v["iteration"]) in saved]
    against = args.against or json.loads((args.run / "config.yaml").read_text())["name"]
    result = decide(candidates or validations, args.metric, shipped_score(args.run, against, args.metric))
    result["validations"] = [{"iteration": v["iteration"], args.metric: v.get(args.metric)} for v in validations]
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for v in result["validations"]:
        print(f"iteration {v['iteration']:>7}: {args.metric} {v[args.metric]:.4f}")
    shipped = "none ship yet" if result["shipped"] is None else f"{result['shipped']:.4f}"
    print(f"shipped {against}: {shipped}; noise {result['noise'] or float('nan'):.4f}")
    print(f"best: iteration {result['best_iteration']} ({result['best']:.4f}); "
          f"{'SHIP' if result['ship'] else 'keep the shipped weights'}: {result['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
