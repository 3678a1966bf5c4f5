"""Running a network on events: the one path of ``predict``, ``evaluate``, the trainer's
validation, the reconstruction commands and the Python API.

    import lartpcnet
    model = lartpcnet.load_model("sparsessnet_uboone")
    result = model.predict(event)            # a lartpcnet.data Event
    result.label, result.scores, result.fields["two_class_label"]

A model is a checkpoint written by ``lartpcnet train`` (or shipped weights); it carries its
architecture and the input settings it was trained with (wire plane, ADC window, feature
scale), which prediction reuses so the network sees inputs prepared the way it learned them.
Everything that differs between networks is the model's task's (``lartpcnet.tasks``); this
module batches items, applies the precision and test-time augmentation, scores, and writes
resumable prediction files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from lartpcnet import checkpoint, predictions
from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.settings import InputSettings
from lartpcnet.data.source import DataSource, EventSource, can_relabel, command_line_source
from lartpcnet.errors import DataError, UserError, one_line, validation_message
from lartpcnet.parts import PartsJob, chunked, merge_tables, read_tables, take_entries, write_tables
from lartpcnet.tasks import Output, Task

PRECISIONS = ("fp32", "bf16")


class ModelSettings(BaseModel):
    """How a loaded network runs: its registered name and weights, input settings, precision,
    test-time augmentation, and the settings of the reconstruction steps its config recommends."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str  # registered model (models.registry)
    source: str  # the weights file
    sha256: str  # of the weights file: what prediction jobs record as the model
    data: InputSettings
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: CPU/GPU autocast, faster, changes a few labels
    tta: bool = False  # average the scores over the image and its mirror image along each axis
    post: dict[str, dict] = Field(default_factory=dict)  # e.g. michel: the settings for these weights


