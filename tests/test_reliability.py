"""Never lose or corrupt data: the defects found by feeding bad input and killing jobs, each a test
(docs/reliability.md lists them with what the user sees)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lartpcnet import runner
from lartpcnet.cli import main
from tests.conftest import TINY, read_prediction_file, simulate


def one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def predict(model, events, out, *extra) -> int:
    return main(["predict", "--model", str(model), "--in", str(events), "--out", str(out), "--no-progress", *extra])


# --- 1. the input is never the output ---------------------------------------------------------

@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_an_output_that_is_the_input_is_refused_before_any_work(trained, tmp_path, capsys, link):
    model, events = trained
    source = tmp_path / "a.h5"
    shutil.copy(events, source)
    before = source.read_bytes()
    out = {"same": source, "symlink": tmp_path / "s.h5", "hardlink": tmp_path / "h.h5"}[link]
    if link == "symlink":
        out.symlink_to(source)
    elif link == "hardlink":
        os.link(source, out)
    assert predict(model, source, out, "--overwrite") == 2
    one_line_error(capsys, "is the input file")
    assert main(["convert", str(source), "--to", "larcv3", "--out", str(out), "--overwrite"]) == 2
    one_line_error(capsys, "is the input file")
    assert source.read_bytes() == before and not Path(f"{out}.parts").exists()


# --- 2. parts of a stale job are never merged -----------------------------------------------------

def test_parts_of_another_input_at_the_same_path_are_not_merged(trained, tmp_path, monkeypatch, capsys):
    model, _ = trained
    source = simulate(tmp_path / "in.h5", events=4, seed=21)
    calls = {"n": 0}
    real = runner.run

    def killed_after_the_first_part(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(runner, "run", killed_after_the_first_part)
    assert predict(model, source, tmp_path / "p.h5", "--batch-size", "2", "--part-size", "2") == 130
    monkeypatch.setattr(runner, "run", real)
    assert len(list((tmp_path / "p.h5.parts").glob("part-*.h5"))) == 1
    simulate(tmp_path / "other.h5", events=4, seed=22)
    os.replace(tmp_path / "other.h5", source)  # new content at the same path
    capsys.readouterr()
    assert predict(model, source, tmp_path / "p.h5", "--batch-size", "2", "--part-size", "2") == 2
    one_line_error(capsys, "holds parts of a different job", "input", "to start over, remove")


def test_a_resume_does_not_depend_on_the_working_directory_or_the_models_path(trained, tmp_path, monkeypatch):
    model, events = trained
    reference = read_prediction_file(runner.predict(str(model), str(events), str(tmp_path / "ref.h5"),
                                                    progress=False)["out"])
    calls = {"n": 0}
    real = runner.run

    def killed(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(runner, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        runner.predict(str(model), str(events), str(tmp_path / "b.h5"), batch_size=2, part_size=2, progress=False)
    monkeypatch.setattr(runner, "run", real)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = shutil.copy(model, elsewhere / "same_weights.pt")
    monkeypatch.chdir(elsewhere)
    resumed = read_prediction_file(runner.predict(str(copy), str(events), str(tmp_path / "b.h5"), batch_size=2,
                                                  part_size=2, progress=False)["out"])
    for key in ("events/index", "sites/coords", "sites/label"):
        assert np.array_equal(resumed[key], reference[key]), key


# --- 5. a full disk is one line, and loses nothing ---------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB file system (tmpfs; needs the right to mount, else the test is skipped)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                                       capture_output=True).returncode:
        pytest.skip("cannot mount a small file system here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_a_one_line_error_and_keeps_the_finished_parts(trained, small_disk, tmp_path):
    model, _ = trained
    events = simulate(tmp_path / "many.h5", events=24, seed=3)
    # leave room for about the first part only
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 60_000))
    out = small_disk / "p.h5"
    result = subprocess.run([sys.executable, "-m", "lartpcnet.cli", "predict", "--model", str(model), "--in",
                             str(events), "--out", str(out), "--part-size", "4", "--no-progress"],
                            capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "no space left on the device" in result.stderr
    parts = out.with_name("p.h5.parts")
    leftovers = [p.name for p in small_disk.rglob(".*") if p.is_file() and p.name != "filler"]
    assert not leftovers  # no half-written temporary file
    assert len(list(parts.glob("part-*.h5"))) >= 1  # what was finished is kept for a resume
    filler.unlink()
    result = subprocess.run([sys.executable, "-m", "lartpcnet.cli", "simulate", "--sample", "1e1p", "--events", "40",
                             "--part-size", "2", "--out", str(small_disk / "sim.h5"), "--no-progress"],
                            capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 2 and "no space left on the device" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


@pytest.fixture
def read_only_disk(tmp_path):
    """A read-only file system (tmpfs mounted ro: refused even to root; skipped where mounting is not allowed)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                                                        str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a file system here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_read_only_output_place_is_refused_before_any_work(trained, read_only_disk, capsys, monkeypatch):
    model, events = trained
    ran = []
    monkeypatch.setattr(runner, "run", lambda *a, **k: ran.append(1) or iter(()))
    assert predict(model, events, read_only_disk / "p.h5") == 2
    one_line_error(capsys, f"cannot write in {read_only_disk}")
    assert not ran
    code = main(["simulate", "--sample", "1e1p", "--events", "2", "--out", str(read_only_disk / "s.h5"),
                 "--no-progress"])
    assert code == 2
    one_line_error(capsys, str(read_only_disk))


