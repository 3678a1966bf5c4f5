"""Applying the cosmic tagger: ``lartpcnet predict``, ``evaluate`` and ``select`` for it.

Predictions are written per event and plane at the network's resolution (``downsample`` of the
model): ``sites/coords`` holds (plane, row, column), with background/cosmic/neutrino scores and
labels, and ``events/index`` + ``sites/offsets`` as for the U-ResNet outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

import lartpcnet.data as data
from lartpcnet.data.labels import NEUTRINO, ORIGIN_NAMES
from lartpcnet.errors import DataError
from lartpcnet.inference import (
    PREDICTION_FORMAT,
    LoadedModel,
    _shard,
    add_mirrored,
    average_passes,
    event_source,
    load_model,
    mirror,
)
from lartpcnet.io_utils import atomic_path
from lartpcnet.metrics.tagging import KEYS, TaggingMetrics, plot_iou_vs_energy
from lartpcnet.parts import PartsJob
from lartpcnet.reco import selection
from lartpcnet.train.tasks import TaggingItem, tagging_item, tagging_predictions

ENERGY_BINS = np.arange(0.0, 3001.0, 250.0)  # MeV, Fig. 9


def _items(model: LoadedModel, events, where: str, indices) -> list[TaggingItem]:
    items = []
    for i in indices:
        event = events(i)
        if len(event.planes) != model.net.config.planes:
            raise DataError(f"has {len(event.planes)} planes, the tagger needs {model.net.config.planes}",
                            file=where, event=i)
        items.append(tagging_item(event, model.downsample))
    return items


def _run(model: LoadedModel, items: list[TaggingItem]) -> list[list[dict]]:
    results = _run_once(model, items)
    if model.tta:  # mirror rows (drift) in every plane at once, then columns (wires)
        for axis in (0, 1):
            mirrored = [TaggingItem([mirror(p, axis) for p in item.planes], item.kind, item.energy) for item in items]
            for planes, others, item in zip(results, _run_once(model, mirrored), items, strict=True):
                add_mirrored(planes, others, item.planes, axis)
        for planes in results:
            average_passes(planes, 3)
    return results


def _run_once(model: LoadedModel, items: list[TaggingItem]) -> list[list[dict]]:
    with torch.no_grad(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=model.precision == "bf16"):
        return tagging_predictions(model.net, items, model.threshold, model.device)


def _predicted(model: LoadedModel, event_at, where: str, indices, batch_size: int, bar):
    """``(index, item, per-plane predictions)`` for each event, run in batches; ``bar`` counts them."""
    indices = list(indices)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        items = _items(model, event_at, where, chunk)
        yield from zip(chunk, items, _run(model, items), strict=True)
        bar.update(len(chunk))


def _score(item: TaggingItem, planes: list[dict], index: int, *into: TaggingMetrics) -> None:
    """Adds each plane of one tagged event to every metrics accumulator in ``into``."""
    for p, r in enumerate(planes):
        h, w = item.planes[p].shape
        for metrics in into:
            metrics.add(p, r["truth"], r["label"], h * w, item.kind, item.energy, index)


def draw(model: LoadedModel, event, path, title: str, where: str = "event", index: int = 0) -> tuple[Path, dict]:
    """Tags one event and draws input, truth, prediction and mistakes per plane; returns the
    picture and the event's metrics (accuracy, non-background accuracy, IoUs)."""
    from lartpcnet.viz.event_display import draw_tagging

    (item,) = _items(model, lambda i: event, where, [index])
    (planes,) = _run(model, [item])
    metrics = TaggingMetrics(len(planes))
    _score(item, planes, index, metrics)
    table = _tables([index], [planes])
    return draw_tagging(item.planes, table["coords"], table["label"], path, title), metrics.summary()


