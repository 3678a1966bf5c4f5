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


# --- the checks every reader applies to the sites it reads ------------------------------------------
# (lo, hi) of each label code: semantic -1 (noise) .. 4 (Michel), origin 0 (background) .. 2 (neutrino),
# particle and interaction ids -1 (none) or more
LABEL_RANGES = {"semantic": (-1, 4), "instance": (-1, 2**31 - 1), "interaction": (-1, 2**31 - 1), "origin": (0, 2)}
LABEL_MEANINGS = {"semantic": "-1 noise, 0 HIP, 1 MIP, 2 shower, 3 delta, 4 Michel", "instance": "-1: no particle",
                  "interaction": "-1: no interaction", "origin": "0 background, 1 cosmic, 2 neutrino"}
_INT32_MAX = 2**31 - 1


def dtype_problem(dtype: np.dtype) -> str | None:
    """Why ``dtype`` cannot hold numbers (strings, objects, compounds), or None when it can."""
    if dtype.kind in "iuf":
        return None
    if dtype.kind in "SUa":
        return f"values stored as strings (dtype {dtype.str}) where numbers belong"
    if dtype.kind == "O":
        return "values stored as Python objects or variable-length strings where numbers belong"
    return f"dtype {dtype.str!s} where numbers belong"


def as_integers(values: np.ndarray, what: str, file: str, event: int | None, field: str) -> np.ndarray:
    """``values`` as int64, refusing non-numbers, NaN/inf and non-integral values (no truncation)."""
    from lartpcnet.errors import DataError

    values = np.asarray(values)
    problem = dtype_problem(values.dtype)
    if problem:
        raise DataError(problem, file=file, event=event, field=field)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise DataError(f"{what} must be integers, found {values[~np.isfinite(values)].flat[0]}", file=file,
                            event=event, field=field)
        fractional = values != np.round(values)
        if fractional.any():
            raise DataError(f"{what} must be integers, found {values[fractional].flat[0]:g}", file=file,
                            event=event, field=field)
        if values.size and np.abs(values).max() >= 2**62:
            raise DataError(f"{what} out of range, found {np.abs(values).max():g}", file=file, event=event,
                            field=field)
    elif values.dtype.kind == "u" and values.size and values.max() > 2**62:
        raise DataError(f"{what} out of range, found {int(values.max())}", file=file, event=event, field=field)
    return values.astype(np.int64)


def checked_shape(shape, dim: int, file: str, field: str, event: int | None = None) -> tuple[int, ...]:
    """An image shape of ``dim`` positive sizes whose sites int32 coordinates can address."""
    from lartpcnet.errors import DataError

    sizes = np.asarray(shape).reshape(-1)
    if sizes.size != dim or dtype_problem(sizes.dtype):
        raise DataError(f"image shape must be {dim} sizes, found {np.asarray(shape).tolist()!r}"[:200], file=file,
                        event=event, field=field)
    sizes = as_integers(sizes, "image sizes", file, event, field)
    if sizes.min() < 1 or sizes.max() > _INT32_MAX or float(np.prod(sizes.astype(np.float64))) >= 2**62:
        raise DataError(f"image shape {tuple(int(s) for s in sizes)} is not a valid image size", file=file,
                        event=event, field=field)
    return tuple(int(s) for s in sizes)


def checked_image(coords: np.ndarray, values: np.ndarray, shape: tuple[int, ...], labels: dict[str, np.ndarray],
                  fields: dict[str, str], file: str, event: int | None,
                  vertex: tuple[int, ...] | None = None) -> SparseImage:
    """A SparseImage of sites read from a file, after the checks every reader applies: integral
    coordinates inside ``shape``, each site once, finite values, label codes in LABEL_RANGES.

    ``labels`` maps label fields to arrays (a missing field is unlabelled: -1, origin 0);
    ``fields`` names where each array came from, for the error message.
    """
    from lartpcnet.errors import DataError

    dim = len(shape)
    coords = np.asarray(coords)
    n = coords.shape[0] if coords.ndim else 0
    if coords.ndim != 2 or coords.shape[1] != dim:
        axes = "(tick, wire)" if dim == 2 else "(x, y, z)"
        raise DataError(f"coordinates must be an (N, {dim}) array of {axes}, found shape {coords.shape}", file=file,
                        event=event, field=fields["coords"])
    coords = as_integers(coords, "coordinates", file, event, fields["coords"])
    if n:
        low, high = coords.min(0), coords.max(0)
        for axis in range(dim):
            if low[axis] < 0 or high[axis] >= shape[axis]:
                bad = int(low[axis]) if low[axis] < 0 else int(high[axis])
                raise DataError(f"coordinates outside the image shape {shape}: {bad} on axis {axis}", file=file,
                                event=event, field=fields["coords"])
        keys = np.ravel_multi_index(tuple(coords.T), shape)
        if not (keys[1:] > keys[:-1]).all():  # files usually list sites in order: no sort then
            keys = np.sort(keys)
        repeated = keys[1:] == keys[:-1]
        if repeated.any():
            site = tuple(int(c) for c in np.unravel_index(keys[1:][repeated][0], shape))
            count = int((keys == keys[1:][repeated][0]).sum())
            extra = int(repeated.sum())
            raise DataError(f"duplicate coordinates: site {site} is listed {count} times ({extra} extra "
                            f"entr{'y' if extra == 1 else 'ies'} in the event); each site may appear once", file=file,
                            event=event, field=fields["coords"])
    values = np.asarray(values)
    problem = dtype_problem(values.dtype)
    if problem or values.shape != (n,):
        raise DataError(problem or f"holds {values.shape} values for {n} sites", file=file, event=event,
                        field=fields["values"])
    values = values.astype(np.float32)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise DataError(f"NaN/inf values at {bad} of {n} sites (values must be finite float32 numbers)", file=file,
                        event=event, field=fields["values"])
    out = {}
    for name in LABEL_FIELDS:
        default = 0 if name == "origin" else -1
        dtype = np.int8 if name in ("semantic", "origin") else np.int32
        if labels.get(name) is None:
            out[name] = np.full(n, default, dtype)
            continue
        codes = np.asarray(labels[name])
        if codes.shape != (n,):
            raise DataError(f"holds {codes.shape} labels for {n} sites", file=file, event=event, field=fields[name])
        codes = as_integers(codes, f"{name} labels", file, event, fields[name])
        lo, hi = LABEL_RANGES[name]
        bad = (codes < lo) | (codes > hi)
        if bad.any():
            what = f"{name} codes must be {lo}..{hi}" if hi < 100 else f"{name} ids must be {lo} or more"
            raise DataError(f"{what} ({LABEL_MEANINGS[name]}), found {int(codes[bad][0])}", file=file, event=event,
                            field=fields[name])
        out[name] = codes.astype(dtype)
    return SparseImage(coords.astype(np.int32), values, out["semantic"], out["instance"], out["interaction"],
                       out["origin"], tuple(shape), vertex)
