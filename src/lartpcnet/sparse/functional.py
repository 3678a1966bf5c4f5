"""The gather - matrix multiply - scatter convolution over a kernel map, with a hand-written backward.

A hand-written backward (rather than autograd through index_select/mm/index_add) keeps only the
input features and the weight for the backward pass, not one gathered copy per kernel offset,
and writes every offset's weight gradient straight into one ``(K, C_in, C_out)`` buffer.
"""

from __future__ import annotations

import torch

from lartpcnet.sparse.kmap import KernelMap


def sparse_conv(feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
    """``out[o] = sum over pairs (i, o, k) of feats[i] @ weight[k]`` (a cross-correlation).

    Under autocast (GPU fp16/bf16) the inputs are cast to the autocast dtype first and the
    products run with autocast off, so every partial sum has one dtype.
    """
    device_type = feats.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        feats, weight = feats.to(dtype), weight.to(dtype)
        with torch.autocast(device_type, enabled=False):
            return _SparseConv.apply(feats, weight, kmap)
    return _SparseConv.apply(feats, weight, kmap)


def _accumulate(
    out: torch.Tensor,
    src: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    gather: list[torch.Tensor | None],
    scatter: list[torch.Tensor | None],
    identity: int | None,
) -> torch.Tensor:
    """``out[scatter[k]] += src[gather[k]] @ weights[k]`` for every offset with pairs."""
    for k, w in enumerate(weights):
        if k == identity:
            continue
        g, s = gather[k], scatter[k]
        if g is None or g.numel() == 0:
            continue
        out.index_add_(0, s, torch.mm(src.index_select(0, g), w))
    return out


class _SparseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:  # type: ignore[override]
        # unbind gives views; indexing weight[k] inside autograd would zero-fill a full-size
        # gradient once per offset.
        weights = weight.unbind(0)
        if kmap.identity is not None:
            out = torch.mm(feats, weights[kmap.identity])
        else:
            out = feats.new_zeros((kmap.n_out, weight.shape[2]))
        _accumulate(out, feats, weights, kmap.in_idx, kmap.out_idx, kmap.identity)
        ctx.save_for_backward(feats, weight)
        ctx.kmap = kmap
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        feats, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        grad_out = grad_out.contiguous()
        grad_feats = grad_weight = None
        if ctx.needs_input_grad[0]:
            weights_t = tuple(w.t() for w in weight.unbind(0))
            if kmap.identity is not None:
                grad_feats = torch.mm(grad_out, weights_t[kmap.identity])
            else:
                grad_feats = feats.new_zeros(feats.shape)
            _accumulate(grad_feats, grad_out, weights_t, kmap.out_idx, kmap.in_idx, kmap.identity)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros_like(weight)
            for k, gw in enumerate(grad_weight.unbind(0)):
                if k == kmap.identity:
                    torch.mm(feats.t(), grad_out, out=gw)
                    continue
                g, s = kmap.in_idx[k], kmap.out_idx[k]
                if g is None or g.numel() == 0:
                    continue
                torch.mm(feats.index_select(0, g).t(), grad_out.index_select(0, s), out=gw)
        return grad_feats, grad_weight, None
