"""Turns a `lartpcnet train` checkpoint into shipped weights: fp16 parameters plus the settings
predict needs, in src/lartpcnet/weights/<file> (see lartpcnet.inference.SHIPPED).

    .venv/bin/python scripts/export_weights.py runs/sparsessnet_uboone/checkpoints/ckpt-5000.pt \
        src/lartpcnet/weights/sparsessnet_uboone_plane2.pt
"""

import sys

import torch

from lartpcnet.io_utils import atomic_path


def main(checkpoint: str, out: str) -> None:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = {k: (v.half() if v.is_floating_point() else v) for k, v in state["model"].items()}
    # what prediction needs (plane, ADC window, scales); the training data are in docs/models.md
    data = {k: v for k, v in state["config"]["data"].items() if k not in ("train", "validation", "workers")}
    shipped = {"model": model, "network": state["network"], "model_name": state["model_name"],
               "config": {"data": data, "name": state["config"]["name"]}, "iteration": state["iteration"]}
    with atomic_path(out) as tmp:
        torch.save(shipped, tmp)
    print(f"wrote {out} ({sum(v.numel() for v in model.values())} values, fp16)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
