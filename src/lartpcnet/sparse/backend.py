"""Convolution backends: the built-in engine (default) or spconv (optional, GPU).

The layers of ``lartpcnet.sparse.modules`` hold the weights and call the backend in force for
the computation: ``submanifold``, ``strided`` and ``transposed`` (the :class:`ConvBackend`
interface). The built-in one is here; spconv's adapter is ``lartpcnet.sparse.spconv_backend``,
imported only when chosen.

Select with ``set_backend("spconv")``, the ``sparse_backend`` config key, or the environment
variable ``LARTPCNET_SPARSE_BACKEND=spconv``.

spconv's CPU build is not a usable backend: its backward calls ``torch.cuda.current_stream()``
(fails on a CPU-only torch) and its OpenMP scatter races with more than one thread, silently
giving wrong sums. So spconv is accepted only for CUDA tensors; CPU tensors always use the
built-in engine.
"""

from __future__ import annotations

import os
from typing import Protocol

import torch

from lartpcnet.sparse.functional import sparse_conv
from lartpcnet.sparse.kmap import strided_map, submanifold_map
from lartpcnet.sparse.tensor import SparseTensor

BACKENDS = ("native", "spconv")
_chosen: str | None = None


class ConvLayer(Protocol):
    """What a backend reads off a conv layer (``lartpcnet.sparse.modules``)."""

    dim: int
    in_channels: int
    out_channels: int
    kernel_size: int
    weight: torch.Tensor  # (K, C_in, C_out)
    bias: torch.Tensor | None

    @property
    def step(self) -> tuple[int, int, int]: ...  # (kernel, stride, padding); strided and transposed convs


class ConvBackend(Protocol):
    def submanifold(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor: ...

    def strided(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor: ...

    def transposed(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor: ...


class NativeBackend:
    """The built-in engine: kernel maps (``kmap``) and gather-matmul-scatter (``functional``)."""

    def submanifold(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor:
        kmap = submanifold_map(x.cache, x.level, layer.kernel_size)
        return x.replace(sparse_conv(x.feats, layer.weight, kmap, layer.bias))

    def strided(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor:
        coords, shape, kmap = strided_map(x.cache, x.level, *layer.step)
        return x.coarser(layer.step, coords, shape, sparse_conv(x.feats, layer.weight, kmap, layer.bias))

    def transposed(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor:
        down = x.finer_map(layer.step, _describe(layer))
        return x.finer(layer.step, sparse_conv(x.feats, layer.weight, down.transposed(), layer.bias))


def _describe(layer: ConvLayer) -> str:
    kernel, stride, padding = layer.step
    return f"{type(layer).__name__}(kernel {kernel}, stride {stride}, padding {padding})"


NATIVE = NativeBackend()


def set_backend(name: str) -> None:
    """Chooses the conv backend for this process (``"native"`` or ``"spconv"``)."""
    global _chosen
    if name not in BACKENDS:
        raise ValueError(f"unknown sparse backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "spconv":
        from lartpcnet.sparse import spconv_backend

        spconv_backend.import_spconv()
    _chosen = name


def active() -> str:
    """The backend in force: set_backend's choice, else $LARTPCNET_SPARSE_BACKEND, else native."""
    if _chosen is not None:
        return _chosen
    name = os.environ.get("LARTPCNET_SPARSE_BACKEND", "native")
    if name not in BACKENDS:
        raise ValueError(
            f"LARTPCNET_SPARSE_BACKEND={name!r} is not a backend; choose one of {', '.join(BACKENDS)}"
        )
    return name


def current() -> ConvBackend:
    """The backend object in force (see ``active``)."""
    if active() == "native":
        return NATIVE
    from lartpcnet.sparse import spconv_backend

    return spconv_backend.SPCONV
