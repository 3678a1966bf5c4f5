"""Instance-clustering metrics of sMask-RCNN (MicroBooNE, arXiv:2201.05705, sections 4 and 5.1),
and the non-learned baseline scored beside it: DBSCAN clusters of all pixels as instances.

Only predictions with score >= 0.4 count; they may overlap. W is the set of pixels with ADC >= 10.
For a true interaction T (all charge of one ancestor) and a predicted mask M:

- efficiency of T [``efficiency``]: max over single M of |T & W & M| / |T & W|;
- purity of M [``purity``]: max over single T of |M & W & T| / |M & W| (0 for a mask on no W pixel);
- charge efficiency [``charge_efficiency``]: the efficiency with pixels weighted by ADC;
- covered [``covered``]: efficiency > 0.8; missed [``missed``]: efficiency 0 (fractions of truths).

Averages are per interaction (``efficiency`` is the mean over all true interactions) and per
event (``event_efficiency``: the mean over events of each event's mean; events without truths,
or without predictions for purity, do not enter). ``per_class`` repeats them for cosmic and nue
with predictions and truths both restricted to that class. Class-agnostic predictions (DBSCAN)
count for every class, and have no per-class purity. Every true interaction with at least one
W pixel counts, whatever its class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse as sp

MIN_SCORE = 0.4
ADC_THRESHOLD = 10.0
COVERED = 0.8
REPORTED_CLASSES = {"cosmic": 1, "nue": 5}  # codes of lartpcnet.models.maskrcnn.CLASS_NAMES
KEYS = ("efficiency", "charge_efficiency", "purity", "covered", "missed", "event_efficiency", "event_purity")


@dataclass
class InstancePredictions:
    """Predicted instances of one image as (prediction, site) pairs; masks may overlap."""

    owner: np.ndarray  # (Q,) prediction index of each pair
    site: np.ndarray  # (Q,) site index (row of the image's sites)
    scores: np.ndarray  # (D,)
    classes: np.ndarray | None = None  # (D,) class codes; None: class-agnostic

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def from_labels(cls, labels: np.ndarray, classes: np.ndarray | None = None,
                    scores: np.ndarray | None = None) -> InstancePredictions:
        """Disjoint predictions from a per-site label ``0 .. D - 1`` (-1: in none), e.g. DBSCAN clusters."""
        labels = np.asarray(labels)
        site = np.nonzero(labels >= 0)[0]
        n = int(labels.max()) + 1 if site.size else 0
        return cls(labels[site].astype(np.int64), site, np.ones(n) if scores is None else np.asarray(scores),
                   None if classes is None else np.asarray(classes))

    @classmethod
    def from_detections(cls, detections) -> InstancePredictions:
        """From :class:`lartpcnet.models.maskrcnn.Detections` (sites of the full image)."""
        return cls(detections.mask_owner.cpu().numpy(), detections.mask_site.cpu().numpy(),
                   detections.scores.cpu().numpy(), detections.classes.cpu().numpy())


@dataclass
class EventScores:
    """One event's per-truth and per-prediction numbers, overall and per reported class."""

    efficiency: np.ndarray  # per true interaction
    charge_efficiency: np.ndarray
    truth_class: np.ndarray
    purity: np.ndarray  # per counted prediction
    per_class: dict[str, dict[str, np.ndarray | None]]


