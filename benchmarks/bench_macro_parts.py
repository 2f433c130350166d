"""Where the behavioural macro's time goes, on the two top-k workloads of ``bench_macro.py``.

Each phase's compiled kernel is timed alone on the workload's own rows, one thread, best of seven
calls (the same 4096 query rows, one key set, the chip with mismatch and noise):

* **MAC** — the key set's code tables and every row's adds (``mac.build_code_tables``,
  ``mac.add_rows_units_from_table``), as ``convert`` runs them;
* **comparators** — every column's firing cycle from those units (``convert.fire_comparators``,
  groups of 256 rows: the ceilings, the sorting, the crossing search, the noise window);
* **energy** — each row's energy from its units, firing cycles and stop (``energy.row_energy_j``:
  the bitlines at the stop and at cycle 1, the overdrive sweep, the decisions, the sums);

beside the whole ``chip.topk`` call, whose remainder is the arbiter, the per-block set-up and the
Python side. The parts are timed on float64 MAC units rounded to float32 (``chip.mac_units``), so
a decision within ~1e-7 V of its threshold may differ from the call's; the times do not.
docs/performance.md reports what this prints.

Run:  .venv/bin/python benchmarks/bench_macro_parts.py
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from topkima.behavioral import TopkimaMacro  # noqa: E402
from topkima.behavioral.macro import runtime  # noqa: E402
from topkima.behavioral.macro.adc import margin_headroom_v  # noqa: E402
from topkima.behavioral.macro.convert import ROWS_PER_GROUP, fire_comparators, scratch_of_block  # noqa: E402
from topkima.behavioral.macro.energy import row_energy_j  # noqa: E402
from topkima.behavioral.macro.mac import add_rows_units_from_table, build_code_tables, code_lines  # noqa: E402
from topkima.calibration import load_calibration  # noqa: E402
from topkima.studies.allocator import keep_freed_memory  # noqa: E402

from _timing import best_of  # noqa: E402  (benchmarks/_timing.py)
from bench_macro import K, workload  # noqa: E402

REPEAT = 7


@numba.njit(nogil=True)
def _mac(devices, pulse, q8, levels, n_scales, q_max, line_of, table, zero, units):
    code_lines(q8, q_max, line_of)
    build_code_tables(devices, pulse, levels, levels.shape[1], n_scales, q_max, line_of, table)
    units[:] = 0.0
    add_rows_units_from_table(table, line_of, q_max, q8, levels.shape[1], zero, units)


@numba.njit(nogil=True)
def _comparators(bl, ramp, units, n, leak, headroom, enabled, n_steps, t_clk_units, half_window, sigma_v, key,
                 firing, n_enabled, near, near_g, flat, listed, listed_start):
    for r0 in range(0, units.shape[0], ROWS_PER_GROUP):
        fire_comparators(bl, ramp, units[r0:r0 + ROWS_PER_GROUP], n, n, leak, headroom, enabled, True, n_steps,
                         t_clk_units, half_window, sigma_v, key, 0, r0, 0, firing, n_enabled, near, near_g, flat, listed,
                         listed_start)


@numba.njit(nogil=True)
def _energy(bl, ramp, em, units, n, leak, firing, enabled, stop, n_pulsed, scratch, out):
    for r in range(units.shape[0]):
        out[r] = row_energy_j(bl, ramp, em, units[r, :n], units[r, n:], leak, firing[r], enabled, stop[r],
                              n_pulsed[r], K, scratch)


def parts(name: str, macro: TopkimaMacro) -> dict:
    q, kl, chip, _, _ = workload(name, macro, np.random.default_rng(0))
    p, bl, ramp = chip.params, chip.bitlines, chip.ramp(0)
    res = chip.topk(q, kl, k=K, rng=np.random.default_rng(2))
    whole = best_of(lambda: chip.topk(q, kl, k=K, rng=np.random.default_rng(2)), REPEAT)

    q8, levels = q.astype(np.int8), np.ascontiguousarray(kl, dtype=np.int8)
    n, q_max = levels.shape[1], chip.pulse.shape[0] - 1
    s = scratch_of_block(levels.shape[0], q_max, n, p.n_ramp_steps)
    units32 = np.zeros((q8.shape[0], 2 * n), dtype=np.float32)
    mac_args = (chip.devices(0), chip.pulse, q8, levels, len(chip.scales), q_max, s.line_of, s.table, s.zero_line, units32)

    u_l, u_r = chip.mac_units(q, kl)
    units = np.ascontiguousarray(np.hstack((u_l, u_r)), dtype=np.float32)
    leak = np.asarray(chip.leak_units_per_unit(kl), dtype=float)
    firing = np.empty(units.shape[0:1] + (n,), dtype=np.int64)
    comparator_args = (bl, ramp, units, n, leak, margin_headroom_v(bl, ramp.devices, p.n_ramp_steps, ramp.u_ramp_after_units),
                       np.ones((1, n), dtype=np.bool_), p.n_ramp_steps, p.t_clk_ima_s / p.t_unit_s,
                       chip.noise_half_window(), p.sa_noise_sigma_v, np.uint64(12345), firing, s.n_enabled, s.near,
                       s.near_g, s.flat, s.listed, s.listed_start)

    n_pulsed = np.count_nonzero(q, axis=1).astype(np.int64)
    energy_args = (bl, ramp, chip.energy, units, n, leak, np.ascontiguousarray(res.firing_cycle, dtype=np.int64),
                   np.ones(n, dtype=np.bool_), np.ascontiguousarray(res.cycles, dtype=np.int64), n_pulsed, s.energy,
                   np.zeros(units.shape[0]))
    times = {"whole topk": whole}
    for part, kernel, args in (("MAC", _mac, mac_args), ("comparators", _comparators, comparator_args),
                               ("energy", _energy, energy_args)):
        kernel(*args)       # compiled before it is timed
        times[part] = best_of(lambda: kernel(*args), REPEAT)
    return times


def main() -> None:
    keep_freed_memory()
    runtime.set_threads(1)
    macro = TopkimaMacro(load_calibration())
    print("one thread, 4096 query rows, one key set, top-5; each part alone, best of", REPEAT)
    print(f"{'workload':12s} {'whole topk':>11s} {'MAC':>8s} {'comparators':>12s} {'energy':>8s} {'rest':>8s}  (ms)")
    for name in ("windowed", "63 codes"):
        t = {k: 1e3 * v for k, v in parts(name, macro).items()}
        rest = t["whole topk"] - t["MAC"] - t["comparators"] - t["energy"]
        print(f"{name:12s} {t['whole topk']:11.1f} {t['MAC']:8.1f} {t['comparators']:12.1f} {t['energy']:8.1f} {rest:8.1f}")


if __name__ == "__main__":
    main()
