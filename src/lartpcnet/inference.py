"""Applying trained networks: ``lartpcnet predict`` and ``lartpcnet evaluate``.

A model is a checkpoint written by ``lartpcnet train``; it carries its architecture and the
data settings it was trained with (wire plane, ADC window, feature scale), which prediction
reuses so the network sees inputs prepared the way it learned them.

Sparse networks label the active sites (5 classes). Dense 3-class networks (MicroBooNE 2019)
label every pixel background/track/shower: predictions are written for the active sites, and
evaluation counts every pixel, so charge predicted on empty pixels counts against the ICPF.
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

import lartpcnet.data as data
from lartpcnet.checkpoint import load_checkpoint, shipped_models, shipped_path, verify_shipped
from lartpcnet.data.batching import dense_batch, sparse_batch
from lartpcnet.data.labels import (
    DENSE_CLASS_NAMES,
    ORIGIN_NAMES,
    SEMANTIC_NAMES,
    SEMANTIC_TO_TWO_CLASS,
    TWO_CLASS_NAMES,
)
from lartpcnet.errors import DataError
from lartpcnet.io_utils import atomic_path
from lartpcnet.metrics.segmentation import SegmentationMetrics
from lartpcnet.models.registry import MODELS, build
from lartpcnet.parts import PartsJob

PREDICTION_FORMAT = "lartpcnet-predictions"


PRECISIONS = ("fp32", "bf16")


@dataclass
class LoadedModel:
    """A network ready for inference (eval mode, batch norms folded into the convolutions)."""

    net: torch.nn.Module
    name: str
    plane: int | None
    adc_window: tuple[float, float] | None
    feature_scale: float
    source: str
    precision: str = "fp32"  # bf16: CPU/GPU autocast, faster, changes a measured fraction of labels
    task: str = "segmentation"  # or tagging (the multi-plane cosmic tagger: lartpcnet.tagging)
    downsample: int = 1  # tagging: pixel blocks merged before the network
    threshold: float | None = None  # tagging: ADC below which pixels are not in the sparse set
    tta: bool = False  # average the scores over the image and its mirror image along each axis

    @property
    def sparse(self) -> bool:
        return bool(self.net.config.sparse)

    @property
    def classes(self) -> tuple[str, ...]:
        if self.task == "tagging":
            return ORIGIN_NAMES
        return SEMANTIC_NAMES if self.sparse else DENSE_CLASS_NAMES

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def metrics(self) -> SegmentationMetrics:
        return SegmentationMetrics() if self.sparse else SegmentationMetrics(DENSE_CLASS_NAMES, background=0)


def resolve_device(name: str) -> str:
    """``auto`` -> the GPU where there is one; a CUDA device asked for without one is a one-line error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"--device {name!r} is not a device (give auto, cpu, cuda or cuda:N)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this machine has no CUDA GPU that torch can use (use cpu or auto)")
    return name


def shipped_weights(name: str) -> Path | None:
    """The weights file of a shipped model (``weights/models.json``), or None."""
    return shipped_path(name)


def weights_path(spec: str) -> Path:
    """The file of a shipped model (its sha256 checked) or of a checkpoint path."""
    if spec in shipped_models():
        return verify_shipped(spec)
    path = Path(spec)
    if not path.exists():
        shipped = ", ".join(n for n in shipped_models() if shipped_path(n)) or "none in this installation"
        raise ValueError(f"no model {spec!r}: give a checkpoint from lartpcnet train or a shipped name ({shipped})")
    return path


