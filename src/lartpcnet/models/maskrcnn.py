"""sMask-RCNN (MicroBooNE, arXiv:2201.05705): Mask R-CNN whose ResNet-50 C4 backbone is sparse.

::

    Y-plane pixels >= 10 ADC (sparse, no upper cut)
      -> ResNet-50 conv1-conv4 (sparse): stem 7x7/2 conv, 3x3/2 max-pool, res2 3 x (64, 256),
         res3 4 x (128, 512), res4 6 x (256, 1024)        -> dense map at stride 16, 1024 channels
      -> RPN: 3x3 conv + ReLU, 1x1 convs to 15 objectness logits and 60 box deltas
      -> proposals -> RoIAlign 14 x 14 (scale 1/16, adaptive sampling)
      -> res5 (dense): 3 x (512, 2048), first stride 2 -> 7 x 7
           -> average pool -> class logits (7), class-specific box deltas (7 x 4, weights 10, 10, 5, 5)
           -> 2x2/2 transposed conv 2048 -> 256, ReLU, 1x1 -> per-class 14 x 14 mask logits

The backbone, its dense twin and the res5 head are built by one recursive definition
(``stage`` of ``Bottleneck``s) from layer factories, like the U-ResNet: the sparse and dense
backbones are the same network layer for layer (equal outputs when every site is active,
tests/test_maskrcnn_network.py). Only the backbone is sparse, as in the paper.

**Strided 1x1 convs and thin tracks.** ResNet's first 1x1 conv of res3 and res4 has stride 2. On a
sparse image its output sites are the coarse cells whose one input (at even coordinates) is
active, so the chain stem -> pool -> res3 -> res4 only ever reads input rows (and columns)
``16 i - 5 .. 16 i + 5`` for output ``i``: pixels in rows ``16 i + 6 .. 16 i + 10`` reach no stride-16
site at all. On simulated MicroBooNE Y planes (``uboone_nue_cosmics``, 6 events) only 40 % of the
stride-16 cells that hold charge are active sites, and a 2-pixel-thick isochronous track lying in
those rows has no stride-16 site (it vanishes; a dense network would at least see it through its
other convs' spreading, which submanifold convs do not do). So the default here is the
down-sampling conv with kernel 2 and stride 2 (``down_kernel: 2``; SparseConvNet's choice): every
active input reaches exactly one output, every charged stride-16 cell is a site (100 % on the same
events), and the stride, channels and block structure are ResNet-50's. ``down_kernel: 1`` gives
the literal strided 1x1. The same kernel is used in the dense twin and in the dense res5 head.

**Classes** (``CLASS_NAMES``) from the simulator's truth, per interaction (all charge of one
ancestor is one instance, :func:`instance_targets`): ``nueCC`` neutrino interactions are nue;
cosmic-origin interactions are cosmic unless their single primary is a neutron, proton or
electron (then that class); other single-primary interactions with such a primary take its class;
everything else (numu CC, NC, multi-particle bombs, other primaries) is other. The simulator
today makes only cosmic muons and neutrino interactions, so in its samples only cosmic, nue and
other occur. Files without an interaction table fall back to each instance's majority pixel
origin (cosmic -> cosmic, neutrino -> nue).

Choices where the paper (and Detectron) are silent or do not apply, all config fields:
- mask targets: a cell of the 14 x 14 grid is on when the instance has a pixel in it (bilinear
  resampling of a 1-pixel-wide track into a 70-pixel cell falls below 0.5 and would leave
  empty targets); the balanced BCE is balanced per RoI;
- classes with classification weight 0 stay ground-truth boxes (RoIs on them are not background)
  but add no box or mask loss and are never detected;
- a detection whose mask covers no active pixel is dropped (it claims no charge);
- per site: the highest-scoring detection whose mask (>= 0.5) covers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from lartpcnet import sparse
from lartpcnet.data.event import SparseImage
from lartpcnet.data.labels import COSMIC, NEUTRINO
from lartpcnet.models import boxes as B
from lartpcnet.models import layers
from lartpcnet.models.layers import DenseOps, SparseOps

CLASS_NAMES = ("background", "cosmic", "neutron", "proton", "electron", "nue", "other")
BACKGROUND, COSMIC_CLASS, NEUTRON, PROTON, ELECTRON, NUE, OTHER = range(7)
_PDG_CLASS = {2112: NEUTRON, 2212: PROTON, 11: ELECTRON, -11: ELECTRON}


class MaskRCNNConfig(BaseModel):
    """sMask-RCNN settings; the defaults are the paper's network (ResNet-50 C4, Detectron's
    Mask R-CNN settings as the issue gives them)."""

    model_config = ConfigDict(extra="forbid")
    # input: Y-plane pixels at or above the threshold, value / scale, no upper cut
    threshold: float = Field(10.0, ge=0)
    feature_scale: float = Field(100.0, gt=0)
    sparse: bool = True
    # backbone: stem and the res2..res4 stages (blocks, bottleneck width, output width)
    stem: int = Field(64, ge=1)
    blocks: tuple[int, ...] = (3, 4, 6)
    bottlenecks: tuple[int, ...] = (64, 128, 256)
    widths: tuple[int, ...] = (256, 512, 1024)
    down_kernel: Literal[1, 2] = 2  # kernel of the strided convs (see the module docstring)
    # res5 head (dense) and the mask head
    head_blocks: int = Field(3, ge=1)
    head_bottleneck: int = Field(512, ge=1)
    head_width: int = Field(2048, ge=1)
    mask_channels: int = Field(256, ge=1)
    # classes and the weights of the classification loss (background 1, cosmic 2, nue ~36)
    classes: tuple[str, ...] = CLASS_NAMES
    class_weights: tuple[float, ...] = (1.0, 2.0, 0.0, 0.0, 0.0, 36.0, 0.0)
    # anchors (sizes in pixels, ratio = height / width) on the stride-16 map
    anchor_sizes: tuple[float, ...] = (32, 64, 128, 256, 512)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    # RPN targets and loss
    rpn_positive_iou: float = 0.7
    rpn_negative_iou: float = 0.3
    rpn_batch: int = Field(256, ge=1)  # anchors per image
    rpn_positive_fraction: float = Field(0.5, gt=0, le=1)
    rpn_beta: float = Field(1 / 9, gt=0)  # smooth L1
    rpn_straddle: float = 0.0  # training ignores anchors beyond the image by more; < 0: keep all
    # proposals (training / test)
    train_pre_nms: int = Field(6000, ge=1)
    train_nms: float = 0.1
    train_post_nms: int = Field(1000, ge=1)
    test_pre_nms: int = Field(6000, ge=1)
    test_nms: float = 0.7
    test_post_nms: int = Field(1000, ge=1)
    # RoI heads
    roi_batch: int = Field(512, ge=1)  # RoIs per image
    roi_positive_fraction: float = Field(0.25, gt=0, le=1)
    roi_fg_iou: float = 0.5
    roi_bg_iou: tuple[float, float] = (0.0, 0.5)
    roi_size: int = Field(14, ge=2)  # RoIAlign output; res5 halves it, the mask head doubles it back
    sampling_ratio: int = Field(0, ge=0)  # 0: adaptive
    aligned: bool = False  # Detectron's (original) RoIAlign
    box_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    mask_loss_weight: float = Field(0.1, ge=0)
    # test
    score_threshold: float = 0.05
    detection_nms: float = 0.3
    detections: int = Field(100, ge=1)
    mask_threshold: float = 0.5

    @model_validator(mode="after")
    def _check(self) -> MaskRCNNConfig:
        if not len(self.blocks) == len(self.bottlenecks) == len(self.widths) >= 1:
            raise ValueError("blocks, bottlenecks and widths need one entry per stage")
        if len(self.class_weights) != len(self.classes) or self.classes[0] != "background":
            raise ValueError("class_weights needs one weight per class, and class 0 is background")
        if self.roi_size % 2:
            raise ValueError(f"roi_size must be even (res5 halves it), got {self.roi_size}")
        return self

    @property
    def stride(self) -> int:
        """Stride of the backbone's output: 4 after the stem, x2 per later stage."""
        return 4 * 2 ** (len(self.blocks) - 1)

    @property
    def num_anchors(self) -> int:
        return len(self.anchor_sizes) * len(self.anchor_ratios)

    def detected_classes(self) -> list[int]:
        return [c for c in range(1, len(self.classes)) if self.class_weights[c] > 0]


