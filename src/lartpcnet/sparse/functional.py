"""The gather - matrix multiply - scatter convolution over a kernel map, with a hand-written backward.

Per kernel offset the input rows are gathered and multiplied by that offset's weight, each into
its slice of one buffer; then all offsets are scattered onto the output at once. On CPU that
scatter is one CSR sparse-matrix product (MKL), about 3x faster than one ``index_add_`` per
offset, which torch runs as an element-wise scatter with an expanded index; on GPU it is a
single ``index_add_``. The CSR matrices are built once per kernel map and cached with it.

A hand-written backward (rather than autograd through index_select/mm/index_add) keeps only the
input features and the weight for the backward pass, not one gathered copy per kernel offset,
and writes every offset's weight gradient straight into one ``(K, C_in, C_out)`` buffer.
"""

from __future__ import annotations

import torch

from lartpcnet.sparse.kmap import KernelMap

# dtypes MKL's CSR product supports on CPU; others (bf16 under CPU autocast) use index_add_.
_CSR_DTYPES = (torch.float32, torch.float64)


def sparse_conv(feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """``out[o] = bias + sum over pairs (i, o, k) of feats[i] @ weight[k]`` (a cross-correlation).

    Under autocast (GPU fp16/bf16) the inputs are cast to the autocast dtype first and the
    products run with autocast off, so every partial sum has one dtype.
    """
    device_type = feats.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        feats, weight = feats.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(device_type, enabled=False):
            return _GatherMatmulScatter.apply(feats, weight, kmap, bias)
    return _GatherMatmulScatter.apply(feats, weight, kmap, bias)


def _scatter_add(target: torch.Tensor, kmap: KernelMap, side: str, rows: torch.Tensor) -> torch.Tensor:
    """``target[idx[j]] += rows[j]`` for the concatenated pair list of ``side`` ("in" or "out")."""
    if rows.shape[0] == 0:
        return target
    if target.device.type == "cpu" and rows.dtype in _CSR_DTYPES:
        return torch.addmm(target, kmap.scatter_matrix(side, rows.dtype, rows.device), rows)
    return target.index_add_(0, kmap.concatenated(side).to(rows.device), rows)


class _GatherMatmulScatter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap,  # type: ignore[override]
                bias: torch.Tensor | None) -> torch.Tensor:
        # unbind gives views; indexing weight[k] inside autograd would zero-fill a full-size
        # gradient once per offset.
        weights = weight.unbind(0)
        if kmap.identity is not None:  # the centre offset pairs every site with itself: one plain (add)mm
            out = torch.mm(feats, weights[kmap.identity]) if bias is None else torch.addmm(bias, feats,
                                                                                           weights[kmap.identity])
        elif bias is None:
            out = feats.new_zeros((kmap.n_out, weight.shape[2]))
        else:
            out = bias.expand(kmap.n_out, weight.shape[2]).contiguous()
        products = feats.new_empty((kmap.total_pairs, weight.shape[2]))
        for k, start, stop in kmap.segments:
            torch.mm(feats.index_select(0, kmap.in_idx[k]), weights[k], out=products[start:stop])
        out = _scatter_add(out, kmap, "out", products)
        ctx.save_for_backward(feats, weight)
        ctx.kmap = kmap
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        feats, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        grad_out = grad_out.contiguous()
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        weights_t = tuple(w.t() for w in weight.unbind(0))
        grad_feats = grad_weight = products = None
        if need_feats:
            if kmap.identity is not None:
                grad_feats = torch.mm(grad_out, weights_t[kmap.identity])
            else:
                grad_feats = feats.new_zeros(feats.shape)
            products = feats.new_empty((kmap.total_pairs, weight.shape[1]))
        if need_weight:
            grad_weight = torch.zeros_like(weight)
            if kmap.identity is not None:
                torch.mm(feats.t(), grad_out, out=grad_weight[kmap.identity])
        for k, start, stop in kmap.segments:
            # One gather of the upstream gradient serves both the input and the weight gradient.
            grad_rows = grad_out.index_select(0, kmap.out_idx[k])
            if need_feats:
                torch.mm(grad_rows, weights_t[k], out=products[start:stop])
            if need_weight:
                torch.mm(feats.index_select(0, kmap.in_idx[k]).t(), grad_rows, out=grad_weight[k])
        if need_feats:
            grad_feats = _scatter_add(grad_feats, kmap, "in", products)
        grad_bias = grad_out.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return grad_feats, grad_weight, None, grad_bias
