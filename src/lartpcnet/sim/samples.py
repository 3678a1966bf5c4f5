"""Named simulation samples: validated YAML configs (``sim/samples/*.yaml``) and event generation.

Event ``i`` of a sample with seed ``s`` is generated from ``numpy.random.default_rng([s, i])``
alone, so any event can be regenerated on its own, in any order and by any worker, bit for bit.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lartpcnet.data.event import INTERACTION_DTYPE, Event
from lartpcnet.data.labels import COSMIC, NEUTRINO
from lartpcnet.errors import DataError, UserError
from lartpcnet.sim import detector as D
from lartpcnet.sim import generators as G
from lartpcnet.sim.transport import Transport, TransportConfig

Range = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParticleSpec(_Strict):
    max: int = Field(ge=0)
    kinetic: Range | None = None  # MeV
    momentum: Range | None = None  # MeV/c

    @model_validator(mode="after")
    def _one_range(self) -> ParticleSpec:
        if (self.kinetic is None) == (self.momentum is None):
            raise ValueError("give exactly one of kinetic or momentum")
        return self


class BombConfiguration(_Strict):
    fraction: float = Field(gt=0, le=1)
    multiplicity: tuple[int, int]
    particles: dict[str, ParticleSpec]
    require_one_of: list[str] = []
    required_kinetic: Range | None = None

    @model_validator(mode="after")
    def _known(self) -> BombConfiguration:
        unknown = set(self.particles) - set(G.PARTICLE_CODES)
        if unknown:
            raise ValueError(f"unknown particles {sorted(unknown)}; known: {sorted(G.PARTICLE_CODES)}")
        return self


class CosmicConfig(_Strict):
    count: tuple[int, int]
    kinetic: Range | None = None  # None: the surface spectrum
    through_vertex_region: bool = False  # aim cosmics at the region around the vertex (crops)


class NeutrinoConfig(_Strict):
    kinds: dict[Literal["nueCC", "numuCC", "NC"], float]
    energy: Range = (200.0, 3000.0)
    cosmic_only_fraction: float = Field(0.0, ge=0, le=1)


class IsolatedConfig(_Strict):
    fraction: float = Field(ge=0, le=1)  # share of events made of isolated single particles
    count: tuple[int, int]


class MichelConfig(_Strict):
    kinetic: Range = (50.0, 500.0)
    mu_plus_fraction: float = 1.0
    count: tuple[int, int] = (1, 1)


class SampleConfig(_Strict):
    """One named sample; see docs/simulation.md for what each field does."""

    name: str
    description: str
    geometry: str
    outputs: list[Literal["planes", "voxels"]]
    crop: tuple[int, int] | None = None  # rows x columns around the vertex, per plane
    vertex_margin: float = 20.0  # cm from the active-volume faces
    bomb: list[BombConfiguration] = []
    vertices: tuple[int, int] = (1, 1)
    isolated: IsolatedConfig | None = None
    cosmics: CosmicConfig | None = None
    neutrino: NeutrinoConfig | None = None
    michel: MichelConfig | None = None
    relabel_secondaries: bool = False
    hip_min_dedx: float | None = Field(None, gt=0)  # MeV/cm: HIP only where a proton is this ionizing
    threshold_adc: float | None = None
    noise: bool = True

    @model_validator(mode="after")
    def _check(self) -> SampleConfig:
        D.geometry(self.geometry)
        if "planes" in self.outputs and not D.geometry(self.geometry).planes:
            raise ValueError(f"geometry {self.geometry} has no wire planes; use outputs: [voxels]")
        if self.bomb and abs(sum(c.fraction for c in self.bomb) - 1) > 1e-6:
            raise ValueError("bomb configuration fractions must add up to 1")
        return self


def sample_names() -> list[str]:
    folder = resources.files("lartpcnet.sim") / "samples"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_sample(name_or_path: str) -> SampleConfig:
    """A sample by name (``particle_bomb``) or from a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text, source = path.read_text(), str(path)
    else:
        folder = resources.files("lartpcnet.sim") / "samples"
        entry = folder / f"{name_or_path}.yaml"
        if not entry.is_file():
            raise UserError(f"unknown sample {name_or_path!r}; choose one of {', '.join(sample_names())} "
                            "or give a YAML file")
        text, source = entry.read_text(), f"sample {name_or_path}"
    try:
        return SampleConfig.model_validate(yaml.safe_load(text))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise DataError(f"{first['msg']}", file=source, field=where) from err
    except yaml.YAMLError as err:
        raise DataError(f"not valid YAML ({err})", file=source) from err