# --- layers -----------------------------------------------------------------------------------

class _ResNetOps:
    """ResNet's stem, pool and strided convs on top of the shared sparse/dense layer factories."""

    def __init__(self, down_kernel: int) -> None:
        super().__init__(2, 0.0)
        self.k = down_kernel

    def stem(self, cin: int, cout: int) -> nn.Module:
        return super().down(cin, cout, 7, 2, 3)

    def pool(self) -> nn.Module:
        return super().pool(3, 2, 1)

    def down(self, cin: int, cout: int) -> nn.Module:
        return super().down(cin, cout, self.k, 2)


class _SparseOps(_ResNetOps, SparseOps):
    pass


class _DenseOps(_ResNetOps, DenseOps):
    pass


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 (strided where the stage down-samples) -> 3x3 -> 1x1, each with batch
    norm, ReLU between, plus the input (projected where its shape changes), then ReLU."""

    def __init__(self, ops, cin: int, inner: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.ops = ops
        first = ops.down if stride > 1 else ops.project
        self.main = nn.Sequential(first(cin, inner), ops.norm(inner), ops.act(),
                                  ops.conv(inner, inner), ops.norm(inner), ops.act(),
                                  ops.project(inner, cout), ops.norm(cout))
        reshape = stride > 1 or cin != cout
        self.skip = nn.Sequential(first(cin, cout), ops.norm(cout)) if reshape else nn.Identity()
        self.act = ops.act()

    def forward(self, x):
        return self.act(self.ops.add(self.main(x), self.skip(x)))


def stage(ops, blocks: int, cin: int, inner: int, cout: int, stride: int) -> nn.Sequential:
    """``blocks`` bottlenecks; the first changes the width (and down-samples by ``stride``)."""
    return nn.Sequential(Bottleneck(ops, cin, inner, cout, stride),
                         *[Bottleneck(ops, cout, inner, cout) for _ in range(blocks - 1)])


class Backbone(nn.Sequential):
    """ResNet conv1 (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) and the stages res2, res3, ...: the
    first keeps the stride, each later one halves it. Sparse in, sparse out (or dense twins)."""

    def __init__(self, ops, config: MaskRCNNConfig, in_channels: int = 1) -> None:
        c = config
        layers = [ops.stem(in_channels, c.stem), ops.norm(c.stem), ops.act(), ops.pool()]
        cin = c.stem
        for k, (n, inner, cout) in enumerate(zip(c.blocks, c.bottlenecks, c.widths, strict=True)):
            layers.append(stage(ops, n, cin, inner, cout, 1 if k == 0 else 2))
            cin = cout
        super().__init__(*layers)


def backbone_pair(config: MaskRCNNConfig) -> tuple[Backbone, Backbone]:
    """The sparse backbone and its dense twin (separate weights; see ``copy_sparse_to_dense``)."""
    return Backbone(_SparseOps(config.down_kernel), config), Backbone(_DenseOps(config.down_kernel), config)


copy_sparse_to_dense = layers.copy_sparse_to_dense


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then per anchor one objectness logit and four box deltas."""

    def __init__(self, channels: int, anchors: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.logits = nn.Conv2d(channels, anchors, 1)
        self.deltas = nn.Conv2d(channels, 4 * anchors, 1)
        for layer, std in ((self.conv, 0.01), (self.logits, 0.01), (self.deltas, 0.01)):
            nn.init.normal_(layer.weight, std=std)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, H * W * A)`` and deltas ``(B, H * W * A, 4)``, location-major like the anchors."""
        x = F.relu(self.conv(features))
        b, _, h, w = x.shape
        logits = self.logits(x).permute(0, 2, 3, 1).reshape(b, -1)
        deltas = self.deltas(x).reshape(b, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4)
        return logits, deltas


class RoIHeads(nn.Module):
    """res5 on RoIAlign features, shared by the box branch (average pool, class logits,
    class-specific deltas) and the mask branch (2x2/2 transposed conv, ReLU, 1x1 per class)."""

    def __init__(self, config: MaskRCNNConfig) -> None:
        super().__init__()
        c = config
        ops = _DenseOps(c.down_kernel)
        self.res5 = stage(ops, c.head_blocks, c.widths[-1], c.head_bottleneck, c.head_width, 2)
        n = len(c.classes)
        self.cls = nn.Linear(c.head_width, n)
        self.box = nn.Linear(c.head_width, 4 * n)
        self.mask_up = nn.ConvTranspose2d(c.head_width, c.mask_channels, 2, 2)
        self.mask = nn.Conv2d(c.mask_channels, n, 1)
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.box.weight, std=0.001)
        nn.init.zeros_(self.cls.bias)
        nn.init.zeros_(self.box.bias)
        for layer in (self.mask_up, self.mask):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """res5 features, class logits and box deltas of RoI features ``x``."""
        if x.shape[0] == 0:  # batch norm cannot take an empty batch in training
            n = self.cls.out_features
            feats = x.new_zeros((0, self.cls.in_features, x.shape[2] // 2, x.shape[3] // 2))
            return feats, x.new_zeros((0, n)), x.new_zeros((0, 4 * n))
        feats = self.res5(x)
        pooled = feats.mean((2, 3))
        return feats, self.cls(pooled), self.box(pooled)

    def masks(self, feats: torch.Tensor) -> torch.Tensor:
        return self.mask(F.relu(self.mask_up(feats)))


# --- inputs and targets ----------------------------------------------------------------------

@dataclass
class InstanceTargets:
    """Ground truth of one image: one instance per interaction with charge above threshold."""

    boxes: torch.Tensor  # (G, 4) tight boxes (x1, y1, x2, y2) of the instances' pixels
    classes: torch.Tensor  # (G,) class codes (CLASS_NAMES)
    rows: torch.Tensor  # (P,) the instances' pixels
    cols: torch.Tensor
    owner: torch.Tensor  # (P,) instance index of each pixel
    ids: np.ndarray  # (G,) interaction id of each instance

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def interaction_classes(interactions: np.ndarray | None, particles: np.ndarray | None) -> dict[int, int]:
    """Class code of each interaction id, from the event's truth tables (module docstring)."""
    if interactions is None or len(interactions) == 0:
        return {}
    primary: dict[int, list[int]] = {}
    if particles is not None and len(particles):
        top = particles[particles["parent"] < 0]
        for inter, pdg in zip(top["interaction"].tolist(), top["pdg"].tolist(), strict=True):
            primary.setdefault(inter, []).append(pdg)
    out = {}
    for row in interactions:
        iid, kind = int(row["id"]), bytes(row["kind"])
        pdgs = primary.get(iid, [])
        single = _PDG_CLASS.get(pdgs[0]) if len(pdgs) == 1 else None
        if kind == b"nueCC":
            out[iid] = NUE
        elif single is not None:
            out[iid] = single
        elif int(row["origin"]) == COSMIC:
            out[iid] = COSMIC_CLASS
        else:
            out[iid] = OTHER
    return out


