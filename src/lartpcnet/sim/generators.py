"""Primary-particle generators: particle bombs, cosmic muons, neutrino-like interactions, stopping muons.

The neutrino generator is kinematically plausible, not GENIE: a BNB-like energy spectrum, a
forward lepton, and a hadronic system of protons, charged pions and pi0s sharing the energy
transfer. See docs/simulation.md.
"""

from __future__ import annotations

import numpy as np

from lartpcnet.data.labels import COSMIC, NEUTRINO
from lartpcnet.sim import physics as P
from lartpcnet.sim.transport import Transport, isotropic, rotate

PARTICLE_CODES = {"e-": 11, "e+": -11, "gamma": 22, "mu-": 13, "mu+": -13, "pi+": 211, "pi-": -211,
                  "proton": 2212, "pi0": 111}
MASS_OF = {11: P.ELECTRON_MASS, -11: P.ELECTRON_MASS, 22: 0.0, 13: P.MUON_MASS, -13: P.MUON_MASS,
           211: P.PION_MASS, -211: P.PION_MASS, 2212: P.PROTON_MASS, 111: P.PI0_MASS}


def kinetic_from_momentum(p: float, mass: float) -> float:
    return float(np.sqrt(p * p + mass * mass) - mass)


# --- cosmic muons ---------------------------------------------------------------------------
COSMIC_E0 = 2800.0  # MeV: dN/dE ~ (E + E0)^-2.7 gives a ~4 GeV mean at sea level
COSMIC_INDEX = 2.7
MU_PLUS_FRACTION = 0.555  # mu+/mu- ~ 1.25 at sea level


def sample_cosmic_energy(rng: np.random.Generator, lo: float = 100.0, hi: float = 1e6) -> float:
    """Kinetic energy [MeV] from dN/dE ~ (E + E0)^-2.7 on [lo, hi] (inverse CDF)."""
    a = 1 - COSMIC_INDEX
    u = rng.random()
    c_lo, c_hi = (lo + COSMIC_E0) ** a, (hi + COSMIC_E0) ** a
    return float((c_lo + u * (c_hi - c_lo)) ** (1 / a) - COSMIC_E0)


def sample_cosmic_direction(rng: np.random.Generator) -> np.ndarray:
    """Downward direction with intensity ~ cos^2(zenith), crossing a horizontal plane (x cos)."""
    cos = rng.random() ** 0.25  # pdf ~ cos^3 on [0, 1]
    phi = rng.uniform(0, 2 * np.pi)
    sin = np.sqrt(1 - cos * cos)
    return np.array([sin * np.cos(phi), -cos, sin * np.sin(phi)])


