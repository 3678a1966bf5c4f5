"""Reader for larcv3 HDF5 files (the format of the DeepLearnPhysics larcv3 library).

Layout: ``/Events/event_id`` and one group ``/Data/<type>_<producer>_group`` per product, each
with an ``extents`` table (per event: first row, count) into flat tables. Fields are read by
name. Voxel ids are decoded in C order over ``image_meta.number_of_voxels`` (last axis fastest).

Orientation: for 2D products ``number_of_voxels`` is (wires, ticks), so a voxel id decodes to
``(wire, tick)``. lartpcnet images are (row, column) = (tick, wire): drift time down the rows,
wires across, e.g. 1280 x 2048 for the SBND cosmic-tagging images.

Bad input is a one-line DataError naming the file, event and field: missing or malformed tables,
extents past the end of their table, image sizes that are not positive, voxel ids that are not
integers, lie outside the image or repeat (duplicates are refused, not merged by summing the
charge as larcv's VoxelSet would: a repeated id in a file is damage, and its labels could not be
merged), NaN/inf values, label codes out of range (SPINE 0..5, origin 0..2, lartpcnet semantic
-1..4, ids -1 or more), and label products whose sites differ from the image's. An event with no
voxels reads as empty images.

``write_larcv3`` writes events in this layout, with more products where asked (``extra``: what
``lartpcnet predict --format larcv3`` adds beside the image, ``lartpcnet.larcv3_predictions``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lartpcnet.data import CORRUPT_FILE_ERRORS, first_line, reading
from lartpcnet.data.event import (
    LABEL_FIELDS,
    Event,
    SparseImage,
    as_integers,
    checked_image,
    checked_shape,
    dtype_problem,
)
from lartpcnet.errors import DataError

PRODUCT_TYPES = ("sparse2d", "sparse3d", "cluster2d", "cluster3d", "particle")


@dataclass
class Plane:
    """One 2D projection of one event: active pixels as (row, col) = (tick, wire) and values."""

    projection: int
    shape: tuple[int, int]
    coords: np.ndarray  # (N, 2) int64, (row, col)
    values: np.ndarray  # (N,) float32


@dataclass
class Volume:
    """One 3D image of one event: active voxels in C order over number_of_voxels, and values."""

    shape: tuple[int, int, int]
    coords: np.ndarray  # (N, 3) int64
    values: np.ndarray  # (N,) float32


_FIELDS = {  # the compound fields each table of a product needs
    "extents": ("first", "N"), "voxel_extents": ("first", "N"), "projection_extents": ("first", "N"),
    "cluster_extents": ("first", "N"), "image_meta": ("number_of_voxels",), "voxels": ("id", "value"),
    "particles": (),
}
_TABLES = {
    "sparse2d": ("extents", "image_meta", "voxel_extents", "voxels"),
    "sparse3d": ("extents", "image_meta", "voxel_extents", "voxels"),
    "cluster2d": ("extents", "image_meta", "projection_extents", "cluster_extents", "voxels"),
    "cluster3d": ("extents", "image_meta", "projection_extents", "cluster_extents", "voxels"),
    "particle": ("extents", "particles"),
}


class Larcv3File:
    """Lazy per-event access to a larcv3 HDF5 file. ``len()`` is the number of events.

    A product's tables are checked when it is first used (present, with the compound fields
    larcv3 writes, numeric where numbers belong); each read checks its rows against the tables'
    lengths, voxel ids against the image size, and refuses non-integral or repeated ids and
    NaN/inf values. Any other error of a damaged file becomes a one-line DataError.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise
        except OSError as err:
            raise DataError(f"corrupt or truncated HDF5 file ({first_line(err)})", file=self.path) from err
        try:
            with reading(self.path):
                self._scan()
        except BaseException:
            self._h5.close()
            raise

    def _child(self, group: h5py.Group, name: str):
        """``group[name]``, None where no such link exists; a damaged object is an error naming it
        (h5py's ``get`` would return None for it, and a damaged product would silently vanish)."""
        if name not in group:
            return None
        with reading(self.path, field=f"{group.name.rstrip('/')}/{name}"):
            return group[name]

    def _scan(self) -> None:
        data, events = self._child(self._h5, "Data"), self._child(self._h5, "Events")
        if not isinstance(data, h5py.Group) or not isinstance(events, h5py.Group):
            raise DataError("not a larcv3 file: no /Data and /Events groups", file=self.path)
        self.products: dict[str, tuple[str, str]] = {}
        for group in data:
            name = group[: -len("_group")] if group.endswith("_group") else group
            kind, _, producer = name.partition("_")
            if kind in PRODUCT_TYPES and producer and isinstance(self._child(data, group), h5py.Group):
                self.products[name] = (kind, producer)
        table = self._child(events, "event_id")
        if not isinstance(table, h5py.Dataset) or table.ndim != 1:
            raise DataError("cannot read the event table (missing, or not a 1-D table)", file=self.path,
                            field="Events/event_id")
        self._events = int(table.shape[0])
        self._checked: set[str] = set()

    def __len__(self) -> int:
        return self._events

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> Larcv3File:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def producers(self, kind: str) -> list[str]:
        return [p for k, p in self.products.values() if k == kind]

    def event_ids(self) -> np.ndarray:
        """``Events/event_id`` as a structured array (larcv3's run, subrun, event)."""
        with reading(self.path, field="Events/event_id"):
            table = self._h5["Events/event_id"][:]
            missing = [f for f in ("run", "subrun", "event") if f not in (table.dtype.names or ())]
            if missing:
                raise DataError(f"not a larcv3 event table (no {', '.join(missing)})", file=self.path,
                                field="Events/event_id")
            return table

    def attributes(self) -> dict:
        """The file's root attributes (larcv3 writes none; lartpcnet's predictions record themselves here)."""
        with reading(self.path):
            return dict(self._h5.attrs)

    # -- low level -----------------------------------------------------------------------
    def _group(self, kind: str, producer: str) -> h5py.Group:
        name = f"{kind}_{producer}"
        if name not in self.products:
            have = ", ".join(sorted(self.products)) or "none"
            raise DataError(f"no product {name!r} (products: {have})", file=self.path)
        group = self._h5[f"Data/{name}_group"]
        if name not in self._checked:
            with reading(self.path, field=group.name):
                self._check_product(kind, group)
            self._checked.add(name)
        return group

    def _check_product(self, kind: str, group: h5py.Group) -> None:
        dim = 3 if kind.endswith("3d") else 2
        for table in _TABLES[kind]:
            ds = self._child(group, table)
            where = f"{group.name}/{table}"
            if not isinstance(ds, h5py.Dataset):
                raise DataError("missing table", file=self.path, field=where)
            names = ds.dtype.names or ()
            missing = [f for f in _FIELDS[table] if f not in names]
            if ds.ndim != 1 or missing or (table == "particles" and not names):
                raise DataError(f"not a larcv3 table: shape {ds.shape}, dtype {ds.dtype.str} (needs the fields "
                                f"{list(_FIELDS[table])})", file=self.path, field=where)
            for f in _FIELDS[table]:
                problem = dtype_problem(ds.dtype.fields[f][0].base)
                if problem:
                    raise DataError(f"{f!r}: {problem}", file=self.path, field=where)
            if table == "image_meta" and ds.dtype.fields["number_of_voxels"][0].shape != (dim,):
                raise DataError(f"'number_of_voxels' must hold {dim} sizes, found dtype {ds.dtype.str}",
                                file=self.path, field=where)
        extents = group["extents"]
        if extents.shape[0] < len(self):
            raise DataError(f"extents hold {extents.shape[0]} events, Events/event_id {len(self)}: truncated or "
                            "damaged file", file=self.path, field=f"{group.name}/extents")

    def _read(self, group: h5py.Group, field: str, rows: slice, event: int) -> np.ndarray:
        with reading(self.path, event, f"{group.name}/{field}"):
            dataset = group[field]
            if rows.stop > dataset.shape[0]:
                raise DataError(
                    f"rows {rows.start}:{rows.stop} past the end ({dataset.shape[0]} rows): truncated file?",
                    file=self.path, event=event, field=f"{group.name}/{field}",
                )
            return dataset[rows]

    def _extent(self, group: h5py.Group, table: str, index: int, event: int) -> slice:
        if not 0 <= event < len(self):
            raise DataError(f"event index out of range: the file has {len(self)} events", file=self.path, event=event)
        row = self._read(group, table, slice(index, index + 1), event)
        if row.shape[0] != 1:
            raise DataError("missing extent row", file=self.path, event=event, field=f"{group.name}/{table}")
        where = f"{group.name}/{table}"
        first = int(as_integers(row["first"], "extent starts", self.path, event, where)[0])
        count = int(as_integers(row["N"], "extent counts", self.path, event, where)[0])
        if first < 0 or count < 0:
            raise DataError(f"negative extent ({first}, {count})", file=self.path, event=event, field=where)
        return slice(first, first + count)

    def _voxels(self, group: h5py.Group, rows: slice, event: int) -> tuple[np.ndarray, np.ndarray]:
        where = f"{group.name}/voxels"
        voxels = self._read(group, "voxels", rows, event)
        ids = as_integers(voxels["id"], "voxel ids", self.path, event, where)
        values = voxels["value"]
        problem = dtype_problem(values.dtype)
        if problem:
            raise DataError(problem, file=self.path, event=event, field=where)
        values = values.astype(np.float32)
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise DataError(f"{bad} NaN/inf voxel values", file=self.path, event=event, field=where)
        return ids, values

    def _metas(self, group: h5py.Group, event: int) -> tuple[np.ndarray, slice]:
        rows = self._extent(group, "extents", event, event)
        return self._read(group, "image_meta", rows, event), rows

    def _decode(self, ids: np.ndarray, n_voxels: np.ndarray, group: h5py.Group, event: int) -> np.ndarray:
        where = f"{group.name}/voxels"
        shape = checked_shape(n_voxels, len(n_voxels), self.path, f"{group.name}/image_meta", event)
        total = int(np.prod(shape))
        if ids.size and (ids.min() < 0 or ids.max() >= total):
            bad = int(ids.min()) if ids.min() < 0 else int(ids.max())
            raise DataError(f"voxel id {bad} outside the image of {total} voxels {shape}", file=self.path,
                            event=event, field=where)
        ordered = ids if (ids[1:] > ids[:-1]).all() else np.sort(ids)  # larcv3 keeps ids sorted
        repeated = ordered[1:] == ordered[:-1]
        if repeated.any():
            extra = int(repeated.sum())
            raise DataError(f"duplicate voxel id {int(ordered[1:][repeated][0])} ({extra} extra "
                            f"entr{'y' if extra == 1 else 'ies'} in the event); each site may appear once",
                            file=self.path, event=event, field=where)
        return np.stack(np.unravel_index(ids, shape), 1).astype(np.int64).reshape(len(ids), len(shape))

    # -- products -----------------------------------------------------------------------
    def sparse2d(self, producer: str, event: int) -> list[Plane]:
        with reading(self.path, event, f"sparse2d_{producer}"):
            group = self._group("sparse2d", producer)
            metas, meta_rows = self._metas(group, event)
            planes = []
            for i, meta in enumerate(metas):
                rows = self._extent(group, "voxel_extents", meta_rows.start + i, event)
                ids, values = self._voxels(group, rows, event)
                wire_tick = self._decode(ids, meta["number_of_voxels"], group, event)
                wires, ticks = (int(n) for n in meta["number_of_voxels"])
                projection = int(meta["projection_id"]) if "projection_id" in metas.dtype.names else i
                planes.append(Plane(projection, (ticks, wires), wire_tick[:, ::-1].copy(), values))
            return planes

    def sparse3d(self, producer: str, event: int) -> Volume:
        with reading(self.path, event, f"sparse3d_{producer}"):
            group = self._group("sparse3d", producer)
            metas, meta_rows = self._metas(group, event)
            if len(metas) != 1:
                raise DataError(f"expected one 3D image meta, found {len(metas)}", file=self.path, event=event,
                                field=f"{group.name}/image_meta")
            rows = self._extent(group, "voxel_extents", meta_rows.start, event)
            ids, values = self._voxels(group, rows, event)
            n = metas[0]["number_of_voxels"]
            coords = self._decode(ids, n, group, event)
            return Volume(tuple(int(v) for v in n), coords, values)

    def cluster2d(self, producer: str, event: int) -> list[list[Plane]]:
        """Per projection, the list of clusters (each a Plane of its own pixels)."""
        with reading(self.path, event, f"cluster2d_{producer}"):
            group = self._group("cluster2d", producer)
            metas, meta_rows = self._metas(group, event)
            out = []
            for i, meta in enumerate(metas):
                proj = self._extent(group, "projection_extents", meta_rows.start + i, event)
                wire_tick_shape = meta["number_of_voxels"]
                wires, ticks = (int(n) for n in wire_tick_shape)
                projection = int(meta["projection_id"]) if "projection_id" in metas.dtype.names else i
                clusters = []
                for c in range(proj.start, proj.stop):
                    rows = self._extent(group, "cluster_extents", c, event)
                    ids, values = self._voxels(group, rows, event)
                    wire_tick = self._decode(ids, wire_tick_shape, group, event)
                    clusters.append(Plane(projection, (ticks, wires), wire_tick[:, ::-1].copy(), values))
                out.append(clusters)
            return out

    def cluster3d(self, producer: str, event: int) -> list[Volume]:
        with reading(self.path, event, f"cluster3d_{producer}"):
            group = self._group("cluster3d", producer)
            metas, meta_rows = self._metas(group, event)
            if len(metas) != 1:
                raise DataError(f"expected one 3D image meta, found {len(metas)}", file=self.path, event=event,
                                field=f"{group.name}/image_meta")
            n = metas[0]["number_of_voxels"]
            clusters = []
            proj = self._extent(group, "projection_extents", meta_rows.start, event)
            for c in range(proj.start, proj.stop):
                rows = self._extent(group, "cluster_extents", c, event)
                ids, values = self._voxels(group, rows, event)
                clusters.append(Volume(tuple(int(v) for v in n), self._decode(ids, n, group, event), values))
            return clusters

    def particles(self, producer: str, event: int) -> np.ndarray:
        """The event's particle table as a structured array (fields as larcv3 names them)."""
        with reading(self.path, event, f"particle_{producer}"):
            group = self._group("particle", producer)
            rows = self._extent(group, "extents", event, event)
            return self._read(group, "particles", rows, event)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_larcv3(path: str | Path) -> bool:
    """True for an HDF5 file with larcv3's /Data and /Events groups.

    A file that starts like HDF5 but cannot be opened raises DataError (corrupt or truncated),
    rather than passing for some other format.
    """
    with open(path, "rb") as f:
        if f.read(8) != HDF5_SIGNATURE:
            return False
    try:
        with h5py.File(path, "r") as f:
            return "Data" in f and "Events" in f
    except OSError as err:
        raise DataError(f"corrupt or truncated HDF5 file ({first_line(err)})", file=str(path)) from err
    except CORRUPT_FILE_ERRORS as err:
        raise DataError(f"unreadable HDF5 file ({first_line(err)})", file=str(path)) from err


