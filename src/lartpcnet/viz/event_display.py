"""Event displays: for each wire plane, charge, class labels and instances side by side
(axes in wire and tick units, colour bars); for voxel events, 3D scatters of energy and class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.labels import ORIGIN_NAMES, SEMANTIC_NAMES
from lartpcnet.viz.plots import save_figure

CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
ORIGIN_COLOURS = ("#b0b0b0", "#1f77b4", "#d62728")
NOISE_COLOUR = "#d0d0d0"


def _class_style(kind: str):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    if kind == "origin":
        names, colours, lowest = ORIGIN_NAMES, ORIGIN_COLOURS, 0
    else:  # semantic, with -1 for unlabelled (noise) sites
        names, colours, lowest = ("noise", *SEMANTIC_NAMES), (NOISE_COLOUR, *CLASS_COLOURS[:5]), -1
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(lowest, lowest + len(names) + 1) - 0.5, len(names))
    return names, cmap, norm, lowest


def _scatter_plane(ax, image: SparseImage, values: np.ndarray, **kwargs):
    return ax.scatter(image.coords[:, 1], image.coords[:, 0], c=values, s=0.5, marker="s", linewidths=0,
                      rasterized=True, **kwargs)


def draw_event(event: Event, path: str | Path, title: str, label_kind: str = "semantic") -> Path:
    """Writes the display of ``event`` to ``path`` (format from the suffix: png, pdf, svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    planes = event.planes
    with_instances = any((p.instance >= 0).any() for p in planes)
    with_labels = label_kind == "origin" or any((p.semantic >= 0).any() for p in planes)
    columns = 1 + int(with_labels) + int(with_instances)
    rows = len(planes) + int(event.voxels is not None)
    fig = plt.figure(figsize=(5.6 * columns, 3.4 * max(rows, 1)))
    names, cmap, norm, lowest = _class_style(label_kind)
    for r, plane in enumerate(planes):
        labels = plane.origin if label_kind == "origin" else plane.semantic
        axes = [fig.add_subplot(rows, columns, r * columns + c + 1) for c in range(columns)]
        values = np.clip(plane.values, 1e-3, None)
        vmin = max(float(values.min()) if len(values) else 1.0, 1.0)
        art = _scatter_plane(axes[0], plane, values, cmap="viridis",
                             norm=LogNorm(vmin=vmin, vmax=max(float(values.max()) if len(values) else 2.0, vmin * 2)))
        fig.colorbar(art, ax=axes[0], label="charge [ADC]", pad=0.01)
        axes[0].set_title(f"plane {r}: {len(plane)} active pixels", fontsize=9)
        if with_labels:
            art = _scatter_plane(axes[1], plane, labels, cmap=cmap, norm=norm)
            bar = fig.colorbar(art, ax=axes[1], ticks=range(lowest, lowest + len(names)), pad=0.01)
            bar.ax.set_yticklabels(names, fontsize=7)
            axes[1].set_title(f"plane {r}: truth {label_kind}", fontsize=9)
        if with_instances:
            ids = plane.instance
            shuffled = (ids.astype(np.int64) * 2654435761 % 997) / 997.0  # distinct colours for near ids
            colours = np.where(ids >= 0, shuffled, np.nan)
            _scatter_plane(axes[-1], plane, colours, cmap="tab20", vmin=0, vmax=1, plotnonfinite=False)
            axes[-1].set_title(f"plane {r}: truth instances ({len(np.unique(ids[ids >= 0]))} particles)", fontsize=9)
        for ax in axes:
            _plane_axes(ax, plane.shape)
    if event.voxels is not None:
        vox = event.voxels
        base = len(planes) * columns
        ax = fig.add_subplot(rows, max(columns, 2), base + 1, projection="3d")
        if len(vox):
            art = ax.scatter(*vox.coords.T, c=vox.values, s=1, cmap="viridis",
                             norm=LogNorm(vmin=max(float(vox.values.min()), 1e-3), vmax=float(vox.values.max()) + 1e-3))
            fig.colorbar(art, ax=ax, label="energy [MeV]", pad=0.1, shrink=0.7)
        ax.set_title(f"{len(vox)} voxels", fontsize=9)
        ax2 = fig.add_subplot(rows, max(columns, 2), base + 2, projection="3d")
        if len(vox):
            art = ax2.scatter(*vox.coords.T, c=vox.semantic, s=1, cmap=cmap, norm=norm)
            bar = fig.colorbar(art, ax=ax2, ticks=range(lowest, lowest + len(names)), pad=0.1, shrink=0.7)
            bar.ax.set_yticklabels(names, fontsize=7)
        ax2.set_title("truth semantic", fontsize=9)
        for a in (ax, ax2):
            a.set_xlim(0, vox.shape[0])
            a.set_ylim(0, vox.shape[1])
            a.set_zlim(0, vox.shape[2])
            a.set_xlabel("x voxel")
            a.set_ylabel("y voxel")
            a.set_zlabel("z voxel")
    return save_figure(fig, path, title=title)


def _plane_axes(ax, shape: tuple[int, ...]) -> None:
    """Wire across, drift ticks down, the whole image in view."""
    ax.set_xlim(0, shape[1])
    ax.set_ylim(shape[0], 0)
    ax.set_xlabel("wire")
    ax.set_ylabel("tick")


def draw_prediction(image: SparseImage, predicted: np.ndarray, path: str | Path, title: str,
                    window: tuple[float, float] | None = (10.0, 300.0)) -> Path:
    """One plane: charge, truth classes, predicted classes and the mistakes, side by side.

    ``predicted`` holds a class per site of ``image`` that passed the network's ADC ``window``
    (the order of ``lartpcnet.data.batching.sparse_batch``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    keep = np.ones(len(image), bool) if window is None else (image.values >= window[0]) & (image.values <= window[1])
    shown = image.select(keep)
    names, cmap, norm, lowest = _class_style("semantic")
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.2))
    values = np.clip(shown.values, 1e-3, None)
    colour_scale = LogNorm(vmin=max(values.min(), 1), vmax=values.max())
    art = _scatter_plane(axes[0], shown, values, cmap="viridis", norm=colour_scale)
    fig.colorbar(art, ax=axes[0], label="charge [ADC]", pad=0.01)
    axes[0].set_title(f"input: {len(shown)} pixels in the ADC window", fontsize=9)
    for ax, labels, what in ((axes[1], shown.semantic, "truth"), (axes[2], predicted, "prediction")):
        art = _scatter_plane(ax, shown, labels, cmap=cmap, norm=norm)
        bar = fig.colorbar(art, ax=ax, ticks=range(lowest, lowest + len(names)), pad=0.01)
        bar.ax.set_yticklabels(names, fontsize=7)
        ax.set_title(what, fontsize=9)
    labelled = shown.semantic >= 0
    wrong = labelled & (predicted != shown.semantic)
    axes[3].scatter(shown.coords[labelled & ~wrong, 1], shown.coords[labelled & ~wrong, 0], s=0.5, c="#c8c8c8",
                    marker="s", linewidths=0, rasterized=True, label="right")
    axes[3].scatter(shown.coords[wrong, 1], shown.coords[wrong, 0], s=3, c="#d62728", marker="s", linewidths=0,
                    rasterized=True, label="wrong")
    accuracy = 1 - wrong.sum() / max(labelled.sum(), 1)
    axes[3].set_title(f"mistakes: {int(wrong.sum())} of {int(labelled.sum())} ({100 * accuracy:.1f}% right)",
                      fontsize=9)
    axes[3].legend(fontsize=8, markerscale=4, loc="upper right")
    for ax in axes:
        _plane_axes(ax, image.shape)
    return save_figure(fig, path, dpi=100, title=title)
