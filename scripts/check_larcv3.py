"""Checks that larcv3 files written by lartpcnet read back with the official larcv3 library.

    python scripts/check_larcv3.py write OUT_DIR   # lartpcnet's venv: simulate, write larcv3 + expectations
    python scripts/check_larcv3.py read OUT_DIR    # a venv with larcv==3.5.1: read with larcv3's IOManager

scripts/check_larcv3.sh runs both (it builds larcv3 first); `make check-larcv3` calls it.
"""

import sys
from pathlib import Path

import numpy as np

PRODUCTS = [("sparse2d", "wire", "sbnd.h5"), ("sparse2d", "wire_segment", "sbnd.h5"),
            ("sparse2d", "wire_cosmicseg", "sbnd.h5"), ("sparse3d", "wire", "cube.h5"),
            ("sparse3d", "wire_segment", "cube.h5")]


def write(out: Path) -> None:
    from lartpcnet.data.larcv3 import Larcv3File, write_larcv3
    from lartpcnet.sim.samples import generate_event, load_sample

    out.mkdir(parents=True, exist_ok=True)
    write_larcv3(out / "sbnd.h5", [generate_event(load_sample("sbnd_cosmic"), 1, i) for i in range(3)])
    write_larcv3(out / "cube.h5", [generate_event(load_sample("pilarnet3d"), 1, i) for i in range(3)])
    expected = {}
    for kind, producer, name in PRODUCTS:  # voxel ids and values as stored, per event and projection
        with Larcv3File(out / name) as f:
            group = f._group(kind, producer)
            for event in range(len(f)):
                metas, rows = f._metas(group, event)
                for k in range(len(metas)):
                    extent = f._extent(group, "voxel_extents", rows.start + k, event)
                    ids, values = f._voxels(group, extent, event)
                    expected[f"{kind}_{producer}_{event}_{k}_ids"] = ids
                    expected[f"{kind}_{producer}_{event}_{k}_values"] = values
    np.savez(out / "expected.npz", **expected)
    print(f"wrote {out}/sbnd.h5, {out}/cube.h5 and the voxels they hold")


def read(out: Path) -> int:
    import larcv  # larcv 3.5: the classes live on the package itself

    expected = np.load(out / "expected.npz")
    checked = failures = 0
    for name in ("sbnd.h5", "cube.h5"):
        io = larcv.IOManager(larcv.IOManager.kREAD)
        io.add_in_file(str(out / name))
        io.initialize()
        for event in range(io.get_n_entries()):
            io.read_entry(event)
            for kind, producer, file_name in PRODUCTS:
                if file_name != name:
                    continue
                event_data = io.get_data(kind, producer)
                for k in range(event_data.size()):
                    tensor = event_data.sparse_tensor(k)
                    ids = np.asarray(tensor.indexes(), np.uint64)
                    values = np.asarray(tensor.values(), np.float32)
                    key = f"{kind}_{producer}_{event}_{k}"
                    want_ids, want_values = expected[key + "_ids"], expected[key + "_values"]
                    ok = np.array_equal(ids, want_ids) and np.array_equal(values, want_values)
                    # larcv3's own dense image holds each value at the C-order coordinates of its id
                    dense = np.asarray(tensor.dense())
                    where = np.unravel_index(want_ids.astype(np.int64), dense.shape)
                    ok = ok and np.array_equal(dense[where], want_values)
                    checked += 1
                    failures += not ok
                    if not ok:
                        print(f"MISMATCH {name} event {event} {kind}_{producer} projection {k}")
        io.finalize()
    print(f"official larcv3 read {checked} voxel sets written by lartpcnet: "
          f"{checked - failures} identical, {failures} different")
    return 1 if failures or not checked else 0


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    if mode == "write":
        write(folder)
    else:
        sys.exit(read(folder))
