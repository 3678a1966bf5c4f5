"""Benchmarks behind ``lartpcnet bench``: tables in the terminal, Markdown/JSON/PNG in benchmarks/results/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from lartpcnet.io_utils import atomic_path, atomic_write_text


def write_report(report: dict, out_dir: Path, stem: str, command: str, markdown: Callable[[dict, str], str],
                 plot: Callable[[dict, Path], None] | None = None) -> list[Path]:
    """Writes ``stem``.md, .json (with the command that made it) and, given ``plot``, .png, each atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    atomic_write_text(md, markdown(report, command))
    atomic_write_text(js, json.dumps(report | {"command": command}, indent=1))
    files = [md, js]
    if plot is not None:
        png = out_dir / f"{stem}.png"
        with atomic_path(png) as tmp:
            plot(report, tmp)
        files.append(png)
    return files
