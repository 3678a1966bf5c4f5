"""``lartpcnet bench cosmictagger``: full-resolution SBND event inference on CPU, sparse vs dense.

One simulated ``sbnd_cosmic`` event, three 1280 x 2048 planes (and the paper's 50 % resolution,
640 x 1024), through the multi-plane tagger of the paper's Table 1 with random weights (speed
does not depend on training), both implementations side by side: median wall time and peak RSS
increase, each case in its own process so one case's allocations do not hide another's.
"""

from __future__ import annotations

import json
import subprocess
import sys

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name

CASE = """
import json, torch
from lartpcnet.runtime import configure_runtime
configure_runtime()
torch.set_num_threads({threads})
from lartpcnet.bench.peer_runner import measure
from lartpcnet.data.tagging import tagger_batch
from lartpcnet.models.cosmictagger import CosmicTagger
from lartpcnet.sim.samples import generate_event, load_sample
from lartpcnet.sparse import fold_batchnorm
from lartpcnet.tasks.tagging import tagging_item
torch.manual_seed(0)
net = fold_batchnorm(CosmicTagger(sparse={sparse}))
item = tagging_item(generate_event(load_sample("sbnd_cosmic"), 0, 0), {factor})
batch = tagger_batch([item.planes], sparse={sparse}, pad_to=net.config.stride)
def run():
    with torch.no_grad():
        net(batch.tensor if {sparse} else batch.dense)
result = measure(run, {repeats}, memory_from_start=True)
print(json.dumps({{"pixels": [len(p) for p in item.planes], "shape": list(item.planes[0].shape), **result}}))
"""


def _case(sparse: bool, factor: int, threads: int, repeats: int) -> dict:
    code = CASE.format(sparse=sparse, factor=factor, threads=threads, repeats=repeats)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, threads: int = 2, progress: bool = True) -> dict:
    from tqdm import tqdm

    repeats = 2 if quick else 3
    rows = []
    cases = [(factor, sparse) for factor in (1, 2) for sparse in (True, False)]
    for factor, sparse in tqdm(cases, desc="bench cosmictagger", disable=not progress, file=sys.stderr):
        rows.append({"resolution": "full" if factor == 1 else "50%", "sparse": sparse,
                     **_case(sparse, factor, threads, 1 if not sparse else repeats)})
    return {"benchmark": "cosmictagger", "cpu": _cpu_name(), "threads": threads, "quick": quick, "cases": rows}


def markdown(report: dict, command: str) -> str:
    lines = ["# Cosmic tagger inference on CPU, sparse vs dense", "", f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; {report['threads']} threads; the SBND paper's Table 1 network (random weights, "
             "batch norms folded), one simulated `sbnd_cosmic` event, three planes; each case in a fresh process. "
             "Time: median ms (dense: one call); memory: peak RSS increase in MB.", "",
             "| resolution | planes | active pixels | sparse ms | sparse MB | dense ms | dense MB | dense/sparse |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for resolution in ("full", "50%"):
        s = next(r for r in report["cases"] if r["resolution"] == resolution and r["sparse"])
        d = next(r for r in report["cases"] if r["resolution"] == resolution and not r["sparse"])
        if "error" in s or "error" in d:
            lines.append(f"| {resolution} | | | {s.get('error', '')} | | {d.get('error', '')} | | |")
            continue
        lines.append(f"| {resolution} | 3 × {s['shape'][0]} × {s['shape'][1]} | "
                     f"{', '.join(map(str, s['pixels']))} | {s['ms']:.0f} | {s['peak_mb'] or 0:.0f} | {d['ms']:.0f} | "
                     f"{d['peak_mb'] or 0:.0f} | {d['ms'] / s['ms']:.1f}× |")
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir, command: str) -> list:
    return write_report(report, out_dir, "cosmictagger", command, markdown)
