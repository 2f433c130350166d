"""Keep freed memory inside the process (glibc's allocator), for the long numerical runs.

The behavioural model allocates and frees many temporaries of a few MB per call. By default
glibc hands such blocks back to the kernel as soon as they are freed and takes them again,
page by page, on the next call. :func:`keep_freed_memory` raises the trim threshold and pads
the heap so that freed memory is reused, and keeps blocks up to 32 MB (the largest glibc
accepts) on the heap. The process's resident size then stays at its peak.

Whether it still pays, measured on this project's 2-core machine with the compiled macro
(``benchmarks/bench_allocator.py``, CPU time, so machine load matters little): a Monte Carlo
instance (1024 query rows × 256 keys, top-5, σ × 1) takes 36 ms with the setting and 41.5 ms
without (two rounds each, 2026-12-06); the MiniLM forward with Topkima attention
(``benchmarks/bench_attention.py``) shows no difference above its noise (topkima / exact
2.29–2.30 with, 2.21–2.37 without). So it stays, for the Monte Carlo study.

Called by the command line, the Monte Carlo workers and the benchmarks; a no-op elsewhere
(another C library, or ``mallopt`` missing).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

_done = False


def keep_freed_memory() -> bool:
    """Set the allocator once per process; True if glibc accepted every setting."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, 32 << 20),     # blocks up to 32 MB come from the heap
        (M_TRIM_THRESHOLD, 1 << 30),      # give memory back only above 1 GB free at the top
        (M_TOP_PAD, 64 << 20)))           # grow the heap in 64 MB steps
    _done = ok
    return ok
