"""predict --format larcv3: the input's images with the predictions as larcv3 products beside them,
read back equal to the default prediction file, resumable and sharded like it."""

import h5py
import numpy as np
import pytest

import lartpcnet.data as data
from lartpcnet import larcv3_predictions, runner
from lartpcnet.cli import main
from lartpcnet.data.larcv3 import Larcv3Events, Larcv3File, is_prediction
from tests.conftest import crash_runner_on_call, read_prediction_file

CLASSES = ("hip", "mip", "shower", "delta", "michel")


@pytest.fixture(scope="module")
def predicted(trained, tmp_path_factory):
    """The tiny 2D model's predictions on six events, in the default format and as larcv3."""
    model, events = trained
    folder = tmp_path_factory.mktemp("larcv3_predictions")
    default, larcv3 = folder / "default.h5", folder / "larcv3.h5"
    for out, extra in ((default, []), (larcv3, ["--format", "larcv3"])):
        assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(out), "--no-progress",
                     *extra]) == 0
    return model, events, default, larcv3


def _by_site(coords: np.ndarray) -> np.ndarray:
    return np.lexsort(coords.T[::-1])


def _assert_same_predictions(default: dict, larcv3: dict) -> None:
    """Element for element, site for site: the larcv3 file's events equal the default file's."""
    offsets = default["sites/offsets"]
    assert [e["index"] for e in larcv3["events"]] == default["events/index"].tolist()
    for n, event in enumerate(larcv3["events"]):
        lo, hi = offsets[n], offsets[n + 1]
        mine, theirs = _by_site(event["coords"]), _by_site(default["sites/coords"][lo:hi])
        assert np.array_equal(event["coords"][mine], default["sites/coords"][lo:hi][theirs])
        assert np.array_equal(event["label"][mine], default["sites/label"][lo:hi][theirs])
        # the default file keeps float16 scores; larcv3 stores them exactly as float32
        assert np.array_equal(event["scores"][mine], default["sites/scores"][lo:hi][theirs].astype(np.float32))


def test_larcv3_predictions_read_back_equal_the_default_prediction_file(predicted):
    _, _, default, larcv3 = predicted
    back = larcv3_predictions.read(larcv3)
    assert back["task"] == "segmentation" and back["image"] == "plane 2" and back["producer"] == "wire"
    assert back["products"] == {"label": "wire_pred", "scores": [f"wire_score_{c}" for c in CLASSES],
                                "instance": None}
    _assert_same_predictions(read_prediction_file(default), back)
    with Larcv3File(larcv3) as f:
        assert {"sparse2d_wire_pred", *(f"sparse2d_wire_score_{c}" for c in CLASSES)} <= set(f.products)
        for event in range(len(f)):  # one projection per plane of the image; the model's plane 2 filled
            image, labels = f.sparse2d("wire", event), f.sparse2d("wire_pred", event)
            assert [p.shape for p in labels] == [p.shape for p in image] and len(labels) == 3
            assert len(labels[0].values) == len(labels[1].values) == 0 < len(labels[2].values)
            # the sites the network labelled: the image's inside the ADC window
            assert {tuple(c) for c in labels[2].coords} <= {tuple(c) for c in image[2].coords}


def test_the_input_images_and_truth_are_carried_over_unchanged(predicted, tmp_path):
    _, events, _, larcv3 = predicted
    converted = tmp_path / "converted.h5"
    assert main(["convert", str(events), "--to", "larcv3", "--out", str(converted), "--no-progress"]) == 0
    with h5py.File(converted) as want, h5py.File(larcv3) as got:
        assert np.array_equal(got["Events/event_id"][:], want["Events/event_id"][:])
        for group in want["Data"]:  # the image and its truth label products, table for table
            for table in want["Data"][group]:
                assert np.array_equal(got["Data"][group][table][:], want["Data"][group][table][:]), (group, table)
        assert sorted(set(got["Data"]) - set(want["Data"])) == sorted(
            f"sparse2d_{name}_group" for name in ("wire_pred", *(f"wire_score_{c}" for c in CLASSES)))
    # lartpcnet reads the file as the input's events: the predictions are neither images nor truth
    with data.open(events) as original, Larcv3Events(larcv3) as reader:
        assert reader.image == "wire" and reader.truth_labels == original.truth_labels
        for i in range(len(original)):
            for a, b in zip(original[i].planes, reader[i].planes, strict=True):
                mine, theirs = _by_site(a.coords), _by_site(b.coords)
                for field in ("coords", "values", "semantic", "instance", "interaction", "origin"):
                    assert np.array_equal(getattr(a, field)[mine], getattr(b, field)[theirs]), field
    assert all(is_prediction(n) for n in ("wire_pred", "wire_score_mip", "wire_pred_instance", "sbndwire_score"))
    assert not any(is_prediction(n) for n in ("wire", "wire_segment", "sbnd_cosmicseg", "pred"))


