"""predict, evaluate and the Python API (lartpcnet.runner) with a small trained checkpoint."""

import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from lartpcnet import predictions, runner
from lartpcnet.cli import main
from lartpcnet.data.source import DataSource, EventSource
from lartpcnet.tasks.segmentation import SCALES, TABLE_SAMPLES
from tests.conftest import TINY, crash_runner_on_call
from tests.conftest import read_prediction_file as read


def test_predict_writes_consistent_scores_and_labels(trained, tmp_path, capsys):
    model, events = trained
    out = tmp_path / "pred.h5"
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(out), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    p = read(out)
    assert p["events/index"].tolist() == list(range(6))
    assert p["sites/offsets"][-1] == len(p["sites/label"])
    assert np.array_equal(p["sites/label"], p["sites/scores"].astype(np.float32).argmax(1))
    np.testing.assert_allclose(p["sites/two_class_scores"].astype(np.float32).sum(1), 1.0, atol=5e-3)
    track = np.isin(p["sites/label"], [0, 1])
    assert np.array_equal(p["sites/two_class_label"], np.where(track, 0, 1))
    sizes = np.diff(p["sites/offsets"])
    assert [sum(c.values()) for c in summary["class_counts"].values()] == sizes.tolist()


def test_shards_cover_every_event_once(trained, tmp_path):
    model, events = trained
    full = runner.predict(str(model), str(events), str(tmp_path / "all.h5"), progress=False)
    parts = [runner.predict(str(model), str(events), str(tmp_path / f"s{k}.h5"), shard=f"{k}/2", progress=False)
             for k in range(2)]
    assert sorted(parts[0]["class_counts"]) == [0, 2, 4] and sorted(parts[1]["class_counts"]) == [1, 3, 5]
    assert {**parts[0]["class_counts"], **parts[1]["class_counts"]} == full["class_counts"]
    with pytest.raises(ValueError, match="--shard must be K/N"):
        runner.predict(str(model), str(events), str(tmp_path / "x.h5"), shard="2/2", progress=False)


def test_predict_resumes_after_a_crash_and_batching_does_not_matter(trained, tmp_path, monkeypatch):
    model, events = trained
    reference = read(runner.predict(str(model), str(events), str(tmp_path / "ref.h5"), batch_size=1,
                                    part_size=2, progress=False)["out"])
    real = crash_runner_on_call(monkeypatch)
    with pytest.raises(RuntimeError, match="killed"):
        runner.predict(str(model), str(events), str(tmp_path / "b.h5"), batch_size=2, part_size=2, progress=False)
    parts = sorted(p.name for p in (tmp_path / "b.h5.parts").glob("part-*.h5"))
    assert parts == ["part-000000000-000000002.h5", "part-000000002-000000004.h5"]
    assert not (tmp_path / "b.h5").exists()
    monkeypatch.setattr(runner, "run", real)
    resumed = read(runner.predict(str(model), str(events), str(tmp_path / "b.h5"), batch_size=2, part_size=2,
                                  progress=False)["out"])
    for key, value in reference.items():  # eval-mode predictions do not depend on the batch
        if key in ("sites/scores", "sites/two_class_scores"):
            np.testing.assert_allclose(resumed[key].astype(np.float32), value.astype(np.float32), atol=2e-3)
        else:
            assert np.array_equal(resumed[key], value), key


