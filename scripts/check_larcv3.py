"""Checks that larcv3 files written by lartpcnet read back with the official larcv3 library.

    python scripts/check_larcv3.py write OUT_DIR   # lartpcnet's venv: simulate, write larcv3 + expectations
    python scripts/check_larcv3.py read OUT_DIR    # a venv with larcv==3.5.1: read with larcv3's IOManager

Two kinds of files: events written by ``write_larcv3`` (``convert --to larcv3``: ``PRODUCTS``), and
the outputs of ``lartpcnet predict --format larcv3`` with the shipped weights (``PREDICTIONS``:
2D segmentation of a plane, 3D segmentation of voxels, the SBND cosmic tagger on every plane of
SBND's own file at 50 % resolution). For every product the official reader must give the voxel
ids and values lartpcnet stored; for the predictions it must also give the labels and every
class's scores at the same sites, labels that are class indices, scores that sum to one, and
(through larcv3's own ImageMeta geometry) prediction voxels that lie on the image's voxels.

scripts/check_larcv3.sh runs both (it builds larcv3 first); `make check-larcv3` calls it.
"""

import json
import sys
from pathlib import Path

import numpy as np

# what write_larcv3 writes for the simulated events: the image and every truth label they carry
PRODUCTS = [(kind, f"wire{suffix}", name) for kind, name in (("sparse2d", "sbnd.h5"), ("sparse3d", "cube.h5"))
            for suffix in ("", "_segment", "_semantic", "_cosmicseg", "_instance", "_interaction")]
SBND_FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "sbnd_cosmic_tagging_5events.h5"
# (output, shipped model, input, more predict arguments)
PREDICTIONS = [("pred_plane.h5", "sparsessnet_uboone", "bomb.h5", []),  # plane 2 of lartpcnet HDF5 events
               ("pred_voxels.h5", "uresnet3d_pilarnet", "cube.h5", []),  # voxels of the larcv3 file above
               ("pred_tagger.h5", "cosmictagger_sbnd", str(SBND_FIXTURE), ["--shard", "0/3"])]  # events 0, 3


def write(out: Path) -> None:
    from lartpcnet import larcv3_predictions
    from lartpcnet.cli import main
    from lartpcnet.data.larcv3 import Larcv3File, write_larcv3
    from lartpcnet.sim.samples import generate_event, load_sample

    out.mkdir(parents=True, exist_ok=True)
    write_larcv3(out / "sbnd.h5", [generate_event(load_sample("sbnd_cosmic"), 1, i) for i in range(3)])
    write_larcv3(out / "cube.h5", [generate_event(load_sample("pilarnet3d"), 1, i) for i in range(3)])
    for name in ("sbnd.h5", "cube.h5"):  # PRODUCTS lists every product the writer wrote
        with Larcv3File(out / name) as f:
            written = {(k, p) for k, p in f.products.values()}
        listed = {(k, p) for k, p, n in PRODUCTS if n == name}
        if written != listed:
            sys.exit(f"{name}: PRODUCTS lists {sorted(listed)}, the writer wrote {sorted(written)}")
    (out / "bomb.h5").unlink(missing_ok=True)
    if main(["simulate", "--sample", "particle_bomb", "--events", "3", "--seed", "5", "--out", str(out / "bomb.h5"),
             "--no-progress"]):
        sys.exit("lartpcnet simulate failed")
    checks = list(PRODUCTS)
    predictions = {}
    for name, model, source, more in PREDICTIONS:
        source = source if Path(source).is_absolute() else str(out / source)
        if main(["predict", "--model", model, "--in", source, "--out", str(out / name), "--format", "larcv3",
                 "--overwrite", "--no-progress", *more]):
            sys.exit(f"lartpcnet predict --format larcv3 --model {model} failed")
        record = larcv3_predictions.header(out / name)
        products = record["products"]
        columns = [products["label"], *products["scores"], *([products["instance"]] if products["instance"] else [])]
        predictions[name] = {"kind": record["kind"], "image": record["producer"], "label": products["label"],
                             "scores": products["scores"], "classes": record["classes"],
                             "per_class": len(products["scores"]) == len(record["classes"])}
        checks += [(record["kind"], p, name) for p in [record["producer"], *columns]]
    expected = {}
    for kind, producer, name in checks:  # voxel ids, values and image meta as stored, per event and projection
        with Larcv3File(out / name) as f:
            group = f._group(kind, producer)
            for event in range(len(f)):
                metas, rows = f._metas(group, event)
                expected[f"{name}:{kind}_{producer}_{event}_projections"] = len(metas)
                for k in range(len(metas)):
                    extent = f._extent(group, "voxel_extents", rows.start + k, event)
                    ids, values = f._voxels(group, extent, event)
                    key = f"{name}:{kind}_{producer}_{event}_{k}"
                    expected[key + "_ids"], expected[key + "_values"] = ids, values
                    expected[key + "_voxels"] = metas[k]["number_of_voxels"].astype(np.int64)
                    expected[key + "_sizes"] = metas[k]["image_sizes"].astype(np.float64)
    np.savez(out / "expected.npz", **expected)
    (out / "manifest.json").write_text(json.dumps({"checks": checks, "predictions": predictions}))
    print(f"wrote {out}: sbnd.h5, cube.h5, {', '.join(n for n, *_ in PREDICTIONS)} and the voxels they hold")


