"""Process-level settings that keep CPU inference and training fast and their memory flat.

``configure_runtime`` applies both of the settings below; the CLI calls it at start-up.
fp32 products stay on torch's default path: routing them through oneDNN with
``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` was faster only while one image was
repeated, no faster over a stream of events, and grew the memory like the caches below.

``configure_malloc`` serves large temporaries from glibc's heap instead of a fresh ``mmap`` per
allocation. Every sparse conv allocates pair buffers of tens of MB; mmapped ones are returned to
the kernel on free, so the next call page-faults all of them in again, which measured 30-40% of
a 3D layer's time. The CLI calls it at start-up; library users may call it themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 256 << 20  # give memory back to the OS only above this much free heap
ONEDNN_CACHE_CAPACITY = 64  # kernels per oneDNN cache (see configure_onednn_caches)
# training runs each product in three shapes (forward, both gradients) at every level, a few
# hundred padded shapes in all (lartpcnet.sparse.functional): 64 would evict them every step
ONEDNN_TRAINING_CACHE_CAPACITY = 1024


def configure_malloc() -> bool:
    """Keeps large allocations on the heap (glibc only). Returns whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl): keep the defaults
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


def configure_onednn_caches(capacity: int = ONEDNN_CACHE_CAPACITY) -> None:
    """Bounds oneDNN's per-shape kernel caches (where the environment does not already set them).

    bf16 products on CPU (``--precision bf16``, ``amp`` training) run through oneDNN, which JIT-
    compiles and caches one kernel per matrix shape, 1024 per cache by default. A sparse conv's
    shapes are its pair counts per kernel offset, new with every event, so those caches only grow:
    measured ~1 GB over 30 MicroBooNE planes, past a grid job's memory. Bounded, the RSS stays flat
    and inference is faster (no page faults for the growth). Read at oneDNN's first use. (The
    sparse convs now pad their row counts in these dtypes, so shapes recur and the cache hits.)
    """
    for variable in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):  # oneDNN's, then ideep's
        os.environ.setdefault(variable, str(capacity))


def configure_runtime(training: bool = False) -> dict[str, bool]:
    """Both settings; ``training`` gives oneDNN the larger cache a training step's shapes need."""
    configure_onednn_caches(ONEDNN_TRAINING_CACHE_CAPACITY if training else ONEDNN_CACHE_CAPACITY)
    return {"malloc": configure_malloc()}
