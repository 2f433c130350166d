"""How the macro's compiled kernels run: their on-disk cache, their thread count, and the
``noalias`` option some of them compile with (:data:`NO_OVERLAP_KERNEL`).

The kernels are numba functions compiled on first use and cached on disk (``cache=True``). The
cache lives outside the source tree, in ``$NUMBA_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/topkima/numba/<hash of this package's sources>`` (``~/.cache/...``), so an
editable install or a read-only site-packages never receives compiled files, and a cache
written by other sources is never read.

Threads: the kernels release the GIL, and :func:`parallel_for` runs them over blocks of query
rows on a pool of Python threads. The count is ``TOPKIMA_THREADS`` if set (read when this
module is imported), else the cores this process may use; :func:`set_threads` changes it (the
command line's ``--threads``). Results do not depend on it: every row is computed by one thread,
with the same arithmetic in the same order, whatever the count or the blocks.
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor


def _default_cache_dir() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            with open(os.path.join(here, name), "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "topkima", "numba", digest.hexdigest()[:16])


os.environ.setdefault("NUMBA_CACHE_DIR", _default_cache_dir())

import numba  # noqa: E402  (after the cache directory is set)

if not numba.config.CACHE_DIR:   # numba was imported before us: point it at the same place
    numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

#: the njit options of the kernels that allocate (a block's scratch and outputs): compiled once per
#: machine, cached outside the repository, run without the GIL
JIT = dict(cache=True, nogil=True, error_model="numpy")
#: the options of the per-row and per-element kernels, which allocate nothing: compiled without
#: numba's reference counting, whose atomic increments on every array of every argument would
#: otherwise cost more than the physics (they ran 3-5x slower with it)
KERNEL = dict(JIT, _nrt=False)


def _register_noalias_option() -> bool:
    """Let ``numba.njit`` take ``noalias=True``: numba's compiler flag of that name (set by its
    parallel back end where it has proved that no two arrays overlap) marks every pointer argument
    of the compiled function as not aliasing any other, C's ``restrict``. Without it LLVM must assume
    that a column loop's stores may overwrite the tables it reads through computed indices (the
    bitline curve, the leakage rate), and it keeps such loops mostly scalar. The option is added to
    numba's CPU target options for the whole process (a class attribute; no other option changes).
    False if this numba has no such flag (the kernels then compile without it: slower, same
    results; a warning says so)."""
    try:
        from numba.core import compiler, cpu, options
        if "noalias" not in compiler.Flags.options:
            return False
        if not hasattr(cpu.CPUTargetOptions, "noalias"):
            cpu.CPUTargetOptions.noalias = options.TargetOptions.Mapping("noalias")
        return True
    except (ImportError, AttributeError):
        return False


#: the options of the column-loop kernels whose written arrays overlap no other argument (arrays
#: they only read may share memory: LLVM's ``noalias`` constrains written memory only): :data:`KERNEL`
#: plus ``noalias`` (:func:`_register_noalias_option`), so that their table lookups run as vector gathers
NO_OVERLAP_KERNEL = dict(KERNEL, noalias=True) if _register_noalias_option() else KERNEL
if NO_OVERLAP_KERNEL is KERNEL:
    warnings.warn("this numba has no 'noalias' compiler flag: the energy pass and the comparators' passes run "
                  "without vector instructions (same results, slower)", RuntimeWarning, stacklevel=2)
# noalias also marks the arrays' reference-count blocks (meminfo), which two views of one array share:
# sound only because these kernels never write them (no reference counting, ``_nrt=False``)
assert NO_OVERLAP_KERNEL["_nrt"] is False


def max_threads() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # not Linux
        return os.cpu_count() or 1


_state = {"threads": max_threads(), "pool": None}
_lock = threading.Lock()


def _forget_pool_in_child() -> None:   # a forked child has none of its parent's threads
    global _lock
    _state["pool"] = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


MAX_THREADS = 64


def set_threads(n: int) -> int:
    """Run the kernels on ``n`` threads (1 … 64); returns ``n``."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"the thread count must be an integer in 1..{MAX_THREADS} (this machine has "
                         f"{max_threads()} cores), got {n!r}")
    with _lock:
        if n != _state["threads"] and _state["pool"] is not None:
            _state["pool"].shutdown(wait=True)
            _state["pool"] = None
        _state["threads"] = n
    return n


def threads() -> int:
    """The kernels' current thread count."""
    return _state["threads"]


def parallel_for(kernel, n_items: int, *args, blocks_per_thread: int = 4) -> None:
    """``kernel(start, stop, *args)`` over [0, n_items) in blocks, on :func:`threads` threads
    (a few blocks per thread when items differ in cost, one when they cost alike).

    The kernels write disjoint outputs per item, so any split gives the same results."""
    n_threads = min(_state["threads"], n_items)
    if n_threads <= 1:
        kernel(0, n_items, *args)
        return
    n_blocks = min(n_items, blocks_per_thread * n_threads)
    edges = [n_items * i // n_blocks for i in range(n_blocks + 1)]
    with _lock:
        if _state["pool"] is None:
            _state["pool"] = ThreadPoolExecutor(_state["threads"], thread_name_prefix="topkima-kernel")
        pool = _state["pool"]
    futures = [pool.submit(kernel, edges[i], edges[i + 1], *args) for i in range(n_blocks)]
    for f in futures:
        f.result()


def _threads_from_environment() -> None:
    text = os.environ.get("TOPKIMA_THREADS")
    if text is None or text == "":
        return
    try:
        set_threads(int(text))
    except ValueError:
        raise ValueError(f"TOPKIMA_THREADS must be an integer in 1..{MAX_THREADS} (this machine has "
                         f"{max_threads()} cores), got {text!r}; unset it to use every core") from None


_threads_from_environment()
