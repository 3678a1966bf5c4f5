"""The sparse tensor: active-site coordinates, their features, and a shared cache of kernel maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from lartpcnet.sparse.kmap import KernelMap, coord_keys

Shape = tuple[int, ...]


class SparseTensor:
    """Features on the active sites of a batch of D-dimensional images (D = 2 or 3).

    - ``coords``: ``(N, 1 + D)`` integer tensor, batch index first, then the D spatial indices
      in the tensor's own grid (after any down-sampling).
    - ``feats``: ``(N, C)`` floating-point tensor, row ``i`` belonging to ``coords[i]``.
    - ``spatial_shape``: the grid size in each of the D dimensions at this tensor's resolution.
      It is metadata only and costs nothing, so a U-Net may round it up to a multiple of its
      total stride.
    - ``stride``: the cumulative down-sampling factor relative to the network input.

    Tensors derived from one another by the layers share ``cache``: kernel maps and the
    coordinates of every resolution level are built once per forward pass and reused (for
    example by the decoder of a U-Net, whose transposed convs invert the encoder's maps).
    ``level`` names this tensor's site set inside that cache: the sequence of
    ``(kernel, stride, padding)`` down-samplings that led to it from the input.
    """

    def __init__(
        self,
        coords: torch.Tensor,
        feats: torch.Tensor,
        spatial_shape: Sequence[int],
        batch_size: int | None = None,
        stride: int | Sequence[int] = 1,
        cache: dict[Any, Any] | None = None,
        check: bool = True,
        level: tuple = (),
    ) -> None:
        spatial_shape = tuple(int(s) for s in spatial_shape)
        dim = len(spatial_shape)
        if dim not in (2, 3):
            raise ValueError(f"spatial_shape must have 2 or 3 entries, got {spatial_shape}")
        if coords.dim() != 2 or coords.shape[1] != dim + 1:
            raise ValueError(
                f"coords must have shape (N, {dim + 1}) = (batch, {dim} spatial indices), "
                f"got {tuple(coords.shape)}"
            )
        if coords.dtype.is_floating_point or coords.dtype == torch.bool:
            raise ValueError(f"coords must be an integer tensor, got {coords.dtype}")
        if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
            raise ValueError(
                f"feats must have shape (N, C) with N = {coords.shape[0]} rows like coords, "
                f"got {tuple(feats.shape)}"
            )
        self.coords = coords
        self.feats = feats
        self.spatial_shape: Shape = spatial_shape
        self.stride: Shape = (stride,) * dim if isinstance(stride, int) else tuple(stride)
        if batch_size is None:
            batch_size = int(coords[:, 0].max()) + 1 if coords.shape[0] else 1
        self.batch_size = int(batch_size)
        if check:
            self._check_bounds()
        self.level = level
        self.cache: dict[Any, Any] = {} if cache is None else cache
        self.cache.setdefault(("coords", level), (coords, spatial_shape, self.batch_size))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_dense(
        cls, dense: torch.Tensor, mask: torch.Tensor | None = None
    ) -> SparseTensor:
        """Active sites are where ``mask`` (``(B, *spatial)``) is true, by default any non-zero channel.

        ``dense`` has shape ``(B, C, *spatial)`` like a torch conv input.
        """
        if dense.dim() not in (4, 5):
            raise ValueError(f"dense must be (B, C, H, W) or (B, C, D, H, W), got {tuple(dense.shape)}")
        if mask is None:
            mask = (dense != 0).any(dim=1)
        coords = mask.nonzero()
        index = (coords[:, 0], slice(None), *coords[:, 1:].unbind(1))
        feats = dense[index]
        return cls(coords, feats, dense.shape[2:], batch_size=dense.shape[0], check=False)

    @classmethod
    def from_events(
        cls,
        coords: Sequence[torch.Tensor],
        feats: Sequence[torch.Tensor],
        spatial_shape: Sequence[int],
        reduce: str = "sum",
    ) -> SparseTensor:
        """Batches per-event ``(N_i, D)`` coordinates and ``(N_i, C)`` features.

        Duplicate coordinates within an event are merged with ``reduce`` (``"sum"`` or ``"max"``),
        so energy deposits landing in the same pixel add up.
        """
        if len(coords) != len(feats):
            raise ValueError(f"got {len(coords)} coordinate arrays but {len(feats)} feature arrays")
        if reduce not in ("sum", "max"):
            raise ValueError(f"reduce must be 'sum' or 'max', got {reduce!r}")
        dim = len(spatial_shape)
        blocks = []
        for b, (c, f) in enumerate(zip(coords, feats, strict=True)):
            c = torch.as_tensor(c)
            if c.dim() != 2 or c.shape[1] != dim or f.shape[0] != c.shape[0]:
                raise ValueError(
                    f"event {b}: coords must be (N, {dim}) and feats (N, C) with equal N, "
                    f"got {tuple(c.shape)} and {tuple(f.shape)}"
                )
            blocks.append(torch.cat([torch.full((c.shape[0], 1), b, dtype=torch.int64), c.long()], 1))
        all_coords = torch.cat(blocks) if blocks else torch.zeros((0, dim + 1), dtype=torch.int64)
        all_feats = torch.cat([torch.as_tensor(f) for f in feats]) if feats else torch.zeros((0, 1))
        out = cls(all_coords, all_feats, spatial_shape, batch_size=max(len(coords), 1))
        return out.merge_duplicates(reduce)

    def merge_duplicates(self, reduce: str = "sum") -> SparseTensor:
        """Returns a tensor with each coordinate once, features of repeats summed or maxed."""
        keys = coord_keys(self.coords, self.spatial_shape, pad=0)
        unique, inverse = torch.unique(keys, return_inverse=True)
        if unique.numel() == keys.numel():
            return self
        first = torch.full((unique.numel(),), keys.numel(), dtype=torch.int64)
        first.scatter_reduce_(0, inverse, torch.arange(keys.numel()), "amin")
        feats = self.feats.new_zeros((unique.numel(), self.feats.shape[1]))
        op = "sum" if reduce == "sum" else "amax"
        feats.scatter_reduce_(
            0, inverse[:, None].expand_as(self.feats), self.feats, op, include_self=False
        )
        return SparseTensor(
            self.coords[first], feats, self.spatial_shape, self.batch_size, check=False
        )

    def replace(self, feats: torch.Tensor) -> SparseTensor:
        """Same sites (and shared cache), new features."""
        if feats.shape[0] != self.coords.shape[0]:
            raise ValueError(f"expected {self.coords.shape[0]} feature rows, got {feats.shape[0]}")
        return SparseTensor(
            self.coords, feats, self.spatial_shape, self.batch_size, self.stride, self.cache,
            check=False, level=self.level,
        )

    # -- resolution levels --------------------------------------------------------------
    def coarser(self, step: tuple[int, int, int], coords: torch.Tensor, spatial_shape: Sequence[int],
                feats: torch.Tensor) -> SparseTensor:
        """The tensor that a down-sampling of ``step`` = (kernel, stride, padding), a strided conv
        or a pool, made from this one: ``coords`` at the coarser level, sharing the cache."""
        return SparseTensor(coords, feats, spatial_shape, self.batch_size, tuple(s * step[1] for s in self.stride),
                            self.cache, check=False, level=(*self.level, step))

    def finer_map(self, step: tuple[int, int, int], layer: str) -> KernelMap:
        """The kernel map of the down-sampling ``step`` that made this tensor, which ``layer`` (a
        transposed conv or an unpool) inverts; a ValueError when it was not the last one."""
        if not self.level or self.level[-1] != step:
            raise ValueError(f"{layer} must invert the last down-sampling applied to this tensor, whose "
                             f"down-samplings were {list(self.level)} as (kernel, stride, padding)")
        return self.cache[("down", self.level[:-1], step)][2]

    def finer(self, step: tuple[int, int, int], feats: torch.Tensor) -> SparseTensor:
        """``feats`` on the sites this tensor was down-sampled from by ``step``, in their order."""
        fine = self.level[:-1]
        coords, shape, batch = self.cache[("coords", fine)]
        return SparseTensor(coords, feats, shape, batch, tuple(s // step[1] for s in self.stride), self.cache,
                            check=False, level=fine)

    # -- conversion ---------------------------------------------------------------------
    def to_dense(self) -> torch.Tensor:
        """``(B, C, *spatial_shape)`` with zeros at inactive sites."""
        out = self.feats.new_zeros((self.batch_size, self.feats.shape[1], *self.spatial_shape))
        c = self.coords.long()
        out[(c[:, 0], slice(None), *c[:, 1:].unbind(1))] = self.feats
        return out

    def to(self, *args: Any, **kwargs: Any) -> SparseTensor:
        """Moves features (and coordinates, for a device change) like ``torch.Tensor.to``."""
        feats = self.feats.to(*args, **kwargs)
        coords = self.coords.to(feats.device)
        if coords.device == self.coords.device:
            return SparseTensor(
                coords, feats, self.spatial_shape, self.batch_size, self.stride, self.cache,
                check=False, level=self.level,
            )
        return SparseTensor(coords, feats, self.spatial_shape, self.batch_size, self.stride, check=False)

    # -- properties ---------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.spatial_shape)

    @property
    def num_sites(self) -> int:
        return int(self.coords.shape[0])

    @property
    def num_channels(self) -> int:
        return int(self.feats.shape[1])

    def same_sites(self, other: SparseTensor) -> bool:
        """True when both tensors hold the same coordinates in the same order."""
        return self.coords is other.coords or (
            self.coords.shape == other.coords.shape and bool(torch.equal(self.coords, other.coords))
        )

    def __repr__(self) -> str:
        return (
            f"SparseTensor(sites={self.num_sites}, channels={self.num_channels}, "
            f"spatial_shape={self.spatial_shape}, batch_size={self.batch_size}, stride={self.stride})"
        )

    def _check_bounds(self) -> None:
        if self.coords.shape[0] == 0:
            return
        lo = self.coords.amin(0)
        hi = self.coords.amax(0)
        limits = (self.batch_size, *self.spatial_shape)
        for axis, (a, b, n) in enumerate(zip(lo.tolist(), hi.tolist(), limits, strict=True)):
            if a < 0 or b >= n:
                name = "batch index" if axis == 0 else f"spatial axis {axis - 1}"
                raise ValueError(
                    f"coordinate out of range on {name}: values span [{a}, {b}] but the size is {n}"
                )


def cat(tensors: Sequence[SparseTensor]) -> SparseTensor:
    """Concatenates features along channels; all tensors must share their sites."""
    first = tensors[0]
    for t in tensors[1:]:
        if not first.same_sites(t):
            raise ValueError("cat needs tensors on the same sites in the same order")
    return first.replace(torch.cat([t.feats for t in tensors], dim=1))


def add(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """Element-wise sum of two tensors on the same sites (a residual connection)."""
    if not a.same_sites(b):
        raise ValueError("add needs tensors on the same sites in the same order")
    return a.replace(a.feats + b.feats)
