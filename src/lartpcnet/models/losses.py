"""Segmentation loss and its pixel-weighting schemes.

- ``none``: cross-entropy averaged over the labelled sites.
- ``sparsessnet`` (SparseSSNet note, section 4): the sum of a cluster weight, inversely
  proportional to the size of the site's particle cluster (0.02 / size, kept within
  [2e-4, 2e-2]), and a vertex weight of 0.02 for sites within 3 pixels (a 7x7 box) of a site
  with another label.
- ``class_balanced``: each site weighs 1 / (sites of its class in its image)^``balance_power``
  (1: fully balanced; 0.5 leans less on rare classes, so fewer ambiguous sites go to them).
- ``pl`` (MicroBooNE 2019, section IV.B), for dense images with a background class: four pixel
  categories, each pixel weighing 1 / (pixels in its category): background within 2 pixels of
  charge, the other background, charge within 4 pixels of the vertex, and one category per
  particle instance for the rest of the charge.

The weighted loss is sum(w * CE) / sum(w) over an image batch; ``focal_gamma > 0`` multiplies
each site's cross-entropy by (1 - p_true)^gamma (focal loss).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lartpcnet.data.batching import IGNORE
from lartpcnet.sparse import SparseTensor
from lartpcnet.sparse.kmap import submanifold_map

Weighting = Literal["none", "sparsessnet", "class_balanced", "pl"]
CLUSTER_SCALE, CLUSTER_MIN, CLUSTER_MAX = 0.02, 2e-4, 2e-2
VERTEX_WEIGHT, VERTEX_RADIUS = 0.02, 3


def cluster_weights(batch_index: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
    """0.02 / (sites of the same particle in the same image), within [2e-4, 2e-2]."""
    top = int(instance.max()) if instance.numel() else 0
    key = batch_index * (top + 2) + (instance + 1)
    _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    return (CLUSTER_SCALE / counts[inverse].float()).clamp(CLUSTER_MIN, CLUSTER_MAX)


def vertex_weights(sites: SparseTensor, labels: torch.Tensor) -> torch.Tensor:
    """0.02 where another label sits within 3 pixels (the 7x7 box, or 7^3 in 3D), else 0."""
    probe = SparseTensor(sites.coords, labels[:, None].float(), sites.spatial_shape, sites.batch_size, check=False)
    kmap = submanifold_map(probe.cache, probe.level, 2 * VERTEX_RADIUS + 1)
    boundary = torch.zeros(labels.shape[0], dtype=torch.bool, device=labels.device)
    for src, dst in zip(kmap.in_idx, kmap.out_idx, strict=True):
        if src is not None and src.numel():
            differs = labels[src] != labels[dst]
            boundary[dst[differs]] = True
    return boundary.float() * VERTEX_WEIGHT


def sparsessnet_weights(sites: SparseTensor, labels: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
    return cluster_weights(sites.coords[:, 0].long(), instance) + vertex_weights(sites, labels)


def class_balanced_weights(batch_index: torch.Tensor, labels: torch.Tensor, classes: int,
                           power: float = 1.0) -> torch.Tensor:
    key = batch_index * (classes + 1) + (labels + 1)
    _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    return counts[inverse].float() ** -power


def pl_weights(labels: torch.Tensor, instance: torch.Tensor, vertex: torch.Tensor) -> torch.Tensor:
    """MicroBooNE per-pixel-loss weights for dense (B, H, W) images with background label 0.

    ``instance`` is (B, H, W) with -1 off particles; ``vertex`` is (B, 2) pixel (row, col), or
    -1 where an image has no vertex (then no pixel is in the vertex category).
    """
    batch, height, width = labels.shape
    charge = labels > 0
    near_charge = F.max_pool2d(charge[:, None].float(), 5, stride=1, padding=2)[:, 0] > 0
    rows = torch.arange(height, device=labels.device)[None, :, None]
    cols = torch.arange(width, device=labels.device)[None, None, :]
    near_vertex = ((rows - vertex[:, 0, None, None]).abs() <= 4) & ((cols - vertex[:, 1, None, None]).abs() <= 4)
    near_vertex &= (vertex[:, 0] >= 0)[:, None, None]
    # category per pixel: 0 background near charge, 1 other background, 2 charge near the vertex,
    # 3 + instance for the rest of the charge
    category = torch.where(near_charge, 0, 1)
    category = torch.where(charge & near_vertex, 2, category)
    category = torch.where(charge & ~near_vertex, 3 + instance.clamp(min=0), category)
    key = torch.arange(batch, device=labels.device)[:, None, None] * (int(category.max()) + 1) + category
    _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse].float().reshape(labels.shape)


class SegmentationLossConfig(BaseModel):
    """``model.loss`` of a segmentation network."""

    model_config = ConfigDict(extra="forbid")
    weighting: Weighting = "none"
    focal_gamma: float = Field(0.0, ge=0)
    classes: int = Field(5, ge=2)
    balance_power: float = Field(1.0, gt=0, le=1)  # class_balanced: 1 fully balanced, 0.5 leans less on rare classes


class SegmentationLoss(nn.Module):
    """Weighted (focal) cross-entropy over labelled sites; see the module docstring."""

    def __init__(self, weighting: Weighting = "none", focal_gamma: float = 0.0, classes: int = 5,
                 balance_power: float = 1.0) -> None:
        super().__init__()
        c = SegmentationLossConfig(weighting=weighting, focal_gamma=focal_gamma, classes=classes,
                                   balance_power=balance_power)
        self.weighting, self.focal_gamma, self.classes = c.weighting, c.focal_gamma, c.classes
        self.balance_power = c.balance_power

    def site_weights(self, sites: SparseTensor, labels: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
        if self.weighting == "sparsessnet":
            return sparsessnet_weights(sites, labels, instance)
        if self.weighting == "class_balanced":
            return class_balanced_weights(sites.coords[:, 0].long(), labels, self.classes, self.balance_power)
        if self.weighting == "pl":
            raise ValueError("pl weighting needs dense images with background pixels; use weighted() directly")
        return torch.ones(labels.shape[0], device=labels.device)

    def weighted(self, logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum(w * CE) / sum(w) over sites with a label (logits (N, C), labels (N,))."""
        keep = labels != IGNORE
        if not keep.any():
            return logits.sum() * 0.0  # an empty batch: zero loss that still has a graph
        # fp32 loss whatever precision the network ran in (bf16/fp16 autocast)
        logits, labels, weights = logits[keep].float(), labels[keep], weights[keep].float()
        ce = F.cross_entropy(logits, labels, reduction="none")
        if self.focal_gamma > 0:
            p_true = torch.exp(-ce)
            ce = (1 - p_true) ** self.focal_gamma * ce
        return (weights * ce).sum() / weights.sum().clamp(min=1e-12)

    def forward(self, logits: SparseTensor, labels: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
        weights = self.site_weights(logits, labels, instance)
        return self.weighted(logits.feats, labels, weights)

    def dense(self, logits: torch.Tensor, labels: torch.Tensor, instance: torch.Tensor,
              vertex: torch.Tensor) -> torch.Tensor:
        """The loss of a dense network: logits (B, C, H, W) over every pixel, background included;
        per-image sums averaged over the batch, as in MicroBooNE 2019."""
        if self.weighting == "pl":
            weights = pl_weights(labels, instance, vertex)
        elif self.weighting == "none":
            weights = torch.ones(labels.shape, device=labels.device)
        else:
            raise ValueError(f"{self.weighting} weighting is for sparse networks; use pl or none for dense ones")
        flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1]).float()
        ce = F.cross_entropy(flat_logits, labels.reshape(-1), reduction="none")
        if self.focal_gamma > 0:
            ce = (1 - torch.exp(-ce)) ** self.focal_gamma * ce
        per_image = (weights.reshape(-1).float() * ce).reshape(labels.shape[0], -1).sum(1)
        return per_image.mean()


