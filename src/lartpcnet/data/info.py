"""``lartpcnet info``: what a data file holds, event by event."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lartpcnet.data as data
from lartpcnet.data.event import SparseImage
from lartpcnet.data.h5format import EventFile
from lartpcnet.data.larcv2 import Larcv2Events
from lartpcnet.data.larcv3 import Larcv3Events


def _label_counts(image: SparseImage, kind: str) -> dict[str, int]:
    codes = image.origin if kind == "origin" else image.semantic
    unique, counts = np.unique(codes, return_counts=True)
    return {str(int(u)): int(c) for u, c in zip(unique, counts, strict=True)}


def describe(path: str | Path) -> dict:
    """``{"format", "events", "products", "per_event": [{"planes": [...], "voxels": ...}]}``.

    Plane ``labels`` count the semantic codes (lartpcnet files; -1 marks noise pixels) or the
    origin codes (larcv3 cosmic-tagging files: 0 background, 1 cosmic, 2 neutrino).
    ``truth_labels`` lists the label fields the events carry (the reader's ``truth_labels``).
    """
    with data.open(path) as reader:
        truth = list(reader.truth_labels)
        if isinstance(reader, Larcv3Events):
            fmt, products, kind = "larcv3", sorted(reader.file.products), reader.label_kind
            has_labels = reader.labels is not None
            extra = {"image_product": reader.image, "label_product": reader.labels, "label_kind": kind}
        elif isinstance(reader, Larcv2Events):
            fmt, products, kind, has_labels = "larcv2", reader.products, None, False
            extra = {"image_product": reader.image, "particle_product": reader.particle}
        else:
            assert isinstance(reader, EventFile)
            fmt, kind, has_labels = "lartpcnet", "semantic", "semantic" in truth
            products = [f"planes/{k}" for k in range(reader.n_planes)] + (["voxels"] if reader.has_voxels else []) + \
                ["particles", "interactions"]
            extra = {"sample": reader.attrs.get("sample"), "geometry": reader.attrs.get("geometry"),
                     "seed": reader.attrs.get("seed"), "schema_version": int(reader.attrs["schema_version"])}
        per_event = []
        for i in range(len(reader)):
            event = reader[i]
            planes = []
            for k, plane in enumerate(event.planes):
                entry = {"projection": k, "shape": list(plane.shape), "active": len(plane)}
                if has_labels:
                    entry["labels"] = _label_counts(plane, kind)
                planes.append(entry)
            voxels = None if event.voxels is None else len(event.voxels)
            row = {"planes": planes, "voxels": voxels}
            if event.voxels is not None:
                row["voxel_labels"] = _label_counts(event.voxels, "semantic")
            if event.meta.get("kind"):
                row["kind"] = event.meta["kind"]
            if fmt == "larcv2" and event.particles is not None:
                row["particles"] = len(event.particles)
            per_event.append(row)
        return {"format": fmt, "file": str(path), "events": len(reader), "products": products,
                "label_kind": kind if has_labels else None, "truth_labels": truth, **extra, "per_event": per_event}


def format_description(desc: dict) -> str:
    """A short human-readable table of ``describe``'s result."""
    lines = [f"{desc['file']}: {desc['format']}, {desc['events']} events",
             "products: " + ", ".join(desc["products"])]
    if desc.get("label_kind"):
        lines.append(f"labels: {desc['label_kind']} codes")
    lines.append("truth: " + (", ".join(desc["truth_labels"]) or "none (the events carry no labels)"))
    for i, event in enumerate(desc["per_event"]):
        parts = [event["kind"]] if event.get("kind") else []
        for plane in event["planes"]:
            text = f"plane {plane['projection']} {plane['shape'][0]}x{plane['shape'][1]}: {plane['active']} active"
            if "labels" in plane:
                text += " (" + ", ".join(f"{k}: {v}" for k, v in plane["labels"].items()) + ")"
            parts.append(text)
        if event["voxels"] is not None:
            parts.append(f"{event['voxels']} voxels")
        lines.append(f"event {i}: " + "; ".join(parts))
    return "\n".join(lines)
