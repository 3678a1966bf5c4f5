"""sMask-RCNN through the task interface: train, predict, evaluate and display from the CLI."""

import json

import numpy as np
import pytest
import yaml

from lartpcnet import predictions
from lartpcnet.cli import main
from tests.test_maskrcnn_training import SMALL

CROPS = {"name": "crops", "description": "128 x 192 MicroBooNE crops around a nue CC with cosmics",
         "geometry": "microboone", "outputs": ["planes"], "crop": [128, 192],
         "neutrino": {"kinds": {"nueCC": 1}, "energy": [200, 600]},
         "cosmics": {"count": [6, 8], "through_vertex_region": True}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smaskrcnn")
    (folder / "crops.yaml").write_text(yaml.safe_dump(CROPS))
    sample = str(folder / "crops.yaml")
    network = {k: list(v) if isinstance(v, tuple) else v for k, v in SMALL.items()}
    config = {"name": "tiny_smaskrcnn", "model": {"name": "smaskrcnn", "network": network},
              "data": {"train": {"sample": sample, "seed": 1}, "validation": {"sample": sample, "seed": 2, "events": 2},
                       "plane": 2, "adc_window": None, "workers": 0},
              "optimizer": {"name": "sgd", "lr": 0.005, "momentum": 0.9, "weight_decay": 1e-4},
              "schedule": {"warmup": 2}, "batch_size": 1, "iterations": 2, "validate_every": 2, "checkpoint_every": 2}
    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(folder / "tiny.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    events = folder / "events.h5"
    assert main(["simulate", "--sample", sample, "--events", "3", "--seed", "9", "--out", str(events),
                 "--no-progress"]) == 0
    return folder / "run" / "checkpoints" / "ckpt-2.pt", events


def test_predict_writes_instances_classes_scores_and_boxes(tiny, tmp_path, capsys):
    model, events = tiny
    out = tmp_path / "p.h5"
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(out), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "instance" and summary["events"] == 3
    for event in range(3):
        pred = predictions.read(out, event)
        n = len(pred["coords"])
        assert pred["instance"].shape == (n,) and pred["label"].shape == (n,) and pred["scores"].shape == (n, 1)
        detections = pred["detections"]
        assert detections["boxes"].shape == (len(detections["scores"]), 4)
        # a site claimed by detection k has detection k's class and a score no higher than its
        claimed = pred["instance"] >= 0
        assert np.all(pred["instance"][claimed] < len(detections["scores"]))
        assert np.array_equal(pred["label"][claimed], detections["classes"][pred["instance"][claimed]])
        assert np.all(pred["label"][~claimed] == 0)
    picture = tmp_path / "d.png"
    assert main(["display", str(events), "--event", "1", "--predictions", str(out), "--out", str(picture)]) == 0
    assert picture.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reports_the_papers_metrics_beside_the_dbscan_baseline(tiny, capsys):
    model, events = tiny
    assert main(["evaluate", "--model", str(model), "--in", str(events), "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("efficiency", "purity", "charge_efficiency", "covered", "missed", "event_efficiency", "per_class"):
        assert key in summary and key in summary["dbscan_baseline"]
    assert summary["images"] == 3 and set(summary["per_class"]) == {"cosmic", "nue"}
    assert summary["dbscan_baseline"]["efficiency"] > 0.5  # well separated simulated cosmics cluster well
    assert main(["evaluate", "--model", str(model), "--in", str(events), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "sMask-RCNN" in text and "DBSCAN baseline" in text


def test_the_veto_command_scores_network_and_baseline_on_fresh_events(tiny, tmp_path, capsys):
    model, _ = tiny
    assert main(["veto", "--model", str(model), "--events", "2", "--seed", "5", "--out", str(tmp_path), "--json",
                 "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["auc"]) == {f"{t}, {s}" for t in ("sMask-RCNN", "DBSCAN baseline")
                                  for s in ("general nue", "low-energy nue")}
    for curve in report["curves"].values():
        assert curve[0] == {"cut": None, "signal_efficiency": 1.0, "background_rejection": 0.0}
        efficiencies = [row["signal_efficiency"] for row in curve]
        assert efficiencies == sorted(efficiencies, reverse=True)  # a harder cut keeps fewer events
    assert (tmp_path / "veto_roc.png").read_bytes()[:4] == b"\x89PNG"
