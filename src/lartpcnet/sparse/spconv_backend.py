"""spconv as a conv backend (CUDA only; see ``lartpcnet.sparse.backend``).

Our layers keep their ``(K, C_in, C_out)`` weights as the trained parameters; each call runs an
spconv twin of the layer with those weights, and spconv's indice pairs are shared through the
tensor's cache by every layer of one resolution level, as the native kernel maps are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from lartpcnet.sparse.tensor import SparseTensor

if TYPE_CHECKING:  # the interface this implements; backend imports this module when spconv is chosen
    from lartpcnet.sparse.backend import ConvLayer

# Only benchmarks/check_spconv_backend.py sets this, after pinning spconv to one thread and
# patching its stream call, to check this adapter against spconv's CPU build.
allow_cpu_for_checks = False


def import_spconv() -> Any:
    try:
        import spconv.pytorch as spconv_pytorch
    except ImportError as err:
        raise ValueError(
            "the spconv backend needs spconv installed (pip install spconv-cu12x matching your CUDA)"
        ) from err
    return spconv_pytorch


class SpconvBackend:
    def submanifold(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor:
        return x.replace(self._run(layer, x, "subm").features)

    def strided(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor:
        out = self._run(layer, x, "down")
        coords, shape = out.indices.long(), tuple(out.spatial_shape)
        x.cache[("coords", (*x.level, layer.step))] = (coords, shape, x.batch_size)
        return x.coarser(layer.step, coords, shape, out.features)

    def transposed(self, layer: ConvLayer, x: SparseTensor) -> SparseTensor:
        if not x.level or x.level[-1] != layer.step:
            raise ValueError(f"TransposedConv must invert the last StridedConv; this tensor came from {list(x.level)}")
        return x.finer(layer.step, self._run(layer, x, "up").features)

    def _run(self, layer: ConvLayer, x: SparseTensor, kind: str) -> Any:
        if x.feats.device.type != "cuda" and not allow_cpu_for_checks:
            # Not silently: the CPU build gives wrong answers with >1 thread (see backend's docstring).
            raise ValueError("the spconv backend runs only on CUDA tensors; use the native backend on CPU")
        spc = import_spconv()
        module = _twin(layer, x, kind, spc)
        indice_dict = x.cache.setdefault("spconv_indice_dict", {})
        sp_in = spc.SparseConvTensor(
            # spconv silently misreads non-contiguous indices (such as nonzero().int()): copy them.
            x.feats, x.coords.int().contiguous(), list(x.spatial_shape), x.batch_size, indice_dict=indice_dict
        )
        k, d = layer.kernel_size, layer.dim
        # ours (K, C_in, C_out), K in C order  ->  spconv KRSC (C_out, *kernel, C_in)
        krsc = layer.weight.view(*(k,) * d, layer.in_channels, layer.out_channels)
        params = {"weight": krsc.permute(d + 1, *range(d), d).contiguous()}
        if layer.bias is not None:
            params["bias"] = layer.bias
        out = torch.func.functional_call(module, params, (sp_in,))
        # spconv copies the dict on every conv and gives the new pairs to its output only.
        x.cache["spconv_indice_dict"] = out.indice_dict
        return out


def _twin(layer: ConvLayer, x: SparseTensor, kind: str, spc: Any) -> torch.nn.Module:
    """spconv twin of ``layer`` whose indice key is shared by all layers at the same level."""
    d = layer.dim
    if kind == "subm":
        key = f"subm_{x.level}_{layer.kernel_size}"
        cls, args = getattr(spc, f"SubMConv{d}d"), {}
    else:
        fine = x.level if kind == "down" else x.level[:-1]
        key = f"down_{fine}_{layer.step}"
        if kind == "down":
            cls, args = getattr(spc, f"SparseConv{d}d"), {"stride": layer.step[1], "padding": layer.step[2]}
        else:
            cls, args = getattr(spc, f"SparseInverseConv{d}d"), {}
    cached = getattr(layer, "_spconv_twin", None)
    if cached is None or cached[0] != key:
        module = cls(layer.in_channels, layer.out_channels, layer.kernel_size, bias=layer.bias is not None,
                     indice_key=key, **args).to(x.feats.device)
        object.__setattr__(layer, "_spconv_twin", (key, module))
    return layer._spconv_twin[1]


SPCONV = SpconvBackend()