@dataclass(frozen=True)
class Prediction:
    """The network's answer for one event (``LoadedModel.predict``): per-site arrays in one row
    order. ``coords`` index ``image`` (a plane's (row, column), voxels' (x, y, z), or
    (plane, row, column) for every plane); ``fields`` holds the task's own per-site arrays
    (``two_class_label`` and ``two_class_scores``, track 0 / shower 1, for segmentation)."""

    coords: np.ndarray
    scores: np.ndarray
    label: np.ndarray
    classes: tuple[str, ...]
    image: str
    truth: np.ndarray | None = None
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    values: np.ndarray | None = None  # the input's value at each site (ADC or MeV), where the task keeps it

    def plane(self, p: int) -> Prediction:
        """The sites of plane ``p`` of a prediction over every plane, as (row, column)."""
        if self.image != "planes":
            raise UserError(f"this prediction is for {self.image}, not for every plane")
        on = self.coords[:, 0] == p
        return Prediction(self.coords[on, 1:], self.scores[on], self.label[on], self.classes, f"plane {p}",
                          None if self.truth is None else self.truth[on], {k: v[on] for k, v in self.fields.items()},
                          None if self.values is None else self.values[on])


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for inference (eval mode, batch norms folded into the convolutions), its
    validated settings and its task. ``with_settings`` gives a copy with other settings."""

    net: torch.nn.Module
    settings: ModelSettings
    task: Task

    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes(self.net)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def output_dim(self) -> int:
        """Columns of the output coordinates."""
        image = self.task.image_of(self.settings.data)
        return 3 if image in ("voxels", "planes") else 2

    def with_settings(self, plane: int | None = None, precision: str | None = None,
                      tta: bool | None = None) -> LoadedModel:
        """A copy with another wire plane, precision or test-time augmentation (validated)."""
        changes: dict[str, Any] = {}
        if plane is not None:
            changes["data"] = _validated(InputSettings, {**self.settings.data.model_dump(), "plane": plane}, "--plane")
        if precision is not None:
            changes["precision"] = precision
        if tta is not None:
            changes["tta"] = tta
        settings = _validated(ModelSettings, {**self.settings.model_dump(), **changes}, "")
        if settings.tta and not self.task.supports_tta(self.net):
            raise UserError(f"test-time augmentation (tta) is for sparse networks; {settings.source} holds the "
                            f"dense {settings.name!r} network")
        if settings.precision == "bf16":
            from lartpcnet.runtime import configure_onednn_caches

            configure_onednn_caches()  # library use without the CLI: CPU bf16 memory stays flat over events
        return replace(self, settings=settings)

    def predict(self, event: Event | None = None, *, images: Sequence[SparseImage | tuple] | None = None
                ) -> Prediction:
        """The network on one event, or on images given as SparseImages or ``(coords, values,
        shape)`` arrays (one image, or every plane for the tagger)."""
        if (event is None) == (images is None):
            raise UserError("give an event or images")
        if event is not None:
            item = self.task.item(event, self.settings.data, "event", 0)
        else:
            item = self.task.item(Event(**_as_event(images, self.settings.data)), self.settings.data, "images", 0)
        self.task.check(item, self.net, "event", 0)
        (output,) = run(self, [item])
        return Prediction(output.coords, output.scores, output.label, self.classes,
                          self.task.image_of(self.settings.data), output.truth,
                          self.task.site_fields([output], len(self.classes)), output.extra.get("values"))


def _validated(model: type[BaseModel], values: dict, flag: str):
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise UserError(validation_message(err, f"{flag} " if flag else "")) from err


def _as_event(images: Sequence[SparseImage | tuple], settings: InputSettings) -> dict:
    """Event fields holding ``images`` where the task reads them (the voxels, the model's plane,
    or every plane)."""
    made = [im if isinstance(im, SparseImage) else image_from_arrays(*im) for im in images]
    if len(made) == 1 and len(made[0].shape) == 3:
        return {"voxels": made[0]}
    if len(made) == 1 and settings.plane is not None:
        empty = SparseImage.empty(made[0].shape)
        return {"planes": [empty] * settings.plane + made}
    return {"planes": made}


def image_from_arrays(coords, values, shape: Sequence[int]) -> SparseImage:
    """A SparseImage without truth from ``(N, D)`` integer coordinates and ``(N,)`` values;
    repeated coordinates are merged by summing their values, as larcv does."""
    coords, values, shape = np.asarray(coords), np.asarray(values, np.float32), tuple(int(s) for s in shape)
    if coords.ndim != 2 or coords.shape[1] != len(shape) or len(values) != len(coords):
        raise UserError(f"coords must be (N, {len(shape)}) and values (N,); got {coords.shape} and {values.shape}")
    if coords.dtype.kind == "f" and not np.array_equal(coords, np.round(coords)):
        raise UserError("coords must be integers")
    coords = coords.astype(np.int64)
    if len(coords) and ((coords < 0).any() or (coords >= np.asarray(shape)).any()):
        raise UserError(f"coords lie outside the image shape {shape}")
    if not np.isfinite(values).all():
        raise UserError("values hold NaN or infinity")
    keys, inverse = np.unique(np.ravel_multi_index(coords.T, shape), return_inverse=True)
    summed = np.zeros(len(keys), np.float32)
    np.add.at(summed, inverse.reshape(-1), values)
    n = len(keys)
    return SparseImage(np.stack(np.unravel_index(keys, shape), 1).astype(np.int32), summed, np.full(n, -1, np.int8),
                       np.full(n, -1, np.int32), np.full(n, -1, np.int32), np.zeros(n, np.int8), shape)


# --- loading -------------------------------------------------------------------------------

def resolve_device(name: str) -> str:
    """``auto`` -> the GPU where there is one; a CUDA device asked for without one is a one-line error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"--device {name!r} is not a device (give auto, cpu, cuda or cuda:N)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: this machine has no CUDA GPU that torch can use (use cpu or auto)")
    return name


def weights_path(spec: str) -> Path:
    """The file of a shipped model (its sha256 checked) or of a checkpoint path."""
    if spec in checkpoint.shipped_models():
        return checkpoint.verify_shipped(spec)
    path = Path(spec)
    if not path.is_file():
        shipped = ", ".join(n for n in checkpoint.shipped_models() if checkpoint.shipped_path(n))
        raise UserError(f"no model {spec!r}: give a checkpoint from lartpcnet train or a shipped name "
                        f"({shipped or 'none in this installation'})")
    return path