def generate_event(config: SampleConfig, seed: int, index: int) -> Event:
    """Event ``index`` of the sample: generated from (seed, index) only."""
    rng = np.random.default_rng([seed, index])
    geo = D.geometry(config.geometry)
    lo, hi = np.array(geo.active_min), np.array(geo.active_max)
    world_lo, world_hi = lo.copy(), hi.copy()
    vertex = rng.uniform(lo + config.vertex_margin, hi - config.vertex_margin)
    crop_box = None
    if config.crop is not None:
        # Track only what a crop around the vertex can see: its drift range and a band in z.
        half_z = config.crop[1] * 0.3 / 2 + 0.87 * (hi[1] - lo[1])
        world_lo[2], world_hi[2] = max(lo[2], vertex[2] - half_z), min(hi[2], vertex[2] + half_z)
        half_x = config.crop[0] * geo.tick_us * geo.drift_velocity / 2  # the crop's drift window
        crop_box = (np.array([max(lo[0], vertex[0] - half_x), lo[1], vertex[2] - config.crop[1] * 0.15]),
                    np.array([min(hi[0], vertex[0] + half_x), hi[1], vertex[2] + config.crop[1] * 0.15]))
    tr = Transport(rng, world_lo, world_hi, TransportConfig(relabel_secondaries=config.relabel_secondaries,
                                                                 hip_min_dedx=config.hip_min_dedx))
    rows: list[tuple] = []
    next_id = 0
    kind = "bomb"
    if config.neutrino is not None:
        if rng.random() < config.neutrino.cosmic_only_fraction:
            kind = "cosmic_only"
        else:
            names = list(config.neutrino.kinds)
            weights = np.array([config.neutrino.kinds[n] for n in names], dtype=float)
            kind = str(rng.choice(names, p=weights / weights.sum()))
            rows.append(G.add_neutrino(tr, rng, kind, vertex, next_id, config.neutrino.energy))
            next_id += 1
    elif config.michel is not None:
        kind = "michel"
        box = crop_box if crop_box is not None else (lo, hi)  # with a crop, muons stop where it looks
        for _ in range(int(rng.integers(config.michel.count[0], config.michel.count[1] + 1))):
            start, direction, energy = G.stopping_muon(rng, box[0], box[1], config.michel.kinetic)
            pdg = -13 if rng.random() < config.michel.mu_plus_fraction else 13
            tr.add(pdg, start, direction, energy, interaction=next_id, origin=COSMIC)
            rows.append((next_id, COSMIC, b"michel", energy, start, 0.0))
            next_id += 1
    elif config.bomb:
        isolated = config.isolated is not None and rng.random() < config.isolated.fraction
        if isolated:
            kind = "isolated"
            n = int(rng.integers(config.isolated.count[0], config.isolated.count[1] + 1))
            single = {"multiplicity": (1, 1)}
            for _ in range(n):
                where = rng.uniform(lo + config.vertex_margin, hi - config.vertex_margin)
                cfg = _pick_configuration(config, rng)
                G.add_bomb(tr, rng, where, single | {"particles": cfg["particles"]}, next_id, NEUTRINO)
                rows.append((next_id, NEUTRINO, b"isolated", 0.0, where, 0.0))
                next_id += 1
        else:
            for v in range(int(rng.integers(config.vertices[0], config.vertices[1] + 1))):
                where = vertex if v == 0 else rng.uniform(lo + config.vertex_margin, hi - config.vertex_margin)
                G.add_bomb(tr, rng, where, _pick_configuration(config, rng), next_id, NEUTRINO)
                rows.append((next_id, NEUTRINO, b"bomb", 0.0, where, 0.0))
                next_id += 1
    if config.cosmics is not None:
        count = int(rng.integers(config.cosmics.count[0], config.cosmics.count[1] + 1))
        target = crop_box if config.cosmics.through_vertex_region else None
        rows += G.add_cosmics(tr, rng, count, next_id, world_lo, world_hi, _t0_window(geo), target,
                              config.cosmics.kinetic)
    deposits, particles = tr.run()
    interactions = np.array([(r[0], r[1], r[2], r[3], tuple(r[4]), r[5]) for r in rows], dtype=INTERACTION_DTYPE)
    event = Event(particles=particles, interactions=interactions,
                  meta={"sample": config.name, "seed": seed, "index": index, "geometry": geo.name, "kind": kind})
    if "planes" in config.outputs:
        readout = D.ReadoutConfig(noise=config.noise, threshold_adc=config.threshold_adc,
                                  time_offsets={int(r["id"]): float(r["t0"]) for r in interactions})
        windows = None
        if config.crop is not None:
            windows = [_crop_window(geo, plane, vertex, config.crop) for plane in geo.planes]
        planes = D.readout_planes(geo, deposits, rng, readout, windows)
        if kind not in ("cosmic_only", "michel", "isolated"):  # events with one interaction vertex
            for k, (image, plane) in enumerate(zip(planes, geo.planes, strict=True)):
                row, col = _vertex_pixel(geo, plane, vertex)
                if windows is not None:
                    row, col = row - windows[k][0], col - windows[k][1]
                if 0 <= row < image.shape[0] and 0 <= col < image.shape[1]:
                    image.vertex = (row, col)
        event.planes = [p.sorted() for p in planes]
    if "voxels" in config.outputs:
        event.voxels = D.voxelise(geo, deposits, rng).sorted()
    return event


