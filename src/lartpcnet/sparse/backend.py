"""Choice of convolution backend: the built-in engine (default) or spconv (optional, GPU).

Select with ``set_backend("spconv")``, the ``sparse_backend`` config key, or the environment
variable ``LARTPCNET_SPARSE_BACKEND=spconv``. spconv is imported only when chosen.

spconv's CPU build is not a usable backend: its backward calls ``torch.cuda.current_stream()``
(fails on a CPU-only torch) and its OpenMP scatter races with more than one thread, silently
giving wrong sums. So spconv is accepted only for CUDA tensors; CPU tensors always use the
built-in engine.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from lartpcnet.sparse.modules import _SparseConv
    from lartpcnet.sparse.tensor import SparseTensor

BACKENDS = ("native", "spconv")
_chosen: str | None = None
# Only benchmarks/check_spconv_backend.py sets this, after pinning spconv to one thread and
# patching its stream call, to check this adapter against spconv's CPU build.
_allow_cpu_for_checks = False


def set_backend(name: str) -> None:
    """Chooses the conv backend for this process (``"native"`` or ``"spconv"``)."""
    global _chosen
    if name not in BACKENDS:
        raise ValueError(f"unknown sparse backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name == "spconv":
        _import_spconv()
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


def _import_spconv() -> Any:
    try:
        import spconv.pytorch as spconv_pytorch
    except ImportError as err:
        raise ValueError(
            "the spconv backend needs spconv installed (pip install spconv-cu12x matching your CUDA)"
        ) from err
    return spconv_pytorch


def spconv_forward(layer: _SparseConv, x: SparseTensor, kind: str) -> SparseTensor:
    """Runs ``layer`` through spconv, keeping our weight as the parameter that is trained."""
    from lartpcnet.sparse.modules import _coarser
    from lartpcnet.sparse.tensor import SparseTensor

    if x.feats.device.type != "cuda" and not _allow_cpu_for_checks:
        # Not silently: the CPU build gives wrong answers with >1 thread (see module docstring).
        raise ValueError("the spconv backend runs only on CUDA tensors; use the native backend on CPU")
    spc = _import_spconv()
    module = _spconv_module(layer, x, kind, spc)
    indice_dict = x.cache.setdefault("spconv_indice_dict", {})
    sp_in = spc.SparseConvTensor(
        # spconv silently misreads non-contiguous indices (such as nonzero().int()): copy them.
        x.feats, x.coords.int().contiguous(), list(x.spatial_shape), x.batch_size, indice_dict=indice_dict
    )
    k, d = layer.kernel_size, layer.dim
    # ours (K, C_in, C_out), K in C order  ->  spconv KRSC (C_out, *kernel, C_in)
    krsc = layer.weight.view(*(k,) * d, layer.in_channels, layer.out_channels)
    krsc = krsc.permute(d + 1, *range(d), d).contiguous()
    params = {"weight": krsc}
    if layer.bias is not None:
        params["bias"] = layer.bias
    sp_out = torch.func.functional_call(module, params, (sp_in,))
    # spconv copies the dict on every conv and gives the new pairs to its output only.
    x.cache["spconv_indice_dict"] = sp_out.indice_dict
    if kind == "subm":
        return x.replace(sp_out.features)
    if kind == "down":
        coords = sp_out.indices.long()
        shape = tuple(sp_out.spatial_shape)
        x.cache[("coords", (*x.level, _step(layer)))] = (coords, shape, x.batch_size)
        return _coarser(x, layer, coords, shape, sp_out.features)
    if not x.level or x.level[-1] != _step(layer):
        raise ValueError(f"TransposedConv must invert the last StridedConv; this tensor came from {list(x.level)}")
    fine = x.level[:-1]
    coords, shape, batch = x.cache[("coords", fine)]
    stride = tuple(s // layer.stride for s in x.stride)
    return SparseTensor(coords, sp_out.features, shape, batch, stride, x.cache, check=False, level=fine)


def _step(layer: _SparseConv) -> tuple[int, int, int]:
    return (layer.kernel_size, layer.stride, layer.padding)  # type: ignore[return-value]


def _spconv_module(layer: _SparseConv, x: SparseTensor, kind: str, spc: Any) -> torch.nn.Module:
    """spconv twin of ``layer`` whose indice key is shared by all layers at the same level."""
    d = layer.dim
    if kind == "subm":
        key = f"subm_{x.level}_{layer.kernel_size}"
        cls = getattr(spc, f"SubMConv{d}d")
        args: dict[str, Any] = {}
    else:
        fine = x.level if kind == "down" else x.level[:-1]
        key = f"down_{fine}_{_step(layer)}"
        if kind == "down":
            cls = getattr(spc, f"SparseConv{d}d")
            args = {"stride": layer.stride, "padding": layer.padding}
        else:
            cls = getattr(spc, f"SparseInverseConv{d}d")
            args = {}
    cached = getattr(layer, "_spconv_twin", None)
    if cached is None or cached[0] != key:
        module = cls(
            layer.in_channels, layer.out_channels, layer.kernel_size,
            bias=layer.bias is not None, indice_key=key, **args,
        ).to(x.feats.device)
        object.__setattr__(layer, "_spconv_twin", (key, module))
    return layer._spconv_twin[1]
