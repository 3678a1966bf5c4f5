"""Detection ops (lartpcnet.models.boxes) against brute-force references."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lartpcnet.models.boxes import (
    BoxCoder,
    anchors,
    batched_nms,
    box_iou,
    clip_boxes,
    mask_values,
    nms,
    paste_masks,
    rasterize,
    roi_align,
    tight_boxes,
)


def random_boxes(n, size=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand((n, 2), generator=g) * size
    wh = torch.rand((n, 2), generator=g) * size / 3 + 0.5
    return torch.cat([xy, xy + wh], 1)


def iou_reference(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def test_iou_matches_pairwise_reference_and_is_empty_safe():
    a, b = random_boxes(7, seed=1), random_boxes(5, seed=2)
    expected = torch.tensor([[iou_reference(x.tolist(), y.tolist()) for y in b] for x in a])
    torch.testing.assert_close(box_iou(a, b), expected)
    assert box_iou(a, torch.zeros((0, 4))).shape == (7, 0)
    assert box_iou(torch.tensor([[1.0, 1, 1, 1]]), torch.tensor([[1.0, 1, 1, 1]])).item() == 0.0


@pytest.mark.parametrize("weights", [(1, 1, 1, 1), (10, 10, 5, 5)])
def test_box_coder_round_trip(weights):
    coder = BoxCoder(weights)
    ref, target = random_boxes(50, seed=3), random_boxes(50, seed=4)
    deltas = coder.encode(ref, target)
    torch.testing.assert_close(coder.decode(deltas, ref), target, rtol=1e-5, atol=1e-4)
    # class-specific deltas (N, 4k): each group of four decodes against the same reference
    both = coder.decode(torch.cat([deltas, torch.zeros_like(deltas)], 1), ref)
    torch.testing.assert_close(both[:, 4:], ref, rtol=1e-5, atol=1e-4)
    # a unit shift of the centre by one reference width is a delta of weights[0]
    shifted = ref + torch.stack([ref[:, 2] - ref[:, 0], torch.zeros(50), ref[:, 2] - ref[:, 0], torch.zeros(50)], 1)
    torch.testing.assert_close(coder.encode(ref, shifted)[:, 0], torch.full((50,), float(weights[0])), rtol=1e-5,
                               atol=1e-4)


def test_clip_and_tight_boxes():
    clipped = clip_boxes(torch.tensor([[-5.0, -1, 20, 40]]), (30, 10))
    assert clipped.tolist() == [[0.0, 0.0, 10.0, 30.0]]
    rows = torch.tensor([3, 5, 4, 9])
    cols = torch.tensor([7, 2, 2, 0])
    owner = torch.tensor([0, 0, 2, 2])
    boxes = tight_boxes(rows, cols, owner, 3)
    assert boxes.tolist() == [[2, 3, 8, 6], [0, 0, 0, 0], [0, 4, 3, 10]]


def nms_reference(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(iou_reference(boxes[i], boxes[j]) <= threshold for j in keep):
            keep.append(i)
    return keep


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.7])
def test_nms_matches_greedy_reference(threshold):
    boxes = random_boxes(300, size=60.0, seed=5)
    scores = torch.rand(300, generator=torch.Generator().manual_seed(6))
    keep = nms(boxes, scores, threshold, block=64)
    assert keep.tolist() == nms_reference(boxes.tolist(), scores.tolist(), threshold)
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).numel() == 0


def test_batched_nms_keeps_groups_apart():
    boxes = random_boxes(120, size=40.0, seed=7)
    scores = torch.rand(120, generator=torch.Generator().manual_seed(8))
    groups = torch.arange(120) % 3
    keep = set(batched_nms(boxes, scores, groups, 0.3).tolist())
    expected = set()
    for g in range(3):
        idx = (groups == g).nonzero().squeeze(1)
        expected |= {int(idx[i]) for i in nms_reference(boxes[idx].tolist(), scores[idx].tolist(), 0.3)}
    assert keep == expected


def test_anchors_layout_sizes_and_ratios():
    sizes, ratios = (32, 64), (0.5, 1.0, 2.0)
    a = anchors((3, 4), 16, sizes, ratios)
    assert a.shape == (3 * 4 * 6, 4)
    a = a.reshape(3, 4, 6, 4)
    centre = (a[..., :2] + a[..., 2:]) / 2
    torch.testing.assert_close(centre[1, 2, 0], torch.tensor([2.5 * 16, 1.5 * 16]))
    w, h = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
    torch.testing.assert_close((w * h)[0, 0], torch.tensor([32.0**2] * 3 + [64.0**2] * 3))
    torch.testing.assert_close((h / w)[0, 0], torch.tensor(ratios * 2))


def bilinear_reference(fmap, y, x):
    """torchvision's roi_align bilinear_interpolate, scalar by scalar."""
    h, w = fmap.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= h - 1:
        y_high = y_low = h - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= w - 1:
        x_high = x_low = w - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * fmap[y_low, x_low] + hy * lx * fmap[y_low, x_high]
            + ly * hx * fmap[y_high, x_low] + ly * lx * fmap[y_high, x_high])


