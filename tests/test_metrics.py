"""Segmentation metrics against values computed by hand on small cases."""

import numpy as np
import pytest

from lartpcnet.metrics.segmentation import SegmentationMetrics

HIP, MIP, SHOWER, DELTA, MICHEL = range(5)


def test_five_class_metrics_by_hand():
    m = SegmentationMetrics()
    # image 1: 4 labelled sites + 1 noise (-1); one MIP predicted as HIP (still a track), one shower as MIP
    m.add(np.array([MIP, MIP, SHOWER, MICHEL, -1]), np.array([MIP, HIP, MIP, MICHEL, SHOWER]))
    # image 2: 2 sites, both right
    m.add(np.array([DELTA, HIP]), np.array([DELTA, HIP]))
    s = m.summary()
    assert s["images"] == 2
    assert s["nonzero_accuracy"] == pytest.approx((2 / 4 + 1) / 2)
    assert s["class_accuracy"]["MIP"] == pytest.approx(0.5)  # only image 1 has MIPs
    assert s["class_accuracy"]["shower"] == pytest.approx(0.0)
    assert s["class_accuracy"]["HIP"] == pytest.approx(1.0)
    # two classes: image 1 is right on 3 of 4 (MIP->HIP stays a track); image 2 on 2 of 2
    assert s["two_class_accuracy"] == pytest.approx((3 / 4 + 1) / 2)
    assert s["icpf_mean"] == pytest.approx((1 / 4 + 0) / 2)
    # shower error: image 1 has 2 true showers (shower, Michel), 1 predicted track; image 2 has 1 (delta), 0 wrong
    assert s["shower_error_rate"] == pytest.approx((1 / 2 + 0) / 2)
    assert s["track_error_rate"] == pytest.approx(0.0)
    matrix = np.array(s["confusion"]["matrix"])
    assert matrix.sum() == 6 and matrix[MIP, HIP] == 1 and matrix[SHOWER, MIP] == 1
    assert np.array(s["two_class_confusion"]["matrix"]).tolist() == [[3, 0], [1, 2]]


def test_icpf_counts_false_positives_for_dense_networks():
    background, track, shower = 0, 1, 2
    m = SegmentationMetrics(classes=["background", "track", "shower"], background=background)
    truth = np.array([background, background, track, track, shower])
    predicted = np.array([background, shower, track, shower, shower])
    m.add(truth, predicted)
    s = m.summary()
    # considered: sites 1..4 (truth or prediction non-background); wrong: sites 1 and 3
    assert s["icpf_mean"] == pytest.approx(2 / 4)
    assert s["track_error_rate"] == pytest.approx(1 / 2)
    assert s["nonzero_accuracy"] == pytest.approx(2 / 3)
    assert "background" not in s["class_accuracy"]


def test_icpf_quantile_and_accuracy_against_the_image_edge():
    m = SegmentationMetrics()
    for wrong in range(10):  # ICPFs 0.0, 0.1, ..., 0.9
        truth = np.full(10, MIP)
        predicted = truth.copy()
        predicted[:wrong] = SHOWER
        coords = np.stack([np.arange(10), np.full(10, 50)], 1)  # rows 0..9 of a 100 x 100 image
        m.add(truth, predicted, coords, (100, 100))
    s = m.summary()
    assert s["icpf_mean"] == pytest.approx(0.45)
    assert s["icpf_q90"] == pytest.approx(np.quantile(np.arange(10) / 10, 0.9))
    first = s["accuracy_vs_boundary"][0]  # rows 0..3: within 4 pixels of the top edge
    assert first["sites"] == 40
    wrong_near_edge = sum(min(w, 4) for w in range(10))
    assert first["accuracy"] == pytest.approx(1 - wrong_near_edge / 40)
