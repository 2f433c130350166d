"""Speed of the behavioural macro against the ideal float32 path, and against ngspice.

Top-k (k = 5) of 4096 query rows against one key set (keys −7…7, all 15 levels), the chip with
frozen mismatch and comparator noise, against an ideal path on the same data in the same run:
float32 matmul (BLAS), rounding to the ADC's 32 levels, argpartition. Workloads:

* **windowed** — queries over −31…31 scaled as :func:`choose_adc_range` says, the chip under
  that window: what the attention pipeline feeds the macro (7 distinct codes);
* **63 codes** — queries over all 63 codes, the artefact's default window (most conversions
  saturate or cross the ramp: the hard case for the crossing search);
* **128 × 128** — the smaller array (keys −1…1, 128 columns), queries over all 63 codes;
* **attention-like** — 384 key sets (sentence, head) of 27 rows × 27 keys, d = 32, each query
  row scaled to its own full code range and the window chosen by ``choose_adc_range``: the
  shape MiniLM's heads give the macro (short rows, one key set per 27 rows).

The model also returns each row's energy (its bitlines at the stop and at cycle 1, the decisions'
overdrive); the ideal path has no such output, so the two top-k workloads are timed once more with
``energy=False`` (the same selection, codes and stop cycles, no energy pass).

Targets (issue 13), one thread: windowed ≤ 5×, 63 codes ≤ 10×. Then two threads against one on
the windowed workload (target ≥ 1.7×), in rounds alternating one and two threads with the same
split of a reference loop of vector multiply-adds: on a VM whose two vCPUs may share one core's
vector units, that loop shows what a second thread gave such code at the time (from about 1× to
about 2× per round here). The time per column
conversion beside ngspice's, and the kernels' first-call compile time (a fresh process with an
empty cache, best of three such processes; target ≤ 20 s). Ratios come from one run: the ideal
path and the model take turns for five rounds and each keeps its best, so load reaches both sides
alike; the allocator keeps freed memory on both sides, as the ``topkima`` command runs.

Run:  .venv/bin/python benchmarks/bench_macro.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # the ideal path on one thread, as the model

import numba  # noqa: E402
import numpy as np  # noqa: E402

from topkima.behavioral import TopkimaMacro, choose_adc_range  # noqa: E402
from topkima.behavioral.macro import runtime  # noqa: E402
from topkima.calibration import load_calibration  # noqa: E402

from _timing import best_of  # noqa: E402  (benchmarks/_timing.py)

ROWS, K = 4096, 5


def ideal_topk(q: np.ndarray, kl: np.ndarray, top_units: float, lsb_units: float):
    """The ideal path: float32 scores, 32 ADC levels, the k largest (argpartition)."""
    qf, kf = q.astype(np.float32), kl.astype(np.float32)

    def run():
        s = qf @ kf
        code = np.clip(np.round((s - (top_units - 32 * lsb_units)) / lsb_units), 0, 31)
        return np.argpartition(-code, K - 1, axis=-1)[..., :K]
    return run


def workload(name: str, macro: TopkimaMacro, rng: np.random.Generator):
    """(query codes, key levels, chip, window top, LSB) of one workload."""
    n_cols, d, scales = macro.geometry
    k_max = 7 if len(scales) == 3 else 1
    q = rng.integers(-31, 32, (ROWS, d))
    kl = rng.integers(-k_max, k_max + 1, (d, n_cols))
    if name == "windowed":
        window, scale = choose_adc_range(q.astype(np.float32) @ kl.astype(np.float32), K)
        q = np.rint(q * scale).astype(np.int64)
        macro = macro.with_adc_range(window)
    chip = macro.instance(np.random.default_rng(1))
    return q, kl, chip, macro.adc_range.top_units, macro.adc_range.lsb_units


def attention_like(macro: TopkimaMacro, rng: np.random.Generator):
    """(queries (B, 27, 32), keys (B, 32, 27), chip, top, LSB): per-row full-range queries."""
    n_sets, t, d = 384, 27, 32
    x = rng.standard_normal((n_sets, t, d))
    q = np.rint(x / np.abs(x).max(axis=-1, keepdims=True) * 31).astype(np.int64)
    kl = rng.integers(-7, 8, (n_sets, d, t))
    window, scale = choose_adc_range((q.astype(np.float32) @ kl.astype(np.float32)).reshape(-1, t), K)
    q = np.rint(q * scale).astype(np.int64)
    m = macro.with_adc_range(window)
    return q, kl, m.instance(np.random.default_rng(1)), m.adc_range.top_units, m.adc_range.lsb_units


#: rounds in which the timed sides alternate (each side keeps its best)
ROUNDS = 5
THREAD_ROUNDS = 6
#: fresh processes timed for the first call's compilation (the host's slow spells add seconds to one)
COMPILE_RUNS = 3


@numba.njit(nogil=True)
def _vector_loop(a, b, repeats):
    """Multiply-adds over arrays that stay in L1: vector arithmetic bound by the core's FP units."""
    for _ in range(repeats):
        for j in range(a.size):
            a[j] = a[j] * b[j] + 1e-9


