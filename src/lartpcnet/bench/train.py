"""``lartpcnet bench train``: training throughput of every shipped network on CPU, with a profile.

Each network trains as its config says (``configs/NAME.yaml``: network, loss, optimizer, batch
size, mixed precision), through the trainer's own code path (``task.loss``, backward, optimizer
step), on batches simulated before the clock starts so that simulation does not share the cores
being measured. Every step gets a different batch, so nothing cached per batch (kernel maps)
flatters the numbers. Each network runs in its own process: its peak memory is its own.

Beside seconds per iteration and peak RSS, a ``torch.profiler`` pass over a few steps gives the
ops that take the largest share of a step (self CPU time), and the share of the engine's own
stages (kernel maps, gathers, matrix products, scatters, batch norm).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name

# case -> (config, the settings its training runs with, what the goal table says of it); the
# "+bf16" case is SparseSSNet with the mixed precision the other networks train in
NETWORKS: dict[str, tuple[str, dict, str]] = {
    "sparsessnet_uboone": ("configs/sparsessnet_uboone.yaml", {}, "≥ 4 it/s (stretch 6)"),
    "sparsessnet_uboone+bf16": ("configs/sparsessnet_uboone.yaml", {"amp": True}, "(same goal)"),
    "cosmictagger_sbnd": ("configs/cosmictagger_sbnd.yaml", {"batch_size": 4, "amp": True},
                          "≤ 1.5 s/it (stretch 1)"),
    "uresnet3d_pilarnet": ("configs/uresnet3d_pilarnet.yaml", {"amp": True}, "3× today"),
    "smaskrcnn_uboone": ("configs/smaskrcnn_uboone.yaml", {}, ""),
}
TOP_OPS = 12


def _repo_file(path: str) -> Path:
    here = Path(path)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[3] / path


def case(name: str, steps: int, threads: int, profile_steps: int, overrides: dict | None = None) -> dict:
    """Trains ``name`` for ``steps`` timed steps (after one warm-up) in this process; returns its row."""
    import torch

    from lartpcnet.bench.peer_runner import measure
    from lartpcnet.data.source import EventSource
    from lartpcnet.models.registry import build, spec
    from lartpcnet.runtime import configure_runtime
    from lartpcnet.train.config import load_config
    from lartpcnet.train.trainer import _optimiser

    configure_runtime(training=True)
    torch.set_num_threads(threads)
    path, settings, _ = NETWORKS[name]
    settings = {**settings, **(overrides or {})}
    config = load_config(_repo_file(path), [f"{k}={json.dumps(v)}" for k, v in settings.items()])
    torch.manual_seed(0)
    net, loss_fn = build(config.model.name, config.model.network, config.model.loss)
    task = spec(config.model.name).task
    optimiser = _optimiser(config, net)
    device = torch.device("cpu")
    batches_needed = 1 + steps + profile_steps
    source = config.data.train.model_copy(update={"seed": 777})  # events no training run uses
    with EventSource(source, config.data.relabel_secondaries) as events:
        batches = [[task.item(events.event(i), config.data, events.where, i)
                    for i in range(b * config.batch_size, (b + 1) * config.batch_size)]
                   for b in range(batches_needed)]

    def step(items) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.amp):
            loss = task.loss(net, net, loss_fn, items, config.data, device)
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    net.train()
    timed = iter(batches[: 1 + steps])  # the warm-up step, then the timed ones, each its own batch
    result = measure(lambda: step(next(timed)), steps, warmup=1, memory_from_start=True)
    row = {"network": name, "batch": config.batch_size, "amp": config.amp, "threads": threads, "steps": steps,
           "s_per_it": result["ms"] / 1e3, "min_s_per_it": result["min_ms"] / 1e3, "peak_mb": result["peak_mb"],
           "sites_per_batch": _sites(batches[1:1 + steps])}
    if profile_steps:
        row["profile"] = _profile(step, batches[1 + steps:])
    return row


def _sites(batches) -> float:
    """Mean active input sites per batch (pixels or voxels of every image in it)."""
    import numpy as np

    def count(item) -> int:
        for attr in ("planes", "images"):
            if hasattr(item, attr):
                return sum(count(p) for p in getattr(item, attr))
        if hasattr(item, "image"):
            return count(item.image)
        return len(item) if hasattr(item, "__len__") else 0

    return float(np.mean([sum(count(i) for i in b) for b in batches]))


# the engine's stages, by the ops they run (self CPU time of each op counted once)
STAGES = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::_sparse_addmm", "aten::addmm_"),
    "gathers": ("aten::index_select", "aten::index", "aten::gather"),
    "scatters": ("aten::index_add_", "aten::scatter_add_", "aten::index_put_", "aten::_index_put_impl_"),
    "kernel maps": ("aten::searchsorted", "aten::sort", "aten::unique", "aten::_unique2", "aten::nonzero",
                    "aten::bincount", "aten::argsort", "aten::cumsum"),
    "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::batch_norm",
                   "aten::_batch_norm_impl_index", "aten::var_mean", "aten::mean"),
    "dense convs": ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
                    "aten::conv2d", "aten::conv3d", "aten::convolution"),
}


def _profile(step, batches) -> dict:
    import time

    from torch.profiler import ProfilerActivity, profile

    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for items in batches:
            step(items)
    seconds = (time.perf_counter() - started) / len(batches)
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages) or 1.0
    ops = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)
    top = [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count // len(batches),
            "ms_per_step": e.self_cpu_time_total / 1e3 / len(batches)} for e in ops[:TOP_OPS]]
    stages = {stage: sum(e.self_cpu_time_total for e in averages if e.key in keys) / total
              for stage, keys in STAGES.items()}
    stages["everything else"] = max(0.0, 1.0 - sum(stages.values()))
    return {"steps": len(batches), "s_per_it": seconds, "top": top, "stages": stages}


def _run_case(name: str, steps: int, threads: int, profile_steps: int) -> dict:
    code = ("import json, sys; from lartpcnet.bench.train import case; "
            f"print(json.dumps(case({name!r}, {steps}, {threads}, {profile_steps})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=7200)
    if proc.returncode != 0:
        return {"network": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, threads: int = 2, progress: bool = True, networks: list[str] | None = None) -> dict:
    from tqdm import tqdm

    steps, profile_steps = (3, 1) if quick else (8, 2)
    rows = []
    for name in tqdm(networks or list(NETWORKS), desc="bench train", disable=not progress, file=sys.stderr):
        rows.append(_run_case(name, steps, threads, profile_steps))
    return {"benchmark": "train", "cpu": _cpu_name(), "threads": threads, "quick": quick, "cases": rows}


def _rate(row: dict) -> str:
    s = row["s_per_it"]
    return f"{1 / s:.2f} it/s" if s < 1 else f"{s:.2f} s/it"


def markdown(report: dict, command: str) -> str:
    import torch

    lines = ["# Training throughput on CPU", "", f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; torch {torch.__version__}; {report['threads']} threads. Each network trains "
             "as its config says (batch size, optimizer, bf16 autocast where `amp`), one process per network, on "
             "batches simulated before timing (a new batch every step). Time: median over the steps; memory: peak "
             "RSS increase over the process before its first step.", "",
             "| network | batch | amp | sites per batch | time per step | peak MB | goal |",
             "|---|---:|---|---:|---:|---:|---|"]
    for row in report["cases"]:
        if "error" in row:
            lines.append(f"| {row['network']} | | | | failed: {row['error']} | | |")
            continue
        goal = NETWORKS.get(row["network"], ("", {}, ""))[2]
        lines.append(f"| {row['network']} | {row['batch']} | {'bf16' if row['amp'] else 'fp32'} | "
                     f"{row['sites_per_batch']:.0f} | {_rate(row)} | {row['peak_mb'] or 0:.0f} | {goal} |")
    for row in report["cases"]:
        prof = row.get("profile")
        if not prof:
            continue
        lines += ["", f"## {row['network']}: where a step goes ({prof['steps']} profiled steps, self CPU time)", "",
                  f"Under the profiler a step took {prof['s_per_it']:.2f} s ({_rate(row)} without): the profiler's "
                  "own cost, which falls mostly on the backward pass, is in these shares.", "",
                  "| stage | share |", "|---|---:|"]
        lines += [f"| {stage} | {100 * share:.1f} % |" for stage, share in prof["stages"].items()]
        lines += ["", "| op | share | calls per step | ms per step |", "|---|---:|---:|---:|"]
        lines += [f"| `{t['op']}` | {100 * t['share']:.1f} % | {t['calls']} | {t['ms_per_step']:.1f} |"
                  for t in prof["top"]]
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir, command: str, stem: str = "train") -> list:
    return write_report(report, Path(out_dir), stem, command, markdown)
