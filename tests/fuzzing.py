"""Seeded random corruptions of good files, read in child processes (the security issue's fuzz test).

Four good files: a lartpcnet HDF5 file and a larcv3 file (both written by lartpcnet from events
of tests/badfiles.py), the larcv2 ROOT fixture, and a training checkpoint of a small U-ResNet;
the full run adds the real SBND larcv3 file.
Case ``i`` of a kind applies one corruption drawn from ``numpy.random.default_rng([seed, kind, i])``:
flipped bytes, a truncation, a zeroed block, or swapped datasets (HDF5: the data of two datasets
exchanged through h5py; checkpoint: two entries of the saved dict exchanged; ROOT: two byte
blocks exchanged). The same seed gives the same corruptions.

Each case must end as a valid read or a one-line DataError naming the file, both from the
reader (``lartpcnet.data.open`` then every event, image and table; ``load_checkpoint``) and from
``lartpcnet info`` (exit 0, or 2 with one stderr line); never a crash, a hang or a traceback.

Cases run in a worker process (``python -m tests.fuzzing worker JOB``) that reports one JSON
line per case on its own channel, with an alarm per case; the parent (``run``) restarts a worker
that died or stopped answering and records the case that killed it. ``python -m tests.fuzzing
run --cases N --sbnd-cases M`` runs N cases per kind (M of the SBND file) and prints the counts
(docs/reliability.md).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import hashlib
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

KINDS = ("lartpcnet", "larcv3", "larcv2", "checkpoint")
EXTRA_KINDS = ("sbnd",)  # the real SBND larcv3 file (3.6 MB: slower), in the full run
CORRUPTIONS = ("flip", "truncate", "zero", "swap")
FAILURES = ("crash", "hang", "traceback", "bad_message", "stderr", "info")
ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 6 << 30  # a corrupt size must fail as a MemoryError, not swap the machine


# --- the good files ------------------------------------------------------------------------------

def make_inputs(folder: Path) -> dict[str, Path]:
    """The four good files, in ``folder``."""
    import shutil

    import torch

    from lartpcnet.checkpoint import save_checkpoint
    from lartpcnet.models.registry import build
    from tests.badfiles import LARCV2, SBND, good_larcv3, good_lartpcnet

    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"good_{kind}{'.root' if kind == 'larcv2' else '.pt' if kind == 'checkpoint' else '.h5'}"
             for kind in KINDS + EXTRA_KINDS}
    good_lartpcnet(paths["lartpcnet"])
    good_larcv3(paths["larcv3"])
    shutil.copy(LARCV2, paths["larcv2"])
    shutil.copy(SBND, paths["sbnd"])
    torch.manual_seed(0)
    net, _ = build("uresnet", {"depth": 2, "filters": 4, "reps": 1})
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, 10)
    save_checkpoint(paths["checkpoint"], {
        "model": net.state_dict(), "optimizer": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
        "iteration": 3, "rng": torch.get_rng_state(), "config": {"name": "fuzz", "data": {"plane": 2}},
        "network": net.config.model_dump(mode="json"), "model_name": "uresnet"})
    return paths


# --- corruptions ---------------------------------------------------------------------------------

def _hdf5_datasets(path: Path) -> list[str]:
    import h5py

    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def corrupt(good: Path, kind: str, index: int, seed: int, out: Path) -> str:
    """Writes case ``index`` of ``kind`` (a corrupted copy of ``good``) to ``out``; returns what was done."""
    rng = np.random.default_rng([seed, (KINDS + EXTRA_KINDS).index(kind), index])
    how = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
    raw = bytearray(good.read_bytes())
    size = len(raw)
    if how == "flip":
        # half the cases hit one small window (a header, a table), the others anywhere
        count = int(rng.integers(1, 17))
        if rng.random() < 0.5:
            start = int(rng.integers(size))
            spots = (start + rng.integers(0, 256, count)) % size
        else:
            spots = rng.integers(0, size, count)
        for spot in spots:
            raw[int(spot)] ^= int(rng.integers(1, 256))
        out.write_bytes(bytes(raw))
        return f"flip {count} bytes at {sorted(int(s) for s in spots)[:4]}..."
    if how == "truncate":
        cut = int(rng.integers(0, size))
        out.write_bytes(bytes(raw[:cut]))
        return f"truncate to {cut} of {size} bytes"
    if how == "zero":
        length = int(2 ** rng.integers(2, 13))
        start = int(rng.integers(0, max(size - length, 1)))
        raw[start : start + length] = bytes(min(length, size - start))
        out.write_bytes(bytes(raw))
        return f"zero {length} bytes at {start}"
    # swap
    if kind in ("lartpcnet", "larcv3", "sbnd"):
        import h5py

        names = _hdf5_datasets(good)
        a, b = (names[int(i)] for i in rng.choice(len(names), 2, replace=False))
        out.write_bytes(bytes(raw))
        with h5py.File(out, "r+") as f:
            data_a, data_b = f[a][()], f[b][()]
            del f[a], f[b]
            f[a], f[b] = data_b, data_a
        return f"swap datasets {a} and {b}"
    if kind == "checkpoint":
        import torch

        state = torch.load(good, weights_only=True)
        model = state["model"]
        if rng.random() < 0.5:
            keys = sorted(state)
            where, mapping = "checkpoint", state
        else:
            keys = sorted(model)
            where, mapping = "model", model
        a, b = (keys[int(i)] for i in rng.choice(len(keys), 2, replace=False))
        mapping[a], mapping[b] = mapping[b], mapping[a]
        torch.save(state, out)
        return f"swap {where} entries {a} and {b}"
    length = int(2 ** rng.integers(3, 11))
    first, second = sorted(int(s) for s in rng.integers(0, max(size - length, 1), 2))
    block = raw[first : first + length]
    raw[first : first + length] = raw[second : second + length]
    raw[second : second + length] = block
    out.write_bytes(bytes(raw[:size]))
    return f"swap {length}-byte blocks at {first} and {second}"


# --- reading one case (in the worker) ------------------------------------------------------------

class _Hang(BaseException):
    """The per-case alarm (a BaseException, so that no reader's except clause swallows it)."""


def _alarm(signum, frame):
    raise _Hang()


_GOOD: dict[Path, str] = {}  # the digest of each good file


def read(kind: str, path: Path) -> str:
    """Reads everything: every event, image and table (checkpoints: every entry); returns a digest
    of all it read, to tell a valid read of the original content from one of changed content."""
    digest = hashlib.sha256()
    if kind == "checkpoint":
        from lartpcnet.checkpoint import load_checkpoint

        state = load_checkpoint(path, training=True)
        for key in sorted(state):
            value = state[key]
            digest.update(key.encode())
            if key == "model":
                for name in sorted(value):
                    digest.update(name.encode() + value[name].numpy().tobytes())
            else:
                digest.update(repr(value).encode())
        return digest.hexdigest()
    import lartpcnet.data as data
    from lartpcnet.data.event import LABEL_FIELDS

    with data.open(path) as reader:
        digest.update(repr(reader.truth_labels).encode())
        for i in range(len(reader)):
            event = reader[i]
            for image in [*event.planes, *([event.voxels] if event.voxels is not None else [])]:
                digest.update(repr(image.shape).encode())
                for field in ("coords", "values", *LABEL_FIELDS):
                    digest.update(np.ascontiguousarray(getattr(image, field)).tobytes())
            for table in (event.particles, event.interactions):
                if table is not None:
                    digest.update(table.tobytes())
            digest.update(repr(sorted(event.meta.items())).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _captured_fds():
    """Everything written to file descriptors 1 and 2 (Python and C alike) while inside."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        text = {}
        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for name, f in (("out", out), ("err", err)):
                f.seek(0)
                text[name] = f.read().decode(errors="replace")


def _inject(fault: str) -> None:
    """The faults that tests/test_fuzz.py injects to prove the parent notices them."""
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fault == "hang":  # Python-level: the alarm ends it
        time.sleep(3600)
    elif fault == "stuck":  # deaf to the alarm, as a loop inside C code would be: the parent kills it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)


def _one_case(kind: str, good: Path, index: int, seed: int, folder: Path, timeout: float,
              fault: str | None = None) -> dict:
    from lartpcnet.cli import main
    from lartpcnet.errors import DataError

    path = folder / f"case_{kind}_{index}{good.suffix}"
    record = {"kind": kind, "case": index, "corruption": corrupt(good, kind, index, seed, path)}
    outcome, message = "valid", None
    signal.alarm(int(np.ceil(timeout)))
    try:
        if fault:
            _inject(fault)
        with _captured_fds() as seen:
            try:
                if good not in _GOOD:
                    _GOOD[good] = read(kind, good)
                record["changed"] = read(kind, path) != _GOOD[good]  # a valid read of other content
            except DataError as err:
                message = str(err)
                outcome = "error" if "\n" not in message and message.startswith(f"{path}: ") else "bad_message"
            except _Hang:
                raise
            except BaseException as err:  # a traceback: the reader let something through
                frames = traceback.extract_tb(err.__traceback__)
                outcome, message = "traceback", "".join(traceback.format_exception_only(type(err), err)).strip()
                message += " at " + "; ".join(f"{f.filename.split('/')[-1]}:{f.lineno}" for f in frames[-3:])
                record["raised_in"] = str(Path(frames[-1].filename).relative_to(ROOT)) \
                    if frames[-1].filename.startswith(str(ROOT)) else frames[-1].filename
        if outcome in ("valid", "error") and (seen["err"] or seen["out"]):
            outcome, message = "stderr", (seen["err"] or seen["out"])[:500]
        if message is not None:
            record["message_lines"] = len(message.splitlines())
            message = message[:500]  # a bad message may be huge (a repr of all the weights)
        record.update(outcome=outcome, message=message)
        # the command line: exit 0, or 2 with one line on stderr, never a traceback
        with _captured_fds() as seen:
            try:
                code = main(["info", str(path)])
            except _Hang:
                raise
            except BaseException as err:
                code = f"raised {type(err).__name__}: {err}"[:300]
        lines = seen["err"].splitlines()
        fine = (code == 0 and not lines) or (code == 2 and len(lines) == 1 and
                                             lines[0].startswith("lartpcnet info: error: "))
        record["info"] = {"code": code, "stderr": seen["err"][:500]}
        if record["outcome"] in ("valid", "error") and (not fine or "Traceback" in seen["err"]):
            record["outcome"] = "info"
    except _Hang:
        record.update(outcome="hang", message=f"over {timeout} s (alarm)")
    finally:
        signal.alarm(0)
        path.unlink(missing_ok=True)
    return record


def worker(job_file: Path) -> None:
    """Runs the cases of ``job_file`` ({"seed", "timeout", "inputs", "cases": [[kind, index], ...]}),
    one JSON line per case start and per result on the file descriptor the parent reads."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    job = json.loads(job_file.read_text())
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    # a crash's stack goes to the parent, not to the case's captured stderr
    faulthandler.enable(os.fdopen(os.dup(2), "w"))
    signal.signal(signal.SIGALRM, _alarm)
    import lartpcnet.checkpoint
    import lartpcnet.cli
    import lartpcnet.data.info  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        for kind, index in job["cases"]:
            channel.write(json.dumps({"start": [kind, index]}) + "\n")
            record = _one_case(kind, Path(job["inputs"][kind]), index, job["seed"], Path(tmp), job["timeout"],
                               job.get("faults", {}).get(f"{kind}:{index}"))
            channel.write(json.dumps(record) + "\n")


# --- the parent ----------------------------------------------------------------------------------

def run(inputs: dict[str, Path], cases: int, seed: int = 0, timeout: float = 20.0, kinds=KINDS,
        grace: float = 30.0, log=None, faults: dict[str, str] | None = None) -> list[dict]:
    """Runs ``cases`` cases of each kind in worker processes; one record per case, in order.

    A worker that dies records its case as ``crash`` (with the signal or exit status); one that
    stays silent ``timeout + grace`` seconds past a case's start is killed and the case is a
    ``hang``. Either way a new worker takes the remaining cases. ``faults`` ({"kind:index": "crash",
    "hang" or "stuck"}) are for testing the parent itself.
    """
    pending = [(kind, i) for kind in kinds for i in range(cases)]
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        while pending:
            job = Path(tmp) / "job.json"
            job.write_text(json.dumps({"seed": seed, "timeout": timeout, "cases": pending, "faults": faults or {},
                                       "inputs": {k: str(v) for k, v in inputs.items()}}))
            child = subprocess.Popen([sys.executable, "-m", "tests.fuzzing", "worker", str(job)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"})
            current, deadline = None, time.monotonic() + 300  # start-up: imports on a busy machine
            selector = selectors.DefaultSelector()
            selector.register(child.stdout, selectors.EVENT_READ)
            while True:
                if not selector.select(timeout=max(deadline - time.monotonic(), 0.01)):
                    if time.monotonic() < deadline:
                        continue
                    child.kill()
                    child.wait()
                    if current is not None:
                        results[current] = {"kind": current[0], "case": current[1], "outcome": "hang",
                                            "message": f"no answer in {timeout + grace} s; worker killed"}
                        pending.remove(current)
                    break
                line = child.stdout.readline()
                if not line:  # the worker is gone
                    code = child.wait()
                    stderr = child.stderr.read()
                    if current is not None:
                        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
                        results[current] = {"kind": current[0], "case": current[1], "outcome": "crash",
                                            "message": f"worker died ({how}): {stderr.strip()[-300:]}"}
                        pending.remove(current)
                    elif code != 0 or pending:
                        raise RuntimeError(f"fuzz worker failed outside any case ({code}): {stderr[-2000:]}")
                    break
                record = json.loads(line)
                if "start" in record:
                    current = tuple(record["start"])
                    deadline = time.monotonic() + timeout + grace
                    continue
                key = (record["kind"], record["case"])
                results[key] = record
                pending.remove(key)
                current = None
                if log is not None and record["outcome"] in FAILURES:
                    log(json.dumps(record))
            selector.close()
            child.stdout.close()
            child.stderr.close()
    return [results[kind, i] for kind in kinds for i in range(cases)]


def counts(records: list[dict]) -> dict[str, Counter]:
    """Per kind: how many cases, how many of each outcome, and how many valid reads gave other
    content than the good file (``changed``: damage no check can see, such as two datasets of the
    same shape swapped)."""
    table: dict[str, Counter] = {}
    for record in records:
        table.setdefault(record["kind"], Counter())["cases"] += 1
        table[record["kind"]][record["outcome"]] += 1
        table[record["kind"]]["changed"] += record["outcome"] == "valid" and bool(record.get("changed"))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("job")
    r = sub.add_parser("run")
    r.add_argument("--cases", type=int, default=300, help="cases per kind")
    r.add_argument("--sbnd-cases", type=int, default=100, help="cases of the real SBND file")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    r.add_argument("--out", default=None, help="write every record here (JSON lines)")
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker(Path(args.job))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))
        start = time.monotonic()
        def log(line: str) -> None:
            print(line, file=sys.stderr)

        records = run(inputs, args.cases, args.seed, args.timeout, log=log)
        records += run(inputs, args.sbnd_cases, args.seed, args.timeout, kinds=EXTRA_KINDS, log=log)
        elapsed = time.monotonic() - start
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in records))
    print(f"{'kind':<11} {'cases':>5} {'valid':>5} {'changed':>7} {'error':>5} " +
          " ".join(f"{f:>8}" for f in FAILURES))
    for kind, c in counts(records).items():
        print(f"{kind:<11} {c['cases']:>5} {c['valid']:>5} {c['changed']:>7} {c['error']:>5} " +
              " ".join(f"{c[f]:>8}" for f in FAILURES))
    print(f"{len(records)} cases in {elapsed:.0f} s, seed {args.seed}")
    return 1 if any(r["outcome"] in FAILURES for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