def test_evaluate_on_a_sample_and_a_file(trained, tmp_path, capsys):
    model, events = trained
    assert main(["evaluate", "--model", str(model), "--sample", "1e1p_le", "--events", "4", "--out",
                 str(tmp_path / "ev"), "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("nonzero_accuracy", "class_accuracy", "two_class_accuracy", "confusion", "icpf_mean", "icpf_q90"):
        assert key in summary
    assert 0.0 <= summary["nonzero_accuracy"] <= 1.0 and summary["images"] == 4
    assert (tmp_path / "ev" / "confusion_5class.png").exists()
    assert main(["evaluate", "--model", str(model), "--in", str(events), "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 6


def test_bad_model_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notamodel.pt"
    bad.write_bytes(b"junk")
    assert main(["evaluate", "--model", str(bad), "--sample", "1e1p", "--events", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "notamodel.pt" in err and err.count("\n") == 1


def test_table_and_scale_curve(trained, tmp_path, capsys):
    model, _ = trained
    assert main(["evaluate", "--model", str(model), "--table", "--scale-curve", "--sample", "1e1p_le",
                 "--events", "2", "--out", str(tmp_path), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["sample"] for r in report["table"]] == list(TABLE_SAMPLES)
    assert [r["scale"] for r in report["scale_curve"]] == list(SCALES)
    assert (tmp_path / "icpf_vs_scale.png").exists()
    unscaled = next(r for r in report["scale_curve"] if r["scale"] == 1.0)
    direct = runner.evaluate(str(model), DataSource(sample="1e1p_le", events=2, seed=12345), progress=False)
    assert unscaled["icpf_mean"] == pytest.approx(direct["icpf_mean"])  # scale 1 is the plain evaluation


def test_exported_fp16_weights_predict_like_the_checkpoint(trained, tmp_path):
    import importlib.util
    from pathlib import Path

    model, events = trained
    script = Path(__file__).parents[1] / "scripts" / "export_weights.py"
    spec = importlib.util.spec_from_file_location("export_weights", script)
    export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export)
    shipped = tmp_path / "shipped.pt"
    export.export(str(model), str(shipped))
    a = read(runner.predict(str(model), str(events), str(tmp_path / "a.h5"), progress=False)["out"])
    b = read(runner.predict(str(shipped), str(events), str(tmp_path / "b.h5"), progress=False)["out"])
    assert (a["sites/label"] == b["sites/label"]).mean() > 0.99
    with pytest.raises(ValueError, match="shipped name"):
        runner.load_model("no_such_model")


def test_prediction_display(trained, tmp_path):
    import lartpcnet.data as data
    from lartpcnet.viz.event_display import draw_prediction

    model, events = trained
    loaded = runner.load_model(str(model))
    with data.open(events) as f:
        event = f[0]
    plane = event.planes[loaded.settings.data.plane]
    result = loaded.predict(event)
    coords, predicted = result.coords, result.label
    path = draw_prediction(plane, coords, predicted, tmp_path / "p.png", "test")
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="not sites of this image"):
        draw_prediction(plane, coords + 1000, predicted, tmp_path / "q.png", "test")


def test_display_of_a_prediction_file_from_the_cli(trained, dense_trained, tmp_path, capsys):
    for model in (trained[0], dense_trained[0]):
        out = tmp_path / f"{model.parent.parent.parent.name}.h5"
        runner.predict(str(model), str(trained[1]), str(out), progress=False)
        picture = tmp_path / f"{out.stem}.png"
        assert main(["display", str(trained[1]), "--event", "3", "--predictions", str(out), "--out",
                     str(picture)]) == 0
        assert picture.read_bytes()[:4] == b"\x89PNG"
        pred = predictions.read(out, 3)
        assert len(pred["coords"]) == len(pred["label"]) > 0 and pred["plane"] == 2
    capsys.readouterr()
    assert main(["display", str(trained[1]), "--predictions", str(trained[1]), "--out", str(picture)]) == 2
    assert "not a lartpcnet predict output" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dense_trained(tmp_path_factory, trained):
    folder = tmp_path_factory.mktemp("dense")
    config = dict(TINY, name="dense", iterations=3, validate_every=3, checkpoint_every=3,
                  model={"name": "uresnet_dense", "network": {"depth": 2, "filters": 4, "classes": 3, "reps": 1},
                         "loss": {"weighting": "pl"}})
    (folder / "dense.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(folder / "dense.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    validation = json.loads((folder / "run" / "validation.jsonl").read_text().splitlines()[-1])
    return folder / "run" / "checkpoints" / "ckpt-3.pt", trained[1], validation


def test_dense_three_class_predictions(dense_trained, tmp_path, capsys):
    model, events, _ = dense_trained
    out = tmp_path / "dense.h5"
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(out), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    p = read(out)
    with h5py.File(out) as f:
        assert json.loads(f.attrs["classes"]) == ["background", "track", "shower"]
    scores = p["sites/scores"].astype(np.float32)
    assert scores.shape[1] == 3 and np.array_equal(p["sites/label"], scores.argmax(1))
    assert np.array_equal(p["sites/two_class_label"], p["sites/label"] - 1)  # background -> -1
    np.testing.assert_allclose(p["sites/two_class_scores"].astype(np.float32), scores[:, 1:], atol=1e-3)
    # one output per active pixel of the input (inside the ADC window), as for sparse networks
    import lartpcnet.data as data

    with data.open(str(events)) as reader:
        for n in range(len(reader)):
            plane = reader[n].planes[2]
            inside = (plane.values >= 10) & (plane.values <= 300)
            expected = plane.coords[inside]
            got = p["sites/coords"][p["sites/offsets"][n] : p["sites/offsets"][n + 1]]
            assert sorted(map(tuple, expected)) == sorted(map(tuple, got))
    assert set(next(iter(summary["class_counts"].values()))) == {"background", "track", "shower"}


def test_dense_evaluation_counts_every_pixel_like_validation(dense_trained, tmp_path):
    model, _, validation = dense_trained
    summary = runner.evaluate(str(model), DataSource(**TINY["data"]["validation"]), out=str(tmp_path), progress=False)
    assert summary["confusion"]["classes"] == ["background", "track", "shower"]
    confusion = np.array(summary["confusion"]["matrix"])
    assert confusion.sum() == 4 * 512 * 512  # every pixel of the four 512 x 512 crops
    assert np.array_equal(confusion, np.array(validation["confusion"]["matrix"]))
    assert summary["icpf_mean"] == pytest.approx(validation["icpf_mean"])
    assert (tmp_path / "confusion_3class.png").exists()


def test_bf16_inference_agrees_with_fp32_and_is_recorded(trained, tmp_path):
    model, events = trained
    plain = runner.load_model(str(model))
    fp32 = runner.evaluate(plain, DataSource(file=str(events)), progress=False)
    bf16 = runner.evaluate(plain.with_settings(precision="bf16"), DataSource(file=str(events)), progress=False)
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    a = read(runner.predict(plain, str(events), str(tmp_path / "a.h5"), progress=False)["out"])
    b = read(runner.predict(runner.load_model(str(model), precision="bf16"), str(events), str(tmp_path / "b.h5"),
                            progress=False)["out"])
    assert np.array_equal(a["sites/coords"], b["sites/coords"])
    np.testing.assert_allclose(b["sites/scores"].astype(np.float32), a["sites/scores"].astype(np.float32), atol=0.05)
    with pytest.raises(ValueError, match="precision must be one of"):
        runner.load_model(str(model), precision="fp8")


def test_a_file_without_the_models_image_is_one_line(trained, tmp_path, capsys):
    model, _ = trained  # a collection-plane model
    cubes = tmp_path / "cubes.h5"
    assert main(["simulate", "--sample", "michel", "--events", "1", "--seed", "1", "--out", str(cubes),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--in", str(cubes), "--out", str(tmp_path / "p.h5"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cubes.h5: event 0: has 0 planes, plane 2 is asked for" in err and err.count("\n") == 1


def test_an_event_source_closes_its_file_when_the_block_ends():
    def open_files() -> int:
        return len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE))

    real = Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
    before = open_files()
    with EventSource(DataSource(file=str(real))) as events:
        assert len(events) == 5 and open_files() == before + 1
        assert len(events.event(4).planes) == 3 and events.where == str(real)
    assert open_files() == before
    with pytest.raises(RuntimeError), EventSource(DataSource(file=str(real))) as events:
        len(events)
        raise RuntimeError("a job that fails half way")
    assert open_files() == before


def test_tta_averages_the_network_over_the_image_and_its_mirror_images(trained):
    model, events = trained
    plain, tta = runner.load_model(str(model)), runner.load_model(str(model), tta=True)
    import lartpcnet.data as data

    with data.open(str(events)) as reader:
        images = [reader[n].image(plain.settings.data.plane, str(events), n) for n in range(2)]

    def predict_scores(model, image):
        (out,) = runner.run(model, [image])
        return out.coords, out.label, out.scores

    for image in images:
        coords, label, scores = predict_scores(tta, image)
        # the reference: plain passes over the image and each mirror image, matched back site by site
        reference = {}
        for axis in (None, 0, 1):
            mirrored = image.coords.copy()
            if axis is not None:
                mirrored[:, axis] = image.shape[axis] - 1 - mirrored[:, axis]
            got_coords, _, got = predict_scores(plain, replace(image, coords=mirrored))
            for site, row in zip(got_coords, got, strict=True):
                if axis is not None:
                    site = site.copy()
                    site[axis] = image.shape[axis] - 1 - site[axis]
                reference.setdefault(tuple(site), []).append(row)
        assert all(len(rows) == 3 for rows in reference.values()) and len(reference) == len(coords)
        expected = np.array([np.mean(reference[tuple(site)], axis=0) for site in coords])
        np.testing.assert_allclose(scores, expected, atol=1e-5)
        assert np.array_equal(label, scores.argmax(1))
        plain_scores = predict_scores(plain, image)[2]
        assert np.abs(scores - plain_scores).max() > 1e-3  # the mirror passes changed the scores


def test_tta_is_recorded_and_refused_for_dense_networks(trained, dense_trained, tmp_path, capsys):
    model, events = trained
    assert main(["evaluate", "--model", str(model), "--in", str(events), "--tta", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is True
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(tmp_path / "p.h5"), "--tta",
                 "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is True
    dense, _, _ = dense_trained
    assert main(["predict", "--model", str(dense), "--in", str(events), "--out", str(tmp_path / "d.h5"), "--tta",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "test-time augmentation (tta) is for sparse networks" in err and err.count("\n") == 1


def test_prediction_files_of_the_first_layout_still_read(trained, tmp_path):
    """Files written before the task was recorded told the image by a plane attribute (-1: voxels,
    -2: every plane of the tagger)."""
    model, events = trained
    out = tmp_path / "new.h5"
    runner.predict(str(model), str(events), str(out), progress=False)
    new = predictions.read(out, 2)
    with h5py.File(out, "a") as f:
        for key in ("version", "task", "image"):
            del f.attrs[key]
        f.attrs["plane"] = 2
    old = predictions.read(out, 2)
    assert old["task"] == "segmentation" and old["plane"] == 2 and np.array_equal(old["label"], new["label"])
    with h5py.File(out, "a") as f:
        f.attrs["plane"] = -2
    assert predictions.read(out, 2)["task"] == "tagging"
    with h5py.File(out, "a") as f:
        del f["sites/offsets"]
    with pytest.raises(predictions.DataError, match="regenerate it with lartpcnet predict"):
        predictions.read(out, 2)


def test_the_python_api_runs_a_model_on_an_event_or_on_arrays(trained):
    import lartpcnet
    import lartpcnet.data as data

    model_path, events = trained
    model = lartpcnet.load_model(str(model_path))
    with data.open(events) as reader:
        event = reader[1]
    result = model.predict(event)
    plane = event.planes[2]
    inside = (plane.values >= 10) & (plane.values <= 300)
    assert len(result.label) == inside.sum() and result.classes == ("HIP", "MIP", "shower", "delta", "Michel")
    assert np.array_equal(result.fields["two_class_label"], np.isin(result.label, [2, 3, 4]).astype(np.int8))
    # the same plane as bare arrays: the same labels, no truth needed
    from_arrays = model.predict(images=[(plane.coords, plane.values, plane.shape)])
    assert np.array_equal(from_arrays.coords, result.coords) and np.array_equal(from_arrays.label, result.label)
    with pytest.raises(ValueError, match="coords must be integers"):
        model.predict(images=[(plane.coords + 0.5, plane.values, plane.shape)])
    with pytest.raises(ValueError, match="outside the image"):
        model.predict(images=[(plane.coords + 600, plane.values, plane.shape)])
    with pytest.raises(ValueError, match="--plane"):
        model.with_settings(plane=-1)


def test_evaluate_without_truth_is_a_one_line_error(trained, tmp_path, capsys):
    import lartpcnet.data as data
    from lartpcnet.data.h5format import write_events

    model, events = trained
    unlabelled = tmp_path / "unlabelled.h5"
    with data.open(events) as reader:
        stripped = []
        for i in range(2):
            event = reader[i]
            for image in event.planes:
                image.semantic[:] = -1
            stripped.append(event)
    write_events(unlabelled, stripped, {})
    assert main(["evaluate", "--model", str(model), "--in", str(unlabelled), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "holds no truth labels to score against" in err and err.count("\n") == 1
