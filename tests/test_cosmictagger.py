"""The multi-plane cosmic tagger: sparse equals dense, one weight set for all planes, the
cross-plane block really blocks, Table 1 shapes."""

import pytest
import torch

from lartpcnet.models.cosmictagger import CosmicTagger
from lartpcnet.models.layers import copy_sparse_to_dense
from lartpcnet.sparse import SparseTensor

SMALL = dict(filters=2, depth=2, blocks=1, deepest_filters=4, deepest_blocks=1, deepest_kernel=3)


def all_active(events, planes, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(events * planes, 1, h, w, generator=g) + 0.1
    return SparseTensor.from_dense(dense), dense


@pytest.mark.parametrize("variant", [{}, {"connections": "concat"}, {"upsampling": "convolutional"},
                                     {"cross_plane": False}, {"residual": False}])
def test_sparse_equals_dense_when_every_pixel_is_active(variant):
    torch.manual_seed(0)
    sparse_net = CosmicTagger(**SMALL, **variant).eval()
    dense_net = CosmicTagger(**SMALL, **variant, sparse=False).eval()
    copy_sparse_to_dense(sparse_net, dense_net)
    x, dense = all_active(2, 3, 8, 12)
    with torch.no_grad():
        out_sparse, out_dense = sparse_net(x), dense_net(dense)
    c = out_sparse.coords.long()
    torch.testing.assert_close(out_sparse.feats, out_dense[c[:, 0], :, c[:, 1], c[:, 2]], atol=1e-5, rtol=1e-4)


def test_one_parameter_set_serves_every_plane():
    net = CosmicTagger(**SMALL)
    shared = sum(p.numel() for name, p in net.named_parameters() if not name.startswith("unet.inner"))
    single = CosmicTagger(**SMALL, planes=1)
    assert shared == sum(p.numel() for name, p in single.named_parameters() if not name.startswith("unet.inner"))
    # swapping two planes of an event swaps their outputs: the same weights act on each plane
    torch.manual_seed(1)
    net = CosmicTagger(**SMALL, cross_plane=False, sparse=False).eval()
    x = torch.rand(3, 1, 8, 12)
    with torch.no_grad():
        a, b = net(x), net(x[[1, 0, 2]])
    torch.testing.assert_close(a[[1, 0, 2]], b)


@pytest.mark.parametrize("sparse_net", [True, False])
def test_the_cross_plane_block_blocks(sparse_net):
    torch.manual_seed(2)
    dense = torch.rand(3, 1, 8, 12) + 0.1
    changed = dense.clone()
    changed[0] = torch.rand(1, 8, 12) + 0.1  # plane 0 only

    def run(net, images):
        with torch.no_grad():
            if sparse_net:
                out = net(SparseTensor.from_dense(images))
                return out.to_dense()
            return net(images)

    blocked = CosmicTagger(**SMALL, cross_plane=False, sparse=sparse_net).eval()
    a, b = run(blocked, dense), run(blocked, changed)
    assert torch.equal(a[1:], b[1:]) and not torch.equal(a[0], b[0])
    joined = CosmicTagger(**SMALL, sparse=sparse_net).eval()
    a, b = run(joined, dense), run(joined, changed)
    assert not torch.allclose(a[1], b[1])  # with the deepest concat, plane 0 reaches plane 1


def test_table_1_shapes_and_parameters():
    net = CosmicTagger(sparse=False)
    assert net.config.depth == 6 and 640 // net.config.stride == 10 and 1024 // net.config.stride == 16
    deepest = net.unet
    filters = net.config.filters
    for _ in range(net.config.depth - 1):
        deepest = deepest.inner
        filters *= 2
    # the deepest level sees 3 x 512 filters: concat bottleneck 1536 -> 256, five 5x5 blocks, back to 1536
    first = deepest.inner.block[0][0]
    assert filters * 2 == 512 and first.in_channels == 1536 and first.out_channels == 256
    five = sum(p.numel() for p in deepest.inner.block[1:-1].parameters() if p.dim() == 4)
    assert five == 5 * 2 * 256 * 256 * 25  # Table 1: 16.4 M in the 5x5 residual blocks (conv weights)


@pytest.mark.parametrize("name", ["cosmictagger", "cosmictagger_dense"])
def test_the_tagger_trains_and_validates_from_the_cli(name, tmp_path, capsys):
    import json

    import yaml

    from lartpcnet.cli import main

    config = {"name": "tiny_tagger", "model": {"name": name, "network": SMALL | {"depth": 3},
                                               "loss": {"weighting": "boost"}},
              "data": {"train": {"sample": "sbnd_cosmic", "seed": 1},
                       "validation": {"sample": "sbnd_cosmic", "seed": 2, "events": 2},
                       "plane": None, "downsample": 4, "adc_window": None, "workers": 0},
              "optimizer": {"name": "rmsprop", "lr": 3e-4}, "batch_size": 1, "iterations": 2,
              "validate_every": 2, "checkpoint_every": 2}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "run"), "--json", "--no-progress"]) == 0
    validation = json.loads(capsys.readouterr().out)["validation"]
    for key in ("accuracy", "nonbackground_accuracy", "cosmic_iou", "neutrino_iou", "mean_iou"):
        assert key in validation
    assert len(validation["per_plane"]) == 3 and validation["images"] == 2 * 3
    assert 0 <= validation["accuracy"] <= 1


