"""Small good files of every format, and the bad files made from them, for the reader tests.

Each bad-input case is a function that damages a copy of a good file in one way, with the words
its one-line error must hold. ``python -m tests.badfiles`` prints the table of docs/reliability.md
(case | command | what the user sees) from the messages the readers give today.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from lartpcnet.data.event import INTERACTION_DTYPE, PARTICLE_DTYPE, Event, SparseImage
from lartpcnet.data.h5format import write_events
from lartpcnet.data.larcv3 import write_larcv3

FIXTURES = Path(__file__).parent / "fixtures"
SBND = FIXTURES / "sbnd_cosmic_tagging_5events.h5"
LARCV2 = FIXTURES / "larcv2_events.root"
PLANE_SHAPE = (64, 96)
VOXEL_SHAPE = (16, 16, 16)


def _image(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> SparseImage:
    keys = np.sort(rng.choice(int(np.prod(shape)), size=n, replace=False))
    coords = np.stack(np.unravel_index(keys, shape), 1).astype(np.int32)
    instance = rng.integers(-1, 4, n).astype(np.int32)
    labelled = instance >= 0
    return SparseImage(coords, rng.uniform(1, 100, n).astype(np.float32),
                       np.where(labelled, rng.integers(0, 5, n), -1).astype(np.int8), instance,
                       np.where(labelled, instance // 2, -1).astype(np.int32),
                       np.where(labelled, rng.integers(1, 3, n), 0).astype(np.int8), shape)


def make_events(count: int = 3, voxels: bool = True, seed: int = 0, empty: int | None = None) -> list[Event]:
    """``count`` small labelled events (3 planes, and voxels); event ``empty`` has no sites at all."""
    rng = np.random.default_rng(seed)
    events = []
    for i in range(count):
        n = 0 if i == empty else 40
        planes = [_image(rng, PLANE_SHAPE, n) for _ in range(3)]
        particles = np.zeros(2, PARTICLE_DTYPE)
        particles["id"], particles["pdg"], particles["process"] = [0, 1], [13, 2212], b"primary"
        interactions = np.zeros(1, INTERACTION_DTYPE)
        events.append(Event(planes, _image(rng, VOXEL_SHAPE, n) if voxels else None, particles, interactions,
                            {"index": i, "seed": seed, "kind": "test"}))
    return events


def good_lartpcnet(path: Path, **kwargs) -> Path:
    write_events(path, make_events(**kwargs), {"sample": "test", "geometry": "none", "seed": 0})
    return path


def good_larcv3(path: Path, **kwargs) -> Path:
    write_larcv3(path, make_events(**kwargs))
    return path


def ak_array(data):
    import awkward as ak

    return ak.Array(data)


def write_root(path: Path, trees: dict[str, dict]) -> Path:
    """A ROOT file of flat TTrees (uproot writes them; no ROOT needed)."""
    import uproot

    with uproot.recreate(path) as f:
        for name, branches in trees.items():
            f[name] = branches
    return path


def good_larcv2(path: Path, nan: bool = False, rows: int = 4, cols: int = 6) -> Path:
    """A larcv2-like image2d tree of 2 events x 2 images of 4 x 6 pixels (column-major), event 0
    image 1 empty (all zero), with the leaves Larcv2Events reads; ``nan``: one NaN pixel in event 1."""
    rng = np.random.default_rng(3)
    images = []
    for event in range(2):
        dense = [np.where(rng.random(24) < 0.3, rng.uniform(1, 50, 24), 0.0) for _ in range(2)]
        if event == 0:
            dense[1][:] = 0.0
        if nan and event == 1:
            dense[1][np.nonzero(dense[1])[0][0]] = np.nan
        images.append([d.astype(np.float32).tolist() for d in dense])
    branches = {"_image_v._img": ak_array(images), "_image_v._meta._row_count": ak_array([[rows, rows]] * 2),
                "_image_v._meta._col_count": ak_array([[cols, cols]] * 2)}
    return write_root(path, {"image2d_wire_tree": branches})


# --- editing helpers -----------------------------------------------------------------------------


def replace(path: Path, name: str, data) -> None:
    """Dataset ``name`` replaced by ``data`` (any shape and dtype)."""
    with h5py.File(path, "r+") as f:
        del f[name]
        f[name] = data


def edit(path: Path, name: str, index, value) -> None:
    with h5py.File(path, "r+") as f:
        f[name][index] = value


def edit_field(path: Path, name: str, index: int, field: str, value) -> None:
    """One field of one row of a compound dataset (a larcv3 table)."""
    with h5py.File(path, "r+") as f:
        row = f[name][index]
        row[field] = value
        f[name][index] = row


def retype_field(path: Path, name: str, field: str, dtype) -> None:
    """A compound dataset rewritten with ``field`` stored as ``dtype`` (same values)."""
    with h5py.File(path, "r+") as f:
        old = f[name][:]
        descr = [(n, dtype if n == field else old.dtype.fields[n][0]) for n in old.dtype.names]
        new = np.zeros(len(old), descr)
        for n in old.dtype.names:
            new[n] = old[n].astype(dtype) if n == field else old[n]
        del f[name]
        f[name] = new


def first_row(path: Path, image: str, event: int) -> int:
    """The first row of ``event`` in the image group ``image`` of a lartpcnet file."""
    with h5py.File(path) as f:
        return int(f[f"{image}/offsets"][event])


def larcv3_rows(path: Path, product: str, event: int, projection: int = 0) -> slice:
    """The voxel rows of one event's projection in a larcv3 sparse product."""
    with h5py.File(path) as f:
        group = f[f"Data/{product}_group"]
        meta_first = int(group["extents"][event]["first"])
        extent = group["voxel_extents"][meta_first + projection]
        return slice(int(extent["first"]), int(extent["first"]) + int(extent["N"]))


