"""One registry: model name -> (network, loss, task), each built from validated settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from lartpcnet.models.cosmictagger import CosmicTagger, CosmicTaggerConfig
from lartpcnet.models.losses import SegmentationLoss, TaggingLoss
from lartpcnet.models.uresnet import UResNet, UResNetConfig


@dataclass(frozen=True)
class ModelSpec:
    description: str
    network: Callable[..., nn.Module]
    loss: Callable[..., nn.Module]
    task: str = "segmentation"  # what a batch holds and how it is scored (lartpcnet.train.tasks)


MODELS: dict[str, ModelSpec] = {
    "uresnet": ModelSpec("sparse U-ResNet (SparseSSNet, Domine & Terao), 2D or 3D",
                         lambda **kw: UResNet(UResNetConfig(**kw), sparse=True), SegmentationLoss),
    "uresnet_dense": ModelSpec("dense U-ResNet of the same architecture (MicroBooNE 2019 baseline)",
                               lambda **kw: UResNet(UResNetConfig(**{"growth": "doubling", **kw}), sparse=False),
                               SegmentationLoss),
    "cosmictagger": ModelSpec("multi-plane cosmic/neutrino tagger (SBND cosmic paper), sparse",
                              lambda **kw: CosmicTagger(CosmicTaggerConfig(**kw), sparse=True), TaggingLoss,
                              "tagging"),
    "cosmictagger_dense": ModelSpec("the same tagger with dense torch convolutions, as in the paper",
                                    lambda **kw: CosmicTagger(CosmicTaggerConfig(**kw), sparse=False), TaggingLoss,
                                    "tagging"),
}


def build(name: str, network: dict | None = None, loss: dict | None = None) -> tuple[nn.Module, nn.Module]:
    """The network and loss registered as ``name``, with settings overriding the defaults."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    spec = MODELS[name]
    return spec.network(**(network or {})), spec.loss(**(loss or {}))
