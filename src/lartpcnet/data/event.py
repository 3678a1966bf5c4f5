"""The event data model: sparse images (wire planes and/or 3D voxels) with aligned per-site truth,
the particle table, the interaction table and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lartpcnet.data.labels import BACKGROUND_ORIGIN

PARTICLE_DTYPE = np.dtype([
    ("id", "i4"), ("parent", "i4"), ("pdg", "i4"), ("process", "S16"),
    ("energy_init", "f4"), ("px", "f4"), ("py", "f4"), ("pz", "f4"),
    ("start", "f4", (4,)), ("end", "f4", (4,)), ("energy_deposit", "f4"),
    ("interaction", "i4"), ("origin", "i1"), ("semantic", "i1"),
])
INTERACTION_DTYPE = np.dtype([
    ("id", "i4"), ("origin", "i1"), ("kind", "S12"), ("energy", "f4"), ("vertex", "f4", (3,)), ("t0", "f4"),
])
LABEL_FIELDS = ("semantic", "instance", "interaction", "origin")


@dataclass
class SparseImage:
    """Active sites of one 2D wire plane ((row, column) = (tick, wire)) or one 3D volume.

    ``values`` is ADC (planes) or deposited energy in MeV (voxels). Label arrays align with the
    sites: semantic class, instance (particle id), interaction id, origin. Sites with no
    particle (noise) have instance and interaction -1, semantic -1 and origin 0.
    """

    coords: np.ndarray  # (N, D) int32
    values: np.ndarray  # (N,) float32
    semantic: np.ndarray  # (N,) int8
    instance: np.ndarray  # (N,) int32
    interaction: np.ndarray  # (N,) int32
    origin: np.ndarray  # (N,) int8
    shape: tuple[int, ...]
    vertex: tuple[int, ...] | None = None  # the interaction vertex's pixel/voxel, where one is known

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> SparseImage:
        d = len(shape)
        return cls(np.zeros((0, d), np.int32), np.zeros(0, np.float32), np.zeros(0, np.int8),
                   np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int8), tuple(shape))

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def select(self, mask: np.ndarray, values: np.ndarray | None = None) -> SparseImage:
        """The sites where ``mask`` holds (with new ``values`` for them if given)."""
        new_values = self.values[mask] if values is None else np.asarray(values, dtype=np.float32)
        return SparseImage(self.coords[mask], new_values.astype(np.float32), self.semantic[mask],
                           self.instance[mask], self.interaction[mask], self.origin[mask], self.shape, self.vertex)

    def add_background(self, coords: np.ndarray, values: np.ndarray) -> SparseImage:
        """Adds unlabelled sites (noise); a site already active keeps its truth and gains the value."""
        if coords.shape[0] == 0:
            return self
        key_self = np.ravel_multi_index(tuple(self.coords.T), self.shape) if len(self) else np.zeros(0, np.int64)
        key_new = np.ravel_multi_index(tuple(coords.T), self.shape)
        key_new, first = np.unique(key_new, return_index=True)
        coords, values = coords[first], values[first]
        fresh = ~np.isin(key_new, key_self)
        n = int(fresh.sum())
        return SparseImage(
            np.concatenate([self.coords, coords[fresh]]).astype(np.int32),
            np.concatenate([self.values, values[fresh]]).astype(np.float32),
            np.concatenate([self.semantic, np.full(n, -1, np.int8)]),
            np.concatenate([self.instance, np.full(n, -1, np.int32)]),
            np.concatenate([self.interaction, np.full(n, -1, np.int32)]),
            np.concatenate([self.origin, np.full(n, BACKGROUND_ORIGIN, np.int8)]),
            self.shape,
            self.vertex,
        )

    def sorted(self) -> SparseImage:
        """Sites in C order (deterministic layout for files)."""
        if len(self) == 0:
            return self
        order = np.argsort(np.ravel_multi_index(tuple(self.coords.T), self.shape), kind="stable")
        return SparseImage(self.coords[order], self.values[order], self.semantic[order], self.instance[order],
                           self.interaction[order], self.origin[order], self.shape, self.vertex)


@dataclass
class Event:
    """One event: wire planes (possibly none), 3D voxels (possibly none), truth tables, metadata."""

    planes: list[SparseImage] = field(default_factory=list)
    voxels: SparseImage | None = None
    particles: np.ndarray | None = None  # PARTICLE_DTYPE (lartpcnet.sim.transport)
    interactions: np.ndarray | None = None  # INTERACTION_DTYPE
    meta: dict = field(default_factory=dict)

    def image(self, plane: int | None, where: str, index: int) -> SparseImage:
        """Wire plane ``plane``, or the voxels when ``plane`` is None; a DataError naming the file
        (``where``) and event when the event has no such image."""
        from lartpcnet.errors import DataError

        if plane is None:
            if self.voxels is None:
                raise DataError("has no voxels, which a 3D model needs (a 2D model takes a wire plane)",
                                file=where, event=index)
            return self.voxels
        if plane >= len(self.planes):
            raise DataError(f"has {len(self.planes)} planes, plane {plane} is asked for", file=where, event=index)
        return self.planes[plane]