def _tables(events: list[int], results: list[list[dict]]) -> dict:
    """Per-event predictions as the output file's arrays (coords are plane, row, column)."""
    coords, scores, labels, sizes = [], [], [], []
    for planes in results:
        for p, r in enumerate(planes):
            coords.append(np.concatenate([np.full((len(r["coords"]), 1), p, np.int32), r["coords"]], 1))
            scores.append(r["scores"])
            labels.append(r["label"])
        sizes.append(sum(len(r["label"]) for r in planes))
    return {"events": np.asarray(events, np.int64),
            "coords": np.concatenate(coords) if coords else np.zeros((0, 3), np.int32),
            "scores": (np.concatenate(scores) if scores else np.zeros((0, 3))).astype(np.float16),
            "label": np.concatenate(labels) if labels else np.zeros(0, np.int8),
            "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)}


def _write(path, tables: dict, model: LoadedModel) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = PREDICTION_FORMAT
        f.attrs["classes"] = json.dumps(list(ORIGIN_NAMES))
        f.attrs["model"] = model.source
        f.attrs["plane"] = -2  # every plane: coords are (plane, row, column)
        f.attrs["downsample"] = model.downsample
        f.attrs["tta"] = model.tta
        f.create_dataset("events/index", data=tables["events"])
        for name in ("coords", "scores", "label"):
            f.create_dataset(f"sites/{name}", data=tables[name], compression="gzip")
        f.create_dataset("sites/offsets", data=tables["offsets"])


def predict(model: LoadedModel, input_path: str, out: str, shard: str | None = None, batch_size: int = 1,
            part_size: int = 20, progress: bool = True) -> dict:
    with data.open(input_path) as reader:
        indices = list(_shard(shard, len(reader)))
        job = PartsJob(out, {"model": str(Path(model.source).resolve()), "input": str(Path(input_path).resolve()),
                             "shard": shard, "precision": model.precision, "tta": model.tta}, len(indices), part_size)
        bar = tqdm(total=len(indices), initial=job.done_items(), desc="predict", unit="event",
                   disable=not progress, file=sys.stderr)
        for k in job.missing():
            part = [indices[i] for i in job.items_of(k)]
            results = [planes for _, _, planes in _predicted(model, lambda i: reader[i], input_path, part,
                                                             batch_size, bar)]
            _write(job.path(k), _tables(part, results), model)
        bar.close()
    merged = _merge([_read_part(job.path(k)) for k in range(job.n_parts)])
    _write(out, merged, model)
    job.cleanup()
    counts = {}
    for n, event in enumerate(merged["events"]):
        labels = merged["label"][merged["offsets"][n] : merged["offsets"][n + 1]]
        planes = merged["coords"][merged["offsets"][n] : merged["offsets"][n + 1], 0]
        counts[int(event)] = [{name: int(((labels == c) & (planes == p)).sum()) for c, name in enumerate(ORIGIN_NAMES)}
                              for p in range(model.net.config.planes)]
    return {"model": model.source, "input": input_path, "out": out, "shard": shard, "events": len(merged["events"]),
            "downsample": model.downsample, "tta": model.tta, "class_counts": counts}


def _read_part(path) -> dict:
    with h5py.File(path) as f:
        return {"events": f["events/index"][:], "coords": f["sites/coords"][:], "scores": f["sites/scores"][:],
                "label": f["sites/label"][:], "offsets": f["sites/offsets"][:]}


def _merge(tables: list[dict]) -> dict:
    offsets, base = [np.zeros(1, np.int64)], 0
    for t in tables:
        offsets.append(t["offsets"][1:] + base)
        base += int(t["offsets"][-1])
    return {"events": np.concatenate([t["events"] for t in tables]),
            "coords": np.concatenate([t["coords"] for t in tables]),
            "scores": np.concatenate([t["scores"] for t in tables]),
            "label": np.concatenate([t["label"] for t in tables]), "offsets": np.concatenate(offsets)}


def evaluate(model: LoadedModel, input_path: str | None, sample: str | None, events: int = 100, seed: int = 0,
             out: str | None = None, batch_size: int = 1, progress: bool = True) -> dict:
    """Accuracy, non-background accuracy and IoUs per plane and averaged, per event too, and
    (for simulated events) the IoUs against neutrino energy per interaction kind."""
    with event_source(input_path, sample, events, seed) as (event_at, indices, where):
        metrics = TaggingMetrics(model.net.config.planes)
        per_event = []
        bar = tqdm(total=len(indices), desc="evaluate", unit="event", disable=not progress, file=sys.stderr)
        for i, item, planes in _predicted(model, event_at, where, indices, batch_size, bar):
            mine = TaggingMetrics(len(planes))
            _score(item, planes, i, metrics, mine)
            summary = mine.summary()
            per_event.append({"event": i, "kind": item.kind, "energy": item.energy, **{k: summary[k] for k in KEYS}})
        bar.close()
    report = {"model": model.source, "input": input_path, "sample": sample, "seed": seed if sample else None,
              "downsample": model.downsample, "tta": model.tta, **metrics.summary(), "events": per_event}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        curves = metrics.iou_vs_energy(ENERGY_BINS)
        if curves:
            report["iou_vs_energy"] = {"bins_mev": ENERGY_BINS.tolist(), **curves}
            plot_iou_vs_energy(curves, ENERGY_BINS, Path(out) / "iou_vs_energy.png")
    return report


def select(model_spec: str, input_path: str | None = None, sample: str | None = None, events: int = 100,
           seed: int = 0, min_pixels: int = 100, max_row_separation: float | None = None, out: str | None = None,
           batch_size: int = 1, progress: bool = True, device: str = "auto", tta: bool = False) -> dict:
    """``lartpcnet select``: the neutrino event selection with its efficiencies and ROC curve."""
    model = load_model(model_spec, device, tta=tta)
    if model.task != "tagging":
        raise ValueError(f"{model_spec} is a {model.name} model; select needs a cosmic tagger")
    with event_source(input_path, sample, events, seed) as (event_at, indices, where):
        rows = []
        bar = tqdm(total=len(indices), desc="select", unit="event", disable=not progress, file=sys.stderr)
        for i, item, planes in _predicted(model, event_at, where, indices, batch_size, bar):
            counts, means = selection.plane_summaries([r["coords"][r["label"] == NEUTRINO, 0] for r in planes])
            rows.append({"event": i, "kind": item.kind or "unknown", "counts": counts, "means": means,
                         "rows": item.planes[0].shape[0]})
        bar.close()
    cut = max_row_separation if max_row_separation is not None else (
        selection.row_cut_for(rows[0]["rows"]) if rows else 50.0)
    report = {"model": model.source, "input": input_path, "sample": sample, "tta": tta, "min_pixels": min_pixels,
              "max_row_separation": cut, **selection.efficiencies(rows, min_pixels, cut),
              "selected": [r["event"] for r in rows if selection.selected(r["counts"], r["means"], min_pixels, cut)]}
    report["roc"] = selection.roc(rows, max_row_separation=cut)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        report["roc_plot"] = str(selection.plot_roc(report["roc"], Path(out) / "selection_roc.png", min_pixels))
    return report
