"""``lartpcnet train``: one training loop for every registered model, on CPU or GPU, alone or under torchrun.

What a batch holds, its loss and its validation metrics are the model's task's (``lartpcnet.tasks``);
validation is ``runner.score``, the metrics path of ``lartpcnet evaluate``.

Determinism: batch k is made of events [k B, (k + 1) B) of the training source, whoever makes it
(worker processes stripe the batches, DDP ranks take every R-th), so a resumed run sees exactly
the batches the uninterrupted run would have, and its weights come out bit-identical.
Checkpoints and logs are written atomically; ``--resume`` continues from the newest checkpoint
that loads. A batch with no site the network would see is skipped (no step) and counted.
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from lartpcnet import checkpoint, runner
from lartpcnet.data.settings import InputSettings
from lartpcnet.data.source import DataSource, EventSource
from lartpcnet.errors import DataError, UserError
from lartpcnet.io_utils import atomic_path, atomic_write_text
from lartpcnet.models.registry import build, spec
from lartpcnet.tasks import Task
from lartpcnet.train.config import TrainConfig


class BatchStream(IterableDataset):
    """Lists of task items, batch after batch, from ``first_batch`` on (this rank's share)."""

    def __init__(self, source: DataSource, settings: InputSettings, task: Task, batch_size: int, first_batch: int,
                 rank: int = 0, world: int = 1) -> None:
        super().__init__()
        self.source, self.settings, self.task, self.batch_size = source, settings, task, batch_size
        self.first_batch, self.rank, self.world = first_batch, rank, world

    def __iter__(self) -> Iterator[list[Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        parent = os.getppid()
        events = EventSource(self.source, self.settings.relabel_secondaries, cycle=True)
        j = worker
        while True:
            if info is not None and os.getppid() != parent:  # the trainer is gone: so is its worker
                return
            batch = (self.first_batch + j) * self.world + self.rank
            start = batch * self.batch_size
            yield [self.task.item(events.event(i), self.settings, events.where, i)
                   for i in range(start, start + self.batch_size)]
            j += workers


def _die_with_parent(worker_id: int) -> None:
    """DataLoader workers get SIGKILL when the trainer dies, even by kill -9 (Linux), instead of
    living on with their memory."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _schedule(config: TrainConfig):
    """The learning-rate factor at each iteration: the schedule, times a linear warm-up."""
    s = config.schedule
    if s.name == "step":
        def factor(it):
            return s.gamma ** (it // s.step_every)
    elif s.name == "cosine":
        def factor(it):
            return 0.5 * (1 + math.cos(math.pi * min(it, config.iterations) / config.iterations))
    else:
        def factor(it):
            return 1.0
    if not s.warmup:
        return factor
    return lambda it: factor(it) * min(1.0, (it + 1) / s.warmup)


def validation_items(config: TrainConfig, task: Task) -> list[Any]:
    source = config.data.validation
    events = EventSource(source.model_copy(update={"events": source.events or 32}), config.data.relabel_secondaries)
    with events:
        return [task.item(events.event(i), config.data, events.where, i) for i in events.indices()]


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoints/ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def train(config: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True,
          init_from: str | None = None, explicit: Sequence[str] = ()) -> dict:
    """Trains as ``config`` says, writing checkpoints and logs into ``out``; returns a summary.

    ``resume``: continue from the newest checkpoint in ``out`` that loads (a fresh start where
    there is none). Settings that differ from the run's ``config.yaml`` are refused unless they
    are among ``explicit`` (the keys given with ``--set``), which are logged to ``changes.log``.
    ``init_from``: a fresh run starts from these weights (a shipped name or a checkpoint) and at
    their iteration; the optimizer state starts anew (shipped weights carry none)."""
    out = Path(out)
    _remove_temporaries(out)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _device(config.device)
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(config.seed)
    net, loss_fn = build(config.model.name, config.model.network, config.model.loss)
    net.to(device)
    task = spec(config.model.name).task
    optimiser = _optimiser(config, net)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _schedule(config))
    start = 0
    existing = _checkpoints(out)
    if existing and not resume:
        raise UserError(f"{out} already holds checkpoints; add --resume to continue or choose another --out")
    if resume and existing:
        _check_settings(out, config, explicit, rank == 0)
        state = _newest_loadable(existing, device)
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start = int(state["iteration"])
    elif init_from is not None:
        start = _initialise(net, init_from, device, out if rank == 0 else None)
        _set_lr(optimiser, scheduler, start)
    model = net
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    writer = rank == 0
    if writer:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", json.dumps(config.model_dump(mode="json"), indent=1))
        _truncate_logs(out, start)
    validation = validation_items(config, task) if writer else []
    stream = BatchStream(config.data.train, config.data, task, config.batch_size, start * config.accumulate, rank,
                         world)
    workers = config.data.workers
    loader = iter(DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                             worker_init_fn=_die_with_parent if workers else None))
    # amp: fp16 with loss scaling on GPU; bf16 on CPU (same exponent range as fp32, no scaling)
    use_amp = config.amp
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda")
    bar = tqdm(total=config.iterations, initial=start, desc=f"train {config.name}", disable=not (progress and writer),
               file=sys.stderr)
    started = time.perf_counter()
    last_metrics: dict = {}
    last_validation = _last_validation(out) if writer else None
    skipped = 0
    for iteration in range(start, config.iterations):
        total, used = 0.0, 0
        for _ in range(config.accumulate):
            items = next(loader)
            if task.is_empty(items, config.data):  # nothing to learn from (and no graph to step)
                skipped += 1
                continue
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss = task.loss(model, net, loss_fn, items, config.data, device)
            scaler.scale(loss / config.accumulate).backward()
            total += float(loss.detach()) / config.accumulate
            used += 1
        if used:
            scaler.step(optimiser)
            scaler.update()
        else:
            total = float("nan")
        optimiser.zero_grad(set_to_none=True)
        scheduler.step()
        step = iteration + 1
        bar.update(1)
        bar.set_postfix(loss=f"{total:.4f}")
        if writer:
            _append_csv(out / "log.csv", {"iteration": step, "loss": total, "lr": scheduler.get_last_lr()[0],
                                          "seconds": round(time.perf_counter() - started, 3)})
        if writer and (step % config.validate_every == 0 or step == config.iterations):
            last_metrics = runner.score(net, task, validation, config.data, config.batch_size, device)
            last_validation = (step, last_metrics)
            with open(out / "validation.jsonl", "a") as f:
                f.write(json.dumps({"iteration": step, **last_metrics}) + "\n")
            plot_curves(out, task.curves)
        if writer:
            _write_status(out, step, config.iterations, last_validation, time.perf_counter() - started, step - start,
                          task.headline)
        if writer and (step % config.checkpoint_every == 0 or step == config.iterations):
            save_checkpoint(out / "checkpoints" / f"ckpt-{step}.pt", net, optimiser, scheduler, step, config)
        if distributed:
            torch.distributed.barrier()
    bar.close()
    summary = {"name": config.name, "out": str(out), "iterations": config.iterations, "resumed_from": start,
               "seconds": round(time.perf_counter() - started, 3), "world_size": world, "validation": last_metrics,
               "skipped_empty_batches": skipped, "headline": task.headline[0]}
    if distributed:
        summary["ranks_in_sync"] = _ranks_in_sync(net)
        torch.distributed.destroy_process_group()
    if writer:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    return summary


def _ranks_in_sync(net) -> bool:
    """True when every rank holds bit-identical weights (DDP replicas must never drift apart)."""
    import torch.distributed as dist

    flat = torch.cat([p.detach().flatten().cpu() for p in net.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def save_checkpoint(path: Path, net, optimiser, scheduler, iteration: int, config: TrainConfig) -> None:
    checkpoint.save_checkpoint(path, {
        "model": net.state_dict(), "optimizer": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
        "iteration": iteration, "rng": torch.get_rng_state(), "config": config.model_dump(mode="json"),
        "network": net.config.model_dump(mode="json"), "model_name": config.model.name})


def _optimiser(config: TrainConfig, net) -> torch.optim.Optimizer:
    o = config.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(net.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    cls = torch.optim.Adam if o.name == "adam" else torch.optim.RMSprop
    return cls(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)


def _initialise(net, weights: str, device, out: Path | None) -> int:
    """Loads the weights of ``weights`` (shipped name or checkpoint) into ``net``; their iteration."""
    path = runner.weights_path(weights)
    state = checkpoint.load_checkpoint(path, device)
    try:
        net.load_state_dict(state["model"])
    except RuntimeError as err:
        raise DataError(f"weights do not fit this config's network ({str(err).splitlines()[0][:200]})",
                        file=str(path), field="model") from err
    start = int(state.get("iteration") or 0)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        _log_change(out, start, f"started from the weights of {weights} ({path}, iteration {start}); their optimizer "
                    "state is not stored with them, so the optimizer starts anew")
    return start


def _set_lr(optimiser, scheduler, iteration: int) -> None:
    """Puts the schedule at ``iteration`` (a run that starts from other weights, mid-schedule)."""
    scheduler.last_epoch = iteration
    for group, base, factor in zip(optimiser.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * factor(iteration)
    scheduler._last_lr = [g["lr"] for g in optimiser.param_groups]


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


# settings that change how long a run goes and where, not what its past iterations computed
LOGISTICS = ("iterations", "validate_every", "checkpoint_every", "device", "data.workers")


def _check_settings(out: Path, config: TrainConfig, explicit: Sequence[str], writer: bool) -> None:
    """A resume with settings other than the run's is refused, unless they were given with --set."""
    saved_path = out / "config.yaml"
    if not saved_path.exists():
        return
    saved = _flat(yaml.safe_load(saved_path.read_text()) or {})
    new = _flat(config.model_dump(mode="json"))
    differ = sorted(k for k in saved.keys() | new.keys() if saved.get(k) != new.get(k))
    free = set(LOGISTICS) - ({"iterations"} if config.schedule.name == "cosine" else set())
    chosen = [k for k in differ if k in free or any(k == e or k.startswith(e + ".") for e in explicit)]
    refused = [k for k in differ if k not in chosen]
    if refused:
        changes = "; ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in refused[:4])
        raise DataError(f"--resume with settings other than the run's ({changes}); give each change with --set "
                        f"to make it on purpose (it is logged), or choose another --out to start over",
                        file=str(saved_path))
    if writer and chosen:
        _log_change(out, None, "resumed with " + "; ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}"
                                                              for k in chosen))


def _log_change(out: Path, iteration: int | None, text: str) -> None:
    """One line per change of a run's settings or weights (changes.log), and on stderr."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with open(out / "changes.log", "a") as f:
        f.write(f"{stamp} {text}\n")
    print(f"lartpcnet train: {text}", file=sys.stderr)


# what atomic_path leaves behind when a job is killed mid-write: ".<name>.<random><suffix>"
_TEMPORARY = ("checkpoints/.ckpt-*.pt.*", ".log.csv.*", ".validation.jsonl.*", ".config.yaml.*", ".summary.json.*",
              ".curves.png.*", ".status.txt.*")


def _remove_temporaries(out: Path) -> None:
    for pattern in _TEMPORARY:
        for path in out.glob(pattern):
            path.unlink(missing_ok=True)


def _newest_loadable(paths: list[Path], device) -> dict:
    """The newest checkpoint that loads; a damaged newer one (a kill mid-write on a filesystem
    without atomic rename, a full disk) is reported and skipped."""
    errors = []
    for path in reversed(paths):
        try:
            state = checkpoint.load_checkpoint(path, device, training=True)
        except DataError as err:
            errors.append(str(err))
            print(f"lartpcnet train: skipping {path.name}, which does not load ({err})", file=sys.stderr)
            continue
        if errors:
            print(f"lartpcnet train: resuming from {path.name} instead", file=sys.stderr)
        return state
    raise DataError(f"no checkpoint loads ({len(errors)} tried; newest: {errors[0]})", file=str(paths[-1].parent))


def _last_validation(out: Path) -> tuple[int, dict] | None:
    path = out / "validation.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    if not lines:
        return None
    last = json.loads(lines[-1])
    return int(last["iteration"]), last


def _write_status(out: Path, step: int, iterations: int, validation: tuple[int, dict] | None, seconds: float,
                  steps: int, headline: Sequence[str]) -> None:
    """``status.txt``: one line a person or a script reads to see where a run stands."""
    text = f"iteration {step}/{iterations}, {seconds / max(steps, 1):.2f} s/iteration"
    if validation is not None:
        at, metrics = validation
        key = next((k for k in headline if metrics.get(k) is not None), None)
        if key is not None:
            text += f", validation {key} {metrics[key]:.4f} at {at}"
    atomic_write_text(out / "status.txt", f"{text}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n")


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate_logs(out: Path, start: int) -> None:
    """Drops log rows past ``start``: a killed run may have logged iterations its checkpoint lacks."""
    log = out / "log.csv"
    if log.exists():
        rows = [r for r in csv.DictReader(log.open()) if int(r["iteration"]) <= start]
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(log, buffer.getvalue())
        if not rows:
            log.unlink()
    val = out / "validation.jsonl"
    if val.exists():
        kept = [line for line in val.read_text().splitlines() if json.loads(line)["iteration"] <= start]
        atomic_write_text(val, "".join(line + "\n" for line in kept))


def plot_curves(out: Path, curves: dict[str, str]) -> None:
    """Learning curves: training loss and the task's validation metrics (``curves``: key -> label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader((out / "log.csv").open()) if r["loss"] not in ("", "nan")]
    val = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    its = np.array([int(r["iteration"]) for r in rows])
    losses = np.array([float(r["loss"]) for r in rows])
    a.plot(its, losses, lw=0.6, alpha=0.5, label="per iteration")
    if len(losses) >= 20:
        window = max(len(losses) // 20, 2)
        a.plot(its[window - 1 :], np.convolve(losses, np.ones(window) / window, "valid"), label=f"mean of {window}")
    a.set_xlabel("iteration")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    a.legend(fontsize=8)
    for key, label in curves.items():
        points = [(v["iteration"], v[key]) for v in val if v.get(key) is not None]
        if points:
            b.plot(*zip(*points, strict=True), marker="o", label=label)
    b.set_xlabel("iteration")
    b.set_ylabel("validation metric")
    b.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out / "curves.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
