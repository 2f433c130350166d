"""Argument types and shared options of the `topkima` command line: each type parses one value or
raises an error naming what is expected."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "topkima" / "spice"


def int_at_least(minimum: int):
    """An argparse type: an integer ≥ ``minimum``, with a message saying so."""
    what = "positive" if minimum == 1 else "non-negative"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def sigma_list(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated σ multipliers, each a finite number ≥ 0."""
    import math
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers ≥ 0, got {part.strip()!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"σ multipliers must be finite numbers ≥ 0, got {part.strip()}")
        values.append(value)
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"σ multipliers must be distinct, got {text!r}")
    return tuple(values)


def thread_count(text: str) -> int:
    n = positive_int(text)
    if n > 64:
        raise argparse.ArgumentTypeError(f"expected a thread count in 1..64, got {text}")
    return n


def window_quantiles(text: str) -> tuple[float, float]:
    """--window TOP,BOTTOM as two numbers, or a ValueError naming the argument."""
    try:
        top_q, bottom_q = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--window takes two quantiles TOP,BOTTOM (e.g. 1.0,0.0), got {text!r}") from None
    return top_q, bottom_q


def av_full_scale_policy(text: str) -> str | float:
    """An argparse type: the A·V full-scale policy, ``max`` or a quantile strictly between 0 and 1."""
    if text == "max":
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected max or a quantile strictly between 0 and 1 (e.g. 0.999), "
                                         f"got {text!r}")
    return value


def chip_variants():
    from topkima.studies.circuit_whatif import VARIANTS   # numpy only: cheap at parser build
    return VARIANTS


def add_executor_arguments(p) -> None:
    """--workers, --scheduler and --scheduler-timeout of a sharded study (figures do not depend on them)."""
    p.add_argument("--workers", type=nonneg_int, default=2, help="local worker processes (0: run in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed scheduler (tcp://host:8786) instead of local workers "
                        "(pip install 'topkima[mc]')")
    p.add_argument("--scheduler-timeout", type=positive_float, default=5.0,
                   help="seconds to try reaching the scheduler (default 5)")
