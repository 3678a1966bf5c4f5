"""Generic detection ops in plain torch: IoU, the box coder, NMS, anchors, RoIAlign, mask pasting.

(torchvision is not a dependency; each op is checked against a brute-force reference in
tests/test_maskrcnn_boxes.py.)

Conventions. A box is ``(x1, y1, x2, y2)`` in continuous pixel coordinates, x along image
columns (wires) and y along rows (ticks). Pixel ``(row r, column c)`` covers ``[c, c + 1) x
[r, r + 1)`` and has its centre at ``(c + 0.5, r + 0.5)``, so the tight box of a set of pixels is
``(c_min, r_min, c_max + 1, r_max + 1)`` and a box's width is ``x2 - x1`` (no legacy "+ 1").
RoIs for :func:`roi_align` carry the image index first: ``(b, x1, y1, x2, y2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# Detectron's clamp on decoded log-sizes: no box grows more than 1000/16 times its reference.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` intersection over union; 0 where both boxes are empty."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return a.new_zeros((a.shape[0], b.shape[0]))
    lo = torch.maximum(a[:, None, :2], b[None, :, :2])
    hi = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (hi - lo).clamp(min=0).prod(2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def clip_boxes(boxes: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Boxes cut to an image of ``shape = (rows, columns)``."""
    x = boxes[..., 0::2].clamp(0, shape[1])
    y = boxes[..., 1::2].clamp(0, shape[0])
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], -1)


def tight_boxes(rows: torch.Tensor, cols: torch.Tensor, owner: torch.Tensor, count: int) -> torch.Tensor:
    """``(count, 4)`` tight boxes of the pixels ``(rows, cols)`` owned by boxes ``0 .. count - 1``
    (a box with no pixels is all zeros)."""
    out = torch.zeros((count, 4), dtype=torch.float32)
    if count == 0 or owner.numel() == 0:
        return out
    big = torch.iinfo(torch.int64).max
    for k, (values, reduce, shift) in enumerate(((cols, "amin", 0), (rows, "amin", 0),
                                                 (cols, "amax", 1), (rows, "amax", 1))):
        start = torch.full((count,), big if reduce == "amin" else -1, dtype=torch.int64)
        start.scatter_reduce_(0, owner, values.long(), reduce)
        out[:, k] = (start + shift).float()
    out[torch.bincount(owner, minlength=count) == 0] = 0
    return out


class BoxCoder:
    """Faster R-CNN's box parametrisation: centre offsets in units of the reference size and log
    size ratios, each multiplied by ``weights`` (RPN (1, 1, 1, 1), RoI heads (10, 10, 5, 5))."""

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip: float = BBOX_XFORM_CLIP) -> None:
        self.weights = tuple(float(w) for w in weights)
        self.clip = clip

    @staticmethod
    def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
        w = boxes[..., 2] - boxes[..., 0]
        h = boxes[..., 3] - boxes[..., 1]
        return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h

    def encode(self, reference: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Deltas that turn ``reference`` boxes into ``target`` boxes (both ``(N, 4)``)."""
        wx, wy, ww, wh = self.weights
        rx, ry, rw, rh = self._centre_size(reference)
        tx, ty, tw, th = self._centre_size(target)
        rw, rh = rw.clamp(min=1e-6), rh.clamp(min=1e-6)  # degenerate references: finite deltas
        return torch.stack([wx * (tx - rx) / rw, wy * (ty - ry) / rh,
                            ww * torch.log(tw.clamp(min=1e-6) / rw), wh * torch.log(th.clamp(min=1e-6) / rh)], -1)

    def decode(self, deltas: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Boxes from ``deltas`` ``(N, 4k)`` (k boxes per reference, e.g. one per class) -> ``(N, 4k)``."""
        n = reference.shape[0]
        d = deltas.reshape(n, -1, 4)
        wx, wy, ww, wh = self.weights
        rx, ry, rw, rh = (t[:, None] for t in self._centre_size(reference))
        cx = d[..., 0] / wx * rw + rx
        cy = d[..., 1] / wy * rh + ry
        w = torch.exp((d[..., 2] / ww).clamp(max=self.clip)) * rw
        h = torch.exp((d[..., 3] / wh).clamp(max=self.clip)) * rh
        return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1).reshape(n, -1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, block: int = 1024) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of the kept boxes, highest score first.

    A box is dropped when its IoU with a kept, higher-scoring box exceeds ``threshold``. The
    overlap matrix is built in row blocks (bounded memory) and the greedy pass runs in numpy.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].detach()
    over = np.empty((n, n), dtype=bool)
    for start in range(0, n, block):
        over[start:start + block] = (box_iou(b[start:start + block], b) > threshold).cpu().numpy()
    removed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if removed[i]:
            continue
        keep.append(i)
        removed[i + 1:] |= over[i, i + 1:]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS within each group (class) only: boxes of different groups never suppress each other."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    shift = groups.to(boxes.dtype)[:, None] * (boxes.max() - boxes.min() + 1)
    return nms(boxes + shift, scores, threshold)


