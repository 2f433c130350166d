"""Wall time of `topkima calibrate --quick` and of the full calibration, from an empty cache.

Targets (issue 2): quick ≤ 3 min, full ≤ 15 min on the 2-core machine, 2 workers.
Run:  .venv/bin/python benchmarks/bench_calibrate.py [--quick-only]
Prints one line per run; both runs happen in this one invocation.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(quick: bool, workdir: Path) -> float:
    out = workdir / ("quick.json" if quick else "full.json")
    cmd = [sys.executable, "-m", "topkima", "calibrate", "--cache", str(workdir / ("cq" if quick else "cf")),
           "--out", str(out), "--no-summary"] + (["--quick"] if quick else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.monotonic()
    subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        quick = run(True, tmp)
        print(f"calibrate --quick: {quick:7.1f} s (target ≤ 180 s) {'OK' if quick <= 180 else 'OVER'}")
        if not args.quick_only:
            full = run(False, tmp)
            print(f"calibrate (full):  {full:7.1f} s (target ≤ 900 s) {'OK' if full <= 900 else 'OVER'}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
