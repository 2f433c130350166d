"""Speed of the behavioural macro against the ideal baseline and against ngspice.

Top-k (k = 5) of 4096 query rows on one 256 × 256 macro with frozen mismatch and comparator
noise, against an ideal baseline on the same data in the same run: integer matmul, round to
the ADC's 32 levels, argpartition. Target (issue 3): ≤ 2× the baseline. Also the speed-up per
column conversion over ngspice (the golden SPICE runs' own wall time, from their provenance).

Run:  .venv/bin/python benchmarks/bench_macro.py
"""
import json
import os
from pathlib import Path

import numpy as np

from topkima.behavioral import TopkimaMacro
from topkima.calibration import load_calibration

from _timing import best_of  # benchmarks/_timing.py


def main() -> None:
    from topkima.allocator import keep_freed_memory
    print(f"allocator keeps freed memory (as the topkima command does): {keep_freed_memory()}")
    rng = np.random.default_rng(0)
    rows, d, n = 4096, 64, 256
    q = rng.integers(-12, 13, (rows, d)) * (rng.random((rows, d)) < 0.5)
    k = rng.integers(-4, 5, (d, n))
    macro = TopkimaMacro(load_calibration())
    chip = macro.instance(np.random.default_rng(1))
    top, lsb = macro.adc_range.top_units, macro.adc_range.lsb_units

    def baseline():
        s = q @ k
        code = np.clip(np.round((s - (top - 32 * lsb)) / lsb), 0, 31)
        return np.argpartition(-code, 4, axis=1)[:, :5]

    def model():
        return chip.topk(q, k, k=5, rng=np.random.default_rng(2))

    model()  # warm the array's frozen mismatch
    t_base, t_model = best_of(baseline, repeat=5), best_of(model, repeat=5)
    print(f"baseline (int matmul + round + argpartition): {1e3 * t_base:7.1f} ms for {rows} rows × {n} columns")
    print(f"behavioural top-k (mismatch + noise):         {1e3 * t_model:7.1f} ms")
    print(f"ratio model / baseline: {t_model / t_base:.2f} (target ≤ 2)")
    golden = Path(__file__).resolve().parents[1] / "tests" / "golden" / "column_conversions.json"
    if golden.exists():
        prov = json.loads(golden.read_text())["provenance"]
        n_conv = prov["n_simulation_jobs"]
        per_conv_s = prov["wall_time_s"] / n_conv * 2  # two workers ran them
        per_model_s = t_model / (rows * n)
        print(f"ngspice: {per_conv_s:.1f} s per column conversion (golden runs, one core); "
              f"model: {1e9 * per_model_s:.0f} ns per column conversion → {per_conv_s / per_model_s:.2e}× faster")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
