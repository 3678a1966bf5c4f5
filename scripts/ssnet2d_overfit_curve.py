"""Per-class accuracy curves of lartpcnet training runs (docs/sparsessnet_2d.md, overfit test and ablation).

Reads each run folder's validation.jsonl (in the overfit test the validation file is the training
file, so these are training-set accuracies) and log.csv, prints a table per run and writes one plot.

    .venv/bin/python scripts/ssnet2d_overfit_curve.py RUN_DIR[=LABEL] ... [--plot docs/images/ssnet2d_overfit.png]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

CLASSES = ("HIP", "MIP", "shower", "delta", "Michel")


def load(run: Path) -> tuple[list[dict], np.ndarray]:
    rows = [json.loads(line) for line in (run / "validation.jsonl").read_text().splitlines() if line.strip()]
    with open(run / "log.csv") as f:
        log = np.array([(float(r["iteration"]), float(r["loss"]), float(r["seconds"])) for r in csv.DictReader(f)])
    return rows, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folder, optionally =LABEL")
    parser.add_argument("--plot", default="docs/images/ssnet2d_overfit.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.runs) + 1, figsize=(6 * (len(args.runs) + 1), 4.5), squeeze=False)
    axes = axes[0]
    for k, spec in enumerate(args.runs):
        path, _, label = spec.partition("=")
        label = label or Path(path).name
        rows, log = load(Path(path))
        print(f"\n{label} ({path}): {int(log[-1, 0])} iterations in {log[-1, 2] / 60:.1f} min")
        # per-class accuracies pooled over all pixels (the confusion matrix's diagonal over its rows);
        # the file's class_accuracy is a mean over images, printed beside for HIP
        print("   iteration  non-zero (image mean, pooled)  " + "  ".join(f"{c:>7s}" for c in CLASSES)
              + "   HIP->MIP  HIP image mean")
        pooled = []
        for r in rows:
            m = np.array(r["confusion"]["matrix"], float)
            acc = np.diag(m) / np.maximum(m.sum(1), 1)
            pooled.append(acc)
            print(f"   {r['iteration']:9d}  {r['nonzero_accuracy']:8.1%} {np.trace(m) / m.sum():8.1%}             "
                  + "  ".join(f"{a:7.1%}" for a in acc) + f"   {m[0, 1] / max(m[0].sum(), 1):7.1%}"
                  + f"   {r['class_accuracy']['HIP']:7.1%}")
        it = [r["iteration"] for r in rows]
        ax = axes[k]
        for c, name in enumerate(CLASSES):
            ax.plot(it, [a[c] for a in pooled], "o-", ms=3, label=name)
        ax.plot(it, [np.trace(np.array(r["confusion"]["matrix"], float)) / np.sum(r["confusion"]["matrix"])
                     for r in rows], "k--", label="non-zero")
        ax.set_ylim(0, 1.02)
        ax.axhline(0.99, color="grey", lw=0.5)
        ax.set_xlabel("iteration")
        ax.set_ylabel("pooled accuracy on the 64 training events")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
        axes[-1].plot(log[:, 0], np.convolve(log[:, 1], np.ones(10) / 10, mode="same"), label=label)
    axes[-1].set_xlabel("iteration")
    axes[-1].set_ylabel("training loss (10-iteration mean)")
    axes[-1].set_yscale("log")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=90)
    print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