def instance_targets(image: SparseImage, interactions: np.ndarray | None = None, particles: np.ndarray | None = None,
                     threshold: float = 10.0) -> InstanceTargets:
    """Instances, classes, tight boxes and masks of one wire-plane image (pixels >= ``threshold``)."""
    if image.coords.shape[1] != 2:
        raise ValueError(f"sMask-RCNN takes 2D wire-plane images, got {image.coords.shape[1]}D sites")
    keep = (image.values >= threshold) & (image.interaction >= 0)
    ids, owner = np.unique(image.interaction[keep], return_inverse=True)
    known = interaction_classes(interactions, particles)
    classes = np.empty(len(ids), dtype=np.int64)
    origin = image.origin[keep]
    for k, iid in enumerate(ids.tolist()):
        if iid in known:
            classes[k] = known[iid]
        else:  # no table: the instance's majority origin
            o = np.bincount(origin[owner == k], minlength=3)
            classes[k] = NUE if o[NEUTRINO] > o[COSMIC] else COSMIC_CLASS
    rows = torch.from_numpy(image.coords[keep, 0].astype(np.int64))
    cols = torch.from_numpy(image.coords[keep, 1].astype(np.int64))
    owner_t = torch.from_numpy(owner.astype(np.int64).reshape(-1))
    return InstanceTargets(B.tight_boxes(rows, cols, owner_t, len(ids)), torch.from_numpy(classes), rows, cols,
                           owner_t, ids.astype(np.int64))


