"""Reader for larcv2 ROOT files (DeepLearnPhysics larcv2), through uproot: no ROOT needed.

Products: ``image2d_<producer>_tree`` (larcv::EventImage2D: dense images, one per plane) and
``particle_<producer>_tree`` (larcv::EventParticle). Members are found by their leaf names
(``_image_v._img``, ``_part_v._pdg``, ...), whatever the class grouping above them.

An Image2D stores its pixels column-major: ``index = col * rows + row`` (larcv::ImageMeta),
so the flat ``_img`` vector reshapes to (cols, rows). lartpcnet presents it as (row, col);
zero pixels are not active sites. A dense image lists each pixel once, so duplicate coordinates
cannot occur; larcv2's image2d carries no labels (``truth_labels`` is empty).

A damaged file is a one-line DataError naming the file (and event): opening checks the trees,
reading an event checks each image's size against its meta and refuses NaN/inf or non-numeric
pixels; any other uproot/numpy error of a damaged file is turned into a DataError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lartpcnet.data import first_line, reading
from lartpcnet.data.event import PARTICLE_DTYPE, Event, SparseImage, checked_image, dtype_problem
from lartpcnet.errors import DataError


def _uproot_errors() -> tuple[type[BaseException], ...]:
    import uproot

    return (uproot.DeserializationError,)

_PARTICLE_FIELDS = {  # ours <- larcv2 leaf
    "id": "_part_v._trackid", "parent": "_part_v._parent_trackid", "pdg": "_part_v._pdg",
    "energy_init": "_part_v._energy_init", "energy_deposit": "_part_v._energy_deposit",
    "px": "_part_v._px", "py": "_part_v._py", "pz": "_part_v._pz", "process": "_part_v._process",
}


class Larcv2Events:
    """Lazy per-event access to a larcv2 ROOT file as lartpcnet Events."""

    def __init__(self, path: str | Path, image: str | None = None, particles: str | None = None) -> None:
        import uproot

        self.path = str(path)
        try:
            self._root = uproot.open(self.path)
            names = [k.split(";")[0] for k in self._root.keys(recursive=False)]
        except Exception as err:  # uproot raises many types for a damaged file
            raise DataError(f"corrupt or truncated ROOT file ({first_line(err)})", file=self.path) from err
        try:
            with reading(self.path, extra=_uproot_errors()):
                self._open(names, image, particles)
        except BaseException:
            self._root.close()
            raise

    def _open(self, names: list[str], image: str | None, particles: str | None) -> None:
        self.products = sorted(n[: -len("_tree")] for n in names if n.endswith("_tree"))
        images = [p[len("image2d_"):] for p in self.products if p.startswith("image2d_")]
        tables = [p[len("particle_"):] for p in self.products if p.startswith("particle_")]
        self.image = image or (images[0] if images else None)
        self.particle = particles or (tables[0] if tables else None)
        if self.image is None:
            raise DataError(f"no image2d_<producer>_tree (trees: {', '.join(names) or 'none'})"[:300], file=self.path)
        self._images = self._root[f"image2d_{self.image}_tree"]
        self._particles = self._root[f"particle_{self.particle}_tree"] if self.particle else None
        for tree in (self._images, self._particles):
            if tree is not None and not hasattr(tree, "num_entries"):
                raise DataError(f"is a {type(tree).__name__}, not a TTree", file=self.path, field=tree.name)
        self._events = int(self._images.num_entries)
        if self._particles is not None and int(self._particles.num_entries) < self._events:
            raise DataError(f"holds {self._particles.num_entries} entries, the image tree {self._events}",
                            file=self.path, field=self._particles.name)

    truth_labels: tuple[str, ...] = ()  # larcv2 image2d products carry no labels

    def __len__(self) -> int:
        return self._events

    def close(self) -> None:
        self._root.close()

    def __enter__(self) -> Larcv2Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _leaf(tree, leaf: str) -> str | None:
        for key in tree.keys(recursive=True):
            if key == leaf or key.endswith("/" + leaf):
                return key
        return None

    def _read(self, tree, leaves: list[str], event: int, required: bool = True) -> dict:
        keys = {}
        for leaf in leaves:
            key = self._leaf(tree, leaf)
            if key is None:
                if required:
                    raise DataError("missing branch", file=self.path, event=event, field=f"{tree.name}/{leaf}")
                continue
            keys[leaf] = key
        try:
            arrays = tree.arrays(list(keys.values()), entry_start=event, entry_stop=event + 1, library="np")
        except Exception as err:  # uproot raises many types for a damaged basket
            raise DataError(f"unreadable ({first_line(err)})", file=self.path, event=event, field=tree.name) from err
        return {leaf: arrays[key][0] for leaf, key in keys.items()}

    def planes(self, event: int) -> list[SparseImage]:
        if not 0 <= event < len(self):
            raise DataError(f"event index out of range: the file has {len(self)} events", file=self.path, event=event)
        data = self._read(self._images, ["_image_v._img", "_image_v._meta._row_count",
                                         "_image_v._meta._col_count"], event)
        planes = []
        field = f"image2d_{self.image}_branch/_image_v._img"
        for k, (pixels, rows, cols) in enumerate(zip(data["_image_v._img"], data["_image_v._meta._row_count"],
                                                     data["_image_v._meta._col_count"], strict=True)):
            pixels = np.asarray(pixels)
            problem = dtype_problem(pixels.dtype)
            if problem:
                raise DataError(f"image {k}: {problem}", file=self.path, event=event, field=field)
            flat = pixels.astype(np.float32)
            rows, cols = int(rows), int(cols)
            if rows < 1 or cols < 1 or flat.size != rows * cols:
                raise DataError(f"image {k} holds {flat.size} pixels, its meta says {rows} x {cols}",
                                file=self.path, event=event, field=field)
            if not np.isfinite(flat).all():
                raise DataError(f"image {k} has NaN/inf pixels", file=self.path, event=event, field=field)
            image = flat.reshape(cols, rows).T  # column-major storage
            coords = np.argwhere(image != 0)
            planes.append(checked_image(coords, image[coords[:, 0], coords[:, 1]], (rows, cols), {},
                                        {"coords": field, "values": field}, self.path, event))
        return planes

    def particles(self, event: int) -> np.ndarray | None:
        if self._particles is None:
            return None
        data = self._read(self._particles, list(_PARTICLE_FIELDS.values()), event, required=False)
        if "_part_v._pdg" not in data:
            raise DataError("missing", file=self.path, event=event, field=f"particle_{self.particle}/_part_v._pdg")
        n = len(data["_part_v._pdg"])
        table = np.zeros(n, dtype=PARTICLE_DTYPE)
        table["parent"] = -1
        for ours, leaf in _PARTICLE_FIELDS.items():
            if leaf in data:
                values = data[leaf]
                table[ours] = [v.encode() for v in values] if ours == "process" else np.asarray(values)
        return table

    def __getitem__(self, event: int) -> Event:
        if event < 0:
            event += len(self)
        with reading(self.path, event, extra=_uproot_errors()):
            return Event(self.planes(event), None, self.particles(event), None, {"index": event, "format": "larcv2"})

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]