def load_model(spec: str, device: str = "auto", precision: str = "fp32", tta: bool = False) -> LoadedModel:
    """A network from a shipped name (``sparsessnet_uboone``) or a checkpoint path, on ``device``
    (``auto``: the GPU where there is one). ``tta``: test-time augmentation, the class
    probabilities averaged over the image and its mirror image along each axis (1 + D passes).
    Checkpoints are loaded as tensors and plain values only (lartpcnet.checkpoint); shipped
    weights are checked against their sha256 first."""
    from lartpcnet.runtime import configure_onednn_caches
    from lartpcnet.sparse import fold_batchnorm

    device = resolve_device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16":
        configure_onednn_caches()  # library use without the CLI: CPU bf16 memory stays flat over events
    path = weights_path(spec)
    state = load_checkpoint(path, device)
    network, model_name, data_cfg = state["network"], state["model_name"], state["config"].get("data", {})
    if model_name not in MODELS:
        raise DataError(f"names an unknown model {model_name!r} (registered: {', '.join(sorted(MODELS))})",
                        file=str(path), field="model_name")
    try:
        net, _ = build(model_name, network)
        net.load_state_dict(state["model"])
    except (ValueError, RuntimeError) as err:  # pydantic's errors are ValueErrors; shape mismatches RuntimeErrors
        reason = str(err).strip().splitlines()[0]
        raise DataError(f"weights do not fit the {model_name!r} network they name ({reason[:200]})",
                        file=str(path), field="model") from err
    net = fold_batchnorm(net.to(device))
    window = data_cfg.get("adc_window")
    task = MODELS[model_name].task
    if tta and not net.config.sparse:
        raise ValueError(f"test-time augmentation (tta) is for sparse networks; {path} holds the dense "
                         f"{model_name!r} network")
    return LoadedModel(net, model_name, None if task == "tagging" else data_cfg.get("plane"),
                       tuple(window) if window else None, float(data_cfg.get("feature_scale", 100.0)), str(path),
                       precision, task, int(data_cfg.get("downsample", 1)), data_cfg.get("threshold"), tta)


def _infer(model: LoadedModel, images: list, adc_scale: float = 1.0) -> list[dict]:
    """Scores and labels for each image's sites (after the ADC window), in input order.

    ``adc_scale`` multiplies the pixel values first (robustness to the detector's gain)."""
    if adc_scale != 1.0:
        images = [im.select(np.ones(len(im), bool), im.values * adc_scale) for im in images]
    if not model.sparse:
        return _infer_dense(model, images)
    results = _infer_sparse(model, images)
    if model.tta and images:
        dim = len(images[0].shape)
        for axis in range(dim):
            add_mirrored(results, _infer_sparse(model, [mirror(im, axis) for im in images]), images, axis)
        average_passes(results, 1 + dim)
    return results


