"""One registry: model name -> (network, loss, task), each built from validated settings.

A training config names a model (``model.name``); its ``model.network`` and ``model.loss``
sections are checked against the model's config classes when the config is read, so a typo
names its field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel
from torch import nn

from lartpcnet.errors import UserError
from lartpcnet.models.cosmictagger import CosmicTagger, CosmicTaggerConfig
from lartpcnet.models.losses import SegmentationLoss, SegmentationLossConfig, TaggingLoss, TaggingLossConfig
from lartpcnet.models.maskrcnn import MaskRCNN, MaskRCNNConfig, MaskRCNNLoss, MaskRCNNLossConfig
from lartpcnet.models.uresnet import UResNet, UResNetConfig
from lartpcnet.tasks import INSTANCE, SEGMENTATION, TAGGING, Task


@dataclass(frozen=True)
class ModelSpec:
    description: str
    network: Callable[..., nn.Module]
    network_config: type[BaseModel]
    loss: Callable[..., nn.Module]
    loss_config: type[BaseModel]
    task: Task  # what a batch holds, how it is scored and written (lartpcnet.tasks)
    network_defaults: dict | None = None  # this model's defaults over network_config's

    def check(self, network: dict, loss: dict) -> None:
        """Validates ``model.network`` and ``model.loss`` (a pydantic ValidationError names the field)."""
        self.network_config.model_validate({**(self.network_defaults or {}), **network})
        self.loss_config.model_validate(loss)


MODELS: dict[str, ModelSpec] = {
    "uresnet": ModelSpec("sparse U-ResNet (SparseSSNet, Domine & Terao), 2D or 3D",
                         lambda **kw: UResNet(UResNetConfig(**kw), sparse=True), UResNetConfig,
                         SegmentationLoss, SegmentationLossConfig, SEGMENTATION),
    "uresnet_dense": ModelSpec("dense U-ResNet of the same architecture (MicroBooNE 2019 baseline)",
                               lambda **kw: UResNet(UResNetConfig(**{"growth": "doubling", **kw}), sparse=False),
                               UResNetConfig, SegmentationLoss, SegmentationLossConfig, SEGMENTATION,
                               {"growth": "doubling"}),
    "cosmictagger": ModelSpec("multi-plane cosmic/neutrino tagger (SBND cosmic paper), sparse",
                              lambda **kw: CosmicTagger(CosmicTaggerConfig(**kw), sparse=True), CosmicTaggerConfig,
                              TaggingLoss, TaggingLossConfig, TAGGING),
    "cosmictagger_dense": ModelSpec("the same tagger with dense torch convolutions, as in the paper",
                                    lambda **kw: CosmicTagger(CosmicTaggerConfig(**kw), sparse=False),
                                    CosmicTaggerConfig, TaggingLoss, TaggingLossConfig, TAGGING),
    "smaskrcnn": ModelSpec("sparse Mask-RCNN: cosmic-ray muon and neutrino instance clustering (sMask-RCNN paper)",
                           lambda **kw: MaskRCNN(MaskRCNNConfig(**{**kw, "sparse": True})), MaskRCNNConfig,
                           MaskRCNNLoss, MaskRCNNLossConfig, INSTANCE),
    "smaskrcnn_dense": ModelSpec("the same Mask-RCNN with a dense backbone (the timing twin)",
                                 lambda **kw: MaskRCNN(MaskRCNNConfig(**{**kw, "sparse": False})), MaskRCNNConfig,
                                 MaskRCNNLoss, MaskRCNNLossConfig, INSTANCE, {"sparse": False}),
}


def spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build(name: str, network: dict | None = None, loss: dict | None = None) -> tuple[nn.Module, nn.Module]:
    """The network and loss registered as ``name``, with settings overriding the defaults."""
    entry = spec(name)
    return entry.network(**(network or {})), entry.loss(**(loss or {}))
