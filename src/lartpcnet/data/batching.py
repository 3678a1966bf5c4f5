"""Network input from events: batches of sparse images with aligned labels.

SparseSSNet's masking: pixels whose value lies outside the ADC window (default 10-300) are not in
the sparse set at all. Features are the pixel values divided by the feature scale (default 100:
a MIP pixel becomes ~0.4) so that the first layers see order-one inputs. The defaults live in
``data.settings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lartpcnet.data.event import SparseImage
from lartpcnet.data.settings import DEFAULT_ADC_WINDOW, DEFAULT_FEATURE_SCALE
from lartpcnet.errors import DataError
from lartpcnet.sparse import SparseTensor

IGNORE = -1  # label of sites without a class (noise): left out of losses and metrics


@dataclass
class Batch:
    """Sparse network input and the truth of every site, in the same row order."""

    tensor: SparseTensor
    semantic: torch.Tensor  # (N,) int64, IGNORE for unlabelled sites
    instance: torch.Tensor  # (N,) int64
    values: torch.Tensor  # (N,) raw pixel values


def sparse_batch(images: Sequence[SparseImage], adc_window: tuple[float, float] | None = DEFAULT_ADC_WINDOW,
                 pad_to: int = 1, scale: float = DEFAULT_FEATURE_SCALE) -> Batch:
    """Batches 2D or 3D images (all of one shape) into one SparseTensor; sites outside
    ``adc_window`` are dropped. The spatial shape is rounded up to a multiple of ``pad_to``."""
    if not images:
        raise ValueError("sparse_batch needs at least one image")
    shape = tuple(images[0].shape)
    for k, image in enumerate(images):
        if tuple(image.shape) != shape:
            raise DataError(f"image {k} of the batch has shape {tuple(image.shape)}, image 0 has {shape}")
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


@dataclass
class DenseBatch:
    """Dense network input (B, 1, H, W) with background/track/shower labels (B, H, W) (MicroBooNE 2019)."""

    image: torch.Tensor
    labels: torch.Tensor  # 0 background, 1 track, 2 shower
    instance: torch.Tensor  # (B, H, W), -1 off particles
    vertex: torch.Tensor  # (B, 2) (row, col), -1 where unknown


def dense_batch(images: Sequence[SparseImage], adc_window: tuple[float, float] | None = DEFAULT_ADC_WINDOW,
                pad_to: int = 1, scale: float = DEFAULT_FEATURE_SCALE) -> DenseBatch:
    """Zero-filled 2D images with three classes: pixels outside the window (or empty) are
    background; HIP/MIP pixels are track, shower/delta/Michel pixels shower; unlabelled charge
    (noise) is background too."""
    from lartpcnet.data.labels import SEMANTIC_TO_TWO_CLASS

    sparse = sparse_batch(images, adc_window, pad_to, scale)
    shape = sparse.tensor.spatial_shape
    batch = len(images)
    image = torch.zeros((batch, 1, *shape))
    labels = torch.zeros((batch, *shape), dtype=torch.int64)
    instance = torch.full((batch, *shape), -1, dtype=torch.int64)
    c = sparse.tensor.coords.long()
    image[c[:, 0], 0, c[:, 1], c[:, 2]] = sparse.tensor.feats[:, 0]
    labelled = sparse.semantic >= 0
    two = torch.from_numpy(SEMANTIC_TO_TWO_CLASS.astype(np.int64))
    labels[c[labelled, 0], c[labelled, 1], c[labelled, 2]] = two[sparse.semantic[labelled]] + 1
    instance[c[labelled, 0], c[labelled, 1], c[labelled, 2]] = sparse.instance[labelled]
    vertex = torch.tensor([list(im.vertex) if im.vertex is not None else [-1, -1] for im in images])
    return DenseBatch(image, labels, instance, vertex)
