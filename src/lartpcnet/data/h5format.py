"""lartpcnet's own HDF5 event format (schema version 1).

Layout: ragged per-event arrays stored flat with an ``offsets`` array (event i owns rows
``offsets[i]:offsets[i+1]``), chunked and gzip-compressed, read lazily one event at a time::

    /                      attrs: format, schema_version, events, sample, geometry, seed, config
    /events/{seed,index,kind}
    /planes/<k>/           attrs: name, shape; coords (N, 2) (tick, wire), values, semantic,
                           instance, interaction, origin, offsets
    /voxels/               the same with coords (N, 3)
    /particles/{table,offsets}, /interactions/{table,offsets}

Writes are atomic (a temporary file renamed into place) and byte-for-byte deterministic
(no timestamps), so the same events give the same file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from lartpcnet.data.event import INTERACTION_DTYPE, LABEL_FIELDS, PARTICLE_DTYPE, Event, SparseImage
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
        self._h5 = h5py.File(self._tmp, "w", track_order=False)
        self._h5.attrs["format"] = FORMAT
        self._h5.attrs["schema_version"] = SCHEMA_VERSION
        for key, value in (attrs or {}).items():
            self._h5.attrs[key] = value
        self.events = 0
        self._layout: tuple | None = None

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
            raise ValueError(f"event {self.events} has {layout[0]} planes/voxels={layout[1]}, "
                             f"the file {self._layout[0]}/{self._layout[1]}")
        images = [(f"planes/{k}", p) for k, p in enumerate(event.planes)]
        if event.voxels is not None:
            images.append(("voxels", event.voxels))
        for name, image in images:
            g = self._h5[name]
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
    """Lazy reader: ``len(f)`` events, ``f[i]`` reads event i only."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise DataError(f"corrupt or truncated HDF5 file ({err})", file=self.path) from err
        attrs = self._h5.attrs
        if attrs.get("format") != FORMAT:
            raise DataError(f"not a {FORMAT} file (format attribute {attrs.get('format')!r})", file=self.path)
        version = int(attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise DataError(f"schema version {version} is not supported (this lartpcnet reads {SCHEMA_VERSION})",
                            file=self.path, field="schema_version")
        self.attrs = {k: _python(v) for k, v in attrs.items()}
        self._events = int(attrs.get("events", 0))
        self.n_planes = len(self._h5["planes"]) if "planes" in self._h5 else 0
        self.has_voxels = "voxels" in self._h5
        self._offsets: dict[str, np.ndarray] = {}
        for name in [f"planes/{k}" for k in range(self.n_planes)] + (["voxels"] if self.has_voxels else []) + \
                ["particles", "interactions"]:
            if name in self._h5:
                offsets = self._read(name, "offsets", slice(None), None)
                if len(offsets) != self._events + 1 or np.any(np.diff(offsets) < 0):
                    raise DataError(f"offsets hold {len(offsets) - 1} events, the file says {self._events}",
                                    file=self.path, field=f"{name}/offsets")
                self._offsets[name] = offsets

    def __len__(self) -> int:
        return self._events

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, group: str, field: str, rows: slice, event: int | None) -> np.ndarray:
        try:
            ds = self._h5[group][field]
            if rows.stop is not None and rows.stop > ds.shape[0]:
                raise DataError(f"rows {rows.start}:{rows.stop} past the end ({ds.shape[0]}): truncated file?",
                                file=self.path, event=event, field=f"{group}/{field}")
            return ds[rows]
        except KeyError as err:
            raise DataError("missing", file=self.path, event=event, field=f"{group}/{field}") from err
        except OSError as err:
            raise DataError(f"unreadable ({err})", file=self.path, event=event, field=f"{group}/{field}") from err

    def _rows(self, name: str, event: int) -> slice:
        offsets = self._offsets[name]
        return slice(int(offsets[event]), int(offsets[event + 1]))

    def _image(self, name: str, event: int) -> SparseImage:
        rows = self._rows(name, event)
        data = {field: self._read(name, field, rows, event) for field in IMAGE_FIELDS}
        if not np.isfinite(data["values"]).all():
            raise DataError("NaN/inf values", file=self.path, event=event, field=f"{name}/values")
        shape = tuple(int(s) for s in self._h5[name].attrs["shape"])
        if len(data["coords"]) and (data["coords"].min() < 0 or np.any(data["coords"].max(0) >= np.array(shape))):
            raise DataError(f"coordinates outside the image shape {shape}", file=self.path, event=event,
                            field=f"{name}/coords")
        semantic = data["semantic"]
        if len(semantic) and (semantic.min() < -1 or semantic.max() > 4):
            raise DataError(f"semantic codes outside -1..4 (found {int(semantic.min())}..{int(semantic.max())})",
                            file=self.path, event=event, field=f"{name}/semantic")
        vertex = None
        if "vertex" in self._h5[name]:  # optional: files from before it existed have none
            row = self._read(name, "vertex", slice(event, event + 1), event)[0]
            vertex = None if row[0] < 0 else tuple(int(v) for v in row)
        return SparseImage(shape=shape, vertex=vertex, **data)

    def __getitem__(self, event: int) -> Event:
        if event < 0:
            event += len(self)
        if not 0 <= event < len(self):
            raise DataError(f"event index out of range: the file has {len(self)} events", file=self.path, event=event)
        planes = [self._image(f"planes/{k}", event) for k in range(self.n_planes)]
        voxels = self._image("voxels", event) if self.has_voxels else None
        particles = self._read("particles", "table", self._rows("particles", event), event)
        interactions = self._read("interactions", "table", self._rows("interactions", event), event)
        meta = {"sample": self.attrs.get("sample"), "geometry": self.attrs.get("geometry"),
                "seed": int(self._read("events", "seed", slice(event, event + 1), event)[0]),
                "index": int(self._read("events", "index", slice(event, event + 1), event)[0]),
                "kind": self._read("events", "kind", slice(event, event + 1), event)[0].decode()}
        return Event(planes, voxels, particles, interactions, meta)

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
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except OSError:
        return False
