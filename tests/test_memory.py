"""Inference memory: a whole MicroBooNE collection plane through SparseSSNet, once and as a stream
of different events (as a grid job runs it)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

# SparseSSNet as lartpcnet predict runs it (CLI runtime settings, batch norms folded), in a fresh process
PRELUDE = """
import json, sys, torch
from lartpcnet.runtime import configure_runtime
configure_runtime()
torch.set_num_threads(2)
from lartpcnet.bench.peer_runner import current_rss_mb, measure
from lartpcnet.bench.uresnet import SPARSESSNET, full_plane
from lartpcnet.data.batching import sparse_batch
from lartpcnet.models.uresnet import UResNet, UResNetConfig
from lartpcnet.sparse import fold_batchnorm
net = fold_batchnorm(UResNet(UResNetConfig(**SPARSESSNET)))
"""

SCRIPT = PRELUDE + """
plane = full_plane()
def run():
    with torch.no_grad():
        net(sparse_batch([plane], (10, 300), pad_to=net.config.stride).tensor)
print(json.dumps({"sites": len(plane), **measure(run, 2, memory_from_start=True)}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read the peak RSS")
def test_full_plane_inference_stays_under_150_mb():
    # a fresh process, so nothing another test left with the allocator hides the growth
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["sites"] > 20_000
    if result["peak_mb"] is None:
        pytest.skip("this kernel cannot reset the peak RSS")
    assert result["peak_mb"] <= 150, result  # the SparseSSNet issue's goal for a full plane


STREAM_SCRIPT = PRELUDE + """
rss = []
for seed in range(24):
    plane = full_plane(8_000, seed=seed)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=sys.argv[1] == "bf16"):
        net(sparse_batch([plane], (10, 300), pad_to=net.config.stride).tensor)
    rss.append(current_rss_mb())
print(json.dumps({"rss_mb": rss}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read the RSS")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_memory_stays_flat_over_a_stream_of_events(precision):
    # Every event gives the convolutions new matrix shapes; a per-shape cache that is not bounded
    # (oneDNN's, for bf16) grows by ~30 MB per event here.
    proc = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, precision], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rss = json.loads(proc.stdout.strip().splitlines()[-1])["rss_mb"]
    assert rss[-1] - rss[7] <= 30, rss
