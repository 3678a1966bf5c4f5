"""Resumable jobs over numbered items, written in atomic parts, merged into one file.

Finished items go into ``OUT.parts/part-START-STOP.h5`` (items ``[START, STOP)``), each written
atomically, so a killed job loses at most the part in progress, and a rerun of the same job does
only the items no part holds. A part is closed after ``max_items`` items or ``max_seconds`` of
work, whichever comes first, so a slow job keeps its work every few minutes. ``job.json`` in the
parts folder records what the job is (its settings and the identity of its input and model), so
parts of a different job are never merged. The merged file depends only on the items, not on
where the parts were cut: a resumed job writes the same bytes as an uninterrupted one.

Part files are tables: every dataset of a part is concatenated across parts in the merged file,
and a dataset named ``GROUP/offsets`` (rows ``[offsets[i], offsets[i+1])`` of ``GROUP``'s other
datasets belong to entry ``i``) is rebased as it goes; any other dataset holds one row per entry.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from lartpcnet.errors import DataError
from lartpcnet.io_utils import atomic_path, atomic_write_text

_PART = re.compile(r"part-(\d{9})-(\d{9})\.h5")


class PartsJob:
    def __init__(self, out: str | Path, job: dict, items: int) -> None:
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".parts")
        self.items, self.job = items, job
        manifest = self.folder / "job.json"
        record = json.loads(json.dumps({**job, "items": items}))
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text())
            except ValueError:
                old = None
            if old != record and any(_PART.fullmatch(p.name) for p in self.folder.glob("part-*.h5")):
                raise DataError(f"holds parts of a different job ({_difference(old, record)}); to start over, "
                                f"remove {self.folder}", file=str(self.folder))
            if old != record:  # a job that failed before finishing any part: nothing to keep
                atomic_write_text(manifest, json.dumps(record))
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(manifest, json.dumps(record))
        for stale in self.folder.glob(".part-*"):  # what a kill during an atomic write leaves
            stale.unlink(missing_ok=True)

    def parts(self) -> list[tuple[int, int, Path]]:
        """The finished parts, (start, stop, path), in item order."""
        found = []
        for path in self.folder.glob("part-*.h5"):
            match = _PART.fullmatch(path.name)
            if match:
                found.append((int(match[1]), int(match[2]), path))
        return sorted(found)

    def todo(self) -> list[int]:
        done = np.zeros(self.items, bool)
        for start, stop, _ in self.parts():
            done[start:stop] = True
        return np.nonzero(~done)[0].tolist()

    def done_items(self) -> int:
        return self.items - len(self.todo())

    def part_path(self, start: int, stop: int) -> Path:
        return self.folder / f"part-{start:09d}-{stop:09d}.h5"

    def run(self, batches: Iterable[tuple[list[int], list[Any]]], write: Callable[[Path, list[int], list[Any]], None],
            max_items: int | None = None, max_seconds: float | None = None) -> None:
        """Writes the results of ``batches`` ((items, results) in item order, over ``todo()``) as
        parts of consecutive items, each closed after ``max_items`` items or ``max_seconds``."""
        max_items = max_items or math.inf
        max_seconds = math.inf if max_seconds is None else max_seconds
        items: list[int] = []
        results: list[Any] = []
        opened = time.monotonic()

        def flush() -> None:
            nonlocal items, results, opened
            if items:
                write(self.part_path(items[0], items[-1] + 1), items, results)
            items, results, opened = [], [], time.monotonic()

        for batch_items, batch_results in batches:
            for item, result in zip(batch_items, batch_results, strict=True):
                if items and item != items[-1] + 1:  # a finished part lies between: parts stay contiguous
                    flush()
                items.append(item)
                results.append(result)
                if len(items) >= max_items:
                    flush()
            if time.monotonic() - opened >= max_seconds:
                flush()
        flush()

    def merge(self, attrs: dict, empty: dict[str, np.ndarray],
              write: Callable[[Path, dict, dict[str, np.ndarray]], Any] | None = None) -> None:
        """Writes every part's tables, concatenated, to ``out`` with ``attrs`` (atomically), then
        removes the parts. ``empty``: the datasets of a job with no items; ``write(out, attrs,
        tables)``: how the file is written (default :func:`write_tables`; it must write atomically)."""
        parts = self.parts()
        covered = sum(stop - start for start, stop, _ in parts)
        if covered != self.items:
            raise DataError(f"parts cover {covered} of {self.items} items", file=str(self.folder))
        (write or write_tables)(self.out, attrs, merge_tables([read_tables(p) for _, _, p in parts]) if parts
                                else empty)
        self.cleanup()

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def chunked(items: list[int], size: int) -> Iterator[list[int]]:
    """``items`` in runs of at most ``size``, each run of consecutive items."""
    run: list[int] = []
    for item in items:
        if run and (len(run) == size or item != run[-1] + 1):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _difference(old: dict | None, new: dict) -> str:
    if not isinstance(old, dict):
        return "its job.json is unreadable"
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3])[:400]


def write_tables(path: str | Path, attrs: dict, tables: dict[str, np.ndarray]) -> None:
    """An HDF5 file of ``tables`` (name -> array; compressed) and ``attrs``, written atomically.

    The file is built in memory and written with a plain write: HDF5 on a full disk fails inside
    its C library and can take the process down (seen: a segfault on ENOSPC), where a plain write
    raises OSError, which the atomic write cleans up after and the CLI reports in one line."""
    with h5py.File(io.BytesIO(), "w", driver="fileobj", libver=("v110", "latest")) as f:
        for key in sorted(attrs):  # h5py reads them back in name order: a file rewritten from them is the same bytes
            f.attrs[key] = attrs[key]
        for name, values in tables.items():
            big = values.ndim > 0 and values.size > 1024 and not name.endswith("offsets")
            f.create_dataset(name, data=values, compression="gzip" if big else None, track_times=False)
        f.flush()
        image = f.id.get_file_image()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as out:
            out.write(image)
            out.flush()
            os.fsync(out.fileno())


def read_tables(path: str | Path) -> dict[str, np.ndarray]:
    tables: dict[str, np.ndarray] = {}

    def take(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            tables[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(take)
    return tables


def merge_tables(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenates the parts' tables; ``GROUP/offsets`` are shifted by the rows before them."""
    merged = {}
    for name in parts[0]:
        if name.endswith("offsets"):
            base, pieces = 0, [np.zeros(1, np.int64)]
            for part in parts:
                pieces.append(part[name][1:].astype(np.int64) + base)
                base += int(part[name][-1])
            merged[name] = np.concatenate(pieces)
        else:
            merged[name] = np.concatenate([part[name] for part in parts])
    return merged


def take_entries(tables: dict[str, np.ndarray], entries: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
    """The tables of ``entries`` (entry numbers, in the order wanted): each ``GROUP/offsets``
    group's rows gathered entry by entry and its offsets rebuilt, any other dataset indexed."""
    entries = np.asarray(entries, np.int64)
    groups: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # group -> (its rows to take, its new offsets)
    for name, values in tables.items():
        if name.endswith("offsets"):
            offsets = values.astype(np.int64)
            sizes = np.diff(offsets)[entries]
            new = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            rows = np.repeat(offsets[entries] - new[:-1], sizes) + np.arange(new[-1])
            groups[name.rpartition("/")[0]] = rows, new
    taken = {}
    for name, values in tables.items():
        group = name.rpartition("/")[0]
        if group in groups:
            rows, new = groups[group]
            taken[name] = new if name.endswith("offsets") else values[rows]
        else:
            taken[name] = values[entries]
    return taken
