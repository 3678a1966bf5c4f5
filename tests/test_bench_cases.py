"""The benchmarks whose cases run as code strings in fresh processes (so that neither ruff nor an
import sees them): each case runs with today's code and measures the image it names."""

import pytest
import torch

from lartpcnet.bench import cosmictagger, maskrcnn
from lartpcnet.bench import train as bench_train


def test_the_cosmic_tagger_case_runs_on_a_simulated_sbnd_event():
    result = cosmictagger._case(sparse=True, factor=2, threads=1, repeats=1)
    assert "error" not in result, result
    assert result["shape"] == [640, 1024] and len(result["pixels"]) == 3 and min(result["pixels"]) > 0


def test_the_maskrcnn_cases_run_on_a_full_collection_plane():
    for backbone_only, bf16 in ((True, False), (False, True)):
        result = maskrcnn._case("light", sparse=True, backbone_only=backbone_only, threads=1, repeats=1, bf16=bf16)
        assert "error" not in result, result
        assert result["shape"] == [1008, 3456] and result["pixels"] > 1000


def test_the_maskrcnn_report_puts_sparse_and_dense_side_by_side():
    cases = [{"network": "light", "stage": stage, "sparse": sparse, "pixels": 9000, "shape": [1008, 3456],
              "ms": 100.0 if sparse else 2000.0, "peak_mb": 50.0} for stage in ("backbone", "detection")
             for sparse in (True, False)]
    cases[0]["bf16"] = {"ms": 40.0, "peak_mb": 30.0}
    text = maskrcnn.markdown({"cpu": "cpu", "threads": 2, "cases": cases}, "lartpcnet bench maskrcnn --quick")
    assert text.count("20.0×") == 2 and "lartpcnet bench maskrcnn --quick" in text
    assert "| 9000 | 100 | 50 | 40 | 2000 | 50 | 20.0× |" in text and "| 9000 | 100 | 50 | — | 2000 |" in text


def test_the_training_case_steps_a_shipped_network_and_profiles_it():
    # the smallest shipped network's config, one image per batch: one warm-up, one timed, one profiled step
    threads = torch.get_num_threads()
    try:
        row = bench_train.case("uresnet3d_pilarnet", steps=1, threads=1, profile_steps=1, overrides={"batch_size": 1})
    finally:
        torch.set_num_threads(threads)  # the case is made for a process of its own
    assert row["batch"] == 1 and row["amp"] is True and row["sites_per_batch"] > 100
    assert row["s_per_it"] > 0
    prof = row["profile"]
    assert sum(prof["stages"].values()) == pytest.approx(1.0)
    assert prof["stages"]["matrix products"] > 0.05  # a sparse U-ResNet step is mostly products
    assert any(t["op"] == "aten::mm" for t in prof["top"])


def test_every_training_benchmark_network_has_a_config_that_loads():
    from lartpcnet.train.config import load_config

    for name, (path, settings, _) in bench_train.NETWORKS.items():
        config = load_config(bench_train._repo_file(path), [f"{k}={v}" for k, v in settings.items()])
        assert config.name == name.split("+")[0]
