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
skip connection (a 1x1 conv where the channel count changes): ``models.layers``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lartpcnet.models.layers import ResidualBlock, make_ops


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
        ops = make_ops(c.sparse, c.dim, c.leaky)
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
