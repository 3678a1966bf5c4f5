"""Cosmic tagging pieces: downsampling, batches, the loss schemes' weights, metrics, selection."""

import numpy as np
import pytest
import torch

from lartpcnet.data.event import SparseImage
from lartpcnet.data.tagging import downsample, tagger_batch
from lartpcnet.metrics.tagging import TaggingMetrics, image_metrics
from lartpcnet.models.losses import TaggingLoss
from lartpcnet.reco.selection import efficiencies, roc, row_cut_for, selected


def image(coords, values, origin, shape=(8, 8)):
    n = len(values)
    return SparseImage(np.asarray(coords, np.int32).reshape(-1, 2), np.asarray(values, np.float32),
                       np.full(n, 1, np.int8), np.arange(n, dtype=np.int32), np.zeros(n, np.int32),
                       np.asarray(origin, np.int8), shape)


def test_downsample_sums_charge_and_keeps_the_neutrino_label():
    im = image([[0, 0], [0, 1], [1, 1], [2, 2], [7, 7]], [1, 2, 3, 4, 5], [1, 2, 0, 1, 0])
    small = downsample(im, 2)
    assert small.shape == (4, 4)
    assert small.coords.tolist() == [[0, 0], [1, 1], [3, 3]]
    assert small.values.tolist() == [6, 4, 5] and small.origin.tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="does not divide"):
        downsample(image([[0, 0]], [1], [0], shape=(5, 8)), 2)


def test_batches_stack_planes_event_major_and_agree_sparse_dense():
    planes = [image([[1, 2]], [50], [1]), image([[3, 4]], [200], [2]), image([[5, 6], [0, 0]], [100, 3], [1, 0])]
    batch = tagger_batch([planes, planes], sparse=True, pad_to=4)
    assert batch.tensor.batch_size == 6 and batch.tensor.coords[:, 0].tolist() == [0, 1, 2, 2, 3, 4, 5, 5]
    dense = tagger_batch([planes, planes], sparse=False, pad_to=4)
    c = batch.tensor.coords
    assert torch.equal(dense.dense[c[:, 0], 0, c[:, 1], c[:, 2]], batch.tensor.feats[:, 0])
    assert torch.equal(dense.labels[c[:, 0], c[:, 1], c[:, 2]], batch.labels)
    assert int(dense.labels.count_nonzero()) == 6  # background elsewhere
    assert tagger_batch([planes], threshold=10).tensor.num_sites == 3


def test_loss_schemes_give_their_weights():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 0, 1])
    image = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 1])
    boost = TaggingLoss("boost").pixel_weights(labels, image)
    assert boost.tolist() == [1, 1, 1, 1, 1.5, 1.5, 10, 1, 1.5]
    balanced = TaggingLoss("balanced").pixel_weights(labels, image)
    torch.testing.assert_close(balanced, torch.tensor([1 / 12] * 4 + [1 / 6] * 2 + [1 / 3, 1 / 3, 1 / 3]))
    for k in range(2):  # each class present in an image weighs 1/3 in all
        for c in range(3):
            mine = (image == k) & (labels == c)
            if mine.any():
                assert float(balanced[mine].sum()) == pytest.approx(1 / 3)
    assert TaggingLoss("none").pixel_weights(labels, image).tolist() == [1.0] * 9
    logits = torch.zeros(9, 3)  # uniform scores: CE = log 3 everywhere
    assert float(TaggingLoss("none")(logits, labels, image)) == pytest.approx(np.log(3))
    assert float(TaggingLoss("boost")(logits, labels, image)) == pytest.approx(np.log(3) * boost.mean().item())
    focal = TaggingLoss("none", focal_gamma=2.0)(logits, labels, image)
    assert float(focal) == pytest.approx((2 / 3) ** 2 * np.log(3))
    with pytest.raises(ValueError, match="weighting"):
        TaggingLoss("equal")


