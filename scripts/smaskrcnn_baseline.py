"""Chooses the non-learned baselines beside sMask-RCNN on tuning events, then scores them once on
fresh test events.

- DBSCAN instances (``tasks.instance.BASELINE``): the (eps, min_samples) grid point with the best
  harmonic mean of event-averaged efficiency and purity on tuning events of the general nue sample.
- The DBSCAN cosmic tagger of the veto (``reco.veto.TUNED``): the (min_extent, max_width) grid point
  with the largest AUC, general nue against cosmic-only tuning events.

Tuning events are seeds 101-104 (never the test seed 12345, never the real SBND file).

    .venv/bin/python scripts/smaskrcnn_baseline.py [--per-seed 10] [--test-events 50] [--out DIR]

Prints both grids and the test-event scores; with ``--out`` writes them as ``baseline.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lartpcnet.data.source import DataSource, EventSource
from lartpcnet.metrics.instance import InstanceMetrics, dbscan_predictions, image_truth, tune_dbscan
from lartpcnet.reco.veto import BACKGROUND_SAMPLE, SIGNAL_SAMPLES, TUNED, auc, baseline_discriminant, tune_tagger
from lartpcnet.tasks.instance import BASELINE

TUNING_SEEDS = (101, 102, 103, 104)
TEST_SEED = 12345
PLANE = 2  # the collection plane, as the task's config reads


def images(sample: str, seeds, per_seed: int, desc: str) -> list:
    out = []
    for seed in seeds:
        with EventSource(DataSource(sample=sample, seed=seed, events=per_seed)) as source:
            for event in tqdm(source, total=per_seed, desc=f"{desc} seed {seed}", leave=False):
                out.append((event.planes[PLANE], event.interactions, event.particles))
    return out


def with_truth(planes: list) -> list:
    rows = []
    for image, interactions, particles in planes:
        truth, truth_class = image_truth(image, interactions, particles)
        rows.append((image.coords, image.values, truth, truth_class))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-seed", type=int, default=10, help="tuning events per seed and sample")
    parser.add_argument("--test-events", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    nue = SIGNAL_SAMPLES["general nue"]
    tuning = with_truth(images(nue, TUNING_SEEDS, args.per_seed, "tuning nue"))
    best, grid = tune_dbscan(tuning)
    print(f"DBSCAN instances on {len(tuning)} tuning events of {nue} (seeds {TUNING_SEEDS}):")
    print(f"{'eps':>5s} {'min_samples':>11s} {'efficiency':>10s} {'purity':>7s} {'F1':>6s}")
    for row in grid:
        print(f"{row['eps']:5.1f} {row['min_samples']:11d} {row['event_efficiency']:10.3f} "
              f"{row['event_purity']:7.3f} {row['f1']:6.3f}")
    print(f"chosen: {best} (shipped in tasks/instance.py: {BASELINE})\n")

    signal = [(row[0], row[1]) for row in tuning]
    background = [(image.coords, image.values)
                  for image, _, _ in images(BACKGROUND_SAMPLE, TUNING_SEEDS, args.per_seed, "tuning cosmic-only")]
    tagger, tagger_grid = tune_tagger(signal, background, best["eps"], best["min_samples"],
                                      extents=(10, 20, 30, 50, 100, 200), widths=(1.5, 3.0, 6.0, np.inf))
    print(f"DBSCAN cosmic tagger, {nue} against {BACKGROUND_SAMPLE} ({len(signal)} + {len(background)} events):")
    print(f"{'min_extent':>10s} {'max_width':>9s} {'AUC':>6s}")
    for row in tagger_grid:
        print(f"{row['min_extent']:10.0f} {row['max_width']:9.1f} {row['auc']:6.3f}")
    print(f"chosen: {tagger} (shipped in reco/veto.py: min_extent {TUNED['min_extent']}, "
          f"max_width {TUNED['max_width']})\n")

    test = with_truth(images(nue, (TEST_SEED,), args.test_events, "test nue"))
    metrics = InstanceMetrics()
    for coords, values, truth, truth_class in test:
        metrics.add(values, truth, truth_class, dbscan_predictions(coords, values, best["eps"], best["min_samples"]))
    scores = metrics.summary()
    print(f"DBSCAN instances on {len(test)} test events (seed {TEST_SEED}):")
    for key in ("efficiency", "purity", "covered", "missed", "event_efficiency", "event_purity"):
        if isinstance(scores.get(key), float):
            print(f"  {key:18s} {scores[key]:.3f}")

    test_bkg = [(image.coords, image.values)
                for image, _, _ in images(BACKGROUND_SAMPLE, (TEST_SEED,), args.test_events, "test cosmic-only")]
    settings = (best["eps"], best["min_samples"], tagger["min_extent"], tagger["max_width"])
    test_auc = auc([baseline_discriminant(c, v, *settings) for c, v, _, _ in test],
                   [baseline_discriminant(c, v, *settings) for c, v in test_bkg])
    print(f"  veto AUC (tagger) {test_auc:.3f}")

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        report = {"tuning_seeds": TUNING_SEEDS, "test_seed": TEST_SEED, "dbscan": best, "dbscan_grid": grid,
                  "tagger": {**tagger, "max_width": None if np.isinf(tagger["max_width"]) else tagger["max_width"]},
                  "tagger_grid": [{**r, "max_width": None if np.isinf(r["max_width"]) else r["max_width"]}
                                  for r in tagger_grid],
                  "test": {k: v for k, v in scores.items() if isinstance(v, (int, float))}, "test_veto_auc": test_auc}
        (args.out / "baseline.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
