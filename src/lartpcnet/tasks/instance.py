"""Instance clustering of one wire plane per item: sMask-RCNN (the sMask-RCNN paper).

Items are the collection plane of an event with the event's truth tables (an instance is all the
charge of one interaction: a cosmic muon with its daughters, or a whole neutrino interaction).
Outputs hold every site of the plane with the detection that claims it (``instance``, -1 none),
its class (``label``, ``models.maskrcnn.CLASS_NAMES``) and score; the prediction file adds each
event's detections (boxes, classes, scores). Metrics are the paper's efficiency, purity and
coverage (``metrics.instance``) with a non-learned baseline beside them: DBSCAN clusters of all
pixels as instances (eps 5, min_samples 2, chosen on tuning events: scripts/smaskrcnn_baseline.py).
The cosmic-only event veto (``lartpcnet veto``, ``reco.veto``) runs on this task's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.settings import InputSettings
from lartpcnet.errors import DataError
from lartpcnet.metrics.instance import InstanceMetrics, InstancePredictions, dbscan_predictions, image_truth
from lartpcnet.tasks.base import Metrics, Output, Task

# the DBSCAN baseline's parameters, chosen on tuning events (seeds 101-104) by the harmonic mean of
# event-averaged efficiency and purity: scripts/smaskrcnn_baseline.py
BASELINE = {"eps": 5.0, "min_samples": 2}


@dataclass
class InstanceItem:
    """One wire plane and the truth tables its instances and classes come from."""

    image: SparseImage
    interactions: np.ndarray | None
    particles: np.ndarray | None


class InstanceScore(Metrics):
    """The network's metrics and the DBSCAN baseline's on the same images."""

    def __init__(self) -> None:
        self.network, self.baseline = InstanceMetrics(), InstanceMetrics()

    def add(self, index: int, item: InstanceItem, output: Output) -> None:
        truth, truth_class = image_truth(item.image, item.interactions, item.particles)
        values = item.image.values
        self.network.add(values, truth, truth_class, output.extra["predictions"])
        self.baseline.add(values, truth, truth_class,
                          dbscan_predictions(item.image.coords, values, BASELINE["eps"], BASELINE["min_samples"]))

    def summary(self) -> dict:
        return {"images": len(self.network.events), **self.network.summary(),
                "dbscan_baseline": {**self.baseline.summary(), **BASELINE}}

    @property
    def scored(self) -> bool:
        return any(len(e.efficiency) for e in self.network.events)


class InstanceTask(Task):
    name = "instance"
    headline = ("efficiency", "purity", "covered")
    curves: ClassVar[dict[str, str]] = {"efficiency": "efficiency", "purity": "purity", "covered": "covered",
                                        "missed": "missed"}
    post_steps = ("veto",)

    # --- inputs ---------------------------------------------------------------------------
    def item(self, event: Event, settings: InputSettings, where: str, index: int) -> InstanceItem:
        image = event.image(settings.plane, where, index)
        if len(image.shape) != 2:
            raise DataError("sMask-RCNN takes a wire plane, not voxels", file=where, event=index)
        return InstanceItem(image, event.interactions, event.particles)

    def is_empty(self, items: Sequence[InstanceItem], settings: InputSettings) -> bool:
        return False  # an image without charge still teaches the RPN its background

    # --- network --------------------------------------------------------------------------
    def loss(self, model, net, loss_fn, items, settings, device) -> torch.Tensor:
        from lartpcnet.models.maskrcnn import image_tensor, instance_targets

        c = net.config
        images = [item.image for item in items]
        tensor, _ = image_tensor(images, c.threshold, c.feature_scale)
        tensor = tensor.to(device)
        targets = [instance_targets(item.image, item.interactions, item.particles, c.threshold) for item in items]
        targets = [_on(t, device) for t in targets]
        return loss_fn(model(tensor if c.sparse else tensor.to_dense(), targets))

    def outputs(self, net, items, settings, device) -> list[Output]:
        out = []
        for item, det in zip(items, net.predict([item.image for item in items]), strict=True):
            truth, truth_class = image_truth(item.image, item.interactions, item.particles)
            out.append(Output(item.image.coords.astype(np.int32), det.site_score.numpy()[:, None].astype(np.float32),
                              det.site_class.numpy().astype(np.int8), np.where(truth >= 0, truth_class, -1),
                              {"instance": det.site_instance.numpy().astype(np.int32),
                               "predictions": InstancePredictions.from_detections(det),
                               "boxes": det.boxes.numpy().astype(np.float32),
                               "classes": det.classes.numpy().astype(np.int8),
                               "scores": det.scores.numpy().astype(np.float32)}))
        return out

    # --- results --------------------------------------------------------------------------
    def classes(self, net) -> tuple[str, ...]:
        return tuple(net.config.classes)

    def metrics(self, net, settings: InputSettings) -> InstanceScore:
        return InstanceScore()

    def site_fields(self, outputs: Sequence[Output], classes: int) -> dict[str, np.ndarray]:
        return {"instance": np.concatenate([o.extra["instance"] for o in outputs]) if outputs
                else np.zeros(0, np.int32)}

    def event_fields(self, outputs: Sequence[Output]) -> dict[str, np.ndarray]:
        def cat(key, shape, dtype):
            return np.concatenate([o.extra[key] for o in outputs]) if outputs else np.zeros(shape, dtype)

        return {"detections/boxes": cat("boxes", (0, 4), np.float32), "detections/classes": cat("classes", 0, np.int8),
                "detections/scores": cat("scores", 0, np.float32),
                "detections/offsets": np.concatenate([[0], np.cumsum([len(o.extra["scores"]) for o in outputs])])
                .astype(np.int64)}

    def counts(self, output: Output, classes: tuple[str, ...]) -> dict:
        instances = np.unique(output.extra["instance"][output.extra["instance"] >= 0]) \
            if "instance" in output.extra else []
        return {"instances": len(instances),
                **{name: int((output.label == c).sum()) for c, name in enumerate(classes) if c}}

    def summary_text(self, summary: dict) -> str:
        def fmt(v):
            return "—" if v is None else f"{v:.3f}"

        keys = ("efficiency", "purity", "charge_efficiency", "covered", "missed", "event_efficiency", "event_purity")
        base = summary["dbscan_baseline"]
        lines = [f"{summary['images']} images, {summary.get('interactions', 0)} true interactions",
                 f"{'':28s}" + "".join(f"{k:>18s}" for k in keys),
                 f"{'sMask-RCNN':28s}" + "".join(f"{fmt(summary.get(k)):>18s}" for k in keys),
                 f"{'DBSCAN baseline':28s}" + "".join(f"{fmt(base.get(k)):>18s}" for k in keys)]
        for name, row in summary["per_class"].items():
            lines.append(f"{'sMask-RCNN, ' + name:28s}" + "".join(f"{fmt(row.get(k)):>18s}" for k in keys))
        return "\n".join(lines)

    def draw(self, event: Event, prediction: dict, path, title: str) -> Path:
        from lartpcnet.viz.event_display import draw_instances

        image = event.image(prediction["plane"], prediction.get("file", "event"), prediction.get("event", 0))
        truth, _ = image_truth(image, event.interactions, event.particles)
        return draw_instances(image, prediction["coords"], prediction["instance"], truth, path, title)


def _on(targets, device):
    """InstanceTargets with its tensors on ``device``."""
    from dataclasses import replace

    return replace(targets, boxes=targets.boxes.to(device), classes=targets.classes.to(device),
                   rows=targets.rows.to(device), cols=targets.cols.to(device), owner=targets.owner.to(device))