def _pick_configuration(config: SampleConfig, rng: np.random.Generator) -> dict:
    fractions = np.array([c.fraction for c in config.bomb])
    chosen = config.bomb[int(rng.choice(len(config.bomb), p=fractions / fractions.sum()))]
    return chosen.model_dump()


def _t0_window(geo: D.Geometry) -> tuple[float, float]:
    """Cosmic arrival times [us] that leave charge somewhere in the readout: the full drift window."""
    drift = abs(geo.tpcs[0].x_cathode - geo.tpcs[0].x_anode) / geo.drift_velocity
    if len(geo.tpcs) == 1:
        return geo.readout_start_us - drift, geo.readout_start_us + geo.rows * geo.tick_us
    return -drift, geo.rows // len(geo.tpcs) * geo.tick_us


def _vertex_pixel(geo: D.Geometry, plane: D.WirePlane, vertex: np.ndarray) -> tuple[int, int]:
    """(row, column) of a point at t0 = 0 on a plane's full image."""
    tpc = min(geo.tpcs, key=lambda t: abs(vertex[0] - t.x_anode))
    ticks = int(abs(vertex[0] - tpc.x_anode) / geo.drift_velocity / geo.tick_us)
    if len(geo.tpcs) == 1:
        row = int((abs(vertex[0] - tpc.x_anode) / geo.drift_velocity - geo.readout_start_us) / geo.tick_us)
    else:
        row = tpc.row_origin + tpc.row_sign * ticks
    wire = int((plane.coordinate(vertex[1], vertex[2]) - geo.wire_offset(plane)) / plane.pitch)
    return row, wire + geo.column_offset(plane)


def _crop_window(geo: D.Geometry, plane: D.WirePlane, vertex: np.ndarray, size: tuple[int, int]) -> D.Window:
    """A rows x columns window of a plane centred on the vertex's projection, kept inside the image."""
    row, col = _vertex_pixel(geo, plane, vertex)
    r0 = int(np.clip(row - size[0] // 2, 0, geo.rows - size[0]))
    c0 = int(np.clip(col - size[1] // 2, 0, geo.image_shape(plane)[1] - size[1]))
    return (r0, c0, size[0], size[1])
