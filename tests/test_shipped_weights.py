"""The pretrained weights that ship inside the package, on freshly simulated events.

Two kinds of check per model: a regression floor (the weights load, run and are as good as when
they were exported, within a margin for the small test set), and the issue's accuracy goal, which
most of these CPU-trained weights do not reach yet: those tests are expected failures, and turn into
passes (XPASS) once weights trained longer ship. docs/models.md has the full numbers.
"""

import pytest

from lartpcnet import inference

# Regression floors: below what the exported weights measured on 100 fresh events (docs/models.md).
# On these 16 events the exported weights give 0.755 / 0.929 with Michel 0.34 (2D; 0.739 / 0.926 and
# Michel about 0.1 before its Michel phase), 0.945 overall with Michel 0.59 and delta 0.95 (3D), and
# the Michel command on 30 events (--track-classes MIP,HIP --bridge-classes shower) 1.000 ID
# efficiency, 1.000 ID purity, 0.964 cluster efficiency and 0.954 cluster purity (0.935 and 0.954
# without the bridge).
FLOOR_2D = {"nonzero_accuracy": 0.70, "two_class_accuracy": 0.90, "Michel": 0.25}
FLOOR_3D = {"nonzero_accuracy": 0.90, "Michel": 0.50, "delta": 0.85}
FLOOR_MICHEL = {"id_efficiency": 0.92, "id_purity": 0.95, "cluster_efficiency": 0.93, "cluster_purity": 0.92}
# the README's command: these weights call a stopping muon's last voxels HIP (so the track is MIP
# and HIP sites) and at times a band across a Michel electron shower (so pieces join through it)
MICHEL_CONFIG = {"track_classes": "MIP,HIP", "bridge_classes": "shower"}
# The tagger on these 12 events: non-background accuracy 0.931, cosmic IoU 0.913, neutrino IoU 0.394;
# on the five real SBND events 0.849, 0.719, 0.470 (README).
FLOOR_TAGGER = {"nonbackground_accuracy": 0.88, "cosmic_iou": 0.85, "neutrino_iou": 0.30, "mean_iou": 0.58}
FLOOR_TAGGER_REAL = {"nonbackground_accuracy": 0.80, "cosmic_iou": 0.65, "neutrino_iou": 0.38}
SEED = 8675309  # neither training (1, or the file of seed 101) nor validation (2) events


@pytest.fixture(scope="module")
def sparsessnet():
    assert inference.shipped_weights("sparsessnet_uboone") is not None, "sparsessnet_uboone weights are missing"
    return inference.evaluate("sparsessnet_uboone", sample="particle_bomb", events=16, seed=SEED, progress=False)


@pytest.fixture(scope="module")
def uresnet3d():
    assert inference.shipped_weights("uresnet3d_pilarnet") is not None, "uresnet3d_pilarnet weights are missing"
    return inference.evaluate("uresnet3d_pilarnet", sample="pilarnet3d", events=16, seed=SEED, progress=False)


def test_sparsessnet_weights_meet_their_floor(sparsessnet):
    assert sparsessnet["images"] == 16
    for key in ("nonzero_accuracy", "two_class_accuracy"):
        assert sparsessnet[key] >= FLOOR_2D[key], (key, sparsessnet[key])
    assert sparsessnet["class_accuracy"]["Michel"] >= FLOOR_2D["Michel"], sparsessnet["class_accuracy"]


@pytest.mark.xfail(reason="CPU-trained weights are below the SparseSSNet goal (docs/models.md)", strict=False)
def test_sparsessnet_weights_reach_the_goal(sparsessnet):
    assert sparsessnet["nonzero_accuracy"] >= 0.99 and sparsessnet["two_class_accuracy"] >= 0.995


def test_uresnet3d_weights_meet_their_floor(uresnet3d):
    assert uresnet3d["nonzero_accuracy"] >= FLOOR_3D["nonzero_accuracy"]
    for name in ("Michel", "delta"):
        assert uresnet3d["class_accuracy"][name] >= FLOOR_3D[name], (name, uresnet3d["class_accuracy"][name])


@pytest.mark.xfail(reason="CPU-trained weights are below the Domine & Terao goal (docs/models.md)", strict=False)
def test_uresnet3d_weights_reach_the_goal(uresnet3d):
    assert uresnet3d["nonzero_accuracy"] >= 0.99
    assert uresnet3d["class_accuracy"]["Michel"] >= 0.90 and uresnet3d["class_accuracy"]["delta"] >= 0.90


def test_michel_command_with_the_shipped_weights(tmp_path):
    from lartpcnet.reco import michel

    report = michel.run("uresnet3d_pilarnet", str(tmp_path / "m.h5"), sample="michel", events=30, seed=SEED,
                        config=michel.MichelConfig(**MICHEL_CONFIG), progress=False)
    assert report["n_true"] >= 40
    for key, floor in FLOOR_MICHEL.items():
        assert report[key] >= floor, (key, report[key])


def test_michel_goals_with_the_shipped_weights_as_the_readme_measures_them(tmp_path):
    from lartpcnet.reco import michel

    # the README's command and events (200 fresh ones, seed 12345), against the goals
    report = michel.run("uresnet3d_pilarnet", str(tmp_path / "m.h5"), sample="michel", events=200, seed=12345,
                        config=michel.MichelConfig(**MICHEL_CONFIG), progress=False, tta=True)
    assert report["n_true"] >= 300
    assert report["id_efficiency"] >= 0.95 and report["id_purity"] >= 0.97
    assert report["cluster_efficiency"] >= 0.96 and report["cluster_purity"] >= 0.96


@pytest.fixture(scope="module")
def tagger():
    assert inference.shipped_weights("cosmictagger_sbnd") is not None, "cosmictagger_sbnd weights are missing"
    return inference.evaluate("cosmictagger_sbnd", sample="sbnd_cosmic", events=12, seed=SEED, progress=False)


def test_cosmic_tagger_weights_meet_their_floor(tagger):
    assert tagger["images"] == 12 * 3
    for key, floor in FLOOR_TAGGER.items():
        assert tagger[key] >= floor, (key, tagger[key])


@pytest.mark.xfail(reason="CPU-trained tagger weights are below the SBND paper's goal (docs/models.md)",
                   strict=False)
def test_cosmic_tagger_weights_reach_the_goal(tagger):
    # on the events with a neutrino, as the paper's test set (every event has one) and on all events
    for scores in (tagger["neutrino_events"], tagger):
        assert scores["mean_iou"] >= 0.81 and scores["neutrino_iou"] >= 0.70
        assert scores["nonbackground_accuracy"] >= 0.956


def test_cosmic_tagger_on_the_real_sbnd_events():
    # the realism check of the README as a regression floor: the five LArSoft events were never
    # used to train or tune anything
    from pathlib import Path

    real = Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
    report = inference.evaluate("cosmictagger_sbnd", input_path=str(real), progress=False)
    assert len(report["events"]) == 5
    for key, floor in FLOOR_TAGGER_REAL.items():
        assert report[key] >= floor, (key, report[key])
