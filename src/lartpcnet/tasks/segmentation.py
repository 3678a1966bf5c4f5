"""Semantic segmentation of one image per item: a wire plane or a 3D voxel volume.

- Sparse networks (SparseSSNet, Domine & Terao; 2D and 3D) label the active sites inside the ADC
  window with the five classes HIP, MIP, shower, delta, Michel; the file also gets their
  track/shower sums.
- Dense networks (MicroBooNE 2019) label every pixel background/track/shower. Their outputs are
  written at the active sites, and evaluation counts every pixel, so charge predicted on empty
  pixels counts against the ICPF.

Reports beyond ``evaluate``: MicroBooNE 2019's Table I (``--table``: the metrics on fresh events
of each benchmark sample) and its pixel-scale robustness curve (``--scale-curve``). Michel
electron reconstruction (``lartpcnet michel``, ``reco.michel``) runs on this task's outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from lartpcnet.data.batching import dense_batch, sparse_batch
from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.labels import DENSE_CLASS_NAMES, SEMANTIC_NAMES, SEMANTIC_TO_TWO_CLASS, TWO_CLASS_NAMES
from lartpcnet.data.settings import InputSettings
from lartpcnet.metrics.segmentation import SegmentationMetrics
from lartpcnet.tasks.base import Metrics, Output, Report, Task

TABLE_SAMPLES = ("particle_bomb", "mpv", "1e1p", "1e1p_le", "1mu1p_le", "uboone_nue_cosmics")
TABLE_KEYS = ("nonzero_accuracy", "two_class_accuracy", "icpf_mean", "icpf_q90", "shower_error_rate",
              "track_error_rate", "class_accuracy")
SCALES = (0.75, 0.85, 0.95, 1.0, 1.05, 1.15, 1.25)


def _dense(net: torch.nn.Module) -> bool:
    return not net.config.sparse


class SegmentationScore(Metrics):
    def __init__(self, net: torch.nn.Module) -> None:
        self.dense = _dense(net)
        self.metrics = SegmentationMetrics(DENSE_CLASS_NAMES, background=0) if self.dense else SegmentationMetrics()

    def add(self, index: int, item: SparseImage, output: Output) -> None:
        if self.dense:  # every pixel of the image
            grid = np.indices(item.shape).reshape(len(item.shape), -1).T
            self.metrics.add(output.extra["pixel_truth"], output.extra["pixel_label"], grid, item.shape)
        else:
            self.metrics.add(output.truth, output.label, output.coords, item.shape)

    def summary(self) -> dict:
        return self.metrics.summary()

    @property
    def scored(self) -> bool:
        return bool(self.metrics.confusion.sum())


class SegmentationTask(Task):
    name = "segmentation"
    headline = ("nonzero_accuracy", "two_class_accuracy", "icpf_mean")
    curves: ClassVar[dict[str, str]] = {"nonzero_accuracy": "non-zero accuracy", "two_class_accuracy": "track/shower",
              "icpf_mean": "ICPF mean"}
    post_steps = ("michel",)

    # --- inputs ---------------------------------------------------------------------------
    def item(self, event: Event, settings: InputSettings, where: str, index: int) -> SparseImage:
        return event.image(settings.plane, where, index)

    def is_empty(self, items: Sequence[SparseImage], settings: InputSettings) -> bool:
        window = settings.adc_window
        return not any(((im.values >= window[0]) & (im.values <= window[1])).any() if window else len(im)
                       for im in items)

    # --- network --------------------------------------------------------------------------
    def loss(self, model, net, loss_fn, items, settings, device) -> torch.Tensor:
        stride = net.config.stride
        if _dense(net):
            dense = dense_batch(items, settings.adc_window, pad_to=stride, scale=settings.feature_scale)
            return loss_fn.dense(model(dense.image.to(device)), dense.labels.to(device), dense.instance.to(device),
                                 dense.vertex.to(device))
        batch = sparse_batch(items, settings.adc_window, pad_to=stride, scale=settings.feature_scale)
        return loss_fn(model(batch.tensor.to(device)), batch.semantic.to(device), batch.instance.to(device))

    def outputs(self, net, items, settings, device) -> list[Output]:
        if _dense(net):
            return self._dense_outputs(net, items, settings, device)
        batch = sparse_batch(items, settings.adc_window, pad_to=net.config.stride, scale=settings.feature_scale)
        scores = torch.softmax(net(batch.tensor.to(device)).feats.float(), dim=1).cpu()
        rows = batch.tensor.coords[:, 0]
        out = []
        for b in range(len(items)):
            mine = rows == b
            s = scores[mine].numpy()
            out.append(Output(batch.tensor.coords[mine, 1:].numpy().astype(np.int32), s, s.argmax(1).astype(np.int8),
                              batch.semantic[mine].numpy(),
                              {"values": batch.values[mine].numpy(), "instance": batch.instance[mine].numpy()}))
        return out

    def _dense_outputs(self, net, items, settings, device) -> list[Output]:
        """Scores at the active sites, and the truth and labels of every pixel (for the metrics)."""
        batch = dense_batch(items, settings.adc_window, pad_to=net.config.stride, scale=settings.feature_scale)
        scores = torch.softmax(net(batch.image.to(device)).float(), dim=1).cpu()
        labels = scores.argmax(1)
        out = []
        for b, image in enumerate(items):
            h, w = image.shape
            active = batch.image[b, 0, :h, :w] != 0
            rows, cols = torch.nonzero(active, as_tuple=True)
            s = scores[b, :, rows, cols].T.numpy()
            out.append(Output(torch.stack([rows, cols], 1).numpy().astype(np.int32), s, s.argmax(1).astype(np.int8),
                              batch.labels[b, rows, cols].numpy(),
                              {"values": batch.image[b, 0, rows, cols].numpy() * settings.feature_scale,
                               "pixel_truth": batch.labels[b, :h, :w].reshape(-1).numpy(),
                               "pixel_label": labels[b, :h, :w].reshape(-1).numpy()}))
        return out

    # --- test-time augmentation: the image mirrored along each axis ---------------------------
    def supports_tta(self, net) -> bool:
        return not _dense(net)

    def tta_axes(self, net, item: SparseImage) -> int:
        return len(item.shape)

    def mirror(self, item: SparseImage, axis: int) -> SparseImage:
        from dataclasses import replace

        return replace(item, coords=mirror_coords(item.coords, item.shape, axis), vertex=None)

    def unmirror(self, coords: np.ndarray, item: SparseImage, axis: int) -> np.ndarray:
        return mirror_coords(coords, item.shape, axis)  # a reflection is its own inverse

    # --- results --------------------------------------------------------------------------
    def classes(self, net) -> tuple[str, ...]:
        return DENSE_CLASS_NAMES if _dense(net) else SEMANTIC_NAMES

    def metrics(self, net, settings: InputSettings) -> SegmentationScore:
        return SegmentationScore(net)

    def site_fields(self, outputs: Sequence[Output], classes: int) -> dict[str, np.ndarray]:
        scores = np.concatenate([o.scores for o in outputs]) if outputs else np.zeros((0, classes), np.float32)
        label = np.concatenate([o.label for o in outputs]) if outputs else np.zeros(0, np.int8)
        return {"two_class_scores": two_class_scores(scores).astype(np.float16),
                "two_class_label": two_class_labels(label, classes)}

    def summary_text(self, summary: dict) -> str:
        lines = [f"{summary['images']} images; non-zero accuracy {summary['nonzero_accuracy']}; "
                 f"two-class accuracy {summary['two_class_accuracy']}; ICPF mean {summary['icpf_mean']}, "
                 f"90% {summary['icpf_q90']}"]
        lines += [f"  {name}: {value}" for name, value in summary["class_accuracy"].items()]
        return "\n".join(lines)

    def evaluation_plots(self, metrics: Metrics, summary: dict, folder: Path) -> None:
        from lartpcnet.viz.plots import plot_confusion

        n = len(summary["confusion"]["classes"])
        plot_confusion(summary["confusion"], folder / f"confusion_{n}class.png", f"{n}-class confusion")
        plot_confusion(summary["two_class_confusion"], folder / "confusion_2class.png", "track/shower confusion")

    def draw(self, event: Event, prediction: dict, path, title: str) -> Path:
        from lartpcnet.viz.event_display import draw_prediction

        plane = prediction["plane"]
        image = event.image(plane, prediction["file"], prediction["event"])
        where = "voxels" if plane is None else f"plane {plane}"
        return draw_prediction(image, prediction["coords"], prediction["label"], path, f"{title}, {where}",
                               tuple(prediction["classes"]))


def mirror_coords(coords: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """``coords`` reflected along ``axis`` of an image of ``shape``."""
    coords = coords.copy()
    coords[:, axis] = shape[axis] - 1 - coords[:, axis]
    return coords


def two_class_scores(scores: np.ndarray) -> np.ndarray:
    """(N, 5) class probabilities -> (N, 2) track/shower probabilities (sums of their classes);
    (N, 3) background/track/shower -> the track and shower columns (background is the rest)."""
    if scores.shape[1] == len(DENSE_CLASS_NAMES):
        return scores[:, 1:].astype(np.float32)
    out = np.zeros((scores.shape[0], len(TWO_CLASS_NAMES)), np.float32)
    for k, target in enumerate(SEMANTIC_TO_TWO_CLASS[: scores.shape[1]]):
        out[:, target] += scores[:, k]
    return out


def two_class_labels(label: np.ndarray, n_classes: int) -> np.ndarray:
    """5-class labels -> track 0 / shower 1; dense labels -> the same, background -1."""
    if n_classes == len(DENSE_CLASS_NAMES):
        return (label.astype(np.int8) - 1).astype(np.int8)
    return SEMANTIC_TO_TWO_CLASS[label]


# --- reports: MicroBooNE 2019's Table I and pixel-scale robustness ----------------------------

def sample_table(model, evaluate, events: int = 100, seed: int = 12345, progress: bool = True,
                 sample: str | None = None, samples: Sequence[str] = TABLE_SAMPLES) -> dict:
    """The metrics on fresh events of each sample (MicroBooNE 2019 Table I); ``evaluate`` is the
    runner's."""
    from lartpcnet.data.source import DataSource

    rows = []
    for name in samples:
        summary = evaluate(model, DataSource(sample=name, seed=seed, events=events), progress=progress)
        rows.append({"sample": name, **{k: summary[k] for k in TABLE_KEYS}})
    return {"table": rows}


