"""Semantic-segmentation metrics, accumulated image by image.

Definitions (Domine & Terao; MicroBooNE 2019 section VI):
- non-zero accuracy: fraction of an image's labelled non-zero pixels whose predicted class is
  right, averaged over images; class accuracy: the same restricted to one true class.
- two-class accuracy: the same after mapping HIP/MIP -> track, shower/delta/Michel -> shower.
- ICPF (incorrectly classified pixel fraction) of an image: among the pixels that are track or
  shower in truth or in the prediction (so false positives on background count), the fraction
  whose prediction is wrong; reported as the mean and the 90 % quantile over images.
- shower (track) error rate: fraction of an image's true shower (track) pixels predicted as
  track (shower), averaged over the images that have such pixels.
- accuracy against the distance (in pixels) from the nearest image edge.

Sites labelled -1 (noise) are left out of everything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lartpcnet.data.labels import SEMANTIC_NAMES, SEMANTIC_TO_TWO_CLASS, TWO_CLASS_NAMES

BOUNDARY_BINS = (0, 4, 8, 16, 32, 64, 128, 10**9)


class SegmentationMetrics:
    """Accumulates metrics over images; ``summary()`` returns a JSON-ready dict."""

    def __init__(self, classes: Sequence[str] = SEMANTIC_NAMES, background: int | None = None) -> None:
        """``background``: the class index of background pixels for dense networks (counted in
        the confusion matrix, and as false positives in the ICPF), or None for sparse inputs."""
        self.names = list(classes)
        self.n = len(self.names)
        self.background = background
        self.confusion = np.zeros((self.n, self.n), np.int64)
        self.two_class = np.zeros((2, 2), np.int64)
        self.per_image: list[dict] = []
        self.boundary_total = np.zeros(len(BOUNDARY_BINS) - 1, np.int64)
        self.boundary_correct = np.zeros(len(BOUNDARY_BINS) - 1, np.int64)

    def add(self, truth: np.ndarray, predicted: np.ndarray, coords: np.ndarray | None = None,
            shape: Sequence[int] | None = None) -> None:
        """One image: truth and predicted class per site (and the sites' coordinates, for the
        accuracy against the distance to the image edge)."""
        truth = np.asarray(truth)
        predicted = np.asarray(predicted)
        keep = truth >= 0
        truth, predicted = truth[keep], predicted[keep]
        np.add.at(self.confusion, (truth, predicted), 1)
        nonzero = truth != self.background if self.background is not None else np.ones_like(truth, bool)
        correct = truth == predicted
        image: dict = {"sites": int(nonzero.sum())}
        image["nonzero_accuracy"] = float(correct[nonzero].mean()) if nonzero.any() else None
        for k, name in enumerate(self.names):
            if k == self.background:
                continue
            mine = truth == k
            image[f"acc_{name}"] = float(correct[mine].mean()) if mine.any() else None
        if self.background is None:
            true2 = SEMANTIC_TO_TWO_CLASS[truth] if self.n == 5 else truth
            pred2 = SEMANTIC_TO_TWO_CLASS[predicted] if self.n == 5 else predicted
            considered = np.ones_like(truth, bool)
        else:  # dense 3-class networks: background, track, shower
            true2, pred2 = truth - 1, predicted - 1
            considered = (truth != self.background) | (predicted != self.background)
        in_both = (true2 >= 0) & (pred2 >= 0)
        np.add.at(self.two_class, (true2[in_both], pred2[in_both]), 1)
        image["two_class_accuracy"] = float((true2[in_both] == pred2[in_both]).mean()) if in_both.any() else None
        image["icpf"] = float((true2[considered] != pred2[considered]).mean()) if considered.any() else None
        showers, tracks = true2 == 1, true2 == 0
        image["shower_error"] = float((pred2[showers] == 0).mean()) if showers.any() else None
        image["track_error"] = float((pred2[tracks] == 1).mean()) if tracks.any() else None
        self.per_image.append(image)
        if coords is not None and shape is not None:
            coords = np.asarray(coords)[keep][nonzero]
            edge = np.minimum(coords, np.asarray(shape) - 1 - coords).min(axis=1)
            which = np.digitize(edge, BOUNDARY_BINS[1:-1])
            np.add.at(self.boundary_total, which, 1)
            np.add.at(self.boundary_correct, which, correct[nonzero])

    @staticmethod
    def _mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def summary(self) -> dict:
        images = self.per_image
        icpf = [i["icpf"] for i in images if i["icpf"] is not None]
        out = {
            "images": len(images),
            "nonzero_accuracy": self._mean([i["nonzero_accuracy"] for i in images]),
            "class_accuracy": {name: self._mean([i.get(f"acc_{name}") for i in images])
                               for k, name in enumerate(self.names) if k != self.background},
            "two_class_accuracy": self._mean([i["two_class_accuracy"] for i in images]),
            "icpf_mean": float(np.mean(icpf)) if icpf else None,
            "icpf_q90": float(np.quantile(icpf, 0.9)) if icpf else None,
            "shower_error_rate": self._mean([i["shower_error"] for i in images]),
            "track_error_rate": self._mean([i["track_error"] for i in images]),
            "confusion": {"classes": self.names, "matrix": self.confusion.tolist()},
            "two_class_confusion": {"classes": list(TWO_CLASS_NAMES), "matrix": self.two_class.tolist()},
        }
        if self.boundary_total.any():
            out["accuracy_vs_boundary"] = [
                {"from": BOUNDARY_BINS[k], "to": BOUNDARY_BINS[k + 1], "sites": int(total),
                 "accuracy": float(self.boundary_correct[k] / total) if total else None}
                for k, total in enumerate(self.boundary_total)
            ]
        return out