def image_tensor(images: Sequence[SparseImage], threshold: float = 10.0,
                 scale: float = 100.0) -> tuple[sparse.SparseTensor, list[np.ndarray]]:
    """The network input of a batch of planes: pixels at or above ``threshold`` (no upper cut),
    feature value / ``scale``. Returns the tensor and, per image, which of its sites it holds."""
    if not images:
        raise ValueError("image_tensor needs at least one image")
    shape = tuple(images[0].shape)
    coords, feats, kept = [], [], []
    for b, image in enumerate(images):
        if tuple(image.shape) != shape or len(shape) != 2:
            raise ValueError(f"image {b} has shape {tuple(image.shape)}; all must be 2D planes of shape {shape}")
        keep = np.nonzero(image.values >= threshold)[0]
        kept.append(keep)
        coords.append(np.concatenate([np.full((len(keep), 1), b), image.coords[keep].astype(np.int64)], 1))
        feats.append(image.values[keep].astype(np.float32) / scale)
    tensor = sparse.SparseTensor(torch.from_numpy(np.concatenate(coords).astype(np.int64)),
                                 torch.from_numpy(np.concatenate(feats))[:, None], shape, batch_size=len(images))
    return tensor, kept


# --- outputs ----------------------------------------------------------------------------------

@dataclass
class Detections:
    """Detections of one image and what they say about each of its sites (input rows).

    ``mask_owner``/``mask_site`` list (detection, site) pairs where the pasted mask is at least
    the mask threshold: a site can be in several masks. ``site_*`` give each site the
    highest-scoring detection covering it (instance -1, class 0, score 0 if none).
    """

    boxes: torch.Tensor  # (D, 4)
    classes: torch.Tensor  # (D,)
    scores: torch.Tensor  # (D,)
    masks: torch.Tensor  # (D, M, M) mask probabilities in the box's grid
    mask_owner: torch.Tensor  # (Q,)
    mask_site: torch.Tensor  # (Q,)
    site_instance: torch.Tensor  # (N,)
    site_class: torch.Tensor  # (N,)
    site_score: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def on_sites(self, kept: np.ndarray, num_sites: int) -> Detections:
        """The same detections, on the CPU, with site indices of the full image whose sites ``kept``
        were the input."""
        index = torch.from_numpy(np.asarray(kept, dtype=np.int64))
        inst = torch.full((num_sites,), -1, dtype=torch.int64)
        cls = torch.zeros(num_sites, dtype=torch.int64)
        score = torch.zeros(num_sites, dtype=self.site_score.dtype)
        inst[index], cls[index], score[index] = self.site_instance.cpu(), self.site_class.cpu(), self.site_score.cpu()
        return Detections(self.boxes.cpu(), self.classes.cpu(), self.scores.cpu(), self.masks.cpu(),
                          self.mask_owner.cpu(), index[self.mask_site.cpu()], inst, cls, score)


