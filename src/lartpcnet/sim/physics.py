"""Energy loss, scattering and decay physics of charged particles and photons in liquid argon.

Units: cm, MeV, ns. Every constant is listed in docs/simulation.md with its source; the main
ones are the PDG "Atomic and nuclear properties" entry for liquid argon and the PDG review
"Passage of particles through matter".
"""

from __future__ import annotations

import functools

import numpy as np

# --- liquid argon (PDG atomic & nuclear properties) ----------------------------------------
DENSITY = 1.396  # g/cm^3
Z_OVER_A = 18 / 39.948  # mol/g
MEAN_EXCITATION = 188.0e-6  # MeV (I)
RADIATION_LENGTH = 14.0  # cm (X0 = 19.55 g/cm^2 / 1.396)
CRITICAL_ENERGY = 32.84  # MeV (e-, Rossi definition)
NUCLEAR_INTERACTION_LENGTH = 85.77  # cm (lambda_I = 119.7 g/cm^2)
W_ION = 23.6e-6  # MeV per ionisation electron
# Sternheimer density-effect parameters for liquid argon
STERNHEIMER = {"C": 5.2146, "x0": 0.2000, "x1": 3.0000, "a": 0.19559, "k": 3.0000}

# --- particles (PDG) -----------------------------------------------------------------------
ELECTRON_MASS = 0.51099895
MUON_MASS = 105.6583755
PION_MASS = 139.57039
PI0_MASS = 134.9768
PROTON_MASS = 938.27208816
MUON_LIFETIME = 2196.98  # ns, free muon
MUON_MINUS_LIFETIME_AR = 537.0  # ns, mu- bound in argon (Suzuki et al. 1987)
# mu- at rest in argon: capture on the nucleus vs decay. Decay fraction = tau_bound / tau_free.
MUON_MINUS_DECAY_FRACTION = MUON_MINUS_LIFETIME_AR / MUON_LIFETIME  # ~0.244
MICHEL_ENDPOINT = 52.83  # MeV, the largest total energy (m_mu^2 + m_e^2) / (2 m_mu)
MICHEL_KINETIC_ENDPOINT = MICHEL_ENDPOINT - ELECTRON_MASS  # 52.32 MeV: the edge of the kinetic-energy spectrum
K_BETHE = 0.307075  # MeV cm^2 / mol

MASSES = {13: MUON_MASS, 211: PION_MASS, 2212: PROTON_MASS, 11: ELECTRON_MASS}


def _density_effect(x: np.ndarray) -> np.ndarray:
    """Sternheimer delta(beta gamma) with x = log10(beta gamma)."""
    p = STERNHEIMER
    delta = np.zeros_like(x)
    mid = (x >= p["x0"]) & (x < p["x1"])
    high = x >= p["x1"]
    ln10 = 2 * np.log(10)
    delta[mid] = ln10 * x[mid] - p["C"] + p["a"] * (p["x1"] - x[mid]) ** p["k"]
    delta[high] = ln10 * x[high] - p["C"]
    return delta


