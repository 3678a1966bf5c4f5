"""One registry: model name -> (network, loss), each built from validated settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from lartpcnet.models.losses import SegmentationLoss
from lartpcnet.models.uresnet import UResNet, UResNetConfig


@dataclass(frozen=True)
class ModelSpec:
    description: str
    network: Callable[..., nn.Module]
    loss: Callable[..., nn.Module]


MODELS: dict[str, ModelSpec] = {
    "uresnet": ModelSpec("sparse U-ResNet (SparseSSNet, Domine & Terao), 2D or 3D",
                         lambda **kw: UResNet(UResNetConfig(**kw), sparse=True), SegmentationLoss),
    "uresnet_dense": ModelSpec("dense U-ResNet of the same architecture (MicroBooNE 2019 baseline)",
                               lambda **kw: UResNet(UResNetConfig(**{"growth": "doubling", **kw}), sparse=False),
                               SegmentationLoss),
}


def build(name: str, network: dict | None = None, loss: dict | None = None) -> tuple[nn.Module, nn.Module]:
    """The network and loss registered as ``name``, with settings overriding the defaults."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    return spec.network(**(network or {})), spec.loss(**(loss or {}))