def test_larcv3_predict_resumes_after_a_kill_and_shards_like_the_default(predicted, tmp_path, monkeypatch, capsys):
    model, events, default, _ = predicted
    reference = larcv3_predictions.read(runner.predict(str(model), str(events), str(tmp_path / "ref.h5"),
                                                       batch_size=2, progress=False, format="larcv3")["out"])
    out = tmp_path / "b.h5"
    real = crash_runner_on_call(monkeypatch)
    with pytest.raises(RuntimeError, match="killed"):
        runner.predict(str(model), str(events), str(out), batch_size=2, part_size=2, progress=False, format="larcv3")
    assert sorted(p.name for p in (tmp_path / "b.h5.parts").glob("part-*.h5")) == [
        "part-000000000-000000002.h5", "part-000000002-000000004.h5"]
    assert not out.exists()
    monkeypatch.setattr(runner, "run", real)
    summary = runner.predict(str(model), str(events), str(out), batch_size=2, part_size=2, progress=False,
                             format="larcv3")
    assert summary["format"] == "larcv3" and summary["events"] == 6 and not (tmp_path / "b.h5.parts").exists()
    resumed = larcv3_predictions.read(out)
    assert resumed["job"] == reference["job"]
    for a, b in zip(resumed["events"], reference["events"], strict=True):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    # a shard holds its own events, numbered as in the input; labels as the whole file's
    shard = tmp_path / "shard1.h5"
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(shard), "--shard", "1/2",
                 "--format", "larcv3", "--no-progress"]) == 0
    part = larcv3_predictions.read(shard)
    assert [e["index"] for e in part["events"]] == [1, 3, 5] and part["job"]["shard"] == "1/2"
    with Larcv3File(shard) as f:
        assert f.event_ids()["event"].tolist() == [1, 3, 5]
    whole = read_prediction_file(default)
    for event in part["events"]:
        lo, hi = whole["sites/offsets"][event["index"]], whole["sites/offsets"][event["index"] + 1]
        order, theirs = _by_site(event["coords"]), _by_site(whole["sites/coords"][lo:hi])
        assert np.array_equal(event["label"][order], whole["sites/label"][lo:hi][theirs])
        np.testing.assert_allclose(event["scores"][order], whole["sites/scores"][lo:hi][theirs].astype(np.float32),
                                   atol=2e-3)  # batches of one event here: float noise
    capsys.readouterr()

    # the same refusals as the default format, in one line, before any work
    for argv, words in ((["--out", str(shard)], "exists; add --overwrite"),
                        (["--out", str(events)], "is the input file")):
        assert main(["predict", "--model", str(model), "--in", str(events), *argv, "--format", "larcv3",
                     "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1
    assert main(["predict", "--model", str(model), "--in", str(events), "--out", str(shard), "--format", "larcv3",
                 "--shard", "0/2", "--overwrite", "--no-progress"]) == 0
    assert [e["index"] for e in larcv3_predictions.read(shard)["events"]] == [0, 2, 4]
    # merge takes the default format's shards: a larcv3 file is refused in one line
    assert main(["merge", str(tmp_path / "m.h5"), str(shard), "--no-progress"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_an_unknown_format_is_a_one_line_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", "sparsessnet_uboone", "--in", "x.h5", "--out", "y.h5", "--format", "root"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--format" in err and "invalid choice: 'root'" in err
