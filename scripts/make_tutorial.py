"""Writes docs/tutorial.ipynb from the cells below and executes it in place, keeping the outputs
(images included), so that it reads on a code-hosting site without running.

    .venv/bin/python scripts/make_tutorial.py [--check]   # `make notebook` (needs the dev extras)

``--check`` executes the written notebook into a temporary copy (the slow test) instead.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"

CELLS = [
    ("markdown", """# lartpcnet in a notebook

Simulate LArTPC events, draw them, run a shipped network, score it, reconstruct Michel electrons
and read a real SBND file. Every cell runs on a laptop CPU in seconds to a minute. Run it from the
repository's `docs/` folder with the repository's environment (`make notebook` re-runs it)."""),
    ("code", """import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import lartpcnet
import lartpcnet.data
from lartpcnet.sim.samples import generate_event, load_sample

REPO = Path.cwd().parent if Path.cwd().name == "docs" else Path.cwd()
work = Path(tempfile.mkdtemp(prefix="lartpcnet-tutorial-"))  # the pictures go here"""),
    ("markdown", """## 1. Simulate events and draw them

`generate_event(sample, seed, index)` is the simulator behind `lartpcnet simulate`: event `index` of
`seed` is the same, bit for bit, on every machine. `particle_bomb` is the SparseSSNet training
sample: a few particles from a vertex among cosmic muons, on 512 × 512 crops of MicroBooNE's three
wire planes, with per-pixel truth."""),
    ("code", """from lartpcnet.viz.event_display import draw_event

bomb = load_sample("particle_bomb")
events = [generate_event(bomb, 2026, i) for i in range(3)]
for event in events:
    print([len(plane.values) for plane in event.planes], "pixels per plane")
display(Image(draw_event(events[0], work / "event0.png", "particle_bomb, seed 2026, event 0")))"""),
    ("markdown", """## 2. Run a shipped network and draw its prediction beside the truth

`lartpcnet.load_model` takes a shipped name (`lartpcnet models` lists them, with their sha256) or a
checkpoint. `predict` runs it on the model's plane of an event (here the collection plane) and
returns per-site labels and scores, with the track/shower view beside the five classes."""),
    ("code", """from lartpcnet.viz.event_display import draw_prediction

model = lartpcnet.load_model("sparsessnet_uboone")
result = model.predict(events[0])
print(result.classes, result.scores.shape)
plane = events[0].planes[2]
display(Image(draw_prediction(plane, result.coords, result.label, work / "pred0.png",
                              "sparsessnet_uboone on event 0, collection plane", result.classes)))"""),
    ("markdown", """## 3. Metrics on fresh events

`lartpcnet.runner.evaluate` is `lartpcnet evaluate`: the task's metrics on a file or on freshly
simulated events (here 16, seed 12345, the test seed the README's tables use)."""),
    ("code", """from lartpcnet import runner
from lartpcnet.data.source import DataSource

summary = runner.evaluate(model, DataSource(sample="particle_bomb", seed=12345, events=16), progress=False,
                          out=work / "evaluate")
print(model.task.summary_text(summary))
display(Image(work / "evaluate" / "confusion_5class.png"))"""),
    ("markdown", """## 4. Michel electrons and their spectrum

The 3D U-ResNet labels every voxel; the Michel reconstruction of Domine & Terao clusters the
Michel-labelled voxels attached to a track's end. `lartpcnet.reco.michel.run` is `lartpcnet michel`:
candidates matched to the true Michel electrons, the paper's metrics and the spectra, whose edge
sits at the 52.8 MeV endpoint."""),
    ("code", """from lartpcnet.reco import michel

report = michel.run("uresnet3d_pilarnet", sample="michel", events=40, seed=12345, plots=str(work / "michel"),
                    progress=False)
for key in ("id_efficiency", "cluster_efficiency", "cluster_purity", "both_above_95"):
    print(f"{key:28s} {report.get(key)}")
for png in report["plots"]:
    if "spectrum" in png:
        display(Image(png))"""),
    ("markdown", """## 5. A real SBND file

`lartpcnet.data.open` reads lartpcnet, larcv3 and larcv2 files alike. The repository's test
fixture holds five events of SBND's own LArSoft simulation in larcv3 format, three wire planes
each, with cosmic/neutrino labels. The SBND cosmic tagger, trained on our simulator only, tags
them (its realism check; never trained or tuned on this file)."""),
    ("code", """from lartpcnet.viz.event_display import draw_tagging

real = REPO / "tests" / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
with lartpcnet.data.open(str(real)) as f:
    print(len(f), "events")
    event = f[2]
print([len(p.values) for p in event.planes], "pixels per plane")
tagger = lartpcnet.load_model("cosmictagger_sbnd")
tagged = tagger.predict(event)
print("sites per class:", dict(zip(tagged.classes, np.bincount(tagged.label, minlength=len(tagged.classes)).tolist())))
planes = tagger.task.item(event, tagger.settings.data, str(real), 2).planes  # the planes at the network's 50 %
display(Image(draw_tagging(planes, tagged.coords, tagged.label, work / "real2.png",
                           "cosmictagger_sbnd on real SBND event 2")))"""),
]


def build():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    return nb


def execute(nb, folder: Path):
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def main() -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="execute docs/tutorial.ipynb into a temporary copy")
    args = parser.parse_args()
    if args.check:
        nb = execute(nbformat.read(NOTEBOOK, as_version=4), NOTEBOOK.parent)
        with tempfile.TemporaryDirectory() as tmp:
            nbformat.write(nb, Path(tmp) / "tutorial.ipynb")
        print(f"executed {NOTEBOOK} top to bottom")
        return 0
    nb = execute(build(), NOTEBOOK.parent)
    tmp = NOTEBOOK.with_name(f".{NOTEBOOK.name}.tmp")
    nbformat.write(nb, tmp)
    tmp.replace(NOTEBOOK)  # atomic: a failed run leaves the old notebook
    print(f"wrote {NOTEBOOK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
