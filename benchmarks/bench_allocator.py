"""Does the allocator setting (:func:`topkima.studies.allocator.keep_freed_memory`) still pay?

CPU time per Monte Carlo instance (1024 query rows × 256 keys, d = 64, top-5, σ × 1, one kernel
thread: what a worker of `topkima montecarlo` runs), in fresh processes with and without the
setting, alternated for ``--rounds`` rounds. CPU time includes the page faults the setting
saves and is little affected by other load on the machine.

Run:  .venv/bin/python benchmarks/bench_allocator.py [--rounds 2] [--instances 40]
"""
import argparse
import os
import subprocess
import sys

CHILD = r"""
import statistics, sys
from topkima.studies import allocator
if sys.argv[1] == "with":
    assert allocator.keep_freed_memory()
else:
    allocator.keep_freed_memory = lambda: False      # what instance_metrics calls
from topkima.studies.montecarlo import StudyConfig, instance_metrics
cfg = StudyConfig(instances=1, sigma_scales=(1.0,), n_queries=1024)
instance_metrics(cfg, 1.0, 0)                        # the workload, the compiled kernels
cpu = [instance_metrics(cfg, 1.0, i)["time_cpu_s"] for i in range(1, int(sys.argv[2]) + 1)]
print(f"{sys.argv[1]:>7}: CPU per instance median {1e3 * statistics.median(cpu):.1f} ms, min {1e3 * min(cpu):.1f} ms")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--instances", type=int, default=40)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TOPKIMA_THREADS": "1"}
    for _ in range(args.rounds):
        for mode in ("with", "without"):
            subprocess.run([sys.executable, "-c", CHILD, mode, str(args.instances)], env=env, check=True)


if __name__ == "__main__":
    main()
