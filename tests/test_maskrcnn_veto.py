"""The cosmic-only veto (lartpcnet.reco.veto) on constructed events."""

import numpy as np
import pytest

from lartpcnet.metrics.instance import InstancePredictions
from lartpcnet.reco.veto import (
    auc,
    baseline_discriminant,
    cosmic_sites,
    cuts_for,
    dbscan_tagger,
    largest_cluster,
    network_discriminant,
    plot_roc,
    roc_table,
    tune_tagger,
    veto_curve,
)

COSMIC, NUE = 1, 5


def constructed(nue_pixels: int):
    """A 300-pixel vertical cosmic track, a 6-pixel stub of another cosmic, and a compact nue blob."""
    track = [(r, 20) for r in range(300)]
    stub = [(10, c) for c in range(100, 106)]
    side = int(np.ceil(np.sqrt(nue_pixels)))
    blob = [(150 + k // side, 200 + k % side) for k in range(nue_pixels)]
    coords = np.array(track + stub + blob)
    return coords, np.full(len(coords), 40.0)


def predictions(scores=(0.9, 0.15), classes=(COSMIC, COSMIC)):
    """Prediction 0 masks the long track; prediction 1 masks the stub."""
    owner = np.array([0] * 300 + [1] * 6)
    return InstancePredictions(owner, np.arange(306), np.array(scores), np.array(classes))


def test_network_veto_removes_confident_cosmic_masks_only():
    coords, values = constructed(49)
    # the stub's prediction has score 0.15 <= 0.20: it stays, but the nue blob is larger
    assert network_discriminant(coords, values, predictions(), eps=1.5, min_samples=1) == 49
    assert set(cosmic_sites(predictions()).tolist()) == set(range(300))
    # a nue-class prediction on the track removes nothing
    assert network_discriminant(coords, values, predictions(classes=(NUE, COSMIC)), 1.5, 1) == 300
    cosmic_only = coords[:306], values[:306]
    assert network_discriminant(*cosmic_only, predictions(scores=(0.9, 0.5)), 1.5, 1) == 0
    assert network_discriminant(*cosmic_only, predictions(), 1.5, 1) == 6
    assert largest_cluster(np.zeros((0, 2)), np.zeros(0), np.zeros(0, int), 1.5, 1) == 0  # empty event
    with pytest.raises(ValueError, match="classified predictions"):
        cosmic_sites(InstancePredictions.from_labels(np.zeros(3, int)))


def test_curve_over_cuts():
    signal, background = [50, 30], [5, 0]
    assert cuts_for(signal, background) == [None, 0, 10, 20, 30, 40, 50]
    rows = {r["cut"]: (r["signal_efficiency"], r["background_rejection"]) for r in veto_curve(signal, background)}
    assert rows[None] == (1.0, 0.0) and rows[0] == (1.0, 0.5) and rows[10] == (1.0, 1.0)
    assert rows[30] == (0.5, 1.0) and rows[50] == (0.0, 1.0)
    assert auc(signal, background) == 1.0 and auc([1], [1]) == 0.5
    with pytest.raises(ValueError, match="signal and background"):
        veto_curve([], [1])


def test_dbscan_tagger_calls_long_clusters_cosmic(tmp_path):
    coords, values = constructed(49)
    tagged = dbscan_tagger(coords, values, eps=1.5, min_samples=1, min_extent=100)
    assert set(tagged.tolist()) == set(range(300))  # the track; not the stub (6) or the blob (7 x 7)
    assert baseline_discriminant(coords, values, 1.5, 1, 100) == 49
    nue_events = [constructed(n) for n in (40, 60)]
    cosmic_events = [constructed(0), (constructed(0)[0][:300], constructed(0)[1][:300])]
    best, table = tune_tagger(nue_events, cosmic_events, 1.5, 1, extents=(5, 100, 400), widths=(np.inf,))
    assert best["min_extent"] == 100 and [r["auc"] for r in table] == [0.5, 1.0, 0.5]  # tags all / the track / none
    # the width rule: thin clusters (track, stub: width 0) go, the 7 x 7 blob (width 2) stays
    thin = set(dbscan_tagger(coords, values, 1.5, 1, min_extent=5, max_width=1.0).tolist())
    assert thin == set(range(306))
    best, _ = tune_tagger(nue_events, cosmic_events, 1.5, 1, extents=(5,), widths=(1.0, np.inf))
    assert best == {"min_extent": 5, "max_width": 1.0}
    curves = {"network": veto_curve([49, 60], [6, 0]), "DBSCAN baseline": veto_curve([49], [6])}
    text = roc_table(curves)
    assert text.splitlines()[2].startswith("| none | 1.000 / 0.000 | 1.000 / 0.000 |") and "| 10 |" in text
    path = plot_roc(curves, tmp_path / "roc.png")
    assert path.exists() and path.stat().st_size > 1000


def test_veto_study_over_events_with_and_without_a_network(tmp_path):
    import torch

    from lartpcnet.data.event import Event, SparseImage
    from lartpcnet.models.maskrcnn import MaskRCNN
    from lartpcnet.reco.veto import veto_study

    def event(nue_pixels):
        coords, values = constructed(nue_pixels)
        n = len(coords)
        image = SparseImage(coords.astype(np.int32), values.astype(np.float32), np.zeros(n, np.int8),
                            np.zeros(n, np.int32), np.zeros(n, np.int32), np.ones(n, np.int8), (320, 320))
        return Event(planes=[image])

    torch.manual_seed(0)
    net = MaskRCNN(stem=4, blocks=(1, 1, 1), bottlenecks=(4, 4, 8), widths=(8, 8, 16), head_blocks=1,
                   head_bottleneck=8, head_width=16, mask_channels=8, test_pre_nms=100, test_post_nms=20)
    result = veto_study({"nue": [event(40), event(60)]}, [event(0)], 1.5, 1, 100, plane=0, network=net, out=tmp_path)
    assert result["signal"]["nue"]["DBSCAN baseline"] == [40, 60] and result["background"]["DBSCAN baseline"] == [6]
    assert set(result["curves"]) == {"DBSCAN baseline, nue", "sMask-RCNN, nue"}
    assert all(isinstance(x, int) for x in result["signal"]["nue"]["sMask-RCNN"])
    assert (tmp_path / "roc.png").exists() and (tmp_path / "roc.md").read_text().startswith("| X")
