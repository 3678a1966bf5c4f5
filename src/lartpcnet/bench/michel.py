"""``lartpcnet bench michel``: the Michel reconstruction step (network excluded) per 512^3 event.

Two inputs for the reconstruction: the truth labels standing in for a perfect network, and the
shipped 3D U-ResNet's predictions with ``--tta`` where its weights are installed (a real
network's mistakes make more, smaller clusters). The network's own time, one pass and with
``--tta``, is reported beside it for scale.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name
from lartpcnet.reco.michel import GOAL_MS, SHIPPED_3D, _kinetic_of_michels, _truth_labels, reconstruct_event
from lartpcnet.sim.samples import generate_event, load_sample

# the README's command: the bridge adds a DBSCAN over Michel and shower sites, so time it too
CONFIG = SHIPPED_3D
FLAGS = CONFIG.flags() + " --tta --add-showers"
REPEATS = 3  # per event, the fastest of these: one run is at the mercy of the shared machine


def _reco_ms(i, image, coords, labels, semantic, kinetic) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        reconstruct_event(i, coords, labels, image.values, semantic, image.instance, kinetic, CONFIG,
                          add_showers=True)
        times.append(1e3 * (time.perf_counter() - start))
    return min(times)


SAMPLES = ("michel", "pilarnet3d")


def run(events: int = 20, threads: int = 2, progress: bool = True) -> dict:
    from tqdm import tqdm

    from lartpcnet import inference
    from lartpcnet.reco.michel import _dbscan

    torch.set_num_threads(threads)
    _dbscan(np.zeros((1, 3)), 1.0, 1)  # warm-up: imports
    shipped = inference.shipped_weights("uresnet3d_pilarnet") is not None
    model = inference.load_model("uresnet3d_pilarnet") if shipped else None
    model_tta = replace(model, tta=True) if shipped else None  # the same network, four passes
    bar = tqdm(total=events * len(SAMPLES), desc="bench michel", disable=not progress, file=sys.stderr)
    rows = []
    for sample in SAMPLES:
        config = load_sample(sample)
        truth_ms, predicted_ms, network_ms, network_tta_ms, voxels = [], [], [], [], []
        for i in range(events):
            event = generate_event(config, 99, i)
            image = event.voxels
            semantic, _ = _truth_labels(image, event.particles)
            kinetic = _kinetic_of_michels(event.particles)
            voxels.append(len(image))
            truth_ms.append(_reco_ms(i, image, image.coords, semantic, semantic, kinetic))
            if model is not None:
                start = time.perf_counter()
                inference.predict_image(model, image)
                network_ms.append(1e3 * (time.perf_counter() - start))
                start = time.perf_counter()
                coords, labels = inference.predict_image(model_tta, image)  # 3D: every voxel, same order
                network_tta_ms.append(1e3 * (time.perf_counter() - start))
                predicted_ms.append(_reco_ms(i, image, coords, labels, semantic, kinetic))
            bar.update()
        rows.append({"sample": sample, "voxels_median": statistics.median(voxels), "truth_labels": _summary(truth_ms),
                     "network_labels": _summary(predicted_ms), "network": _summary(network_ms),
                     "network_tta": _summary(network_tta_ms)})
    bar.close()
    return {"benchmark": "michel", "cpu": _cpu_name(), "threads": threads, "events": events, "goal_ms": GOAL_MS,
            "flags": FLAGS, "repeats": REPEATS, "cases": rows}


def _summary(values: list[float]) -> dict | None:
    return {"median_ms": statistics.median(values), "mean_ms": statistics.fmean(values),
            "max_ms": max(values)} if values else None


def markdown(report: dict, command: str) -> str:
    lines = ["# Michel reconstruction cost on CPU", "", f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; {report['events']} events per sample (512³ cubes), each the fastest of "
             f"{report.get('repeats', 1)} runs; per event: DBSCAN of the "
             "Michel, Michel-and-shower and track sites, attachment and edge tests, truth matching and the "
             f"shower-energy sum, with `{report.get('flags', FLAGS)}` (the README's command). The network is "
             "excluded (its median time is in the last columns: one pass, and the four of `--tta`).", "",
             "| sample | median voxels | input labels | median ms | mean ms | max ms | goal | network ms | "
             "network ms, `--tta` |",
             "|---|---:|---|---:|---:|---:|---|---:|---:|"]
    for case in report["cases"]:
        for key, label in (("truth_labels", "truth (a perfect network)"), ("network_labels", "shipped 3D U-ResNet")):
            row = case[key]
            if row:
                times = [case.get(name) if key == "network_labels" else None for name in ("network", "network_tta")]
                lines.append(f"| {case['sample']} | {case['voxels_median']:.0f} | {label} | {row['median_ms']:.1f} | "
                             f"{row['mean_ms']:.1f} | {row['max_ms']:.1f} | ≤ {report['goal_ms']:.0f} ms | "
                             + " | ".join(f"{t['median_ms']:.0f}" if t else "—" for t in times) + " |")
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir, command: str) -> list:
    return write_report(report, out_dir, "michel", command, markdown)
