"""Cosmic tagging: every wire plane of an event per item, background/cosmic/neutrino per pixel
(the SBND cosmic paper's multi-plane U-ResNet, sparse or dense).

Items hold the planes at the network's resolution (``downsample``); outputs are the labelled
sites of every plane as (plane, row, column). Metrics are the paper's IoUs over every pixel of
each plane (``metrics.tagging``), with the IoU against neutrino energy (Fig. 9) under
``evaluate --out``. The neutrino event selection (``lartpcnet select``, ``reco.selection``) runs
on this task's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.labels import BACKGROUND_ORIGIN, NEUTRINO, ORIGIN_NAMES
from lartpcnet.data.settings import InputSettings
from lartpcnet.data.tagging import downsample, tagger_batch
from lartpcnet.errors import DataError
from lartpcnet.metrics.tagging import KEYS, TaggingMetrics, plot_iou_vs_energy
from lartpcnet.tasks.base import Metrics, Output, Task

ENERGY_BINS = np.arange(0.0, 3001.0, 250.0)  # MeV, Fig. 9


@dataclass
class TaggingItem:
    """The planes of one event at the network's resolution, with what the metrics break down by."""

    planes: list[SparseImage]
    kind: str | None  # nueCC, numuCC, NC, cosmic_only; None where the file does not say
    energy: float | None  # neutrino energy [MeV]


def tagging_item(event: Event, factor: int) -> TaggingItem:
    kind = energy = None
    if event.interactions is not None and len(event.interactions):
        nu = event.interactions[event.interactions["origin"] == NEUTRINO]
        if len(nu):
            kind, energy = nu["kind"][0].decode(), float(nu["energy"][0])
        elif event.meta.get("kind") == "cosmic_only":
            kind = "cosmic_only"
    return TaggingItem([downsample(p, factor) for p in event.planes], kind, energy)


class TaggingScore(Metrics):
    """The paper's per-plane metrics, and each event's own (``events`` in the summary)."""

    def __init__(self, planes: int, settings: InputSettings) -> None:
        self.metrics, self.settings = TaggingMetrics(planes), settings
        self.per_event: list[dict] = []
        self.labelled = False

    def add(self, index: int, item: TaggingItem, output: Output) -> None:
        mine = TaggingMetrics(len(item.planes))
        for p, image in enumerate(item.planes):
            on = output.coords[:, 0] == p
            h, w = image.shape
            for metrics in (self.metrics, mine):
                metrics.add(p, output.truth[on], output.label[on], h * w, item.kind, item.energy, index)
        self.labelled |= bool((output.truth != BACKGROUND_ORIGIN).any())
        summary = mine.summary()
        self.per_event.append({"event": index, "kind": item.kind, "energy": item.energy,
                               **{k: summary[k] for k in KEYS}})

    def summary(self) -> dict:
        return {"downsample": self.settings.downsample, **self.metrics.summary(), "events": self.per_event}

    @property
    def scored(self) -> bool:
        return self.labelled


