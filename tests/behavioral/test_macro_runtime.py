"""The compiled macro's run-time: its noise stream, thread settings and kernel cache."""
import math
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from scipy import stats

from topkima.behavioral.macro import noise, runtime


@numba.njit
def _draws(key, n):
    out = np.empty(n)
    for i in range(n):
        out[i] = noise.standard_normal(key, i // 1000, (i // 10) % 100, i % 10, 0)
    return out


def test_noise_stream_is_standard_normal_and_matches_its_python_copy():
    key = noise.noise_key(np.random.default_rng(5))
    z = _draws(key, 200_000)
    # a standard normal: Kolmogorov–Smirnov against N(0, 1), and its first moments
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert np.abs(z).max() <= noise.Z_MAX          # the bound the kernels rely on to skip draws
    # the compiled stream is the plain-Python one, draw for draw
    for i in (0, 1, 777, 123_456):
        assert z[i] == noise.standard_normal_py(int(key), i // 1000, (i // 10) % 100, i % 10, 0)
    # each coordinate matters: neighbouring decisions are not correlated
    a = _draws(key, 20_000)
    b = np.array([noise.standard_normal_py(int(key), i // 1000, (i // 10) % 100, i % 10, 1) for i in range(2_000)])
    assert abs(np.corrcoef(a[:2_000], b)[0, 1]) < 0.08
    assert math.sqrt(64 * math.log(2)) < noise.Z_MAX       # above the largest draw Box–Muller can give


def test_thread_count_is_validated():
    with pytest.raises(ValueError, match="thread count must be an integer"):
        runtime.set_threads(0)
    with pytest.raises(ValueError, match="thread count must be an integer"):
        runtime.set_threads(2.0)
    with pytest.raises(ValueError, match="thread count must be an integer"):
        runtime.set_threads(65)
    env = {**os.environ, "TOPKIMA_THREADS": "many"}
    out = subprocess.run([sys.executable, "-c", "import topkima.behavioral"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "TOPKIMA_THREADS must be an integer" in out.stderr
    env["TOPKIMA_THREADS"] = "0"
    out = subprocess.run([sys.executable, "-c", "import topkima.behavioral"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "TOPKIMA_THREADS must be an integer in 1..64" in out.stderr
    out = subprocess.run([sys.executable, "-m", "topkima", "--threads", "100", "summary"], capture_output=True, text=True)
    assert out.returncode == 2 and "expected a thread count in 1..64" in out.stderr
    env["TOPKIMA_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", "from topkima.behavioral.macro import threads; print(threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_kernel_cache_lives_outside_the_source_tree():
    import topkima.behavioral.macro as pkg
    here = Path(pkg.__file__).resolve().parent
    cache = Path(numba.config.CACHE_DIR).resolve()
    assert here not in cache.parents and cache != here
    assert not list(here.rglob("*.nbi")) and not list(here.rglob("*.nbc"))


@numba.njit
def _gate_and_formula(u1, u2, margins, sigma, gate, full):
    for i in range(u1.size):
        for j in range(margins.size):
            gate[i, j] = noise.box_muller_lifts(u1[i], u2[i], margins[j], sigma)
            # the obvious reference: the whole draw, then the decision
            z = math.sqrt(-2.0 * math.log(u1[i])) * math.cos(2.0 * math.pi * u2[i])
            full[i, j] = margins[j] + sigma * z > 0.0


def test_noise_decision_without_the_draw_equals_the_draw_decision():
    """The comparator noise's shortcut (decide by the margin's sign when the Box–Muller radius
    cannot reach it) gives the full draw's answer: random draws, u₁ next to 1 (where a gate on a
    rounded 1 + t²/2 was wrong for |t| ≈ 2e-5), u₂ at 0 and ½, margins 0, tiny, and large."""
    rng = np.random.default_rng(11)
    high = 2 ** 32
    k1 = np.concatenate([rng.integers(0, high, 4000), high - 1 - np.arange(200)])
    u1 = (k1 + 1.0) * 2.0 ** -32
    k2 = rng.integers(0, high, k1.size)
    k2[:50], k2[50:100] = 0, high // 2
    u2 = k2 * 2.0 ** -32
    t = np.concatenate([[0.0, 1e-300, 1e-12, 2.1579181292698164e-05, 1e-3, 0.3, 2.0, 6.0, 50.0],
                        rng.normal(0, 3, 40), 10.0 ** rng.uniform(-8, -3, 40)])
    for sigma in (1.0, 3.1e-4):
        margins = np.concatenate([t, -t]) * sigma
        gate = np.zeros((u1.size, margins.size), dtype=np.bool_)
        full = np.zeros_like(gate)
        _gate_and_formula(u1, u2, margins, sigma, gate, full)
        assert np.array_equal(gate, full)
