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
