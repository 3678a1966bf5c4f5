"""``lartpcnet simulate``: many events, several workers, resumable after a kill.

Events are written in parts of ``part_size`` events to ``OUT.parts/``, each part atomically, so a
killed job loses at most the parts in progress and a rerun of the same command skips finished
parts. When every part exists they are merged into OUT (atomically) and the parts removed. Event i
depends only on (seed, i), so the output is byte-identical whatever the worker count or part size.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from pathlib import Path

from tqdm import tqdm

from lartpcnet.data.h5format import EventFile, EventWriter
from lartpcnet.errors import DataError
from lartpcnet.io_utils import atomic_write_text
from lartpcnet.sim.samples import SampleConfig, generate_event, load_sample

_CONFIG: SampleConfig | None = None
_SEED = 0


def _init(config_json: str, seed: int) -> None:
    global _CONFIG, _SEED
    _CONFIG = SampleConfig.model_validate_json(config_json)
    _SEED = seed


def _one(index: int):
    assert _CONFIG is not None
    return generate_event(_CONFIG, _SEED, index)


def simulate(sample: str, events: int, seed: int, out: str | Path, workers: int = 1, part_size: int = 100,
             progress: bool = True) -> dict:
    """Simulates ``events`` events of ``sample`` into ``out``; returns a summary."""
    if events < 1:
        raise ValueError(f"--events must be at least 1, got {events}")
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    config = load_sample(sample)
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    job = {"sample": config.model_dump(mode="json"), "events": events, "seed": seed, "part_size": part_size}
    parts.mkdir(parents=True, exist_ok=True)
    manifest = parts / "job.json"
    if manifest.exists():
        if json.loads(manifest.read_text()) != job:
            raise DataError("holds parts of a different job (sample, events, seed or part size differ); "
                            "remove it or choose another --out", file=str(parts))
    else:
        atomic_write_text(manifest, json.dumps(job))
    attrs = {"sample": config.name, "geometry": config.geometry, "seed": seed,
             "config": json.dumps(config.model_dump(mode="json"), sort_keys=True)}
    n_parts = (events + part_size - 1) // part_size
    todo = [k for k in range(n_parts) if not (parts / f"part-{k:05d}.h5").exists()]
    done_events = sum(min(part_size, events - k * part_size) for k in range(n_parts) if k not in todo)
    start = time.perf_counter()
    bar = tqdm(total=events, initial=done_events, desc=f"simulate {config.name}", unit="event", disable=not progress)
    context = multiprocessing.get_context("fork") if workers > 1 else None
    pool = context.Pool(workers, _init, (config.model_dump_json(), seed)) if context else None
    if pool is None:
        _init(config.model_dump_json(), seed)
    try:
        for k in todo:
            indices = range(k * part_size, min(events, (k + 1) * part_size))
            results = pool.imap(_one, indices, chunksize=4) if pool else map(_one, indices)
            with EventWriter(parts / f"part-{k:05d}.h5", attrs) as writer:
                for event in results:
                    writer.append([event])
                    bar.update(1)
    finally:
        if pool is not None:
            pool.terminate()
        bar.close()
    elapsed = time.perf_counter() - start
    with EventWriter(out, attrs) as writer:
        for k in range(n_parts):
            with EventFile(parts / f"part-{k:05d}.h5") as part:
                for event in part:
                    writer.append([event])
    shutil.rmtree(parts)
    generated = events - done_events
    return {"file": str(out), "sample": config.name, "events": events, "seed": seed, "workers": workers,
            "generated": generated, "resumed_events": done_events, "seconds": round(elapsed, 3),
            "events_per_second": round(generated / elapsed, 3) if elapsed > 0 and generated else None}
