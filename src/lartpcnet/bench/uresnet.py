"""``lartpcnet bench uresnet``: SparseSSNet inference and training cost on CPU, beside the dense U-ResNet.

Cases (the SparseSSNet issue's): a full MicroBooNE collection plane (1008 x 3456, ~20k active
pixels), a full three-plane event, training iterations per second at batch 8 on 512 x 512 crops,
and time and memory against batch size (2D 512 x 512) and against the 3D cube size. Inputs are
simulated (seed fixed); networks have random weights (speed does not depend on training).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name
from lartpcnet.bench.peer_runner import current_rss_mb, measure
from lartpcnet.data.batching import sparse_batch
from lartpcnet.data.event import SparseImage
from lartpcnet.data.settings import DEFAULT_ADC_WINDOW, DEFAULT_FEATURE_SCALE
from lartpcnet.models.uresnet import UResNet, UResNetConfig
from lartpcnet.sim.samples import generate_event, load_sample
from lartpcnet.viz.plots import save_figure

SPARSESSNET = dict(dim=2, depth=5, filters=32, growth="linear", reps=2, classes=5)
PLANE_PIXELS = 20_000


def full_plane(pixels: int = PLANE_PIXELS, seed: int = 0) -> SparseImage:
    """A MicroBooNE collection plane with ~``pixels`` pixels in the 10-300 ADC window: simulated
    neutrino + cosmic events overlaid, as many as bring the count nearest to ``pixels``."""
    config = load_sample("uboone_nue_cosmics")
    planes, count, i = [], 0, 0
    while count < pixels:
        plane = generate_event(config, seed, i).planes[2]
        added = int(((plane.values >= 10) & (plane.values <= 300)).sum())
        if planes and count + added - pixels > pixels - count:  # stopping short is nearer
            break
        planes.append(plane)
        count += added
        i += 1
    coords = np.concatenate([p.coords for p in planes])
    _, first = np.unique(coords[:, 0] * 100_000 + coords[:, 1], return_index=True)
    cat = {f: np.concatenate([getattr(p, f) for p in planes])[first]
           for f in ("coords", "values", "semantic", "instance", "interaction", "origin")}
    return SparseImage(shape=planes[0].shape, **cat)


ADC = (DEFAULT_ADC_WINDOW, DEFAULT_FEATURE_SCALE)  # wire planes: SparseSSNet's ADC window, ADC / 100
MEV = (None, 1.0)  # voxels: every voxel, MeV as they are


def _inference(net: UResNet, images: list[SparseImage], repeats: int, inputs=ADC, bf16: bool = False) -> dict:
    """Time and memory of inference as ``lartpcnet predict`` runs it (``net`` folded, eval)."""
    net.eval()
    window, scale = inputs

    def run() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            net(sparse_batch(images, window, pad_to=net.config.stride, scale=scale).tensor)

    return measure(run, repeats, memory_from_start=True)


def _stream(net: UResNet, planes: list[SparseImage], bf16: bool = False, warmup: int = 4) -> dict:
    """Inference over different planes, one after another, as a grid job runs it: the median time
    per plane, and how much the RSS grew after the first ``warmup`` planes (it should not)."""
    net.eval()
    times, rss, sites = [], [], []
    for plane in planes:
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            tensor = sparse_batch([plane], ADC[0], pad_to=net.config.stride, scale=ADC[1]).tensor
            net(tensor)
        times.append(time.perf_counter() - t0)
        rss.append(current_rss_mb())
        sites.append(tensor.num_sites)
    return {"planes": len(planes), "median_sites": float(np.median(sites)), "ms": 1e3 * float(np.median(times)),
            "rss_growth_mb": rss[-1] - rss[warmup - 1]}


def _dense_inference(net: UResNet, images: list[SparseImage], repeats: int, inputs=ADC) -> dict:
    """The dense network on the zero-filled images holding the same inputs as the sparse one."""
    net.eval()
    batch = sparse_batch(images, inputs[0], pad_to=net.config.stride, scale=inputs[1])
    dense = batch.tensor.to_dense()

    def run() -> None:
        with torch.no_grad():
            net(dense)

    return measure(run, repeats, memory_from_start=True)


NET3D = dict(dim=3, depth=5, filters=16, growth="linear", reps=2, classes=5)
CUBE_GEOMETRY = {192: "cube192", 512: "cube512", 768: "cube768"}


def _crops(batch: int) -> list[SparseImage]:
    bomb = load_sample("particle_bomb")
    return [generate_event(bomb, 6, i).planes[2] for i in range(batch)]


def _cubes(size: int) -> list[SparseImage]:
    """A training batch of 4 ``pilarnet3d`` events in a ``size``^3 cube."""
    config = load_sample("pilarnet3d").model_copy(update={"geometry": CUBE_GEOMETRY[size]})
    return [generate_event(config, 3, i).voxels for i in range(4)]


def dense_case(kind: str, size: int, threads: int) -> dict:
    """One dense U-ResNet case in this process (its memory is its own): ``plane`` (the full
    plane), ``batch`` (``size`` 512 x 512 crops) or ``cube`` (4 events in a ``size``^3 cube)."""
    from lartpcnet.runtime import configure_runtime
    from lartpcnet.sparse import fold_batchnorm

    configure_runtime()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    images, network, inputs = {"plane": lambda: ([full_plane()], SPARSESSNET, ADC),
                               "batch": lambda: (_crops(size), SPARSESSNET, ADC),
                               "cube": lambda: (_cubes(size), NET3D, MEV)}[kind]()
    net = fold_batchnorm(UResNet(UResNetConfig(**network), sparse=False))
    return _dense_inference(net, images, 1, inputs)


def _dense_in_process(kind: str, size: int, threads: int) -> dict:
    """``dense_case`` in a fresh process: the dense cases need GBs, which one process would keep
    from case to case (the 3D 192^3 batch alone peaks at ~16 GB)."""
    code = ("import json; from lartpcnet.bench.uresnet import dense_case; "
            f"print(json.dumps(dense_case({kind!r}, {size}, {threads})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _training(images: list[SparseImage], repeats: int) -> dict:
    from lartpcnet.models.losses import SegmentationLoss

    torch.manual_seed(0)
    net = UResNet(UResNetConfig(**SPARSESSNET))
    loss_fn = SegmentationLoss("sparsessnet")
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step() -> None:
        batch = sparse_batch(images, pad_to=32)
        optimiser.zero_grad()
        loss_fn(net(batch.tensor), batch.semantic, batch.instance).backward()
        optimiser.step()

    result = measure(step, repeats, memory_from_start=True)
    result["iterations_per_second"] = 1000 / result["ms"]
    return result


def _crops_near(sample: str, seed: int, pixels: int, count: int = 8, pool: int = 64) -> list[SparseImage]:
    """The ``count`` collection-plane crops, among ``pool`` simulated, whose pixel count in the ADC
    window is nearest ``pixels`` (the training-throughput goal is stated at ~1500 px per crop)."""
    config = load_sample(sample)
    crops = [generate_event(config, seed, i).planes[2] for i in range(pool)]
    size = [int(((c.values >= 10) & (c.values <= 300)).sum()) for c in crops]
    order = np.argsort(np.abs(np.asarray(size) - pixels), kind="stable")
    return [crops[i] for i in sorted(order[:count])]


def _bf16_label_changes(plane: SparseImage, crops: list[SparseImage]) -> dict | None:
    """With the shipped SparseSSNet weights: the fraction of labels bf16 inference changes, and
    the 5-class accuracy on crops in fp32 and bf16 (None where no weights ship)."""
    from lartpcnet import runner
    from lartpcnet.checkpoint import shipped_path

    if shipped_path("sparsessnet_uboone") is None:
        return None
    fp32 = runner.load_model("sparsessnet_uboone")
    bf16 = fp32.with_settings(precision="bf16")
    a, b = runner.run(fp32, [plane])[0].label, runner.run(bf16, [plane])[0].label
    accuracy = {}
    for name, model in (("fp32", fp32), ("bf16", bf16)):
        results = runner.run(model, crops)
        right = sum(int((r.label == r.truth)[r.truth >= 0].sum()) for r in results)
        total = sum(int((r.truth >= 0).sum()) for r in results)
        accuracy[name] = right / max(total, 1)
    return {"plane_labels_changed": float((a != b).mean()), "crops": len(crops), "crop_accuracy": accuracy}


def run(quick: bool = False, threads: int = 2, progress: bool = True) -> dict:
    from tqdm import tqdm

    from lartpcnet.sparse import fold_batchnorm

    torch.set_num_threads(threads)
    repeats = 3 if quick else 7
    steps = tqdm(total=6, desc="bench uresnet", disable=not progress, file=sys.stderr)
    torch.manual_seed(0)
    trainable = UResNet(UResNetConfig(**SPARSESSNET))
    sparse_net = fold_batchnorm(trainable)  # inference runs the folded network, as lartpcnet predict does
    plane = full_plane()
    report: dict = {"benchmark": "uresnet", "quick": quick, "threads": threads, "cpu": _cpu_name(),
                    "torch": torch.__version__, "network": SPARSESSNET}
    sites = sparse_batch([plane]).tensor.num_sites
    report["plane"] = {"sites": sites, "shape": list(plane.shape), **_inference(sparse_net, [plane], repeats)}
    report["plane_bf16"] = _inference(sparse_net, [plane], repeats, bf16=True)
    stream = [full_plane(seed=seed) for seed in range(1, 13 if quick else 25)]
    report["stream"] = {"fp32": _stream(sparse_net, stream), "bf16": _stream(sparse_net, stream, bf16=True)}
    steps.update()
    event = generate_event(load_sample("uboone_nue_cosmics"), 0, 0)
    three = [_inference(sparse_net, [p], repeats) for p in event.planes]  # one network per plane: same cost
    report["three_planes"] = {"ms": sum(t["ms"] for t in three), "sites": [sparse_batch([p]).tensor.num_sites
                                                                           for p in event.planes]}
    three_bf16 = [_inference(sparse_net, [p], repeats, bf16=True) for p in event.planes]
    report["three_planes_bf16"] = {"ms": sum(t["ms"] for t in three_bf16)}
    steps.update()
    bomb = load_sample("particle_bomb")
    crops = [generate_event(bomb, 5, i).planes[2] for i in range(8)]
    report["training"] = {"batch": 8, "sites_per_image": sparse_batch(crops).tensor.num_sites / 8,
                          **_training(crops, max(repeats - 2, 2))}
    small = _crops_near("particle_bomb", 7, 1500)
    report["training_1500"] = {"batch": 8, "sites_per_image": sparse_batch(small).tensor.num_sites / 8,
                               **_training(small, max(repeats - 2, 2))}
    report["bf16_accuracy"] = _bf16_label_changes(plane, [generate_event(bomb, 8, i).planes[2] for i in range(16)])
    steps.update()
    report["dense_plane"] = _dense_in_process("plane", 0, threads) if not quick else None
    steps.update()
    batches = []
    for size in (1, 2, 4, 8) if quick else (1, 2, 4, 8, 16):
        row = {"batch": size, "sparse": _inference(sparse_net, _crops(size), repeats)}
        if size <= 4 or not quick:
            row["dense"] = _dense_in_process("batch", size, threads)
        batches.append(row)
    report["batch_scan"] = batches
    steps.update()
    cubes = []
    net3d = fold_batchnorm(UResNet(UResNetConfig(**NET3D)))
    for size in (192, 512, 768):
        volumes = _cubes(size)
        row = {"size": size, "voxels": sum(len(v) for v in volumes),
               "sparse": _inference(net3d, volumes, repeats, MEV)}
        if size == 192:
            row["dense"] = _dense_in_process("cube", size, threads)
        cubes.append(row)
    report["cube_scan"] = cubes
    steps.update()
    steps.close()
    return report


def markdown(report: dict, command: str) -> str:
    p, t, d = report["plane"], report["training"], report.get("dense_plane")
    lines = ["# SparseSSNet (U-ResNet) cost on CPU", "", f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; torch {report['torch']}; {report['threads']} threads; network "
             f"{report['network']}; random weights, simulated inputs. Times are medians in ms; memory is the peak RSS "
             "increase in MB from before the first call (cases run in this order in one process, so memory an "
             "earlier case left with the allocator is not counted again).", "",
             "| case | time | peak MB | goal |", "|---|---:|---:|---|",
             f"| full MicroBooNE collection plane, {p['sites']} px, fp32 | {p['ms']:.0f} ms | "
             f"{p['peak_mb'] or 0:.0f} | ≤ 100 ms, ≤ 150 MB |",
             f"| same plane, bf16 autocast | {report['plane_bf16']['ms']:.0f} ms | | (fp32 goal) |",
             *[f"| {row['planes']} different full planes one after another (median {row['median_sites']:.0f} px), "
               f"{name}: median per plane, RSS growth after the 4th | {row['ms']:.0f} ms | "
               f"{row['rss_growth_mb']:+.0f} | |"
               for name, row in report.get("stream", {}).items()],
             f"| full 3-plane event ({', '.join(map(str, report['three_planes']['sites']))} px), fp32 | "
             f"{report['three_planes']['ms']:.0f} ms | | ≤ 300 ms |",
             f"| same event, bf16 autocast | {report['three_planes_bf16']['ms']:.0f} ms | | |",
             f"| training, batch 8 of simulated 512×512 particle-bomb crops ({t['sites_per_image']:.0f} px each) | "
             f"{t['iterations_per_second']:.2f} it/s | {t['peak_mb'] or 0:.0f} | |",
             f"| training, batch 8 of crops near 1500 px ({report['training_1500']['sites_per_image']:.0f} px each) | "
             f"{report['training_1500']['iterations_per_second']:.2f} it/s | | ≥ 4 it/s at ~1500 px |"]
    if d and "error" in d:
        lines.append(f"| dense U-ResNet, same plane | failed: {d['error']} | | |")
    elif d:
        lines.append(f"| dense U-ResNet, same plane (own process) | {d['ms']:.0f} ms | {d['peak_mb'] or 0:.0f} | "
                     f"sparse is {d['ms'] / p['ms']:.0f}× faster |")
    acc = report.get("bf16_accuracy")
    if acc:
        lines += ["", f"bf16 with the shipped SparseSSNet weights: {100 * acc['plane_labels_changed']:.2f}% of the "
                  f"plane's labels change; 5-class accuracy on {acc['crops']} particle-bomb crops "
                  f"{100 * acc['crop_accuracy']['fp32']:.2f}% (fp32) vs {100 * acc['crop_accuracy']['bf16']:.2f}% "
                  "(bf16)."]
    else:
        lines += ["", "bf16 accuracy cost: not measured (no shipped weights in this installation)."]
    lines += ["", "Scans. Each dense case runs in a process of its own, so its peak memory is its own; the sparse "
              "cases share one process (their memory is in the plot, times here).", "",
              "| batch (512×512 crops) | sparse ms | dense ms | dense peak MB |", "|---:|---:|---:|---:|"]
    for row in report["batch_scan"]:
        lines.append(f"| {row['batch']} | {row['sparse']['ms']:.0f} | {_dense_cells(row.get('dense'), '— |')}")
    lines += ["", "| 3D cubes, batch of 4 | voxels | sparse ms | dense ms | dense peak MB |",
              "|---:|---:|---:|---:|---:|"]
    for row in report["cube_scan"]:
        lines.append(f"| {row['size']}³ | {row['voxels']} | {row['sparse']['ms']:.0f} | "
                     + _dense_cells(row.get("dense"), "— (does not fit in 24 GB) |"))
    return "\n".join(lines) + "\n"


def _dense_cells(dense: dict | None, missing: str) -> str:
    if not dense:
        return missing + " |"
    if "error" in dense:
        return f"failed: {dense['error']} | |"
    return f"{dense['ms']:.0f} | {dense['peak_mb'] or 0:.0f} |"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    sizes = [r["batch"] for r in report["batch_scan"]]
    a.plot(sizes, [r["sparse"]["ms"] for r in report["batch_scan"]], "o-", label="sparse U-ResNet")
    dense = [(r["batch"], r["dense"]["ms"]) for r in report["batch_scan"] if r.get("dense") and "ms" in r["dense"]]
    if dense:
        a.plot(*zip(*dense, strict=True), "s-", label="dense U-ResNet")
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("batch size (512 x 512 crops)")
    a.set_ylabel("inference time [ms]")
    a.legend(fontsize=8)
    b.plot(sizes, [r["sparse"]["peak_mb"] or 0 for r in report["batch_scan"]], "o-", label="sparse")
    if dense:
        b.plot([r["batch"] for r in report["batch_scan"] if r.get("dense") and "ms" in r["dense"]],
               [r["dense"]["peak_mb"] or 0 for r in report["batch_scan"] if r.get("dense") and "ms" in r["dense"]],
               "s-", label="dense (own process)")
    b.set_xscale("log", base=2)
    b.set_xlabel("batch size")
    b.set_ylabel("peak RSS increase [MB]")
    b.legend(fontsize=8)
    fig.suptitle(f"U-ResNet inference, {report['threads']} CPU threads", fontsize=9)
    save_figure(fig, path, dpi=110)


def write(report: dict, out_dir: Path, command: str, stem: str = "uresnet") -> list[Path]:
    return write_report(report, out_dir, stem, command, markdown, plot)

