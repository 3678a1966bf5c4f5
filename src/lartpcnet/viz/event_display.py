"""Wire-plane event displays: charge and labels side by side for each plane."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lartpcnet.data.larcv3 import Plane
from lartpcnet.io_utils import atomic_path

COSMIC_TAG_CLASSES = ("background", "cosmic", "neutrino")
CLASS_COLOURS = ("#b0b0b0", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")


def draw_planes(
    planes: Sequence[Plane],
    labels: Sequence[Plane] | None,
    path: str | Path,
    title: str,
    class_names: Sequence[str] = COSMIC_TAG_CLASSES,
) -> Path:
    """One row per plane: charge (log colour scale, colour bar) and, if given, per-pixel labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm

    columns = 2 if labels is not None else 1
    fig, axes = plt.subplots(len(planes), columns, figsize=(6.2 * columns, 3.3 * len(planes)), squeeze=False)
    cmap = ListedColormap(CLASS_COLOURS[: len(class_names)])
    norm = BoundaryNorm(np.arange(len(class_names) + 1) - 0.5, len(class_names))
    for row, plane in enumerate(planes):
        ax = axes[row, 0]
        ticks, wires = plane.coords[:, 0], plane.coords[:, 1]
        values = np.clip(plane.values, 1e-3, None)
        art = ax.scatter(wires, ticks, c=values, s=0.4, marker="s", linewidths=0, cmap="viridis",
                         norm=LogNorm(vmin=max(values.min(), 1), vmax=values.max()), rasterized=True)
        fig.colorbar(art, ax=ax, label="charge [ADC]", pad=0.01)
        ax.set_title(f"plane {plane.projection}: {len(values)} active pixels", fontsize=9)
        if labels is not None:
            lab = labels[row]
            ax2 = axes[row, 1]
            art2 = ax2.scatter(lab.coords[:, 1], lab.coords[:, 0], c=lab.values, s=0.4, marker="s", linewidths=0,
                               cmap=cmap, norm=norm, rasterized=True)
            bar = fig.colorbar(art2, ax=ax2, ticks=range(len(class_names)), pad=0.01)
            bar.ax.set_yticklabels(class_names, fontsize=8)
            ax2.set_title(f"plane {lab.projection}: truth labels", fontsize=9)
        for a in axes[row]:
            a.set_xlim(0, plane.shape[1])
            a.set_ylim(plane.shape[0], 0)
            a.set_xlabel("wire")
            a.set_ylabel("tick")
            a.set_facecolor("white")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