def table_markdown(report: dict) -> str:
    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}"

    lines = ["| sample | non-zero acc. % | track/shower acc. % | ICPF mean % | ICPF 90% % | shower err. % "
             "| track err. % |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["table"]:
        lines.append(f"| {r['sample']} | {pct(r['nonzero_accuracy'])} | {pct(r['two_class_accuracy'])} | "
                     f"{pct(r['icpf_mean'])} | {pct(r['icpf_q90'])} | {pct(r['shower_error_rate'])} | "
                     f"{pct(r['track_error_rate'])} |")
    return "\n".join(lines) + "\n"


def scale_curve(model, evaluate, events: int = 100, seed: int = 12345, progress: bool = True,
                sample: str | None = None, scales: Sequence[float] = SCALES) -> dict:
    """ICPF and accuracy as every pixel value is multiplied by a scale factor (MicroBooNE 2019);
    ``evaluate`` is the runner's."""
    from lartpcnet.data.source import DataSource

    source = DataSource(sample=sample or "mpv", seed=seed, events=events)
    rows = []
    for scale in scales:
        def scaled(image: SparseImage, factor: float = scale) -> SparseImage:
            return image.select(np.ones(len(image), bool), image.values * factor)

        summary = evaluate(model, source, progress=progress, transform=scaled)
        rows.append({"scale": scale, **{k: summary[k] for k in ("icpf_mean", "icpf_q90", "nonzero_accuracy",
                                                                "two_class_accuracy")}})
    return {"scale_curve": rows}


def scale_curve_text(report: dict) -> str:
    return "\n".join(f"scale {r['scale']}: ICPF mean {r['icpf_mean']:.4f}, 90% {r['icpf_q90']:.4f}"
                     for r in report["scale_curve"])


def plot_scale_curve(rows: list[dict], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lartpcnet.viz.plots import save_figure

    fig, ax = plt.subplots(figsize=(5, 3.5))
    scales = [r["scale"] for r in rows]
    ax.plot(scales, [100 * r["icpf_mean"] for r in rows], "o-", label="ICPF mean")
    ax.plot(scales, [100 * r["icpf_q90"] for r in rows], "s--", label="ICPF 90% quantile")
    ax.set_xlabel("pixel value scale factor")
    ax.set_ylabel("incorrectly classified pixels [%]")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


SegmentationTask.reports = {
    "table": Report(sample_table, table_markdown),
    "scale_curve": Report(scale_curve, scale_curve_text,
                          lambda report, folder: plot_scale_curve(report["scale_curve"], folder / "icpf_vs_scale.png")),
}