def score(values: np.ndarray, truth: np.ndarray, truth_class: np.ndarray, predictions: InstancePredictions, *,
          adc_threshold: float = ADC_THRESHOLD, min_score: float = MIN_SCORE,
          classes: dict[str, int] | None = None) -> EventScores:
    """Efficiencies and purities of one event.

    ``values`` (ADC), ``truth`` (instance id, -1 for none) and ``truth_class`` are per site;
    ``predictions`` index the same sites.
    """
    values, truth, truth_class = np.asarray(values, float), np.asarray(truth), np.asarray(truth_class)
    if not len(values) == len(truth) == len(truth_class):
        raise ValueError(f"values, truth and truth_class need one entry per site, got {len(values)}, "
                         f"{len(truth)} and {len(truth_class)}")
    if len(predictions.site) and (predictions.site.max() >= len(values) or predictions.site.min() < 0):
        raise ValueError(f"predictions name site {int(predictions.site.max())} of an image with {len(values)} sites")
    classes = REPORTED_CLASSES if classes is None else classes
    w = values >= adc_threshold
    n = len(values)
    ids, t_index = np.unique(truth[w & (truth >= 0)], return_inverse=True)
    t_sites = np.nonzero(w & (truth >= 0))[0]
    t_mat = sp.csr_matrix((np.ones(len(t_sites)), (t_sites, t_index.reshape(-1))), shape=(n, len(ids)))
    t_charge = sp.csr_matrix((values[t_sites], (t_sites, t_index.reshape(-1))), shape=(n, len(ids)))
    t_cls = np.zeros(len(ids), dtype=np.int64)
    t_cls[t_index.reshape(-1)] = truth_class[t_sites]
    counted = np.nonzero(np.asarray(predictions.scores) >= min_score)[0]
    remap = np.full(len(predictions), -1)
    remap[counted] = np.arange(len(counted))
    pair = (remap[predictions.owner] >= 0) & w[predictions.site] if len(predictions.owner) else np.zeros(0, bool)
    m_mat = sp.csr_matrix((np.ones(int(pair.sum())), (predictions.site[pair], remap[predictions.owner[pair]])),
                          shape=(n, len(counted)))
    m_mat.sum_duplicates()
    m_mat.data[:] = 1.0  # a pair listed twice is still one pixel
    overlap = (t_mat.T @ m_mat).tocsr()  # (truths, predictions) shared W pixels
    charge_overlap = (t_charge.T @ m_mat).tocsr()
    t_size = np.asarray(t_mat.sum(0)).ravel()
    t_qsize = np.asarray(t_charge.sum(0)).ravel()
    m_size = np.asarray(m_mat.sum(0)).ravel()
    m_cls = None if predictions.classes is None else np.asarray(predictions.classes)[counted]

    def best(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, axis: int) -> np.ndarray:
        if len(rows) == 0 or len(cols) == 0:
            return np.zeros(len(rows) if axis == 1 else len(cols))
        sub = matrix[rows][:, cols]
        return np.asarray(sub.max(axis=axis).todense()).ravel()

    def efficiencies(truths: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (best(overlap, truths, preds, 1) / np.maximum(t_size[truths], 1),
                best(charge_overlap, truths, preds, 1) / np.maximum(t_qsize[truths], 1e-12))

    def purities(truths: np.ndarray, preds: np.ndarray) -> np.ndarray:
        return best(overlap, truths, preds, 0) / np.maximum(m_size[preds], 1)

    all_t, all_p = np.arange(len(ids)), np.arange(len(counted))
    eff, qeff = efficiencies(all_t, all_p)
    per_class = {}
    for name, code in classes.items():
        tc = np.nonzero(t_cls == code)[0]
        pc = all_p if m_cls is None else np.nonzero(m_cls == code)[0]
        e, q = efficiencies(tc, pc)
        per_class[name] = {"efficiency": e, "charge_efficiency": q,
                           "purity": None if m_cls is None else purities(tc, pc)}
    return EventScores(eff, qeff, t_cls, purities(all_t, all_p), per_class)


def _summary(efficiency: list[np.ndarray], charge: list[np.ndarray], purity: list[np.ndarray] | None) -> dict:
    eff = np.concatenate(efficiency) if efficiency else np.zeros(0)
    q = np.concatenate(charge) if charge else np.zeros(0)
    out: dict = {"interactions": int(eff.size)}
    mean = (lambda a: float(a.mean()) if a.size else None)  # noqa: E731
    out["efficiency"] = mean(eff)
    out["charge_efficiency"] = mean(q)
    out["covered"] = mean(eff > COVERED) if eff.size else None
    out["missed"] = mean(eff == 0) if eff.size else None
    out["event_efficiency"] = mean(np.array([e.mean() for e in efficiency if e.size]))
    if purity is None:
        out["predictions"], out["purity"], out["event_purity"] = None, None, None
    else:
        pur = np.concatenate(purity) if purity else np.zeros(0)
        out["predictions"] = int(pur.size)
        out["purity"] = mean(pur)
        out["event_purity"] = mean(np.array([p.mean() for p in purity if p.size]))
    return out


class InstanceMetrics:
    """Accumulates :class:`EventScores`; ``summary()`` is the JSON-ready result."""

    def __init__(self, classes: dict[str, int] | None = None) -> None:
        self.classes = REPORTED_CLASSES if classes is None else classes
        self.events: list[EventScores] = []
        self.covered_per_event: list[tuple[int, int]] = []  # (true interactions, covered) per event

    def add(self, values: np.ndarray, truth: np.ndarray, truth_class: np.ndarray, predictions: InstancePredictions,
            **options) -> EventScores:
        result = score(values, truth, truth_class, predictions, classes=self.classes, **options)
        self.events.append(result)
        self.covered_per_event.append((len(result.efficiency), int((result.efficiency > COVERED).sum())))
        return result

    def summary(self) -> dict:
        ev = self.events
        agnostic = any(e.per_class[name]["purity"] is None for e in ev for name in self.classes)
        out = {"events": len(ev), **_summary([e.efficiency for e in ev], [e.charge_efficiency for e in ev],
                                             [e.purity for e in ev])}
        n = len(self.covered_per_event)
        out["interactions_per_event"] = sum(t for t, _ in self.covered_per_event) / n if n else None
        out["covered_per_event"] = sum(c for _, c in self.covered_per_event) / n if n else None
        out["per_class"] = {name: _summary([e.per_class[name]["efficiency"] for e in ev],
                                           [e.per_class[name]["charge_efficiency"] for e in ev],
                                           None if agnostic else [e.per_class[name]["purity"] for e in ev])
                            for name in self.classes}
        return out


# --- truth of simulated images ----------------------------------------------------------------

def image_truth(image, interactions: np.ndarray | None = None,
                particles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per site of a SparseImage: the true instance (interaction id, -1 none) and its class code
    (lartpcnet.models.maskrcnn's class map; no table: the majority pixel origin)."""
    from lartpcnet.models.maskrcnn import COSMIC_CLASS, NUE, interaction_classes

    truth = np.asarray(image.interaction, dtype=np.int64)
    known = interaction_classes(interactions, particles)
    cls = np.zeros(len(truth), dtype=np.int64)
    for iid in np.unique(truth[truth >= 0]).tolist():
        sel = truth == iid
        if iid in known:
            cls[sel] = known[iid]
        else:
            origin = np.bincount(image.origin[sel], minlength=3)
            cls[sel] = NUE if origin[2] > origin[1] else COSMIC_CLASS
    return truth, cls


# --- the DBSCAN baseline ----------------------------------------------------------------------

def dbscan_labels(coords: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """DBSCAN cluster of each pixel (``(N, 2)`` row/column, distances in pixels; -1 noise)."""
    coords = np.asarray(coords, dtype=np.float64)
    if len(coords) == 0:
        return np.zeros(0, dtype=np.int64)
    from sklearn.cluster import DBSCAN  # lazy: sklearn is slow to import

    return DBSCAN(eps=eps, min_samples=min_samples).fit_predict(coords).astype(np.int64)


def dbscan_predictions(coords: np.ndarray, values: np.ndarray, eps: float, min_samples: int,
                       adc_threshold: float = ADC_THRESHOLD) -> InstancePredictions:
    """The baseline: DBSCAN clusters of all pixels >= ``adc_threshold`` as class-agnostic instances."""
    values = np.asarray(values)
    keep = np.nonzero(values >= adc_threshold)[0]
    labels = np.full(len(values), -1, dtype=np.int64)
    labels[keep] = dbscan_labels(np.asarray(coords)[keep], eps, min_samples)
    return InstancePredictions.from_labels(labels)


def tune_dbscan(events: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                eps: Sequence[float] = (1.5, 2.0, 3.0, 5.0, 8.0),
                min_samples: Sequence[int] = (1, 2, 4, 8)) -> tuple[dict, list[dict]]:
    """Chooses DBSCAN's parameters on tuning events (never the test events): the grid point with
    the best harmonic mean of event-averaged efficiency and purity. ``events`` are ``(coords,
    values, truth, truth_class)``. Returns the best ``{eps, min_samples}`` and the whole table."""
    table = []
    for e in eps:
        for m in min_samples:
            metrics = InstanceMetrics()
            for coords, values, truth, truth_class in events:
                metrics.add(values, truth, truth_class, dbscan_predictions(coords, values, e, m))
            s = metrics.summary()
            ee, ep = s["event_efficiency"] or 0.0, s["event_purity"] or 0.0
            table.append({"eps": e, "min_samples": m, "event_efficiency": ee, "event_purity": ep,
                          "f1": 2 * ee * ep / (ee + ep) if ee + ep else 0.0})
    top = max(table, key=lambda r: r["f1"])
    return {"eps": top["eps"], "min_samples": top["min_samples"]}, table
