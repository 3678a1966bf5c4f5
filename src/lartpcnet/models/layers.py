"""Layer factories and the residual block that every network is built from, sparse or dense.

A network is written once against an ``ops`` object; :class:`SparseOps` gives
``lartpcnet.sparse`` layers on :class:`~lartpcnet.sparse.SparseTensor` s and :class:`DenseOps`
the torch layers on ``(B, C, *spatial)`` tensors with the same weights' shapes (see
:func:`copy_sparse_to_dense`), so the sparse network and its dense twin are the same
architecture layer for layer, and with every site active they compute the same thing.
"""

from __future__ import annotations

import torch
from torch import nn

from lartpcnet import sparse


class SparseOps:
    """Layer factories for SparseTensors (lartpcnet.sparse)."""

    sparse = True

    def __init__(self, dim: int, leaky: float = 0.0) -> None:
        self.dim, self.leaky = dim, leaky

    def conv(self, cin: int, cout: int, k: int = 3) -> nn.Module:
        return sparse.SubmanifoldConv(self.dim, cin, cout, k)

    def project(self, cin: int, cout: int) -> nn.Module:
        return sparse.SubmanifoldConv(self.dim, cin, cout, 1)

    def down(self, cin: int, cout: int, k: int = 2, stride: int = 2, padding: int = 0) -> nn.Module:
        return sparse.StridedConv(self.dim, cin, cout, k, stride, padding)

    def up(self, cin: int, cout: int) -> nn.Module:
        return sparse.TransposedConv(self.dim, cin, cout, 2, 2)

    def norm(self, c: int) -> nn.Module:
        return sparse.BatchNorm(c)

    def act(self) -> nn.Module:
        # in place: every activation follows a BN, conv or sum whose output nothing else reads
        return sparse.LeakyReLU(self.leaky, inplace=True) if self.leaky else sparse.ReLU(inplace=True)

    def pool(self, k: int = 2, stride: int | None = None, padding: int = 0) -> nn.Module:
        return sparse.MaxPool(self.dim, k, stride, padding)

    def interpolate(self) -> nn.Module:
        """Nearest-neighbour up-sampling onto the finer level's sites."""
        return sparse.Unpool(2)

    def head(self, cin: int, cout: int) -> nn.Module:
        return sparse.Linear(cin, cout)

    @staticmethod
    def cat(a, b):
        return sparse.cat([a, b])

    @staticmethod
    def add(a, b):
        return sparse.add(a, b)

    @staticmethod
    def to_grid(x: sparse.SparseTensor) -> torch.Tensor:
        return x.to_dense()

    @staticmethod
    def from_grid(grid: torch.Tensor, like: sparse.SparseTensor) -> sparse.SparseTensor:
        c = like.coords.long()
        return like.replace(grid[(c[:, 0], slice(None), *c[:, 1:].unbind(1))])


class DenseOps:
    """The same layers as torch dense convolutions on (B, C, *spatial) tensors."""

    sparse = False

    def __init__(self, dim: int, leaky: float = 0.0) -> None:
        self.dim, self.leaky = dim, leaky
        self._conv = nn.Conv2d if dim == 2 else nn.Conv3d
        self._convt = nn.ConvTranspose2d if dim == 2 else nn.ConvTranspose3d
        self._norm = nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d
        self._pool = nn.MaxPool2d if dim == 2 else nn.MaxPool3d

    def conv(self, cin: int, cout: int, k: int = 3) -> nn.Module:
        return self._conv(cin, cout, k, padding=k // 2, bias=False)

    def project(self, cin: int, cout: int) -> nn.Module:
        return self._conv(cin, cout, 1, bias=False)

    def down(self, cin: int, cout: int, k: int = 2, stride: int = 2, padding: int = 0) -> nn.Module:
        return self._conv(cin, cout, k, stride=stride, padding=padding, bias=False)

    def up(self, cin: int, cout: int) -> nn.Module:
        return self._convt(cin, cout, 2, stride=2, bias=False)

    def norm(self, c: int) -> nn.Module:
        return self._norm(c)

    def act(self) -> nn.Module:
        return nn.LeakyReLU(self.leaky, inplace=True) if self.leaky else nn.ReLU(inplace=True)

    def pool(self, k: int = 2, stride: int | None = None, padding: int = 0) -> nn.Module:
        return self._pool(k, stride, padding)

    def interpolate(self) -> nn.Module:
        return nn.Upsample(scale_factor=2, mode="nearest")

    def head(self, cin: int, cout: int) -> nn.Module:
        return self._conv(cin, cout, 1)

    @staticmethod
    def cat(a, b):
        return torch.cat([a, b], dim=1)

    @staticmethod
    def add(a, b):
        return a + b

    @staticmethod
    def to_grid(x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def from_grid(grid: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return grid


def make_ops(sparse_net: bool, dim: int, leaky: float = 0.0) -> SparseOps | DenseOps:
    return (SparseOps if sparse_net else DenseOps)(dim, leaky)


class ResidualBlock(nn.Module):
    """conv-BN-act-conv-BN plus the input (1x1-projected where the channels change), then act.
    ``residual=False``: the plain two-conv block, no skip."""

    def __init__(self, ops, cin: int, cout: int, k: int = 3, residual: bool = True) -> None:
        super().__init__()
        self.ops, self.residual = ops, residual
        self.main = nn.Sequential(ops.conv(cin, cout, k), ops.norm(cout), ops.act(), ops.conv(cout, cout, k),
                                  ops.norm(cout))
        self.skip = ops.project(cin, cout) if residual and cin != cout else nn.Identity()
        self.act = ops.act()

    def forward(self, x):
        y = self.main(x)
        return self.act(self.ops.add(y, self.skip(x)) if self.residual else y)


def copy_sparse_to_dense(sparse_model: nn.Module, dense_model: nn.Module) -> None:
    """Loads a sparse network's weights into its dense twin (torch layouts); for any model built
    from SparseOps and DenseOps."""
    dense_params = dict(dense_model.named_parameters())
    dense_buffers = dict(dense_model.named_buffers())
    with torch.no_grad():
        for name, value in sparse_model.named_parameters():
            target_name = name.replace(".module.", ".")  # sparse Linear wraps nn.Linear as .module
            target = dense_params[target_name]
            if value.dim() == 3:  # conv (K, C_in, C_out) -> torch layout
                dim = target.dim() - 2
                k = round(value.shape[0] ** (1 / dim))
                module = dense_model.get_submodule(target_name.rsplit(".", 1)[0])
                transposed = isinstance(module, nn.ConvTranspose2d | nn.ConvTranspose3d)
                order = (1, 2, 0) if transposed else (2, 1, 0)
                value = value.permute(*order).reshape(target.shape[0], target.shape[1], *(k,) * dim)
            elif value.dim() == 2:  # sparse Linear (C_out, C_in) -> 1x1 conv
                value = value.reshape(target.shape)
            target.copy_(value)
        for name, value in sparse_model.named_buffers():
            dense_buffers[name].copy_(value)