def load_model(spec: str, device: str = "auto", precision: str = "fp32", tta: bool = False,
               plane: int | None = None) -> LoadedModel:
    """A network from a shipped name (``sparsessnet_uboone``) or a checkpoint path, on ``device``
    (``auto``: the GPU where there is one). ``tta``: test-time augmentation, the class
    probabilities averaged over the image and its mirror image along each axis (1 + D passes).
    Checkpoints hold tensors and plain values only (``lartpcnet.checkpoint``); shipped weights
    are checked against their sha256 first."""
    from lartpcnet.models.registry import MODELS, build
    from lartpcnet.sparse import fold_batchnorm

    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = resolve_device(device)
    path = weights_path(spec)
    state = checkpoint.load_checkpoint(path, device)
    name, config = state["model_name"], state["config"]
    if name not in MODELS:
        raise DataError(f"names an unknown model {name!r} (registered: {', '.join(sorted(MODELS))})",
                        file=str(path), field="model_name")
    try:
        net, _ = build(name, state["network"])
        net.load_state_dict(state["model"])
        data = InputSettings.of_checkpoint(config.get("data", {}))
    except (ValueError, RuntimeError) as err:  # pydantic's errors are ValueErrors; shape mismatches RuntimeErrors
        raise DataError(f"does not hold a {name!r} network this lartpcnet can build "
                        f"({str(err).strip().splitlines()[0][:200]})", file=str(path), field="network") from err
    sha = checkpoint.shipped_models()[spec]["sha256"] if spec in checkpoint.shipped_models() else _sha256(path)
    settings = ModelSettings(name=name, source=str(path), sha256=sha, data=data, post=config.get("post") or {})
    model = LoadedModel(fold_batchnorm(net.to(device)), settings, MODELS[name].task)
    return model.with_settings(plane=plane, precision=precision, tta=tta)


def _sha256(path: Path) -> str:
    return checkpoint.sha256(path)


# --- running -------------------------------------------------------------------------------

def run(model: LoadedModel, items: Sequence[Any]) -> list[Output]:
    """The outputs of one batch of items, at the model's precision, with its test-time
    augmentation: the scores averaged over the item and its mirror images, matched back site by
    site."""
    outputs = _forward(model, items)
    if model.settings.tta and items:
        axes = model.task.tta_axes(model.net, items[0])
        for axis in range(axes):
            mirrored = _forward(model, [model.task.mirror(item, axis) for item in items])
            for output, other, item in zip(outputs, mirrored, items, strict=True):
                back = model.task.unmirror(other.coords, item, axis)
                output.scores += other.scores[_align(output.coords, back)]
        for output in outputs:
            output.scores /= 1 + axes
            output.label = output.scores.argmax(1).astype(np.int8)
    return outputs


def _forward(model: LoadedModel, items: Sequence[Any]) -> list[Output]:
    enabled = model.settings.precision == "bf16"
    with torch.no_grad(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=enabled):
        return model.task.outputs(model.net, items, model.settings.data, model.device)


def _align(coords: np.ndarray, other: np.ndarray) -> np.ndarray:
    """For each row of ``coords``, the row of ``other`` at the same site (both hold the same sites)."""
    if len(coords) == 0:
        return np.zeros(0, np.int64)
    dims = np.maximum(coords.max(0), other.max(0)) + 1
    key, other_key = np.ravel_multi_index(coords.T, dims), np.ravel_multi_index(other.T, dims)
    order = np.argsort(other_key)
    return order[np.searchsorted(other_key, key, sorter=order)]


def predicted(model: LoadedModel, events: EventSource, indices: Sequence[int], batch_size: int = 4,
              bar: tqdm | None = None, transform: Callable[[Any], Any] | None = None
              ) -> Iterator[tuple[int, Event, Any, Output]]:
    """``(index, event, item, output)`` for each event of ``indices``, run in batches."""
    for chunk in chunked(list(indices), batch_size):
        batch = [(i, events.event(i)) for i in chunk]
        items = []
        for i, event in batch:
            item = model.task.item(event, model.settings.data, events.where, i)
            model.task.check(item, model.net, events.where, i)
            items.append(transform(item) if transform else item)
        for (i, event), item, output in zip(batch, items, run(model, items), strict=True):
            yield i, event, item, output
        if bar is not None:
            bar.update(len(chunk))


def _bar(total: int, what: str, progress: bool, initial: int = 0) -> tqdm:
    return tqdm(total=total, initial=initial, desc=what, unit="event", disable=not progress, file=sys.stderr)


def as_model(model: LoadedModel | str) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(model)


# --- evaluate ------------------------------------------------------------------------------

