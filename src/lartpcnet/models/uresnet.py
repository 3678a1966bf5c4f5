"""U-ResNet for semantic segmentation: sparse (SparseSSNet, Domine & Terao) and dense (MicroBooNE 2019).

One recursive definition builds both, from either sparse or dense layer factories, so the two are
the same architecture layer for layer (with every site active they compute the same thing, which
tests/test_uresnet.py checks). A level is::

    residual blocks -> [down: strided conv -> deeper level -> up: transposed conv] -> concat -> residual blocks

Depth is the number of resolution levels, as in the code behind the papers (mlreco's and SPINE's
``num_strides``/``depth``): the published "depth 5, 32 filters" networks have levels of 32, 64, 96,
128 and 160 filters and 4 down-samplings. (Domine & Terao's text counts the down-samplings, but
their figures come from that code.) Filters grow linearly with depth (sparse, Domine & Terao)
or double (dense). Each residual block is two 3x3 convs with batch norm and (leaky) ReLU plus a
skip connection (a 1x1 conv where the channel count changes).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lartpcnet import sparse


class UResNetConfig(BaseModel):
    """Architecture of a U-ResNet; the defaults are SparseSSNet's (depth 5, 32 filters, 5 classes)."""

    model_config = ConfigDict(extra="forbid")
    dim: Literal[2, 3] = 2
    in_channels: int = Field(1, ge=1)
    classes: int = Field(5, ge=2)
    depth: int = Field(5, ge=1, le=9)  # resolution levels; depth - 1 down-samplings
    filters: int = Field(32, ge=1)
    growth: Literal["linear", "doubling"] = "linear"
    reps: int = Field(2, ge=1)
    leaky: float = Field(0.0, ge=0.0)  # 0: ReLU
    sparse: bool = True

    def planes(self) -> list[int]:
        if self.growth == "linear":
            return [self.filters * (k + 1) for k in range(self.depth)]
        return [self.filters * 2**k for k in range(self.depth)]

    @property
    def stride(self) -> int:
        """The deepest level's stride: spatial sizes must be (or are padded to) multiples of it."""
        return 2 ** (self.depth - 1)


class _SparseOps:
    """Layer factories for SparseTensors (lartpcnet.sparse)."""

    def __init__(self, dim: int, leaky: float) -> None:
        self.dim, self.leaky = dim, leaky

    def conv(self, cin: int, cout: int) -> nn.Module:
        return sparse.SubmanifoldConv(self.dim, cin, cout, 3)

    def project(self, cin: int, cout: int) -> nn.Module:
        return sparse.SubmanifoldConv(self.dim, cin, cout, 1)

    def down(self, cin: int, cout: int) -> nn.Module:
        return sparse.StridedConv(self.dim, cin, cout, 2, 2)

    def up(self, cin: int, cout: int) -> nn.Module:
        return sparse.TransposedConv(self.dim, cin, cout, 2, 2)

    def norm(self, c: int) -> nn.Module:
        return sparse.BatchNorm(c)

    def act(self) -> nn.Module:
        # in place: every activation follows a BN, conv or sum whose output nothing else reads
        return sparse.LeakyReLU(self.leaky, inplace=True) if self.leaky else sparse.ReLU(inplace=True)

    def head(self, cin: int, cout: int) -> nn.Module:
        return sparse.Linear(cin, cout)

    @staticmethod
    def cat(a, b):
        return sparse.cat([a, b])

    @staticmethod
    def add(a, b):
        return sparse.add(a, b)


class _DenseOps:
    """The same layers as torch dense convolutions on (B, C, *spatial) tensors."""

    def __init__(self, dim: int, leaky: float) -> None:
        self.dim, self.leaky = dim, leaky
        self._conv = nn.Conv2d if dim == 2 else nn.Conv3d
        self._convt = nn.ConvTranspose2d if dim == 2 else nn.ConvTranspose3d
        self._norm = nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d

    def conv(self, cin: int, cout: int) -> nn.Module:
        return self._conv(cin, cout, 3, padding=1, bias=False)

    def project(self, cin: int, cout: int) -> nn.Module:
        return self._conv(cin, cout, 1, bias=False)

    def down(self, cin: int, cout: int) -> nn.Module:
        return self._conv(cin, cout, 2, stride=2, bias=False)

    def up(self, cin: int, cout: int) -> nn.Module:
        return self._convt(cin, cout, 2, stride=2, bias=False)

    def norm(self, c: int) -> nn.Module:
        return self._norm(c)

    def act(self) -> nn.Module:
        return nn.LeakyReLU(self.leaky, inplace=True) if self.leaky else nn.ReLU(inplace=True)

    def head(self, cin: int, cout: int) -> nn.Module:
        return self._conv(cin, cout, 1)

    @staticmethod
    def cat(a, b):
        return torch.cat([a, b], dim=1)

    @staticmethod
    def add(a, b):
        return a + b