class MaskRCNNLossConfig(BaseModel):
    """``model.loss`` of sMask-RCNN: none; the loss weights are network settings (class_weights,
    mask_loss_weight)."""

    model_config = ConfigDict(extra="forbid")


class MaskRCNNLoss(nn.Module):
    """The total loss: the sum of the named losses the network returns in training mode."""

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(losses.values())


# --- the network ------------------------------------------------------------------------------

class MaskRCNN(nn.Module):
    """sMask-RCNN (sparse backbone) or its dense twin (``sparse=False``).

    ``forward(images, targets)``: ``images`` is a SparseTensor (sparse; :func:`image_tensor`) or a
    ``(B, 1, H, W)`` tensor (dense). In training mode ``targets`` (one :class:`InstanceTargets`
    per image) are required and a dict of named losses is returned; in eval mode a list of
    :class:`Detections`, one per image, whose sites are the input's active sites (dense: the
    non-zero pixels) in input order.
    """

    def __init__(self, config: MaskRCNNConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = MaskRCNNConfig.model_validate({**(config or MaskRCNNConfig()).model_dump(), **overrides})
        c = self.config
        ops = _SparseOps(c.down_kernel) if c.sparse else _DenseOps(c.down_kernel)
        self.backbone = Backbone(ops, c)
        self.rpn = RPNHead(c.widths[-1], c.num_anchors)
        self.heads = RoIHeads(c)
        self.rpn_coder = B.BoxCoder()
        self.roi_coder = B.BoxCoder(c.box_weights)
        self.register_buffer("class_weights", torch.tensor(c.class_weights, dtype=torch.float32), persistent=False)
        self._anchor_cache: dict = {}

    # -- pieces -----------------------------------------------------------------------------
    def features(self, images) -> tuple[torch.Tensor, tuple[int, int]]:
        """Dense stride-16 features and the image shape."""
        if self.config.sparse:
            if not isinstance(images, sparse.SparseTensor):
                raise ValueError("the sparse sMask-RCNN takes a SparseTensor (see image_tensor)")
            return self.backbone(images).to_dense(), tuple(images.spatial_shape)
        if not torch.is_tensor(images) or images.dim() != 4:
            raise ValueError("the dense sMask-RCNN takes a (B, 1, H, W) tensor")
        return self.backbone(images), tuple(images.shape[2:])

    def anchors(self, feature_shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        key = (tuple(feature_shape), device)
        if key not in self._anchor_cache:
            c = self.config
            self._anchor_cache = {key: B.anchors(feature_shape, c.stride, c.anchor_sizes, c.anchor_ratios).to(device)}
        return self._anchor_cache[key]

    @staticmethod
    def _sites(images, batch: int) -> list[torch.Tensor]:
        """Per image, the ``(N, 2)`` (row, column) of its sites in input order."""
        if isinstance(images, sparse.SparseTensor):
            c = images.coords
            return [c[c[:, 0] == b, 1:].long() for b in range(batch)]
        return [(images[b] != 0).any(0).nonzero() for b in range(batch)]

    def proposals(self, logits: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor,
                  shape: tuple[int, int]) -> list[torch.Tensor]:
        c = self.config
        pre, thresh, post = ((c.train_pre_nms, c.train_nms, c.train_post_nms) if self.training
                             else (c.test_pre_nms, c.test_nms, c.test_post_nms))
        out = []
        for b in range(logits.shape[0]):
            score, idx = logits[b].detach().topk(min(pre, logits.shape[1]))
            boxes = B.clip_boxes(self.rpn_coder.decode(deltas[b, idx].detach(), anchors[idx]), shape)
            keep = B.nms(boxes, score, thresh)[:post]
            out.append(boxes[keep])
        return out

    # -- training ---------------------------------------------------------------------------
    def rpn_loss(self, logits, deltas, anchors, targets, shape) -> dict[str, torch.Tensor]:
        c = self.config
        cls_terms, box_terms, count = [], [], 0
        for b, t in enumerate(targets):
            labels, matched = _rpn_labels(anchors, t.boxes.to(anchors.device), shape, c)
            sampled = _sample(labels, c.rpn_batch, c.rpn_positive_fraction)
            positive = sampled[labels[sampled] == 1]
            count += sampled.numel()
            cls_terms.append(F.binary_cross_entropy_with_logits(logits[b, sampled], labels[sampled].float(),
                                                                reduction="sum"))
            if positive.numel():
                target = self.rpn_coder.encode(anchors[positive], t.boxes.to(anchors.device)[matched[positive]])
                box_terms.append(F.smooth_l1_loss(deltas[b, positive], target, beta=c.rpn_beta, reduction="sum"))
        norm = max(count, 1)
        zero = logits.sum() * 0
        return {"loss_rpn_cls": sum(cls_terms, zero) / norm, "loss_rpn_box": sum(box_terms, zero) / norm}

    def roi_loss(self, features, proposals, targets) -> dict[str, torch.Tensor]:
        c = self.config
        rois, labels, box_targets, mask_targets = [], [], [], []
        for b, (props, t) in enumerate(zip(proposals, targets, strict=True)):
            gt = t.boxes.to(props.device)
            candidates = torch.cat([props, gt])  # ground truth joins the proposals (Detectron)
            iou = B.box_iou(candidates, gt)
            best, matched = iou.max(1) if gt.shape[0] else (candidates.new_zeros(len(candidates)),
                                                             torch.zeros(len(candidates), dtype=torch.int64))
            fg = (best >= c.roi_fg_iou).nonzero().squeeze(1)
            bg = ((best >= c.roi_bg_iou[0]) & (best < c.roi_bg_iou[1])).nonzero().squeeze(1)
            n_fg = min(round(c.roi_batch * c.roi_positive_fraction), fg.numel())
            fg = fg[torch.randperm(fg.numel())[:n_fg].to(fg.device)]
            bg = bg[torch.randperm(bg.numel())[:c.roi_batch - n_fg].to(bg.device)]
            chosen = torch.cat([fg, bg])
            label = torch.zeros(chosen.numel(), dtype=torch.int64, device=props.device)
            label[:n_fg] = t.classes.to(props.device)[matched[fg]]
            rois.append(torch.cat([torch.full((chosen.numel(), 1), float(b), device=props.device),
                                   candidates[chosen]], 1))
            labels.append(label)
            box_targets.append(self.roi_coder.encode(candidates[fg], gt[matched[fg]]) if n_fg else
                               props.new_zeros((0, 4)))
            mask_targets.append(_mask_targets(candidates[fg], matched[fg], t, c.roi_size))
        rois_t, labels_t = torch.cat(rois), torch.cat(labels)
        feats, logits, deltas = self.heads(self._align(features, rois_t))
        weight = self.class_weights[labels_t]
        ce = F.cross_entropy(logits, labels_t, reduction="none")
        loss_cls = (weight * ce).sum() / weight.sum().clamp(min=1e-12)
        learn = (labels_t > 0) & (weight > 0)  # foreground of a class the network learns
        fg_index = (labels_t > 0).nonzero().squeeze(1)  # foreground RoIs come first in each image
        learned = learn[fg_index]
        zero = logits.sum() * 0
        if learned.any():
            rows = fg_index[learned]
            cls = labels_t[rows]
            pred = deltas.reshape(len(labels_t), -1, 4)[rows, cls]
            target = torch.cat(box_targets)[learned]
            loss_box = F.smooth_l1_loss(pred, target, beta=1.0, reduction="sum") / max(len(labels_t), 1)
            mask_logits = self.heads.masks(feats[rows])[torch.arange(rows.numel()), cls]
            loss_mask = c.mask_loss_weight * _balanced_bce(mask_logits, torch.cat(mask_targets)[learned])
        else:
            loss_box = loss_mask = zero
        return {"loss_cls": loss_cls, "loss_box": loss_box, "loss_mask": loss_mask}

    def _align(self, features: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        c = self.config
        return B.roi_align(features, rois, c.roi_size, 1.0 / c.stride, c.sampling_ratio, c.aligned)

    # -- inference --------------------------------------------------------------------------
    def detect(self, features, proposals, sites, shape) -> list[Detections]:
        c = self.config
        allowed = torch.tensor(c.detected_classes(), dtype=torch.int64, device=features.device)
        rois = torch.cat([torch.cat([torch.full((len(p), 1), float(b), device=p.device), p], 1)
                          for b, p in enumerate(proposals)])
        _, logits, deltas = self.heads(self._align(features, rois))
        scores = F.softmax(logits, 1)
        boxes = B.clip_boxes(self.roi_coder.decode(deltas, rois[:, 1:]).reshape(len(rois), len(c.classes), 4), shape)
        out, start = [], 0
        for b, props in enumerate(proposals):
            part = slice(start, start + len(props))
            start += len(props)
            s, bx = scores[part][:, allowed], boxes[part][:, allowed]
            roi_idx, which = (s > c.score_threshold).nonzero(as_tuple=True)
            cand_boxes, cand_scores, cand_cls = bx[roi_idx, which], s[roi_idx, which], allowed[which]
            keep = B.batched_nms(cand_boxes, cand_scores, cand_cls, c.detection_nms)[:c.detections]
            out.append(self._masks(features, b, cand_boxes[keep], cand_cls[keep], cand_scores[keep], sites[b]))
        return out

    def _masks(self, features, b, boxes, classes, scores, sites) -> Detections:
        c = self.config
        m = c.roi_size
        n = sites.shape[0]
        if len(boxes):
            rois = torch.cat([torch.full((len(boxes), 1), float(b), device=boxes.device), boxes], 1)
            feats, _, _ = self.heads(self._align(features, rois))
            masks = torch.sigmoid(self.heads.masks(feats)[torch.arange(len(boxes)), classes])
        else:
            masks = features.new_zeros((0, m, m))
        rows, cols = sites[:, 0], sites[:, 1]
        cy, cx = rows[:, None].float() + 0.5, cols[:, None].float() + 0.5  # sites x detections in box
        inside = (cx >= boxes[:, 0]) & (cx < boxes[:, 2]) & (cy >= boxes[:, 1]) & (cy < boxes[:, 3])
        site, owner = inside.nonzero(as_tuple=True)
        on = B.mask_values(masks, boxes, owner, rows[site], cols[site]) >= c.mask_threshold
        site, owner = site[on], owner[on]
        # drop detections whose mask claims no charge, renumbering the rest
        used = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
        used[owner] = True
        new_index = torch.cumsum(used.long(), 0) - 1
        boxes, classes, scores, masks = boxes[used], classes[used], scores[used], masks[used]
        owner = new_index[owner]
        # detections are in descending score order, so the best one covering a site is the lowest index
        none = len(boxes)
        inst = torch.full((n,), none, dtype=torch.int64, device=boxes.device)
        inst.scatter_reduce_(0, site, owner, "amin")
        covered = inst < none
        inst[~covered] = -1
        cls = torch.zeros(n, dtype=torch.int64, device=boxes.device)
        score = scores.new_zeros(n)
        cls[covered], score[covered] = classes[inst[covered]], scores[inst[covered]]
        return Detections(boxes, classes, scores, masks, owner, site, inst, cls, score)

    # -- entry point ------------------------------------------------------------------------
    def forward(self, images, targets: Sequence[InstanceTargets] | None = None):
        features, shape = self.features(images)
        batch = features.shape[0]
        anchors = self.anchors(tuple(features.shape[2:]), features.device)
        logits, deltas = self.rpn(features)
        proposals = self.proposals(logits, deltas, anchors, shape)
        if self.training:
            if targets is None or len(targets) != batch:
                raise ValueError(f"training needs one InstanceTargets per image ({batch}), "
                                 f"got {None if targets is None else len(targets)}")
            return {**self.rpn_loss(logits, deltas, anchors, targets, shape),
                    **self.roi_loss(features, proposals, targets)}
        return self.detect(features, proposals, self._sites(images, batch), shape)

    @torch.no_grad()
    def predict(self, images: Sequence[SparseImage]) -> list[Detections]:
        """Detections of wire-plane images, with site outputs for every site of each image
        (sites below the input threshold: instance -1, class 0, score 0)."""
        c = self.config
        was_training = self.training
        self.eval()
        try:
            tensor, kept = image_tensor(images, c.threshold, c.feature_scale)
            device = next(self.parameters()).device
            tensor = tensor.to(device)
            out = self(tensor if c.sparse else tensor.to_dense())
        finally:
            self.train(was_training)
        return [d.on_sites(k, len(image)) for d, k, image in zip(out, kept, images, strict=True)]


# --- helpers ----------------------------------------------------------------------------------

def _match(anchors: torch.Tensor, gt: torch.Tensor, pairs: int = 4_000_000):
    """Per anchor its best IoU and ground truth, and whether it is the best anchor of some ground
    truth (ties included); in chunks of ground truths (thousands of instances x 200k anchors
    would not fit at once)."""
    best = anchors.new_zeros(len(anchors))
    matched = torch.zeros(len(anchors), dtype=torch.int64, device=anchors.device)
    lowq = torch.zeros(len(anchors), dtype=torch.bool, device=anchors.device)
    step = max(1, pairs // max(len(anchors), 1))
    for start in range(0, len(gt), step):
        iou = B.box_iou(anchors, gt[start:start + step])
        value, index = iou.max(1)
        better = value > best
        best = torch.where(better, value, best)
        matched = torch.where(better, index + start, matched)
        top = iou.max(0).values
        lowq |= ((iou == top) & (top > 0)).any(1)
    return best, matched, lowq


def _rpn_labels(anchors: torch.Tensor, gt: torch.Tensor, shape: tuple[int, int], c: MaskRCNNConfig):
    """Anchor labels (1 object, 0 background, -1 ignored) and matched ground truth (Faster R-CNN:
    IoU >= 0.7 positive, < 0.3 negative, and each ground truth's best anchors positive)."""
    n = len(anchors)
    labels = torch.full((n,), -1, dtype=torch.int64, device=anchors.device)
    matched = torch.zeros(n, dtype=torch.int64, device=anchors.device)
    if c.rpn_straddle >= 0:
        t = c.rpn_straddle
        inside = ((anchors[:, 0] >= -t) & (anchors[:, 1] >= -t) & (anchors[:, 2] <= shape[1] + t)
                  & (anchors[:, 3] <= shape[0] + t))
    else:
        inside = torch.ones(n, dtype=torch.bool, device=anchors.device)
    if len(gt) == 0:
        labels[inside] = 0
        return labels, matched
    candidates = inside.nonzero().squeeze(1)
    best, sub_matched, lowq = _match(anchors[candidates], gt)
    sub = torch.full((len(candidates),), -1, dtype=torch.int64, device=anchors.device)
    sub[best < c.rpn_negative_iou] = 0
    sub[(best >= c.rpn_positive_iou) | lowq] = 1
    labels[candidates] = sub
    matched[candidates] = sub_matched
    return labels, matched


def _sample(labels: torch.Tensor, batch: int, fraction: float) -> torch.Tensor:
    """Indices of up to ``batch`` labelled anchors, at most ``fraction`` of them positive."""
    pos = (labels == 1).nonzero().squeeze(1)
    neg = (labels == 0).nonzero().squeeze(1)
    n_pos = min(int(batch * fraction), pos.numel())
    pos = pos[torch.randperm(pos.numel())[:n_pos].to(pos.device)]
    neg = neg[torch.randperm(neg.numel())[:batch - n_pos].to(neg.device)]
    return torch.cat([pos, neg])


def _mask_targets(rois: torch.Tensor, matched: torch.Tensor, t: InstanceTargets, size: int) -> torch.Tensor:
    """Per foreground RoI, the cells of its grid holding a pixel of its matched instance."""
    if rois.shape[0] == 0:
        return torch.zeros((0, size, size), device=rois.device)
    order = torch.argsort(t.owner, stable=True)
    counts = torch.bincount(t.owner, minlength=len(t))
    starts = torch.cumsum(counts, 0) - counts
    m = matched.cpu()
    n = counts[m]
    roi_of_pixel = torch.repeat_interleave(torch.arange(len(m)), n)
    offset = torch.arange(int(n.sum())) - torch.repeat_interleave(torch.cumsum(n, 0) - n, n)
    pixel = order[starts[m][roi_of_pixel] + offset]
    return B.rasterize(rois.cpu(), roi_of_pixel, t.rows[pixel], t.cols[pixel], size).to(rois.device)


def _balanced_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy where, in each RoI, the on and the off cells weigh half each."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1)
    on = targets.flatten(1)
    n_on, n_off = on.sum(1), (1 - on).sum(1)
    w_on = torch.where(n_off > 0, 0.5, 1.0) / n_on.clamp(min=1)
    w_off = torch.where(n_on > 0, 0.5, 1.0) / n_off.clamp(min=1)
    weights = on * w_on[:, None] + (1 - on) * w_off[:, None]
    return (loss * weights).sum(1).mean()
