"""Detector geometry, projections and label alignment of simulated events."""

import math

import numpy as np
import pytest

from lartpcnet.data.labels import HIP, MIP, NEUTRINO
from lartpcnet.sim import detector as D
from lartpcnet.sim.samples import generate_event, load_sample
from lartpcnet.sim.transport import EventDeposits


def single_deposit(pos, energy=5.0):
    return EventDeposits(np.array([pos], float), np.array([energy]), np.array([2.1]), np.array([0.0]),
                         np.array([0], np.int32), np.array([1], np.int8), np.array([0], np.int32),
                         np.array([NEUTRINO], np.int8))


@pytest.mark.parametrize("geo", [D.MICROBOONE, D.SBND])
def test_point_projects_to_the_right_wire_and_tick(geo):
    rng = np.random.default_rng(0)
    x = geo.tpcs[0].x_anode + (50.0 if geo.tpcs[0].x_cathode > geo.tpcs[0].x_anode else -50.0)
    y, z = 10.07, 201.13
    readout = D.ReadoutConfig(sub_samples=1, noise=False, diffusion=False, dead_wires=False, threshold_adc=0.0)
    planes = D.readout_planes(geo, single_deposit([x, y, z]), rng, readout)
    center = geo.center
    for plane, image in zip(geo.planes, planes, strict=True):
        assert len(image) == 1
        theta = math.radians(plane.angle_deg)
        # by hand: w = z cos(theta) - y sin(theta), wires centred on the volume's centre
        w = z * math.cos(theta) - y * math.sin(theta)
        w_center = center[2] * math.cos(theta) - center[1] * math.sin(theta)
        wire = math.floor((w - w_center) / 0.3 + plane.wires / 2)
        assert image.coords[0, 1] == wire + geo.column_offset(plane)
        drift_us = 50.0 / geo.drift_velocity
        start = geo.readout_start_us if len(geo.tpcs) == 1 else 0.0
        assert image.coords[0, 0] == math.floor((drift_us - start) / geo.tick_us)
    if geo is D.MICROBOONE:  # its collection plane spans z = 0 .. 1036.8 cm exactly: wire = z / pitch
        assert planes[2].coords[0, 1] == math.floor(z / 0.3)


def test_sbnd_layout_is_the_real_files():
    assert D.SBND.image_shape(D.SBND.planes[0]) == (1280, 2048)
    assert [p.wires for p in D.SBND.planes] == [1984, 1984, 1664]
    assert D.SBND.column_offset(D.SBND.planes[2]) == (2048 - 1664) // 2
    assert [D.MICROBOONE.image_shape(p) for p in D.MICROBOONE.planes] == [(1008, 2400), (1008, 2400), (1008, 3456)]


def test_charge_falls_with_drift_distance():
    geo = D.MICROBOONE
    readout = D.ReadoutConfig(sub_samples=1, noise=False, diffusion=False, dead_wires=False, threshold_adc=0.0)
    near = D.readout_planes(geo, single_deposit([20.0, 0.0, 300.0]), np.random.default_rng(0), readout)[2]
    far = D.readout_planes(geo, single_deposit([240.0, 0.0, 300.0]), np.random.default_rng(0), readout)[2]
    expected = math.exp(-(220.0 / geo.drift_velocity) / geo.lifetime_us)
    assert far.values.sum() / near.values.sum() == pytest.approx(expected, rel=1e-3)


def test_dead_wires_are_empty_and_about_ten_percent_of_collection():
    dead = D.MICROBOONE.dead_wires(2)
    assert len(dead) == round(0.10 * 3456)
    event = generate_event(load_sample("uboone_nue_cosmics"), 0, 1)
    assert not np.isin(event.planes[2].coords[:, 1], dead).any()


@pytest.mark.parametrize("name", ["sbnd_cosmic", "particle_bomb", "pilarnet3d"])
def test_labels_stay_aligned_with_particles(name):
    sample = load_sample(name)
    event = generate_event(sample, 11, 0)
    images = event.planes + ([event.voxels] if event.voxels is not None else [])
    table = event.particles
    for image in images:
        assert len(image.coords) == len(image.values) == len(image.semantic) == len(image.instance)
        labelled = image.instance >= 0
        assert labelled.any()
        rows = table[image.instance[labelled]]
        # each site's class and interaction are those of the particle that deposited most there,
        # except that a proton's less ionizing stretch is MIP where the sample sets hip_min_dedx
        semantic = image.semantic[labelled]
        proton = rows["semantic"] == HIP
        assert np.array_equal(rows["semantic"][~proton], semantic[~proton])
        allowed = [HIP, MIP] if sample.hip_min_dedx is not None else [HIP]
        assert np.isin(semantic[proton], allowed).all()
        assert np.array_equal(rows["interaction"], image.interaction[labelled])
        assert np.all(image.origin[labelled] >= rows["origin"])  # neutrino wins an overlap
        assert np.all(image.coords >= 0) and np.all(image.coords < np.array(image.shape))
        assert np.all(image.semantic[~labelled] == -1)  # noise hits carry no class


