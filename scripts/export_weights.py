"""Turns a `lartpcnet train` checkpoint into shipped weights: fp16 parameters plus the settings
predict needs, in src/lartpcnet/weights/<file>, with the file's sha256 recorded in
src/lartpcnet/weights/models.json (lartpcnet.checkpoint checks it on every load).

    .venv/bin/python scripts/export_weights.py runs/sparsessnet_uboone/checkpoints/ckpt-5000.pt \
        sparsessnet_uboone
    .venv/bin/python scripts/export_weights.py CHECKPOINT --out FILE.pt   # the fp16 file only

The model card (docs/models.md) and models.json's description and metrics are edited by hand.
"""

import json
import sys
from pathlib import Path

from lartpcnet.checkpoint import load_checkpoint, save_checkpoint, sha256, shipped_models, weights_folder
from lartpcnet.io_utils import atomic_write_text


def export(checkpoint: str | Path, out: str | Path) -> dict:
    """Writes the fp16 weights of ``checkpoint`` to ``out``; returns what was written."""
    state = load_checkpoint(checkpoint)
    model = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    # what prediction needs (plane, ADC window, scales); the training data are in docs/models.md
    data = {k: v for k, v in state["config"]["data"].items() if k not in ("train", "validation", "workers")}
    shipped = {"model": model, "network": state["network"], "model_name": state["model_name"],
               "config": {"data": data, "name": state["config"]["name"]}, "iteration": state.get("iteration")}
    save_checkpoint(out, shipped)
    return shipped


def main(checkpoint: str, name: str) -> None:
    entry = shipped_models().get(name, {"file": f"{name}.pt"})
    out = weights_folder() / entry["file"]
    shipped = export(checkpoint, out)
    models = {**shipped_models(), name: {**entry, "sha256": sha256(out)}}
    models[name]["training"] = {**entry.get("training", {}), "iterations": shipped["iteration"]}
    atomic_write_text(weights_folder() / "models.json", json.dumps(models, indent=1) + "\n")
    print(f"wrote {out} ({sum(v.numel() for v in shipped['model'].values())} values, fp16) and its sha256")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--out":  # export only, to a file of your choice
        export(sys.argv[1], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
