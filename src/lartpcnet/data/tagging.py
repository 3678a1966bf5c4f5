"""Cosmic-tagger inputs: the three planes of an event as one batch entry, at a chosen resolution.

The SBND cosmic paper trains on 50 % resolution images (640 x 1024 per plane, from 1280 x 2048):
:func:`downsample` merges each ``factor x factor`` block of pixels, summing the charge and keeping
the highest origin label (neutrino over cosmic over background, as the paper resolves overlaps).
Labels are the origin codes 0 background, 1 cosmic, 2 neutrino.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lartpcnet.data.event import SparseImage
from lartpcnet.data.settings import DEFAULT_FEATURE_SCALE
from lartpcnet.errors import DataError
from lartpcnet.sparse import SparseTensor


def downsample(image: SparseImage, factor: int) -> SparseImage:
    """The image with ``factor x factor`` pixel blocks merged (charge summed, label maximal)."""
    if factor == 1:
        return image
    if any(s % factor for s in image.shape):
        raise DataError(f"image shape {image.shape} does not divide by the downsampling factor {factor}")
    shape = tuple(s // factor for s in image.shape)
    coarse = image.coords // factor
    key = coarse[:, 0].astype(np.int64) * shape[1] + coarse[:, 1]
    unique, inverse = np.unique(key, return_inverse=True)
    values = np.zeros(len(unique), np.float32)
    np.add.at(values, inverse, image.values)
    origin = np.zeros(len(unique), np.int8)
    np.maximum.at(origin, inverse, image.origin)
    # the other labels follow the site that gave the origin label, largest charge first
    order = np.lexsort((-image.values, -image.origin.astype(np.int64), inverse))
    first = order[np.r_[0, np.nonzero(np.diff(inverse[order]))[0] + 1]]
    coords = np.stack([unique // shape[1], unique % shape[1]], 1).astype(np.int32)
    vertex = None if image.vertex is None else tuple(v // factor for v in image.vertex)
    return SparseImage(coords, values, image.semantic[first], image.instance[first], image.interaction[first],
                       origin, shape, vertex)


@dataclass
class TaggerBatch:
    """Planes of ``events`` events stacked as images ``event * planes + plane``."""

    tensor: SparseTensor | None  # sparse network input
    dense: torch.Tensor | None  # dense network input (events * planes, 1, H, W)
    labels: torch.Tensor  # per site (sparse) or per pixel (dense)
    shape: tuple[int, int]
    events: int
    planes: int


def tagger_batch(events: Sequence[Sequence[SparseImage]], sparse: bool = True, pad_to: int = 1,
                 threshold: float | None = None, scale: float = DEFAULT_FEATURE_SCALE) -> TaggerBatch:
    """One batch of multi-plane events (all planes of one shape). ``threshold``: pixels below it
    (ADC) are left out of the sparse set, as if never read out."""
    planes = len(events[0])
    shape = tuple(events[0][0].shape)
    padded = tuple(-(-s // pad_to) * pad_to for s in shape)
    coords, values, labels = [], [], []
    for e, event in enumerate(events):
        if len(event) != planes:
            raise DataError(f"event {e} of the batch has {len(event)} planes, event 0 has {planes}")
        for p, image in enumerate(event):
            if tuple(image.shape) != shape:
                raise DataError(f"event {e} of the batch, plane {p}, has shape {tuple(image.shape)}, expected {shape}")
            keep = np.ones(len(image), bool) if threshold is None else image.values >= threshold
            n = int(keep.sum())
            coords.append(np.concatenate([np.full((n, 1), e * planes + p), image.coords[keep]], 1))
            values.append(image.values[keep])
            labels.append(image.origin[keep].astype(np.int64))
    c = torch.from_numpy(np.concatenate(coords).astype(np.int64))
    v = torch.from_numpy(np.concatenate(values).astype(np.float32)) / scale
    lab = torch.from_numpy(np.concatenate(labels))
    n_images = len(events) * planes
    if sparse:
        tensor = SparseTensor(c, v[:, None], padded, batch_size=n_images, check=False)
        return TaggerBatch(tensor, None, lab, shape, len(events), planes)
    dense = torch.zeros((n_images, 1, *padded))
    dense[c[:, 0], 0, c[:, 1], c[:, 2]] = v
    dense_labels = torch.zeros((n_images, *padded), dtype=torch.int64)
    dense_labels[c[:, 0], c[:, 1], c[:, 2]] = lab
    return TaggerBatch(None, dense, dense_labels, shape, len(events), planes)
