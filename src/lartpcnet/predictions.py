"""The prediction file of ``lartpcnet predict``: one layout for every task.

``events/index`` lists the events (their index in the input file); ``sites/offsets`` says which
rows of ``sites/*`` belong to each: ``coords`` (what they index is the ``image`` attribute:
``plane K``, ``voxels`` or ``planes``, whose coords are (plane, row, column)), ``scores``
(N, classes), ``label`` and the task's own fields (track/shower scores and labels for
segmentation). Attributes record the task, the classes, the model and its weights' sha256, and
the settings (precision, tta, downsample); ``job`` (JSON) is the job that wrote the file: the
input's identity and event count, the weights' sha256, the settings and the shard (null for a
whole file), which ``lartpcnet merge`` checks before it puts shards back together.

Files of earlier versions (no ``version`` attribute; the image told by ``plane`` = K, -1 for
voxels or -2 for every plane of the tagger) still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from lartpcnet.errors import DataError
from lartpcnet.io_utils import open_output
from lartpcnet.parts import write_tables
from lartpcnet.tasks import Output, by_name

FORMAT = "lartpcnet-predictions"
VERSION = 2
JOB_FIELDS = ("input", "input_events", "model", "task", "settings", "shard")  # of the ``job`` attribute


def tables(events: Sequence[int], outputs: Sequence[Output], task, classes: int, dim: int) -> dict[str, np.ndarray]:
    """The file's datasets for some events and their outputs."""
    if outputs:
        coords = np.concatenate([o.coords for o in outputs]).astype(np.int32)
        scores = np.concatenate([o.scores for o in outputs]).astype(np.float16)
        label = np.concatenate([o.label for o in outputs]).astype(np.int8)
    else:
        coords, scores, label = np.zeros((0, dim), np.int32), np.zeros((0, classes), np.float16), np.zeros(0, np.int8)
    return {"events/index": np.asarray(events, np.int64), "sites/coords": coords, "sites/scores": scores,
            "sites/label": label, **{f"sites/{k}": v for k, v in task.site_fields(outputs, classes).items()},
            "sites/offsets": np.concatenate([[0], np.cumsum([len(o) for o in outputs])]).astype(np.int64),
            **task.event_fields(outputs)}


def attributes(model, job: dict | None = None) -> dict:
    """The file's attributes; ``job``: the record of the job that wrote it (a part has none)."""
    s = model.settings
    return {"format": FORMAT, "version": VERSION, "task": model.task.name, "classes": json.dumps(list(model.classes)),
            "image": model.task.image_of(s.data), "model": s.source, "model_sha256": s.sha256,
            "precision": s.precision, "tta": s.tta, "downsample": s.data.downsample,
            **({} if job is None else {"job": json.dumps(job)})}


def write(path: str | Path, events: Sequence[int], outputs: Sequence[Output], model) -> None:
    write_tables(path, attributes(model), tables(events, outputs, model.task, len(model.classes), model.output_dim))


def outputs(path: str | Path) -> Iterator[tuple[int, Output]]:
    """Every event of a prediction file with its coords and labels (scores left out)."""
    with h5py.File(path, "r") as f:
        index, offsets = f["events/index"][:], f["sites/offsets"][:]
        coords, label = f["sites/coords"][:], f["sites/label"][:]
    for n, event in enumerate(index):
        lo, hi = offsets[n], offsets[n + 1]
        yield int(event), Output(coords[lo:hi], np.zeros((hi - lo, 0), np.float32), label[lo:hi])


def _image(f: h5py.File) -> tuple[str, str]:
    """(task, image) of a file of any version."""
    if "version" in f.attrs:
        return str(f.attrs["task"]), str(f.attrs["image"])
    plane = int(f.attrs["plane"])  # version 1
    if plane == -2:
        return "tagging", "planes"
    return "segmentation", "voxels" if plane == -1 else f"plane {plane}"


def _open(path: str | Path) -> h5py.File:
    f = open_output(path, FORMAT, "lartpcnet predict output")
    if int(f.attrs.get("version", 1)) > VERSION:
        f.close()
        raise DataError(f"was written by a newer lartpcnet (version {f.attrs['version']}); upgrade, or "
                        "regenerate it with this one's lartpcnet predict", file=str(path))
    return f


def header(path: str | Path) -> tuple[dict, dict]:
    """A prediction file's attributes and its job record (input identity and event count,
    weights sha256, task, settings, shard)."""
    with _open(path) as f:
        attrs = dict(f.attrs)
    if "job" not in attrs:
        raise DataError("records no job (written by an older lartpcnet); rerun its lartpcnet predict to merge "
                        "it", file=str(path), field="job")
    try:
        job = json.loads(attrs["job"])
    except ValueError as err:
        raise DataError(f"holds a damaged job record ({err})", file=str(path), field="job") from err
    missing = [key for key in JOB_FIELDS if key not in job] if isinstance(job, dict) else list(JOB_FIELDS)
    if missing or not isinstance(job["input"], dict) or not isinstance(job["input_events"], int):
        raise DataError(f"holds a damaged job record ({', '.join(missing) or 'input'} missing or not what predict "
                        "writes)", file=str(path), field="job")
    return attrs, job


def read(path: str | Path, event: int) -> dict:
    """One event's predictions: coords, label, scores, classes, task, plane (None for voxels),
    downsample, model, and the file and event they come from."""
    with _open(path) as f:
        try:
            task, image = _image(f)
            index = f["events/index"][:]
            rows = np.nonzero(index == event)[0]
            if len(rows) == 0:
                raise DataError(f"has no predictions for this event (it holds {len(index)} events)", file=str(path),
                                event=event)
            lo, hi = f["sites/offsets"][rows[0]], f["sites/offsets"][rows[0] + 1]
            out = {"coords": f["sites/coords"][lo:hi], "label": f["sites/label"][lo:hi],
                   "scores": f["sites/scores"][lo:hi].astype(np.float32), "classes": json.loads(f.attrs["classes"]),
                   "task": task, "image": image, "model": str(f.attrs["model"]),
                   "downsample": int(f.attrs.get("downsample", 1))}
            for name in f["sites"]:  # the task's own per-site fields
                if name not in ("coords", "label", "scores", "offsets"):
                    out.setdefault(name, f[f"sites/{name}"][lo:hi])
            for group in (g for g in f if g not in ("sites", "events") and "offsets" in f[g]):  # per-event tables
                a, b = f[f"{group}/offsets"][rows[0]], f[f"{group}/offsets"][rows[0] + 1]
                out[group] = {name: f[f"{group}/{name}"][a:b] for name in f[group] if name != "offsets"}
        except (KeyError, ValueError, IndexError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(f"is damaged or of an unknown layout ({err}); regenerate it with lartpcnet predict",
                            file=str(path)) from err
    out["plane"] = int(image.split()[1]) if image.startswith("plane ") else None
    by_name(task, str(path))
    return out