def anchors(feature_shape: Sequence[int], stride: int, sizes: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
    """``(H * W * A, 4)`` anchors, location-major (row, column, anchor): each of the ``A =
    len(sizes) * len(ratios)`` shapes (ratio = height / width, area = size**2) is centred on
    every feature cell's centre ``((j + 0.5) * stride, (i + 0.5) * stride)``."""
    shapes = []
    for size in sizes:
        for ratio in ratios:
            w = size / math.sqrt(ratio)
            shapes.append((w, w * ratio))
    half = 0.5 * torch.tensor(shapes, dtype=torch.float32)  # (A, 2): half width, half height
    ys = (torch.arange(feature_shape[0], dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(feature_shape[1], dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centre = torch.stack([cx, cy], -1).reshape(-1, 1, 2)
    return torch.cat([centre - half, centre + half], -1).reshape(-1, 4)


def _bilinear_corners(coord: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
    """RoIAlign's bilinear rule along one axis (Detectron / torchvision): samples more than one
    cell outside the map count zero; others clamp to ``[0, size - 1]``."""
    valid = (coord >= -1.0) & (coord <= size)
    c = coord.clamp(min=0)
    low = c.floor().long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    c = torch.where(low >= size - 1, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1 - frac, frac, valid


def _axis_weights(start: torch.Tensor, bin_size: torch.Tensor, grid: torch.Tensor, output_size: int,
                  size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One axis of RoIAlign as a matrix: ``(K, S, L)`` weights of the ``L`` map cells from ``first``
    (``(K,)``, so that ``first + L <= size``) that each output bin averages over its samples."""
    k = start.shape[0]
    g = max(int(grid.max()), 1) if k else 1
    bins = torch.arange(output_size, dtype=start.dtype, device=start.device)
    steps = torch.arange(g, dtype=start.dtype, device=start.device)
    on = steps[None, :] < grid[:, None]  # (K, G): samples this RoI takes
    coord = (start[:, None, None] + bins[None, :, None] * bin_size[:, None, None]
             + (steps[None, None, :] + 0.5) * (bin_size / grid.clamp(min=1))[:, None, None])  # (K, S, G)
    low, high, w_low, w_high, valid = _bilinear_corners(coord, size)
    scale = (on[:, None, :] & valid).to(start.dtype) / grid.clamp(min=1)[:, None, None]
    used_low = torch.where(on[:, None, :], low, torch.full_like(low, size))
    used_high = torch.where(on[:, None, :], high, torch.full_like(high, -1))
    first = used_low.flatten(1).amin(1).clamp(max=size - 1)
    span = int((used_high.flatten(1).amax(1) - first).max()) + 1 if k else 1
    span = min(max(span, 1), size)
    first = first.clamp(max=size - span)
    weights = start.new_zeros((k, output_size, span))
    for idx, w in ((low, w_low), (high, w_high)):
        weights.scatter_add_(2, (idx - first[:, None, None]).clamp(0, span - 1), w * scale)
    return weights, first


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int, spatial_scale: float,
              sampling_ratio: int = 0, aligned: bool = False, budget: int = 1 << 24) -> torch.Tensor:
    """RoIAlign (He et al.): ``(K, C, S, S)`` averages of bilinear samples of ``features``
    ``(B, C, H, W)`` on a regular grid in each of the ``S x S`` bins of every RoI ``(b, x1, y1, x2,
    y2)`` (image coordinates, times ``spatial_scale`` on the feature map).

    ``sampling_ratio`` samples per bin and axis; 0 is adaptive: ``ceil(roi size / S)`` on each axis
    (Detectron's default). ``aligned`` shifts by half a cell (Detectron2); False is Detectron's
    original op, where RoIs are at least one cell wide. Differentiable in ``features``.

    The samples form a product grid, so the bilinear weights are separable: each RoI's output is
    ``Wy @ F[window] @ Wx^T`` with ``(S, rows)`` and ``(S, columns)`` weight matrices over the
    feature-map window the RoI touches. RoIs of similar window size are batched into matrix
    products of at most ``budget`` gathered feature values.
    """
    k, c = rois.shape[0], features.shape[1]
    if k == 0:
        return features.new_zeros((0, c, output_size, output_size))
    height, width = features.shape[2:]
    offset = 0.5 if aligned else 0.0
    r = rois.to(features.dtype)
    x1, y1 = r[:, 1] * spatial_scale - offset, r[:, 2] * spatial_scale - offset
    rw, rh = (r[:, 3] - r[:, 1]) * spatial_scale, (r[:, 4] - r[:, 2]) * spatial_scale
    if not aligned:
        rw, rh = rw.clamp(min=1.0), rh.clamp(min=1.0)
    bw, bh = rw / output_size, rh / output_size
    if sampling_ratio > 0:
        gw = gh = torch.full((k,), sampling_ratio, dtype=torch.int64, device=rois.device)
    else:
        gw, gh = torch.ceil(bw).long(), torch.ceil(bh).long()  # 0 for an empty aligned RoI: output 0
    batch = rois[:, 0].long()
    # window sizes first (cheap), then batches of RoIs with similar windows
    cells = (torch.ceil(rh) + 2).clamp(max=height) * (torch.ceil(rw) + 2).clamp(max=width)
    order = torch.argsort(cells)
    chunks, begin = [], 0
    while begin < k:
        end = begin + 1
        while end < k and (end + 1 - begin) * float(cells[order[end]]) * c <= budget:
            end += 1
        chunks.append(order[begin:end])
        begin = end
    parts = []
    for sel in chunks:
        wy, ry = _axis_weights(y1[sel], bh[sel], gh[sel], output_size, height)  # (n, S, Ly)
        wx, rx = _axis_weights(x1[sel], bw[sel], gw[sel], output_size, width)  # (n, S, Lx)
        rows = ry[:, None] + torch.arange(wy.shape[2], device=rois.device)
        cols = rx[:, None] + torch.arange(wx.shape[2], device=rois.device)
        window = features[batch[sel][:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (n, Ly, Lx, C)
        n, ly, lx = window.shape[:3]
        part = torch.bmm(wy, window.reshape(n, ly, lx * c)).reshape(n, output_size, lx, c)
        parts.append(torch.einsum("nsxc,ntx->ncst", part, wx))
    return torch.cat(parts)[torch.argsort(order)]  # the chunks hold the RoIs in ``order``


def _mask_axis(pixel: torch.Tensor, lo: torch.Tensor, size: torch.Tensor, m: int) -> tuple[torch.Tensor, ...]:
    """Bilinear weights along one axis of an ``m``-cell mask spread over ``[lo, lo + size)`` for
    pixel index ``pixel`` (centre at ``pixel + 0.5``); cells clamp at the edges, like
    ``F.interpolate(mode="bilinear", align_corners=False)``."""
    u = ((pixel.to(lo.dtype) + 0.5 - lo) / size.clamp(min=1e-6) * m - 0.5).clamp(0, m - 1)
    low = u.floor().long().clamp(max=m - 1)
    high = (low + 1).clamp(max=m - 1)
    frac = u - low.to(u.dtype)
    return low, high, 1 - frac, frac


def mask_values(masks: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor, rows: torch.Tensor,
                cols: torch.Tensor) -> torch.Tensor:
    """Values of the ``M x M`` masks pasted into their boxes, read at pixels ``(rows, cols)``: pair
    ``i`` reads mask ``owner[i]`` at pixel ``(rows[i], cols[i])`` by bilinear interpolation (0
    where the pixel centre is outside the box). Only the pixels asked for are computed, so a
    sparse image never needs a box-sized dense paste."""
    if owner.numel() == 0:
        return masks.new_zeros(0)
    m = masks.shape[-1]
    b = boxes[owner].to(masks.dtype)
    cy, cx = rows.to(masks.dtype) + 0.5, cols.to(masks.dtype) + 0.5
    inside = (cx >= b[:, 0]) & (cx < b[:, 2]) & (cy >= b[:, 1]) & (cy < b[:, 3])
    ylo, yhi, wy0, wy1 = _mask_axis(rows, b[:, 1], b[:, 3] - b[:, 1], m)
    xlo, xhi, wx0, wx1 = _mask_axis(cols, b[:, 0], b[:, 2] - b[:, 0], m)
    flat = masks.reshape(masks.shape[0], -1)
    value = (flat[owner, ylo * m + xlo] * wy0 * wx0 + flat[owner, ylo * m + xhi] * wy0 * wx1
             + flat[owner, yhi * m + xlo] * wy1 * wx0 + flat[owner, yhi * m + xhi] * wy1 * wx1)
    return torch.where(inside, value, torch.zeros_like(value))


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``(N, rows, columns)`` images of the ``(N, M, M)`` masks pasted into their boxes (dense; for
    small images and references; sparse images use :func:`mask_values` at their pixels)."""
    n = masks.shape[0]
    rr, cc = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    rr, cc = rr.reshape(-1), cc.reshape(-1)
    owner = torch.arange(n).repeat_interleave(rr.numel())
    return mask_values(masks, boxes, owner, rr.repeat(n), cc.repeat(n)).reshape(n, *shape)


def rasterize(boxes: torch.Tensor, owner: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
              size: int) -> torch.Tensor:
    """``(N, size, size)`` binary masks: cell (i, j) of box k is 1 when a pixel ``(rows, cols)``
    of box k (``owner``) has its centre in that cell of the box's ``size x size`` grid.

    These are the mask targets: for thin tracks a cell is on if the instance has any charge in it
    (bilinear resampling of a 1-pixel-wide track into a 30-pixel cell would fall below 0.5)."""
    out = torch.zeros((boxes.shape[0], size, size), dtype=torch.float32)
    if owner.numel() == 0:
        return out
    b = boxes[owner].float()
    cy, cx = rows.float() + 0.5, cols.float() + 0.5
    inside = (cx >= b[:, 0]) & (cx < b[:, 2]) & (cy >= b[:, 1]) & (cy < b[:, 3])
    i = ((cy - b[:, 1]) / (b[:, 3] - b[:, 1]).clamp(min=1e-6) * size).floor().long().clamp(0, size - 1)
    j = ((cx - b[:, 0]) / (b[:, 2] - b[:, 0]).clamp(min=1e-6) * size).floor().long().clamp(0, size - 1)
    out.view(boxes.shape[0], -1)[owner[inside], (i * size + j)[inside]] = 1.0
    return out