class ResidualBlock(nn.Module):
    """conv-BN-act-conv-BN plus the input (1x1-projected if channels change), then act."""

    def __init__(self, ops, cin: int, cout: int) -> None:
        super().__init__()
        self.ops = ops
        self.main = nn.Sequential(ops.conv(cin, cout), ops.norm(cout), ops.act(), ops.conv(cout, cout), ops.norm(cout))
        self.skip = ops.project(cin, cout) if cin != cout else nn.Identity()
        self.act = ops.act()

    def forward(self, x):
        return self.act(self.ops.add(self.main(x), self.skip(x)))


class Level(nn.Module):
    """One resolution level of the U-Net and, recursively, all the levels below it."""

    def __init__(self, ops, planes: list[int], reps: int) -> None:
        super().__init__()
        self.ops = ops
        self.encode = nn.Sequential(*[ResidualBlock(ops, planes[0], planes[0]) for _ in range(reps)])
        self.deeper = len(planes) > 1
        if self.deeper:
            self.down = nn.Sequential(ops.norm(planes[0]), ops.act(), ops.down(planes[0], planes[1]))
            self.inner = Level(ops, planes[1:], reps)
            self.up = nn.Sequential(ops.norm(planes[1]), ops.act(), ops.up(planes[1], planes[0]))
            self.decode = nn.Sequential(ResidualBlock(ops, 2 * planes[0], planes[0]),
                                        *[ResidualBlock(ops, planes[0], planes[0]) for _ in range(reps - 1)])

    def forward(self, x):
        x = self.encode(x)
        if not self.deeper:
            return x
        return self.decode(self.ops.cat(x, self.up(self.inner(self.down(x)))))


class UResNet(nn.Module):
    """Input conv -> U-Net levels -> BN, act -> per-site class scores (logits).

    Sparse models take and return a :class:`lartpcnet.sparse.SparseTensor`; dense models a
    ``(B, C, *spatial)`` tensor. Spatial sizes must divide by 2**(depth - 1) (see ``padded_shape``).
    """

    def __init__(self, config: UResNetConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = (config or UResNetConfig()).model_copy(update=overrides)
        c = self.config
        ops = (_SparseOps if c.sparse else _DenseOps)(c.dim, c.leaky)
        planes = c.planes()
        self.stem = ops.conv(c.in_channels, planes[0])
        self.unet = Level(ops, planes, c.reps)
        self.head = nn.Sequential(ops.norm(planes[0]), ops.act(), ops.head(planes[0], c.classes))

    def forward(self, x):
        return self.head(self.unet(self.stem(x)))

    def padded_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``shape`` rounded up to a multiple of the deepest stride (free for sparse tensors)."""
        step = self.config.stride
        return tuple(-(-s // step) * step for s in shape)


def copy_sparse_to_dense(sparse_model: nn.Module, dense_model: nn.Module) -> None:
    """Loads a sparse network's weights into the dense one of the same config (torch layouts);
    for any model built from a sparse and a dense layer factory (U-ResNet, cosmic tagger)."""
    dense_params = dict(dense_model.named_parameters())
    dense_buffers = dict(dense_model.named_buffers())
    with torch.no_grad():
        for name, value in sparse_model.named_parameters():
            target_name = name.replace(".module.", ".")  # sparse Linear wraps nn.Linear as .module
            target = dense_params[target_name]
            if value.dim() == 3:  # conv (K, C_in, C_out) -> torch layout
                dim = target.dim() - 2
                k = round(value.shape[0] ** (1 / dim))
                transposed = isinstance(_module(dense_model, target_name), nn.ConvTranspose2d | nn.ConvTranspose3d)
                order = (1, 2, 0) if transposed else (2, 1, 0)
                value = value.permute(*order).reshape(target.shape[0], target.shape[1], *(k,) * dim)
            elif value.dim() == 2:  # sparse Linear (C_out, C_in) -> 1x1 conv
                value = value.reshape(target.shape)
            target.copy_(value)
        for name, value in sparse_model.named_buffers():
            dense_buffers[name].copy_(value)


def _module(model: nn.Module, parameter_name: str) -> nn.Module:
    return model.get_submodule(parameter_name.rsplit(".", 1)[0])
