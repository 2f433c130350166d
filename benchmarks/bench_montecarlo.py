"""Speed of `topkima montecarlo`: 1000 chip instances × one 256 × 256 macro × 1024 query rows.

Each instance draws its frozen mismatch (every read port, replica cell and comparator of the
array) and converts 1024 query rows (256 keys, d = 64, top-5) with comparator noise, through
the same code path as the command (``run_montecarlo``: worker processes, one JSON file per
finished instance, the aggregation and the figures), at σ multiplier 1, no accuracy study, no
SPICE comparison, from an empty folder. Target (issue 6): ≤ 60 s on 2 cores with 2 workers.

Then where an instance's time goes: the workers' own per-instance times (draw, top-k,
metrics) and a cProfile of a few instances in this process.

Run:  .venv/bin/python benchmarks/bench_montecarlo.py [--instances N] [--workers W] [--no-profile]
"""
import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from topkima.studies.montecarlo import StudyConfig, instance_metrics, run_montecarlo  # noqa: E402

TARGET_S = 60.0


def main() -> None:
    from topkima.studies.allocator import keep_freed_memory
    print(f"allocator keeps freed memory (as the topkima command does): {keep_freed_memory()}")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    cfg = StudyConfig(instances=args.instances, sigma_scales=(1.0,), n_queries=1024, n_keys=256, d=64, k=5,
                      accuracy_instances=0, spice_instances=0)
    with tempfile.TemporaryDirectory(prefix="bench_mc_") as out:
        t0 = time.perf_counter()
        summary = run_montecarlo(out, cfg, workers=args.workers, log=lambda text: None)
        wall = time.perf_counter() - t0
    tm = summary["timing"]
    n = cfg.instances
    per_instance = tm["instance_draw_s_mean"] + tm["instance_topk_s_mean"] + tm["instance_metrics_s_mean"]
    scaled = wall * 1000 / n
    print(f"{n} instances × 256 × 256 macro × 1024 query rows, top-5, mismatch and noise, {args.workers} workers")
    print(f"  wall time (run_montecarlo, empty folder): {wall:.1f} s"
          + (f"  (→ {scaled:.1f} s for 1000 instances)" if n != 1000 else ""))
    print(f"  per instance, wall / instances: {1e3 * wall / n:.1f} ms; target {TARGET_S:.0f} s for 1000 → "
          f"ratio {scaled / TARGET_S:.2f} ({'met' if scaled <= TARGET_S else 'not met'})")
    print(f"  inside a worker, per instance: draw {1e3 * tm['instance_draw_s_mean']:.1f} ms, "
          f"top-k {1e3 * tm['instance_topk_s_mean']:.1f} ms, metrics {1e3 * tm['instance_metrics_s_mean']:.1f} ms "
          f"(sum {1e3 * per_instance:.1f} ms)")
    busy = per_instance * n / args.workers
    cpu = tm["instance_cpu_s_mean"]
    print(f"  CPU time per instance in a worker: {1e3 * cpu:.1f} ms → {cpu * 1000 / args.workers:.1f} s for 1000 "
          f"instances on {args.workers} free cores (what an unloaded machine would take for the task phase)")
    print(f"  task phase {tm['task_phase_wall_s']:.1f} s against {busy:.1f} s of worker compute / {args.workers} "
          f"workers; the rest of the wall time: start-up, summary, figures "
          f"({wall - tm['task_phase_wall_s']:.1f} s)")
    print(f"  recall vs ideal {summary['topk_recall']['1.0']:.4f}, α {summary['alpha_mean']['1.0']:.4f}")
    if args.no_profile:
        return
    instance_metrics(cfg, 1.0, 0)   # build the workload and references outside the profile
    prof = cProfile.Profile()
    prof.enable()
    for i in range(1, 6):
        instance_metrics(cfg, 1.0, i)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
    print("cProfile of 5 instances in this process (tottime, top 12):")
    print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:4000])


if __name__ == "__main__":
    main()