def mirror_coords(coords: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """``coords`` reflected along ``axis`` of an image of ``shape`` (a reflection is its own inverse)."""
    coords = coords.copy()
    coords[:, axis] = shape[axis] - 1 - coords[:, axis]
    return coords


def mirror(image, axis: int):
    """The image reflected along ``axis`` (labels and values unchanged)."""
    return replace(image, coords=mirror_coords(image.coords, image.shape, axis), vertex=None)


def add_mirrored(results: list[dict], mirrored: list[dict], images: list, axis: int) -> None:
    """Adds to each result's scores those of the network's pass over the image mirrored along
    ``axis``, matched back site by site (test-time augmentation)."""
    for result, other, image in zip(results, mirrored, images, strict=True):
        back = mirror_coords(other["coords"], image.shape, axis)
        result["scores"] += other["scores"][_align(result["coords"], back, image.shape)]


def average_passes(results: list[dict], passes: int) -> None:
    """Summed scores of ``passes`` network passes -> their mean, and the labels from it."""
    for result in results:
        result["scores"] /= passes
        result["label"] = result["scores"].argmax(1).astype(np.int8)


def _align(coords: np.ndarray, other: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """For each row of ``coords``, the row of ``other`` at the same site (both hold the same sites)."""
    key, other_key = np.ravel_multi_index(coords.T, shape), np.ravel_multi_index(other.T, shape)
    order = np.argsort(other_key)
    return order[np.searchsorted(other_key, key, sorter=order)]


def _infer_sparse(model: LoadedModel, images: list) -> list[dict]:
    batch = sparse_batch(images, model.adc_window, pad_to=model.net.config.stride, scale=model.feature_scale)
    with torch.no_grad(), _precision(model):
        out = model.net(batch.tensor.to(model.device))
    scores = torch.softmax(out.feats.float(), dim=1).cpu()
    rows = batch.tensor.coords[:, 0]
    results = []
    for b in range(len(images)):
        mine = rows == b
        s = scores[mine].numpy()
        label = s.argmax(1).astype(np.int8)
        results.append({"coords": batch.tensor.coords[mine, 1:].numpy().astype(np.int32), "scores": s,
                        "label": label, "truth": batch.semantic[mine].numpy()})
    return results


def _precision(model: LoadedModel):
    return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=model.precision == "bf16")


def predict_image(model: LoadedModel, image) -> tuple[np.ndarray, np.ndarray]:
    """The sites of one image the network saw and its predicted class for each."""
    coords, label, _ = predict_scores(model, image)
    return coords, label


def predict_scores(model: LoadedModel, image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sites of one image the network saw, its predicted class and class probabilities (N, C)."""
    result = _infer(model, [image])[0]
    return result["coords"], result["label"], result["scores"]


def _infer_dense(model: LoadedModel, images: list) -> list[dict]:
    """A dense network's background/track/shower scores at the active sites, plus its labels
    and the truth of every pixel (``pixel_truth``/``pixel_label``, flattened) for evaluation."""
    batch = dense_batch(images, model.adc_window, pad_to=model.net.config.stride, scale=model.feature_scale)
    with torch.no_grad(), _precision(model):
        scores = torch.softmax(model.net(batch.image.to(model.device)).float(), dim=1).cpu()
    labels = scores.argmax(1)
    results = []
    for b, image in enumerate(images):
        h, w = image.shape
        active = batch.image[b, 0, :h, :w] != 0
        rows, cols = torch.nonzero(active, as_tuple=True)
        s = scores[b, :, rows, cols].T.numpy()
        results.append({"coords": torch.stack([rows, cols], 1).numpy().astype(np.int32), "scores": s,
                        "label": s.argmax(1).astype(np.int8), "truth": batch.labels[b, rows, cols].numpy(),
                        "pixel_truth": batch.labels[b, :h, :w].reshape(-1).numpy(),
                        "pixel_label": labels[b, :h, :w].reshape(-1).numpy()})
    return results


def _two_class_scores(scores: np.ndarray) -> np.ndarray:
    """(N, 5) class probabilities -> (N, 2) track/shower probabilities (sums of their classes);
    (N, 3) background/track/shower -> the track and shower columns (background is the rest)."""
    if scores.shape[1] == len(DENSE_CLASS_NAMES):
        return scores[:, 1:].astype(np.float32)
    out = np.zeros((scores.shape[0], 2), np.float32)
    for k, target in enumerate(SEMANTIC_TO_TWO_CLASS[: scores.shape[1]]):
        out[:, target] += scores[:, k]
    return out


def _two_class_labels(label: np.ndarray, n_classes: int) -> np.ndarray:
    """5-class labels -> track 0 / shower 1; dense labels -> the same, background -1."""
    if n_classes == len(DENSE_CLASS_NAMES):
        return (label.astype(np.int8) - 1).astype(np.int8)
    return SEMANTIC_TO_TWO_CLASS[label]


def _shard(text: str | None, events: int) -> range:
    if text is None:
        return range(events)
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or int(match[1]) >= int(match[2]):
        raise ValueError(f"--shard must be K/N with 0 <= K < N, got {text!r}")
    k, n = int(match[1]), int(match[2])
    return range(k, events, n)


def predict(model_spec: str, input_path: str, out: str, plane: int | None = None, shard: str | None = None,
            batch_size: int = 4, part_size: int = 50, progress: bool = True, precision: str = "fp32",
            device: str = "auto", tta: bool = False) -> dict:
    """Writes per-site scores and labels for every event of this shard to ``out`` (resumable)."""
    model = load_model(model_spec, device, precision, tta)
    if model.task == "tagging":
        from lartpcnet import tagging

        return tagging.predict(model, input_path, out, shard, batch_size, part_size, progress)
    if plane is not None:
        model.plane = plane
    with data.open(input_path) as reader:
        indices = list(_shard(shard, len(reader)))
        job = PartsJob(out, {"model": str(Path(model_spec).resolve()), "input": str(Path(input_path).resolve()),
                             "plane": model.plane, "shard": shard, "precision": precision, "tta": tta},
                      len(indices), part_size)
        bar = tqdm(total=len(indices), initial=job.done_items(), desc="predict", unit="event", disable=not progress,
                   file=sys.stderr)
        counts: dict[int, dict] = {}
        for k in job.missing():
            part = [indices[i] for i in job.items_of(k)]
            results = []
            for start in range(0, len(part), batch_size):
                chunk = part[start : start + batch_size]
                images = [reader[i].image(model.plane, input_path, i) for i in chunk]
                results += _infer(model, images)
                bar.update(len(chunk))
            _write_predictions(job.path(k), part, results, model)
        bar.close()
    merged = _merge(job, out, model)
    with h5py.File(out) as f:
        labels, offsets, events = f["sites/label"][:], f["sites/offsets"][:], f["events/index"][:]
    for n, event in enumerate(events):
        values = labels[offsets[n] : offsets[n + 1]]
        counts[int(event)] = {name: int((values == c).sum()) for c, name in enumerate(model.classes)}
    return {"model": model.source, "input": input_path, "out": out, "shard": shard, "events": merged,
            "plane": model.plane, "precision": precision, "tta": tta, "class_counts": counts}


SITE_FIELDS = ("coords", "scores", "label", "two_class_scores", "two_class_label")


def _sites(results: list[dict], dim: int, n_classes: int) -> dict[str, np.ndarray]:
    """Per-site output arrays of some events, concatenated, with their offsets."""
    if results:
        coords = np.concatenate([r["coords"] for r in results]).astype(np.int32)
        scores = np.concatenate([r["scores"] for r in results]).astype(np.float32)
        label = np.concatenate([r["label"] for r in results]).astype(np.int8)
    else:
        coords, scores, label = np.zeros((0, dim), np.int32), np.zeros((0, n_classes), np.float32), np.zeros(0, np.int8)
    return {"coords": coords, "scores": scores.astype(np.float16), "label": label,
            "two_class_scores": _two_class_scores(scores).astype(np.float16),
            "two_class_label": _two_class_labels(label, n_classes),
            "offsets": np.concatenate([[0], np.cumsum([len(r["label"]) for r in results])]).astype(np.int64)}


def _write_file(path: str | Path, events: np.ndarray, sites: dict[str, np.ndarray], model: LoadedModel) -> None:
    """The prediction file layout: events/index and per-site arrays with offsets per event."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = PREDICTION_FORMAT
        f.attrs["classes"] = json.dumps(list(model.classes))
        f.attrs["two_classes"] = json.dumps(list(TWO_CLASS_NAMES))
        f.attrs["model"] = model.source
        f.attrs["plane"] = -1 if model.plane is None else model.plane
        f.attrs["precision"] = model.precision
        f.attrs["tta"] = model.tta
        f.create_dataset("events/index", data=np.asarray(events, np.int64), track_times=False)
        for name, values in sites.items():
            f.create_dataset(f"sites/{name}", data=values, compression="gzip", track_times=False)


def _write_predictions(path: Path, events: list[int], results: list[dict], model: LoadedModel) -> None:
    _write_file(path, np.array(events), _sites(results, 2 if model.plane is not None else 3, len(model.classes)),
                model)


def _merge(job: PartsJob, out: str, model: LoadedModel) -> int:
    """Concatenates the parts into ``out`` (atomically) and removes them; returns the event count."""
    events, fields = [], {name: [] for name in SITE_FIELDS}
    offsets, base = [np.zeros(1, np.int64)], 0
    for k in range(job.n_parts):
        with h5py.File(job.path(k)) as f:
            events.append(f["events/index"][:])
            for name in SITE_FIELDS:
                fields[name].append(f[f"sites/{name}"][:])
            offsets.append(f["sites/offsets"][1:] + base)
            base += int(f["sites/offsets"][-1])
    sites = {name: np.concatenate(parts) for name, parts in fields.items()} | {"offsets": np.concatenate(offsets)}
    _write_file(out, np.concatenate(events), sites, model)
    job.cleanup()
    return int(sum(len(e) for e in events))


def read_predictions(path: str | Path, event: int) -> dict:
    """One event's predictions from a ``lartpcnet predict`` file: coords, label, scores, classes, plane."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"cannot be opened as HDF5 ({err})", file=str(path)) from err
    with f:
        if f.attrs.get("format") != PREDICTION_FORMAT:
            raise DataError("is not a lartpcnet predict output", file=str(path), field="format")
        index = f["events/index"][:]
        rows = np.nonzero(index == event)[0]
        if len(rows) == 0:
            raise DataError(f"has no predictions for this event (it holds {len(index)} events)", file=str(path),
                            event=event)
        lo, hi = f["sites/offsets"][rows[0]], f["sites/offsets"][rows[0] + 1]
        plane = int(f.attrs["plane"])
        return {"coords": f["sites/coords"][lo:hi], "label": f["sites/label"][lo:hi],
                "scores": f["sites/scores"][lo:hi].astype(np.float32), "classes": json.loads(f.attrs["classes"]),
                "plane": None if plane < 0 else plane, "model": str(f.attrs["model"]),
                "all_planes": plane == -2, "downsample": int(f.attrs.get("downsample", 1))}


@contextmanager
def event_source(input_path: str | None, sample: str | None, events: int, seed: int):
    """``with event_source(...) as (event_at, indices, where)`` for ``--in FILE`` or ``--sample NAME
    --events N --seed K``: event ``i`` of the file, or event ``i`` of the sample simulated with ``seed``.
    A file is closed when the block ends."""
    from lartpcnet.sim.samples import generate_event, load_sample

    if (input_path is None) == (sample is None):
        raise ValueError("give exactly one of --in FILE or --sample NAME")
    if sample is not None:
        config = load_sample(sample)
        yield (lambda i: generate_event(config, seed, i)), range(events), f"sample {sample}"
        return
    with data.open(input_path) as reader:
        yield (lambda i: reader[i]), range(len(reader)), input_path


def evaluate(model_spec: str | LoadedModel, input_path: str | None = None, sample: str | None = None,
             events: int = 100, seed: int = 0, plane: int | None = None, out: str | None = None, batch_size: int = 4,
             progress: bool = True, adc_scale: float = 1.0, precision: str = "fp32", device: str = "auto",
             tta: bool = False) -> dict:
    """Segmentation metrics of a model (a name, a checkpoint or one already loaded) on a file or on
    freshly simulated events (plots into ``out``)."""
    model = model_spec if isinstance(model_spec, LoadedModel) else load_model(model_spec, device, precision, tta)
    precision = model.precision
    if model.task == "tagging":
        from lartpcnet import tagging

        return tagging.evaluate(model, input_path, sample, events, seed, out, batch_size, progress)
    with event_source(input_path, sample, events, seed) as (event_at, indices, where):
        if plane is not None:
            model.plane = plane
        metrics = model.metrics()

        def image(i):
            return event_at(i).image(model.plane, where, i)

        bar = tqdm(total=len(indices), desc="evaluate", unit="event", disable=not progress, file=sys.stderr)
        chunk: list = []
        for i in indices:
            chunk.append(image(i))
            if len(chunk) == batch_size or i == indices[-1]:
                for img, result in zip(chunk, _infer(model, chunk, adc_scale), strict=True):
                    if model.sparse:
                        metrics.add(result["truth"], result["label"], result["coords"], img.shape)
                    else:
                        grid = np.indices(img.shape).reshape(2, -1).T
                        metrics.add(result["pixel_truth"], result["pixel_label"], grid, img.shape)
                bar.update(len(chunk))
                chunk = []
        bar.close()
    summary = {"model": model.source, "input": input_path, "sample": sample, "seed": seed if sample else None,
               "precision": precision, "tta": model.tta, **metrics.summary()}
    if out is not None:
        from lartpcnet.viz.plots import plot_confusion

        Path(out).mkdir(parents=True, exist_ok=True)
        plot_confusion(summary["confusion"], Path(out) / f"confusion_{len(model.classes)}class.png",
                       f"{len(model.classes)}-class confusion")
        plot_confusion(summary["two_class_confusion"], Path(out) / "confusion_2class.png", "track/shower confusion")
    return summary


TABLE_SAMPLES = ("particle_bomb", "mpv", "1e1p", "1e1p_le", "1mu1p_le", "uboone_nue_cosmics")
SCALES = (0.75, 0.85, 0.95, 1.0, 1.05, 1.15, 1.25)


def sample_table(model_spec: str, samples=TABLE_SAMPLES, events: int = 100, seed: int = 12345,
                 progress: bool = True) -> list[dict]:
    """MicroBooNE 2019 Table I style: the metrics on fresh events of each sample."""
    model, rows = load_model(model_spec), []
    for sample in samples:
        summary = evaluate(model, sample=sample, events=events, seed=seed, progress=progress)
        rows.append({"sample": sample, **{k: summary[k] for k in ("nonzero_accuracy", "two_class_accuracy",
                                                                  "icpf_mean", "icpf_q90", "shower_error_rate",
                                                                  "track_error_rate", "class_accuracy")}})
    return rows


def scale_curve(model_spec: str, sample: str = "mpv", events: int = 100, seed: int = 12345,
                scales=SCALES, progress: bool = True) -> list[dict]:
    """ICPF and accuracy as every pixel value is multiplied by a scale factor (MicroBooNE 2019)."""
    model = load_model(model_spec)
    return [{"scale": scale, **{k: v for k, v in evaluate(model, sample=sample, events=events, seed=seed,
                                                          adc_scale=scale, progress=progress).items()
                                 if k in ("icpf_mean", "icpf_q90", "nonzero_accuracy", "two_class_accuracy")}}
            for scale in scales]


def table_markdown(rows: list[dict]) -> str:
    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}"

    lines = ["| sample | non-zero acc. % | track/shower acc. % | ICPF mean % | ICPF 90% % | shower err. % "
             "| track err. % |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['sample']} | {pct(r['nonzero_accuracy'])} | {pct(r['two_class_accuracy'])} | "
                     f"{pct(r['icpf_mean'])} | {pct(r['icpf_q90'])} | {pct(r['shower_error_rate'])} | "
                     f"{pct(r['track_error_rate'])} |")
    return "\n".join(lines) + "\n"


def plot_scale_curve(rows: list[dict], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    scales = [r["scale"] for r in rows]
    ax.plot(scales, [100 * r["icpf_mean"] for r in rows], "o-", label="ICPF mean")
    ax.plot(scales, [100 * r["icpf_q90"] for r in rows], "s--", label="ICPF 90% quantile")
    ax.set_xlabel("pixel value scale factor")
    ax.set_ylabel("incorrectly classified pixels [%]")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    from lartpcnet.viz.plots import save_figure

    return save_figure(fig, path)