# --- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str  # what is wrong, as docs/reliability.md lists it
    kind: str  # the good file it starts from: lartpcnet, larcv3, sbnd, larcv2, none
    damage: Callable[[Path], None]  # makes the good file at the path bad
    expect: tuple[str, ...]  # words the one-line error holds (after the file name)


def _lart_semantic_value(value):
    return lambda p: edit(p, "planes/2/semantic", first_row(p, "planes/2", 1), value)


def _duplicate_pixel(path: Path) -> None:
    row = first_row(path, "planes/0", 1)
    with h5py.File(path, "r+") as f:
        f["planes/0/coords"][row + 1] = f["planes/0/coords"][row]


def _non_monotonic_offsets(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        offsets = f["planes/1/offsets"][:]
        f["planes/1/offsets"][2] = offsets[1] - 5


def _float_coords(value: float) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path) as f:
            coords = f["planes/2/coords"][:].astype(np.float64)
        coords[first_row(path, "planes/2", 1) + 3, 1] = value
        replace(path, "planes/2/coords", coords)
    return damage


def _strings(name: str, kind: str = "S") -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path) as f:
            data = f[name][:]
        text = np.array([str(v) for v in data.reshape(len(data), -1)[:, 0]])
        replace(path, name, text.astype("S12") if kind == "S" else text.astype(h5py.string_dtype()))
    return damage


def _one_d_coords(path: Path) -> None:
    with h5py.File(path) as f:
        coords = f["planes/0/coords"][:]
    replace(path, "planes/0/coords", coords[:, 0].copy())


def _cut_dataset(name: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path) as f:
            data = f[name][:]
        replace(path, name, data[:-7])
    return damage