# larcv/SPINE semantic codes: 0 shower, 1 track, 2 Michel, 3 delta, 4 low-energy, 5 ghost
SPINE_CODES = "0 shower, 1 track, 2 Michel, 3 delta, 4 low-energy, 5 ghost"
# lartpcnet's code of each SPINE code: track -> MIP (larcv does not split HIP/MIP), low-energy and
# ghost -> -1 (unlabelled)
_FROM_SPINE = np.array([2, 1, 4, 3, -1, -1], np.int8)
# the companion products lartpcnet writes beside an image product <image>, and what they hold
COMPANIONS = {"semantic": "semantic", "spine": "segment", "origin": "cosmicseg", "instance": "instance",
              "interaction": "interaction"}
_LABEL_HINTS = ("seg", "label", "class", "semantic", "instance", "interaction")


class Larcv3Events:
    """A larcv3 file seen as lartpcnet Events: one SparseImage per projection of the image product.

    The image product is the first ``sparse2d`` (and ``sparse3d``) producer whose name holds none
    of ``seg``, ``label``, ``class``, ``semantic``, ``instance``, ``interaction`` and that is not
    a prediction (``is_prediction``: ``<image>_pred...``, ``<image>_score...``; nor are these
    ever read as truth). Its labels come
    from the products lartpcnet writes beside it, where present: ``<image>_semantic`` (lartpcnet
    semantic codes, -1 noise), else ``<image>_segment`` (larcv/SPINE codes: 0 shower, 1 track,
    2 Michel, 3 delta, 4 low-energy, 5 ghost; track reads as MIP, low-energy and ghost as -1),
    ``<image>_cosmicseg`` (origin: 0 background, 1 cosmic, 2 neutrino), ``<image>_instance`` and
    ``<image>_interaction`` (ids, -1 none). Files from elsewhere: the first other label product
    is read as origin when its name holds ``cosmic`` (SBND's ``sbnd_cosmicseg``), else as SPINE
    codes. A label product must list the image's sites; label codes out of range are refused.
    """

    def __init__(self, path: str | Path, image: str | None = None, labels: str | None = None) -> None:
        self.file = Larcv3File(path)
        self.path = self.file.path
        try:
            with reading(self.path):
                self._choose(image, labels)
        except BaseException:
            self.file.close()
            raise

    def _choose(self, image: str | None, labels: str | None) -> None:
        images = [p for p in self.file.producers("sparse2d") if not _is_label(p) and not is_prediction(p)]
        self.image = image or (images[0] if images else None)
        volumes = [p for p in self.file.producers("sparse3d") if not _is_label(p) and not is_prediction(p)]
        self.volume = volumes[0] if volumes else None
        if self.image is None and self.volume is None:
            raise DataError("no sparse2d or sparse3d image product", file=self.path)
        self._roles2d = self._roles("sparse2d", self.image, labels) if self.image else {}
        self._roles3d = self._roles("sparse3d", self.volume, None) if self.volume else {}
        # the one label product that ``info`` and ``display`` show, as before: semantic if any, else origin
        main = self._roles2d or self._roles3d
        role = next((r for r in ("semantic", "spine", "origin") if r in main), None)
        self.labels = main[role] if role and self._roles2d else None
        self.volume_labels = self._roles3d.get("semantic") or self._roles3d.get("spine")
        self.label_kind = {"semantic": "semantic", "spine": "spine", "origin": "origin", None: "spine"}[role]
        for kind, roles, product in (("sparse2d", self._roles2d, self.image), ("sparse3d", self._roles3d,
                                                                                 self.volume)):
            for name in [product, *roles.values()] if product else []:
                self.file._group(kind, name)  # checks the product's tables now, not at the first event

    def _roles(self, kind: str, image: str, labels: str | None) -> dict[str, str]:
        """Label role (semantic, spine, origin, instance, interaction) -> product, for ``image``."""
        producers = self.file.producers(kind)
        if labels is not None:
            if labels not in producers:
                raise DataError(f"no product '{kind}_{labels}' (products: {', '.join(sorted(self.file.products))})",
                                file=self.path)
            return {"origin" if "cosmic" in labels else "spine": labels}
        roles = {role: f"{image}_{suffix}" for role, suffix in COMPANIONS.items() if f"{image}_{suffix}" in producers}
        others = [p for p in producers
                  if _is_label(p) and not is_prediction(p) and p not in roles.values() and p != image]
        if "origin" not in roles and not roles.keys() & {"semantic", "spine"}:
            # a file from elsewhere: its first label product, by name (SBND's sbnd_cosmicseg)
            if others:
                roles["origin" if "cosmic" in others[0] else "spine"] = others[0]
        if "semantic" in roles:
            roles.pop("spine", None)  # the exact codes make the SPINE ones redundant
        return roles

    @property
    def truth_labels(self) -> tuple[str, ...]:
        """The label fields the events carry (from the label products present)."""
        roles = set(self._roles2d) | set(self._roles3d)
        if roles & {"semantic", "spine"}:
            roles.add("semantic")
        return tuple(name for name in LABEL_FIELDS if name in roles)

    def __len__(self) -> int:
        return len(self.file)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Larcv3Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _labelled(self, kind: str, image: str, roles: dict[str, str], event: int) -> list[SparseImage]:
        def projections(product: str) -> list:
            return self.file.sparse2d(product, event) if kind == "sparse2d" else [self.file.sparse3d(product, event)]

        images = projections(image)
        out = []
        label_sets = {role: projections(product) for role, product in roles.items()}
        for role, planes in label_sets.items():
            if len(planes) != len(images):
                raise DataError(f"holds {len(planes)} projections, the image product {image!r} {len(images)}",
                                file=self.path, event=event, field=f"{kind}_{roles[role]}")
        for k, plane in enumerate(images):
            labels, fields = {}, {"coords": f"{kind}_{image}/voxels", "values": f"{kind}_{image}/voxels"}
            for role, planes in label_sets.items():
                where = f"{kind}_{roles[role]}/voxels"
                lab = planes[k]
                if lab.shape != plane.shape or not np.array_equal(lab.coords, plane.coords):
                    raise DataError(f"label sites differ from image sites ({len(lab.values)} sites in "
                                    f"{lab.shape}, the image {len(plane.values)} in {plane.shape})", file=self.path,
                                    event=event, field=where)
                codes = _label_codes(lab.values, self.path, event, where)
                if role == "spine":
                    if codes.size and (codes.min() < 0 or codes.max() > 5):
                        bad = int(codes.min()) if codes.min() < 0 else int(codes.max())
                        raise DataError(f"larcv/SPINE semantic codes must be 0..5 ({SPINE_CODES}), found {bad}",
                                        file=self.path, event=event, field=where)
                    codes = _FROM_SPINE[codes]
                name = "semantic" if role == "spine" else role
                labels[name], fields[name] = codes, where
            out.append(checked_image(plane.coords, plane.values, plane.shape, labels, fields, self.path, event))
        return out

    def __getitem__(self, event: int) -> Event:
        if event < 0:
            event += len(self)
        if not 0 <= event < len(self):
            raise DataError(f"event index out of range: the file has {len(self)} events", file=self.path, event=event)
        with reading(self.path, event):
            planes = self._labelled("sparse2d", self.image, self._roles2d, event) if self.image else []
            voxels = self._labelled("sparse3d", self.volume, self._roles3d, event)[0] if self.volume else None
        return Event(planes, voxels, None, None, {"index": event, "format": "larcv3"})

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def _from_spine(codes: np.ndarray) -> np.ndarray:
    """larcv/SPINE codes (0..5) -> lartpcnet semantic; track -> MIP (larcv does not split HIP/MIP),
    low-energy and ghost -> -1."""
    return _FROM_SPINE[codes]


