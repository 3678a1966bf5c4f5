"""scripts/gpu_continue.sh, the one prepared call for a lent GPU, rehearsed on the CPU (slow: it
trains until a deadline of its own)."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_the_gpu_script_continues_the_shipped_run_and_brings_back_loadable_weights(tmp_path):
    import lartpcnet
    from lartpcnet.checkpoint import load_checkpoint

    env = dict(os.environ, DEVICE="cpu", RECIPES="uresnet3d_pilarnet", WORKERS="1", OMP_NUM_THREADS="1",
               EXTRA="--set batch_size=1 --set validate_every=1 --set checkpoint_every=1 "
                     "--set data.validation.events=2")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_continue.sh"), str(tmp_path / "out"), "150"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "out"
    parts = sorted(out.glob("uresnet3d_pilarnet.pt.part-*"))
    assert parts and all(p.stat().st_size <= 16 * 2**20 for p in parts)  # what the device brings back
    assert len(list(out.iterdir())) <= 8 and not (out / "runs").exists()
    weights = tmp_path / "uresnet3d_pilarnet.pt"
    weights.write_bytes(b"".join(p.read_bytes() for p in parts))
    assert load_checkpoint(weights)["iteration"] > 24000  # continued from the shipped weights' iteration
    model = lartpcnet.load_model(str(weights))
    assert model.task.name == "segmentation"
    assert (out / "uresnet3d_pilarnet_validation.jsonl").read_text().strip()
