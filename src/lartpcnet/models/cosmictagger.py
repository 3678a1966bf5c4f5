"""The multi-plane cosmic/neutrino tagger (SBND cosmic paper, Table 1), sparse and dense.

The three wire planes of an event go through one U-ResNet with **shared weights**: they are
stacked in the batch (image ``b * planes + p`` is plane ``p`` of event ``b``), so one parameter set
serves every plane without a per-plane loop. Only the deepest level sees the planes together::

    stem: 7x7 conv, BN, LeakyReLU
    level (x depth): 2 residual blocks -> max pool -> 1x1 bottleneck doubling the filters
        deepest: concat planes -> 1x1 to 256 -> 5 residual 5x5 blocks -> 1x1 back -> split planes
    up (x depth): interpolate x2 -> 1x1 bottleneck halving the filters -> + the level's
        encoder output (additive skip) -> 2 residual blocks
    head: 1x1 conv to background / cosmic / neutrino

The paper's order is "interpolate, sum, bottleneck"; summing after the bottleneck lets the two
operands have the same filter count (the paper's Table 1 leaves that step implicit).

Variants (the paper's Table 2) are config switches: ``connections: concat`` (skips concatenated,
then a 1x1 conv), ``cross_plane: false`` (the deepest block sees one plane at a time, so planes
never exchange information), ``upsampling: convolutional`` (transposed conv instead of
interpolation), ``residual: false`` (plain conv blocks).

The sparse implementation runs every level on the active sites only (submanifold convs, sparse
max pool, nearest-neighbour unpooling onto the finer sites); its deepest level, 10 x 16 cells at
the paper's resolution and nearly all active, runs dense on the grid and is read back at each
plane's active cells. With every pixel active the two implementations compute the same thing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lartpcnet.models.layers import DenseOps, ResidualBlock, make_ops


class CosmicTaggerConfig(BaseModel):
    """Architecture; the defaults are the paper's baseline (Table 1)."""

    model_config = ConfigDict(extra="forbid")
    planes: int = Field(3, ge=1)
    classes: int = Field(3, ge=2)
    filters: int = Field(8, ge=1)  # after the 7x7 stem; doubled at each down-sampling
    depth: int = Field(6, ge=1, le=8)  # down-samplings: 640 x 1024 -> 10 x 16
    blocks: int = Field(2, ge=1)  # residual blocks per level and side
    deepest_filters: int = Field(256, ge=1)
    deepest_blocks: int = Field(5, ge=0)
    deepest_kernel: int = Field(5, ge=1)
    leaky: float = Field(0.01, ge=0.0)
    connections: Literal["sum", "concat"] = "sum"
    upsampling: Literal["interpolation", "convolutional"] = "interpolation"
    cross_plane: bool = True
    residual: bool = True
    sparse: bool = True

    @property
    def stride(self) -> int:
        """Image sizes must be multiples of this (2**depth)."""
        return 2**self.depth


def _bottleneck(ops, cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(ops.conv(cin, cout, 1), ops.norm(cout), ops.act())


class Deepest(nn.Module):
    """Planes concatenated (or, blocked, one at a time) on the dense coarsest grid."""

    def __init__(self, ops, c: int, config: CosmicTaggerConfig) -> None:
        super().__init__()
        self.ops, self.planes, self.cross = ops, config.planes, config.cross_plane
        wide = c * config.planes if config.cross_plane else c
        dense = DenseOps(2, config.leaky)
        c_deep, k_deep = config.deepest_filters, config.deepest_kernel
        self.block = nn.Sequential(
            _bottleneck(dense, wide, c_deep),
            *[ResidualBlock(dense, c_deep, c_deep, k_deep, config.residual) for _ in range(config.deepest_blocks)],
            _bottleneck(dense, config.deepest_filters, wide))

    def forward(self, x):
        grid = self.ops.to_grid(x)  # (B * planes, C, h, w)
        n, c, h, w = grid.shape
        if self.cross:
            grid = self.block(grid.reshape(n // self.planes, self.planes * c, h, w)).reshape(n, c, h, w)
        else:
            grid = self.block(grid)
        return self.ops.from_grid(grid, x)


class Level(nn.Module):
    """One resolution level and, recursively, every level below it."""

    def __init__(self, ops, c: int, depth: int, config: CosmicTaggerConfig) -> None:
        super().__init__()
        self.ops, self.concat = ops, config.connections == "concat"
        blocks = config.blocks
        self.encode = nn.Sequential(*[ResidualBlock(ops, c, c, 3, config.residual) for _ in range(blocks)])
        self.down = nn.Sequential(ops.pool(), _bottleneck(ops, c, 2 * c))
        self.inner = Level(ops, 2 * c, depth - 1, config) if depth > 1 else Deepest(ops, 2 * c, config)
        up = ops.interpolate() if config.upsampling == "interpolation" else ops.up(2 * c, 2 * c)
        self.up = nn.Sequential(up, _bottleneck(ops, 2 * c, c))
        self.merge = _bottleneck(ops, 2 * c, c) if self.concat else None
        self.decode = nn.Sequential(*[ResidualBlock(ops, c, c, 3, config.residual) for _ in range(blocks)])

    def forward(self, x):
        skip = self.encode(x)
        up = self.up(self.inner(self.down(skip)))
        merged = self.merge(self.ops.cat(skip, up)) if self.concat else self.ops.add(up, skip)
        return self.decode(merged)


class CosmicTagger(nn.Module):
    """Per-pixel background/cosmic/neutrino logits for every plane of every event.

    Sparse: a :class:`lartpcnet.sparse.SparseTensor` whose batch index is ``event * planes +
    plane``; dense: a ``(events * planes, 1, H, W)`` tensor. H and W must divide by 2**depth.
    """

    def __init__(self, config: CosmicTaggerConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = (config or CosmicTaggerConfig()).model_copy(update=overrides)
        c = self.config
        ops = make_ops(c.sparse, 2, c.leaky)
        self.stem = nn.Sequential(ops.conv(1, c.filters, 7), ops.norm(c.filters), ops.act())
        self.unet = Level(ops, c.filters, c.depth, c)
        self.head = ops.head(c.filters, c.classes)

    def forward(self, x):
        return self.head(self.unet(self.stem(x)))