def test_image_metrics_count_every_pixel():
    truth = np.array([1, 1, 2, 2, 0])
    predicted = np.array([1, 2, 2, 0, 0])
    m = image_metrics(truth, predicted, pixels=100)  # 95 pixels off the sites: background, right
    assert m["accuracy"] == pytest.approx((3 + 95) / 100)
    assert m["nonbackground_accuracy"] == pytest.approx(2 / 4)
    assert m["cosmic_iou"] == pytest.approx(1 / 2) and m["neutrino_iou"] == pytest.approx(1 / 3)
    assert m["mean_iou"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    cosmic_only = image_metrics(np.array([1, 0]), np.array([1, 0]), 10)
    assert cosmic_only["neutrino_iou"] is None and cosmic_only["mean_iou"] is None


def test_metric_summary_is_per_plane_and_by_kind():
    metrics = TaggingMetrics(planes=2)
    metrics.add(0, np.array([1, 2]), np.array([1, 2]), 10, "nueCC", 500.0)
    metrics.add(1, np.array([1, 2]), np.array([1, 1]), 10, "nueCC", 500.0)
    s = metrics.summary()
    assert s["per_plane"][0]["neutrino_iou"] == 1.0 and s["per_plane"][1]["neutrino_iou"] == 0.0
    assert s["neutrino_iou"] == pytest.approx(0.5) and s["by_kind"]["nueCC"]["cosmic_iou"] == pytest.approx(0.75)


def test_neutrino_event_averages_leave_cosmic_only_events_out():
    # The paper's test set has a neutrino in every event: a cosmic-only event with one pixel
    # tagged neutrino (IoU 0) counts in the overall average, not in neutrino_events.
    metrics = TaggingMetrics(planes=1)
    metrics.add(0, np.array([1, 2, 2]), np.array([1, 2, 2]), 10, "numuCC", 800.0)
    metrics.add(0, np.array([1, 1]), np.array([1, 2]), 10, "cosmic_only")
    s = metrics.summary()
    assert s["neutrino_iou"] == pytest.approx(0.5) and s["mean_iou"] == pytest.approx((1.0 + 0.25) / 2)
    nu = s["neutrino_events"]
    assert nu["images"] == 1 and nu["neutrino_iou"] == 1.0 and nu["mean_iou"] == 1.0
    unknown = TaggingMetrics(planes=1)
    unknown.add(0, np.array([1, 2]), np.array([1, 2]), 10)  # a file that does not give kinds
    assert "neutrino_events" not in unknown.summary()


def test_selection_cuts_on_constructed_events():
    assert selected(np.array([150, 120, 101]), np.array([300, 320, 340]))
    assert not selected(np.array([150, 99, 300]), np.array([300, 300, 300]))  # one plane short of pixels
    assert not selected(np.array([150, 120, 200]), np.array([300, 320, 351]))  # planes 0 and 2 are 51 rows apart
    assert selected(np.array([150, 120, 200]), np.array([300, 320, 351]), max_row_separation=51)
    assert row_cut_for(1280) == 100.0
    events = [{"kind": "nueCC", "counts": np.array([200, 200, 200]), "means": np.array([10, 20, 30])},
              {"kind": "nueCC", "counts": np.array([200, 50, 200]), "means": np.array([10, 20, 30])},
              {"kind": "cosmic_only", "counts": np.array([0, 0, 0]), "means": np.full(3, np.nan)},
              {"kind": "cosmic_only", "counts": np.array([300, 300, 300]), "means": np.array([5, 5, 5])}]
    eff = efficiencies(events)
    assert eff["efficiency"]["nueCC"] == 0.5 and eff["cosmic_only_rejection"] == 0.5
    curve = roc(events, thresholds=[0, 100, 400])
    assert [p["efficiency"] for p in curve] == [1.0, 0.5, 0.0]
    assert [p["cosmic_only_rejection"] for p in curve] == [0.5, 0.5, 1.0]
