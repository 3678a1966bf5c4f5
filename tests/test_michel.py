"""Michel reconstruction: the attachment/edge logic on constructed events and the metrics."""

import numpy as np
import pytest

from lartpcnet.data.labels import DELTA, HIP, MICHEL, MIP, SHOWER
from lartpcnet.reco.michel import (
    MichelConfig,
    find_candidates,
    metrics,
    michel_at_score,
    reconstruct_event,
)


def line(start, direction, n):
    return np.asarray(start) + np.outer(np.arange(n), direction)


def tube(start, direction, n, width):
    """A straight track ``width`` sites thick across its direction (as deposits spread in the
    detector), so that DBSCAN's min_samples finds core sites on it."""
    dim = len(start)
    across = [a for a in np.eye(dim, dtype=int) if not np.any(a * np.asarray(direction))]
    offsets = [np.zeros(dim, int)]
    for axis in across[:1] if dim == 2 else across:
        offsets = [o + k * axis for o in offsets for k in range(width)]
    return np.concatenate([line(np.asarray(start) + o, direction, n) for o in offsets])


def muon_with(michel_start, dim=3):
    """A 100-site-long muon along x and a 20-site-long Michel electron at a right angle."""
    x = [1, 0, 0][:dim]
    y = [0, 1, 0][:dim]
    track = tube([100, 100, 100][:dim], x, 100, 3 if dim == 2 else 2)
    michel = tube(michel_start, y, 20, 2)
    coords = np.concatenate([track, michel]).astype(np.int64)
    labels = np.concatenate([np.full(len(track), MIP), np.full(len(michel), MICHEL)])
    return coords, labels


@pytest.mark.parametrize("dim", [2, 3])
def test_only_the_michel_at_the_end_of_the_track_is_accepted(dim):
    top = 103 if dim == 2 else 102  # the first row above the muon
    end = [200, top, 100][:dim]  # one site past the muon's last column, touching it diagonally
    middle = [150, top, 100][:dim]
    detached = [215, top, 100][:dim]
    for start, accepted in ((end, True), (middle, False), (detached, False)):
        coords, labels = muon_with(start, dim)
        found = find_candidates(coords, labels)
        assert len(found) == 1
        assert found[0]["accepted"] is accepted, (start, found[0])
    # the middle one is attached but not at an edge; the far one is not attached
    mid = find_candidates(*muon_with(middle, dim))[0]
    far = find_candidates(*muon_with(detached, dim))[0]
    assert mid["attached"] and not mid["edge"] and not far["attached"]
    assert far["distance"] == pytest.approx(np.hypot(215 - 199, 1))


def test_parameters_change_the_decision():
    coords, labels = muon_with([203, 102, 100])  # a 4-site gap: attached only with a looser distance
    assert not find_candidates(coords, labels)[0]["accepted"]
    assert find_candidates(coords, labels, MichelConfig(attach_distance=5.0))[0]["accepted"]
    # too few Michel sites for DBSCAN's min_samples: no cluster at all
    assert find_candidates(coords, labels, MichelConfig(michel_min_samples=30)) == []


def test_a_track_ending_in_hip_sites_counts_with_track_classes_mip_hip():
    # the network calls the muon's last 12 sites HIP (its Bragg rise): with the paper's MIP-only
    # track the Michel is 12 sites from any track site; with MIP,HIP it is attached at the end
    coords, labels = muon_with([200, 102, 100])
    track_end = (labels == MIP) & (coords[:, 0] >= 188)
    labels[track_end] = HIP
    (paper,) = find_candidates(coords, labels)
    assert not paper["attached"] and paper["distance"] > 10
    (both,) = find_candidates(coords, labels, MichelConfig(track_classes="MIP,HIP"))
    assert both["accepted"] and both["mip_pixels"] == int((labels != MICHEL).sum())
    # and a Michel in the middle of such a track is still rejected
    coords, labels = muon_with([150, 102, 100])
    labels[(labels == MIP) & (coords[:, 0] >= 188)] = HIP
    (middle,) = find_candidates(coords, labels, MichelConfig(track_classes="MIP,HIP"))
    assert middle["attached"] and not middle["edge"]