def _is_label(name: str) -> bool:
    return any(hint in name.lower() for hint in _LABEL_HINTS)


# what lartpcnet predict writes beside an image <image>: <image>_pred, <image>_pred_instance,
# <image>_score and <image>_score_<class> (lartpcnet.larcv3_predictions)
_PREDICTION = re.compile(r".+_(pred|score)(_.*)?")


def is_prediction(name: str) -> bool:
    """Whether a producer name is one of the prediction products ``lartpcnet predict --format
    larcv3`` writes (``<image>_pred...``, ``<image>_score...``): neither an image nor truth."""
    return _PREDICTION.fullmatch(name) is not None


def _label_codes(values: np.ndarray, path: str, event: int, field: str) -> np.ndarray:
    """Label values (stored as float32 voxel values) as integers: no fractions, no NaN."""
    codes = np.round(values).astype(np.int64) if np.isfinite(values).all() else None
    if codes is None or not np.array_equal(codes, values):
        bad = values[~np.isfinite(values)] if codes is None else values[codes != values]
        raise DataError(f"label values must be integer codes, found {bad.flat[0]:g}", file=path, event=event,
                        field=field)
    return codes


# --- writing -----------------------------------------------------------------------------------
# larcv3 writes its C++ structs as HDF5 compounds, padding included (as the SBND file shows)
EXTENT_DTYPE = np.dtype([("first", "<u8"), ("N", "<u4")], align=True)  # 16 bytes
ID_EXTENT_DTYPE = np.dtype([("first", "<u8"), ("N", "<u4"), ("ID", "<u4")])
VOXEL_DTYPE = np.dtype([("id", "<u8"), ("value", "<f4")], align=True)  # 16 bytes
EVENT_ID_DTYPE = np.dtype([("run", "<i8"), ("subrun", "<i8"), ("event", "<i8")])
# larcv/SPINE has no "noise" class: unlabelled (noise) sites get SPINE's ghost code 5
SPINE_GHOST = 5


