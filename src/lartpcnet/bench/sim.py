"""``lartpcnet bench sim``: simulation speed per sample on one core, against the issue's goals."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lartpcnet.bench import write_report
from lartpcnet.bench.engine import _cpu_name
from lartpcnet.sim.samples import generate_event, load_sample

# (sample, what one event is, goal in seconds per event or None)
CASES = (
    ("particle_bomb", "512x512 crops, 3 planes, 1-6 particles + 5-10 cosmics", 1 / 20),
    ("uboone_nue_cosmics", "full MicroBooNE event, 3 planes, ~20 cosmics", 0.5),
    ("pilarnet3d", "3D 512^3, multi-particle", 0.2),
    ("sbnd_cosmic", "full SBND event, 3 planes 1280x2048, ~10 cosmics", None),
    ("mpv", "512x512 crops, 3 planes, 1-4 particles", None),
    ("michel", "3D 512^3, 1-3 stopping muons", None),
)


def run(events: int = 20, progress: bool = True) -> dict:
    from tqdm import tqdm

    rows = []
    for name, what, goal in tqdm(CASES, desc="bench sim", disable=not progress, file=sys.stderr):
        config = load_sample(name)
        generate_event(config, 0, 10_000)  # warm-up: range tables, imports
        start = time.perf_counter()
        for i in range(events):
            generate_event(config, 0, i)
        per_event = (time.perf_counter() - start) / events
        rows.append({"sample": name, "event": what, "seconds_per_event": per_event, "events_per_second": 1 / per_event,
                     "goal_seconds_per_event": goal, "met": None if goal is None else per_event <= goal})
    return {"benchmark": "sim", "cpu": _cpu_name(), "threads": 1, "events": events, "cases": rows}


def markdown(report: dict, command: str) -> str:
    lines = ["# Simulation speed", "", f"Command: `{command}`  ",
             f"CPU: {report['cpu']}; one process, one core; {report['events']} events per sample after a warm-up.",
             "", "| sample | one event | events/s | s/event | goal | met |", "|---|---|---:|---:|---:|---|"]
    for r in report["cases"]:
        goal = "—" if r["goal_seconds_per_event"] is None else f"≤ {r['goal_seconds_per_event']:.2f} s"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        lines.append(f"| {r['sample']} | {r['event']} | {r['events_per_second']:.1f} | {r['seconds_per_event']:.3f} "
                     f"| {goal} | {met} |")
    return "\n".join(lines) + "\n"


def write(report: dict, out_dir: Path, command: str) -> list[Path]:
    return write_report(report, out_dir, "sim", command, markdown)