def test_a_michel_bridging_two_track_pieces_is_not_at_an_edge():
    # the network calls a stretch in the middle of a muon Michel: the track falls into two MIP
    # clusters, each ending at the fragment; touching both, it is no track end
    coords, labels = muon_with([200, 102, 100])
    gap = (coords[:, 0] >= 145) & (coords[:, 0] < 155) & (labels == MIP)
    labels[gap] = MICHEL
    coords, labels = coords[labels == MIP], labels[labels == MIP]  # the muon alone, cut in two
    fragment = tube([145, 100, 100], [1, 0, 0], 10, 2)
    coords = np.concatenate([coords, fragment]).astype(np.int64)
    labels = np.concatenate([labels, np.full(len(fragment), MICHEL)])
    (found,) = find_candidates(coords, labels)
    assert found["attached"] and not found["edge"] and not found["accepted"]


def test_a_michel_score_threshold_rejoins_a_michel_the_network_broke():
    coords, labels = muon_with([200, 102, 100])
    scores = np.zeros((len(labels), 5))
    scores[np.arange(len(labels)), labels] = 1.0
    # the network calls a band across the Michel electron shower, with Michel a close second
    broken = (labels == MICHEL) & (coords[:, 1] >= 110) & (coords[:, 1] <= 113)
    scores[broken] = 0
    scores[broken, SHOWER], scores[broken, MICHEL] = 0.6, 0.4
    argmax = scores.argmax(1)
    pieces = find_candidates(coords, argmax)
    assert len(pieces) == 2 and sum(c["accepted"] for c in pieces) == 1  # the far piece is detached
    assert np.array_equal(michel_at_score(argmax, scores, 0.5), argmax)
    whole = find_candidates(coords, michel_at_score(argmax, scores, 0.35))
    assert len(whole) == 1 and whole[0]["accepted"] and len(whole[0]["sites"]) == (labels == MICHEL).sum()
    with pytest.raises(ValueError, match="michel_score"):
        MichelConfig(michel_score=1.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_bridge_classes_shower_keeps_a_michel_the_network_cut_in_two_whole(dim):
    coords, labels = muon_with([200, 103 if dim == 2 else 102, 100][:dim], dim)
    electron = labels == MICHEL
    # the network calls a band across the electron shower: the far piece is detached from the muon
    labels[electron & (coords[:, 1] >= 110) & (coords[:, 1] <= 113)] = SHOWER
    michel_sites = int((labels == MICHEL).sum())
    pieces = find_candidates(coords, labels)
    assert len(pieces) == 2 and [c["accepted"] for c in pieces].count(True) == 1
    (whole,) = find_candidates(coords, labels, MichelConfig(bridge_classes="shower"))
    assert whole["accepted"] and len(whole["sites"]) == michel_sites  # the shower band itself stays out
    # a Michel blob apart from the electron, with nothing predicted between, is not joined
    blob = tube([200, 160, 100][:dim], [0, 1, 0][:dim], 8, 2)
    coords = np.concatenate([coords, blob])
    labels = np.concatenate([labels, np.full(len(blob), MICHEL)])
    found = find_candidates(coords, labels, MichelConfig(bridge_classes="shower"))
    assert sorted(len(c["sites"]) for c in found) == [len(blob), michel_sites]
    assert [c["accepted"] for c in found if len(c["sites"]) == michel_sites] == [True]
    # nothing to join: an empty image, and one with shower but no Michel sites
    bridge = MichelConfig(bridge_classes="shower")
    assert find_candidates(np.zeros((0, dim), np.int64), np.zeros(0, np.int64), bridge) == []
    assert find_candidates(coords[labels == SHOWER], labels[labels == SHOWER], bridge) == []


@pytest.mark.parametrize("bad", ["MIP,muon", "Michel", "shower,Michel"])
def test_bridge_classes_must_name_non_michel_classes(bad):
    with pytest.raises(ValueError, match="bridge_classes"):
        MichelConfig(bridge_classes=bad)
    assert MichelConfig(bridge_classes=" shower ,delta").bridge_codes() == [SHOWER, DELTA]


@pytest.mark.parametrize("bad", ["", "MIP,muon", "Michel", "MIP,Michel"])
def test_track_classes_must_name_track_like_classes(bad):
    with pytest.raises(ValueError, match="track_classes"):
        MichelConfig(track_classes=bad)


@pytest.mark.parametrize(("flag", "value"), [("--track-classes", "MIP,muon"), ("--attach-distance", "-1"),
                                             ("--michel-score", "1"), ("--bridge-classes", "Michel")])
def test_bad_michel_flags_give_one_line_naming_the_flag(flag, value, capsys):
    from lartpcnet.cli import main

    assert main(["michel", "--model", "uresnet3d_pilarnet", "--sample", "michel", "--events", "1", flag, value]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"lartpcnet michel: error: {flag}: ")


def test_empty_and_michel_only_events():
    assert find_candidates(np.zeros((0, 3)), np.zeros(0, np.int64)) == []
    coords = tube([0, 0, 0], [1, 0, 0], 20, 2)
    only = find_candidates(coords, np.full(len(coords), MICHEL))
    assert len(only) == 1 and not only[0]["attached"] and only[0]["mip_pixels"] == 0


def test_matching_and_per_candidate_truth():
    coords, predicted = muon_with([200, 102, 100])
    n_michel = int((predicted == MICHEL).sum())  # 80 sites: 20 long, 2 x 2 thick
    semantic = predicted.copy()
    instance = np.where(predicted == MICHEL, 7, 1)
    semantic[-5:] = MIP  # the network over-reaches: 5 true-MIP sites called Michel
    values = np.ones(len(coords), np.float32)
    rows, true_rows, sites = reconstruct_event(0, coords, predicted, values, semantic, instance, {7: 30.0})
    (row,) = rows
    assert row[8] == 7 and row[9] == n_michel - 5 and row[10] == n_michel - 5  # matched id, overlap, true size
    assert row[12] == pytest.approx(30.0) and len(sites[0]) == n_michel
    assert true_rows == [(0, 7, n_michel - 5, float(n_michel - 5), 30.0, True, True)]


def table(rows, dtype):
    return np.array(rows, dtype=dtype)


def test_metrics_on_hand_made_matches():
    from lartpcnet.reco.michel import CANDIDATE_DTYPE, TRUE_DTYPE

    def cand(pixels, matched, overlap, true_pixels, accepted=True):
        return (0, pixels, 1.0, True, accepted, accepted, 1.0, 50, matched, overlap, true_pixels, 1.0, 30.0, 0.0)

    candidates = table([
        cand(20, 1, 20, 20),  # perfect
        cand(20, 2, 10, 40),  # a quarter of a big true cluster, half pure
        cand(8, 3, 8, 8),  # small: removed by the quality cut
        cand(12, -1, 0, 0),  # fake
        cand(30, 4, 30, 30, accepted=False),  # rejected by attachment/edge: not counted
    ], CANDIDATE_DTYPE)
    truth = table([(0, 1, 20, 1, 30, True, True), (0, 2, 40, 1, 30, True, True), (0, 3, 8, 1, 30, True, False),
                   (0, 4, 30, 1, 30, False, False), (0, 5, 15, 1, 30, False, False)], TRUE_DTYPE)
    m = metrics(candidates, truth, min_pixels=10)
    assert m["n_true"] == 5 and m["n_candidates"] == 4
    assert m["id_efficiency"] == pytest.approx(3 / 5) and m["id_purity"] == pytest.approx(3 / 4)
    assert m["cluster_efficiency"] == pytest.approx((1 + 0.25 + 1) / 3)
    assert m["cluster_purity"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["both_above_95"] == pytest.approx(2 / 3)
    cut = m["quality_cut"]  # true clusters >= 10 sites: 1, 2, 4, 5; candidates >= 10 sites: 3
    assert cut["n_true"] == 4 and cut["n_candidates"] == 3
    assert cut["id_efficiency"] == pytest.approx(2 / 4) and cut["id_purity"] == pytest.approx(2 / 3)
    assert cut["cluster_efficiency"] == pytest.approx((1 + 0.25) / 2)


@pytest.fixture(scope="module")
def tiny_3d(tmp_path_factory):
    import yaml

    from lartpcnet.cli import main

    folder = tmp_path_factory.mktemp("michel_model")
    config = {"name": "tiny3d", "model": {"name": "uresnet", "network": {"dim": 3, "depth": 2, "filters": 4, "reps": 1},
                                          "loss": {"weighting": "class_balanced"}},
              "data": {"train": {"sample": "michel", "seed": 1}, "validation": {"sample": "michel", "seed": 2,
                                                                                 "events": 2},
                       "plane": None, "adc_window": None, "feature_scale": 1.0, "relabel_secondaries": True},
              "batch_size": 2, "iterations": 2, "validate_every": 2, "checkpoint_every": 2}
    (folder / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(folder / "c.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder / "run" / "checkpoints" / "ckpt-2.pt"


def test_michel_command_writes_candidates_metrics_and_plots(tiny_3d, tmp_path, capsys):
    import json

    from lartpcnet.cli import main
    from lartpcnet.data.labels import relabel_secondaries
    from lartpcnet.reco.michel import read_output
    from lartpcnet.sim.samples import generate_event, load_sample

    out = tmp_path / "m.h5"
    assert main(["michel", "--model", str(tiny_3d), "--sample", "michel", "--events", "3", "--seed", "5",
                 "--out", str(out), "--plots", str(tmp_path / "plots"), "--add-showers", "--michel-score", "0.3",
                 "--bridge-classes", "shower", "--tta", "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("id_efficiency", "id_purity", "cluster_efficiency", "cluster_purity", "both_above_95", "n_true",
                "n_candidates"):
        assert key in report
    expected_true = 0
    for i in range(3):  # true Michel clusters counted independently: primary-ionization Michel particles
        event = generate_event(load_sample("michel"), 5, i)
        v = event.voxels
        semantic = relabel_secondaries(v.semantic, v.instance, event.particles)
        expected_true += len(np.unique(v.instance[semantic == MICHEL]))
    assert report["n_true"] == expected_true > 0 and report["truth_relabelled"] is True
    tables = read_output(out)
    config = json.loads(tables["config"])
    assert config["michel_score"] == 0.3 and config["bridge_classes"] == "shower"
    job = json.loads(tables["job"])
    assert job["tta"] is True and report["tta"] is True and job["model"] == str(tiny_3d)
    assert len(tables["offsets"]) == len(tables["candidates"]) + 1
    assert tables["offsets"][-1] == len(tables["coords"]) == tables["candidates"]["pixels"].sum()
    assert report["n_candidates"] == int(tables["candidates"]["accepted"].sum())
    for name in ("michel_pixels.png", "michel_energy.png", "michel_spectrum.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_michel_command_resumes_after_a_kill(tiny_3d, tmp_path, monkeypatch):
    from lartpcnet.reco import michel

    reference = michel.run(str(tiny_3d), str(tmp_path / "ref.h5"), sample="michel", events=4, seed=6, part_size=2,
                           progress=False)
    calls = {"n": 0}
    real = michel.reconstruct_event

    def dies_on_the_fourth_event(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(michel, "reconstruct_event", dies_on_the_fourth_event)
    with pytest.raises(KeyboardInterrupt):
        michel.run(str(tiny_3d), str(tmp_path / "b.h5"), sample="michel", events=4, seed=6, part_size=2,
                   progress=False)
    assert (tmp_path / "b.h5.parts" / "part-000000000-000000002.h5").exists() and not (tmp_path / "b.h5").exists()
    monkeypatch.setattr(michel, "reconstruct_event", real)
    resumed = michel.run(str(tiny_3d), str(tmp_path / "b.h5"), sample="michel", events=4, seed=6, part_size=2,
                         progress=False)
    a, b = michel.read_output(tmp_path / "ref.h5"), michel.read_output(tmp_path / "b.h5")
    assert a["candidates"].tobytes() == b["candidates"].tobytes() and np.array_equal(a["coords"], b["coords"])
    assert resumed["n_true"] == reference["n_true"]


def perfect_segmentation_metrics(config: MichelConfig, events: int = 20) -> dict:
    """Truth labels in place of the network on fresh simulated events: what is lost here is lost
    by the clustering and the attachment/edge tests alone."""
    from lartpcnet.reco.michel import CANDIDATE_DTYPE, TRUE_DTYPE, _kinetic_of_michels, _truth_labels
    from lartpcnet.sim.samples import generate_event, load_sample

    sample = load_sample("michel")
    candidates, truth = [], []
    for i in range(events):
        event = generate_event(sample, 2024, i)
        v = event.voxels
        semantic, relabelled = _truth_labels(v.semantic, v.instance, event.particles)
        assert relabelled
        rows, true_rows, _ = reconstruct_event(i, v.coords, semantic, v.values, semantic, v.instance,
                                               _kinetic_of_michels(event.particles), config)
        candidates += rows
        truth += true_rows
    return metrics(np.array(candidates, CANDIDATE_DTYPE), np.array(truth, TRUE_DTYPE))


def test_with_perfect_segmentation_the_reconstruction_finds_the_michels():
    m = perfect_segmentation_metrics(MichelConfig())
    assert m["n_true"] >= 30
    assert m["id_efficiency"] >= 0.9 and m["id_purity"] >= 0.95 and m["cluster_purity"] >= 0.95
    assert m["cluster_efficiency"] >= 0.98  # the primary ionization is one cluster: nothing to bridge


def test_the_papers_mip_min_samples_loses_this_simulators_thin_tracks():
    # why the default is 5: with 10, most track voxels of 1-2 voxel wide muons are not clustered
    paper = perfect_segmentation_metrics(MichelConfig(mip_min_samples=10, attach_distance=2.0))
    ours = perfect_segmentation_metrics(MichelConfig())
    assert paper["id_efficiency"] < 0.5 < 0.9 <= ours["id_efficiency"]


def test_the_bridges_components_are_dbscan_with_every_site_a_core_site():
    from lartpcnet.reco.michel import _components, _dbscan

    rng = np.random.default_rng(3)
    for dim, n in ((2, 400), (3, 2000)):
        coords = rng.integers(0, 40, size=(n, dim)).astype(np.float64)
        ours, reference = _components(coords, 2.8), _dbscan(coords, 2.8, 1)
        # the same partition: labels equal up to renaming, one to one
        pairs = set(zip(ours.tolist(), reference.tolist(), strict=True))
        assert len(pairs) == len(set(ours.tolist())) == len(set(reference.tolist())) > 1


def test_the_python_apis_candidates_are_the_michel_commands(tmp_path):
    """model.predict(event) then michel.candidates gives, event by event, the candidates that
    lartpcnet michel writes (the same network, settings and reconstruction)."""
    import lartpcnet
    from lartpcnet.reco import michel
    from lartpcnet.sim.samples import generate_event, load_sample

    model = lartpcnet.load_model("uresnet3d_pilarnet")
    config = michel.recommended(model)
    michel.run(model, out=str(tmp_path / "m.h5"), sample="michel", events=2, seed=777, config=config,
               progress=False)
    written = michel.read_output(tmp_path / "m.h5")["candidates"]
    for index in range(2):
        found = michel.candidates(model.predict(generate_event(load_sample("michel"), 777, index)), config)
        rows = written[written["event"] == index]
        assert [c["pixels"] for c in found] == rows["pixels"].tolist()
        assert [c["accepted"] for c in found] == rows["accepted"].tolist()
        assert np.allclose([c["energy"] for c in found], rows["energy"], rtol=1e-5)
    tagged = lartpcnet.runner.Prediction(np.zeros((1, 3), np.int32), np.ones((1, 3), np.float32), np.zeros(1, np.int8),
                                         ("background", "cosmic", "neutrino"), "planes")  # a tagger's answer
    with pytest.raises(lartpcnet.errors.UserError, match="segmentation"):
        michel.candidates(tagged)