def test_voxel_energy_is_conserved():
    config = load_sample("michel")
    event = generate_event(config, 2, 0)
    inside = event.particles["energy_deposit"].sum()
    assert event.voxels.values.sum() == pytest.approx(inside, rel=0.02)


def charge_weighted_median(values):
    values = np.sort(values)
    cumulative = np.cumsum(values)
    return values[np.searchsorted(cumulative, cumulative[-1] / 2)]


def test_microboone_collection_mip_pixels_peak_near_40_adc():
    from lartpcnet.data.labels import MIP

    events = [generate_event(load_sample("uboone_nue_cosmics"), 5, i) for i in range(3)]
    mip = np.concatenate([e.planes[2].values[e.planes[2].semantic == MIP] for e in events])
    assert np.median(mip) == pytest.approx(40.0, rel=0.15)


def test_sbnd_adc_scale_matches_the_real_file():
    from pathlib import Path

    import lartpcnet.data as data

    real_file = Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
    with data.open(real_file) as f:
        real = np.concatenate([f[i].planes[2].values[f[i].planes[2].origin == 1] for i in range(len(f))])
    events = [generate_event(load_sample("sbnd_cosmic"), 5, i) for i in range(3)]
    sim = np.concatenate([e.planes[2].values[e.planes[2].origin == 1] for e in events])
    assert charge_weighted_median(sim) == pytest.approx(charge_weighted_median(real), rel=0.15)


def _next_tick_fractions(image, offsets=range(1, 6)):
    """Of the background (noise) pixels, the fraction with another one ``d`` ticks later."""
    coords = image.coords[image.origin == 0]
    grid = np.zeros((image.shape[0] + 10, image.shape[1]), bool)
    grid[coords[:, 0], coords[:, 1]] = True
    return np.array([grid[coords[:, 0] + d, coords[:, 1]].mean() for d in offsets]), len(coords)


def test_noise_bursts_keep_the_rate_and_correlate_along_the_drift_time():
    from lartpcnet.data.event import SparseImage

    geo, sigma, threshold = D.SBND, 2.0, 5.0
    window = (0, 0, geo.rows // 2, 1024)  # one drift volume, the first 1024 columns
    wires = window[3] - geo.column_offset(geo.planes[0])  # columns before the first wire stay empty
    expected = window[2] * wires * 0.5 * math.erfc(threshold / (sigma * math.sqrt(2)))
    isolated = D._add_noise_hits(geo, geo.planes[0], SparseImage.empty(window[2:]), np.random.default_rng(1),
                                 threshold, sigma, 0, window)
    bursts = D._add_noise_hits(geo, geo.planes[0], SparseImage.empty(window[2:]), np.random.default_rng(1),
                               threshold, sigma, 0, window, (4.0, 0.25))
    (flat, n_flat), (corr, n_burst) = _next_tick_fractions(isolated), _next_tick_fractions(bursts)
    # the same rate of noisy pixels (a few boundary-clipped bursts aside) ...
    assert n_flat == pytest.approx(expected, rel=0.05) and n_burst == pytest.approx(expected, rel=0.05)
    # ... but bursts: about 19 / 15 / 11 % have a noisy pixel 1 / 2 / 3 ticks on, against the
    # occupancy for isolated hits
    occupancy = expected / (window[2] * wires)
    assert np.all(flat < 3 * occupancy)
    assert corr[:3] == pytest.approx([0.19, 0.15, 0.11], abs=0.03)
    assert np.all(np.diff(corr) < 0)


def test_sbnd_induction_noise_looks_like_the_real_files():
    # the realism check behind the burst parameters: the same decay of the correlation with
    # tick distance on the induction planes as the five LArSoft events (docs/simulation.md)
    from pathlib import Path

    import lartpcnet.data as data

    real_file = Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
    with data.open(real_file) as f:
        real = np.mean([_next_tick_fractions(f[i].planes[0])[0] for i in range(len(f))], axis=0)
    sim = np.mean([_next_tick_fractions(generate_event(load_sample("sbnd_cosmic"), 5, i).planes[0])[0]
                   for i in range(2)], axis=0)
    assert sim == pytest.approx(real, abs=0.04)