def roi_align_reference(features, rois, size, scale, sampling_ratio, aligned):
    feats = features.double().numpy()
    out = np.zeros((len(rois), feats.shape[1], size, size))
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.double().tolist()):
        sx, sy = x1 * scale - offset, y1 * scale - offset
        rw, rh = (x2 - x1) * scale, (y2 - y1) * scale
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bw, bh = rw / size, rh / size
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / size)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / size)
        count = max(gh * gw, 1)
        for ch in range(feats.shape[1]):
            for ph in range(size):
                for pw in range(size):
                    total = 0.0
                    for iy in range(gh):
                        y = sy + ph * bh + (iy + 0.5) * bh / gh
                        for ix in range(gw):
                            x = sx + pw * bw + (ix + 0.5) * bw / gw
                            total += bilinear_reference(feats[int(b), ch], y, x)
                    out[k, ch, ph, pw] = total / count
    return torch.from_numpy(out)


@pytest.mark.parametrize("sampling_ratio", [0, 2])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_brute_force(sampling_ratio, aligned):
    g = torch.Generator().manual_seed(9)
    features = torch.randn((2, 3, 9, 11), generator=g, dtype=torch.float64)
    rois = torch.tensor([
        [0, 8.0, 8.0, 60.0, 40.0],  # inside
        [1, -20.0, -10.0, 30.0, 200.0],  # crosses the top-left and bottom edges
        [1, 100.0, 50.0, 170.0, 150.0],  # partly beyond the right edge
        [0, 33.0, 20.0, 34.0, 21.0],  # smaller than a cell
        [1, 0.0, 0.0, 176.0, 144.0],  # the whole map: adaptive sampling of 6 x 5
    ], dtype=torch.float64)
    got = roi_align(features, rois, 4, 1 / 16, sampling_ratio, aligned)
    expected = roi_align_reference(features, rois, 4, 1 / 16, sampling_ratio, aligned)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    assert roi_align(features, torch.zeros((0, 5), dtype=torch.float64), 4, 1 / 16).shape == (0, 3, 4, 4)


def test_roi_align_gradient():
    features = torch.randn((1, 2, 5, 6), dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 3.0, 2.0, 40.0, 30.0], [0, 10.0, 0.0, 90.0, 70.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 3, 1 / 16), (features,))


def test_paste_matches_interpolate_for_pixel_aligned_boxes():
    g = torch.Generator().manual_seed(10)
    masks = torch.rand((3, 7, 7), generator=g)
    boxes = torch.tensor([[2.0, 3.0, 19.0, 11.0], [0.0, 0.0, 5.0, 30.0], [10.0, 12.0, 24.0, 26.0]])
    shape = (32, 25)
    got = paste_masks(masks, boxes, shape)
    for k, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
        expected = torch.zeros(shape)
        expected[y1:y2, x1:x2] = F.interpolate(masks[k][None, None], size=(y2 - y1, x2 - x1), mode="bilinear",
                                               align_corners=False)[0, 0]
        torch.testing.assert_close(got[k], expected, rtol=1e-5, atol=1e-6)
    # the sparse read-out at chosen pixels is the dense paste at those pixels, boxes overlapping
    rows = torch.randint(0, shape[0], (200,), generator=g)
    cols = torch.randint(0, shape[1], (200,), generator=g)
    owner = torch.randint(0, 3, (200,), generator=g)
    torch.testing.assert_close(mask_values(masks, boxes, owner, rows, cols), got[owner, rows, cols])


def test_rasterize_marks_cells_holding_pixels():
    boxes = torch.tensor([[0.0, 0.0, 20.0, 10.0], [5.0, 5.0, 9.0, 9.0]])
    rows = torch.tensor([0, 9, 4, 5, 8, 30])
    cols = torch.tensor([0, 19, 10, 5, 8, 30])
    owner = torch.tensor([0, 0, 0, 1, 1, 1])  # the last pixel is outside its box
    out = rasterize(boxes, owner, rows, cols, 2)
    assert out[0].tolist() == [[1.0, 1.0], [0.0, 1.0]] and out[1].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    # brute force: cell of each pixel centre
    expected = torch.zeros_like(out)
    for r, c, k in zip(rows.tolist(), cols.tolist(), owner.tolist(), strict=True):
        x1, y1, x2, y2 = boxes[k].tolist()
        if x1 <= c + 0.5 < x2 and y1 <= r + 0.5 < y2:
            expected[k, int((r + 0.5 - y1) / (y2 - y1) * 2), int((c + 0.5 - x1) / (x2 - x1) * 2)] = 1
    assert torch.equal(out, expected)
