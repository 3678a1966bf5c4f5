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

import numpy as np
import torch

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name
from lartpcnet.reco.michel import (
    GOAL_MS,
    MichelConfig,
    _kinetic_of_michels,
    _truth_labels,
    recommended,
    reconstruct_event,
)
from lartpcnet.sim.samples import generate_event, load_sample

REPEATS = 3  # per event, the fastest of these: one run is at the mercy of the shared machine


def _reco_ms(i, coords, labels, values, semantic, instance, kinetic, config: MichelConfig) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        reconstruct_event(i, coords, labels, values, semantic, instance, kinetic, config, add_showers=True)
        times.append(1e3 * (time.perf_counter() - start))
    return min(times)


SAMPLES = ("michel", "pilarnet3d")


def run(events: int = 20, threads: int = 2, progress: bool = True) -> dict:
    from tqdm import tqdm

    from lartpcnet import runner
    from lartpcnet.checkpoint import shipped_path
    from lartpcnet.reco.michel import _dbscan

    torch.set_num_threads(threads)
    _dbscan(np.zeros((1, 3)), 1.0, 1)  # warm-up: imports
    model = runner.load_model("uresnet3d_pilarnet") if shipped_path("uresnet3d_pilarnet") else None
    model_tta = model.with_settings(tta=True) if model else None  # the same network, four passes
    # the README's command: the weights' recommended settings (the bridge adds a DBSCAN over Michel
    # and shower sites, so it is timed too), --tta and --add-showers
    reco = recommended(model) if model else MichelConfig()
    flags = (reco.flags() + " --tta --add-showers").strip()
    bar = tqdm(total=events * len(SAMPLES), desc="bench michel", disable=not progress, file=sys.stderr)
    rows = []
    for sample in SAMPLES:
        config = load_sample(sample)
        truth_ms, predicted_ms, network_ms, network_tta_ms, voxels = [], [], [], [], []
        for i in range(events):
            event = generate_event(config, 99, i)
            image = event.voxels
            semantic, _ = _truth_labels(image.semantic, image.instance, event.particles)
            kinetic = _kinetic_of_michels(event.particles)
            voxels.append(len(image))
            truth_ms.append(_reco_ms(i, image.coords, semantic, image.values, semantic, image.instance, kinetic,
                                     reco))
            if model is not None:
                start = time.perf_counter()
                runner.run(model, [image])
                network_ms.append(1e3 * (time.perf_counter() - start))
                start = time.perf_counter()
                (out,) = runner.run(model_tta, [image])
                network_tta_ms.append(1e3 * (time.perf_counter() - start))
                seen, _ = _truth_labels(out.truth, out.extra["instance"], event.particles)
                predicted_ms.append(_reco_ms(i, out.coords, out.label, out.extra["values"], seen,
                                             out.extra["instance"], kinetic, reco))
            bar.update()
        rows.append({"sample": sample, "voxels_median": statistics.median(voxels), "truth_labels": _summary(truth_ms),
                     "network_labels": _summary(predicted_ms), "network": _summary(network_ms),
                     "network_tta": _summary(network_tta_ms)})
    bar.close()
    return {"benchmark": "michel", "cpu": _cpu_name(), "threads": threads, "events": events, "goal_ms": GOAL_MS,
            "flags": flags, "repeats": REPEATS, "cases": rows}


def _summary(values: list[float]) -> dict | None:
    return {"median_ms": statistics.median(values), "mean_ms": statistics.fmean(values),
            "max_ms": max(values)} if values else None


def markdown(report: dict, command: str) -> str:
    lines = ["# Michel reconstruction cost on CPU", "", f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; {report['events']} events per sample (512³ cubes), each the fastest of "
             f"{report.get('repeats', 1)} runs; per event: DBSCAN of the "
             "Michel, Michel-and-shower and track sites, attachment and edge tests, truth matching and the "
             f"shower-energy sum, with `{report['flags']}` (the README's command). The network is "
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