REAL = __import__("pathlib").Path(__file__).parent / "fixtures" / "sbnd_cosmic_tagging_5events.h5"


@pytest.fixture(scope="module")
def tiny_tagger(tmp_path_factory):
    import yaml

    from lartpcnet.cli import main

    folder = tmp_path_factory.mktemp("tagger")
    config = {"name": "tiny_tagger", "model": {"name": "cosmictagger", "network": SMALL | {"depth": 3}},
              "data": {"train": {"sample": "sbnd_cosmic", "seed": 1},
                       "validation": {"sample": "sbnd_cosmic", "seed": 2, "events": 1},
                       "plane": None, "downsample": 2, "adc_window": None, "workers": 0},
              "batch_size": 1, "iterations": 1, "validate_every": 1, "checkpoint_every": 1}
    (folder / "t.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(folder / "t.yaml"), "--out", str(folder / "run"), "--no-progress"]) == 0
    return folder / "run" / "checkpoints" / "ckpt-1.pt"


def test_predict_evaluate_and_display_on_the_real_sbnd_file(tiny_tagger, tmp_path, capsys):
    import json

    import numpy as np

    import lartpcnet.data as data
    from lartpcnet.cli import main
    from lartpcnet.data.tagging import downsample
    from lartpcnet.predictions import read as read_predictions

    out = tmp_path / "p.h5"
    assert main(["predict", "--model", str(tiny_tagger), "--in", str(REAL), "--out", str(out), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 5 and summary["downsample"] == 2 and summary["image"] == "planes"
    with data.open(REAL) as reader:
        planes = [downsample(p, 2) for p in reader[3].planes]
    pred = read_predictions(out, 3)
    for p in range(3):  # one label per pixel of each 640 x 1024 plane
        assert (pred["coords"][:, 0] == p).sum() == len(planes[p])
        assert sum(summary["class_counts"]["3"][p].values()) == len(planes[p])
    assert np.array_equal(pred["label"], pred["scores"].argmax(1))
    assert main(["evaluate", "--model", str(tiny_tagger), "--in", str(REAL), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "nonbackground_accuracy", "cosmic_iou", "neutrino_iou", "mean_iou", "per_plane"):
        assert key in report
    assert len(report["events"]) == 5 and report["images"] == 15
    picture = tmp_path / "d.png"
    assert main(["display", str(REAL), "--event", "3", "--predictions", str(out), "--out", str(picture)]) == 0
    assert picture.read_bytes()[:4] == b"\x89PNG"
    # the Python API labels an event as predict does
    import lartpcnet

    with data.open(REAL) as reader:
        result = lartpcnet.load_model(str(tiny_tagger)).predict(reader[3])
    assert np.array_equal(result.coords, pred["coords"]) and np.array_equal(result.label, pred["label"])
    assert [len(result.plane(p).label) for p in range(3)] == [len(p) for p in planes]


def test_select_and_iou_plots_on_simulated_events(tiny_tagger, tmp_path, capsys):
    import json

    from lartpcnet.cli import main

    assert main(["select", "--model", str(tiny_tagger), "--sample", "sbnd_cosmic", "--events", "4", "--seed", "3",
                 "--out", str(tmp_path), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_row_separation"] == 50.0  # 640-row images: the paper's cut as is
    assert sum(report["events"].values()) + report.get("cosmic_only_events", 0) == 4
    assert (tmp_path / "selection_roc.png").exists() and len(report["roc"]) > 10
    assert main(["evaluate", "--model", str(tiny_tagger), "--sample", "sbnd_cosmic", "--events", "3", "--out",
                 str(tmp_path), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["by_kind"]) <= {"nueCC", "numuCC", "NC", "cosmic_only"}
    assert (tmp_path / "iou_vs_energy.png").exists()


def test_bench_table_lists_both_resolutions():
    from lartpcnet.bench import cosmictagger

    case = {"pixels": [10, 20, 30], "shape": [1280, 2048], "ms": 100.0, "peak_mb": 50.0}
    report = {"cpu": "x", "threads": 2, "cases": [
        {"resolution": "full", "sparse": True, **case}, {"resolution": "full", "sparse": False, **case, "ms": 900.0},
        {"resolution": "50%", "sparse": True, **case, "shape": [640, 1024]},
        {"resolution": "50%", "sparse": False, "error": "out of memory"}]}
    text = cosmictagger.markdown(report, "lartpcnet bench cosmictagger")
    assert "| full | 3 × 1280 × 2048 | 10, 20, 30 | 100 | 50 | 900 | 50 | 9.0× |" in text
    assert "out of memory" in text


def test_tta_averages_the_tagger_over_mirror_images_of_all_planes(tiny_tagger, tmp_path, capsys):
    import json
    from dataclasses import replace

    import numpy as np

    import lartpcnet.data as data
    from lartpcnet import runner
    from lartpcnet.cli import main
    from lartpcnet.tasks.tagging import TaggingItem

    plain, tta = runner.load_model(str(tiny_tagger)), runner.load_model(str(tiny_tagger), tta=True)
    with data.open(REAL) as reader:
        item = plain.task.item(reader[1], plain.settings.data, str(REAL), 1)

    def per_plane(output):
        on = [output.coords[:, 0] == p for p in range(3)]
        return [{"coords": output.coords[m, 1:], "scores": output.scores[m], "label": output.label[m]} for m in on]

    averaged = per_plane(runner.run(tta, [item])[0])
    reference = [{} for _ in item.planes]  # per plane: site -> the plain passes' scores there
    for axis in (None, 0, 1):
        planes = item.planes
        if axis is not None:  # every plane mirrored at once, so the planes still agree on the drift
            planes = []
            for image in item.planes:
                coords = image.coords.copy()
                coords[:, axis] = image.shape[axis] - 1 - coords[:, axis]
                planes.append(replace(image, coords=coords))
        got = per_plane(runner.run(plain, [TaggingItem(planes, item.kind, item.energy)])[0])
        for p, result in enumerate(got):
            for site, row in zip(result["coords"], result["scores"], strict=True):
                if axis is not None:
                    site = site.copy()
                    site[axis] = item.planes[p].shape[axis] - 1 - site[axis]
                reference[p].setdefault(tuple(site), []).append(row)
    single = per_plane(runner.run(plain, [item])[0])
    for p, result in enumerate(averaged):
        expected = np.array([np.mean(reference[p][tuple(site)], axis=0) for site in result["coords"]])
        np.testing.assert_allclose(result["scores"], expected, atol=1e-5)
        assert np.array_equal(result["label"], result["scores"].argmax(1))
        assert np.abs(result["scores"] - single[p]["scores"]).max() > 1e-3
    assert main(["select", "--model", str(tiny_tagger), "--in", str(REAL), "--tta", "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] is True
