"""Shared timing helper of the benchmark scripts (run from this folder or the project root)."""
import time


def best_of(fn, repeat: int = 3) -> float:
    """The shortest wall time (s) of ``repeat`` calls of ``fn``: the least disturbed by load."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
