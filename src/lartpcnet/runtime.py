"""Process-level settings that make CPU inference and training faster.

``configure_malloc`` serves large temporaries from glibc's heap instead of a fresh ``mmap`` per
allocation. Every sparse conv allocates pair buffers of tens of MB; mmapped ones are returned to
the kernel on free, so the next call page-faults all of them in again, which measured 30-40% of
a 3D layer's time. The CLI calls it at start-up; library users may call it themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 256 << 20  # give memory back to the OS only above this much free heap


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
