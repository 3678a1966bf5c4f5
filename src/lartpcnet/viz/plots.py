"""Plots people would rather see than read: confusion matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lartpcnet.io_utils import atomic_path


def save_figure(fig, path: str | Path, dpi: int = 110, title: str | None = None) -> Path:
    """Lays out, titles and writes a matplotlib figure atomically (format from the suffix), then closes it."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def plot_confusion(confusion: dict, path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix (truth rows, prediction columns) with counts in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = confusion["classes"]
    matrix = np.array(confusion["matrix"], dtype=float)
    rows = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.1 * len(names) + 1.5))
    image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "white" if fractions[i, j] > 0.6 else "black"
            ax.text(j, i, f"{fractions[i, j]:.3f}\n({int(matrix[i, j])})", ha="center", va="center", fontsize=7,
                    color=colour)
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    return save_figure(fig, path)