def evaluate(model: LoadedModel | str, source: DataSource, batch_size: int = 4, progress: bool = True,
             out: str | Path | None = None, transform: Callable[[Any], Any] | None = None) -> dict:
    """The task's metrics of a model on a file or on freshly simulated events (plots into ``out``).
    A source without truth labels is a one-line error, not a table of None."""
    model = as_model(model)
    metrics = model.task.metrics(model.net, model.settings.data)
    # truth as the network was trained on it; a file's events without a particle table keep theirs
    relabel = model.settings.data.relabel_secondaries
    kept_labels = 0
    with EventSource(source, "where_possible" if relabel else False) as events:
        bar = _bar(len(events), "evaluate", progress)
        for index, event, item, output in predicted(model, events, events.indices(), batch_size, bar, transform):
            metrics.add(index, item, output)
            kept_labels += relabel and events.is_file and not can_relabel(event)
        bar.close()
        if len(events) and not metrics.scored:
            raise DataError("holds no truth labels to score against (lartpcnet predict labels events without "
                            "truth)", file=events.where)
    s = model.settings
    summary = {"model": s.source, "input": source.file, "sample": source.sample,
               "seed": source.seed if source.sample else None, "precision": s.precision, "tta": s.tta,
               "truth_relabelled": relabel and not kept_labels, **metrics.summary()}
    if kept_labels:
        warnings.warn(f"{source.describe()}: {kept_labels} events have no particle table, so their Michel/delta "
                      "secondaries could not be relabelled shower as in training; they are scored as labelled",
                      stacklevel=2)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        model.task.evaluation_plots(metrics, summary, Path(out))
    return summary


def score(net: torch.nn.Module, task: Task, items: Sequence[Any], settings: InputSettings, batch_size: int,
          device: torch.device) -> dict:
    """The metrics of a network (in training) on in-memory items: the trainer's validation."""
    metrics = task.metrics(net, settings)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(items), batch_size):
                chunk = items[start : start + batch_size]
                for k, (item, output) in enumerate(zip(chunk, task.outputs(net, chunk, settings, device),
                                                       strict=True)):
                    metrics.add(start + k, item, output)
    finally:
        net.train(was_training)
    return metrics.summary()


# --- predict -------------------------------------------------------------------------------

PART_SECONDS = 180.0  # a part is closed after this much work (kill -9 loses at most this)
# predict's output formats: lartpcnet's prediction file (lartpcnet.predictions), or larcv3 products
# beside the input's images (lartpcnet.larcv3_predictions)
FORMATS = ("lartpcnet", "larcv3")


def shard_indices(text: str | None, events: int) -> range:
    if text is None:
        return range(events)
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or int(match[1]) >= int(match[2]):
        raise UserError(f"--shard must be K/N with 0 <= K < N, got {text!r}")
    k, n = int(match[1]), int(match[2])
    return range(k, events, n)


def file_identity(path: str | Path) -> dict:
    """What identifies a file's content cheaply: its size, mtime and a hash of its first and last MiB."""
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        if stat.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            digest.update(f.read())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha256_ends": digest.hexdigest()}


def check_output(out: str | Path, inputs: Sequence[str | Path], overwrite: bool = False, flag: str = "--out") -> Path:
    """Refuses, before any work, an output that is an input (also through links), a folder, or
    in a folder that cannot be written, and an existing file unless ``overwrite``. ``flag``: how
    the messages name the output."""
    out = Path(out)
    for given in inputs:
        if given is not None and out.exists() and Path(given).exists() and os.path.samefile(out, given):
            raise UserError(f"{flag} {out} is the input file {given}; choose another output")
        if given is not None and out.resolve() == Path(given).resolve():
            raise UserError(f"{flag} {out} is the input file {given}; choose another output")
    if out.is_dir():
        raise UserError(f"{flag} {out} is a folder; give a file name")
    parent = out.resolve().parent
    if parent.exists() and not os.access(parent, os.W_OK):
        raise UserError(f"{flag} {out}: cannot write in {parent} (read-only or not yours)")
    if out.exists() and not overwrite:
        raise UserError(f"{flag} {out} exists; add --overwrite to replace it, or choose another output")
    return out


