"""Training: end to end through the CLI, bit-exact resume, config errors, DDP on 2 CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lartpcnet.cli import main
from tests.conftest import TINY


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def run(*args):
    return main(["train", *map(str, args), "--no-progress"])


def test_train_writes_logs_checkpoints_and_curves(config_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(config_file, "--out", out, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["iterations"] == 6 and summary["validation"]["images"] == 4
    assert len((out / "log.csv").read_text().splitlines()) == 1 + 6
    assert [json.loads(line)["iteration"] for line in (out / "validation.jsonl").read_text().splitlines()] == [3, 6]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["ckpt-3.pt", "ckpt-6.pt"]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # a second run into the same folder must not silently overwrite it
    assert run(config_file, "--out", out) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_gives_bit_identical_weights(config_file, tmp_path):
    assert run(config_file, "--out", tmp_path / "straight") == 0
    assert run(config_file, "--out", tmp_path / "killed", "--set", "iterations=3") == 0
    assert run(config_file, "--out", tmp_path / "killed", "--resume") == 0
    a = torch.load(tmp_path / "straight" / "checkpoints" / "ckpt-6.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "checkpoints" / "ckpt-6.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert len((tmp_path / "killed" / "log.csv").read_text().splitlines()) == 1 + 6


def test_bad_config_names_the_field(tmp_path, capsys):
    bad = dict(TINY, optimizer={"name": "lbfgs"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert run(path, "--out", tmp_path / "x") == 2
    assert "bad.yaml: field 'optimizer.name'" in capsys.readouterr().err


@pytest.mark.parametrize("train", [{"sample": "nosuch", "seed": 1}, {"mix": {"1e1p_le": 1, "nosuch": 1}, "seed": 1}])
def test_an_unknown_training_sample_is_one_line_naming_it(train, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(dict(TINY, data=dict(TINY["data"], train=train, workers=1))))
    assert run(path, "--out", tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "bad.yaml: field 'data.train'" in err and "unknown sample 'nosuch'" in err and err.count("\n") == 1


def test_ddp_two_cpu_processes_keep_identical_weights(config_file, tmp_path):
    out = tmp_path / "ddp"
    # loopback for gloo: the machine's other interfaces have nothing to do with a local test
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    logs = tmp_path / "rank_logs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--log-dir", str(logs), "--redirects", "3",
           "-m", "lartpcnet.cli", "train", str(config_file), "--out", str(out), "--no-progress",
           "--set", "iterations=3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).parent)
    ranks = "".join(f"\n--- {p}:\n{p.read_text()[-1500:]}" for p in sorted(logs.rglob("std*.log")))
    assert proc.returncode == 0, proc.stderr[-1500:] + ranks
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"] is True


def test_two_nodes_meet_through_the_c10d_rendezvous_as_docs_grid_md_says(config_file, tmp_path):
    """docs/grid.md's multi-node command, with both "nodes" on this machine (one process each)."""
    import socket

    with socket.socket() as s:  # a free port for the rendezvous: none is hard-coded
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "nodes"
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test",
                               "--log-dir", str(tmp_path / f"node{k}"), "--redirects", "3",
                               "-m", "lartpcnet.cli", "train", str(config_file), "--out", str(out), "--no-progress",
                               "--set", "iterations=3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=Path(__file__).parent) for k in range(2)]
    results = [node.communicate(timeout=300) for node in nodes]
    logs = "".join(f"\n--- {p}:\n{p.read_text()[-1500:]}" for p in sorted(tmp_path.rglob("std*.log")))
    assert all(node.returncode == 0 for node in nodes), "".join(err[-1500:] for _, err in results) + logs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"] is True


def test_dense_three_class_network_trains_with_pl_weights(tmp_path, capsys):
    config = dict(TINY, name="dense", model={"name": "uresnet_dense", "network": {"depth": 2, "filters": 4,
                                                                                  "classes": 3, "reps": 1},
                                             "loss": {"weighting": "pl"}},
                  iterations=3, validate_every=3, checkpoint_every=3)
    config["data"] = dict(TINY["data"], train={"sample": "1e1p_le", "seed": 1})
    path = tmp_path / "dense.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run(path, "--out", tmp_path / "d", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    validation = summary["validation"]
    assert validation["confusion"]["classes"] == ["background", "track", "shower"]
    assert validation["icpf_mean"] is not None and 0 <= validation["icpf_mean"] <= 1


def test_relabelled_secondaries_from_a_file_match_the_simulator(tmp_path):
    from lartpcnet.data.source import DataSource, EventSource
    from lartpcnet.sim.samples import generate_event, load_sample

    events = tmp_path / "michel.h5"
    assert main(["simulate", "--sample", "michel", "--events", "3", "--seed", "4", "--out", str(events),
                 "--no-progress"]) == 0
    from_file = EventSource(DataSource(file=str(events)), relabel=True)
    simulated = EventSource(DataSource(sample="michel", seed=4), relabel=True)
    plain = load_sample("michel")
    changed = 0
    for i in range(3):
        a, b = from_file.event(i).voxels, simulated.event(i).voxels
        assert np.array_equal(a.coords, b.coords) and np.array_equal(a.semantic, b.semantic)
        changed += int((generate_event(plain, 4, i).voxels.semantic != a.semantic).sum())
    assert changed > 0  # some Michel/delta secondaries did become shower


def test_a_mixture_draws_each_event_from_one_sample_in_proportion():
    from lartpcnet.data.source import DataSource, EventSource
    from lartpcnet.sim.samples import generate_event, load_sample

    mixed = EventSource(DataSource(mix={"1e1p_le": 3, "michel_uboone": 1}, seed=5))
    picks = np.array([mixed.sample_of(i) for i in range(2000)])
    share = (picks == 1).mean()
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 2000)  # binomial, 4 sigma
    again = EventSource(DataSource(mix={"1e1p_le": 3, "michel_uboone": 1}, seed=5))
    assert [again.sample_of(i) for i in range(2000)] == picks.tolist()
    for i in (int(np.argmax(picks == 0)), int(np.argmax(picks == 1))):
        alone = generate_event(load_sample(["1e1p_le", "michel_uboone"][picks[i]]), 5, i).planes[2]
        image = mixed.event(i).planes[2]  # event i of the mixture is event i of its sample, bit for bit
        assert np.array_equal(image.coords, alone.coords) and np.array_equal(image.values, alone.values)


@pytest.mark.parametrize("source, message", [
    ({"mix": {}}, "mix names no sample"),
    ({"mix": {"michel": 1, "pilarnet3d": 0}}, "must be positive"),
    ({"mix": {"michel": 1}, "sample": "michel"}, "exactly one of sample, mix or file"),
])
def test_a_bad_mixture_is_refused_with_a_reason(source, message):
    from pydantic import ValidationError

    from lartpcnet.data.source import DataSource

    with pytest.raises(ValidationError, match=message):
        DataSource(**source)


def test_cpu_bf16_mixed_precision_trains_fp32_weights(config_file, tmp_path, capsys):
    assert run(config_file, "--out", tmp_path / "amp", "--set", "amp=true", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["validation"]["images"] == 4
    state = torch.load(tmp_path / "amp" / "checkpoints" / "ckpt-6.pt", weights_only=True)
    weights = [v for v in state["model"].values() if v.is_floating_point()]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights)
    losses = [float(line.split(",")[1]) for line in (tmp_path / "amp" / "log.csv").read_text().splitlines()[1:]]
    assert all(np.isfinite(losses))