def kinematics(kinetic: np.ndarray, mass: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beta, gamma, momentum) for kinetic energy ``kinetic`` [MeV]."""
    kinetic = np.asarray(kinetic, dtype=np.float64)
    gamma = 1 + kinetic / mass
    beta = np.sqrt(np.clip(1 - 1 / gamma**2, 1e-12, None))
    return beta, gamma, beta * gamma * mass


def t_max(kinetic: np.ndarray, mass: float) -> np.ndarray:
    """Largest energy transfer to a free electron in one collision [MeV]."""
    beta, gamma, _ = kinematics(kinetic, mass)
    ratio = ELECTRON_MASS / mass
    return 2 * ELECTRON_MASS * (beta * gamma) ** 2 / (1 + 2 * gamma * ratio + ratio**2)


def dedx_heavy(kinetic: np.ndarray, mass: float, t_cut: float | None = None) -> np.ndarray:
    """Mean (or, with ``t_cut``, restricted) Bethe-Bloch stopping power in LAr [MeV/cm].

    The restricted form counts only energy transfers below ``t_cut``; transfers above it are
    simulated as explicit delta rays.
    """
    beta, gamma, _ = kinematics(kinetic, mass)
    tmax = t_max(kinetic, mass)
    upper = tmax if t_cut is None else np.minimum(tmax, t_cut)
    bg2 = (beta * gamma) ** 2
    delta = _density_effect(np.log10(beta * gamma))
    log_term = 0.5 * np.log(2 * ELECTRON_MASS * bg2 * upper / MEAN_EXCITATION**2)
    bracket = log_term - beta**2 / 2 * (1 + upper / tmax) - delta / 2
    dedx = K_BETHE * Z_OVER_A / beta**2 * bracket * DENSITY
    return np.clip(dedx, 0.0, None)


def dedx_electron(kinetic: np.ndarray) -> np.ndarray:
    """Collision stopping power of electrons (Bethe with the Moller term, PDG eq. 34.x) [MeV/cm]."""
    tau = np.asarray(kinetic, dtype=np.float64) / ELECTRON_MASS
    beta, gamma, _ = kinematics(kinetic, ELECTRON_MASS)
    f_minus = 1 - beta**2 + (tau**2 / 8 - (2 * tau + 1) * np.log(2)) / (tau + 1) ** 2
    delta = _density_effect(np.log10(beta * gamma))
    bracket = np.log(tau**2 * (tau + 2) / (2 * (MEAN_EXCITATION / ELECTRON_MASS) ** 2)) + f_minus - delta
    return np.clip(K_BETHE / 2 * Z_OVER_A / beta**2 * bracket * DENSITY, 0.5, None)


@functools.lru_cache(maxsize=8)
def range_table(mass: float) -> tuple[np.ndarray, np.ndarray]:
    """(kinetic energy grid [MeV], CSDA range [cm]) from integrating 1 / mean dE/dx."""
    kinetic = np.geomspace(1e-3, 1e5, 4000)
    dedx = dedx_electron(kinetic) if mass == ELECTRON_MASS else _dedx_low_energy_safe(kinetic, mass)
    inverse = 1 / dedx
    steps = np.diff(kinetic) * 0.5 * (inverse[1:] + inverse[:-1])
    ranges = np.concatenate([[kinetic[0] * inverse[0]], kinetic[0] * inverse[0] + np.cumsum(steps)])
    return kinetic, ranges


def _dedx_low_energy_safe(kinetic: np.ndarray, mass: float) -> np.ndarray:
    # Bethe fails below beta ~ 0.05; hold dE/dx at its peak value there (a tiny range share).
    dedx = dedx_heavy(kinetic, mass)
    peak = np.argmax(dedx)
    dedx[:peak] = dedx[peak]
    return dedx


class StepTable:
    """Per-particle-mass quantities of a step, tabulated on a log kinetic-energy grid so that a chunk
    of steps costs a few interpolations instead of repeated Bethe-Bloch evaluations."""

    def __init__(self, mass: float, t_cut: float) -> None:
        self.log_kinetic = np.linspace(np.log(1e-3), np.log(1e6), 3000)
        kinetic = np.exp(self.log_kinetic)
        beta, _, p = kinematics(kinetic, mass)
        full = dedx_heavy(kinetic, mass)
        self.restricted_share = dedx_heavy(kinetic, mass, t_cut) / np.maximum(full, 1e-12)
        self.xi_per_cm = landau_xi(kinetic, mass, np.ones_like(kinetic))
        self.inv_beta_p = 1 / (beta * p)
        self.inv_beta = 1 / beta
        self.delta_rate = delta_ray_rate(kinetic, mass, t_cut)
        self.t_max = t_max(kinetic, mass)

    def __call__(self, name: str, kinetic: np.ndarray) -> np.ndarray:
        return np.interp(np.log(np.maximum(kinetic, 1e-3)), self.log_kinetic, getattr(self, name))


@functools.lru_cache(maxsize=16)
def step_table(mass: float, t_cut: float) -> StepTable:
    return StepTable(mass, t_cut)


def csda_range(kinetic: np.ndarray, mass: float) -> np.ndarray:
    grid, ranges = range_table(mass)
    return np.interp(np.log(np.maximum(kinetic, grid[0])), np.log(grid), ranges)


def kinetic_from_range(distance: np.ndarray, mass: float) -> np.ndarray:
    grid, ranges = range_table(mass)
    return np.interp(distance, ranges, grid, left=0.0)


def landau_xi(kinetic: np.ndarray, mass: float, step: np.ndarray) -> np.ndarray:
    """Landau width parameter xi for a step [MeV]."""
    beta, _, _ = kinematics(kinetic, mass)
    return K_BETHE / 2 * Z_OVER_A * DENSITY * step / beta**2


MOYAL_MEAN = np.euler_gamma + np.log(2)  # mean of the Moyal variable lambda


def moyal(rng: np.random.Generator, size: int | tuple) -> np.ndarray:
    """Moyal-distributed lambda (a closed-form stand-in for Landau): -ln(Z^2), Z ~ N(0, 1)."""
    z = rng.standard_normal(size)
    return -np.log(np.maximum(z * z, 1e-300))


def highland(kinetic: np.ndarray, mass: float, step: np.ndarray) -> np.ndarray:
    """RMS plane scattering angle theta_0 for a step (PDG Highland formula) [rad]."""
    beta, _, p = kinematics(kinetic, mass)
    return highland_theta(1 / beta, 1 / (beta * p), step)


def highland_theta(inv_beta: np.ndarray, inv_beta_p: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    """Highland's theta_0 from 1/beta and 1/(beta p) [1/(MeV/c)]: 13.6 MeV / (beta c p) sqrt(x/X0)
    (1 + 0.038 ln(x / (X0 beta^2)))."""
    t = np.maximum(np.asarray(step) / RADIATION_LENGTH, 1e-6)
    return 13.6 * inv_beta_p * np.sqrt(t) * np.maximum(1 + 0.038 * np.log(t * inv_beta**2), 0.1)


def sample_delta_energies(rng: np.random.Generator, t_cut: float, t_upper: float, n: int) -> np.ndarray:
    """n delta-ray kinetic energies from the 1/T^2 spectrum on [t_cut, t_upper]."""
    u = rng.random(n)
    return 1 / (1 / t_cut - u * (1 / t_cut - 1 / t_upper))


def delta_ray_rate(kinetic: np.ndarray, mass: float, t_cut: float) -> np.ndarray:
    """Expected number of delta rays above t_cut per cm (spin-0 1/T^2 spectrum)."""
    beta, _, _ = kinematics(kinetic, mass)
    tmax = t_max(kinetic, mass)
    rate = K_BETHE / 2 * Z_OVER_A * DENSITY / beta**2 * (1 / t_cut - 1 / np.maximum(tmax, t_cut))
    return np.where(tmax > t_cut, rate, 0.0)


def sample_michel(rng: np.random.Generator, n: int) -> np.ndarray:
    """Michel electron total energies [MeV]: dN/dx ~ x^2 (3 - 2x), x = E / MICHEL_ENDPOINT (rejection
    sampling); the kinetic energy is E - m_e, at most MICHEL_KINETIC_ENDPOINT."""
    out = np.empty(0)
    while out.size < n:
        x = rng.random(2 * n + 8)
        keep = rng.random(x.size) * 1.0 < x**2 * (3 - 2 * x)
        out = np.concatenate([out, x[keep]])
    return out[:n] * MICHEL_ENDPOINT


def recombination(dedx: np.ndarray, efield: float) -> np.ndarray:
    """Fraction of ionisation electrons surviving recombination: modified box model
    (ArgoNeuT, alpha = 0.93, beta = 0.212 (kV/cm)(g/cm^2)/MeV); ``efield`` in kV/cm."""
    alpha, beta = 0.93, 0.212
    xi = beta * np.maximum(dedx, 1e-3) / (DENSITY * efield)
    return np.log(alpha + xi) / xi


# --- photons (NIST XCOM, argon; total attenuation and the pair-production share) ---------
_PHOTON_E = np.array([0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0])
_PHOTON_MU_RHO = np.array([0.1630, 0.1103, 0.0789, 0.0615, 0.0519, 0.0447, 0.0375, 0.0318, 0.0274,
                           0.0256, 0.0272, 0.0290, 0.0320])  # cm^2/g
_PAIR_SHARE = np.array([0, 0, 0, 0, 0.003, 0.02, 0.07, 0.18, 0.38, 0.58, 0.80, 0.89, 0.98])


def photon_attenuation_length(energy: np.ndarray) -> np.ndarray:
    """Mean free path of a photon in LAr [cm]."""
    mu = np.interp(np.log(np.maximum(energy, 0.1)), np.log(_PHOTON_E), _PHOTON_MU_RHO)
    return 1 / (mu * DENSITY)


def pair_fraction(energy: np.ndarray) -> np.ndarray:
    """Share of photon interactions that are pair production (the rest: Compton)."""
    return np.interp(np.log(np.maximum(energy, 0.1)), np.log(_PHOTON_E), _PAIR_SHARE)


def sample_compton(rng: np.random.Generator, energy: float) -> tuple[float, float]:
    """(scattered photon energy, cos theta) from Klein-Nishina by rejection."""
    k = energy / ELECTRON_MASS
    while True:
        cos = 2 * rng.random() - 1
        ratio = 1 / (1 + k * (1 - cos))
        kn = ratio**2 * (ratio + 1 / ratio - (1 - cos**2)) / 2
        if rng.random() < kn:
            return energy * ratio, cos