def predict(model: LoadedModel | str, input_path: str, out: str, shard: str | None = None, batch_size: int = 4,
            part_size: int | None = None, progress: bool = True, overwrite: bool = False,
            part_seconds: float = PART_SECONDS, format: str = "lartpcnet") -> dict:
    """Writes the per-site scores and labels of every event of this shard to ``out``. Resumable:
    a rerun after a kill does only the events no finished part holds (parts close every
    ``part_size`` events or ``part_seconds`` of work). ``format``: ``lartpcnet`` (the prediction
    file, ``lartpcnet.predictions``) or ``larcv3`` (the events' images with the predictions as
    larcv3 products beside them, ``lartpcnet.larcv3_predictions``); the parts are the same for
    both, the last step writes the one asked for."""
    if format not in FORMATS:
        raise UserError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    model = as_model(model)
    if not Path(input_path).exists():
        raise FileNotFoundError(f"{input_path}: no such file")
    check_output(out, [input_path], overwrite)
    s = model.settings
    with EventSource(DataSource(file=input_path)) as events:
        total = len(events)
        indices = list(shard_indices(shard, total))
        record = {"input": file_identity(input_path), "model": s.sha256, "task": model.task.name,
                  "settings": s.model_dump(include={"data", "precision", "tta"}), "shard": shard}
        job = PartsJob(out, record, len(indices))
        todo = job.todo()
        bar = _bar(len(indices), "predict", progress, initial=len(indices) - len(todo))

        def batches():  # one event at a time, so a part is closed as soon as it is full
            for k, result in zip(todo, predicted(model, events, [indices[i] for i in todo], batch_size, bar),
                                 strict=True):
                yield [k], [result[3]]

        def write(path, items, outputs):
            predictions.write(path, [indices[i] for i in items], outputs, model)

        job.run(batches(), write, part_size, part_seconds)
        bar.close()
    # the file records its job, with the input's event count, so that merge can check its shards
    attrs = predictions.attributes(model, {**record, "input_events": total})
    empty = predictions.tables([], [], model.task, len(model.classes), model.output_dim)
    if format == "larcv3":
        from lartpcnet import larcv3_predictions

        job.merge(attrs, empty, lambda path, attrs, tables: larcv3_predictions.write(path, input_path, tables, attrs))
        written = larcv3_predictions.outputs(out)
    else:
        job.merge(attrs, empty)
        written = predictions.outputs(out)
    counts = {int(event): model.task.counts(output, model.classes) for event, output in written}
    image = model.task.image_of(s.data)
    return {"model": s.source, "input": input_path, "out": out, "format": format, "shard": shard,
            "events": len(indices), "task": model.task.name, "image": image,
            "plane": s.data.plane if image.startswith("plane") else None, "downsample": s.data.downsample,
            "precision": s.precision, "tta": s.tta, "class_counts": counts}


# --- merge ---------------------------------------------------------------------------------

# What the shards of one job share, compared in this order. Not the input's path: a grid job
# often reads its own copy of the input, whose size, mtime and hash of its ends still match.
SHARED = ("model", "input", "input_events", "task", "settings")


def merge(out: str | Path, shards: Sequence[str | Path], overwrite: bool = False) -> dict:
    """Puts the outputs of ``predict --shard K/N`` back together into ``out``, the file that an
    unsharded ``predict`` over the whole input writes (the same tables; its job recorded as
    whole). The shards must come from one job (the same weights, input and settings) and hold
    every event of the input exactly once; anything else is a one-line error naming the files."""
    if not shards:
        raise UserError("give the shard files to merge")
    for shard in shards:
        if not Path(shard).exists() and Path(f"{shard}.parts").is_dir():
            raise DataError(f"is not finished (its parts are in {shard}.parts); rerun its lartpcnet predict, "
                            "which resumes", file=str(shard))
        if not Path(shard).exists():
            raise FileNotFoundError(f"{shard}: no such file")
    check_output(out, shards, overwrite, flag="output")
    headers = [predictions.header(shard) for shard in shards]
    attrs, job = headers[0]
    shared = _shared_fields(job)
    for shard, (_, other) in zip(shards[1:], headers[1:], strict=True):
        theirs = _shared_fields(other)
        for name in [*shared, *(n for n in theirs if n not in shared)]:
            if shared.get(name) != theirs.get(name):
                what = "model (weights sha256)" if name == "model" else name
                raise DataError(f"{shards[0]} and {shard} are not shards of one job: their {what} differs "
                                f"({_short(shared.get(name))} and {_short(theirs.get(name))})")
    total = int(job["input_events"])
    tables = [_tables(shard) for shard in shards]
    owner = np.full(total, -1, np.int64)  # the shard holding each event of the input
    for n, (shard, table) in enumerate(zip(shards, tables, strict=True)):
        if table.keys() != tables[0].keys():
            odd = ", ".join(sorted(table.keys() ^ tables[0].keys()))
            raise DataError(f"holds other tables than {shards[0]} ({odd})", file=str(shard))
        index = table["events/index"].astype(np.int64)
        if len(index) and (index.min() < 0 or index.max() >= total or len(np.unique(index)) < len(index)):
            raise DataError(f"is damaged: its events are not each one of the input's {total} events once",
                            file=str(shard), field="events/index")
        held = owner[index]
        if (held >= 0).any():
            first = int(held[held >= 0][0])
            raise DataError(f"{shards[first]} and {shard} both hold {_events(np.sort(index[held == first]))}: each "
                            "event must be in one shard (give every K of one --shard K/N once)")
        owner[index] = n
    missing = np.nonzero(owner < 0)[0]
    if len(missing):
        raise DataError(f"the shards miss {_events(missing)} of the input's {total} "
                        f"events{_absent_shards([j.get('shard') for _, j in headers])}")
    # an empty shard's tables only add nothing (and could widen a dtype): leave them out
    merged = merge_tables([t for t in tables if len(t["events/index"])] or tables[:1])
    merged = take_entries(merged, np.argsort(merged["events/index"], kind="stable"))
    write_tables(out, {**attrs, "job": json.dumps({**job, "shard": None})}, merged)
    return {"out": str(out), "shards": [str(s) for s in shards], "events": total, "task": job["task"],
            "model": str(attrs["model"]), "model_sha256": job["model"], "input": job["input"]["path"]}


