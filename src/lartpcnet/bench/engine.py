"""``lartpcnet bench engine``: one submanifold conv layer, ours vs dense torch vs spconv vs MinkowskiEngine.

All engines see the same sites, features and weights in one run, and their outputs are checked
against ours before any time is compared.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lartpcnet.bench import write_report
from lartpcnet.bench.peer_runner import measure
from lartpcnet.sparse import SparseTensor, SubmanifoldConv
from lartpcnet.sparse.kmap import submanifold_map
from lartpcnet.viz.plots import save_figure

PEERS = ("spconv", "minkowski")
# spconv's CPU scatter races with more than one OpenMP thread, so it is measured on one.
PEER_THREADS = {"spconv": 1, "minkowski": 2}


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    spatial_shape: tuple[int, ...]
    sites: int
    channels: int
    seed: int
    dense_shape: tuple[int, ...]  # dense torch is measured on this volume and scaled to the full one


CASES = (
    Case("2d_uboone_plane", "2D MicroBooNE plane 1008x3456, 20k px, 32->32, 3x3",
         (1008, 3456), 20_000, 32, 1, (1008, 3456)),
    Case("3d_512_50k", "3D 512^3, 50k voxels, 16->16, 3x3x3", (512, 512, 512), 50_000, 16, 2, (128, 128, 128)),
    Case("3d_512_200k", "3D 512^3, 200k voxels, 16->16, 3x3x3", (512, 512, 512), 200_000, 16, 3, (128, 128, 128)),
)


def track_sites(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """``count`` distinct sites on random straight tracks (the thin lines of a LArTPC image)."""
    rng = np.random.default_rng(seed)
    size = np.array(shape, dtype=np.float64)
    dim = len(shape)
    strides = np.array([math.prod(shape[i + 1 :]) for i in range(dim)], dtype=np.int64)
    seen: dict[int, None] = {}
    while len(seen) < count:
        start = rng.uniform(0, size)
        direction = rng.normal(size=dim)
        direction /= np.linalg.norm(direction)
        length = rng.uniform(0.05, 0.4) * size.min()
        steps = np.arange(0, length, 0.5)[:, None]
        points = np.floor(start + steps * direction).astype(np.int64)
        inside = ((points >= 0) & (points < np.array(shape))).all(1)
        for key in (points[inside] @ strides).tolist():
            seen.setdefault(key)
    keys = np.fromiter(seen, dtype=np.int64, count=len(seen))[:count]
    return np.stack(np.unravel_index(keys, shape), 1)


def _case_tensors(case: Case) -> dict[str, torch.Tensor]:
    sites = torch.from_numpy(track_sites(case.spatial_shape, case.sites, case.seed))
    g = torch.Generator().manual_seed(case.seed)
    coords = torch.cat([torch.zeros((sites.shape[0], 1), dtype=torch.int64), sites], 1)
    torch.manual_seed(case.seed)
    conv = SubmanifoldConv(len(case.spatial_shape), case.channels, case.channels, 3)
    return {
        "coords": coords,
        "feats": torch.randn((coords.shape[0], case.channels), generator=g),
        "grad": torch.randn((coords.shape[0], case.channels), generator=g),
        "weight": conv.weight.detach(),
        "conv": conv,
    }


def _ours(case: Case, t: dict, repeats: int) -> tuple[dict, torch.Tensor]:
    conv: SubmanifoldConv = t["conv"]

    def make(feats: torch.Tensor) -> SparseTensor:
        return SparseTensor(t["coords"], feats, case.spatial_shape, batch_size=1, check=False)

    def build_map() -> None:
        x = make(t["feats"])
        submanifold_map(x.cache, x.level, 3)

    x = make(t["feats"])
    with torch.no_grad():
        reference = conv(x).feats

    def forward() -> None:
        with torch.no_grad():
            conv(x)

    def forward_with_map() -> None:
        with torch.no_grad():
            conv(make(t["feats"]))

    x_grad = make(t["feats"].clone().requires_grad_(True))

    def forward_backward() -> None:
        conv(x_grad).feats.backward(t["grad"])

    result = {
        "map": measure(build_map, repeats),
        "forward": measure(forward, repeats),
        "forward_with_map": measure(forward_with_map, repeats),
        "forward_backward": measure(forward_backward, repeats),
        "threads": torch.get_num_threads(),
        "method": _map_method(case, t),
    }
    return result, reference


def _map_method(case: Case, t: dict) -> str:
    from lartpcnet.sparse.kmap import site_index

    x = SparseTensor(t["coords"], t["feats"], case.spatial_shape, batch_size=1, check=False)
    return site_index(x.cache, x.level, 1).method


def _dense(case: Case, t: dict, repeats: int) -> dict:
    """Dense torch conv (padding 1) on a zero-filled image of ``case.dense_shape``, scaled by volume."""
    conv_fn = F.conv2d if len(case.spatial_shape) == 2 else F.conv3d
    c = case.channels
    weight = t["weight"].permute(2, 1, 0).reshape(c, c, *(3,) * len(case.spatial_shape)).contiguous()
    image = torch.zeros((1, c, *case.dense_shape))
    inside = (t["coords"][:, 1:] < torch.tensor(case.dense_shape)).all(1)
    sub = t["coords"][inside]
    image[(sub[:, 0], slice(None), *sub[:, 1:].unbind(1))] = t["feats"][inside]

    def forward() -> None:
        with torch.no_grad():
            conv_fn(image, weight, padding=1)

    leaf = image.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    grad = torch.randn((1, c, *case.dense_shape))

    def forward_backward() -> None:
        conv_fn(leaf, w, padding=1).backward(grad)

    scale = math.prod(case.spatial_shape) / math.prod(case.dense_shape)
    reps = max(1, repeats // 3)
    out = {"forward": measure(forward, reps), "forward_backward": measure(forward_backward, reps)}
    for entry in ("forward", "forward_backward"):
        for key in ("ms", "min_ms", "peak_mb"):
            if out[entry][key] is not None:
                out[entry][key] *= scale
    out["measured_shape"] = list(case.dense_shape)
    out["scale"] = scale
    return out


def peers_dir(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("LARTPCNET_PEERS", "benchmarks/.peers"))


def _peer(name: str, python: Path, case_file: Path, repeats: int) -> dict:
    runner = Path(__file__).with_name("peer_runner.py")
    threads = PEER_THREADS[name]
    # The same malloc setting as ours (lartpcnet.runtime.configure_malloc), so no engine pays
    # page faults the others do not.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(256 << 20))
    proc = subprocess.run(
        [str(python), str(runner), "--peer", name, "--case", str(case_file), "--threads", str(threads),
         "--repeats", str(repeats)],
        capture_output=True, text=True, env=env, timeout=1800,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{name} failed: {last[:160]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, peers: str | None = None, threads: int = 2, progress: bool = True) -> dict:
    """Runs every case and returns the results (times in ms, memory in MB)."""
    torch.set_num_threads(threads)
    repeats = 3 if quick else 10
    peer_root = peers_dir(peers)
    available = {p: peer_root / p / "bin" / "python" for p in PEERS if (peer_root / p / "bin" / "python").exists()}
    results = []
    from tqdm import tqdm

    bar = tqdm(CASES, desc="bench engine", disable=not progress, file=sys.stderr)
    for case in bar:
        bar.set_postfix_str(case.name)
        t = _case_tensors(case)
        ours, reference = _ours(case, t, repeats)
        entry = {"case": case.name, "label": case.label, "sites": int(t["coords"].shape[0]),
                 "channels": case.channels, "ours": ours, "dense": _dense(case, t, repeats)}
        with tempfile.TemporaryDirectory() as tmp:
            case_file = Path(tmp) / "case.npz"
            np.savez(case_file, coords=t["coords"].numpy(), feats=t["feats"].numpy(), weight=t["weight"].numpy(),
                     grad=t["grad"].numpy(), reference=reference.numpy(),
                     spatial_shape=np.array(case.spatial_shape), batch_size=np.array(1))
            for name in PEERS:
                entry[name] = _peer(name, available[name], case_file, repeats) if name in available else None
        entry["ratios"] = _ratios(entry)
        results.append(entry)
    return {
        "benchmark": "engine",
        "quick": quick,
        "threads": threads,
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "peers_dir": str(peer_root),
        "cases": results,
        "goals": _goals(results),
    }


def _ratios(entry: dict) -> dict:
    """How many times faster ours is (other engine's time / ours)."""
    ours = entry["ours"]
    out = {}
    for other in ("dense", *PEERS):
        res = entry.get(other)
        if not res or "error" in res:
            continue
        for phase in ("forward", "forward_backward", "forward_with_map"):
            if phase in res:
                out[f"{phase}_vs_{other}"] = res[phase]["ms"] / ours[phase]["ms"]
    return out


GOALS = (
    ("forward_vs_spconv", 1.0, "forward >= 1.0x spconv"),
    ("forward_backward_vs_spconv", 0.8, "forward+backward >= 0.8x spconv"),
    ("forward_vs_minkowski", 2.0, "forward >= 2x MinkowskiEngine"),
    ("forward_backward_vs_minkowski", 2.0, "forward+backward >= 2x MinkowskiEngine"),
)


def _goals(results: list[dict]) -> list[dict]:
    goals = []
    for key, floor, text in GOALS:
        values = {r["case"]: r["ratios"].get(key) for r in results}
        measured = [v for v in values.values() if v is not None]
        goals.append({"goal": text, "floor": floor, "per_case": values,
                      "met": bool(measured) and min(measured) >= floor if len(measured) == len(values) else None})
    plane = next(r for r in results if r["case"] == "2d_uboone_plane")
    dense_ratio = plane["ratios"].get("forward_vs_dense")
    goals.append({"goal": "2D forward >= 100x dense", "floor": 100.0, "per_case": {plane["case"]: dense_ratio},
                  "met": dense_ratio is not None and dense_ratio >= 100.0})
    return goals


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(report: dict, command: str) -> str:
    """The results as the Markdown kept in benchmarks/results/engine.md."""
    lines = [
        "# Sparse engine benchmark: one submanifold conv layer",
        "",
        f"Command: `{command}`  ",
        f"CPU: {report['cpu']}; torch {report['torch']}; ours and dense torch on {report['threads']} threads; "
        f"spconv on {PEER_THREADS['spconv']} thread (its CPU scatter races on more), "
        f"MinkowskiEngine on {PEER_THREADS['minkowski']}.  ",
        "Times are medians in ms; memory is the peak RSS increase in MB during the timed calls, over the RSS "
        "after one warm-up call (memory the allocator kept from it is not counted again). "
        "`fwd` reuses a cached kernel map (as every layer after the first does in a network), "
        "`fwd+map` builds it too, `fwd+bwd` is forward and backward with the map cached.",
        "",
        "| case | engine | fwd | fwd+map | fwd+bwd | peak MB | max abs diff vs ours |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["cases"]:
        o = r["ours"]
        lines.append(f"| {r['label']} | **lartpcnet** ({o['method']} map: {_fmt(o['map']['ms'], 2)} ms) | "
                     f"{_fmt(o['forward']['ms'], 2)} | {_fmt(o['forward_with_map']['ms'], 2)} | "
                     f"{_fmt(o['forward_backward']['ms'], 2)} | {_fmt(o['forward_backward']['peak_mb'])} | 0 |")
        d = r["dense"]
        note = "" if d["scale"] == 1 else f" (measured at {'x'.join(map(str, d['measured_shape']))}, ×{d['scale']:.0f})"
        lines.append(f"| | dense torch{note} | {_fmt(d['forward']['ms'])} | — | "
                     f"{_fmt(d['forward_backward']['ms'])} | {_fmt(d['forward_backward']['peak_mb'])} | — |")
        for name in PEERS:
            p = r.get(name)
            if p is None:
                lines.append(f"| | {name} | not installed (benchmarks/peers.sh) | | | | |")
            elif "error" in p:
                lines.append(f"| | {name} | {p['error']} | | | | |")
            else:
                lines.append(f"| | {name} {p['version']} ({p['threads']} thr) | {_fmt(p['forward']['ms'], 2)} | "
                             f"{_fmt(p['forward_with_map']['ms'], 2)} | {_fmt(p['forward_backward']['ms'], 2)} | "
                             f"{_fmt(p['forward_backward']['peak_mb'])} | {p['max_abs_diff']:.1e} |")
    lines += ["", "Speed-up of lartpcnet (other engine's time / ours):", "",
              "| case | vs dense fwd | vs dense fwd+bwd | vs spconv fwd | vs spconv fwd+bwd "
              "| vs ME fwd | vs ME fwd+bwd |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["cases"]:
        q = r["ratios"]
        cols = ["forward_vs_dense", "forward_backward_vs_dense", "forward_vs_spconv",
                "forward_backward_vs_spconv", "forward_vs_minkowski", "forward_backward_vs_minkowski"]
        cells = [_fmt(q.get(c), 2) + ("×" if q.get(c) else "") for c in cols]
        lines.append(f"| {r['case']} | " + " | ".join(cells) + " |")
    lines += ["", "| goal | met | per case |", "|---|---|---|"]
    for g in report["goals"]:
        met = {True: "yes", False: "**no**", None: "not measured"}[g["met"]]
        per = ", ".join(f"{k}: {_fmt(v, 2)}" for k, v in g["per_case"].items())
        lines.append(f"| {g['goal']} | {met} | {per} |")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Bar chart of forward and forward+backward time per engine and case (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = ["ours", "spconv", "minkowski", "dense"]
    names = {"ours": "lartpcnet", "spconv": "spconv (1 thr)", "minkowski": "MinkowskiEngine", "dense": "dense torch"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    width = 0.2
    for ax, phase in zip(axes, ("forward", "forward_backward"), strict=True):
        for i, engine in enumerate(engines):
            values = []
            for r in report["cases"]:
                res = r.get(engine)
                values.append(res[phase]["ms"] if res and "error" not in res else np.nan)
            ax.bar(np.arange(len(report["cases"])) + (i - 1.5) * width, values, width, label=names[engine])
        ax.set_xticks(range(len(report["cases"])), [r["case"] for r in report["cases"]], fontsize=8)
        ax.set_yscale("log")
        ax.set_title(phase.replace("_", " + "))
        ax.set_ylabel("time per layer [ms]")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"one submanifold conv layer, {report['threads']} threads — {report['cpu']}", fontsize=9)
    save_figure(fig, path, dpi=120)


def write(report: dict, out_dir: Path, command: str, stem: str = "engine") -> list[Path]:
    """Writes ``stem``.md, .json and .png atomically into ``out_dir``."""
    return write_report(report, out_dir, stem, command, markdown, plot)

