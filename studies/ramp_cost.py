"""What a longer ramp (and offset cancellation) costs a Topkima softmax macro (issue 14, item 6).

An estimate, not a characterisation: the committed artefact's per-event figures (65 nm SPICE:
ramp clock, per-step ramp and comparator energies, calibration energy; :mod:`topkima.behavioral.
softmax_macro`) priced over a ramp of N steps instead of 32, with the paper's latency equation
(SPEC §4, T_ima = N·T_clk, T_ima,arb = max(α·T_ima + T_arb, T_clk + k·T_arb)). What changes with N:

* the full ramp, T_ima = N × 4 ns, and the early stop at the measured α of the N steps;
* ramp and comparator energy: α·N steps of the characterised per-step figures (the same pulse,
  the same LSB, the same latch);
* the calibration phase: its bitline energy and row pulses scale with the window top it sets
  (``cal_top_ratio``: the median top of the variant's windows over the 32-step windows', both in
  MAC units), as a calibration of n_cal cells discharges n_cal·t_cal units;
* an auto-zeroed comparator adds one 4 ns phase per conversion (``auto_zero``; a foreground
  trim adds none: :data:`topkima.studies.circuit_whatif.OFFSET_CANCELLATION_COST`).
Not priced: the taller bitline's extra capacitance (2·(N − 32) replica rows on 256), the trim
DAC's area, the 6- or 7-bit code registers (one more or two more flip-flops per grant).
"""
from __future__ import annotations

from dataclasses import replace


def longer_ramp_cost(n_ramp_steps: int, alpha: float, *, d: int = 256, k: int = 5, cal_top_ratio: float = 1.0,
                     auto_zero: bool = False, cal=None) -> dict:
    """Per query row against ``d`` keys: Topkima macro latency (s) and energy (J) with an
    ``n_ramp_steps`` ramp stopped at ``alpha`` (module docstring), from artefact ``cal``
    (default the committed one)."""
    from topkima.behavioral import softmax_macro as sm
    from topkima.calibration import load_calibration
    if isinstance(n_ramp_steps, bool) or not isinstance(n_ramp_steps, int) or n_ramp_steps < 1:
        raise ValueError(f"n_ramp_steps must be a positive integer, got {n_ramp_steps!r}")
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
    if not cal_top_ratio > 0:
        raise ValueError(f"cal_top_ratio must be positive, got {cal_top_ratio!r}")
    cal = load_calibration() if cal is None else cal
    t = sm.timing_from_calibration(cal)
    t = replace(t, n_ramp_steps=n_ramp_steps, t_cal_s=t.t_cal_s + (t.t_clk_s if auto_zero else 0.0))
    e, _ = sm.energy_from_calibration(cal)
    e = replace(e, e_cal_bitline_col_j=e.e_cal_bitline_col_j * cal_top_ratio,
                e_cal_rows_j=e.e_cal_rows_j * cal_top_ratio)
    lat = sm.latency("topkima", d, k, t, alpha)
    en = sm.row_energy("topkima", d, k, e, alpha, n_ramp_steps, t.n_cols)
    per_row = lambda x: (x - lat["write"]) / d    # noqa: E731  the K write is per input, not per row
    return {"n_ramp_steps": n_ramp_steps, "alpha": alpha, "t_ima_s": t.t_ima_s,
            "t_row_s": per_row(lat["total"]), "e_row_j": en["total"],
            "e_ramp_and_comparators_j": en["ramp"] + en["comparators"] + en["counter"],
            "e_calibration_j": en["calibration"]}
