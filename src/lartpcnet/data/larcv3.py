"""Reader for larcv3 HDF5 files (the format of the DeepLearnPhysics larcv3 library).

Layout: ``/Events/event_id`` and one group ``/Data/<type>_<producer>_group`` per product, each
with an ``extents`` table (per event: first row, count) into flat tables. Fields are read by
name. Voxel ids are decoded in C order over ``image_meta.number_of_voxels`` (last axis fastest).

Orientation: for 2D products ``number_of_voxels`` is (wires, ticks), so a voxel id decodes to
``(wire, tick)``. lartpcnet images are (row, column) = (tick, wire): drift time down the rows,
wires across, e.g. 1280 x 2048 for the SBND cosmic-tagging images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

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


class Larcv3File:
    """Lazy per-event access to a larcv3 HDF5 file. ``len()`` is the number of events."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise
        except OSError as err:
            raise DataError(f"not a readable HDF5 file ({err})", file=self.path) from err
        if "Data" not in self._h5 or "Events" not in self._h5:
            raise DataError("not a larcv3 file: no /Data and /Events groups", file=self.path)
        self.products: dict[str, tuple[str, str]] = {}
        for group in self._h5["Data"]:
            name = group[: -len("_group")] if group.endswith("_group") else group
            kind, _, producer = name.partition("_")
            if kind in PRODUCT_TYPES and producer:
                self.products[name] = (kind, producer)
        try:
            self._events = int(self._h5["Events/event_id"].shape[0])
        except (KeyError, OSError) as err:
            raise DataError("cannot read the event table", file=self.path, field="Events/event_id") from err

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

    # -- low level -----------------------------------------------------------------------
    def _group(self, kind: str, producer: str) -> h5py.Group:
        name = f"{kind}_{producer}"
        if name not in self.products:
            have = ", ".join(sorted(self.products)) or "none"
            raise DataError(f"no product {name!r} (products: {have})", file=self.path)
        return self._h5[f"Data/{name}_group"]

    def _read(self, group: h5py.Group, field: str, rows: slice, event: int) -> np.ndarray:
        try:
            dataset = group[field]
            if rows.stop > dataset.shape[0]:
                raise DataError(
                    f"rows {rows.start}:{rows.stop} past the end ({dataset.shape[0]} rows): truncated file?",
                    file=self.path, event=event, field=f"{group.name}/{field}",
                )
            return dataset[rows]
        except KeyError as err:
            raise DataError("missing", file=self.path, event=event, field=f"{group.name}/{field}") from err
        except OSError as err:
            raise DataError(f"unreadable ({err})", file=self.path, event=event, field=f"{group.name}/{field}") from err

    def _extent(self, group: h5py.Group, table: str, index: int, event: int) -> slice:
        if not 0 <= event < len(self):
            raise DataError(f"event index out of range: the file has {len(self)} events", file=self.path, event=event)
        row = self._read(group, table, slice(index, index + 1), event)
        if row.shape[0] != 1:
            raise DataError("missing extent row", file=self.path, event=event, field=f"{group.name}/{table}")
        first, count = int(row["first"][0]), int(row["N"][0])
        return slice(first, first + count)

    def _voxels(self, group: h5py.Group, rows: slice, event: int) -> tuple[np.ndarray, np.ndarray]:
        voxels = self._read(group, "voxels", rows, event)
        try:
            ids, values = voxels["id"].astype(np.int64), voxels["value"].astype(np.float32)
        except (ValueError, KeyError) as err:
            raise DataError("voxels need fields 'id' and 'value'", file=self.path, event=event,
                            field=f"{group.name}/voxels") from err
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).sum())
            raise DataError(f"{bad} NaN/inf voxel values", file=self.path, event=event, field=f"{group.name}/voxels")
        return ids, values

    def _metas(self, group: h5py.Group, event: int) -> tuple[np.ndarray, slice]:
        rows = self._extent(group, "extents", event, event)
        return self._read(group, "image_meta", rows, event), rows

    def _decode(self, ids: np.ndarray, n_voxels: np.ndarray, group: h5py.Group, event: int) -> np.ndarray:
        total = int(np.prod(n_voxels))
        if ids.size and (ids.min() < 0 or ids.max() >= total):
            raise DataError(
                f"voxel id {int(ids.max())} outside the image of {total} voxels {tuple(n_voxels)}",
                file=self.path, event=event, field=f"{group.name}/voxels",
            )
        return np.stack(np.unravel_index(ids, tuple(int(n) for n in n_voxels)), 1).astype(np.int64)

    # -- products -----------------------------------------------------------------------
    def sparse2d(self, producer: str, event: int) -> list[Plane]:
        group = self._group("sparse2d", producer)
        metas, meta_rows = self._metas(group, event)
        planes = []
        for i, meta in enumerate(metas):
            rows = self._extent(group, "voxel_extents", meta_rows.start + i, event)
            ids, values = self._voxels(group, rows, event)
            wires, ticks = (int(n) for n in meta["number_of_voxels"])
            wire_tick = self._decode(ids, meta["number_of_voxels"], group, event)
            planes.append(Plane(int(meta["projection_id"]), (ticks, wires), wire_tick[:, ::-1].copy(), values))
        return planes

    def sparse3d(self, producer: str, event: int) -> Volume:
        group = self._group("sparse3d", producer)
        metas, meta_rows = self._metas(group, event)
        if len(metas) != 1:
            raise DataError(f"expected one 3D image meta, found {len(metas)}", file=self.path, event=event,
                            field=f"{group.name}/image_meta")
        rows = self._extent(group, "voxel_extents", meta_rows.start, event)
        ids, values = self._voxels(group, rows, event)
        n = metas[0]["number_of_voxels"]
        return Volume(tuple(int(v) for v in n), self._decode(ids, n, group, event), values)

    def cluster2d(self, producer: str, event: int) -> list[list[Plane]]:
        """Per projection, the list of clusters (each a Plane of its own pixels)."""
        group = self._group("cluster2d", producer)
        metas, meta_rows = self._metas(group, event)
        out = []
        for i, meta in enumerate(metas):
            proj = self._extent(group, "projection_extents", meta_rows.start + i, event)
            wires, ticks = (int(n) for n in meta["number_of_voxels"])
            clusters = []
            for c in range(proj.start, proj.stop):
                rows = self._extent(group, "cluster_extents", c, event)
                ids, values = self._voxels(group, rows, event)
                wire_tick = self._decode(ids, meta["number_of_voxels"], group, event)
                clusters.append(Plane(int(meta["projection_id"]), (ticks, wires), wire_tick[:, ::-1].copy(), values))
            out.append(clusters)
        return out

    def cluster3d(self, producer: str, event: int) -> list[Volume]:
        group = self._group("cluster3d", producer)
        metas, meta_rows = self._metas(group, event)
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
        raise DataError(f"corrupt or truncated HDF5 file ({err})", file=str(path)) from err


