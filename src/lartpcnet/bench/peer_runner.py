"""Times one sparse convolution in a benchmark peer: spconv 2.3 or MinkowskiEngine 0.5.

Run as a script with the peer's own Python (``benchmarks/.peers/<peer>/bin/python``); it imports
nothing from lartpcnet so it works inside the peers' virtualenvs. The timing and memory helpers
below are also what lartpcnet's own benchmark uses, so every engine is measured the same way.

Input: an ``.npz`` case file written by ``lartpcnet bench engine`` (coordinates, features, our
``(K, C_in, C_out)`` weight, the upstream gradient, and our engine's output as a reference).
Output: one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable


def _status_mb(key: str) -> float:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MB; NaN where there is none."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def current_rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    return _status_mb("VmHWM")


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS counter (Linux clear_refs); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1,
            memory_from_start: bool = False) -> dict[str, float | None]:
    """Median wall time in ms over ``repeats`` calls after ``warmup``, and peak RSS increase in MB:
    over the RSS after the warm-up, or with ``memory_from_start`` over the RSS before it (so the
    memory the first call allocates, and the allocator keeps, is counted)."""
    if memory_from_start:
        can_reset = reset_peak_rss()
        base = current_rss_mb()
    for _ in range(warmup):
        fn()
    if not memory_from_start:
        can_reset = reset_peak_rss()
        base = current_rss_mb()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "peak_mb": (peak_rss_mb() - base) if can_reset else None,
    }


def _spconv(case, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    import spconv
    import spconv.pytorch as spc

    # The CPU build's backward asks for a CUDA stream; a CPU-only torch has none. Patch the
    # looked-up name everywhere spconv imported it (benchmark only).
    for name, module in list(sys.modules.items()):
        if name.startswith("spconv") and hasattr(module, "get_current_stream"):
            module.get_current_stream = lambda: 0
    coords, feats, weight, grad, dim, shape, batch = _tensors(case)
    k = round(weight.shape[0] ** (1 / dim))
    conv = getattr(spc, f"SubMConv{dim}d")(weight.shape[1], weight.shape[2], k, bias=False, indice_key="s")
    with torch.no_grad():  # ours (K, C_in, C_out), C-order offsets -> spconv KRSC (C_out, *k, C_in)
        krsc = weight.view(*(k,) * dim, weight.shape[1], weight.shape[2]).permute(dim + 1, *range(dim), dim)
        conv.weight.copy_(krsc)
    coords = coords.int().contiguous()  # spconv misreads non-contiguous indices

    def make(features):
        return spc.SparseConvTensor(features, coords, list(shape), batch)

    x = make(feats)
    with torch.no_grad():
        out = conv(x).features
    result = {"peer": "spconv", "version": spconv.__version__, "threads": threads}
    result["max_abs_diff"] = float((out - case["reference"]).abs().max()) if out.numel() else 0.0
    return result | _time_all(conv, make, x, lambda o: o.features, feats, grad, repeats)


def _minkowski(case, threads: int, repeats: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    import MinkowskiEngine as ME

    coords, feats, weight, grad, dim, shape, _ = _tensors(case)
    k = round(weight.shape[0] ** (1 / dim))
    conv = ME.MinkowskiConvolution(weight.shape[1], weight.shape[2], kernel_size=k, stride=1, bias=False, dimension=dim)
    with torch.no_grad():  # ME enumerates kernel offsets first-dimension-fastest; ours are C order.
        spatial = weight.view(*(k,) * dim, weight.shape[1], weight.shape[2])
        conv.kernel.copy_(spatial.permute(*reversed(range(dim)), dim, dim + 1).reshape(weight.shape))
    coords = coords.int().contiguous()

    def make(features):
        return ME.SparseTensor(features=features, coordinates=coords)

    x = make(feats)
    with torch.no_grad():
        out = conv(x)
    # ME may reorder sites; align its rows with ours by coordinates before comparing.
    order = _align(x.C.long(), coords.long(), shape)
    result = {"peer": "minkowski", "version": ME.__version__, "threads": threads}
    diff = (out.F[order] - case["reference"]).abs().max() if out.F.numel() else torch.tensor(0.0)
    result["max_abs_diff"] = float(diff)
    grad_me = torch.empty_like(grad)
    grad_me[order] = grad  # the upstream gradient of each site, in ME's row order
    return result | _time_all(conv, make, x, lambda o: o.F, feats, grad_me, repeats)


def _align(theirs, ours, shape):
    """Index into ``theirs`` rows giving ``ours`` row order."""
    import torch

    def keys(c):
        key = c[:, 0].clone()
        for axis, size in enumerate(shape):
            key = key * size + c[:, axis + 1]
        return key

    their_keys, order = torch.sort(keys(theirs))
    return order[torch.searchsorted(their_keys, keys(ours))]


def _time_all(conv, make, x, feats_of, feats, grad, repeats):
    """Forward with the map cached in ``x``, forward on a new tensor (map built), forward+backward."""
    import torch

    def forward_cached():
        with torch.no_grad():
            conv(x)

    def forward_with_map():
        with torch.no_grad():
            conv(make(feats))

    x_grad = make(feats.clone().requires_grad_(True))

    def forward_backward():
        # retain_graph: the peers' tensor constructors are part of the graph (ME averages
        # duplicate sites), and x_grad is reused across repetitions.
        feats_of(conv(x_grad)).backward(grad, retain_graph=True)

    return {
        "forward": measure(forward_cached, repeats),
        "forward_with_map": measure(forward_with_map, repeats),
        "forward_backward": measure(forward_backward, repeats),
    }


def _tensors(case):
    import torch

    coords = torch.from_numpy(case["coords"])
    feats = torch.from_numpy(case["feats"])
    weight = torch.from_numpy(case["weight"])
    grad = torch.from_numpy(case["grad"])
    shape = tuple(int(s) for s in case["spatial_shape"])
    return coords, feats, weight, grad, len(shape), shape, int(case["batch_size"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer", choices=["spconv", "minkowski"], required=True)
    parser.add_argument("--case", required=True, help="npz written by lartpcnet bench engine")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    with np.load(args.case) as data:
        case = {key: data[key] for key in data.files}
    case["reference"] = torch.from_numpy(case["reference"])
    run = _spconv if args.peer == "spconv" else _minkowski
    print(json.dumps(run(case, args.threads, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