TAGGER_BOOST = (1.0, 1.5, 10.0)  # background, cosmic, neutrino (SBND cosmic paper, section 7)


class TaggingLossConfig(BaseModel):
    """``model.loss`` of the cosmic tagger."""

    model_config = ConfigDict(extra="forbid")
    weighting: Literal["boost", "balanced", "none"] = "boost"
    focal_gamma: float = Field(0.0, ge=0)


class TaggingLoss(nn.Module):
    """3-class (background/cosmic/neutrino) cross-entropy of the cosmic tagger.

    - ``boost`` (the paper's): pixel weights 1 / 1.5 / 10 by true class, loss averaged over pixels;
    - ``balanced`` (the paper's "full balance"): in each plane image every class's weights sum to
      1/3 of the image's, so w_bg N_bg = w_cosmic N_cosmic = w_nu N_nu;
    - ``none``: plain average; ``focal_gamma > 0`` adds the focal factor (1 - p_true)^gamma.

    Sparse networks see only the active sites: inactive pixels are background by construction, the
    network cannot label them otherwise, and they are left out of the loss (the metrics still
    count them). Dense networks average over every pixel as in the paper.
    """

    def __init__(self, weighting: Literal["boost", "balanced", "none"] = "boost", focal_gamma: float = 0.0) -> None:
        super().__init__()
        c = TaggingLossConfig(weighting=weighting, focal_gamma=focal_gamma)
        self.weighting, self.focal_gamma = c.weighting, c.focal_gamma

    def pixel_weights(self, labels: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Weights of pixels with true class ``labels`` belonging to images ``image`` (both flat)."""
        if self.weighting == "boost":
            return torch.tensor(TAGGER_BOOST, device=labels.device)[labels]
        if self.weighting == "balanced":  # 1 / (3 N_class) within each image
            _, inverse, counts = torch.unique(image * 3 + labels, return_inverse=True, return_counts=True)
            return 1.0 / (3.0 * counts[inverse].float())
        return torch.ones(labels.shape, device=labels.device)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """``logits`` (N, 3) and ``labels`` (N,) per pixel or site, ``image`` (N,) its image index."""
        if logits.shape[0] == 0:
            return logits.sum() * 0.0
        ce = F.cross_entropy(logits.float(), labels, reduction="none")
        if self.focal_gamma > 0:
            ce = (1 - torch.exp(-ce)) ** self.focal_gamma * ce
        weights = self.pixel_weights(labels, image)
        if self.weighting == "balanced":  # per image: sum of w * CE (weights sum to 1), then mean over images
            images = int(image.max()) + 1
            return torch.zeros(images, device=ce.device).index_add_(0, image, weights * ce).mean()
        return (weights * ce).mean()