def read(out: Path) -> int:
    import larcv  # larcv 3.5: the classes live on the package itself

    expected = np.load(out / "expected.npz")
    manifest = json.loads((out / "manifest.json").read_text())
    checks = [tuple(c) for c in manifest["checks"]]
    checked = failures = bad = 0
    for name in dict.fromkeys(n for _, _, n in checks):
        io = larcv.IOManager(larcv.IOManager.kREAD)
        io.add_in_file(str(out / name))
        io.initialize()
        for event in range(io.get_n_entries()):
            io.read_entry(event)
            found = {}  # producer -> [(ids, values, tensor)] per projection (tensors valid until the next entry)
            for kind, producer, file_name in checks:
                if file_name != name:
                    continue
                event_data = io.get_data(kind, producer)
                key = f"{name}:{kind}_{producer}_{event}"
                ok = event_data.size() == int(expected[key + "_projections"])
                found[producer] = []
                for k in range(event_data.size()):
                    tensor = event_data.sparse_tensor(k)
                    meta = tensor.meta()
                    ids = np.asarray(tensor.indexes(), np.uint64)
                    values = np.asarray(tensor.values(), np.float32)
                    want = {part: expected[f"{key}_{k}_{part}"] for part in ("ids", "values", "voxels", "sizes")}
                    dims = len(want["voxels"])
                    ok = ok and np.array_equal(ids, want["ids"]) and np.array_equal(values, want["values"])
                    ok = ok and [meta.number_of_voxels(a) for a in range(dims)] == want["voxels"].tolist()
                    ok = ok and [meta.image_size(a) for a in range(dims)] == want["sizes"].tolist()
                    # larcv3's own dense image holds each value at the C-order coordinates of its id
                    dense = np.asarray(tensor.dense())
                    where = np.unravel_index(ids.astype(np.int64), dense.shape)
                    ok = ok and np.array_equal(dense[where], values)
                    found[producer].append((ids, values, tensor))
                checked += 1
                failures += not ok
                if not ok:
                    print(f"MISMATCH {name} event {event} {kind}_{producer}")
            if name in manifest["predictions"]:
                problems = _prediction_problems(found, manifest["predictions"][name])
                bad += bool(problems)
                for problem in problems:
                    print(f"PREDICTION {name} event {event}: {problem}")
        io.finalize()
        if name in manifest["predictions"]:
            p = manifest["predictions"][name]
            print(f"{name}: {p['label']} and {len(p['scores'])} score products ({', '.join(p['scores'])}) beside "
                  f"{p['image']}, read by larcv3")
    print(f"official larcv3 read {checked} (event, product) pairs written by lartpcnet: "
          f"{checked - failures} identical (ids, values, image meta), {failures} different; prediction events "
          f"with inconsistent sites, labels, scores or geometry: {bad}")
    return 1 if failures or bad or not checked else 0


def _prediction_problems(found: dict, p: dict) -> list[str]:
    """What is wrong with one event's prediction products, as larcv3 reads them."""
    problems = []
    label, scores, image = found[p["label"]], [found[s] for s in p["scores"]], found[p["image"]]
    if len(label) != len(image):
        problems.append(f"{len(label)} projections of labels, {len(image)} of the image")
    for k, (ids, values, tensor) in enumerate(label):
        if any(not np.array_equal(s[k][0], ids) for s in scores):
            problems.append(f"projection {k}: the score products' sites differ from the labels'")
            continue
        if len(values) and (not np.array_equal(values, np.round(values)) or values.min() < 0
                            or values.max() >= len(p["classes"])):
            problems.append(f"projection {k}: labels are not class indices 0..{len(p['classes']) - 1}")
        if p["per_class"] and len(values):
            total = np.sum([s[k][1] for s in scores], 0)
            if np.abs(total - 1).max() > 1e-2:  # softmax probabilities, stored as float16 by predict
                problems.append(f"projection {k}: class scores sum to {total.min():.3f}..{total.max():.3f}, not 1")
        # larcv3's geometry: each prediction voxel lies on some voxel of the image (the same voxel
        # at full resolution, a block of them at the tagger's 50 %)
        image_ids, _, image_tensor = image[k]
        meta, image_meta = tensor.meta(), image_tensor.meta()
        under = {int(meta.position_to_index(list(image_meta.position(int(i))))) for i in image_ids}
        if not set(ids.tolist()) <= under:
            problems.append(f"projection {k}: {len(set(ids.tolist()) - under)} prediction voxels lie on no image "
                            "voxel")
    return problems


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    if mode == "write":
        write(folder)
    else:
        sys.exit(read(folder))
