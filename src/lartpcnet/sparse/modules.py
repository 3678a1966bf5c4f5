"""Sparse layers as ``torch.nn.Module``s. Each takes and returns a :class:`SparseTensor`.

Convolution weights have shape ``(K, C_in, C_out)`` with ``K = kernel_size ** dim``. The first
axis enumerates kernel offsets in C order (last spatial dimension fastest), over
``range(-r, r + 1)`` per dimension for the odd kernels of submanifold convs and over
``range(0, kernel_size)`` for strided and transposed convs. All convolutions are
cross-correlations, like ``torch.nn.functional.conv2d``/``conv3d``: for a dense weight
``w`` of shape ``(C_out, C_in, *kernel)``, ``weight[k] == w[:, :, *offset_k].T``
(for a transposed conv, ``conv_transpose``'s ``(C_in, C_out, *kernel)`` weight gives
``weight[k] == w[:, :, *offset_k]``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lartpcnet.sparse import backend
from lartpcnet.sparse.kmap import strided_map
from lartpcnet.sparse.tensor import SparseTensor, add, cat


class SparseConvBase(nn.Module):
    """The weight, bias and input checks shared by the three convolutions; the computation is
    the backend's (``lartpcnet.sparse.backend``)."""

    def __init__(
        self, dim: int, in_channels: int, out_channels: int, kernel_size: int, bias: bool
    ) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        self.dim = dim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        volume = kernel_size**dim
        self.weight = nn.Parameter(torch.empty(volume, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's conv default (kaiming uniform, a = sqrt(5)) with fan_in = C_in * K.
        bound = 1.0 / math.sqrt(self.in_channels * self.weight.shape[0])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: SparseTensor) -> None:
        if x.dim != self.dim or x.num_channels != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.dim}D input with {self.in_channels} channels, "
                f"got {x.dim}D with {x.num_channels}"
            )

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, {self.in_channels} -> {self.out_channels}, "
            f"kernel_size={self.kernel_size}, bias={self.bias is not None}"
        )


class SubmanifoldConv(SparseConvBase):
    """Convolution whose outputs are exactly the input's active sites (odd kernel, stride 1).

    Equal to a dense ``convNd`` with ``padding = kernel_size // 2`` over the zero-filled image,
    read at the active sites: tracks stay thin instead of dilating layer after layer.
    """

    def __init__(
        self, dim: int, in_channels: int, out_channels: int, kernel_size: int = 3, bias: bool = False
    ) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"SubmanifoldConv needs an odd kernel_size, got {kernel_size}")
        super().__init__(dim, in_channels, out_channels, kernel_size, bias)

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check_input(x)
        return backend.current().submanifold(self, x)


class _Resampling(SparseConvBase):
    def __init__(self, dim: int, in_channels: int, out_channels: int, kernel_size: int = 2, stride: int = 2,
                 padding: int = 0, bias: bool = False) -> None:
        super().__init__(dim, in_channels, out_channels, kernel_size, bias)
        self.stride = stride
        self.padding = padding

    @property
    def step(self) -> tuple[int, int, int]:
        """(kernel, stride, padding): the down-sampling this conv makes or inverts."""
        return (self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", stride={self.stride}, padding={self.padding}"


class StridedConv(_Resampling):
    """Down-sampling convolution (typically kernel 2, stride 2).

    Equal to a dense strided ``convNd`` read at the output sites, which are the coarse cells
    whose receptive field holds at least one active input.
    """

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check_input(x)
        return backend.current().strided(self, x)


class TransposedConv(_Resampling):
    """Up-sampling convolution that inverts a :class:`StridedConv` of the same kernel, stride
    and padding applied earlier to the same input: the output sites are exactly that conv's
    input sites, in their original order.

    Equal to a dense ``conv_transposeNd`` read at those sites.
    """

    def forward(self, x: SparseTensor) -> SparseTensor:
        self._check_input(x)
        return backend.current().transposed(self, x)


class _Pool(nn.Module):
    def __init__(self, dim: int, kernel_size: int = 2, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _pairs(self, x: SparseTensor) -> tuple[torch.Tensor, tuple[int, ...], torch.Tensor, torch.Tensor, int]:
        coords, shape, kmap = strided_map(x.cache, x.level, self.kernel_size, self.stride, self.padding)
        src = torch.cat([i for i in kmap.in_idx if i is not None])
        dst = torch.cat([o for o in kmap.out_idx if o is not None])
        return coords, shape, src, dst, kmap.n_out

    @property
    def step(self) -> tuple[int, int, int]:
        return (self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool(_Pool):
    """Maximum over the active sites in each window (inactive sites do not count as zeros)."""

    def forward(self, x: SparseTensor) -> SparseTensor:
        coords, shape, src, dst, n_out = self._pairs(x)
        c = x.num_channels
        out = x.feats.new_zeros((n_out, c)).scatter_reduce(
            0, dst[:, None].expand(-1, c), x.feats.index_select(0, src), "amax", include_self=False
        )
        return x.coarser(self.step, coords, shape, out)


class AvgPool(_Pool):
    """Mean over the active sites in each window (inactive sites do not count as zeros)."""

    def forward(self, x: SparseTensor) -> SparseTensor:
        coords, shape, src, dst, n_out = self._pairs(x)
        out = x.feats.new_zeros((n_out, x.num_channels)).index_add_(0, dst, x.feats.index_select(0, src))
        count = torch.bincount(dst, minlength=n_out).clamp_(min=1).to(out.dtype)
        return x.coarser(self.step, coords, shape, out / count[:, None])


class Unpool(nn.Module):
    """Nearest-neighbour up-sampling that inverts the last :class:`MaxPool`/:class:`AvgPool` (or
    StridedConv) of the same kernel, stride and padding: every fine site takes its coarse cell's
    features (the sparse counterpart of interpolation up-sampling)."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: SparseTensor) -> SparseTensor:
        step = (self.kernel_size, self.stride, self.padding)
        down = x.finer_map(step, f"Unpool{step}")
        src = torch.cat([i for i in down.in_idx if i is not None])
        dst = torch.cat([o for o in down.out_idx if o is not None])
        feats = x.feats.new_zeros((down.n_in, x.num_channels))
        feats[src] = x.feats[dst]
        return x.finer(step, feats)


class BatchNorm(nn.BatchNorm1d):
    """Batch normalisation over the active sites only (empty inputs pass through)."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        if x.num_sites == 0:
            return x
        return x.replace(super().forward(x.feats))


class _Pointwise(nn.Module):
    """Applies a feature-wise torch module at every active site."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: SparseTensor) -> SparseTensor:
        return x.replace(self.module(x.feats))


class ReLU(_Pointwise):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__(nn.ReLU(inplace))


class LeakyReLU(_Pointwise):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(nn.LeakyReLU(negative_slope, inplace))


class Linear(_Pointwise):
    """A 1x1 convolution: the same linear map at every active site."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(nn.Linear(in_features, out_features, bias))


class Dropout(_Pointwise):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__(nn.Dropout(p))


class Cat(nn.Module):
    """Concatenates the features of tensors on the same sites (a U-Net skip connection)."""

    def forward(self, *xs: SparseTensor) -> SparseTensor:
        return cat(xs)


class Add(nn.Module):
    """Adds two tensors on the same sites (a residual connection)."""

    def forward(self, a: SparseTensor, b: SparseTensor) -> SparseTensor:
        return add(a, b)
