"""Instance metrics (lartpcnet.metrics.instance) on constructed events with known answers."""

import numpy as np
import pytest

from lartpcnet.metrics.instance import (
    InstanceMetrics,
    InstancePredictions,
    dbscan_predictions,
    score,
    tune_dbscan,
)

COSMIC, NUE = 1, 5


def event():
    """Ten sites: a cosmic (sites 0-5, one below threshold at site 5), a nue (6-8), and noise (9)."""
    values = np.array([20, 20, 20, 20, 40, 5, 30, 30, 90, 15], float)
    truth = np.array([7, 7, 7, 7, 7, 7, 3, 3, 3, -1])
    cls = np.array([COSMIC] * 6 + [NUE] * 3 + [0])
    return values, truth, cls


def test_efficiency_purity_and_charge_efficiency_by_hand():
    values, truth, cls = event()
    # prediction 0 (cosmic): sites 0-3 and the sub-threshold 5 -> 4 of the cosmic's 5 W pixels
    # prediction 1 (nue): sites 6, 8, 9 -> two nue pixels and the noise pixel
    # prediction 2 (cosmic, score 0.3): below the 0.4 cut, ignored
    pred = InstancePredictions(owner=np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2]),
                               site=np.array([0, 1, 2, 3, 5, 6, 8, 9, 4, 7]),
                               scores=np.array([0.9, 0.5, 0.3]), classes=np.array([COSMIC, NUE, COSMIC]))
    s = score(values, truth, cls, pred)
    assert s.truth_class.tolist() == [NUE, COSMIC]  # truths sorted by id: nue (3), then cosmic (7)
    np.testing.assert_allclose(s.efficiency, [2 / 3, 4 / 5])
    np.testing.assert_allclose(s.charge_efficiency, [120 / 150, 80 / 120])
    np.testing.assert_allclose(s.purity, [1.0, 2 / 3])  # the nue prediction holds the noise pixel
    np.testing.assert_allclose(s.per_class["nue"]["efficiency"], [2 / 3])
    np.testing.assert_allclose(s.per_class["cosmic"]["purity"], [1.0])


def test_per_class_restriction_makes_misclassified_predictions_zero():
    values, truth, cls = event()
    # one prediction labelled nue that covers the cosmic exactly
    pred = InstancePredictions(owner=np.zeros(5, int), site=np.arange(5), scores=np.array([0.8]),
                               classes=np.array([NUE]))
    s = score(values, truth, cls, pred)
    np.testing.assert_allclose(s.efficiency, [0.0, 1.0])  # overall: the cosmic is found
    np.testing.assert_allclose(s.per_class["cosmic"]["efficiency"], [0.0])  # no cosmic prediction
    np.testing.assert_allclose(s.per_class["nue"]["purity"], [0.0])  # a nue prediction on a cosmic
    np.testing.assert_allclose(s.per_class["nue"]["efficiency"], [0.0])


def test_summary_keys_averages_and_coverage():
    metrics = InstanceMetrics()
    values, truth, cls = event()
    labels = np.array([0, 0, 0, 0, 0, -1, 1, 1, 1, -1])  # cosmic -> 0, nue -> 1, exactly on W
    perfect = InstancePredictions.from_labels(labels, classes=np.array([COSMIC, NUE]))
    metrics.add(values, truth, cls, perfect)
    metrics.add(values, truth, cls, InstancePredictions.from_labels(np.full(10, -1)))  # finds nothing
    s = metrics.summary()
    assert s["events"] == 2 and s["interactions"] == 4 and s["predictions"] == 2
    assert s["efficiency"] == pytest.approx(0.5) and s["covered"] == 0.5 and s["missed"] == 0.5
    assert s["event_efficiency"] == pytest.approx(0.5) and s["event_purity"] == pytest.approx(1.0)
    assert s["purity"] == pytest.approx(1.0) and s["charge_efficiency"] == pytest.approx(0.5)
    assert s["interactions_per_event"] == 2 and s["covered_per_event"] == 1
    assert s["per_class"]["nue"]["interactions"] == 2 and s["per_class"]["nue"]["missed"] == 0.5


def test_empty_images_and_thousands_of_instances():
    metrics = InstanceMetrics()
    empty = metrics.add(np.zeros(0), np.zeros(0, int), np.zeros(0, int), InstancePredictions.from_labels(np.zeros(0)))
    assert empty.efficiency.size == 0 and empty.purity.size == 0
    assert metrics.summary()["efficiency"] is None
    n = 5000
    truth = np.arange(n)
    s = score(np.full(n, 50.0), truth, np.full(n, COSMIC), InstancePredictions.from_labels(truth[::-1].copy()))
    assert s.efficiency.min() == 1.0 and s.purity.min() == 1.0 and len(s.purity) == n
    with pytest.raises(ValueError, match="one entry per site"):
        score(np.zeros(3), np.zeros(2, int), np.zeros(3, int), InstancePredictions.from_labels(np.zeros(3)))


def constructed_event():
    """Two separated straight tracks and a third one crossing the first."""
    a = [(r, 10) for r in range(40)]
    b = [(r, 60) for r in range(40)]
    c = [(20, col) for col in range(11, 39)]  # starts next to track a (column 10)
    coords = np.array(a + b + c)
    truth = np.array([0] * 40 + [1] * 40 + [2] * 28)
    return coords, np.full(len(coords), 40.0), truth, np.full(len(coords), COSMIC)


def test_dbscan_baseline_on_a_constructed_event():
    coords, values, truth, cls = constructed_event()
    pred = dbscan_predictions(coords, values, eps=1.5, min_samples=1)
    assert len(pred) == 2  # the crossing tracks merge
    s = score(values, truth, cls, pred)
    np.testing.assert_allclose(s.efficiency, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(sorted(s.purity), [40 / 68, 1.0])
    assert s.per_class["cosmic"]["purity"] is None  # class-agnostic clusters
    # below-threshold pixels are not clustered
    quiet = values.copy()
    quiet[40:80] = 5.0
    assert len(dbscan_predictions(coords, quiet, eps=1.5, min_samples=1)) == 1
    # tuning picks the grid point with the best event-averaged efficiency/purity balance
    best, table = tune_dbscan([(coords, values, truth, cls)], eps=(0.5, 1.5, 30.0), min_samples=(1,))
    assert len(table) == 3 and best["eps"] == 1.5
