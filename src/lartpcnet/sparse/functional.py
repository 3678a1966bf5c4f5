"""The gather - matrix multiply - scatter convolution over a kernel map, with a hand-written backward.

Per kernel offset the input rows are gathered and multiplied by that offset's weight, each into
its slice of one buffer; then all offsets are scattered onto the output at once. On CPU that
scatter is one CSR sparse-matrix product (MKL), about 3x faster than one ``index_add_`` per
offset, which torch runs as an element-wise scatter with an expanded index; on GPU it is a
single ``index_add_``. The CSR matrices are built once per kernel map and cached with it.

A hand-written backward (rather than autograd through index_select/mm/index_add) keeps only the
input features and the weight for the backward pass, not one gathered copy per kernel offset,
and writes every offset's weight gradient straight into one ``(K, C_in, C_out)`` buffer.

bf16/fp16 products on CPU (``amp`` training, ``--precision bf16``) run in oneDNN, which builds
one kernel per matrix shape and keeps it in a cache: 4-6x faster than fp32 when the shape is
in the cache, slower than fp32 when it must be built. Pair counts are new with every event,
so every product would be built anew. In those dtypes the row counts are therefore padded up
to one of 4 sizes per octave (at most 25 % more rows, zero rows that change no sum), so shapes
recur across layers and events and their kernels are reused.
"""

from __future__ import annotations

import torch

from lartpcnet.sparse.kmap import KernelMap

# dtypes MKL's CSR product supports on CPU; others (bf16 under CPU autocast) use index_add_.
_CSR_DTYPES = (torch.float32, torch.float64)
# padded row counts (see above): None pads in bf16/fp16 on CPU; True/False force it (tests)
PAD_ROWS: bool | None = None


def padded_rows(m: int) -> int:
    """``m`` rounded up to 3 significant bits: 4 sizes per octave, at most 25 % more."""
    if m <= 16:
        return 16
    shift = m.bit_length() - 3
    return -(-m >> shift) << shift


def _pads(feats: torch.Tensor) -> bool:
    if PAD_ROWS is not None:
        return PAD_ROWS
    return feats.device.type == "cpu" and feats.dtype in (torch.bfloat16, torch.float16)


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
            return _function(feats).apply(feats, weight, kmap, bias)
    return _function(feats).apply(feats, weight, kmap, bias)


def _function(feats: torch.Tensor) -> type[torch.autograd.Function]:
    return _PaddedGatherMatmulScatter if _pads(feats) else _GatherMatmulScatter


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


class _PaddedLayout:
    """A kernel map's pairs with every offset's (and the centre's) row count padded
    (``padded_rows``). Padding entries of the gather indices point at a zero row appended to the
    gathered tensor, so padded products are zero; the scatter sends them to row 0."""

    def __init__(self, kmap: KernelMap) -> None:
        self.n_in_rows = max(padded_rows(kmap.n_in), kmap.n_in + 1)  # feats rows, zero tail
        self.n_out_rows = max(padded_rows(kmap.n_out), kmap.n_out + 1)
        self.centre_rows = padded_rows(kmap.n_out) if kmap.identity is not None else 0
        self.segments: list[tuple[int, int, int]] = []
        self.in_idx: dict[int, torch.Tensor] = {}
        self.out_idx: dict[int, torch.Tensor] = {}
        start = 0
        for k, _, _ in kmap.segments:
            pairs = kmap.in_idx[k].numel()
            rows = padded_rows(pairs)
            pad = rows - pairs
            self.in_idx[k] = torch.nn.functional.pad(kmap.in_idx[k], (0, pad), value=kmap.n_in)
            self.out_idx[k] = torch.nn.functional.pad(kmap.out_idx[k], (0, pad), value=kmap.n_out)
            self.segments.append((k, start, start + rows))
            start += rows
        self.total = start
        self.scatter_out = self._concatenated(self.out_idx, kmap.n_out)
        self.scatter_in = self._concatenated(self.in_idx, kmap.n_in)

    def _concatenated(self, index: dict[int, torch.Tensor], pad_value: int) -> torch.Tensor:
        if not index:
            return torch.zeros(0, dtype=torch.int64)
        cat = torch.cat([index[k] for k, _, _ in self.segments])
        return cat.masked_fill(cat == pad_value, 0)  # padded products are zero: add them to row 0

    @staticmethod
    def of(kmap: KernelMap) -> _PaddedLayout:
        if "padded" not in kmap._derived:
            kmap._derived["padded"] = _PaddedLayout(kmap)
        return kmap._derived["padded"]


