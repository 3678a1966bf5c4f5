"""lartpcnet's own HDF5 event format (schema version 1).

Layout: ragged per-event arrays stored flat with an ``offsets`` array (event i owns rows
``offsets[i]:offsets[i+1]``), chunked and gzip-compressed, read lazily one event at a time::

    /                      attrs: format, schema_version, events, sample, geometry, seed, config
    /events/{seed,index,kind}
    /planes/<k>/           attrs: name, shape; coords (N, 2) (tick, wire), values, semantic,
                           instance, interaction, origin, offsets
    /voxels/               the same with coords (N, 3)
    /particles/{table,offsets}, /interactions/{table,offsets}

The ``truth_labels`` attribute lists the label fields (of semantic, instance, interaction, origin)
that at least one site of the file carries, comma-separated; empty for unlabelled events (a file
converted from larcv2, say).

Reading refuses, with a one-line DataError naming the file, event and field: a missing or
mistyped dataset, values stored as strings, offsets that do not start at 0, decrease, or do not
end at the dataset's length, coordinates that are not (N, 2) / (N, 3) integers inside the image
shape, NaN/inf values, semantic codes outside -1..4, origin codes outside 0..2, ids below -1, and
duplicate coordinates: each site is listed once (duplicates are refused, not merged; the writer
refuses them too). An event with no sites reads as empty images.

Writes are atomic (a temporary file renamed into place) and byte-for-byte deterministic
(no timestamps), so the same events give the same file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from lartpcnet.data import CORRUPT_FILE_ERRORS, first_line, reading
from lartpcnet.data.event import (
    INTERACTION_DTYPE,
    LABEL_FIELDS,
    PARTICLE_DTYPE,
    Event,
    SparseImage,
    checked_image,
    checked_shape,
    dtype_problem,
)
from lartpcnet.errors import DataError
from lartpcnet.io_utils import atomic_path

FORMAT = "lartpcnet-events"
SCHEMA_VERSION = 1
IMAGE_FIELDS = ("coords", "values", *LABEL_FIELDS)
_DTYPES = {"coords": np.int32, "values": np.float32, "semantic": np.int8, "instance": np.int32,
           "interaction": np.int32, "origin": np.int8}
_CHUNK_ROWS = 16384


def _dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    chunks = (min(max(len(data), 1), _CHUNK_ROWS), *data.shape[1:])
    group.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]), chunks=chunks,
                         compression="gzip", compression_opts=4, shuffle=True, track_times=False)


def _append(group: h5py.Group, name: str, data: np.ndarray) -> None:
    if name not in group:
        _dataset(group, name, data)
        return
    ds = group[name]
    start = ds.shape[0]
    ds.resize(start + len(data), axis=0)
    ds[start:] = data


class EventWriter:
    """Appends events to a new file; the file appears at ``path`` only when ``close`` succeeds."""

    def __init__(self, path: str | Path, attrs: dict | None = None) -> None:
        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._h5 = h5py.File(self._tmp, "w", track_order=False, libver=("v110", "v110"))
        self._h5.attrs["format"] = FORMAT
        self._h5.attrs["schema_version"] = SCHEMA_VERSION
        for key, value in (attrs or {}).items():
            self._h5.attrs[key] = value
        self.events = 0
        self._layout: tuple | None = None
        self._truth: set[str] = set()  # label fields some site of the file carries

    def append(self, events: Sequence[Event]) -> None:
        for event in events:
            self._append_one(event)

    def _append_one(self, event: Event) -> None:
        layout = (len(event.planes), event.voxels is not None)
        if self._layout is None:
            self._layout = layout
            for k, plane in enumerate(event.planes):
                g = self._h5.require_group(f"planes/{k}")
                g.attrs["shape"] = np.array(plane.shape)
                _dataset(g, "offsets", np.zeros(1, np.int64))
            if event.voxels is not None:
                g = self._h5.require_group("voxels")
                g.attrs["shape"] = np.array(event.voxels.shape)
                _dataset(g, "offsets", np.zeros(1, np.int64))
            for name in ("particles", "interactions"):
                _dataset(self._h5.require_group(name), "offsets", np.zeros(1, np.int64))
        elif layout != self._layout:
            raise DataError(f"has {layout[0]} planes and {'' if layout[1] else 'no '}voxels, the events before it "
                            f"{self._layout[0]} planes and {'' if self._layout[1] else 'no '}voxels (one file holds "
                            "one layout)", file=str(self.path), event=self.events)
        images = [(f"planes/{k}", p) for k, p in enumerate(event.planes)]
        if event.voxels is not None:
            images.append(("voxels", event.voxels))
        for name, image in images:
            # refuse to write what the reader would refuse to read (duplicate sites, codes out of range, ...)
            checked_image(image.coords, image.values, tuple(image.shape), {f: getattr(image, f) for f in LABEL_FIELDS},
                          {f: f"{name}/{f}" for f in IMAGE_FIELDS}, str(self.path), self.events)
            self._truth.update(f for f in LABEL_FIELDS
                               if (getattr(image, f) > 0 if f == "origin" else getattr(image, f) >= 0).any())
            g = self._h5[name]
            if tuple(g.attrs["shape"]) != tuple(image.shape):
                raise DataError(f"image shape {tuple(image.shape)} differs from the {tuple(g.attrs['shape'])} of the "
                                "events before it (one file holds one shape per image)", file=str(self.path),
                                event=self.events, field=name)
            for field in IMAGE_FIELDS:
                _append(g, field, np.asarray(getattr(image, field), dtype=_DTYPES[field]))
            _append(g, "offsets", np.array([g["offsets"][-1] + len(image)], np.int64))
            vertex = image.vertex if image.vertex is not None else (-1,) * len(image.shape)
            _append(g, "vertex", np.array([vertex], np.int32))
        for name, table, dtype in (("particles", event.particles, PARTICLE_DTYPE),
                                   ("interactions", event.interactions, INTERACTION_DTYPE)):
            table = np.zeros(0, dtype) if table is None else np.asarray(table, dtype=dtype)
            g = self._h5[name]
            _append(g, "table", table)
            _append(g, "offsets", np.array([g["offsets"][-1] + len(table)], np.int64))
        g = self._h5.require_group("events")
        meta = event.meta
        _append(g, "seed", np.array([meta.get("seed", -1)], np.int64))
        _append(g, "index", np.array([meta.get("index", self.events)], np.int64))
        _append(g, "kind", np.array([str(meta.get("kind", "")).encode()], "S16"))
        self.events += 1

    def close(self) -> None:
        self._h5.attrs["events"] = self.events
        # which labels the events carry, so that a reader knows without reading them (EventFile.truth_labels)
        self._h5.attrs["truth_labels"] = ",".join(f for f in LABEL_FIELDS if f in self._truth)
        self._h5.close()
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        self._h5.close()
        self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_events(path: str | Path, events: Iterable[Event], attrs: dict | None = None) -> int:
    """Writes all ``events`` to ``path`` atomically; returns how many."""
    with EventWriter(path, attrs) as writer:
        for event in events:
            writer.append([event])
        return writer.events


class EventFile:
    """Lazy reader: ``len(f)`` events, ``f[i]`` reads event i only.

    Opening checks the layout (every dataset present, numeric where numbers belong, of the right
    shape, offsets that start at 0, never decrease and end at the dataset's length), so that a
    damaged file is refused at once; reading an event checks its sites (``checked_image``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise DataError(f"corrupt or truncated HDF5 file ({first_line(err)})", file=self.path) from err
        try:
            with reading(self.path):
                self._check_layout()
        except BaseException:
            self._h5.close()
            raise

    def _check_layout(self) -> None:
        attrs = self._h5.attrs
        if _python(attrs.get("format")) != FORMAT:
            raise DataError(f"not a {FORMAT} file (format attribute {attrs.get('format')!r})", file=self.path)
        version = _python(attrs.get("schema_version", -1))
        if not isinstance(version, int) or version != SCHEMA_VERSION:
            raise DataError(f"schema version {version!r} is not supported (this lartpcnet reads {SCHEMA_VERSION})",
                            file=self.path, field="schema_version")
        self.attrs = {k: _python(attrs[k]) for k in attrs}
        events = self.attrs.get("events")
        if isinstance(events, bool) or not isinstance(events, int) or events < 0:
            raise DataError(f"the 'events' attribute must be a count of events, found {events!r}"[:200],
                            file=self.path, field="events")
        self._events = events
        self.n_planes = 0
        if "planes" in self._h5:
            names = list(self._group("planes"))
            if sorted(names) != sorted(str(k) for k in range(len(names))):
                raise DataError(f"plane groups must be named 0..{len(names) - 1}, found {names[:6]!r}"[:200],
                                file=self.path, field="planes")
            self.n_planes = len(names)
        self.has_voxels = "voxels" in self._h5
        self._images = [f"planes/{k}" for k in range(self.n_planes)] + (["voxels"] if self.has_voxels else [])
        self._offsets: dict[str, np.ndarray] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for name in self._images:
            self._check_image(name)
        for name, dtype in (("particles", PARTICLE_DTYPE), ("interactions", INTERACTION_DTYPE)):
            if name in self._h5 or self._events:
                self._check_table(name, dtype)
        for name, kind in (("seed", "iu"), ("index", "iu"), ("kind", "S")):
            if "events" in self._h5 or self._events:
                ds = self._dataset("events", name)
                if ds.dtype.kind not in kind or ds.shape != (self._events,):
                    want = "strings" if kind == "S" else "integers"
                    raise DataError(f"must hold {self._events} {want}, found shape {ds.shape} of dtype {ds.dtype}",
                                    file=self.path, field=f"events/{name}")

    def _group(self, name: str) -> h5py.Group:
        if name not in self._h5:
            raise DataError("missing group", file=self.path, field=name)
        with reading(self.path, field=name):
            group = self._h5[name]
        if not isinstance(group, h5py.Group):
            raise DataError("is a dataset where a group belongs", file=self.path, field=name)
        return group

    def _dataset(self, group: str, name: str) -> h5py.Dataset:
        g = self._group(group)
        if name not in g:
            raise DataError("missing dataset", file=self.path, field=f"{group}/{name}")
        with reading(self.path, field=f"{group}/{name}"):
            ds = g[name]
        if not isinstance(ds, h5py.Dataset):
            raise DataError("is a group where a dataset belongs", file=self.path, field=f"{group}/{name}")
        return ds

    def _check_offsets(self, name: str) -> np.ndarray:
        ds = self._dataset(name, "offsets")
        where = f"{name}/offsets"
        if ds.dtype.kind not in "iu" or ds.ndim != 1:
            raise DataError(f"offsets must be a 1-D integer array, found shape {ds.shape} of dtype {ds.dtype}",
                            file=self.path, field=where)
        if ds.shape[0] != self._events + 1:
            raise DataError(f"offsets hold {ds.shape[0] - 1} events, the file's 'events' attribute says "
                            f"{self._events}", file=self.path, field=where)
        offsets = ds[:].astype(np.int64)
        if offsets[0] != 0:
            raise DataError(f"offsets must start at 0, found {int(offsets[0])}", file=self.path, field=where)
        drops = np.nonzero(np.diff(offsets) < 0)[0]
        if len(drops):
            i = int(drops[0])
            raise DataError(f"offsets must not decrease: the event starts at row {int(offsets[i])} and ends at "
                            f"row {int(offsets[i + 1])}", file=self.path, event=i, field=where)
        return offsets

    def _check_rows(self, name: str, field: str, ds: h5py.Dataset, rows: int) -> None:
        if ds.ndim == 0 or ds.shape[0] != rows:
            found = ds.shape[0] if ds.ndim else "no"
            raise DataError(f"holds {found} rows, its offsets end at {rows}: truncated or damaged file", file=self.path,
                            field=f"{name}/{field}")

    def _check_image(self, name: str) -> None:
        dim = 3 if name == "voxels" else 2
        group = self._group(name)
        if "shape" not in group.attrs:
            raise DataError("missing attribute 'shape'", file=self.path, field=name)
        self._shapes[name] = checked_shape(group.attrs["shape"], dim, self.path, f"{name}/shape")
        offsets = self._offsets[name] = self._check_offsets(name)
        for field in IMAGE_FIELDS:
            ds = self._dataset(name, field)
            problem = dtype_problem(ds.dtype)
            if problem:
                raise DataError(problem, file=self.path, field=f"{name}/{field}")
            if field == "coords" and (ds.ndim != 2 or ds.shape[1] != dim):
                axes = "(tick, wire)" if dim == 2 else "(x, y, z)"
                raise DataError(f"coordinates must be an (N, {dim}) array of {axes}, found shape {ds.shape}",
                                file=self.path, field=f"{name}/coords")
            if field != "coords" and ds.ndim != 1:
                raise DataError(f"must be a 1-D array (one entry per site), found shape {ds.shape}", file=self.path,
                                field=f"{name}/{field}")
            self._check_rows(name, field, ds, int(offsets[-1]))
        if "vertex" in group:  # optional: files from before it existed have none
            ds = self._dataset(name, "vertex")
            if ds.dtype.kind not in "iu" or ds.shape != (self._events, dim):
                raise DataError(f"must be ({self._events}, {dim}) integers, found shape {ds.shape} of dtype "
                                f"{ds.dtype}", file=self.path, field=f"{name}/vertex")

    def _check_table(self, name: str, dtype: np.dtype) -> None:
        self._offsets[name] = self._check_offsets(name)
        ds = self._dataset(name, "table")
        names = ds.dtype.names or ()
        missing = [n for n in dtype.names if n not in names]
        if missing:
            raise DataError(f"table lacks the columns {missing[:4]} (dtype {ds.dtype.str})"[:240], file=self.path,
                            field=f"{name}/table")
        for column in dtype.names:
            want, have = dtype.fields[column][0], ds.dtype.fields[column][0]
            strings, numbers = have.base.kind == "S", dtype_problem(have.base) is None
            if (want.base.kind == "S" and not strings) or (want.base.kind != "S" and not numbers) or \
                    want.shape != have.shape:
                raise DataError(f"column {column!r} holds {have.base.str} {have.shape}, {want.base.str} {want.shape} "
                                "belongs",
                                file=self.path, field=f"{name}/table")
        if ds.ndim != 1:
            raise DataError(f"must be a 1-D table, found shape {ds.shape}", file=self.path, field=f"{name}/table")
        self._check_rows(name, "table", ds, int(self._offsets[name][-1]))

    @property
    def truth_labels(self) -> tuple[str, ...]:
        """The label fields this file's events carry (written by EventWriter; files from before it
        wrote them: those with a labelled site among the first rows of the first image)."""
        if "truth_labels" in self.attrs:
            listed = str(self.attrs["truth_labels"]).split(",")
            return tuple(name for name in LABEL_FIELDS if name in listed)
        if not self._images:
            return ()
        with reading(self.path, field=self._images[0]):
            group = self._h5[self._images[0]]
            head = {name: group[name][:65536] for name in LABEL_FIELDS}
        return tuple(name for name in LABEL_FIELDS if len(head[name]) and
                     (head[name] > 0 if name == "origin" else head[name] >= 0).any())

    def __len__(self) -> int:
        return self._events

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, name: str, event: int) -> slice:
        offsets = self._offsets[name]
        return slice(int(offsets[event]), int(offsets[event + 1]))

    def _image(self, name: str, event: int) -> SparseImage:
        rows = self._rows(name, event)
        group = self._h5[name]
        data = {}
        for field in IMAGE_FIELDS:
            with reading(self.path, event, f"{name}/{field}"):
                data[field] = group[field][rows]
        vertex = None
        if "vertex" in group:
            with reading(self.path, event, f"{name}/vertex"):
                row = group["vertex"][event]
            vertex = None if row[0] < 0 else tuple(int(v) for v in row)
        labels = {field: data[field] for field in LABEL_FIELDS}
        return checked_image(data["coords"], data["values"], self._shapes[name], labels,
                             {field: f"{name}/{field}" for field in IMAGE_FIELDS}, self.path, event, vertex)

    def __getitem__(self, event: int) -> Event:
        if event < 0:
            event += len(self)
        if not 0 <= event < len(self):
            raise DataError(f"event index out of range: the file has {len(self)} events", file=self.path, event=event)
        with reading(self.path, event):
            planes = [self._image(f"planes/{k}", event) for k in range(self.n_planes)]
            voxels = self._image("voxels", event) if self.has_voxels else None
            particles = self._table("particles", event)
            interactions = self._table("interactions", event)
            meta = {"sample": self.attrs.get("sample"), "geometry": self.attrs.get("geometry"),
                    "seed": int(self._h5["events/seed"][event]), "index": int(self._h5["events/index"][event]),
                    "kind": self._h5["events/kind"][event].decode(errors="replace")}
        return Event(planes, voxels, particles, interactions, meta)

    def _table(self, name: str, event: int) -> np.ndarray:
        with reading(self.path, event, f"{name}/table"):
            table = self._h5[name]["table"][self._rows(name, event)]
        for column in table.dtype.names:
            values = table[column]
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise DataError(f"NaN/inf in column {column!r}", file=self.path, event=event, field=f"{name}/table")
        return table

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def _python(value):
    """HDF5 attribute -> plain Python (JSON-ready) value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def is_event_file(path: str | Path) -> bool:
    """True for an HDF5 file whose ``format`` attribute is lartpcnet's; False for any other file
    or one HDF5 cannot open."""
    try:
        with h5py.File(path, "r") as f:
            return _python(f.attrs.get("format")) == FORMAT
    except (OSError, *CORRUPT_FILE_ERRORS):
        return False
