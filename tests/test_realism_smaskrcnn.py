"""scripts/realism_smaskrcnn.py: the truth merged from the real SBND file's clusters, and one run of
the harness with a tiny random-weight sMask-RCNN."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import lartpcnet.data as data
from lartpcnet import checkpoint
from lartpcnet.data.larcv3 import Larcv3File
from lartpcnet.models.maskrcnn import COSMIC_CLASS, NUE, MaskRCNN
from tests.test_maskrcnn_training import SMALL

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "realism_smaskrcnn.py"
spec = importlib.util.spec_from_file_location("realism_smaskrcnn", SCRIPT)
realism = importlib.util.module_from_spec(spec)
spec.loader.exec_module(realism)


@pytest.fixture(scope="module")
def merged():
    out = []
    with data.open(realism.REAL) as events, Larcv3File(realism.REAL) as raw:
        for k in range(len(events)):
            image = events[k].planes[realism.PLANE]
            clusters = raw.cluster2d(realism.CLUSTERS, k)[realism.PLANE]
            out.append((image, clusters, *realism.merged_truth(image, clusters)))
    return out


def _cluster_sites(image, cluster) -> np.ndarray:
    """Indices of the image's sites that ``cluster`` covers."""
    keys = np.ravel_multi_index(tuple(image.coords.astype(np.int64).T), image.shape)
    ck = np.ravel_multi_index(tuple(cluster.coords.astype(np.int64).T), image.shape)
    return np.nonzero(np.isin(keys, ck))[0]


def test_every_clustered_pixel_gets_exactly_one_instance_and_only_background_gets_none(merged):
    for image, clusters, truth, _, info in merged:
        covered = np.zeros(len(image), bool)
        for cluster in clusters:
            covered[_cluster_sites(image, cluster)] = True
        assert covered.sum() > 0.7 * len(image)
        assert np.all(truth[covered] >= 0)  # one label per site: exactly one instance each
        assert np.array_equal(truth < 0, ~covered & (image.origin != 2))
        assert np.all(image.origin[truth < 0] == 0)  # in this file, unclustered sites are all background
        assert info["sites_without_instance_not_background"] == 0


def test_the_neutrino_instance_is_the_neutrino_labelled_pixels(merged):
    for image, _, truth, truth_class, info in merged:
        nu = truth == realism.NEUTRINO_INSTANCE
        assert nu.any() and np.array_equal(nu, image.origin == 2)
        assert np.all(truth_class[nu] == NUE) and info["neutrino_sites"] == nu.sum()


def test_cosmic_instances_are_disjoint_pieces_of_their_own_cluster(merged):
    seen_cosmic = 0
    for image, clusters, truth, truth_class, info in merged:
        cosmic_ids = np.unique(truth[truth > 0])
        assert len(cosmic_ids) == info["cosmic_instances"] >= 5
        claimed = np.zeros(len(image), np.int64)
        for iid in cosmic_ids:
            sites = np.nonzero(truth == iid)[0]
            claimed[sites] += 1
            # every site of cosmic instance 1 + c is a pixel of cluster c, labelled cosmic
            assert np.all(np.isin(sites, _cluster_sites(image, clusters[iid - 1])))
            assert np.all(image.origin[sites] == 1) and np.all(truth_class[sites] == COSMIC_CLASS)
        assert claimed.max() == 1 and np.array_equal(claimed == 1, image.origin == 1)
        seen_cosmic += len(cosmic_ids)
    assert seen_cosmic > 40


def test_the_harness_runs_end_to_end_with_a_tiny_random_network(tmp_path, capsys):
    torch.manual_seed(0)
    net = MaskRCNN(**SMALL)
    model = tmp_path / "tiny.pt"
    checkpoint.save_checkpoint(model, {"model": net.state_dict(), "network": net.config.model_dump(mode="json"),
                                       "model_name": "smaskrcnn",
                                       "config": {"data": {"plane": 2, "adc_window": None}}})
    out = tmp_path / "out"
    assert realism.main(["--model", str(model), "--out", str(out), "--events", "1"]) == 0
    assert "DBSCAN baseline" in capsys.readouterr().out
    report = json.loads((out / "realism_smaskrcnn.json").read_text())
    assert len(report["events"]) == 1 and (out / "event_0.png").read_bytes()[:4] == b"\x89PNG"
    for who in ("smaskrcnn", "dbscan_baseline"):
        for key in ("efficiency", "purity", "covered", "missed", "event_efficiency", "efficiency_large"):
            assert key in report[who]
        assert set(report[who]["per_class"]) == {"cosmic", "nue"}
    assert report["smaskrcnn"]["interactions"] == report["dbscan_baseline"]["interactions"] > 10
    assert report["dbscan_baseline"]["efficiency"] > 0.5
