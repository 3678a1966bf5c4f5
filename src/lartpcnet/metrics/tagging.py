"""Cosmic-tagging metrics (SBND cosmic paper, section 6.1), per plane and plane-averaged.

Per plane image, over **every pixel** of the image (H x W), background included:
- accuracy: pixels whose predicted class is right;
- non-background accuracy: the same over pixels whose true class is cosmic or neutrino;
- cosmic (neutrino) IoU: |truth and prediction| / |truth or prediction| for that class;
- mean IoU: the mean of the cosmic and neutrino IoUs (the paper's definition).

A sparse network labels only its active sites; every other pixel counts as predicted background
(and, having no charge, is background in truth). Each metric is averaged over the images where
it is defined (an IoU needs a non-empty union).

The paper's test set has a neutrino in every event, so ``neutrino_events`` repeats the averages
over the events that have one (kind νe CC, νμ CC or NC): the like-for-like comparison with its
Table 2. The top-level averages include cosmic-only events, where a single pixel tagged neutrino
gives neutrino IoU 0.
"""

from __future__ import annotations

import numpy as np

from lartpcnet.data.labels import BACKGROUND_ORIGIN, COSMIC, NEUTRINO, ORIGIN_NAMES

NEUTRINO_KINDS = ("nueCC", "numuCC", "NC")


def image_metrics(truth: np.ndarray, predicted: np.ndarray, pixels: int) -> dict:
    """Metrics of one plane image from its labelled sites (truth, predicted) and its pixel count;
    pixels not among the sites are background in truth and prediction."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    off_sites = pixels - len(truth)
    correct = int((truth == predicted).sum()) + off_sites
    signal = truth != BACKGROUND_ORIGIN
    out = {"accuracy": correct / pixels if pixels else None,
           "nonbackground_accuracy": float((truth[signal] == predicted[signal]).mean()) if signal.any() else None}
    for name, c in (("cosmic_iou", COSMIC), ("neutrino_iou", NEUTRINO)):
        t, p = truth == c, predicted == c
        union = int((t | p).sum())
        out[name] = float((t & p).sum() / union) if union else None
    ious = [out["cosmic_iou"], out["neutrino_iou"]]
    out["mean_iou"] = float(np.mean(ious)) if None not in ious else None
    return out


KEYS = ("accuracy", "nonbackground_accuracy", "cosmic_iou", "neutrino_iou", "mean_iou")


class TaggingMetrics:
    """Accumulates per-image metrics by plane, with the event's interaction kind and energy."""

    def __init__(self, planes: int = 3) -> None:
        self.planes = planes
        self.rows: list[dict] = []

    def add(self, plane: int, truth: np.ndarray, predicted: np.ndarray, pixels: int, kind: str | None = None,
            energy: float | None = None, event: int | None = None) -> None:
        self.rows.append({"plane": plane, "kind": kind, "energy": energy, "event": event,
                          **image_metrics(truth, predicted, pixels)})

    @staticmethod
    def _mean(rows: list[dict], key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(values)) if values else None

    def _plane_averaged(self, rows: list[dict]) -> tuple[dict, list[dict]]:
        """The metrics averaged per plane, and the mean of those per-plane means."""
        per_plane = [{key: self._mean([r for r in rows if r["plane"] == p], key) for key in KEYS}
                     for p in range(self.planes)]
        averaged = {}
        for key in KEYS:
            values = [row[key] for row in per_plane if row[key] is not None]
            averaged[key] = float(np.mean(values)) if values else None
        return averaged, per_plane

    def summary(self) -> dict:
        averaged, per_plane = self._plane_averaged(self.rows)
        out: dict = {"images": len(self.rows), "classes": list(ORIGIN_NAMES), **averaged, "per_plane": per_plane}
        kinds = sorted({r["kind"] for r in self.rows if r["kind"]})
        out["by_kind"] = {k: {key: self._mean([r for r in self.rows if r["kind"] == k], key) for key in KEYS}
                          for k in kinds}
        with_neutrino = [r for r in self.rows if r["kind"] in NEUTRINO_KINDS]
        if with_neutrino:  # absent where the file does not say which events have a neutrino
            out["neutrino_events"] = {"images": len(with_neutrino), **self._plane_averaged(with_neutrino)[0]}
        return out

    def iou_vs_energy(self, bins: np.ndarray) -> dict:
        """Mean cosmic and neutrino IoU per interaction kind in bins of neutrino energy (Fig. 9)."""
        out = {}
        for kind in sorted({r["kind"] for r in self.rows if r["kind"] and r["energy"] is not None}):
            rows = [r for r in self.rows if r["kind"] == kind]
            energy = np.array([r["energy"] for r in rows])
            which = np.digitize(energy, bins) - 1
            out[kind] = {name: [self._mean([r for r, w in zip(rows, which, strict=True) if w == b], name)
                                for b in range(len(bins) - 1)] for name in ("cosmic_iou", "neutrino_iou")}
        return out


def plot_iou_vs_energy(curves: dict, bins: np.ndarray, path) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lartpcnet.viz.plots import save_figure

    centres = 0.5 * (bins[1:] + bins[:-1]) / 1000.0
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for k, (kind, values) in enumerate(curves.items()):
        colour = f"C{k}"
        for name, style in (("neutrino_iou", "-"), ("cosmic_iou", "--")):
            y = np.array([np.nan if v is None else v for v in values[name]], float)
            ax.plot(centres, y, style, color=colour, marker="o", ms=3,
                    label=f"{kind} {'neutrino' if name == 'neutrino_iou' else 'cosmic'} IoU")
    ax.set_xlabel("neutrino energy [GeV]")
    ax.set_ylabel("intersection / union")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
