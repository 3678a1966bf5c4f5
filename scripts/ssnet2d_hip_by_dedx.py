"""The shipped sparsessnet_uboone weights on fresh particle_bomb events, HIP accuracy split by how
ionising the proton is where the pixel lies (docs/sparsessnet_2d.md): does the network find the
highly ionising part of proton tracks, the part a label could in principle be learned from?

    OMP_NUM_THREADS=1 .venv/bin/python scripts/ssnet2d_hip_by_dedx.py [--events 30] [--seed 4242]
        [--model sparsessnet_uboone]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ssnet2d_label_audit as audit

from lartpcnet.data.labels import SEMANTIC_NAMES
from lartpcnet.sim import physics as P
from lartpcnet.sim.samples import generate_event, load_sample

BINS = ((0, 2.5), (2.5, audit.HIGH), (audit.HIGH, 2 * audit.HIGH), (2 * audit.HIGH, 1e9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--model", default="sparsessnet_uboone")
    parser.add_argument("--plot", default="docs/images/ssnet2d_hip_by_dedx.png")
    args = parser.parse_args()

    import torch

    import lartpcnet

    torch.set_num_threads(1)
    model = lartpcnet.load_model(args.model)
    config = load_sample("particle_bomb")
    truth, pred, dedx, stops = [], [], [], []
    for i in range(args.events):
        audit._capture.clear()
        event = generate_event(config, args.seed, i)
        img = event.planes[audit.PLANE]
        rec = audit._capture["planes"][audit.PLANE]
        deposits = audit._capture["deposits"]
        kin, res, _ = audit.proton_kinematics(deposits, event.particles)
        result = model.predict(event)
        labelled = img.semantic >= 0
        key = np.ravel_multi_index(tuple(img.coords[labelled].T), img.shape)
        rkey = np.ravel_multi_index(tuple(np.asarray(result.coords).T), img.shape)
        order = np.argsort(rkey)
        where = np.searchsorted(rkey[order], key)
        where = np.minimum(where, len(rkey) - 1)
        seen = rkey[order][where] == key  # sites inside the 10-300 ADC window reach the network
        label = np.full(key.size, -1)
        label[seen] = np.asarray(result.label)[order][where[seen]]
        dom = rec["dominant"][np.searchsorted(rec["sites"], key)]
        is_proton = np.isin(deposits.particle[dom], event.particles["id"][event.particles["pdg"] == 2212])
        d = np.where(is_proton, P.dedx_heavy(np.maximum(np.nan_to_num(kin[dom], nan=1.0), 1e-3), P.PROTON_MASS), np.nan)
        last = {}
        for pid in event.particles["id"][event.particles["pdg"] == 2212]:
            idx = np.nonzero(deposits.particle == pid)[0]
            if idx.size:
                last[int(pid)] = float(res[idx[-1]])
        inst = img.instance[labelled]
        truth.append(img.semantic[labelled][seen])
        pred.append(label[seen])
        dedx.append(d[seen])
        stops.append(np.array([last.get(int(k), np.inf) < 1.0 for k in inst], bool)[seen])
    truth, pred, dedx, stops = (np.concatenate(x) for x in (truth, pred, dedx, stops))
    print(f"{args.model} on {args.events} particle_bomb events (seed {args.seed}), plane {audit.PLANE}, "
          f"{truth.size} labelled pixels in the ADC window")
    print(f"   non-zero accuracy {np.mean(pred == truth):.1%}; per class: "
          + ", ".join(f"{n} {np.mean(pred[truth == c] == c):.1%}" for c, n in enumerate(SEMANTIC_NAMES)
                      if (truth == c).any()))
    hip = truth == 0
    print("   HIP pixels by the mean dE/dx of the proton where they lie:")
    rows = []
    for lo, hi in BINS:
        m = hip & (dedx >= lo) & (dedx < hi)
        called = np.bincount(pred[m], minlength=5) / max(m.sum(), 1)
        rows.append((lo, hi, m.sum(), called))
        print(f"      {lo:5.2f}-{min(hi, 99):5.2f} MeV/cm: {m.sum():6d} pixels, called "
              + ", ".join(f"{n} {called[c]:5.1%}" for c, n in enumerate(SEMANTIC_NAMES)))
    for name, m in (("on stopping protons", hip & stops), ("on protons leaving the volume", hip & ~stops)):
        print(f"   HIP {name}: {m.sum()} pixels, right {np.mean(pred[m] == 0):.1%}, "
              f"called MIP {np.mean(pred[m] == 1):.1%}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = [f"{lo:.1f}-{hi:.1f}" if hi < 1e8 else f"> {lo:.1f}" for lo, hi, _, _ in rows]
    bottom = np.zeros(len(rows))
    for c, n in enumerate(SEMANTIC_NAMES):
        share = np.array([r[3][c] for r in rows])
        ax.bar(names, share, bottom=bottom, label=f"called {n}")
        bottom += share
    for k, r in enumerate(rows):
        ax.text(k, 1.01, f"{r[2]} px", ha="center", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("mean dE/dx of the proton at the pixel [MeV/cm] (MIP 2.12)")
    ax.set_ylabel("share of true-HIP pixels")
    ax.set_title(f"{Path(args.model).name}: what true-HIP pixels are called ({args.events} events, seed {args.seed})",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=90)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