def host_vector_loop_s(threads: int, pool: ThreadPoolExecutor) -> float:
    """Best of two wall times of a fixed amount of :func:`_vector_loop` (about 50 ms on one thread)
    split over ``threads`` threads of ``pool`` (started beforehand)."""
    arrays = [np.ones(1024) for _ in range(threads)]
    b = np.full(1024, 0.999)
    _vector_loop(arrays[0], b, 1)
    repeats = 480_000 // threads
    best = np.inf
    for _ in range(2):
        t0 = time.perf_counter()
        for f in [pool.submit(_vector_loop, a, b, repeats) for a in arrays]:
            f.result()
        best = min(best, time.perf_counter() - t0)
    return best


def alternating_best(sides: dict) -> dict:
    """Each side's best wall time over :data:`ROUNDS` rounds in which the sides take turns (one
    call each per round): a slow spell of the host reaches every side alike."""
    times = {name: [] for name in sides}
    for _ in range(ROUNDS):
        for name, fn in sides.items():
            times[name].append(best_of(fn, repeat=1))
    return {name: min(t) for name, t in times.items()}


def compile_time_s() -> float:
    """First call of the kernels in a fresh process with an empty cache (compilation included)."""
    code = ("import time, numpy as np; t0 = time.perf_counter();"
            "from topkima.behavioral import TopkimaMacro; from topkima.calibration import load_calibration;"
            "m = TopkimaMacro(load_calibration()); c = m.instance(np.random.default_rng(0));"
            "c.topk(np.ones((8, 64), int), np.ones((64, 16), int), k=5, rng=np.random.default_rng(0),"
            " key_mask=np.ones((8, 16), bool)); c.topk(np.ones((2, 8, 64), int), np.ones((2, 64, 16), int), k=5,"
            " rng=np.random.default_rng(0)); m.nominal().topk(np.ones((8, 64), int), np.ones((64, 16), int), k=5);"
            "m.nominal().topk(np.ones((8, 64), int), np.ones((64, 16), int), k=5, mode='conventional');"
            "print(time.perf_counter() - t0)")
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NUMBA_CACHE_DIR": cache},
                             capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from topkima.studies.allocator import keep_freed_memory
    # freed temporaries reused, not re-faulted page by page (as the topkima command runs): the ideal
    # path's fresh 4 MB arrays took 12.5 ms a call without it, 7.4 ms with it
    print(f"allocator keeps freed memory (as the topkima command does): {keep_freed_memory()}")
    runtime.set_threads(1)
    cal = load_calibration()
    rng = np.random.default_rng(0)
    rows_out = []
    for name, array in (("windowed", "256x256"), ("63 codes", "256x256"), ("128 × 128, 63 codes", "128x128")):
        q, kl, chip, top, lsb = workload(name.split(",")[0], TopkimaMacro(cal, array=array), rng)
        chip.topk(q[:16], kl, k=K, rng=np.random.default_rng(2))      # compile, draw the devices
        sides = {"ideal": ideal_topk(q, kl, top, lsb),
                 "model": lambda: chip.topk(q, kl, k=K, rng=np.random.default_rng(2))}
        if array == "256x256":      # the same selection without the energy pass
            sides["lean"] = lambda: chip.topk(q, kl, k=K, rng=np.random.default_rng(2), energy=False)
        t = alternating_best(sides)
        res = chip.topk(q, kl, k=K, rng=np.random.default_rng(2))
        rows_out.append((name, t["ideal"], t["model"], kl.shape[1], res))
        if "lean" in t:
            rows_out.append((f"{name}, no energy", t["ideal"], t["lean"], kl.shape[1], res))
    q, kl, chip, top, lsb = attention_like(TopkimaMacro(cal), rng)
    chip.topk(q[:2], kl[:2], k=K, rng=np.random.default_rng(2))
    t = alternating_best({"ideal": ideal_topk(q, kl, top, lsb),
                          "model": lambda: chip.topk(q, kl, k=K, rng=np.random.default_rng(2))})
    res = chip.topk(q, kl, k=K, rng=np.random.default_rng(2))
    rows_out.append(("attention-like", t["ideal"], t["model"], kl.shape[-1], res))
    print(f"top-{K} of {ROWS} query rows against one key set (attention-like: 384 key sets of 27 rows), one thread (ideal path: float32 BLAS matmul + 5-bit rounding "
          f"+ argpartition)")
    print(f"{'workload':22s} {'ideal ms':>9s} {'model ms':>9s} {'ratio':>6s}  target   rows/s    ns/conv  mean stop cycle")
    targets = {"windowed": "≤ 5", "63 codes": "≤ 10"}
    for name, t_ideal, t_model, n, res in rows_out:
        rows = res.cycles.size
        print(f"{name:22s} {1e3 * t_ideal:9.1f} {1e3 * t_model:9.1f} {t_model / t_ideal:6.2f}  {targets.get(name, '  —'):6s}"
              f" {rows / t_model:8.0f} {1e9 * t_model / (rows * n):9.1f}  {res.cycles.mean():6.1f}")
    # two threads against one, on the windowed workload, rounds alternating with the host's own
    # two-thread speed-up on a loop of vector arithmetic (what this VM's second core gives)
    q, kl, chip, _, _ = workload("windowed", TopkimaMacro(cal), np.random.default_rng(0))
    chip.topk(q[:16], kl, k=K, rng=np.random.default_rng(2))
    t_chip, t_host = {1: [], 2: []}, {1: [], 2: []}
    with ThreadPoolExecutor(2) as pool:
        for _ in range(THREAD_ROUNDS):
            for n in (1, 2):
                runtime.set_threads(n)
                t_chip[n].append(best_of(lambda: chip.topk(q, kl, k=K, rng=np.random.default_rng(2)), repeat=2))
                t_host[n].append(host_vector_loop_s(n, pool))
    runtime.set_threads(1)
    per_round = [a / b for a, b in zip(t_chip[1], t_chip[2])]
    host = [a / b for a, b in zip(t_host[1], t_host[2])]
    print(f"threads: 1 → {1e3 * min(t_chip[1]):.1f} ms, 2 → {1e3 * min(t_chip[2]):.1f} ms: "
          f"{min(t_chip[1]) / min(t_chip[2]):.2f}× (target ≥ 1.7; best of {THREAD_ROUNDS} alternating rounds; "
          f"per round {min(per_round):.2f}–{max(per_round):.2f}×)")
    print(f"  a reference in the same rounds: a vector multiply-add loop on 2 threads {min(t_host[1]) / min(t_host[2]):.2f}× "
          f"1 thread (per round {min(host):.2f}–{max(host):.2f}×: what two vCPUs of this host gave such code meanwhile)")
    golden = Path(__file__).resolve().parents[1] / "tests" / "golden" / "column_conversions.json"
    if golden.exists():
        prov = json.loads(golden.read_text())["provenance"]
        per_conv_s = prov["wall_time_s"] / prov["n_simulation_jobs"] * 2  # two workers ran them
        per_model_s = rows_out[0][2] / (ROWS * rows_out[0][3])
        print(f"ngspice: {per_conv_s:.1f} s per column conversion (golden runs, one core); model: "
              f"{1e9 * per_model_s:.1f} ns per column conversion (windowed) → {per_conv_s / per_model_s:.1e}× faster")
    firsts = [compile_time_s() for _ in range(COMPILE_RUNS)]
    print(f"first call with an empty kernel cache (compiles every kernel): {min(firsts):.1f} s (target ≤ 20 s; "
          f"best of {COMPILE_RUNS} fresh processes, each with its own empty cache: "
          f"{', '.join(f'{t:.1f}' for t in firsts)} s)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
