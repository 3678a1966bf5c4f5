"""Event displays: for each wire plane, charge, class labels and instances side by side
(axes in wire and tick units, colour bars); for voxel events, 3D scatters of energy and class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lartpcnet.data.event import Event, SparseImage
from lartpcnet.data.labels import DENSE_CLASS_NAMES, ORIGIN_NAMES, SEMANTIC_NAMES, SEMANTIC_TO_TWO_CLASS
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


def _matching_sites(image: SparseImage, coords: np.ndarray) -> np.ndarray:
    """For each row of ``coords``, the index of the same site in ``image`` (every one must be there)."""
    shape = np.asarray(image.shape, np.int64)

    def linear(c):
        return np.ravel_multi_index(np.asarray(c, np.int64).T, shape) if len(c) else np.zeros(0, np.int64)

    coords = np.asarray(coords, np.int64).reshape(-1, len(shape))
    inside = ((coords >= 0) & (coords < shape)).all(axis=1)
    keys = linear(image.coords)
    order = np.argsort(keys, kind="stable")
    wanted = linear(np.where(inside[:, None], coords, 0))
    at = np.searchsorted(keys[order], wanted)
    found = inside & (at < len(keys)) & (keys[order][np.minimum(at, len(keys) - 1)] == wanted)
    if not found.all():
        raise ValueError(f"{int((~found).sum())} predicted sites are not sites of this image: "
                         "are the predictions from this file, event and plane?")
    return order[at]


def _truth_in(classes: tuple[str, ...], semantic: np.ndarray) -> np.ndarray:
    """Truth in the network's classes: 5-class semantic as is, or background/track/shower."""
    if tuple(classes) == DENSE_CLASS_NAMES:
        return np.where(semantic >= 0, SEMANTIC_TO_TWO_CLASS[np.clip(semantic, 0, None)] + 1, 0)
    return semantic


def _with_predictions(image: SparseImage, coords: np.ndarray, predicted: np.ndarray):
    """The sites of ``image`` at ``coords`` and the predicted class of each, in site order."""
    shown = image.select(np.isin(np.arange(len(image)), _matching_sites(image, coords)))
    in_site_order = np.empty(len(shown), np.int64)
    in_site_order[_matching_sites(shown, coords)] = predicted
    return shown, in_site_order


def _prediction_row(fig, axes, flat: SparseImage, values: np.ndarray, truth: np.ndarray, predicted: np.ndarray,
                    scored: np.ndarray, style: tuple, unit: str, prefix: str = "") -> None:
    """Input, truth, prediction and mistakes (over the ``scored`` sites) on four axes."""
    from matplotlib.colors import LogNorm

    names, cmap, norm, lowest = style
    values = np.clip(values, 1e-3, None)
    vmin = float(values.min()) if len(values) else 1.0
    vmin = max(vmin, 1.0) if "ADC" in unit else vmin
    colour_scale = LogNorm(vmin=vmin, vmax=max(float(values.max()) if len(values) else 2.0, vmin * 2))
    art = _scatter_plane(axes[0], flat, values, cmap="viridis", norm=colour_scale)
    fig.colorbar(art, ax=axes[0], label=unit, pad=0.01)
    axes[0].set_title(f"{prefix}input: {len(flat)} sites the network saw", fontsize=9)
    for ax, labels, what in ((axes[1], truth, "truth"), (axes[2], predicted, "prediction")):
        art = _scatter_plane(ax, flat, labels, cmap=cmap, norm=norm)
        bar = fig.colorbar(art, ax=ax, ticks=range(lowest, lowest + len(names)), pad=0.01)
        bar.ax.set_yticklabels(names, fontsize=7)
        ax.set_title(f"{prefix}{what}", fontsize=9)
    wrong = scored & (predicted != truth)
    c = flat.coords
    axes[3].scatter(c[scored & ~wrong, 1], c[scored & ~wrong, 0], s=0.5, c="#c8c8c8", marker="s", linewidths=0,
                    rasterized=True, label="right")
    axes[3].scatter(c[wrong, 1], c[wrong, 0], s=3, c="#d62728", marker="s", linewidths=0, rasterized=True,
                    label="wrong")
    accuracy = 1 - wrong.sum() / max(scored.sum(), 1)
    axes[3].set_title(f"{prefix}mistakes: {int(wrong.sum())} of {int(scored.sum())} ({100 * accuracy:.1f}% right)",
                      fontsize=9)
    axes[3].legend(fontsize=8, markerscale=4, loc="upper right")


