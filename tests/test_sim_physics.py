"""Physics sanity of the simulator against PDG values."""

import numpy as np
import pytest

from lartpcnet.data.labels import DELTA, MICHEL
from lartpcnet.sim import physics as P
from lartpcnet.sim.transport import Transport

# PDG muon CSDA ranges in liquid argon (Groom, Mokhov, Striganov; g/cm^2) by kinetic energy [MeV]
PDG_MUON_CSDA = {10: 0.9833, 20: 3.321, 40: 10.58, 100: 42.50, 200: 106.3, 400: 238.5, 1000: 616.3, 2000: 1202.0}
WORLD = (np.full(3, -1e5), np.full(3, 1e5))


def run_particle(pdg, kinetic, seed):
    tr = Transport(np.random.default_rng(seed), *WORLD)
    tr.add(pdg, [0, 0, 0], [0, 0, 1], kinetic, interaction=0, origin=1)
    return tr.run()


def test_csda_table_matches_pdg():
    for kinetic, grams in PDG_MUON_CSDA.items():
        ours = P.csda_range(np.array([float(kinetic)]), P.MUON_MASS)[0]
        assert ours == pytest.approx(grams / P.DENSITY, rel=0.02), kinetic


@pytest.mark.parametrize("kinetic", [100.0, 400.0, 1000.0])
def test_simulated_muon_range_matches_csda(kinetic):
    ranges = []
    for seed in range(12):
        _, table = run_particle(-13, kinetic, seed)
        muon = table[0]
        ranges.append(np.linalg.norm(muon["end"][:3] - muon["start"][:3]))
    assert np.mean(ranges) == pytest.approx(PDG_MUON_CSDA[int(kinetic)] / P.DENSITY, rel=0.05)


def test_mip_dedx_peak():
    deposits, _ = run_particle(13, 3000.0, 0)
    track = deposits.particle == 0
    first = deposits.dedx[track][:2000]  # minimum-ionising part, far from the Bragg peak
    counts, edges = np.histogram(first, bins=np.arange(1.0, 4.0, 0.05))
    peak = edges[np.argmax(counts)] + 0.025
    assert 1.7 <= peak <= 2.3


def test_bragg_peak_rises_at_the_stop():
    deposits, _ = run_particle(2212, 200.0, 1)
    dedx = deposits.dedx[deposits.particle == 0]
    assert dedx[-5:].mean() > 3 * dedx[:10].mean()


def test_michel_spectrum_endpoint():
    energies = P.sample_michel(np.random.default_rng(0), 200_000)
    assert energies.max() <= 52.83
    assert np.quantile(energies, 0.999) > 52.0  # the spectrum peaks at the endpoint
    # x^2 (3 - 2x) has mean 0.7 of the endpoint
    assert energies.mean() == pytest.approx(0.7 * 52.83, rel=0.01)


def test_stopping_mu_plus_gives_a_labelled_michel():
    deposits, table = run_particle(-13, 200.0, 3)
    michel = table[(table["parent"] == 0) & (table["process"] == b"Decay")]
    assert len(michel) == 1 and michel["pdg"][0] == -11
    assert michel["energy_init"][0] + P.ELECTRON_MASS <= 52.84
    assert deposits.energy[deposits.semantic == MICHEL].sum() > 0


def test_deposited_energy_never_exceeds_initial_kinetic():
    for pdg, kinetic in ((13, 800.0), (2212, 400.0), (11, 500.0), (22, 300.0), (211, 600.0)):
        deposits, table = run_particle(pdg, kinetic, 7)
        assert np.all(table["energy_deposit"] <= table["energy_init"] + 1e-3)
        assert deposits.energy.sum() <= kinetic + 2 * 52.83 + 1e-3  # plus at most decay energy


def test_delta_rays_follow_one_over_t_squared():
    energies = P.sample_delta_energies(np.random.default_rng(1), 3.0, 1000.0, 100_000)
    # for 1/T^2 on [a, b], P(T > 2a) = (1/2a - 1/b) / (1/a - 1/b)
    expected = (1 / 6 - 1 / 1000) / (1 / 3 - 1 / 1000)
    assert np.mean(energies > 6.0) == pytest.approx(expected, abs=0.01)
    deposits, table = run_particle(13, 5000.0, 4)
    deltas = table[table["process"] == b"muIoni"]
    assert len(deltas) > 0 and np.all(deltas["energy_init"] >= 3.0)
    assert deposits.energy[deposits.semantic == DELTA].sum() > 0


def test_em_shower_deposits_its_energy():
    deposits, table = run_particle(11, 1000.0, 5)
    assert deposits.energy.sum() == pytest.approx(1000.0, rel=0.01)
    assert (table["process"] == b"conv").sum() > 0  # photons pair-converted: a cascade
