"""Detector geometries and the readout: energy deposits -> wire-plane images and 3D voxels.

Chain: deposit -> ionisation electrons after recombination (modified box) -> drift to the anode
(lifetime attenuation, longitudinal and transverse diffusion growing with drift time) ->
projection on each wire plane (wire coordinate w = z cos(theta) - y sin(theta) for wires at
angle theta from vertical, 3 mm pitch) and onto time ticks (2 MHz sampling, downsampled) ->
ADC (gain: ``mip_segment_adc`` for the charge a MIP leaves on one wire over 3 mm) ->
electronics noise per plane and drift volume -> zero suppression -> dead wires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erfc, erfcinv

from lartpcnet.data.event import SparseImage
from lartpcnet.sim import physics as P
from lartpcnet.sim.transport import EventDeposits


@dataclass(frozen=True)
class WirePlane:
    name: str
    angle_deg: float  # wire direction from vertical, in the y-z plane
    wires: int
    pitch: float = 0.3  # cm

    def coordinate(self, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        theta = math.radians(self.angle_deg)
        return z * math.cos(theta) - y * math.sin(theta)


@dataclass(frozen=True)
class TPC:
    """One drift volume: x from anode to cathode; rows count away from ``row_origin``."""

    x_anode: float
    x_cathode: float
    row_origin: int  # image row of zero drift time
    row_sign: int  # +1: rows increase with drift time, -1: decrease


@dataclass(frozen=True)
class Geometry:
    name: str
    active_min: tuple[float, float, float]
    active_max: tuple[float, float, float]
    planes: tuple[WirePlane, ...]
    tpcs: tuple[TPC, ...]
    rows: int
    columns: int  # image width with the wires centred in it; 0: each plane's own wire count
    sample_us: float = 0.5  # 2 MHz
    downsample: int = 6
    readout_start_us: float = 0.0  # trigger-relative time of row 0 (single-TPC layouts)
    efield: float = 0.273  # kV/cm
    drift_velocity: float = 0.1098  # cm/us
    lifetime_us: float = 10000.0
    diffusion_long: float = 6.2e-6  # cm^2/us (6.2 cm^2/s)
    diffusion_trans: float = 16.3e-6  # cm^2/us
    shaping_us: float = 0.0  # Gaussian time spread of the electronics response left after deconvolution
    mip_segment_adc: float = 64.0  # ADC of one wire's 3 mm of MIP charge at half drift (the gain)
    noise_adc: tuple[tuple[float, ...], ...] = ((2.0,), (2.0,), (2.0,))  # [plane][drift volume]
    # per plane: noise above threshold comes in bursts along the drift time (signal processing
    # correlates noise over several ticks, most on induction planes): a burst spans a geometric
    # number of ticks of this mean, and each tick after its first is above threshold with the
    # fill probability. (1, 1): isolated noise pixels
    noise_burst: tuple[tuple[float, float], ...] = ((1.0, 1.0), (1.0, 1.0), (1.0, 1.0))
    threshold_adc: float = 5.0
    dead_wire_fraction: tuple[float, float, float] = (0.0, 0.0, 0.0)
    voxel_size: float = 0.3

    @property
    def tick_us(self) -> float:
        return self.sample_us * self.downsample

    @property
    def center(self) -> np.ndarray:
        return 0.5 * (np.array(self.active_min) + np.array(self.active_max))

    def wire_offset(self, plane: WirePlane) -> float:
        """w of wire 0: the plane's wires are centred on the active volume's centre."""
        c = self.center
        return plane.coordinate(c[1], c[2]) - plane.wires * plane.pitch / 2

    def column_offset(self, plane: WirePlane) -> int:
        return (self.columns - plane.wires) // 2 if self.columns else 0

    def image_shape(self, plane: WirePlane) -> tuple[int, int]:
        return (self.rows, self.columns or plane.wires)

    def adc_per_electron(self) -> float:
        """Gain: the electrons a MIP leaves on one wire over 3 mm (2.1 MeV/cm, recombined,
        attenuated over half the drift) are worth ``mip_segment_adc``."""
        mip = 2.105 * 0.3 / P.W_ION * float(P.recombination(np.array([2.105]), self.efield)[0])
        half_drift = abs(self.tpcs[0].x_cathode - self.tpcs[0].x_anode) / 2 / self.drift_velocity
        return self.mip_segment_adc / (mip * math.exp(-half_drift / self.lifetime_us))

    def row_volume(self, rows: np.ndarray) -> np.ndarray:
        """Index of the drift volume each image row belongs to."""
        return np.minimum(rows // max(self.rows // len(self.tpcs), 1), len(self.tpcs) - 1)

    def dead_wires(self, plane_index: int) -> np.ndarray:
        """Fixed dead-wire list of a plane (same for every event): a few contiguous blocks."""
        fraction = self.dead_wire_fraction[plane_index]
        wires = self.planes[plane_index].wires
        if fraction <= 0:
            return np.zeros(0, dtype=np.int64)
        rng = np.random.default_rng([7919, plane_index, wires])
        dead: set[int] = set()
        while len(dead) < fraction * wires:
            start = int(rng.integers(0, wires))
            dead.update(range(start, min(wires, start + int(rng.integers(4, 64)))))
        return np.array(sorted(dead))[: round(fraction * wires)]


MICROBOONE = Geometry(
    name="microboone",
    active_min=(0.0, -116.5, 0.0),
    active_max=(256.35, 116.5, 1036.8),
    planes=(WirePlane("U", 60.0, 2400), WirePlane("V", -60.0, 2400), WirePlane("Y", 0.0, 3456)),
    tpcs=(TPC(x_anode=0.0, x_cathode=256.35, row_origin=0, row_sign=1),),
    rows=1008,
    columns=0,
    downsample=6,
    readout_start_us=-400.0,
    efield=0.273,
    drift_velocity=0.1098,
    # charge spreads over neighbouring pixels: this gives a median collection-plane MIP pixel of
    # ~40 ADC, the MicroBooNE scale SparseSSNet's 10-300 ADC window is set for
    mip_segment_adc=64.0,
    noise_adc=((2.5,), (2.5,), (2.5,)),
    threshold_adc=10.0,  # SparseSSNet keeps ADC >= 10
    dead_wire_fraction=(0.05, 0.05, 0.10),
)

SBND = Geometry(
    name="sbnd",
    active_min=(-200.0, -200.0, 0.0),
    active_max=(200.0, 200.0, 500.0),
    planes=(WirePlane("U", 60.0, 1984), WirePlane("V", -60.0, 1984), WirePlane("Y", 0.0, 1664)),
    # Two drift volumes joined at the central cathode: TPC 0's anode is row 0, TPC 1's the last row.
    tpcs=(TPC(x_anode=-200.0, x_cathode=0.0, row_origin=0, row_sign=1),
          TPC(x_anode=200.0, x_cathode=0.0, row_origin=1279, row_sign=-1)),
    rows=1280,
    columns=2048,
    downsample=4,
    efield=0.5,
    drift_velocity=0.156,
    # Calibrated like an experiment calibrates with cosmic muons, on the SBND cosmic-tagging file:
    # collection-plane cosmic pixels (charge-weighted median 85 ADC) and the noise-hit rates above
    # the 5 ADC threshold, higher in one drift volume of each induction plane (docs/simulation.md).
    mip_segment_adc=67.0,
    noise_adc=((1.7, 2.1), (2.1, 1.7), (1.5, 1.5)),
    # induction-plane noise in the file: of the background pixels, 21 / 15 / 11 / 8 / 7 % have an
    # active background pixel 1 / 2 / 3 / 4 / 5 ticks later (isolated hits: under 1 %); bursts of
    # 4 ticks on average, a quarter of them filled, give 19 / 15 / 11 / 9 / 7 %
    noise_burst=((4.0, 0.25), (4.0, 0.25), (1.0, 1.0)),
    threshold_adc=5.0,
)


def cube(size: int) -> Geometry:
    """PILArNet-like 3D cube of ``size`` voxels of 3 mm (no wire planes)."""
    edge = size * 0.3
    return Geometry(name=f"cube{size}", active_min=(0.0, 0.0, 0.0), active_max=(edge, edge, edge),
                    planes=(), tpcs=(TPC(0.0, edge, 0, 1),), rows=0, columns=0)


GEOMETRIES = {"microboone": MICROBOONE, "sbnd": SBND, "cube192": cube(192), "cube512": cube(512),
              "cube768": cube(768)}


def geometry(name: str) -> Geometry:
    if name not in GEOMETRIES:
        raise ValueError(f"unknown geometry {name!r}; choose one of {', '.join(GEOMETRIES)}")
    return GEOMETRIES[name]


@dataclass
class ReadoutConfig:
    sub_samples: int = 8  # charge cloud points per deposit for diffusion and shaping (charge conserving)
    noise: bool = True
    diffusion: bool = True
    dead_wires: bool = True
    threshold_adc: float | None = None  # None: the geometry's
    time_offsets: dict[int, float] = field(default_factory=dict)  # interaction id -> t0 [us]


Window = tuple[int, int, int, int]  # first row, first column, rows, columns


def readout_planes(geo: Geometry, deposits: EventDeposits, rng: np.random.Generator,
                   config: ReadoutConfig | None = None, windows: list[Window] | None = None) -> list[SparseImage]:
    """Wire-plane images of one event, each with per-pixel truth labels.

    With ``windows`` (one per plane) each image is only that window of the plane, in the
    window's own coordinates; charge and noise outside it are never pixelised.
    """
    config = config or ReadoutConfig()
    drifted = _drift(geo, deposits, rng, config)
    gain = geo.adc_per_electron()
    planes = []
    for index, plane in enumerate(geo.planes):
        window = windows[index] if windows is not None else (0, 0, *geo.image_shape(plane))
        if drifted is None:
            planes.append(SparseImage.empty(window[2:]))
            continue
        pos, charge, rows, source = drifted
        wire = np.floor((plane.coordinate(pos[:, 1], pos[:, 2]) - geo.wire_offset(plane)) / plane.pitch)
        column = wire + geo.column_offset(plane) - window[1]
        row = rows - window[0]
        ok = (wire >= 0) & (wire < plane.wires) & (row >= 0) & (row < window[2]) & (column >= 0) & (column < window[3])
        image = _pixelise(np.stack([row[ok], column[ok].astype(np.int64)], 1), charge[ok] * gain, source[ok],
                          deposits, window[2:])
        planes.append(_detector_effects(geo, index, plane, image, rng, config, window))
    return planes


def _drift(geo: Geometry, deposits: EventDeposits, rng: np.random.Generator, config: ReadoutConfig):
    """Charge clouds at the anode: (position, electrons, image row, source deposit index)."""
    if deposits.energy.size == 0:
        return None
    pos = deposits.position
    inside = np.all((pos >= geo.active_min) & (pos <= geo.active_max), axis=1)
    idx = np.nonzero(inside)[0]
    if idx.size == 0:
        return None
    electrons = deposits.energy[idx] / P.W_ION * P.recombination(deposits.dedx[idx], geo.efield)
    x = pos[idx, 0]
    tpc_index = np.zeros(idx.size, dtype=np.int64)
    for k, tpc in enumerate(geo.tpcs):
        lo, hi = sorted((tpc.x_anode, tpc.x_cathode))
        tpc_index[(x >= lo) & (x <= hi)] = k
    anode = np.array([t.x_anode for t in geo.tpcs])[tpc_index]
    drift_us = np.abs(x - anode) / geo.drift_velocity
    electrons = electrons * np.exp(-drift_us / geo.lifetime_us)
    t0 = np.array([config.time_offsets.get(int(i), 0.0) for i in range(int(deposits.interaction.max()) + 1)])
    arrival = drift_us + deposits.time[idx] * 1e-3 + t0[deposits.interaction[idx]]
    k = max(config.sub_samples, 1)
    spread = 1.0 if config.diffusion else 0.0
    sigma_t = spread * np.sqrt(2 * geo.diffusion_trans * drift_us)  # cm
    sigma_l = spread * np.sqrt(2 * geo.diffusion_long * drift_us / geo.drift_velocity**2 + geo.shaping_us**2)  # us
    rep = np.repeat(np.arange(idx.size), k)
    cloud = pos[idx][rep].copy()
    cloud[:, 1:] += rng.standard_normal((rep.size, 2)) * sigma_t[rep, None]
    times = arrival[rep] + rng.standard_normal(rep.size) * sigma_l[rep]
    if len(geo.tpcs) == 1:  # one drift volume read out in a window starting at readout_start_us
        rows = np.floor((times - geo.readout_start_us) / geo.tick_us).astype(np.int64)
        own = (rows >= 0) & (rows < geo.rows)
    else:  # drift volumes each own their share of the rows, counted from their anode's row
        ticks = np.floor(times / geo.tick_us).astype(np.int64)
        share = geo.rows // len(geo.tpcs)
        origin = np.array([t.row_origin for t in geo.tpcs])[tpc_index][rep]
        sign = np.array([t.row_sign for t in geo.tpcs])[tpc_index][rep]
        rows = origin + sign * ticks
        own = (ticks >= 0) & (ticks < share)
    return cloud[own], (electrons[rep] / k)[own], rows[own], idx[rep][own]


def site_deposits(coords: np.ndarray, values: np.ndarray, source: np.ndarray, shape: tuple[int, ...]):
    """The charge of each (site, deposit) pair and each site's dominant deposit (the labelling
    rule): ``(sites, pairs, site_of_pair, pair_charge, total, dominant)``, sites as flat keys of
    ``shape``, pairs as (site key, deposit), ``total`` the charge per site."""
    key = np.ravel_multi_index(tuple(coords.T), shape)
    # one int64 key per pair keeps np.unique one-dimensional (a 2-D unique sorts ~10x slower)
    n_source = int(source.max()) + 1
    pair_keys, inverse = np.unique(key * n_source + source, return_inverse=True)
    pairs = np.stack([pair_keys // n_source, pair_keys % n_source], 1)
    pair_charge = np.bincount(inverse, weights=values, minlength=len(pairs))
    sites, site_of_pair = np.unique(pairs[:, 0], return_inverse=True)
    total = np.bincount(site_of_pair, weights=pair_charge, minlength=len(sites))
    order = np.lexsort((pair_charge, site_of_pair))
    last = np.r_[np.nonzero(np.diff(site_of_pair[order]))[0], len(order) - 1]
    return sites, pairs, site_of_pair, pair_charge, total, pairs[order[last], 1]


def _pixelise(coords: np.ndarray, values: np.ndarray, source: np.ndarray, deposits: EventDeposits,
              shape: tuple[int, ...]) -> SparseImage:
    """Sums values per site; labels from the dominant deposit, origin from the highest code."""
    if coords.shape[0] == 0:
        return SparseImage.empty(shape)
    sites, pairs, site_of_pair, _, total, dominant = site_deposits(coords, values, source, shape)
    origin = np.zeros(len(sites), dtype=np.int8)
    np.maximum.at(origin, site_of_pair, deposits.origin[pairs[:, 1]])
    return SparseImage(
        coords=np.stack(np.unravel_index(sites, shape), 1).astype(np.int32),
        values=total.astype(np.float32),
        semantic=deposits.semantic[dominant].astype(np.int8),
        instance=deposits.particle[dominant].astype(np.int32),
        interaction=deposits.interaction[dominant].astype(np.int32),
        origin=origin,
        shape=tuple(shape),
    )


def _detector_effects(geo: Geometry, index: int, plane: WirePlane, image: SparseImage, rng: np.random.Generator,
                      config: ReadoutConfig, window: Window) -> SparseImage:
    threshold = geo.threshold_adc if config.threshold_adc is None else config.threshold_adc
    values = image.values.astype(np.float64)
    sigma = np.asarray(geo.noise_adc[index], dtype=np.float64)
    if config.noise and sigma.max() > 0:
        volume = geo.row_volume(image.coords[:, 0] + window[0])
        values = values + rng.standard_normal(values.size) * sigma[volume]
    keep = values >= threshold
    image = image.select(keep, values[keep])
    if config.noise and sigma.max() > 0:
        for volume, s in enumerate(sigma):
            image = _add_noise_hits(geo, plane, image, rng, threshold, s, volume, window, geo.noise_burst[index])
    if config.dead_wires:
        dead = geo.dead_wires(index) + geo.column_offset(plane) - window[1]
        image = image.select(~np.isin(image.coords[:, 1], dead))
    return image


def _add_noise_hits(geo: Geometry, plane: WirePlane, image: SparseImage, rng: np.random.Generator,
                    threshold: float, sigma: float, volume: int, window: Window,
                    burst: tuple[float, float] = (1.0, 1.0)) -> SparseImage:
    """Pixels of one drift volume (inside the window) whose noise alone crosses the threshold.

    ``burst`` = (mean ticks, fill): each excursion spans a geometric number of ticks and fills
    each tick after its first with that probability; there are proportionally fewer excursions,
    so the rate of noisy pixels stays the Gaussian tail's."""
    if sigma <= 0:
        return image
    share = geo.rows // len(geo.tpcs)
    # the part of this volume's rows and of the plane's wire columns that the window covers
    row_lo, row_hi = max(volume * share, window[0]), min((volume + 1) * share, window[0] + window[2])
    first_wire = geo.column_offset(plane)
    col_lo, col_hi = max(first_wire, window[1]), min(first_wire + plane.wires, window[1] + window[3])
    if row_hi <= row_lo or col_hi <= col_lo:
        return image
    p_above = 0.5 * erfc(threshold / (sigma * math.sqrt(2)))
    ticks, fill = burst
    per_burst = 1.0 + (ticks - 1.0) * fill
    n = int(rng.binomial((row_hi - row_lo) * (col_hi - col_lo), p_above / per_burst))
    if n == 0:
        return image
    rows = rng.integers(row_lo, row_hi, n)
    cols = rng.integers(col_lo, col_hi, n)
    if ticks > 1.0:
        length = rng.geometric(1.0 / ticks, n)
        first = np.cumsum(length) - length
        offset = np.arange(int(length.sum())) - np.repeat(first, length)
        on = rng.random(len(offset)) < fill
        on[first] = True
        rows = (np.repeat(rows, length) + offset)[on]
        cols = np.repeat(cols, length)[on]
        inside = rows < row_hi
        rows, cols = rows[inside], cols[inside]
    rows, cols = rows - window[0], cols - window[1]
    u = rng.random(len(rows)) * p_above  # values from the Gaussian tail above threshold (inverse CDF)
    values = sigma * math.sqrt(2) * erfcinv(2 * u)
    return image.add_background(np.stack([rows, cols], 1).astype(np.int32), values.astype(np.float32))


def voxelise(geo: Geometry, deposits: EventDeposits, rng: np.random.Generator, smear: float = 0.1,
             sub_samples: int = 2, origin: np.ndarray | None = None) -> SparseImage:
    """3D image of deposited energy in voxels of ``geo.voxel_size``; Gaussian smearing of
    ``smear`` cm splits each deposit into ``sub_samples`` equal parts, so energy is conserved."""
    lo = np.array(geo.active_min) if origin is None else origin
    shape = tuple(round((hi - l0) / geo.voxel_size) for hi, l0 in zip(geo.active_max, lo, strict=True))
    if deposits.energy.size == 0:
        return SparseImage.empty(shape)
    rep = np.repeat(np.arange(deposits.energy.size), sub_samples)
    pos = deposits.position[rep] + rng.normal(0, smear, (rep.size, 3))
    vox = np.floor((pos - lo) / geo.voxel_size).astype(np.int64)
    ok = np.all((vox >= 0) & (vox < np.array(shape)), axis=1)
    return _pixelise(vox[ok], deposits.energy[rep][ok] / sub_samples, rep[ok], deposits, shape)