class TaggingTask(Task):
    name = "tagging"
    headline = ("mean_iou", "neutrino_iou", "nonbackground_accuracy")
    curves: ClassVar[dict[str, str]] = {"nonbackground_accuracy": "non-background accuracy", "cosmic_iou": "cosmic IoU",
              "neutrino_iou": "neutrino IoU", "mean_iou": "mean IoU"}
    post_steps = ("select",)

    # --- inputs ---------------------------------------------------------------------------
    def item(self, event: Event, settings: InputSettings, where: str, index: int) -> TaggingItem:
        if not event.planes:
            raise DataError("has no wire planes, which the cosmic tagger needs", file=where, event=index)
        return tagging_item(event, settings.downsample)

    def check(self, item: TaggingItem, net, where: str, index: int) -> None:
        if len(item.planes) != net.config.planes:
            raise DataError(f"has {len(item.planes)} planes, the tagger needs {net.config.planes}", file=where,
                            event=index)

    def is_empty(self, items: Sequence[TaggingItem], settings: InputSettings) -> bool:
        threshold = settings.threshold
        return not any((p.values >= threshold).any() if threshold is not None else len(p)
                       for item in items for p in item.planes)

    # --- network --------------------------------------------------------------------------
    def _forward(self, model, net, items: Sequence[TaggingItem], settings: InputSettings, device):
        """(per-site or per-pixel logits, labels, image index, the batch)."""
        batch = tagger_batch([it.planes for it in items], sparse=net.config.sparse, pad_to=net.config.stride,
                             threshold=settings.threshold, scale=settings.feature_scale)
        if net.config.sparse:
            out = model(batch.tensor.to(device))
            return out.feats, batch.labels.to(device), batch.tensor.coords[:, 0].to(device), batch
        out = model(batch.dense.to(device))
        n, c, h, w = out.shape
        logits = out.permute(0, 2, 3, 1).reshape(-1, c)
        image = torch.arange(n, device=device).repeat_interleave(h * w)
        return logits, batch.labels.reshape(-1).to(device), image, batch

    def loss(self, model, net, loss_fn, items, settings, device) -> torch.Tensor:
        logits, labels, image, _ = self._forward(model, net, items, settings, device)
        return loss_fn(logits, labels, image)

    def outputs(self, net, items, settings, device) -> list[Output]:
        logits, labels, image, batch = self._forward(net, net, items, settings, device)
        scores = torch.softmax(logits.float(), 1).cpu().numpy()
        predicted = scores.argmax(1).astype(np.int8)
        labels, image = labels.cpu().numpy(), image.cpu().numpy()
        h, w = batch.shape
        if net.config.sparse:
            coords = batch.tensor.coords[:, 1:].numpy()
        else:
            grid = np.indices(batch.labels.shape[-2:]).reshape(2, -1).T
            coords = np.tile(grid, (batch.events * batch.planes, 1))
        inside = (coords[:, 0] < h) & (coords[:, 1] < w)  # not the padding
        plane = image % batch.planes
        out = []
        for e in range(batch.events):
            mine = (image // batch.planes == e) & inside
            out.append(Output(np.concatenate([plane[mine, None], coords[mine]], 1).astype(np.int32), scores[mine],
                              predicted[mine], labels[mine]))
        return out

    # --- test-time augmentation: every plane mirrored at once, along the drift, then the wires
    def supports_tta(self, net) -> bool:
        return True

    def tta_axes(self, net, item: TaggingItem) -> int:
        return 2

    def mirror(self, item: TaggingItem, axis: int) -> TaggingItem:
        from lartpcnet.tasks.segmentation import mirror_coords

        planes = [replace(p, coords=mirror_coords(p.coords, p.shape, axis), vertex=None) for p in item.planes]
        return TaggingItem(planes, item.kind, item.energy)

    def unmirror(self, coords: np.ndarray, item: TaggingItem, axis: int) -> np.ndarray:
        coords = coords.copy()
        coords[:, 1 + axis] = item.planes[0].shape[axis] - 1 - coords[:, 1 + axis]
        return coords

    # --- results --------------------------------------------------------------------------
    def classes(self, net) -> tuple[str, ...]:
        return ORIGIN_NAMES

    def metrics(self, net, settings: InputSettings) -> TaggingScore:
        return TaggingScore(net.config.planes, settings)

    def image_of(self, settings: InputSettings) -> str:
        return "planes"

    def counts(self, output: Output, classes: tuple[str, ...]) -> list[dict]:
        planes = int(output.coords[:, 0].max()) + 1 if len(output) else 0
        return [{name: int(((output.label == c) & (output.coords[:, 0] == p)).sum()) for c, name in enumerate(classes)}
                for p in range(planes)]

    def summary_text(self, summary: dict) -> str:
        def fmt(v):
            return "—" if v is None else f"{v:.3f}"

        keys = ("accuracy", "nonbackground_accuracy", "cosmic_iou", "neutrino_iou", "mean_iou")
        lines = [f"{len(summary['events'])} events ({summary['images']} plane images)",
                 f"{'':24s}" + "".join(f"{k:>24s}" for k in keys),
                 *(f"{'plane ' + str(p):24s}" + "".join(f"{fmt(row[k]):>24s}" for k in keys)
                   for p, row in enumerate(summary["per_plane"])),
                 f"{'mean':24s}" + "".join(f"{fmt(summary[k]):>24s}" for k in keys)]
        if "neutrino_events" in summary:  # the paper's test set: a neutrino in every event
            lines.append(f"{'events with a neutrino':24s}"
                         + "".join(f"{fmt(summary['neutrino_events'][k]):>24s}" for k in keys))
        return "\n".join(lines)

    def evaluation_plots(self, metrics: TaggingScore, summary: dict, folder: Path) -> None:
        curves = metrics.metrics.iou_vs_energy(ENERGY_BINS)
        if curves:
            summary["iou_vs_energy"] = {"bins_mev": ENERGY_BINS.tolist(), **curves}
            plot_iou_vs_energy(curves, ENERGY_BINS, folder / "iou_vs_energy.png")

    def draw(self, event: Event, prediction: dict, path, title: str) -> Path:
        from lartpcnet.viz.event_display import draw_tagging

        planes = [downsample(p, prediction["downsample"]) for p in event.planes]
        return draw_tagging(planes, prediction["coords"], prediction["label"], path, title)
