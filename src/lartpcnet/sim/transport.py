"""Particle transport in liquid argon: energy deposits with truth labels, and the particle table.

Charged particles are stepped in chunks of up to 64 steps that are computed at once with numpy:
the mean energy along the path follows the CSDA range table, each step's deposit fluctuates
(Moyal), multiple scattering kicks accumulate in the chunk's transverse frame, and a chunk ends
early at a large accumulated angle, a bremsstrahlung photon, or the edge of the world volume.
Photons travel exponential distances and pair-convert or Compton-scatter. See
docs/simulation.md for the physics and the semantic-label rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lartpcnet.data.event import PARTICLE_DTYPE
from lartpcnet.data.labels import DELTA, HIP, MICHEL, MIP, SHOWER
from lartpcnet.sim import physics as P

MAX_STEP = 0.3  # cm, one wire pitch / voxel
CHUNK = 64
MAX_CHUNK_ANGLE = 0.5  # rad accumulated in one chunk before its frame is renewed
SLOW_ELECTRON = 10.0  # MeV: below this electrons take the batched scattered-walk path
MAX_SLOW_STEPS = 20
# Compton electrons below this (range < 3 mm, one pixel) are deposited where they are made and
# belong to their photon in the truth, instead of being particles of their own.
PIXEL_ELECTRON = 0.6  # MeV
LOCAL_DEDX = 10.0  # MeV/cm given to sub-millimetre deposits (recombination of a stopping electron)


@dataclass
class TransportConfig:
    """Settings of the transport; the defaults are documented in docs/simulation.md."""

    delta_cut: float = 3.0  # MeV: delta rays above this are explicit particles
    brem_cut: float = 1.0  # MeV: bremsstrahlung photons above this are explicit
    electron_cut: float = 0.1  # MeV: electrons below deposit locally
    photon_cut: float = 0.1  # MeV: photons below are absorbed locally (photoabsorption dominates)
    relabel_secondaries: bool = False  # Michel/delta descendants -> shower (Domine & Terao VI)
    # HIP is only the highly ionizing part of a proton's (kaon's) track: where its mean dE/dx is
    # below this (MeV/cm), its deposits are labelled MIP (None: every HIP particle's deposit is HIP)
    hip_min_dedx: float | None = None
    pion_interaction_length: float = 1.1 * P.NUCLEAR_INTERACTION_LENGTH


@dataclass
class _Particle:
    pid: int
    pdg: int
    pos: np.ndarray
    direction: np.ndarray
    kinetic: float
    time: float
    semantic: int
    interaction: int
    origin: int


@dataclass
class EventDeposits:
    """Energy deposits of one event with per-deposit truth."""

    position: np.ndarray  # (N, 3) cm
    energy: np.ndarray  # (N,) MeV
    dedx: np.ndarray  # (N,) MeV/cm, for recombination
    time: np.ndarray  # (N,) ns after the interaction time
    particle: np.ndarray  # (N,) particle id
    semantic: np.ndarray  # (N,) class code
    interaction: np.ndarray  # (N,)
    origin: np.ndarray  # (N,)


@dataclass
class Transport:
    """Tracks particles through a box-shaped world and collects deposits and the particle table."""

    rng: np.random.Generator
    world_min: np.ndarray
    world_max: np.ndarray
    config: TransportConfig = field(default_factory=TransportConfig)

    def __post_init__(self) -> None:
        self._deposits: list[tuple] = []
        self._semantic_of_block: dict[int, np.ndarray] = {}  # deposit block -> per-deposit classes
        self._rows: list[tuple] = []
        self._stack: list[_Particle] = []
        self._slow: list[_Particle] = []  # electrons below SLOW_ELECTRON, walked together in batches
        self._deposited: dict[int, float] = {}
        self._end: dict[int, np.ndarray] = {}

    # -- public ----------------------------------------------------------------------------
    def add(self, pdg: int, pos, direction, kinetic: float, *, interaction: int, origin: int,
            parent: int = -1, process: str = "primary", time: float = 0.0, semantic: int | None = None) -> int:
        """Queues a particle and records it in the particle table; returns its id."""
        pos = np.asarray(pos, dtype=np.float64)
        direction = np.asarray(direction, dtype=np.float64)
        direction = direction / math.sqrt(float(direction @ direction))
        pid = len(self._rows)
        if semantic is None:
            semantic = _default_semantic(pdg)
        mass = _mass(pdg)
        momentum = np.sqrt(kinetic * (kinetic + 2 * mass)) * direction
        self._rows.append((pid, parent, pdg, process.encode(), kinetic, *momentum,
                           (*pos, time), (*pos, time), 0.0, interaction, origin, semantic))
        self._stack.append(_Particle(pid, pdg, pos, direction, kinetic, time, semantic, interaction, origin))
        return pid

    def run(self) -> tuple[EventDeposits, np.ndarray]:
        """Tracks everything queued (and all secondaries); returns deposits and particle table."""
        while self._stack or self._slow:
            while self._stack:
                p = self._stack.pop()
                kind = abs(p.pdg)
                if kind in (13, 211, 2212, 321):
                    self._heavy(p)
                elif kind == 11:
                    self._electron(p)
                elif kind == 22:
                    self._photon(p)
                elif kind == 111:
                    self._pi0(p)
                # neutrons and neutrinos leave no charge here: listed in the table only
            if self._slow:
                batch, self._slow = self._slow, []
                self._slow_batch(batch)
        table = np.array(self._rows, dtype=PARTICLE_DTYPE)
        for pid, energy in self._deposited.items():
            table["energy_deposit"][pid] = energy
        for pid, end in self._end.items():
            table["end"][pid] = end
        return self._collect(), table

    # -- deposits ---------------------------------------------------------------------------
    def _deposit(self, p: _Particle, pos: np.ndarray, energy: np.ndarray, dedx: np.ndarray,
                 time: np.ndarray | float, semantic: np.ndarray | None = None) -> None:
        """``semantic``: per-deposit classes where they differ from the particle's."""
        keep = energy > 0
        n = int(np.count_nonzero(keep))
        if n == 0:
            return
        if n < energy.size:
            pos, energy, dedx = pos[keep], energy[keep], dedx[keep]
            time = time[keep] if isinstance(time, np.ndarray) else time
            semantic = None if semantic is None else semantic[keep]
        times = time if isinstance(time, np.ndarray) else np.full(n, time)
        if semantic is not None:  # kept beside the block, so the deposits keep their order
            self._semantic_of_block[len(self._deposits)] = semantic
        # per-block truth is stored once and expanded in _collect
        self._deposits.append((pos, energy, dedx, times, (p.pid, p.semantic, p.interaction, p.origin, n)))
        self._deposited[p.pid] = self._deposited.get(p.pid, 0.0) + float(energy.sum())

    def _deposit_many(self, truth: np.ndarray, pos: np.ndarray, energy: np.ndarray, dedx: np.ndarray,
                      times: np.ndarray) -> None:
        """Deposits of many particles at once; ``truth`` holds (pid, semantic, interaction, origin) rows."""
        if energy.size == 0:
            return
        self._deposits.append((pos, energy, dedx, times, truth))
        sums = np.bincount(truth[:, 0], weights=energy)
        for pid in np.nonzero(sums)[0]:
            self._deposited[int(pid)] = self._deposited.get(int(pid), 0.0) + float(sums[pid])

    def _local(self, p: _Particle, pos: np.ndarray, energy: float, time: float) -> None:
        """A deposit too short to track (low-energy electron, absorbed photon): sub-millimetre, so
        it gets the dE/dx of a stopping electron."""
        self._deposit(p, pos[None], np.array([energy]), np.array([LOCAL_DEDX]), time)

    def _collect(self) -> EventDeposits:
        if not self._deposits:
            z = np.zeros(0)
            zi = np.zeros(0, dtype=np.int32)
            return EventDeposits(np.zeros((0, 3)), z, z, z, zi, zi.astype(np.int8), zi, zi.astype(np.int8))
        # a block's truth is one (pid, semantic, interaction, origin, n) tuple (one particle) or an
        # (n, 4) array (a batch): single-particle blocks first, expanded with one np.repeat
        single = [b for b in self._deposits if not isinstance(b[4], np.ndarray)]
        batch = [b for b in self._deposits if isinstance(b[4], np.ndarray)]
        parts = []
        if single:
            heads = np.array([b[4] for b in single], np.int64)
            expanded = np.repeat(heads[:, :4], heads[:, 4], axis=0)
            if self._semantic_of_block:
                starts = np.concatenate([[0], np.cumsum(heads[:, 4])])
                order = [k for k, b in enumerate(self._deposits) if not isinstance(b[4], np.ndarray)]
                for j, k in enumerate(order):
                    if k in self._semantic_of_block:
                        expanded[starts[j] : starts[j + 1], 1] = self._semantic_of_block[k]
            parts.append(expanded)
        parts += [b[4] for b in batch]
        labels = np.concatenate(parts)
        blocks = single + batch
        return EventDeposits(
            np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]),
            np.concatenate([b[2] for b in blocks]), np.concatenate([b[3] for b in blocks]),
            labels[:, 0].astype(np.int32), labels[:, 1].astype(np.int8),
            labels[:, 2].astype(np.int32), labels[:, 3].astype(np.int8),
        )

    def _child_semantic(self, parent: _Particle) -> int:
        """EM secondaries inherit a Michel/delta label unless relabelling is on; else shower."""
        if parent.semantic in (MICHEL, DELTA) and not self.config.relabel_secondaries:
            return parent.semantic
        return SHOWER

    def _inside(self, pos: np.ndarray) -> np.ndarray:
        return np.all((pos >= self.world_min) & (pos <= self.world_max), axis=-1)

    # -- stepping ---------------------------------------------------------------------------
    def _chunk_path(self, p: _Particle, steps: np.ndarray, theta0: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Start points and directions of up to len(steps) steps with multiple scattering.

        Returns (points (n+1, 3), directions (n, 3), n) where n may be cut short by a large
        accumulated angle or by leaving the world (then the last point lies outside).
        """
        n = steps.size
        u, v = _perpendicular(p.direction)
        kicks = self.rng.standard_normal((n, 2)) * theta0[:, None]
        angle = np.cumsum(kicks, axis=0)
        # direction during step k: d0 rotated by the kicks accumulated before it
        before = np.vstack([[0.0, 0.0], angle[:-1]])
        too_far = np.nonzero(np.hypot(before[:, 0], before[:, 1]) > MAX_CHUNK_ANGLE)[0]
        if too_far.size:
            n = max(int(too_far[0]), 1)
            before, steps, angle = before[:n], steps[:n], angle[:n]
        dirs = p.direction + before[:, :1] * u + before[:, 1:] * v
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        points = p.pos + np.vstack([[0.0, 0.0, 0.0], np.cumsum(dirs * steps[:, None], axis=0)])
        outside = np.nonzero(~self._inside(points[1:]))[0]
        if outside.size:
            n = int(outside[0]) + 1
            points, dirs, angle = points[: n + 1], dirs[:n], angle[:n]
        end_dir = p.direction + angle[-1, 0] * u + angle[-1, 1] * v
        p.direction = end_dir / np.linalg.norm(end_dir)
        return points, dirs, n

    def _heavy(self, p: _Particle) -> None:
        mass = _mass(p.pdg)
        table = P.step_table(mass, self.config.delta_cut)
        residual = float(P.csda_range(np.array([p.kinetic]), mass)[0])
        t0 = p.kinetic
        # (centres, energies, step length, times) per chunk; deposited once the total is known
        pending: list[tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]] = []  # ..., mean dE/dx
        delta_energy = 0.0
        while True:
            if residual < 0.02:  # the last fraction of a millimetre: one deposit
                pending.append((p.pos[None].copy(), np.array([p.kinetic]), 0.02, np.array([p.time]),
                                np.array([np.inf])))  # the very end of a range: as ionizing as it gets
                p.kinetic = 0.0
                break
            tail = 8 * MAX_STEP
            if residual <= tail:  # resolve the Bragg peak with 8 steps over the remaining range
                n, s = 8, residual / 8
            else:
                n, s = int(min(CHUNK, max(1, (residual - tail) // MAX_STEP))), MAX_STEP
            steps = np.full(n, s)
            along = residual - s * np.arange(n + 1)
            kinetic = P.kinetic_from_range(np.maximum(along, 0.0), mass)
            mid = 0.5 * (kinetic[:-1] + kinetic[1:])
            theta0 = _highland(table, mid, s)
            points, _, m = self._chunk_path(p, steps, theta0)
            mid = mid[:m]
            mean_loss = kinetic[:m] - kinetic[1 : m + 1]
            xi = table("xi_per_cm", mid) * s
            fluctuation = xi * (P.moyal(self.rng, m) - P.MOYAL_MEAN)
            loss = np.maximum(mean_loss * table("restricted_share", mid) + fluctuation, 0.0)
            loss = np.minimum(loss, 4 * mean_loss + 1.0)  # the far Landau tail is the explicit delta rays
            centres = 0.5 * (points[:-1] + points[1:])[:m]
            times = p.time + s * np.arange(m) * table("inv_beta", mid) / 29.98
            pending.append((centres, loss, s, times, mean_loss / s))
            delta_energy += self._delta_rays(p, centres, mid, table, s, times)
            residual -= s * m
            p.pos = points[m].copy()
            p.kinetic = float(kinetic[m])
            p.time = float(times[-1]) if m else p.time
            if m < n and not self._inside(p.pos):  # left the world
                break
            if self._pion_interacts(p, s * m):
                break
        # Deposits plus delta rays never exceed the energy the particle lost.
        lost = t0 - p.kinetic
        total = sum(float(loss.sum()) for _, loss, _, _, _ in pending)
        scale = min(1.0, max(lost - delta_energy, 0.0) / total) if total > 0 else 1.0
        split = self.config.hip_min_dedx is not None and p.semantic == HIP
        for centres, loss, s, times, mean_dedx in pending:
            # the mean dE/dx, not the fluctuating loss, decides where a proton is highly ionizing
            semantic = np.where(mean_dedx >= self.config.hip_min_dedx, HIP, MIP) if split else None
            self._deposit(p, centres, loss * scale, loss * scale / s, times, semantic)
        self._end[p.pid] = np.array([*p.pos, p.time])
        if p.kinetic <= 0.0 and self._inside(p.pos):
            self._at_rest(p)

    def _delta_rays(self, p: _Particle, centres, kinetic, table: P.StepTable, s, times) -> float:
        counts = self.rng.poisson(table("delta_rate", kinetic) * s)
        total = 0.0
        for k in np.nonzero(counts)[0]:
            upper = float(table("t_max", kinetic[k : k + 1])[0])
            for energy in P.sample_delta_energies(self.rng, self.config.delta_cut, upper, int(counts[k])):
                # forward-peaked emission: cos theta = (T / p_e) (p_max / T_max)
                pe = np.sqrt(energy * (energy + 2 * P.ELECTRON_MASS))
                pmax = np.sqrt(upper * (upper + 2 * P.ELECTRON_MASS))
                cos = float(np.clip(energy / pe * pmax / upper, -1, 1))
                direction = rotate(p.direction, cos, self.rng)
                self.add(11, centres[k], direction, float(energy), interaction=p.interaction, origin=p.origin,
                         parent=p.pid, process="muIoni" if abs(p.pdg) == 13 else "hIoni",
                         time=float(times[k]), semantic=DELTA)
                total += float(energy)
        return total

    def _pion_interacts(self, p: _Particle, path: float) -> bool:
        """Hadronic interaction of a charged pion along ``path``: a kink or an absorption."""
        if abs(p.pdg) != 211 or p.kinetic < 20:
            return False
        if self.rng.random() >= -np.expm1(-path / self.config.pion_interaction_length):
            return False
        if self.rng.random() < 0.5:  # quasi-elastic: deflect and lose energy, keep tracking
            p.kinetic *= self.rng.uniform(0.6, 0.95)
            p.direction = rotate(p.direction, float(np.cos(abs(self.rng.normal(0, 0.6)))), self.rng)
            self._stack.append(p)
            self._end[p.pid] = np.array([*p.pos, p.time])
            return True
        # absorption: the pion ends and knocks out protons
        available = p.kinetic * self.rng.uniform(0.3, 0.8)
        n = int(self.rng.integers(1, 3))
        for share in self.rng.dirichlet(np.ones(n)) * available:
            if share > 5:
                self.add(2212, p.pos, isotropic(self.rng), float(share), interaction=p.interaction,
                         origin=p.origin, parent=p.pid, process="pi+Inelastic", time=p.time)
        p.kinetic = 0.0
        self._end[p.pid] = np.array([*p.pos, p.time])
        return True

    def _at_rest(self, p: _Particle) -> None:
        """Decay or capture of a stopped particle."""
        if p.pdg == -13 or (p.pdg == 13 and self.rng.random() < P.MUON_MINUS_DECAY_FRACTION):
            lifetime = P.MUON_LIFETIME if p.pdg == -13 else P.MUON_MINUS_LIFETIME_AR
            energy = float(P.sample_michel(self.rng, 1)[0])
            self.add(-11 if p.pdg == -13 else 11, p.pos, isotropic(self.rng), energy - P.ELECTRON_MASS,
                     interaction=p.interaction, origin=p.origin, parent=p.pid, process="Decay",
                     time=p.time + float(self.rng.exponential(lifetime)), semantic=MICHEL)
        elif p.pdg == 211:  # pi+ -> mu+ nu at rest: a 4.1 MeV muon, then its Michel positron
            self.add(-13, p.pos, isotropic(self.rng), 4.12, interaction=p.interaction, origin=p.origin,
                     parent=p.pid, process="Decay", time=p.time + float(self.rng.exponential(26.0)))

    def _electron(self, p: _Particle) -> None:
        cfg = self.config
        mass = P.ELECTRON_MASS
        if p.kinetic < SLOW_ELECTRON:
            self._slow.append(p)
            return
        while p.kinetic > cfg.electron_cut:
            if p.kinetic < SLOW_ELECTRON:
                self._slow.append(p)
                return
            residual = float(P.csda_range(np.array([p.kinetic]), mass)[0])
            if residual < 0.05:
                break
            s = min(MAX_STEP, max(residual / 4, 0.02))
            n = int(min(CHUNK // 2, max(1, residual // s)))
            steps = np.full(n, s)
            along = residual - s * np.arange(n + 1)
            kinetic = P.kinetic_from_range(np.maximum(along, 0.0), mass)
            mid = 0.5 * (kinetic[:-1] + kinetic[1:])
            brem_at, brem_energy = self._brem(mid, s)
            if brem_at is not None:
                n = brem_at + 1
                steps, kinetic, mid = steps[:n], kinetic[: n + 1], mid[:n]
            theta0 = P.highland(mid, mass, steps)
            points, dirs, m = self._chunk_path(p, steps, theta0)
            loss = np.maximum(kinetic[:m] - kinetic[1 : m + 1], 0.0)
            centres = 0.5 * (points[:-1] + points[1:])[:m]
            self._deposit(p, centres, loss, loss / s, p.time)
            p.pos = points[m].copy()
            p.kinetic = float(kinetic[m])
            if m < n and not self._inside(p.pos):
                self._end[p.pid] = np.array([*p.pos, p.time])
                return
            if brem_at is not None and m == n:
                energy = min(brem_energy, p.kinetic)
                p.kinetic -= energy
                self.add(22, p.pos, rotate(dirs[-1], float(np.cos(mass / max(p.kinetic + energy, mass))), self.rng),
                         energy, interaction=p.interaction, origin=p.origin, parent=p.pid, process="eBrem",
                         time=p.time, semantic=self._child_semantic(p))
        if p.kinetic > 0:
            self._local(p, p.pos, p.kinetic, p.time)
        self._end[p.pid] = np.array([*p.pos, p.time])
        if p.pdg == -11 and self._inside(p.pos):  # positron annihilates at rest
            back = isotropic(self.rng)
            for direction in (back, -back):
                self.add(22, p.pos, direction, P.ELECTRON_MASS, interaction=p.interaction, origin=p.origin,
                         parent=p.pid, process="annihil", time=p.time, semantic=self._child_semantic(p))

    def _slow_batch(self, batch: list[_Particle]) -> None:
        """Electrons below SLOW_ELECTRON MeV: scattered walks that deposit all their energy.

        They radiate only a few percent of their energy (radiative yield in argon), so no explicit
        photons. All electrons of the batch walk together: at most MAX_SLOW_STEPS numpy steps over
        arrays of electrons, instead of one Python loop per electron (thousands per shower).
        """
        mass = P.ELECTRON_MASS
        n_e = len(batch)
        pos = np.array([p.pos for p in batch])
        direction = np.array([p.direction for p in batch])
        kinetic0 = np.array([p.kinetic for p in batch])
        truth = np.array([(p.pid, p.semantic, p.interaction, p.origin) for p in batch], np.int64)
        times = np.array([p.time for p in batch])
        residual = P.csda_range(kinetic0, mass)
        short = residual < MAX_STEP  # shorter than a pixel: one deposit where it starts
        n_steps = np.clip(np.ceil(residual / MAX_STEP), 2, MAX_SLOW_STEPS).astype(np.int64)
        step = residual / n_steps
        k = np.arange(MAX_SLOW_STEPS + 1)
        along = np.maximum(residual[:, None] - step[:, None] * k, 0.0)
        kinetic = P.kinetic_from_range(along.ravel(), mass).reshape(along.shape)
        kinetic[:, 0] = kinetic0
        mid = 0.5 * (kinetic[:, :-1] + kinetic[:, 1:])
        theta0 = P.highland(np.maximum(mid, 1e-3), mass, np.broadcast_to(step[:, None], mid.shape))
        kicks = self.rng.standard_normal((n_e, MAX_SLOW_STEPS, 2)) * theta0[..., None]
        points = np.empty((n_e, MAX_SLOW_STEPS + 1, 3))
        points[:, 0] = pos
        d = direction.copy()
        for j in range(MAX_SLOW_STEPS):
            u, v = _perpendicular_many(d)
            d = d + kicks[:, j, :1] * u + kicks[:, j, 1:] * v
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            points[:, j + 1] = points[:, j] + step[:, None] * d
        live = (k[None, :MAX_SLOW_STEPS] < n_steps[:, None]) & ~short[:, None]
        inside = self._inside(points[:, 1:])
        live &= np.cumprod(inside, axis=1).astype(bool)  # nothing after the first step outside
        loss = np.where(live, kinetic[:, :-1] - kinetic[:, 1:], 0.0)
        centres = 0.5 * (points[:, :-1] + points[:, 1:])
        rows, cols = np.nonzero(loss > 0)
        self._deposit_many(truth[rows], centres[rows, cols], loss[rows, cols], loss[rows, cols] / step[rows],
                           times[rows])
        if short.any():
            idx = np.nonzero(short)[0]
            self._deposit_many(truth[idx], pos[idx], kinetic0[idx], np.full(idx.size, LOCAL_DEDX), times[idx])
        last = np.where(short, 0, live.sum(axis=1))
        for i, p in enumerate(batch):
            end = points[i, last[i]]
            self._end[p.pid] = np.array([*end, p.time])
            left = not short[i] and last[i] < n_steps[i]
            if p.pdg == -11 and not left:  # positron annihilates at rest
                back = isotropic(self.rng)
                for photon_dir in (back, -back):
                    self.add(22, end, photon_dir, P.ELECTRON_MASS, interaction=p.interaction, origin=p.origin,
                             parent=p.pid, process="annihil", time=p.time, semantic=self._child_semantic(p))

    def _brem(self, kinetic: np.ndarray, s: float) -> tuple[int | None, float]:
        """First step (if any) of the chunk that radiates a photon above the cut, and its energy."""
        cut = self.config.brem_cut
        energy = kinetic + P.ELECTRON_MASS
        y_min = np.minimum(cut / np.maximum(energy, cut), 1.0)
        # photons with fraction y > y_min per cm: (1/X0) * int (4/3 - 4/3 y + y^2) / y dy
        rate = (4 / 3 * -np.log(y_min) - 4 / 3 * (1 - y_min) + (1 - y_min**2) / 2) / P.RADIATION_LENGTH
        hits = np.nonzero(self.rng.random(kinetic.size) < -np.expm1(-rate * s))[0]
        if not hits.size:
            return None, 0.0
        k = int(hits[0])
        while True:  # y from 1/y on [y_min, 1], accepted by the remaining shape of the spectrum
            y = y_min[k] ** (1 - self.rng.random())
            if self.rng.random() < (4 / 3 - 4 / 3 * y + y * y) / (4 / 3):
                return k, float(y * energy[k])

    def _photon(self, p: _Particle) -> None:
        cfg = self.config
        energy = p.kinetic
        while energy > cfg.photon_cut:
            distance = self.rng.exponential(float(P.photon_attenuation_length(np.array([energy]))[0]))
            p.pos = p.pos + distance * p.direction
            p.time += distance / 29.98
            if not self._inside(p.pos):
                self._end[p.pid] = np.array([*p.pos, p.time])
                return
            semantic = self._child_semantic(p)
            if energy > 2 * P.ELECTRON_MASS and self.rng.random() < float(P.pair_fraction(np.array([energy]))[0]):
                kinetic = energy - 2 * P.ELECTRON_MASS
                share = self.rng.uniform(0.05, 0.95)
                opening = P.ELECTRON_MASS / max(energy, 1.0)
                for pdg, t in ((11, share * kinetic), (-11, (1 - share) * kinetic)):
                    self.add(pdg, p.pos, rotate(p.direction, float(np.cos(opening)), self.rng), float(t),
                             interaction=p.interaction, origin=p.origin, parent=p.pid, process="conv",
                             time=p.time, semantic=semantic)
                energy = 0.0
                break
            scattered, cos = P.sample_compton(self.rng, energy)
            electron = energy - scattered
            if electron > PIXEL_ELECTRON:
                # electron direction from momentum balance
                new_dir = rotate(p.direction, cos, self.rng)
                momentum = energy * p.direction - scattered * new_dir
                self.add(11, p.pos, momentum, float(electron), interaction=p.interaction, origin=p.origin,
                         parent=p.pid, process="compt", time=p.time, semantic=semantic)
                p.direction = new_dir
            elif electron > 0:
                self._local(_Particle(p.pid, 11, p.pos, p.direction, 0, p.time, semantic, p.interaction, p.origin),
                            p.pos, electron, p.time)
            energy = scattered
        if energy > 0 and self._inside(p.pos):
            self._local(_Particle(p.pid, 11, p.pos, p.direction, 0, p.time, self._child_semantic(p),
                                  p.interaction, p.origin), p.pos, energy, p.time)
        self._end[p.pid] = np.array([*p.pos, p.time])

    def _pi0(self, p: _Particle) -> None:
        """pi0 -> gamma gamma at its creation point (c tau = 25 nm)."""
        total = p.kinetic + P.PI0_MASS
        gamma = total / P.PI0_MASS
        beta = np.sqrt(max(1 - 1 / gamma**2, 0.0))
        rest = isotropic(self.rng)
        for sign in (1, -1):
            d = sign * rest * P.PI0_MASS / 2
            parallel = float(d @ p.direction)
            energy = gamma * (P.PI0_MASS / 2 + beta * parallel)
            momentum = d + ((gamma - 1) * parallel + gamma * beta * P.PI0_MASS / 2) * p.direction
            self.add(22, p.pos, momentum, float(energy), interaction=p.interaction, origin=p.origin,
                     parent=p.pid, process="Decay", time=p.time, semantic=SHOWER)
        self._end[p.pid] = np.array([*p.pos, p.time])


def _mass(pdg: int) -> float:
    kind = abs(pdg)
    return {13: P.MUON_MASS, 211: P.PION_MASS, 2212: P.PROTON_MASS, 11: P.ELECTRON_MASS, 111: P.PI0_MASS,
            321: 493.677, 2112: 939.565}.get(kind, 0.0)


def _default_semantic(pdg: int) -> int:
    kind = abs(pdg)
    if kind in (2212, 321):
        return HIP
    if kind in (13, 211):
        return MIP
    return SHOWER


def _highland(table: P.StepTable, kinetic: np.ndarray, step: float) -> np.ndarray:
    return P.highland_theta(table("inv_beta", kinetic), table("inv_beta_p", kinetic), step)


def _perpendicular(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to ``direction`` and to each other (scalar math: these are
    called per particle, where numpy's cross/norm overhead dominates)."""
    dx, dy, dz = float(direction[0]), float(direction[1]), float(direction[2])
    if abs(dx) < 0.9:  # u = d x (1, 0, 0)
        ux, uy, uz = 0.0, dz, -dy
    else:  # u = d x (0, 1, 0)
        ux, uy, uz = -dz, 0.0, dx
    norm = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / norm, uy / norm, uz / norm
    return np.array([ux, uy, uz]), np.array([dy * uz - dz * uy, dz * ux - dx * uz, dx * uy - dy * ux])


def _perpendicular_many(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise _perpendicular for an (n, 3) array of unit vectors."""
    helper = np.zeros_like(d)
    use_x = np.abs(d[:, 0]) < 0.9
    helper[use_x, 0] = 1.0
    helper[~use_x, 1] = 1.0
    u = np.cross(d, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return u, np.cross(d, u)


def rotate(direction: np.ndarray, cos_theta: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at polar angle acos(cos_theta) from ``direction``, uniform in azimuth."""
    d = direction / math.sqrt(float(direction @ direction))
    u, v = _perpendicular(d)
    phi = rng.uniform(0, 2 * np.pi)
    sin_theta = math.sqrt(max(1 - cos_theta * cos_theta, 0.0))
    return cos_theta * d + sin_theta * (math.cos(phi) * u + math.sin(phi) * v)


def isotropic(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)
