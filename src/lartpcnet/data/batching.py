"""Network input from events: batches of sparse images with aligned labels.

SparseSSNet's masking: pixels whose value lies outside the ADC window (default 10-300) are not in
the sparse set at all. Features are the pixel values divided by ``FEATURE_SCALE`` (a MIP pixel
becomes ~0.4) so that the first layers see order-one inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lartpcnet.data.event import SparseImage
from lartpcnet.sparse import SparseTensor

FEATURE_SCALE = 100.0
IGNORE = -1  # label of sites without a class (noise): left out of losses and metrics


@dataclass
class Batch:
    """Sparse network input and the truth of every site, in the same row order."""

    tensor: SparseTensor
    semantic: torch.Tensor  # (N,) int64, IGNORE for unlabelled sites
    instance: torch.Tensor  # (N,) int64
    values: torch.Tensor  # (N,) raw pixel values


def sparse_batch(images: Sequence[SparseImage], adc_window: tuple[float, float] | None = (10.0, 300.0),
                 pad_to: int = 1, scale: float = FEATURE_SCALE) -> Batch:
    """Batches 2D or 3D images (all of one shape) into one SparseTensor; sites outside
    ``adc_window`` are dropped. The spatial shape is rounded up to a multiple of ``pad_to``."""
    if not images:
        raise ValueError("sparse_batch needs at least one image")
    shape = tuple(images[0].shape)
    for k, image in enumerate(images):
        if tuple(image.shape) != shape:
            raise ValueError(f"image {k} has shape {tuple(image.shape)}, image 0 has {shape}")
    coords, semantic, instance, values = [], [], [], []
    for b, image in enumerate(images):
        keep = np.ones(len(image), bool)
        if adc_window is not None:
            keep = (image.values >= adc_window[0]) & (image.values <= adc_window[1])
        n = int(keep.sum())
        coords.append(np.concatenate([np.full((n, 1), b, np.int64), image.coords[keep].astype(np.int64)], 1))
        values.append(image.values[keep])
        semantic.append(image.semantic[keep].astype(np.int64))
        instance.append(image.instance[keep].astype(np.int64))
    value = torch.from_numpy(np.concatenate(values).astype(np.float32))
    padded = tuple(-(-s // pad_to) * pad_to for s in shape)
    tensor = SparseTensor(torch.from_numpy(np.concatenate(coords)), (value / scale)[:, None], padded,
                          batch_size=len(images), check=False)
    semantic_t = torch.from_numpy(np.concatenate(semantic))
    semantic_t[semantic_t < 0] = IGNORE
    return Batch(tensor, semantic_t, torch.from_numpy(np.concatenate(instance)), value)
