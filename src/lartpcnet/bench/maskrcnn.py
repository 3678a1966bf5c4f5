"""``lartpcnet bench maskrcnn``: sMask-RCNN on one full MicroBooNE collection plane on CPU, the
sparse backbone against its dense twin, in one run.

One simulated ``uboone_smrcnn_nue`` event (seed 12345), its 1008 x 3456 Y plane, through the
paper's network (``MaskRCNNConfig()``'s defaults, ResNet-50 C4) and the lighter CPU configuration
of ``configs/smaskrcnn_uboone.yaml``, each sparse and dense, timing the backbone alone and the full
detection (backbone, RPN, RoI heads, masks pasted onto the sites). Random weights with batch
norms folded, as ``predict`` runs it (the sparse cases also with ``--precision bf16``): the
backbone's time does not depend on training; the RoI stage's does a little (it runs on the
proposals that survive NMS, at most the config's post-NMS count). Each case in its own process,
so one case's allocations do not hide another's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name

CONFIG = Path(__file__).parents[3] / "configs" / "smaskrcnn_uboone.yaml"

CASE = """
import json, torch
from lartpcnet.runtime import configure_runtime
configure_runtime()
torch.set_num_threads({threads})
from lartpcnet.bench.peer_runner import measure
from lartpcnet.models.maskrcnn import MaskRCNN, MaskRCNNConfig, image_tensor
from lartpcnet.sim.samples import generate_event, load_sample
from lartpcnet.sparse import fold_batchnorm
torch.manual_seed(0)
net = fold_batchnorm(MaskRCNN(MaskRCNNConfig(**{overrides}), sparse={sparse})).eval()
image = generate_event(load_sample("uboone_smrcnn_nue"), 12345, 0).planes[2]
tensor, _ = image_tensor([image], net.config.threshold, net.config.feature_scale)
x = tensor if {sparse} else tensor.to_dense()
def run():
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled={bf16}):
        if {backbone_only}:
            net.features(x)
        else:
            net(x)
result = measure(run, {repeats}, memory_from_start=True)
print(json.dumps({{"pixels": int(tensor.coords.shape[0]), "shape": list(image.shape), **result}}))
"""


def network_settings(name: str) -> dict:
    """The network fields of ``name``: "paper" (the model's defaults) or "light" (the shipped config)."""
    if name == "paper":
        return {}
    import yaml

    from lartpcnet.errors import UserError

    if not CONFIG.exists():
        raise UserError(f"bench maskrcnn reads the light configuration from {CONFIG}: run it from a source checkout")

    return yaml.safe_load(CONFIG.read_text())["model"]["network"]


def _case(network: str, sparse: bool, backbone_only: bool, threads: int, repeats: int, bf16: bool = False) -> dict:
    code = CASE.format(overrides=repr(network_settings(network)), sparse=sparse, backbone_only=backbone_only,
                       threads=threads, repeats=repeats, bf16=bf16)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, threads: int = 2, progress: bool = True) -> dict:
    from tqdm import tqdm

    networks = ("light",) if quick else ("paper", "light")
    cases = [(n, stage, sparse) for n in networks for stage in ("backbone", "detection") for sparse in (True, False)]
    rows = []
    for network, stage, sparse in tqdm(cases, desc="bench maskrcnn", disable=not progress, file=sys.stderr):
        repeats = 3 if sparse else 1  # a dense pass of the paper's network takes tens of seconds
        rows.append({"network": network, "stage": stage, "sparse": sparse,
                     **_case(network, sparse, stage == "backbone", threads, repeats)})
        if sparse:  # --precision bf16, as predict runs it
            rows[-1]["bf16"] = _case(network, sparse, stage == "backbone", threads, repeats, bf16=True)
    return {"benchmark": "maskrcnn", "cpu": _cpu_name(), "threads": threads, "quick": quick, "cases": rows}


def markdown(report: dict, command: str) -> str:
    lines = ["# sMask-RCNN on one full MicroBooNE collection plane on CPU, sparse vs dense twin", "",
             f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; {report['threads']} threads; one simulated `uboone_smrcnn_nue` Y plane "
             "(seed 12345); random weights, batch norms folded; each case in a fresh process. Time: median ms "
             "(dense: one call); memory: peak RSS increase in MB. Paper: 0.176 s sparse vs 3.17 s dense backbone "
             "(18×), 5.79 s full detection (i9-9820X).", "",
             "| network | stage | active pixels | sparse ms | sparse MB | sparse bf16 ms | dense ms | dense MB | "
             "dense/sparse |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for network in dict.fromkeys(r["network"] for r in report["cases"]):
        for stage in ("backbone", "detection"):
            s = next(r for r in report["cases"] if (r["network"], r["stage"], r["sparse"]) == (network, stage, True))
            d = next(r for r in report["cases"] if (r["network"], r["stage"], r["sparse"]) == (network, stage, False))
            name = "paper (ResNet-50 C4)" if network == "paper" else "light (configs/smaskrcnn_uboone.yaml)"
            if "error" in s or "error" in d:
                lines.append(f"| {name} | {stage} | | {s.get('error', '')} | | | {d.get('error', '')} | | |")
                continue
            bf16 = s.get("bf16") or {}
            low = f"{bf16['ms']:.0f}" if "ms" in bf16 else bf16.get("error", "—")
            lines.append(f"| {name} | {stage} | {s['pixels']} | {s['ms']:.0f} | {s['peak_mb'] or 0:.0f} | {low} | "
                         f"{d['ms']:.0f} | {d['peak_mb'] or 0:.0f} | {d['ms'] / s['ms']:.1f}× |")
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir, command: str, stem: str = "maskrcnn") -> list:
    return write_report(report, out_dir, stem, command, markdown)