def _meta_dtype(dim: int) -> np.dtype:
    """ImageMeta<dim>: aligned members plus 8 trailing bytes (72 bytes in 2D, as larcv3 writes it)."""
    step = 8 * dim
    return np.dtype({"names": ["valid", "projection_id", "image_sizes", "number_of_voxels", "origin"],
                     "formats": ["u1", "<u8", ("<f8", (dim,)), ("<u8", (dim,)), ("<f8", (dim,))],
                     "offsets": [0, 8, 16, 16 + step, 16 + 2 * step], "itemsize": 16 + 3 * step + 8})


def _larcv_ids(image) -> tuple[np.ndarray, np.ndarray]:
    """(number_of_voxels, ids) in larcv3's convention: C order over number_of_voxels.

    2D planes are (wires, ticks) in larcv3, i.e. our (row, col) = (tick, wire) transposed.
    """
    if len(image.shape) == 2:
        n = np.array([image.shape[1], image.shape[0]], np.uint64)
        coords = image.coords[:, ::-1]
    else:
        n = np.array(image.shape, np.uint64)
        coords = image.coords
    ids = np.ravel_multi_index(tuple(coords.astype(np.int64).T), tuple(int(v) for v in n)) if len(image.coords) \
        else np.zeros(0, np.int64)
    return n, ids.astype(np.uint64)


