"""Label mappings between lartpcnet, track/shower, and larcv/SPINE codes."""

import numpy as np

from lartpcnet.data.labels import DELTA, HIP, MICHEL, MIP, SHOWER, to_spine, to_two_class


def test_five_classes_to_track_and_shower():
    semantic = np.array([HIP, MIP, SHOWER, DELTA, MICHEL])
    assert to_two_class(semantic).tolist() == [0, 0, 1, 1, 1]  # HIP, MIP are tracks


def test_to_spine_codes():
    # SPINE: shower 0, track 1, Michel 2, delta 3, low-energy 4
    assert to_spine(np.array([HIP, MIP, SHOWER, DELTA, MICHEL])).tolist() == [1, 1, 0, 3, 2]


def test_relabel_secondaries_keeps_only_primary_ionisation():
    from lartpcnet.data.event import PARTICLE_DTYPE
    from lartpcnet.data.labels import relabel_secondaries

    table = np.zeros(5, PARTICLE_DTYPE)
    table["id"] = np.arange(5)
    table["process"] = [b"primary", b"Decay", b"eBrem", b"compt", b"muIoni"]
    # sites: muon (MIP), Michel electron, Michel's brem photon's Compton electron, a delta ray
    semantic = np.array([MIP, MICHEL, MICHEL, MICHEL, DELTA, DELTA, -1])
    instance = np.array([0, 1, 1, 3, 4, 2, -1])
    out = relabel_secondaries(semantic, instance, table)
    assert out.tolist() == [MIP, MICHEL, MICHEL, SHOWER, DELTA, SHOWER, -1]


def test_simulated_michel_secondaries_relabel_like_the_simulator_option():
    from lartpcnet.data.labels import relabel_secondaries
    from lartpcnet.sim.samples import generate_event, load_sample

    config = load_sample("michel")
    default = generate_event(config, 4, 0)
    relabelled = generate_event(config.model_copy(update={"relabel_secondaries": True}), 4, 0)
    got = relabel_secondaries(default.voxels.semantic, default.voxels.instance, default.particles)
    assert np.array_equal(got, relabelled.voxels.semantic)


def test_hip_as_the_highly_ionizing_part_of_proton_tracks_changes_only_labels():
    """hip_min_dedx (docs/sparsessnet_2d.md's proposal): the same events, charge for charge, with
    HIP kept only where a proton's mean dE/dx is above 1.5 x a MIP's; what stays HIP is brighter."""
    import numpy as np

    from lartpcnet.data.labels import HIP, MIP
    from lartpcnet.sim.samples import generate_event, load_sample

    bright = load_sample("particle_bomb")
    assert bright.hip_min_dedx == 3.18  # the shipped sample's definition
    plain = bright.model_copy(update={"hip_min_dedx": None})
    hip_before = hip_after = 0
    hip_adc, mip_adc = [], []
    for i in range(12):
        a, b = generate_event(plain, 31, i).planes[2], generate_event(bright, 31, i).planes[2]
        assert np.array_equal(a.coords, b.coords) and np.array_equal(a.values, b.values)
        changed = a.semantic != b.semantic
        assert np.all(a.semantic[changed] == HIP) and np.all(b.semantic[changed] == MIP)
        hip_before += int((a.semantic == HIP).sum())
        hip_after += int((b.semantic == HIP).sum())
        hip_adc.append(b.values[b.semantic == HIP])
        mip_adc.append(b.values[b.semantic == MIP])
    assert hip_before > 1000 and 0 < hip_after < 0.5 * hip_before
    assert np.median(np.concatenate(hip_adc)) > 1.1 * np.median(np.concatenate(mip_adc))


def test_evaluate_scores_against_truth_relabelled_as_in_training(tmp_path):
    """A network trained with data.relabel_secondaries is scored on relabelled truth: from a file
    with a particle table, relabelled; without one, as labelled, with a warning and the flag off."""
    import dataclasses

    import pytest

    from lartpcnet import runner
    from lartpcnet.data.h5format import write_events
    from lartpcnet.data.labels import relabel_secondaries
    from lartpcnet.data.source import DataSource
    from lartpcnet.sim.samples import generate_event, load_sample

    events = [generate_event(load_sample("michel"), 8, i) for i in range(2)]
    write_events(tmp_path / "with.h5", events)
    write_events(tmp_path / "without.h5", [dataclasses.replace(e, particles=None) for e in events])
    model = runner.load_model("uresnet3d_pilarnet")
    assert model.settings.data.relabel_secondaries

    def truth_counts(summary):
        return np.asarray(summary["confusion"]["matrix"]).sum(axis=1)

    def counts(labels):
        return np.bincount(np.concatenate(labels).astype(int), minlength=5)

    relabelled = counts([relabel_secondaries(e.voxels.semantic, e.voxels.instance, e.particles) for e in events])
    plain = counts([e.voxels.semantic for e in events])
    assert relabelled[MICHEL] < plain[MICHEL]  # the events do hold Michel secondaries

    summary = runner.evaluate(model, DataSource(file=str(tmp_path / "with.h5")), progress=False)
    assert summary["truth_relabelled"] is True
    assert np.array_equal(truth_counts(summary), relabelled)
    with pytest.warns(UserWarning, match="2 events have no particle table"):
        summary = runner.evaluate(model, DataSource(file=str(tmp_path / "without.h5")), progress=False)
    assert summary["truth_relabelled"] is False
    assert np.array_equal(truth_counts(summary), plain)