# --- 6. data-loader workers die with the trainer -------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc (Linux)")
def test_data_loader_workers_die_when_the_trainer_is_killed(tmp_path):
    config = dict(TINY, iterations=10_000, validate_every=10_000, checkpoint_every=10_000,
                  data=dict(TINY["data"], workers=2))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    trainer = subprocess.Popen([sys.executable, "-m", "lartpcnet.cli", "train", str(tmp_path / "c.yaml"), "--out",
                                str(tmp_path / "run"), "--no-progress"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(_children(trainer.pid)) < 2:
            time.sleep(0.5)
        workers = _children(trainer.pid)
        assert len(workers) >= 2, "the workers did not start"
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
        deadline = time.time() + 30
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers)
    finally:
        if trainer.poll() is None:
            trainer.kill()


# --- 7. empty batches and inverted windows ------------------------------------------------------

def test_an_empty_event_is_skipped_and_counted_by_training(tmp_path, capsys):
    import lartpcnet.data as data
    from lartpcnet.data.event import SparseImage
    from lartpcnet.data.h5format import write_events

    events = simulate(tmp_path / "e.h5", events=3, seed=4)
    with data.open(events) as reader:
        kept = [reader[i] for i in range(3)]
    kept[1].planes = [SparseImage.empty(p.shape) for p in kept[1].planes]
    write_events(tmp_path / "with_empty.h5", kept, {})
    config = dict(TINY, batch_size=1, iterations=3, validate_every=3, checkpoint_every=3,
                  data=dict(TINY["data"], train={"file": str(tmp_path / "with_empty.h5")}))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["skipped_empty_batches"] == 1


def test_an_inverted_adc_window_is_refused_when_the_config_loads(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(dict(TINY, data=dict(TINY["data"], adc_window=[300, 10]))))
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    one_line_error(capsys, "field 'data'", "adc_window must be [low, high] with low < high")
    assert not (tmp_path / "run").exists()


# --- 8-10, 14-16: shards, planes, reruns, existing outputs, counts, parts ------------------------

def test_an_empty_shard_writes_a_valid_file_with_no_events(trained, tmp_path, capsys):
    model, events = trained
    assert predict(model, events, tmp_path / "s.h5", "--shard", "7/9", "--json") == 0
    assert json.loads(capsys.readouterr().out)["events"] == 0
    assert len(read_prediction_file(tmp_path / "s.h5")["events/index"]) == 0


def test_a_plane_that_the_geometry_lacks_is_refused(trained, tmp_path, capsys):
    model, events = trained
    assert predict(model, events, tmp_path / "p.h5", "--plane", "-1") == 2
    one_line_error(capsys, "--plane plane", "greater than or equal to 0")
    assert predict(model, events, tmp_path / "p.h5", "--plane", "7") == 2
    one_line_error(capsys, "event 0: has 3 planes, plane 7 is asked for")


def test_a_run_that_failed_before_its_first_part_does_not_block_the_corrected_rerun(trained, tmp_path, monkeypatch,
                                                                                    capsys):
    model, events = trained
    monkeypatch.setattr(runner, "run", lambda *args: (_ for _ in ()).throw(RuntimeError("bad input")))
    with pytest.raises(RuntimeError):
        runner.predict(str(model), str(simulate(tmp_path / "bad.h5", events=2, seed=5)), str(tmp_path / "p.h5"),
                       progress=False)
    monkeypatch.undo()
    assert predict(model, events, tmp_path / "p.h5") == 0  # other input, same --out: nothing was lost
    with pytest.raises(SystemExit) as exit_code:
        main(["simulate", "--sample", "1e1p", "--events", "2", "--seed", "-7", "--out", str(tmp_path / "s.h5")])
    assert exit_code.value.code == 2 and not (tmp_path / "s.h5.parts").exists()
    one_line_error(capsys, "--seed: must be a non-negative integer")


def test_an_existing_output_is_replaced_only_with_overwrite(trained, tmp_path, capsys):
    model, events = trained
    out = tmp_path / "p.h5"
    out.write_text("someone else's file")
    assert predict(model, events, out) == 2
    one_line_error(capsys, "exists; add --overwrite")
    assert out.read_text() == "someone else's file"
    assert predict(model, events, out, "--overwrite") == 0
    assert len(read_prediction_file(out)["events/index"]) == 6


def test_an_absurd_event_count_is_refused_at_once(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--sample", "1e1p", "--events", "10000000000", "--out", "x.h5"])
    one_line_error(capsys, "more than lartpcnet handles in one job")


def test_parts_close_every_part_size_events(trained, tmp_path, monkeypatch):
    model, events = trained
    written = []
    real = runner.PartsJob.part_path
    monkeypatch.setattr(runner.PartsJob, "part_path", lambda self, a, b: written.append((a, b)) or real(self, a, b))
    runner.predict(str(model), str(events), str(tmp_path / "p.h5"), batch_size=4, part_size=1, progress=False)
    assert written == [(i, i + 1) for i in range(6)]


# --- 12-13: configs and arguments that used to give tracebacks or unclear messages -----------------

@pytest.mark.parametrize("section, typo, field", [("loss", {"weighting": "sparsessnet", "focal_gama": 2}, "focal_gama"),
                                                  ("network", {"depth": 2, "filtres": 4}, "filtres")])
def test_a_typo_inside_the_model_section_names_its_field(tmp_path, capsys, section, typo, field):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(dict(TINY, model=dict(TINY["model"], **{section: typo}))))
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    one_line_error(capsys, f"field 'model.{section}.{field}'", "Extra inputs are not permitted")


def test_set_on_a_key_that_is_not_a_section_is_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["train", str(tmp_path / "c.yaml"), "--set", "batch_size.x=3", "--no-progress"]) == 2
    one_line_error(capsys, "batch_size is 2, not a section with keys")


def test_a_folder_as_output_is_refused_before_inference(trained, tmp_path, capsys, monkeypatch):
    model, events = trained
    monkeypatch.setattr(runner, "run", lambda *args: pytest.fail("inference ran"))
    assert predict(model, events, tmp_path) == 2
    one_line_error(capsys, "is a folder; give a file name")


def test_asking_for_a_gpu_without_one_names_the_gpu_not_the_weights(trained, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    model, events = trained
    assert predict(model, events, tmp_path / "p.h5", "--device", "cuda") == 2
    err = one_line_error(capsys, "no CUDA GPU")
    assert str(model) not in err
