"""Resumable jobs over numbered items, written in atomic parts.

Items ``[k * size, (k + 1) * size)`` go into ``OUT.parts/part-k.h5``, each written atomically, so
a killed job loses at most the parts in progress and a rerun of the same job skips the finished
ones. ``job.json`` in the parts folder guards against resuming with different settings.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lartpcnet.errors import DataError
from lartpcnet.io_utils import atomic_write_text


class PartsJob:
    def __init__(self, out: str | Path, job: dict, items: int, part_size: int) -> None:
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".parts")
        self.items, self.part_size = items, part_size
        self.job = job
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "job.json"
        record = {**job, "items": items, "part_size": part_size}
        if manifest.exists():
            if json.loads(manifest.read_text()) != json.loads(json.dumps(record)):
                raise DataError("holds parts of a different job (its settings differ); remove it or choose "
                                "another --out", file=str(self.folder))
        else:
            atomic_write_text(manifest, json.dumps(record))

    @property
    def n_parts(self) -> int:
        return (self.items + self.part_size - 1) // self.part_size

    def path(self, part: int) -> Path:
        return self.folder / f"part-{part:05d}.h5"

    def items_of(self, part: int) -> range:
        return range(part * self.part_size, min(self.items, (part + 1) * self.part_size))

    def missing(self) -> list[int]:
        return [k for k in range(self.n_parts) if not self.path(k).exists()]

    def done_items(self) -> int:
        missing = set(self.missing())
        return sum(len(self.items_of(k)) for k in range(self.n_parts) if k not in missing)

    def cleanup(self) -> None:
        shutil.rmtree(self.folder)
