"""``lartpcnet info``: what a data file holds, event by event."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lartpcnet.data.larcv3 import Larcv3File, is_larcv3
from lartpcnet.errors import DataError

LABEL_HINTS = ("seg", "label", "class")


def _is_label_producer(name: str) -> bool:
    return any(hint in name.lower() for hint in LABEL_HINTS)


def _label_counts(values: np.ndarray, path: str, event: int, field: str) -> dict[str, int]:
    codes = values.astype(np.int64)
    if values.size and (not np.array_equal(codes, values) or codes.min() < 0):
        raise DataError("label values must be non-negative integers", file=path, event=event, field=field)
    unique, counts = np.unique(codes, return_counts=True)
    return {str(int(u)): int(c) for u, c in zip(unique, counts, strict=True)}


def describe(path: str | Path) -> dict:
    """``{"format", "events", "products", "per_event": [{"planes": [...], "voxels": ...}]}``."""
    path = str(path)
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file")
    if Path(path).is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a data file")
    if not is_larcv3(path):
        raise DataError("unrecognised format (supported: larcv3 HDF5)", file=path)
    with Larcv3File(path) as f:
        images = [p for p in f.producers("sparse2d") if not _is_label_producer(p)]
        labels = [p for p in f.producers("sparse2d") if _is_label_producer(p)]
        volumes = f.producers("sparse3d")
        per_event = []
        for event in range(len(f)):
            entry: dict = {"planes": [], "voxels": None}
            if images:
                planes = f.sparse2d(images[0], event)
                label_planes = f.sparse2d(labels[0], event) if labels else [None] * len(planes)
                for plane, label in zip(planes, label_planes, strict=True):
                    info = {"projection": plane.projection, "shape": list(plane.shape), "active": len(plane.values)}
                    if label is not None:
                        field = f"sparse2d_{labels[0]}/voxels"
                        info["labels"] = _label_counts(label.values, path, event, field)
                    entry["planes"].append(info)
            if volumes:
                entry["voxels"] = len(f.sparse3d(volumes[0], event).values)
            per_event.append(entry)
        return {
            "format": "larcv3",
            "file": path,
            "events": len(f),
            "products": sorted(f.products),
            "image_product": images[0] if images else None,
            "label_product": labels[0] if labels else None,
            "per_event": per_event,
        }


def format_description(desc: dict) -> str:
    """A short human-readable table of ``describe``'s result."""
    lines = [f"{desc['file']}: {desc['format']}, {desc['events']} events",
             "products: " + ", ".join(desc["products"])]
    for i, event in enumerate(desc["per_event"]):
        parts = []
        for plane in event["planes"]:
            text = f"plane {plane['projection']} {plane['shape'][0]}x{plane['shape'][1]}: {plane['active']} active"
            if "labels" in plane:
                text += " (" + ", ".join(f"{k}: {v}" for k, v in plane["labels"].items()) + ")"
            parts.append(text)
        if event["voxels"] is not None:
            parts.append(f"{event['voxels']} voxels")
        lines.append(f"event {i}: " + "; ".join(parts))
    return "\n".join(lines)
