"""Neutrino event selection on cosmic-tagger output (SBND cosmic paper, section 8).

An event is kept when every plane has at least ``min_pixels`` neutrino-tagged pixels and the
mean drift (row) position of those pixels agrees within ``max_row_separation`` for every pair of
planes (the planes share the drift coordinate). The paper's cuts, 100 pixels and 50 rows, are at
its 50 % resolution (640 rows); at another resolution the row cut scales with the image height.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from lartpcnet.data.labels import NEUTRINO

PAPER_ROWS = 640


def plane_summaries(rows_of_neutrino_pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(count, mean row) of the neutrino-tagged pixels of each plane (mean NaN where none)."""
    counts = np.array([len(r) for r in rows_of_neutrino_pixels])
    means = np.array([float(np.mean(r)) if len(r) else np.nan for r in rows_of_neutrino_pixels])
    return counts, means


def selected(counts: np.ndarray, means: np.ndarray, min_pixels: int = 100, max_row_separation: float = 50.0) -> bool:
    """The paper's two cuts on one event's per-plane neutrino-pixel counts and mean rows."""
    if (np.asarray(counts) < min_pixels).any():
        return False
    return all(abs(a - b) <= max_row_separation for a, b in combinations(means, 2))


def row_cut_for(image_rows: int, paper_cut: float = 50.0) -> float:
    """The paper's 50-row cut at another image height."""
    return paper_cut * image_rows / PAPER_ROWS


def efficiencies(events: list[dict], min_pixels: int = 100, max_row_separation: float = 50.0) -> dict:
    """Selection efficiency per interaction kind and the cosmic-only rejection (Table 3).

    ``events``: dicts with ``kind`` (nueCC, numuCC, NC or cosmic_only), ``counts`` and ``means``."""
    out: dict = {}
    for kind in sorted({e["kind"] for e in events}):
        mine = [e for e in events if e["kind"] == kind]
        passed = sum(selected(e["counts"], e["means"], min_pixels, max_row_separation) for e in mine)
        if kind == "cosmic_only":
            out["cosmic_only_rejection"] = 1 - passed / len(mine)
            out["cosmic_only_events"] = len(mine)
        else:
            out.setdefault("efficiency", {})[kind] = passed / len(mine)
            out.setdefault("events", {})[kind] = len(mine)
    return out


def roc(events: list[dict], thresholds=range(0, 1001, 10), max_row_separation: float = 50.0) -> list[dict]:
    """Neutrino-event efficiency against cosmic-only rejection as the pixel cut varies."""
    points = []
    for n in thresholds:
        e = efficiencies(events, n, max_row_separation)
        nu = [ev for ev in events if ev["kind"] != "cosmic_only"]
        passed = sum(selected(ev["counts"], ev["means"], n, max_row_separation) for ev in nu)
        points.append({"min_pixels": n, "efficiency": passed / len(nu) if nu else None,
                       "cosmic_only_rejection": e.get("cosmic_only_rejection")})
    return points


def plot_roc(points: list[dict], path, marked: int = 100) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lartpcnet.viz.plots import save_figure

    fig, ax = plt.subplots(figsize=(4.6, 4))
    ok = [p for p in points if p["efficiency"] is not None and p["cosmic_only_rejection"] is not None]
    ax.plot([p["cosmic_only_rejection"] for p in ok], [p["efficiency"] for p in ok], "-", lw=1.2)
    for p in ok:
        if p["min_pixels"] == marked:
            ax.plot(p["cosmic_only_rejection"], p["efficiency"], "o", color="C3",
                    label=f"{marked} pixels per plane")
    ax.set_xlabel("cosmic-only event rejection")
    ax.set_ylabel("neutrino event efficiency")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, title="selection ROC over the neutrino-pixel cut")


def select(model_spec, input_path: str | None = None, sample: str | None = None, events: int = 100, seed: int = 0,
           min_pixels: int = 100, max_row_separation: float | None = None, out: str | None = None,
           batch_size: int = 1, progress: bool = True, device: str = "auto", tta: bool = False) -> dict:
    """``lartpcnet select``: the neutrino event selection with its efficiencies and ROC curve."""
    import sys
    from pathlib import Path

    from tqdm import tqdm

    from lartpcnet import runner
    from lartpcnet.data.source import EventSource, command_line_source
    from lartpcnet.errors import UserError

    source = command_line_source(input_path, sample, events, seed)
    model = model_spec if isinstance(model_spec, runner.LoadedModel) else runner.load_model(model_spec, device,
                                                                                            tta=tta)
    if "select" not in model.task.post_steps:
        raise UserError(f"select needs a cosmic tagger; {model_spec} is a {model.settings.name} model")
    rows = []
    with EventSource(source) as event_source:
        bar = tqdm(total=len(event_source), desc="select", unit="event", disable=not progress, file=sys.stderr)
        for i, _, item, output in runner.predicted(model, event_source, event_source.indices(), batch_size, bar):
            neutrino = output.label == NEUTRINO
            counts, means = plane_summaries([output.coords[neutrino & (output.coords[:, 0] == p), 1]
                                             for p in range(len(item.planes))])
            rows.append({"event": i, "kind": item.kind or "unknown", "counts": counts, "means": means,
                         "rows": item.planes[0].shape[0]})
        bar.close()
    cut = max_row_separation if max_row_separation is not None else (row_cut_for(rows[0]["rows"]) if rows else 50.0)
    report = {"model": model.settings.source, "input": input_path, "sample": sample, "tta": model.settings.tta,
              "min_pixels": min_pixels, "max_row_separation": cut, **efficiencies(rows, min_pixels, cut),
              "selected": [r["event"] for r in rows if selected(r["counts"], r["means"], min_pixels, cut)]}
    report["roc"] = roc(rows, max_row_separation=cut)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        report["roc_plot"] = str(plot_roc(report["roc"], Path(out) / "selection_roc.png", min_pixels))
    return report