def _tables(shard: str | Path) -> dict[str, np.ndarray]:
    try:
        tables = read_tables(shard)
    except OSError as err:  # h5py's error on a dataset it cannot read
        raise DataError(f"is damaged ({one_line(err)}); regenerate it with lartpcnet predict", file=str(shard)) from err
    if "events/index" not in tables:
        raise DataError("is damaged or of an unknown layout (no events/index); regenerate it with lartpcnet predict",
                        file=str(shard))
    return tables


def _shared_fields(job: dict) -> dict[str, Any]:
    """The fields of a job record that all its shards share, flattened (``settings.data.plane``)."""
    def flat(value: Any, name: str) -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from flat(inner, f"{name}.{key}")
        else:
            yield name, value

    keys = [*SHARED, *sorted(set(job) - set(SHARED) - {"shard"})]
    return {name: value for key in keys for name, value in flat(job.get(key), key) if name != "input.path"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _events(events: np.ndarray) -> str:
    """Sorted event numbers in a few words: ``event 3``, ``events 4-9``, ``events 1, 4, ..., 28 (10
    events)``, ``events 0-3, 7, 9-12``."""
    values = events.tolist()
    if len(values) == 1:
        return f"event {values[0]}"
    steps = np.unique(np.diff(events))
    if len(steps) == 1 and steps[0] > 1 and len(values) > 4:  # a shard's events
        return f"events {values[0]}, {values[1]}, ..., {values[-1]} ({len(values)} events)"
    cuts = np.nonzero(np.diff(events) != 1)[0] + 1
    runs = [f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in np.split(events, cuts)]
    more = f", ... ({len(values)} events)" if len(runs) > 6 else ""
    return "events " + ", ".join(runs[:6]) + more


def _absent_shards(shards: list[str | None]) -> str:
    """``: shard 1/3 is not among them`` where every file is a shard of one N, else nothing."""
    found = [re.fullmatch(r"(\d+)/(\d+)", s or "") for s in shards]
    if not all(found) or len({int(m[2]) for m in found}) != 1:
        return ""
    n = int(found[0][2])
    absent = sorted(set(range(n)) - {int(m[1]) for m in found})
    names = ", ".join(f"{k}/{n}" for k in absent[:6]) + (f", ... ({len(absent)} of {n})" if len(absent) > 6 else "")
    return f": shard {names} is not among them" if len(absent) == 1 else f": shards {names} are not among them"


def report(model: LoadedModel | str, name: str, out: str | Path | None = None, **options) -> dict:
    """One of the task's named reports (``evaluate --table``, ``--scale-curve``)."""
    model = as_model(model)
    if name not in model.task.reports:
        offered = ", ".join(model.task.reports) or "none"
        raise UserError(f"{name.replace('_', '-')} is not a report of {model.task.name} models (they offer: "
                        f"{offered})")
    entry = model.task.reports[name]
    result = entry.run(model, evaluate, **options)
    if out is not None and entry.plot is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        entry.plot(result, Path(out))
    return result


__all__ = ["LoadedModel", "ModelSettings", "Prediction", "command_line_source", "evaluate", "load_model",
           "merge", "predict", "predicted", "run", "score"]