class _ProductWriter:
    """Accumulates one sparse2d/sparse3d product and writes it as larcv3 lays it out."""

    def __init__(self, kind: str, producer: str, dim: int) -> None:
        self.kind, self.producer, self.dim = kind, producer, dim
        self.extents, self.metas, self.voxel_extents, self.voxels = [], [], [], []
        self.n_voxels = 0

    def add_event(self, images: list, values: list[np.ndarray], sizes: list | None = None) -> None:
        """One event's projections (none for an event without this image: every event has an extent).
        ``sizes``: per projection, larcv3's image_sizes in lartpcnet's axis order (None: the
        number of voxels, one unit per voxel)."""
        self.extents.append((len(self.metas), len(images)))
        for projection, (image, vals) in enumerate(zip(images, values, strict=True)):
            n, ids = _larcv_ids(image)
            order = np.argsort(ids, kind="stable")  # larcv3 keeps voxel sets sorted by id
            size = None if sizes is None else sizes[projection]
            size = n.astype(np.float64) if size is None else np.asarray(size[::-1] if self.dim == 2 else size,
                                                                           np.float64)
            self.metas.append((1, projection, size, n, np.zeros(self.dim)))
            self.voxel_extents.append((self.n_voxels, len(ids), projection))
            block = np.zeros(len(ids), VOXEL_DTYPE)
            block["id"], block["value"] = ids[order], np.asarray(vals, np.float32)[order]
            self.voxels.append(block)
            self.n_voxels += len(ids)

    def write(self, h5: h5py.File) -> None:
        group = h5.create_group(f"Data/{self.kind}_{self.producer}_group")
        voxels = np.zeros(self.n_voxels, VOXEL_DTYPE)  # zeroed padding (np.concatenate leaves it undefined)
        for name in VOXEL_DTYPE.names:
            voxels[name] = np.concatenate([block[name] for block in self.voxels]) if self.voxels else []
        # every table gzip-compressed, as in the SBND file: its checksum tells a damaged block
        for name, data in (("extents", _table(self.extents, EXTENT_DTYPE)),
                           ("image_meta", _table(self.metas, _meta_dtype(self.dim))),
                           ("voxel_extents", _table(self.voxel_extents, ID_EXTENT_DTYPE)), ("voxels", voxels)):
            group.create_dataset(name, data=data, maxshape=(None,), chunks=True, compression="gzip",
                                 track_times=False)