class Larcv3Events:
    """A larcv3 file seen as lartpcnet Events: one SparseImage per projection of the image product.

    Labels come from the label product: ``origin`` for cosmic-tagging products (0 background,
    1 cosmic, 2 neutrino, as in SBND's ``sbnd_cosmicseg``); other label products are read as
    larcv/SPINE semantic codes and mapped to lartpcnet's.
    """

    def __init__(self, path: str | Path, image: str | None = None, labels: str | None = None) -> None:
        self.file = Larcv3File(path)
        self.path = self.file.path
        images = [p for p in self.file.producers("sparse2d") if not _is_label(p)]
        label_products = [p for p in self.file.producers("sparse2d") if _is_label(p)]
        self.image = image or (images[0] if images else None)
        self.labels = labels or (label_products[0] if label_products else None)
        volumes = [p for p in self.file.producers("sparse3d") if not _is_label(p)]
        self.volume = volumes[0] if volumes else None
        self.volume_labels = next((p for p in self.file.producers("sparse3d") if _is_label(p)), None)
        if self.image is None and self.volume is None:
            raise DataError("no sparse2d or sparse3d image product", file=self.path)
        self.label_kind = "origin" if self.labels and "cosmic" in self.labels else "spine"

    def __len__(self) -> int:
        return len(self.file)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Larcv3Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, event: int):
        from lartpcnet.data.event import Event, SparseImage

        if event < 0:
            event += len(self)
        planes = []
        if self.image is not None:
            label_planes = self.file.sparse2d(self.labels, event) if self.labels else None
            for k, plane in enumerate(self.file.sparse2d(self.image, event)):
                n = len(plane.values)
                semantic = np.full(n, -1, np.int8)
                origin = np.zeros(n, np.int8)
                if label_planes is not None:
                    lab = label_planes[k]
                    if not np.array_equal(lab.coords, plane.coords):
                        raise DataError("label sites differ from image sites", file=self.path, event=event,
                                        field=f"sparse2d_{self.labels}")
                    codes = _label_codes(lab.values, self.path, event, f"sparse2d_{self.labels}/voxels")
                    if self.label_kind == "origin":
                        if codes.max(initial=0) > 2:
                            raise DataError(f"cosmic-tag labels must be 0, 1 or 2, found {codes.max()}",
                                            file=self.path, event=event, field=f"sparse2d_{self.labels}/voxels")
                        origin = codes.astype(np.int8)
                    else:
                        semantic = _from_spine(codes)
                planes.append(SparseImage(plane.coords.astype(np.int32), plane.values, semantic,
                                          np.full(n, -1, np.int32), np.full(n, -1, np.int32), origin, plane.shape))
        voxels = None
        if self.volume is not None:
            vol = self.file.sparse3d(self.volume, event)
            n = len(vol.values)
            semantic3d = np.full(n, -1, np.int8)
            if self.volume_labels is not None:
                lab = self.file.sparse3d(self.volume_labels, event)
                if not np.array_equal(lab.coords, vol.coords):
                    raise DataError("label sites differ from image sites", file=self.path, event=event,
                                    field=f"sparse3d_{self.volume_labels}")
                codes = _label_codes(lab.values, self.path, event, f"sparse3d_{self.volume_labels}/voxels")
                semantic3d = _from_spine(codes)
            voxels = SparseImage(vol.coords.astype(np.int32), vol.values, semantic3d,
                                 np.full(n, -1, np.int32), np.full(n, -1, np.int32), np.zeros(n, np.int8), vol.shape)
        return Event(planes, voxels, None, None, {"index": event, "format": "larcv3"})

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


