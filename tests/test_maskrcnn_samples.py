"""The sMask-RCNN simulator samples have their documented properties."""

import numpy as np
import pytest

from lartpcnet.data.labels import COSMIC, NEUTRINO
from lartpcnet.sim.samples import generate_event, load_sample


def events(name, n=3, seed=11):
    config = load_sample(name)
    return config, [generate_event(config, seed, i) for i in range(n)]


@pytest.mark.parametrize("name,energy", [("uboone_smrcnn_nue", (200, 3000)), ("uboone_smrcnn_nue_le", (200, 400))])
def test_one_nue_cc_in_every_event(name, energy):
    config, evs = events(name)
    assert config.neutrino.cosmic_only_fraction == 0 and config.cosmics.count == (23, 33)
    for ev in evs:
        nu = ev.interactions[ev.interactions["origin"] == NEUTRINO]
        assert len(nu) == 1 and nu["kind"][0] == b"nueCC" and ev.meta["kind"] == "nueCC"
        assert energy[0] <= nu["energy"][0] < energy[1]
        assert 23 <= (ev.interactions["origin"] == COSMIC).sum() <= 33
        plane = ev.planes[2]
        assert (plane.interaction == nu["id"][0]).sum() > 0  # the nue leaves charge on the Y plane
        visible = np.unique(plane.interaction[(plane.values >= 10) & (plane.interaction >= 0)])
        assert 12 <= len(visible) <= 34  # about 20.8 on average (20.7 measured on 100 events)
    if name.endswith("_le"):
        assert config.neutrino.energy[1] == 400


def test_cosmic_only_sample_has_no_neutrino():
    config, evs = events("uboone_smrcnn_cosmic_only")
    assert config.cosmics.count == load_sample("uboone_smrcnn_nue").cosmics.count
    for ev in evs:
        assert ev.meta["kind"] == "cosmic_only" and (ev.interactions["origin"] == NEUTRINO).sum() == 0
        assert all((p.origin != NEUTRINO).all() for p in ev.planes) and len(ev.planes[2]) > 0
