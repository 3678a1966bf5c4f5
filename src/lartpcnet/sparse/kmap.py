"""Kernel maps: which input site feeds which output site through which kernel offset.

Why this is fast
----------------
Every active site gets one int64 key, its linear index in a grid padded by the kernel radius on
every side. On that padded grid the neighbour at offset ``o`` of the site with key ``q`` has key
``q + delta(o)`` exactly, with no bounds tests and no wrap-around into the next row or event:
a whole offset is one vector add over all sites. Finding which of those neighbour keys are
active is then one vectorised lookup per offset, done one of two ways:

- a dense lookup table (``int32`` site index per grid cell) when the padded grid is small, as
  for 2D wire planes (a full 1008 x 3456 MicroBooNE plane is 14 MB): O(1) per query, a gather;
- sorted search otherwise (3D, where 512^3 cells would not fit): the keys are sorted once, and
  because adding a constant keeps them sorted, each offset's queries are an ascending sequence,
  so ``searchsorted`` walks memory in order and stays in cache.

For an odd submanifold kernel the map of offset ``-o`` is the map of ``o`` with input and output
swapped, so only half of the offsets are searched. All of this is plain torch, so it runs on the
device the coordinates live on.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# A dense lookup table is used when the padded grid has at most this many cells (int32 -> 64 MB),
# or at most LUT_CELLS_PER_SITE cells per active site. Beyond that sorted search is cheaper.
LUT_MAX_CELLS = 1 << 24
LUT_CELLS_PER_SITE = 512


@dataclass
class KernelMap:
    """Input/output row pairs per kernel offset.

    ``in_idx[k]`` and ``out_idx[k]`` are equal-length int64 index vectors: output row
    ``out_idx[k][i]`` receives ``feats[in_idx[k][i]] @ weight[k]``. ``identity`` is the offset
    whose map is the identity (the centre of a submanifold kernel), stored as ``None`` pairs and
    computed as one plain matrix product.
    """

    in_idx: list[torch.Tensor | None]
    out_idx: list[torch.Tensor | None]
    n_in: int
    n_out: int
    identity: int | None = None

    def __post_init__(self) -> None:
        # (offset, start, stop) of each offset's pairs in the concatenated pair list.
        self.segments: list[tuple[int, int, int]] = []
        start = 0
        for k, idx in enumerate(self.in_idx):
            if k == self.identity or idx is None or idx.numel() == 0:
                continue
            self.segments.append((k, start, start + idx.numel()))
            start += idx.numel()
        self.total_pairs = start
        self._derived: dict = {}

    @property
    def num_offsets(self) -> int:
        return len(self.in_idx)

    def concatenated(self, side: str) -> torch.Tensor:
        """All pairs' input (``side="in"``) or output rows, offset after offset."""
        key = ("cat", side)
        if key not in self._derived:
            lists = self.in_idx if side == "in" else self.out_idx
            parts = [lists[k] for k, _, _ in self.segments]
            self._derived[key] = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
        return self._derived[key]

    def scatter_matrix(self, side: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """CSR matrix ``S`` (rows of ``side`` x pairs) with ``(S @ Y)[r] = sum of Y[j] over pairs j
        whose ``side`` row is r``: the scatter-add of all offsets as one sparse product."""
        key = ("csr", side, dtype, device)
        if key not in self._derived:
            rows = self.concatenated(side).to(device)
            n = self.n_in if side == "in" else self.n_out
            crow = torch.zeros(n + 1, dtype=torch.int64, device=device)
            torch.cumsum(torch.bincount(rows, minlength=n), 0, out=crow[1:])
            cols = torch.argsort(rows, stable=True)
            values = torch.ones(rows.numel(), dtype=dtype, device=device)
            with warnings.catch_warnings():  # "CSR support is in beta": we use only CSR @ dense
                warnings.simplefilter("ignore", UserWarning)
                self._derived[key] = torch.sparse_csr_tensor(
                    crow, cols, values, size=(n, rows.numel()), check_invariants=False
                )
        return self._derived[key]

    def num_pairs(self) -> int:
        n = self.n_in if self.identity is not None else 0
        return n + sum(int(i.numel()) for i in self.in_idx if i is not None)

    def transposed(self) -> KernelMap:
        """The same pairs read backwards: the map of the transposed convolution."""
        if self.identity is not None:
            raise ValueError("only strided (non-submanifold) maps are transposed")
        key = ("transposed",)
        if key not in self._derived:
            self._derived[key] = KernelMap(self.out_idx, self.in_idx, self.n_out, self.n_in)
        return self._derived[key]


def kernel_offsets(dim: int, kernel_size: int, centred: bool) -> torch.Tensor:
    """``(K, dim)`` offsets in C order (last dimension fastest).

    Centred (submanifold, odd kernels) offsets run over ``range(-r, r + 1)``; strided-kernel
    offsets over ``range(0, kernel_size)``. This order defines the first axis of every conv weight.
    """
    if centred:
        if kernel_size % 2 != 1:
            raise ValueError(f"a submanifold kernel must have an odd size, got {kernel_size}")
        r = kernel_size // 2
        axis = range(-r, r + 1)
    else:
        axis = range(kernel_size)
    return torch.tensor(list(itertools.product(axis, repeat=dim)), dtype=torch.int64)


def coord_keys(coords: torch.Tensor, spatial_shape: Sequence[int], pad: int) -> torch.Tensor:
    """int64 linear index of each site in the batch of grids padded by ``pad`` on every side."""
    c = coords.long()
    key = c[:, 0].clone()
    for axis, size in enumerate(spatial_shape):
        key.mul_(size + 2 * pad).add_(c[:, axis + 1] + pad)
    return key


def _offset_deltas(offsets: torch.Tensor, spatial_shape: Sequence[int], pad: int) -> list[int]:
    padded = [s + 2 * pad for s in spatial_shape]
    strides = [math.prod(padded[i + 1 :]) for i in range(len(padded))]
    return [sum(int(o) * s for o, s in zip(row, strides, strict=True)) for row in offsets.tolist()]


class SiteIndex:
    """Answers 'which row holds the site with this key?' for one set of coordinates."""

    def __init__(
        self,
        coords: torch.Tensor,
        spatial_shape: Sequence[int],
        batch_size: int,
        pad: int,
        method: str = "auto",
    ) -> None:
        self.pad = pad
        self.spatial_shape = tuple(spatial_shape)
        self.keys = coord_keys(coords, spatial_shape, pad)
        cells = batch_size * math.prod(s + 2 * pad for s in spatial_shape)
        n = coords.shape[0]
        if method == "auto":
            small = cells <= LUT_MAX_CELLS or cells <= LUT_CELLS_PER_SITE * n
            method = "table" if small and cells < 2**31 else "sorted"
        if method not in ("table", "sorted"):
            raise ValueError(f"method must be 'auto', 'table' or 'sorted', got {method!r}")
        self.method = method
        if method == "table":
            self.table = torch.full((cells,), -1, dtype=torch.int32, device=coords.device)
            self.table[self.keys] = torch.arange(n, dtype=torch.int32, device=coords.device)
        else:
            self.sorted_keys, self.order = torch.sort(self.keys)

    def find(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(found, rows)``: positions in ``query`` whose key is active, and their rows."""
        if self.method == "table":
            rows = self.table[query]
            found = (rows >= 0).nonzero().squeeze(1)
            return found, rows[found].long()
        pos = torch.searchsorted(self.sorted_keys, query)
        pos.clamp_(max=max(self.sorted_keys.numel() - 1, 0))
        found = (self.sorted_keys[pos] == query).nonzero().squeeze(1)
        return found, self.order[pos[found]]

    def neighbour_pairs(self, delta: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(in_rows, out_rows)`` with ``site[in] = site[out] + offset``, for one offset's delta."""
        if self.method == "table":
            found, rows = self.find(self.keys + delta)
            return rows, found
        # Query in sorted order so searchsorted scans ascending keys, then put the pairs back in
        # row order: the conv then walks its feature rows forward instead of jumping at random,
        # which is what keeps the gathers and scatters in cache.
        found, rows = self.find(self.sorted_keys + delta)
        n = self.keys.numel()
        neighbour = torch.full((n,), -1, dtype=torch.int64, device=self.keys.device)
        neighbour[self.order[found]] = rows
        out_rows = (neighbour >= 0).nonzero().squeeze(1)
        return neighbour[out_rows], out_rows


def site_index(cache: dict, level: tuple, pad: int) -> SiteIndex:
    """The (cached) index of the sites of ``level``, on a grid padded by ``pad``."""
    key = ("index", level, pad)
    if key not in cache:
        coords, shape, batch = cache[("coords", level)]
        cache[key] = SiteIndex(coords, shape, batch, pad)
    return cache[key]


def submanifold_map(cache: dict, level: tuple, kernel_size: int) -> KernelMap:
    """Map of a submanifold conv: outputs are the input sites themselves."""
    key = ("subm", level, kernel_size)
    if key in cache:
        return cache[key]
    coords, shape, _ = cache[("coords", level)]
    n = coords.shape[0]
    offsets = kernel_offsets(len(shape), kernel_size, centred=True)
    num = offsets.shape[0]
    centre = num // 2
    in_idx: list[torch.Tensor | None] = [None] * num
    out_idx: list[torch.Tensor | None] = [None] * num
    if n:
        # not cached: the map is, and the 2D lookup table (14 MB for a MicroBooNE plane) would
        # otherwise stay alive for the whole forward pass
        coords, shape, batch = cache[("coords", level)]
        index = SiteIndex(coords, shape, batch, kernel_size // 2)
        deltas = _offset_deltas(offsets, shape, index.pad)
        for k in range(centre):
            rows_in, rows_out = index.neighbour_pairs(deltas[k])
            in_idx[k], out_idx[k] = rows_in, rows_out
            # Offset -o (index num-1-k in C order) pairs the same sites the other way round.
            in_idx[num - 1 - k], out_idx[num - 1 - k] = rows_out, rows_in
    else:
        empty = torch.zeros(0, dtype=torch.int64, device=coords.device)
        in_idx = [empty] * num
        out_idx = [empty] * num
    in_idx[centre] = out_idx[centre] = None
    kmap = KernelMap(in_idx, out_idx, n, n, identity=centre)
    cache[key] = kmap
    return kmap


def output_shape(spatial_shape: Sequence[int], kernel_size: int, stride: int, padding: int) -> tuple[int, ...]:
    """Spatial shape after a strided conv, with torch's rule ``(S + 2p - k) // s + 1``."""
    out = tuple((s + 2 * padding - kernel_size) // stride + 1 for s in spatial_shape)
    if min(out) < 1:
        raise ValueError(
            f"kernel {kernel_size} with stride {stride} and padding {padding} does not fit "
            f"spatial shape {tuple(spatial_shape)}"
        )
    return out


def strided_map(
    cache: dict, level: tuple, kernel_size: int, conv_stride: int, padding: int
) -> tuple[torch.Tensor, tuple[int, ...], KernelMap]:
    """Map of a strided (down-sampling) conv and the coarse sites it creates.

    An output site is active when its receptive field holds at least one active input, exactly
    the sites where a dense strided conv of the zero-filled image can be non-zero. The coarse
    coordinates are sorted by key (batch-major C order) so results are deterministic.
    They are cached as level ``level + ((kernel_size, conv_stride, padding),)``.
    """
    step = (kernel_size, conv_stride, padding)
    key = ("down", level, step)
    if key in cache:
        return cache[key]
    coords, shape, batch = cache[("coords", level)]
    out_shape = output_shape(shape, kernel_size, conv_stride, padding)
    dim = len(shape)
    offsets = kernel_offsets(dim, kernel_size, centred=False).to(coords.device)
    limit = torch.tensor(out_shape, device=coords.device)
    spatial = coords[:, 1:].long() + padding
    rows = torch.arange(coords.shape[0], device=coords.device)
    cand_in, cand_out, cand_k = [], [], []
    for k, off in enumerate(offsets):
        num = spatial - off
        target = torch.div(num, conv_stride, rounding_mode="floor")
        ok = ((num % conv_stride) == 0).all(1) & (num >= 0).all(1) & (target < limit).all(1)
        sel = ok.nonzero().squeeze(1)
        cand_in.append(rows[sel])
        cand_out.append(torch.cat([coords[sel, :1].long(), target[sel]], 1))
        cand_k.append(torch.full_like(sel, k))
    pair_in = torch.cat(cand_in)
    pair_coords = torch.cat(cand_out)
    pair_k = torch.cat(cand_k)
    pair_keys = coord_keys(pair_coords, out_shape, pad=0)
    unique_keys, pair_out = torch.unique(pair_keys, return_inverse=True)
    out_coords = _keys_to_coords(unique_keys, out_shape)
    in_idx: list[torch.Tensor | None] = []
    out_idx: list[torch.Tensor | None] = []
    for k in range(offsets.shape[0]):
        sel = (pair_k == k).nonzero().squeeze(1)
        in_idx.append(pair_in[sel])
        out_idx.append(pair_out[sel])
    kmap = KernelMap(in_idx, out_idx, coords.shape[0], out_coords.shape[0])
    result = (out_coords, out_shape, kmap)
    cache[key] = result
    cache[("coords", (*level, step))] = (out_coords, out_shape, batch)
    return result


def _keys_to_coords(keys: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    cols = []
    rest = keys.clone()
    for size in reversed(spatial_shape):
        cols.append(rest % size)
        rest = torch.div(rest, size, rounding_mode="floor")
    cols.append(rest)
    return torch.stack(cols[::-1], 1)