def _zero_tail(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` with zero rows appended up to ``rows`` rows."""
    out = x.new_empty((rows, x.shape[1]))
    out[: x.shape[0]] = x
    out[x.shape[0]:] = 0
    return out


class _PaddedGatherMatmulScatter(torch.autograd.Function):
    """``_GatherMatmulScatter`` with padded row counts (see the module docstring); same sums."""

    @staticmethod
    def forward(ctx, feats: torch.Tensor, weight: torch.Tensor, kmap: KernelMap,  # type: ignore[override]
                bias: torch.Tensor | None) -> torch.Tensor:
        layout = _PaddedLayout.of(kmap)
        weights = weight.unbind(0)
        padded = _zero_tail(feats, max(layout.n_in_rows, layout.centre_rows))
        c_out = weight.shape[2]
        if kmap.identity is not None:
            rows = padded[: layout.centre_rows]
            out = torch.mm(rows, weights[kmap.identity]) if bias is None else torch.addmm(bias, rows,
                                                                                          weights[kmap.identity])
        elif bias is None:
            out = feats.new_zeros((kmap.n_out, c_out))
        else:
            out = bias.expand(kmap.n_out, c_out).contiguous()
        if layout.segments:
            products = feats.new_empty((layout.total, c_out))
            for k, start, stop in layout.segments:
                torch.mm(padded.index_select(0, layout.in_idx[k].to(feats.device)), weights[k],
                         out=products[start:stop])
            out.index_add_(0, layout.scatter_out.to(feats.device), products)
        ctx.save_for_backward(padded, weight)
        ctx.kmap = kmap
        ctx.has_bias = bias is not None
        return out[: kmap.n_out]

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        padded, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        layout = _PaddedLayout.of(kmap)
        grad_padded = _zero_tail(grad_out.contiguous(), max(layout.n_out_rows, layout.centre_rows))
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        weights_t = tuple(w.t() for w in weight.unbind(0))
        grad_feats = grad_weight = products = None
        centre = layout.centre_rows
        if need_feats:
            if kmap.identity is not None:
                grad_feats = torch.mm(grad_padded[:centre], weights_t[kmap.identity])
            else:
                grad_feats = padded.new_zeros((kmap.n_in, weight.shape[1]))
            products = padded.new_empty((layout.total, weight.shape[1]))
        if need_weight:
            grad_weight = torch.zeros_like(weight)
            if kmap.identity is not None:
                torch.mm(padded[:centre].t(), grad_padded[:centre], out=grad_weight[kmap.identity])
        for k, start, stop in layout.segments:
            grad_rows = grad_padded.index_select(0, layout.out_idx[k].to(padded.device))
            if need_feats:
                torch.mm(grad_rows, weights_t[k], out=products[start:stop])
            if need_weight:
                torch.mm(padded.index_select(0, layout.in_idx[k].to(padded.device)).t(), grad_rows,
                         out=grad_weight[k])
        if need_feats:
            if layout.segments:
                grad_feats.index_add_(0, layout.scatter_in.to(padded.device), products)
            grad_feats = grad_feats[: kmap.n_in]
        grad_bias = grad_out.sum(0) if ctx.has_bias and ctx.needs_input_grad[3] else None
        return grad_feats, grad_weight, None, grad_bias
