"""Predictions as larcv3 products: ``lartpcnet predict --format larcv3``.

The file is the input as ``lartpcnet convert --to larcv3`` writes it (the image products under
the input's image producer name, ``wire`` for lartpcnet and simulated files, and the truth labels
it carries), for the events of the job (all of them, or a shard's), plus the prediction products
beside the image ``<image>`` the network read (``sparse2d`` for wire planes, ``sparse3d`` for
voxels), for every task alike:

- ``<image>_pred``: the predicted class of each site the network labelled, as the value (the
  class's index in the model's classes: for the 5-class segmentation 0 HIP, 1 MIP, 2 shower,
  3 delta, 4 Michel, lartpcnet's semantic codes; for the cosmic tagger 0 background, 1 cosmic,
  2 neutrino, the origin codes; the dense MicroBooNE network 0 background, 1 track, 2 shower);
- ``<image>_score_<class>``: that class's probability at the same sites, one product per class
  (class names in lower case: ``wire_score_shower``, ``sbndwire_score_neutrino``);
- instance models: ``<image>_pred_instance``, the detection that claims each site (-1 none),
  and ``<image>_score``, its score, since their scores are one per site, not one per class.

Prediction products have as many projections as the image: a single-plane model fills its
plane's and leaves the others empty, the multi-plane tagger fills one per plane. Their sites are
those the network labelled (the image's sites inside the model's ADC window; every pixel for a
dense network), at the network's resolution: the tagger's 50 % images have half the voxels per
axis in ``number_of_voxels`` and the image's ``image_sizes``, so a voxel covers the same ground.
``Events/event_id`` holds (0, 0, the event's position in the input), as ``events/index`` of the
default prediction file does. The root attribute ``lartpcnet_predictions`` (JSON) records what the
default file's attributes do (task, classes, model and its sha256, settings, the job) and the
products' names; larcv3 does not read it. :func:`read` reads a file back into per-event sites,
labels and scores, equal to the default prediction file's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from lartpcnet.data.larcv3 import Larcv3File, Projection, write_larcv3
from lartpcnet.errors import DataError
from lartpcnet.tasks import Output

FORMAT = "lartpcnet-larcv3-predictions"
VERSION = 1
ATTRIBUTE = "lartpcnet_predictions"  # the root attribute that records the job and the products
DEFAULT_PRODUCER = "wire"  # the image producer of inputs that name none (lartpcnet files), as convert writes


def _class_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "class"


def product_names(image: str, classes: list[str] | tuple[str, ...], per_class: bool, instance: bool) -> dict:
    """The producer names of the predictions beside image producer ``image``: ``label``,
    ``scores`` (one per class when ``per_class``, else one), ``instance`` (or None)."""
    scores = [f"{image}_score_{_class_name(c)}" for c in classes] if per_class else [f"{image}_score"]
    if len(set(scores)) != len(scores):
        raise ValueError(f"class names {list(classes)} give the same product name twice")
    return {"label": f"{image}_pred", "scores": scores, "instance": f"{image}_pred_instance" if instance else None}


def write(out: str | Path, input_path: str | Path, tables: dict[str, np.ndarray], attrs: dict) -> int:
    """Writes ``tables`` (a prediction file's, :mod:`lartpcnet.predictions`) with ``attrs`` (its
    attributes) as larcv3 beside the images of their events in ``input_path`` (atomically);
    returns the number of events."""
    import lartpcnet.data as data

    classes = json.loads(attrs["classes"])
    image = str(attrs["image"])
    factor = int(attrs.get("downsample", 1))
    index, offsets = tables["events/index"].astype(np.int64), tables["sites/offsets"].astype(np.int64)
    coords, label, scores = tables["sites/coords"], tables["sites/label"], tables["sites/scores"]
    instance = tables.get("sites/instance")
    per_class = scores.shape[1] == len(classes)
    voxels = image == "voxels"
    kind = "sparse3d" if voxels else "sparse2d"
    with data.open(input_path) as reader:
        plane_name = getattr(reader, "image", None) or DEFAULT_PRODUCER
        volume_name = getattr(reader, "volume", None) or plane_name
        producer = volume_name if voxels else plane_name
        names = product_names(producer, classes, per_class, instance is not None)
        record = {key: (json.loads(value) if key in ("classes", "job") else value) for key, value in attrs.items()}
        record.update(format=FORMAT, version=VERSION, producer=producer, kind=kind, products=names)

        def events():
            for i in index:
                event = reader[int(i)]
                yield replace(event, meta={**event.meta, "index": int(i)})  # the position in the input

        def extra(position: int, event) -> dict[tuple[str, str], list[Projection]]:
            lo, hi = offsets[position], offsets[position + 1]
            columns = {names["label"]: label[lo:hi].astype(np.float32),
                       **{name: scores[lo:hi, k].astype(np.float32) for k, name in enumerate(names["scores"])}}
            if instance is not None:
                columns[names["instance"]] = instance[lo:hi].astype(np.float32)
            return {(kind, name): _projections(event, image, factor, coords[lo:hi], values, str(input_path),
                                               int(index[position]))
                    for name, values in columns.items()}

        return write_larcv3(out, events(), image=plane_name, volume=volume_name, extra=extra,
                            attrs={ATTRIBUTE: json.dumps(record)})


def _projections(event, image: str, factor: int, coords: np.ndarray, values: np.ndarray, where: str,
                 index: int) -> list[Projection]:
    """One product's projections for one event: as many as the image has, the sites in theirs."""
    if image == "voxels":
        if event.voxels is None:
            raise DataError("has no voxels to write predictions beside", file=where, event=index)
        return [Projection(tuple(event.voxels.shape), coords, values)]
    if image == "planes":  # (plane, row, column), every plane
        plane_of, coords = coords[:, 0], coords[:, 1:]
    else:  # "plane K"
        plane_of = np.full(len(coords), int(image.split()[1]))
    out = []
    for p, plane in enumerate(event.planes):
        mine = plane_of == p
        shape = tuple(int(s) // factor for s in plane.shape)
        sizes = tuple(float(s) for s in plane.shape) if factor > 1 else None
        out.append(Projection(shape, coords[mine], values[mine], sizes))
    if len(plane_of) and plane_of.max() >= len(event.planes):
        raise DataError(f"predictions for plane {int(plane_of.max())} of an event with {len(event.planes)} planes",
                        file=where, event=index)
    return out


def header(path: str | Path) -> dict:
    """The record of a larcv3 prediction file (task, classes, image, model, settings, job,
    producer, products); a one-line DataError for a larcv3 file without predictions."""
    with Larcv3File(path) as f:
        attrs = f.attributes()
    text = attrs.get(ATTRIBUTE)
    try:
        record = json.loads(text) if text is not None else None
    except ValueError as err:
        raise DataError(f"holds a damaged {ATTRIBUTE} record ({err})", file=str(path), field=ATTRIBUTE) from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise DataError("is not a larcv3 file of lartpcnet predictions (lartpcnet predict --format larcv3)",
                        file=str(path), field=ATTRIBUTE)
    if int(record.get("version", 1)) > VERSION:
        raise DataError(f"was written by a newer lartpcnet (version {record['version']}); upgrade, or regenerate "
                        "it with this one's lartpcnet predict", file=str(path), field=ATTRIBUTE)
    return record


def read(path: str | Path) -> dict:
    """A larcv3 prediction file read back with lartpcnet's larcv3 reader: its record
    (:func:`header`) and ``events``, one dict per event in file order with ``index`` (its
    position in the input), ``coords`` (as the default prediction file stores them: (row,
    column) of the plane, (plane, row, column) for every plane, (x, y, z) of voxels), ``label``,
    ``scores`` (sites x classes, float32; one column for instance models) and, for instance
    models, ``instance``. Sites come in larcv3's order (plane by plane, by voxel id)."""
    record = header(path)
    names, kind, image = record["products"], record["kind"], record["image"]
    with Larcv3File(path) as f:
        numbers = f.event_ids()["event"].astype(np.int64)
        events = []
        for e in range(len(f)):
            coords, label = _sites(f, kind, image, names["label"], e)
            columns = [*names["scores"], *([names["instance"]] if names.get("instance") else [])]
            values = []
            for name in columns:
                where, column = _sites(f, kind, image, name, e)
                if not np.array_equal(where, coords):
                    raise DataError("its sites differ from the predicted labels' sites", file=str(path), event=e,
                                    field=f"{kind}_{name}")
                values.append(column)
            event = {"index": int(numbers[e]), "coords": coords.astype(np.int32),
                     "label": _codes(label, path, e).astype(np.int8),
                     "scores": np.stack(values[:len(names["scores"])], 1).astype(np.float32)}
            if names.get("instance"):
                event["instance"] = _codes(values[-1], path, e).astype(np.int32)
            events.append(event)
    return {**record, "events": events}


def _sites(f: Larcv3File, kind: str, image: str, name: str, event: int) -> tuple[np.ndarray, np.ndarray]:
    """(coords, values) of one product in one event, in the default file's layout: (x, y, z) of
    voxels, (plane, row, column) of every plane, or (row, column) of plane K."""
    if kind == "sparse3d":
        volume = f.sparse3d(name, event)
        return volume.coords, volume.values
    planes = f.sparse2d(name, event)
    if image == "planes":
        if not planes:
            return np.zeros((0, 3), np.int64), np.zeros(0, np.float32)
        coords = np.concatenate([np.column_stack([np.full(len(p.coords), k, np.int64), p.coords])
                                 for k, p in enumerate(planes)])
        return coords, np.concatenate([p.values for p in planes])
    k = int(image.split()[1])
    if k >= len(planes):
        raise DataError(f"holds {len(planes)} projections, no plane {k}", file=f.path, event=event,
                        field=f"{kind}_{name}")
    return planes[k].coords, planes[k].values


def outputs(path: str | Path) -> Iterator[tuple[int, Output]]:
    """Every event of a larcv3 prediction file with its coords and labels (as
    ``predictions.outputs`` gives them for the default file)."""
    for event in read(path)["events"]:
        yield event["index"], Output(event["coords"], np.zeros((len(event["label"]), 0), np.float32), event["label"])


def _codes(values: np.ndarray, path, event: int) -> np.ndarray:
    codes = np.round(values)
    if not np.array_equal(codes, values):
        raise DataError("predicted labels and instance ids must be integers", file=str(path), event=event)
    return codes.astype(np.int64)