def ray_box(point: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float] | None:
    """Entry and exit parameters t of point + t * direction through the box, or None."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - point) / direction
        t2 = (hi - point) / direction
    t_near = np.nanmax(np.minimum(t1, t2))
    t_far = np.nanmin(np.maximum(t1, t2))
    if not np.isfinite(t_near) or t_far <= max(t_near, -1e12):
        return None
    return float(t_near), float(t_far)


def cosmic_muon(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, target: tuple[np.ndarray, np.ndarray] | None,
                kinetic: tuple[float, float] | None) -> tuple[int, np.ndarray, np.ndarray, float]:
    """(pdg, entry point, direction, kinetic) of a muon that enters the box [lo, hi] from outside.

    It passes through a random point of ``target`` (a sub-box; default the whole box), so
    crops around a vertex still see their cosmics.
    """
    t_lo, t_hi = target if target is not None else (lo, hi)
    while True:
        direction = sample_cosmic_direction(rng)
        through = rng.uniform(t_lo, t_hi)
        hit = ray_box(through, direction, lo, hi)
        if hit is None:
            continue
        entry = through + hit[0] * direction
        energy = rng.uniform(*kinetic) if kinetic else sample_cosmic_energy(rng)
        pdg = -13 if rng.random() < MU_PLUS_FRACTION else 13
        return pdg, entry + 1e-6 * direction, direction, energy


def add_cosmics(tr: Transport, rng: np.random.Generator, count: int, first_id: int, lo: np.ndarray, hi: np.ndarray,
                t0_range: tuple[float, float], target=None, kinetic=None) -> list[tuple]:
    """Adds ``count`` cosmic muons, each its own interaction; returns interaction-table rows."""
    rows = []
    for k in range(count):
        pdg, entry, direction, energy = cosmic_muon(rng, lo, hi, target, kinetic)
        interaction = first_id + k
        tr.add(pdg, entry, direction, energy, interaction=interaction, origin=COSMIC)
        t0 = float(rng.uniform(*t0_range))
        rows.append((interaction, COSMIC, b"cosmic", energy, entry, t0))
    return rows


# --- particle bombs -------------------------------------------------------------------------
def add_bomb(tr: Transport, rng: np.random.Generator, vertex: np.ndarray, configuration: dict, interaction: int,
             origin: int) -> int:
    """Particles from one point as a sample configuration describes; returns how many."""
    low, high = configuration["multiplicity"]
    total = int(rng.integers(low, high + 1))
    specs = configuration["particles"]
    remaining = {name: int(spec["max"]) for name, spec in specs.items()}
    chosen: list[str] = []
    required = configuration.get("require_one_of") or []
    if required:
        name = str(rng.choice(required))
        chosen.append(name)
        remaining[name] = remaining.get(name, 1) - 1
    while len(chosen) < total:
        allowed = [n for n, left in remaining.items() if left > 0]
        if not allowed:
            break
        name = str(rng.choice(allowed))
        chosen.append(name)
        remaining[name] -= 1
    for i, name in enumerate(chosen):
        spec = dict(specs.get(name, {}))
        if i == 0 and required and configuration.get("required_kinetic"):
            spec = {"kinetic": configuration["required_kinetic"]}
        pdg = PARTICLE_CODES[name]
        if spec.get("momentum"):
            energy = kinetic_from_momentum(rng.uniform(*spec["momentum"]), MASS_OF[pdg])
        else:
            energy = float(rng.uniform(*spec["kinetic"]))
        tr.add(pdg, vertex, isotropic(rng), energy, interaction=interaction, origin=origin)
    return len(chosen)


# --- neutrino-like interactions --------------------------------------------------------------
NEUTRINO_KINDS = ("nueCC", "numuCC", "NC")


def sample_bnb_energy(rng: np.random.Generator, lo: float = 200.0, hi: float = 3000.0) -> float:
    """Neutrino energy [MeV] from a BNB-like spectrum: Gamma(k=2.2, 360 MeV), peak ~0.45 GeV,
    mean ~0.8 GeV, truncated to [lo, hi]."""
    while True:
        e = rng.gamma(2.2, 360.0)
        if lo <= e <= hi:
            return float(e)


def add_neutrino(tr: Transport, rng: np.random.Generator, kind: str, vertex: np.ndarray, interaction: int,
                 energy_range: tuple[float, float] = (200.0, 3000.0)) -> tuple:
    """A neutrino-like interaction at ``vertex``; returns its interaction-table row."""
    if kind not in NEUTRINO_KINDS:
        raise ValueError(f"unknown neutrino interaction {kind!r}; choose one of {', '.join(NEUTRINO_KINDS)}")
    e_nu = sample_bnb_energy(rng, *energy_range)
    beam = np.array([0.0, 0.0, 1.0])  # along the detector's z, like the BNB
    nu_pdg = {"nueCC": 12, "numuCC": 14, "NC": 14}[kind]
    parent = tr.add(nu_pdg, vertex, beam, e_nu, interaction=interaction, origin=NEUTRINO, semantic=-1)
    y = float(np.clip(rng.beta(1.3, 3.0), 0.02, 0.95))  # energy transfer fraction, QE-like small y
    transfer = y * e_nu
    if kind != "NC":
        lepton = 11 if kind == "nueCC" else 13
        mass = MASS_OF[lepton]
        kinetic = max(e_nu - transfer - mass, 5.0)
        cos = float(np.clip(1 - rng.exponential(0.35), -1, 1))  # forward-peaked
        direction = rotate(beam, cos, rng)
        tr.add(lepton, vertex, direction, kinetic, interaction=interaction, origin=NEUTRINO, parent=parent)
    _hadrons(tr, rng, vertex, transfer, beam, interaction, parent, require_visible=kind == "NC")
    return (interaction, NEUTRINO, kind.encode(), e_nu, vertex, 0.0)


def _hadrons(tr: Transport, rng: np.random.Generator, vertex: np.ndarray, transfer: float, beam: np.ndarray,
             interaction: int, parent: int, require_visible: bool) -> None:
    """The hadronic system: protons, charged pions and pi0s sharing the energy transfer."""
    available = max(transfer - 30.0, 20.0)  # minus nuclear binding and invisible neutrons
    n_proton = int(min(rng.poisson(0.8 + available / 400.0), 4))
    n_pion = int(min(rng.poisson(available / 700.0), 3))
    n_pi0 = int(rng.random() < min(0.45, available / 1500.0))
    if require_visible and n_proton + n_pion + n_pi0 == 0:
        n_proton = 1
    kinds = [2212] * n_proton + [int(rng.choice([211, -211])) for _ in range(n_pion)] + [111] * n_pi0
    if not kinds:
        return
    rest = sum(MASS_OF[k] for k in kinds if k != 2212)
    shares = rng.dirichlet(np.full(len(kinds), 1.5)) * max(available - rest, 10.0)
    for pdg, kinetic in zip(kinds, shares, strict=True):
        cos = float(np.clip(rng.uniform(-0.3, 1.0), -1, 1))  # loosely along the momentum transfer
        tr.add(pdg, vertex, rotate(beam, cos, rng), float(max(kinetic, 2.0)), interaction=interaction,
               origin=NEUTRINO, parent=parent)


# --- stopping muons ------------------------------------------------------------------------
def stopping_muon(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, kinetic: tuple[float, float],
                  margin: float = 3.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Start, direction and kinetic energy of a muon whose CSDA range ends inside the box."""
    while True:
        energy = float(rng.uniform(*kinetic))
        direction = isotropic(rng)
        length = float(P.csda_range(np.array([energy]), P.MUON_MASS)[0])
        start = rng.uniform(lo + margin, hi - margin)
        end = start + 0.97 * length * direction  # scattering shortens the straight-line range
        if np.all(end > lo + margin) and np.all(end < hi - margin):
            return start, direction, energy