def draw_prediction(image: SparseImage, coords: np.ndarray, predicted: np.ndarray, path: str | Path, title: str,
                    classes: tuple[str, ...] = SEMANTIC_NAMES) -> Path:
    """Input, truth, prediction and mistakes side by side, at the predicted sites ``coords`` of
    ``image`` (a wire plane, or a voxel volume shown projected along its last axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    shown, predicted = _with_predictions(image, coords, predicted)
    truth = _truth_in(classes, shown.semantic)
    names, colours, lowest = ("noise", *classes), (NOISE_COLOUR, *CLASS_COLOURS[: len(classes)]), -1
    if tuple(classes) == DENSE_CLASS_NAMES:
        names, colours, lowest = classes, ("#b0b0b0", CLASS_COLOURS[1], CLASS_COLOURS[2]), 0
    style = (names, ListedColormap(colours), BoundaryNorm(np.arange(lowest, lowest + len(names) + 1) - 0.5,
                                                            len(names)), lowest)
    flat = shown
    if len(image.shape) == 3:  # project the volume along its last axis
        flat = SparseImage(shown.coords[:, :2], shown.values, shown.semantic, shown.instance, shown.interaction,
                           shown.origin, image.shape[:2])
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.2))
    unit = "charge [ADC]" if len(image.shape) == 2 else "energy [MeV]"
    _prediction_row(fig, axes, flat, shown.values, truth, predicted, shown.semantic >= 0, style, unit)
    for ax in axes:
        _plane_axes(ax, image.shape[:2])
        if len(image.shape) == 3:
            ax.set_xlabel("y voxel")
            ax.set_ylabel("x voxel")
    return save_figure(fig, path, dpi=100, title=title)


def draw_tagging(planes: list[SparseImage], coords: np.ndarray, predicted: np.ndarray, path: str | Path,
                 title: str) -> Path:
    """Cosmic-tagger output: per plane (rows), charge, true and predicted origin
    (background/cosmic/neutrino) and the mistakes. ``coords`` are (plane, row, column) at the
    resolution of ``planes``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(planes), 4, figsize=(22, 4.4 * len(planes)), squeeze=False)
    for p, image in enumerate(planes):
        mine = coords[:, 0] == p
        shown, labels = _with_predictions(image, coords[mine, 1:], predicted[mine])
        _prediction_row(fig, axes[p], shown, shown.values, shown.origin, labels, np.ones(len(shown), bool),
                        _class_style("origin"), "charge [ADC]", f"plane {p}: ")
        for ax in axes[p]:
            _plane_axes(ax, image.shape)
    return save_figure(fig, path, dpi=90, title=title)


def draw_instances(image: SparseImage, coords: np.ndarray, instance: np.ndarray, truth: np.ndarray,
                   path: str | Path, title: str) -> Path:
    """Instance clustering of one plane: charge, the true instances and the predicted ones, each
    instance in its own colour (sites in no instance grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    order = _matching_sites(image, coords)
    predicted = np.full(len(image), -1, np.int64)
    predicted[order] = instance
    fig, axes = plt.subplots(1, 3, figsize=(22, 5.2))
    values = np.clip(image.values, 1.0, None)
    art = _scatter_plane(axes[0], image, values, cmap="viridis", norm=LogNorm(vmin=1.0, vmax=max(values.max(), 2.0)))
    fig.colorbar(art, ax=axes[0], label="charge [ADC]", pad=0.01)
    axes[0].set_title(f"input: {len(image)} sites", fontsize=9)
    palette = plt.get_cmap("tab20")
    for ax, labels, what in ((axes[1], np.asarray(truth), "true instances (interactions)"),
                             (axes[2], predicted, "predicted instances")):
        ids = np.unique(labels[labels >= 0])
        colour = {int(i): palette(k % 20) for k, i in enumerate(ids)}
        c = image.coords
        none = labels < 0
        ax.scatter(c[none, 1], c[none, 0], s=0.5, c="#d0d0d0", marker="s", linewidths=0, rasterized=True)
        ax.scatter(c[~none, 1], c[~none, 0], s=1.5, c=[colour[int(i)] for i in labels[~none]], marker="s",
                   linewidths=0, rasterized=True)
        ax.set_title(f"{what}: {len(ids)}", fontsize=9)
    for ax in axes:
        _plane_axes(ax, image.shape)
    return save_figure(fig, path, dpi=90, title=title)