def _table(rows: list[tuple], dtype: np.dtype) -> np.ndarray:
    """Rows as a compound array whose padding bytes are zero (np.array leaves them as whatever
    memory held: files would differ from run to run and carry stray bytes)."""
    table = np.zeros(len(rows), dtype)
    for k, name in enumerate(dtype.names):
        if rows:
            table[name] = [row[k] for row in rows]
    return table


# ids stored as float32 voxel values are exact up to 2**24
_MAX_FLOAT_ID = 2**24


@dataclass
class Projection:
    """One projection of a product that ``write_larcv3`` writes beside the images (``extra``):
    its image size (``shape``, as lartpcnet orders axes: (row, column) = (tick, wire) in 2D), the
    sites as lartpcnet orders coordinates, their values, and ``sizes``, larcv3's physical image
    size in the same axis order (None: one unit per voxel, as the images are written; a product at
    a coarser resolution than the image keeps the image's sizes, so that its voxels cover the same
    ground)."""

    shape: tuple[int, ...]
    coords: np.ndarray
    values: np.ndarray
    sizes: tuple[float, ...] | None = None


def write_larcv3(path: str | Path, events: Iterable[Event], image: str = "wire", semantic: str = "segment",
                 origin: str = "cosmicseg", volume: str | None = None,
                 extra: Callable[[int, Event], dict[tuple[str, str], list[Projection]]] | None = None,
                 attrs: dict | None = None) -> int:
    """Writes events as larcv3 HDF5 (atomically); returns the number of events.

    Products, for planes (sparse2d) and voxels (sparse3d) alike: ``image`` (the values) and, for
    each label some site of the file carries, ``<image>_<semantic>`` (larcv/SPINE codes: shower 0,
    track 1, Michel 2, delta 3, ghost 5 for noise, for larcv and SPINE tools),
    ``<image>_semantic`` (lartpcnet codes, HIP and MIP apart, -1 noise), ``<image>_<origin>``
    (0 background, 1 cosmic, 2 neutrino), ``<image>_instance`` and ``<image>_interaction`` (particle
    and interaction ids, -1 none). Larcv3Events reads them all back, so lartpcnet -> larcv3 ->
    lartpcnet keeps every label of every site (not the particle and interaction tables, nor the
    vertex). Events with duplicate sites are refused. ``volume``: the name of the sparse3d image
    product and the stem of its labels' (default ``image``).

    ``extra(position, event)``: more products for each event, ``{(kind, producer): [Projection,
    ...]}`` (sparse2d or sparse3d; an event without one of them gets an empty entry, as larcv3
    keeps an entry per event in every product); ``attrs``: root attributes of the file (larcv3
    reads neither, nor minds them).
    """
    from lartpcnet.data.labels import to_spine
    from lartpcnet.io_utils import atomic_path

    def product_names(stem: str) -> dict[str, str]:
        return {"values": stem, "spine": f"{stem}_{semantic}", "semantic": f"{stem}_semantic",
                "origin": f"{stem}_{origin}", "instance": f"{stem}_instance", "interaction": f"{stem}_interaction"}

    names_of = {"sparse2d": product_names(image), "sparse3d": product_names(volume or image)}
    for kind_names in names_of.values():
        if len(set(kind_names.values())) != len(kind_names):
            raise ValueError(f"label product names collide: {sorted(kind_names.values())}")
    products = {(kind, role): _ProductWriter(kind, name, dim) for kind, dim in (("sparse2d", 2), ("sparse3d", 3))
                for role, name in names_of[kind].items()}
    more: dict[tuple[str, str], _ProductWriter] = {}  # the extra products, in the order first met
    truth = {"sparse2d": set(), "sparse3d": set()}  # the labels some site carries
    has = {"sparse2d": False, "sparse3d": False}

    def spine(img):
        return np.where(img.semantic >= 0, to_spine(np.maximum(img.semantic, 0)), SPINE_GHOST)

    ids = []
    count = 0
    for count, event in enumerate(events, start=1):
        index = count - 1
        ids.append((0, 0, int(event.meta.get("index", index))))
        for kind, images in (("sparse2d", event.planes), ("sparse3d", [] if event.voxels is None else [event.voxels])):
            has[kind] |= bool(images)
            names = names_of[kind]
            for k, img in enumerate(images):
                # refuse what the reader would refuse (duplicates, codes out of range, ...)
                checked_image(img.coords, img.values, tuple(img.shape), {f: getattr(img, f) for f in LABEL_FIELDS},
                              {f: f"{kind}_{names['values']} projection {k}" for f in ("coords", "values",
                                                                                     *LABEL_FIELDS)},
                              str(path), index)
                for f in ("instance", "interaction"):
                    if len(img) and getattr(img, f).max() >= _MAX_FLOAT_ID:
                        raise DataError(f"{f} ids of {_MAX_FLOAT_ID} or more do not fit larcv3's float32 values",
                                        file=str(path), event=index, field=f"{kind}_{names[f]}")
                truth[kind].update(f for f in LABEL_FIELDS
                                   if (getattr(img, f) > 0 if f == "origin" else getattr(img, f) >= 0).any())
            columns = {"values": [i.values for i in images], "spine": [spine(i) for i in images],
                       "semantic": [i.semantic for i in images], "origin": [i.origin for i in images],
                       "instance": [i.instance for i in images], "interaction": [i.interaction for i in images]}
            for role, values in columns.items():
                products[kind, role].add_event(images, values)
        added = extra(index, event) if extra is not None else {}
        for key in added:
            if key not in more:
                kind, producer = key
                if kind not in names_of:
                    raise ValueError(f"extra products are sparse2d or sparse3d, not {kind!r}")
                if producer in names_of[kind].values():
                    raise ValueError(f"extra product {kind}_{producer} collides with an image or label product")
                more[key] = _ProductWriter(kind, producer, 2 if kind == "sparse2d" else 3)
                for _ in range(index):  # the events before it hold none
                    more[key].add_event([], [])
        for key, product in more.items():
            projections = added.get(key, [])
            for k, p in enumerate(projections):  # refuse what the reader would refuse
                where = f"{key[0]}_{key[1]} projection {k}"
                checked_image(p.coords, p.values, tuple(p.shape), {}, {"coords": where, "values": where}, str(path),
                              index)
            product.add_event(projections, [p.values for p in projections], [p.sizes for p in projections])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        for key in sorted(attrs or {}):
            h5.attrs[key] = attrs[key]
        h5.create_dataset("Events/event_id", data=_table(ids, EVENT_ID_DTYPE), maxshape=(None,), chunks=True,
                          compression="gzip", track_times=False)
        h5.create_group("Data")
        for (kind, role), product in products.items():
            label = "semantic" if role == "spine" else role
            if has[kind] and (role == "values" or label in truth[kind]):
                product.write(h5)
        for product in more.values():
            product.write(h5)
    return count
