"""Realism check: the simulator's sbnd_cosmic events beside the real SBND cosmic-tagging file.

    .venv/bin/python scripts/realism_sbnd.py [--events 40] [--out docs/images]

Prints a Markdown table (pixels per plane by origin, ADC medians) and writes
realism_sbnd_adc.png (ADC histograms) and realism_sbnd_events.png (a real and a simulated event).
"""

import argparse
from pathlib import Path

import numpy as np

import lartpcnet.data as data
from lartpcnet.sim.samples import generate_event, load_sample

REAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "sbnd_cosmic_tagging_5events.h5"


def _weighted_median(values: np.ndarray) -> float:
    """Half of the charge sits in pixels above this value."""
    values = np.sort(values)
    cumulative = np.cumsum(values)
    return values[np.searchsorted(cumulative, cumulative[-1] / 2)]


def per_plane(events) -> list[dict]:
    out = []
    for k in range(3):
        planes = [e.planes[k] for e in events]
        cosmic = np.concatenate([p.values[p.origin == 1] for p in planes])
        out.append({
            "active": np.mean([len(p) for p in planes]),
            "background": np.mean([(p.origin == 0).sum() for p in planes]),
            "cosmic": np.mean([(p.origin == 1).sum() for p in planes]),
            "neutrino": np.mean([(p.origin == 2).sum() for p in planes]),
            "cosmic_adc_median": float(np.median(cosmic)),
            "cosmic_adc_weighted": float(_weighted_median(cosmic)),
            "values": np.concatenate([p.values for p in planes]),
        })
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default="docs/images")
    args = parser.parse_args()
    with data.open(REAL) as f:
        real = [f[i] for i in range(len(f))]
    config = load_sample("sbnd_cosmic")
    sim = [generate_event(config, args.seed, i) for i in range(args.events)]
    sim_nu = [e for e in sim if e.meta["kind"] != "cosmic_only"]
    r, s = per_plane(real), per_plane(sim_nu)
    print("| plane | active px (real / sim) | noise px | cosmic px | neutrino px | cosmic-pixel ADC median "
          "| charge-weighted median |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k, name in enumerate("UVY"):
        print(f"| {k} ({name}) | {r[k]['active']:.0f} / {s[k]['active']:.0f} | {r[k]['background']:.0f} / "
              f"{s[k]['background']:.0f} | {r[k]['cosmic']:.0f} / {s[k]['cosmic']:.0f} | {r[k]['neutrino']:.0f} / "
              f"{s[k]['neutrino']:.0f} | {r[k]['cosmic_adc_median']:.1f} / {s[k]['cosmic_adc_median']:.1f} | "
              f"{r[k]['cosmic_adc_weighted']:.1f} / {s[k]['cosmic_adc_weighted']:.1f} |")
    print(f"\nreal: {len(real)} events of {REAL.name}; sim: {len(sim_nu)} sbnd_cosmic events with a neutrino "
          f"(seed {args.seed}, {args.events} simulated)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    bins = np.geomspace(5, 1000, 60)
    for k, ax in enumerate(axes):
        ax.hist(r[k]["values"], bins=bins, density=True, histtype="step", lw=1.5, label="SBND file (LArSoft)")
        ax.hist(s[k]["values"], bins=bins, density=True, histtype="step", lw=1.5, label="lartpcnet sim")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pixel value [ADC]")
        ax.set_title(f"plane {k} ({'UVY'[k]})", fontsize=10)
    axes[0].set_ylabel("pixels (normalised)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "realism_sbnd_adc.png", dpi=110)
    plt.close(fig)

    from lartpcnet.viz.event_display import draw_event

    draw_event(real[0], out / "realism_sbnd_real_event.png", "SBND file (LArSoft simulation), event 0", "origin")
    draw_event(sim_nu[0], out / "realism_sbnd_sim_event.png",
               f"lartpcnet sbnd_cosmic, seed {args.seed}, event {sim_nu[0].meta['index']} "
               f"({sim_nu[0].meta['kind']})", "origin")
    print(f"wrote {out}/realism_sbnd_adc.png, realism_sbnd_real_event.png, realism_sbnd_sim_event.png")


if __name__ == "__main__":
    main()