def _swap(a: str, b: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            data_a, data_b = f[a][:], f[b][:]
            del f[a], f[b]
            f[a], f[b] = data_b, data_a
    return damage


def _attr(name: str, value, group: str = "/") -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            if value is None:
                del f[group].attrs[name]
            else:
                f[group].attrs[name] = value
    return damage


def _delete(name: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            del f[name]
    return damage


def _particle_nan(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        table = f["particles/table"][:]
        table["energy_init"][2] = np.inf
        f["particles/table"][:] = table


def _voxel(product: str, event: int, field: str, value, offset: int = 0) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        rows = larcv3_rows(path, product, event)
        edit_field(path, f"Data/{product}_group/voxels", rows.start + offset, field, value)
    return damage


def _duplicate_voxel(path: Path) -> None:
    rows = larcv3_rows(path, "sparse2d_wire", 1)
    with h5py.File(path, "r+") as f:
        voxels = f["Data/sparse2d_wire_group/voxels"]
        first = voxels[rows.start]
        second = voxels[rows.start + 1]
        second["id"] = first["id"]
        voxels[rows.start + 1] = second


def _float_voxel_ids(path: Path) -> None:
    retype_field(path, "Data/sparse2d_wire_group/voxels", "id", np.float64)
    rows = larcv3_rows(path, "sparse2d_wire", 1)
    with h5py.File(path, "r+") as f:
        voxels = f["Data/sparse2d_wire_group/voxels"]
        row = voxels[rows.start]
        row["id"] += 0.5
        voxels[rows.start] = row


def _label_site_missing(path: Path) -> None:
    # the label product's projection 0 of event 1 loses its last site
    with h5py.File(path, "r+") as f:
        group = f["Data/sparse2d_wire_cosmicseg_group"]
        meta_first = int(group["extents"][1]["first"])
        extent = group["voxel_extents"][meta_first]
        extent["N"] -= 1
        group["voxel_extents"][meta_first] = extent


def _label_projection_missing(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        extents = f["Data/sparse2d_wire_instance_group/extents"]
        row = extents[0]
        row["N"] = 2
        extents[0] = row


def _extent_past_end(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        table = f["Data/sparse2d_wire_group/voxel_extents"]
        row = table[4]
        row["N"] = 10**6
        table[4] = row


def _zero_image_size(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        metas = f["Data/sparse2d_wire_group/image_meta"]
        row = metas[3]
        row["number_of_voxels"][0] = 0
        metas[3] = row


def _short_extents(path: Path) -> None:
    with h5py.File(path) as f:
        extents = f["Data/sparse2d_wire_group/extents"][:]
    replace(path, "Data/sparse2d_wire_group/extents", extents[:2])


def _spine_only(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """A larcv3 file with SPINE codes only (as other tools write it), then ``damage``."""
    def both(path: Path) -> None:
        _delete("Data/sparse2d_wire_semantic_group")(path)
        damage(path)
    return both


def _zero_header(name: str) -> Callable[[Path], None]:
    """Zeroes the first 32 bytes of the object header of ``name`` (a damaged group or dataset)."""
    def damage(path: Path) -> None:
        with h5py.File(path) as f:
            address = h5py.h5o.get_info(f[name].id).addr
        with path.open("r+b") as f:
            f.seek(address)
            f.write(bytes(32))
    return damage


def _not_hdf5(path: Path) -> None:
    path.write_bytes(b"run,subrun,event\n1,2,3\n")


def _other_layout(path: Path) -> None:
    path.unlink()
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((4, 8, 8), np.float32)


def _truncate(size: int) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(p.read_bytes()[:size])


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _sbnd_origin_code(path: Path) -> None:
    rows = larcv3_rows(path, "sparse2d_sbnd_cosmicseg", 0, 1)
    edit_field(path, "Data/sparse2d_sbnd_cosmicseg_group/voxels", rows.start + 3, "value", 3.0)


CASES = [
    # lartpcnet HDF5
    Case("not HDF5 at all", "lartpcnet", _not_hdf5, ("unrecognised format",)),
    Case("empty (0-byte) file", "lartpcnet", _empty_file, ("unrecognised format",)),
    Case("HDF5 file of another layout", "lartpcnet", _other_layout, ("unknown layout",)),
    Case("truncated file", "lartpcnet", _truncate(6000), ("corrupt or truncated HDF5 file",)),
    Case("schema version from the future", "lartpcnet", _attr("schema_version", 99), ("schema version 99",)),
    Case("'events' attribute missing", "lartpcnet", _attr("events", None), ("'events' attribute must be a count",)),
    Case("'events' attribute a string", "lartpcnet", _attr("events", "three"),
         ("'events' attribute must be a count", "three")),
    Case("missing dataset", "lartpcnet", _delete("planes/1/semantic"),
         ("field 'planes/1/semantic'", "missing dataset")),
    Case("missing group (particles)", "lartpcnet", _delete("particles"), ("field 'particles'", "missing group")),
    Case("values stored as strings", "lartpcnet", _strings("planes/0/values"),
         ("field 'planes/0/values'", "values stored as strings")),
    Case("values stored as variable-length strings", "lartpcnet", _strings("voxels/values", "O"),
         ("field 'voxels/values'", "where numbers belong")),
    Case("labels stored as strings", "lartpcnet", _strings("planes/1/origin"),
         ("field 'planes/1/origin'", "values stored as strings")),
    Case("1-D coordinates", "lartpcnet", _one_d_coords,
         ("field 'planes/0/coords'", "coordinates must be an (N, 2) array of (tick, wire), found shape (120,)")),
    Case("offsets that decrease", "lartpcnet", _non_monotonic_offsets,
         ("event 1: field 'planes/1/offsets'", "offsets must not decrease")),
    Case("offsets for fewer events than the file says", "lartpcnet", _attr("events", 5),
         ("field 'planes/0/offsets'", "offsets hold 3 events, the file's 'events' attribute says 5")),
    Case("offsets not starting at 0", "lartpcnet", lambda p: edit(p, "voxels/offsets", 0, 2),
         ("field 'voxels/offsets'", "offsets must start at 0, found 2")),
    Case("dataset shorter than its offsets", "lartpcnet", _cut_dataset("planes/2/instance"),
         ("field 'planes/2/instance'", "holds 113 rows, its offsets end at 120")),
    Case("non-integral coordinates", "lartpcnet", _float_coords(12.5),
         ("event 1: field 'planes/2/coords'", "coordinates must be integers, found 12.5")),
    Case("negative coordinates", "lartpcnet",
         lambda p: edit(p, "planes/0/coords", (first_row(p, "planes/0", 2), 0), -3),
         ("event 2: field 'planes/0/coords'", "coordinates outside the image shape (64, 96): -3 on axis 0")),
    Case("coordinates beyond the image shape", "lartpcnet",
         lambda p: edit(p, "voxels/coords", (first_row(p, "voxels", 0) + 5, 2), 16),
         ("event 0: field 'voxels/coords'", "outside the image shape (16, 16, 16): 16 on axis 2")),
    Case("duplicate coordinates", "lartpcnet", _duplicate_pixel,
         ("event 1: field 'planes/0/coords'", "duplicate coordinates", "listed 2 times")),
    Case("NaN value", "lartpcnet", lambda p: edit(p, "planes/1/values", first_row(p, "planes/1", 2) + 1, np.nan),
         ("event 2: field 'planes/1/values'", "NaN/inf values at 1 of 40 sites")),
    Case("inf value", "lartpcnet", lambda p: edit(p, "voxels/values", first_row(p, "voxels", 1), np.inf),
         ("event 1: field 'voxels/values'", "NaN/inf values")),
    Case("semantic code outside -1..4", "lartpcnet", _lart_semantic_value(7),
         ("event 1: field 'planes/2/semantic'", "semantic codes must be -1..4", "found 7")),
    Case("origin code outside 0..2", "lartpcnet",
         lambda p: edit(p, "planes/0/origin", first_row(p, "planes/0", 0) + 2, 3),
         ("event 0: field 'planes/0/origin'", "origin codes must be 0..2", "found 3")),
    Case("negative origin code", "lartpcnet", lambda p: edit(p, "voxels/origin", first_row(p, "voxels", 2), -1),
         ("event 2: field 'voxels/origin'", "origin codes must be 0..2", "found -1")),
    Case("particle id below -1", "lartpcnet", lambda p: edit(p, "planes/1/instance", first_row(p, "planes/1", 1), -4),
         ("event 1: field 'planes/1/instance'", "instance ids must be -1 or more", "found -4")),
    Case("image shape attribute invalid", "lartpcnet", _attr("shape", np.array([64, 0]), "planes/1"),
         ("field 'planes/1/shape'", "image shape (64, 0) is not a valid image size")),
    Case("image shape attribute of the wrong length", "lartpcnet", _attr("shape", np.array([16, 16]), "voxels"),
         ("field 'voxels/shape'", "image shape must be 3 sizes")),
    Case("particle and interaction tables swapped", "lartpcnet", _swap("particles/table", "interactions/table"),
         ("field 'particles/table'", "table lacks the columns")),
    Case("NaN/inf in the particle table", "lartpcnet", _particle_nan,
         ("event 1: field 'particles/table'", "NaN/inf in column 'energy_init'")),
    Case("event kinds stored as numbers", "lartpcnet", lambda p: replace(p, "events/kind", np.zeros(3, np.int64)),
         ("field 'events/kind'", "must hold 3 strings")),
    Case("plane groups misnamed", "lartpcnet", lambda p: _rename(p, "planes/2", "planes/7"),
         ("field 'planes'", "plane groups must be named 0..2")),
    Case("damaged dataset header", "lartpcnet", _zero_header("planes/1/semantic"),
         ("field 'planes/1/semantic'", "unreadable, the file is damaged")),
    # larcv3 (written by lartpcnet, and the real SBND file)
    Case("duplicate voxel ids", "larcv3", _duplicate_voxel,
         ("event 1: field '/Data/sparse2d_wire_group/voxels'", "duplicate voxel id")),
    Case("non-integral voxel ids", "larcv3", _float_voxel_ids,
         ("event 1: field '/Data/sparse2d_wire_group/voxels'", "voxel ids must be integers, found")),
    Case("voxel values stored as strings", "larcv3", lambda p: retype_field(p, "Data/sparse3d_wire_group/voxels",
                                                                           "value", "S8"),
         ("field '/Data/sparse3d_wire_group/voxels'", "'value': values stored as strings")),
    Case("SPINE segment code 6 or more", "larcv3", _spine_only(_voxel("sparse2d_wire_segment", 2, "value", 6.0)),
         ("event 2: field 'sparse2d_wire_segment/voxels'", "larcv/SPINE semantic codes must be 0..5", "found 6")),
    Case("lartpcnet semantic code out of range", "larcv3", _voxel("sparse3d_wire_semantic", 0, "value", 5.0),
         ("event 0: field 'sparse3d_wire_semantic/voxels'", "semantic codes must be -1..4", "found 5")),
    Case("origin code 3 (larcv3 written by lartpcnet)", "larcv3", _voxel("sparse2d_wire_cosmicseg", 0, "value", 3.0),
         ("event 0: field 'sparse2d_wire_cosmicseg/voxels'", "origin codes must be 0..2", "found 3")),
    Case("origin code 3 (the SBND file)", "sbnd", _sbnd_origin_code,
         ("event 0: field 'sparse2d_sbnd_cosmicseg/voxels'", "origin codes must be 0..2", "found 3")),
    Case("non-integral label value", "larcv3", _voxel("sparse2d_wire_instance", 1, "value", 2.5),
         ("event 1: field 'sparse2d_wire_instance/voxels'", "label values must be integer codes, found 2.5")),
    Case("label product missing a site", "larcv3", _label_site_missing,
         ("event 1: field 'sparse2d_wire_cosmicseg/voxels'", "label sites differ from image sites")),
    Case("label product with fewer projections", "larcv3", _label_projection_missing,
         ("event 0: field 'sparse2d_wire_instance'", "holds 2 projections, the image product 'wire' 3")),
    Case("damaged product group (was: the product silently ignored)", "larcv3",
         _zero_header("Data/sparse3d_wire_instance_group"),
         ("field '/Data/sparse3d_wire_instance_group'", "unreadable, the file is damaged")),
    Case("missing table", "larcv3", _delete("Data/sparse2d_wire_group/voxel_extents"),
         ("field '/Data/sparse2d_wire_group/voxel_extents'", "missing table")),
    Case("missing event table", "larcv3", _delete("Events/event_id"),
         ("field 'Events/event_id'", "cannot read the event table")),
    Case("extents shorter than the event table", "larcv3", _short_extents,
         ("field '/Data/sparse2d_wire_group/extents'", "extents hold 2 events, Events/event_id 3")),
    Case("extent past the end of the voxels", "larcv3", _extent_past_end,
         ("event 1: field '/Data/sparse2d_wire_group/voxels'", "past the end")),
    Case("image size 0 in image_meta", "larcv3", _zero_image_size,
         ("event 1: field '/Data/sparse2d_wire_group/image_meta'", "is not a valid image size")),
    Case("NaN voxel value", "larcv3", _voxel("sparse3d_wire", 2, "value", np.nan),
         ("event 2: field '/Data/sparse3d_wire_group/voxels'", "NaN/inf voxel values")),
    Case("voxel id beyond the image", "larcv3", _voxel("sparse2d_wire", 0, "id", 64 * 96 + 3),
         ("event 0: field '/Data/sparse2d_wire_group/voxels'", "outside the image of 6144 voxels")),
    Case("truncated larcv3 file", "sbnd", _truncate(500_000), ("corrupt or truncated HDF5 file",)),
    # larcv2 ROOT
    Case("truncated ROOT file", "larcv2", _truncate(3000), ("corrupt or truncated ROOT file",)),
    Case("ROOT file without larcv2 trees", "none", lambda p: write_root(p, {"events": {"x": np.arange(3.0)}}),
         ("no image2d_<producer>_tree (trees: events)",)),
    Case("image tree without the pixel branch", "none",
         lambda p: write_root(p, {"image2d_wire_tree": {"_image_v._id": ak_array([[0], [0]])}}),
         ("event 0: field 'image2d_wire_tree/_image_v._img'", "missing branch")),
    Case("NaN pixel (larcv2)", "none", lambda p: good_larcv2(p, nan=True),
         ("event 1: field 'image2d_wire_branch/_image_v._img'", "image 1 has NaN/inf pixels")),
    Case("pixel count differs from the image meta (larcv2)", "none", lambda p: good_larcv2(p, rows=5),
         ("event 0: field 'image2d_wire_branch/_image_v._img'", "image 0 holds 24 pixels, its meta says 5 x 6")),
]


def _rename(path: Path, old: str, new: str) -> None:
    with h5py.File(path, "r+") as f:
        f.move(old, new)


def build(case: Case, folder: Path) -> Path:
    """The bad file of ``case`` in ``folder``."""
    path = folder / {"lartpcnet": "events.h5", "larcv3": "larcv3.h5", "sbnd": "sbnd.h5", "larcv2": "larcv2.root",
                     "none": "made.root"}[case.kind]
    if case.kind == "lartpcnet":
        good_lartpcnet(path)
    elif case.kind == "larcv3":
        good_larcv3(path)
    elif case.kind == "sbnd":
        shutil.copy(SBND, path)
    elif case.kind == "larcv2":
        shutil.copy(LARCV2, path)
    case.damage(path)
    return path


def error_of(path: Path) -> str | None:
    """The one DataError of opening ``path`` and reading every event (None when it all reads)."""
    import lartpcnet.data as data
    from lartpcnet.errors import DataError

    try:
        with data.open(path) as reader:
            for i in range(len(reader)):
                reader[i]
    except DataError as err:
        return str(err)
    return None


def table() -> str:
    """docs/reliability.md's table: case | command | what the user sees."""
    import contextlib
    import io
    import tempfile

    from lartpcnet.cli import main

    lines = ["| case | command | what the user now sees |", "|---|---|---|"]
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            path = build(case, Path(tmp))
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                main(["info", str(path)])
            seen = err.getvalue().strip().replace(tmp + "/", "").replace("|", "\\|")
        lines.append(f"| {case.name} | `lartpcnet info {path.name}` | `{seen}` |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
