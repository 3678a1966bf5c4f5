"""``lartpcnet simulate``: many events, several workers, resumable after a kill.

Events are written in resumable parts (lartpcnet.parts); when every part exists they are merged
into OUT (atomically) and the parts removed. Event i depends only on (seed, i), so the output is
byte-identical whatever the worker count or part size.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from pathlib import Path

from tqdm import tqdm

from lartpcnet.data.h5format import EventFile, EventWriter
from lartpcnet.errors import UserError
from lartpcnet.parts import PartsJob, chunked
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


def _part_bytes(job: PartsJob) -> int:
    """The size of the largest finished part (what the next one will about need), 64 MB before any."""
    return max((path.stat().st_size for _, _, path in job.parts()), default=64 << 20)


def _check_space(out: Path, needed: int) -> None:
    """HDF5 on a full disk fails inside its C library and can take the process down: stop first,
    with the finished parts kept for a resume."""
    free = shutil.disk_usage(out.resolve().parent).free
    if free < needed:
        raise UserError(f"{out}: no space left on the device ({free >> 20} MB free, about {needed >> 20} MB needed); "
                        f"the finished parts stay in {out.name}.parts for a resume once there is room")


def simulate(sample: str, events: int, seed: int, out: str | Path, workers: int = 1, part_size: int = 100,
             progress: bool = True) -> dict:
    """Simulates ``events`` events of ``sample`` into ``out``; returns a summary."""
    if events < 1:
        raise UserError(f"--events must be at least 1, got {events}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    config = load_sample(sample)
    out = Path(out)
    job = PartsJob(out, {"sample": config.model_dump(mode="json"), "events": events, "seed": seed}, events)
    attrs = {"sample": config.name, "geometry": config.geometry, "seed": seed,
             "config": json.dumps(config.model_dump(mode="json"), sort_keys=True)}
    todo = job.todo()
    done_events = events - len(todo)
    start = time.perf_counter()
    bar = tqdm(total=events, initial=done_events, desc=f"simulate {config.name}", unit="event", disable=not progress)
    context = multiprocessing.get_context("fork") if workers > 1 else None
    pool = context.Pool(workers, _init, (config.model_dump_json(), seed)) if context else None
    if pool is None:
        _init(config.model_dump_json(), seed)
    try:
        for run in chunked(todo, part_size):
            _check_space(out, _part_bytes(job) * 2)  # room for this part, with a margin
            results = pool.imap(_one, run, chunksize=4) if pool else map(_one, run)
            with EventWriter(job.part_path(run[0], run[-1] + 1), attrs) as writer:
                for event in results:
                    writer.append([event])
                    bar.update(1)
    finally:
        if pool is not None:
            pool.terminate()
        bar.close()
    elapsed = time.perf_counter() - start
    _check_space(out, int(1.1 * sum(path.stat().st_size for _, _, path in job.parts())) + (1 << 20))
    with EventWriter(out, attrs) as writer:
        for _, _, path in job.parts():
            with EventFile(path) as part:
                for event in part:
                    writer.append([event])
    job.cleanup()
    generated = events - done_events
    return {"file": str(out), "sample": config.name, "events": events, "seed": seed, "workers": workers,
            "generated": generated, "resumed_events": done_events, "seconds": round(elapsed, 3),
            "events_per_second": round(generated / elapsed, 3) if elapsed > 0 and generated else None}