def _from_spine(codes: np.ndarray) -> np.ndarray:
    """larcv/SPINE codes -> lartpcnet semantic; track -> MIP (larcv does not split HIP/MIP),
    low-energy and ghost -> -1."""
    table = np.full(max(int(codes.max(initial=0)) + 1, 6), -1, np.int8)
    table[[0, 1, 2, 3]] = [2, 1, 4, 3]  # shower, track, Michel, delta
    return table[codes]


def _is_label(name: str) -> bool:
    return any(hint in name.lower() for hint in ("seg", "label", "class"))


def _label_codes(values: np.ndarray, path: str, event: int, field: str) -> np.ndarray:
    codes = values.astype(np.int64)
    if values.size and (not np.array_equal(codes, values) or codes.min() < 0):
        raise DataError("label values must be non-negative integers", file=path, event=event, field=field)
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
    ids = np.ravel_multi_index(tuple(coords.astype(np.int64).T), tuple(int(v) for v in n)) if len(image) else \
        np.zeros(0, np.int64)
    return n, ids.astype(np.uint64)


class _ProductWriter:
    """Accumulates one sparse2d/sparse3d product and writes it as larcv3 lays it out."""

    def __init__(self, kind: str, producer: str, dim: int) -> None:
        self.kind, self.producer, self.dim = kind, producer, dim
        self.extents, self.metas, self.voxel_extents, self.voxels = [], [], [], []
        self.n_voxels = 0

    def add_event(self, images: list, values: list[np.ndarray]) -> None:
        self.extents.append((len(self.metas), len(images)))
        for projection, (image, vals) in enumerate(zip(images, values, strict=True)):
            n, ids = _larcv_ids(image)
            order = np.argsort(ids, kind="stable")  # larcv3 keeps voxel sets sorted by id
            self.metas.append((1, projection, n.astype(np.float64), n, np.zeros(self.dim)))
            self.voxel_extents.append((self.n_voxels, len(ids), projection))
            block = np.zeros(len(ids), VOXEL_DTYPE)
            block["id"], block["value"] = ids[order], np.asarray(vals, np.float32)[order]
            self.voxels.append(block)
            self.n_voxels += len(ids)

    def write(self, h5: h5py.File) -> None:
        group = h5.create_group(f"Data/{self.kind}_{self.producer}_group")
        group.create_dataset("extents", data=np.array(self.extents, EXTENT_DTYPE), maxshape=(None,),
                             chunks=True, track_times=False)
        group.create_dataset("image_meta", data=np.array(self.metas, _meta_dtype(self.dim)), maxshape=(None,),
                             chunks=True, track_times=False)
        group.create_dataset("voxel_extents", data=np.array(self.voxel_extents, ID_EXTENT_DTYPE),
                             maxshape=(None,), chunks=True, track_times=False)
        voxels = np.concatenate(self.voxels) if self.voxels else np.zeros(0, VOXEL_DTYPE)
        group.create_dataset("voxels", data=voxels, maxshape=(None,), chunks=True, compression="gzip",
                             track_times=False)


