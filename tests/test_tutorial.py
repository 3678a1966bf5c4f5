"""docs/tutorial.ipynb runs from top to bottom (slow; needs the dev extras: `make notebook`)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_the_tutorial_notebook_runs_top_to_bottom():
    pytest.importorskip("nbclient", reason="the notebook runner is in the dev extras: pip install -e '.[dev]'")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tutorial.py"), "--check"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_tutorial_in_the_repository_is_the_one_its_script_writes_with_every_output_kept():
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("make_tutorial", ROOT / "scripts" / "make_tutorial.py")
    make_tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tutorial)
    stored = json.loads((ROOT / "docs" / "tutorial.ipynb").read_text())["cells"]  # plain JSON: no notebook runner
    text = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in stored]
    assert [(c["cell_type"], t) for c, t in zip(stored, text, strict=True)] == make_tutorial.CELLS
    code = [c for c in stored if c["cell_type"] == "code"]
    assert all(c["outputs"] for c in code[1:]), "a cell without its output"
    assert not any(o.get("output_type") == "error" for c in code for o in c["outputs"])
    images = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert images >= 5  # event, prediction, confusion, spectrum, the real event