def write_larcv3(path: str | Path, events, image: str = "wire", semantic: str = "segment",
                 origin: str = "cosmicseg") -> int:
    """Writes events as larcv3 HDF5 (atomically): sparse2d/sparse3d ``image`` products with their
    labels as ``<image>_<semantic>`` (larcv/SPINE codes: shower 0, track 1, Michel 2, delta 3,
    ghost 5 for noise) and, for planes, ``<image>_<origin>`` (0 background, 1 cosmic, 2 neutrino).
    Returns the number of events."""
    from lartpcnet.data.labels import to_spine
    from lartpcnet.io_utils import atomic_path

    planes2d = _ProductWriter("sparse2d", image, 2)
    semantic2d = _ProductWriter("sparse2d", f"{image}_{semantic}", 2)
    origin2d = _ProductWriter("sparse2d", f"{image}_{origin}", 2)
    voxels3d = _ProductWriter("sparse3d", image, 3)
    semantic3d = _ProductWriter("sparse3d", f"{image}_{semantic}", 3)
    ids = []
    count = 0
    for count, event in enumerate(events, start=1):
        ids.append((0, 0, int(event.meta.get("index", count - 1))))

        def spine(img):
            return np.where(img.semantic >= 0, to_spine(np.maximum(img.semantic, 0)), SPINE_GHOST)

        if event.planes:
            planes2d.add_event(event.planes, [p.values for p in event.planes])
            semantic2d.add_event(event.planes, [spine(p) for p in event.planes])
            origin2d.add_event(event.planes, [p.origin for p in event.planes])
        if event.voxels is not None:
            voxels3d.add_event([event.voxels], [event.voxels.values])
            semantic3d.add_event([event.voxels], [spine(event.voxels)])
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("Events/event_id", data=np.array(ids, EVENT_ID_DTYPE), maxshape=(None,), chunks=True,
                          track_times=False)
        h5.create_group("Data")
        for product in (planes2d, semantic2d, origin2d, voxels3d, semantic3d):
            if product.extents:
                product.write(h5)
    return count
