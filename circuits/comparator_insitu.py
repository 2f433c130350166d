"""The comparator in situ: floating bitline-like inputs, its kick on them, its input load.

* **In-situ threshold** (:func:`insitu_threshold`): in the macro the comparator senses
  two *floating* read bitlines (≈ 170 fF each) and kicks them when it is clocked. Each
  input is loaded with C_BITLINE_F, set by an ideal switch that opens 0.3 ns before the
  clock, and clocked as in the column; the threshold is the differential on the
  floating inputs at the clock edge at which the decision flips, for the first
  decision and for one after N_HISTORY "not fired" ones (the differential rising by a
  ramp step per cycle), beside the same instance's ideal-source offset.
* **Kick and input load** (:func:`kickback`, :func:`input_capacitance`): common-mode
  and differential excursion and per-cycle residue on floating bitlines, the threshold
  shift per percent of bitline-capacitance imbalance, and the input capacitance in
  reset and latched.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from topkima.circuits import spice
from topkima.circuits import timing as tm
from topkima.circuits.comparator import BLOCK, NETLISTS, checked_delvto, checked_in_range, subckt_instance
from topkima.circuits.comparator_bench import (C_LOAD_F, MAX_BRACKET_V, OFFSET_TOL_V, T_CLK_EDGE_S, checked_conditions,
                                              checked_vcm, offset_sample)
from topkima.circuits.netlist import num
from topkima.circuits.technology import model_lines, subckt_include

#: Capacitance of one read bitline at the sense amplifier (F): ≈ 170 fF measured by the
#: lead on the column testbench of circuits/column.py (256 rows × 0.15 fF wire plus the
#: read ports' junctions). The in-situ benches load each input with this, floating.
C_BITLINE_F = 170e-15
#: Kickback-neutralisation capacitor on each input, to the internal clkb (F); the value
#: written in netlists/strongarm.sp (cnkp, cnkn), checked against it by the tests.
C_NEUTRALISE_F = 3.5e-15
#: Cross-coupled neutralisation capacitor from each input to the other input device's
#: drain (F): cxkp (inp - xp), cxkn (inn - xn) in netlists/strongarm.sp.
C_CROSS_NEUTRALISE_F = 2.4e-15
#: The bitlines are set by ideal switches that open this long before the first clock
#: edge (s); ours, as in the lead's floating-input check (the column's precharge/MAC
#: drivers let go of the bitlines well before; 0.3 ns is the shortest, harshest case).
T_SWITCH_OPEN_BEFORE_CLK_S = 0.3e-9
#: Switches closed from t = 0 until here (s): the DC point is the reset state.
T_SWITCH_OPEN_S = 0.5e-9


def column_timing() -> dict:
    """The column's sense-amplifier timing (s): the active clocks (:func:`topkima.circuits.timing.active`).

    ``t_clk_s`` ramp clock; ``t_eval_s`` evaluate phase (clk high); ``t_read_s``
    decision read after the SA clock edge (Clocks.sa_sample_time_s); the ramp-cell
    pulse starts ``t_ramp_after_edge_s`` after an SA clock edge (next ramp clock +
    its wordline delay) and lasts ``t_ramp_width_s`` (max_ramp_units units). Passed
    to the in-situ jobs as an argument so a timing change in the column reruns them.
    """
    ck = tm.active()
    timing = {"t_clk_s": ck.t_clk_ramp_s, "t_eval_s": ck.t_sa_eval_s,
              "t_read_s": ck.sa_sample_time_s(1) - ck.ramp_cycle_start_s(1) - ck.t_sa_clk_s,
              "t_ramp_after_edge_s": ck.t_clk_ramp_s - ck.t_sa_clk_s + ck.t_pulse_delay_s,
              "t_ramp_width_s": ck.max_ramp_units * ck.t_unit_s}
    return {k: round(float(v), 15) for k, v in timing.items()}  # femtosecond grid: stable cache keys


def _timing(timing: Mapping[str, float] | None) -> dict:
    ref = column_timing()
    if timing is None:
        return ref
    if not isinstance(timing, Mapping) or set(timing) != set(ref):
        raise ValueError(f"timing must map exactly {sorted(ref)} to seconds, got {timing!r}")
    return {k: checked_in_range(v, k, 1e-12, 1e-6) for k, v in timing.items()}


#: Ramp step (V): R - L rises 2.09 ... 2.14 mV per ramp clock in the column at
#: t_ramp_units = 4 (2.86 mV at 5; measured with column.measure_conversion, tt,
#: CM ≈ 0.41 V). On the in-situ bench the comparator's own input load takes ~9 % of it.
INSITU_STEP_V = 2.1e-3
#: Prior "not fired" decisions before the history-case decision; ours (task brief: ≥ 3).
N_HISTORY = 3
#: Common modes of the in-situ checks (V): the read-bitline range at the SA (SPEC §2:
#: 0.5 V precharge; the ramp ends near 0.15 V at full scale) [ours].
INSITU_VCM_V = (0.15, 0.25, 0.35, 0.45)
INSITU_VCM_QUICK_V = (0.15, 0.3, 0.45)
#: Bisection resolution of the in-situ thresholds (V): 1/10 of the ±0.5 mV target.
INSITU_TOL_V = 20e-6
#: First bracket half-width around the ideal-source offset (V); doubled if needed.
INSITU_BRACKET_V = 2e-3
#: Largest time step of in-situ trials (s). With the 0.1 ns cap of a coarse
#: ``.tran 0.1n`` (the column testbench's) the decision of this latch is wrong by up
#: to 12 mV at Vcm = 0.15 V even with ideal sources; 20 ps and 5 ps gave identical
#: thresholds (±10 µV) in our checks, and so does reltol = 1e-4 at 0.1 ns.
T_MAX_INSITU_S = 10e-12
#: Differential of the kick runs (V): a clear "fired" (+) and "not fired" (-) decision.
KICK_VDIFF_V = 5e-3
#: Bitline-capacitance imbalance of the sensitivity check (fraction of C_BITLINE_F on inn).
C_IMBALANCE_FRACTION = 0.05
#: Input-capacitance probe: a slow ramp of this height over T_CIN_RAMP_S on one input.
V_CIN_RAMP_V = 10e-3
T_CIN_RAMP_S = 1e-9
T_CIN_SETTLE_S = 1e-9
CIN_VDIFF_V = 50e-3


def _insitu_testbench(*, vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float,
                      temperature_c: float, c_load_f: float, c_inp_f: float, c_inn_f: float, n_cycles: int,
                      step_v: float, t_max_s: float, saves: Sequence[str], timing: Mapping[str, float]
                      ) -> tuple[str, float]:
    """Floating-input testbench: each input a capacitor set by an ideal switch.

    The switches hold ``V(inp) = vcm + vdiff/2`` and ``V(inn) = vcm - vdiff/2`` until
    ``T_SWITCH_OPEN_S`` and open 0.3 ns before the first clock edge; the comparator is
    then clocked ``n_cycles`` times as in the column (``timing``: evaluate ``t_eval_s``
    every ``t_clk_s``). Between decisions a current pulse removes ``c_inn·step_v`` of
    charge from inn (the ramp on RBL_L), timed as the column's ramp-cell pulse.
    Returns the netlist and the first edge time (s).
    """
    t_edge0 = T_SWITCH_OPEN_S + T_SWITCH_OPEN_BEFORE_CLK_S
    t_clk, t_ramp_w = timing["t_clk_s"], timing["t_ramp_width_s"]
    t_stop = t_edge0 + (n_cycles - 1) * t_clk + timing["t_read_s"] + 20e-12
    lines = [
        "* topkima comparator in-situ testbench: floating capacitive inputs (sa_strongarm)",
        *model_lines(),
        subckt_include(NETLISTS[0]),
        f".temp {num(temperature_c, 'temperature')}",
        f"vdd vdd 0 dc {num(vdd_v, 'vdd')}",
        f"vsetp setp 0 dc {num(vcm_v + vdiff_v / 2, 'V(inp)')}",
        f"vsetn setn 0 dc {num(vcm_v - vdiff_v / 2, 'V(inn)')}",
        f"vsw sw 0 pwl(0 1 {num(T_SWITCH_OPEN_S)} 1 {num(T_SWITCH_OPEN_S + T_CLK_EDGE_S)} 0)",
        "ssetp inp setp sw 0 swideal",
        "ssetn inn setn sw 0 swideal",
        ".model swideal sw vt=0.5 vh=0.1 ron=10 roff=1e13",
        f"cblp inp 0 {num(c_inp_f, 'c_inp_f')}",
        f"cbln inn 0 {num(c_inn_f, 'c_inn_f')}",
        f"vclk clk 0 pulse(0 {num(vdd_v)} {num(t_edge0)} {num(T_CLK_EDGE_S)} {num(T_CLK_EDGE_S)} "
        f"{num(timing['t_eval_s'])} {num(t_clk)})",
        subckt_instance("xsa", "inp", "inn", "clk", "outp", "outn", "vdd", "0", delvto_v),
        f"cloadp outp 0 {num(c_load_f, 'c_load_f')}",
        f"cloadn outn 0 {num(c_load_f, 'c_load_f')}",
    ]
    if step_v and n_cycles > 1:
        i_ramp_a = c_inn_f * step_v / t_ramp_w
        lines.append(f"iramp inn 0 pulse(0 {num(i_ramp_a)} {num(t_edge0 + timing['t_ramp_after_edge_s'])} "
                     f"{num(T_CLK_EDGE_S)} {num(T_CLK_EDGE_S)} {num(t_ramp_w - T_CLK_EDGE_S)} {num(t_clk)})")
    lines += [f".tran {num(t_max_s)} {num(t_stop)} 0 {num(t_max_s)}", *saves, ".end"]
    return "\n".join(lines) + "\n", t_edge0


def _insitu_run(vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float, temperature_c: float,
                c_load_f: float, c_inp_f: float, c_inn_f: float, n_cycles: int, step_v: float,
                timing: Mapping[str, float]):
    """One floating-input transient: (fired per cycle, V(inp)-V(inn) at each edge, result, t_edge0)."""
    net, t0 = _insitu_testbench(vcm_v=vcm_v, vdiff_v=vdiff_v, delvto_v=delvto_v, vdd_v=vdd_v,
                                temperature_c=temperature_c, c_load_f=c_load_f, c_inp_f=c_inp_f, c_inn_f=c_inn_f,
                                n_cycles=n_cycles, step_v=step_v, t_max_s=T_MAX_INSITU_S,
                                saves=[".save v(inp) v(inn) v(outp) v(outn)"], timing=timing)
    res = spice.simulate(net, BLOCK)
    t, outp = res.time, res.v("outp")
    vd = res.v("inp") - res.v("inn")
    edges = [t0 + k * timing["t_clk_s"] for k in range(n_cycles)]
    fired = [bool(np.interp(e + timing["t_read_s"], t, outp) > vdd_v / 2) for e in edges]
    vd_edges = [float(np.interp(e, t, vd)) for e in edges]
    return fired, vd_edges, res, t0


def _insitu_flip(vcm_v: float, delvto_v: Mapping[str, float], vdd_v: float, temperature_c: float, c_load_f: float,
                 c_inp_f: float, c_inn_f: float, n_history: int, guess_v: float, tol_v: float,
                 timing: Mapping[str, float]) -> dict:
    """In-situ threshold of decision ``n_history`` (0 = first) by bisection on the set differential.

    ``decide(v0)`` is True if decision ``n_history`` or an earlier one fired (an
    earlier firing means v0 is above the flip point: monotonic). The threshold is the
    differential V(inp) - V(inn) on the floating inputs at that decision's clock edge
    (kick residue of the earlier cycles included), at the two bracketing trials.
    """
    n_cycles = n_history + 1
    seen: dict[float, tuple[list[bool], list[float]]] = {}

    def decide(v0: float) -> bool:
        v_set = v0 - n_history * INSITU_STEP_V  # the ramp adds one step per earlier cycle
        fired, vd_edges, _, _ = _insitu_run(vcm_v, v_set, delvto_v, vdd_v, temperature_c, c_load_f, c_inp_f,
                                            c_inn_f, n_cycles, INSITU_STEP_V, timing)
        seen[v0] = (fired, vd_edges)
        return any(fired)

    lo, hi = guess_v - INSITU_BRACKET_V, guess_v + INSITU_BRACKET_V
    half = INSITU_BRACKET_V
    while decide(lo) or not decide(hi):
        half *= 2
        if half > MAX_BRACKET_V:
            raise spice.SpiceError(BLOCK, f"in-situ threshold not within ±{MAX_BRACKET_V} V of {guess_v} V")
        lo, hi = guess_v - half, guess_v + half
    while hi - lo > tol_v:
        mid = 0.5 * (lo + hi)
        if decide(mid):
            hi = mid
        else:
            lo = mid
    (_, vd_lo), (f_hi, vd_hi) = seen[lo], seen[hi]
    return {"threshold_v": 0.5 * (vd_lo[-1] + vd_hi[-1]),
            "bracket_v": [vd_lo[-1], vd_hi[-1]],
            "prior_fired_at_flip": bool(any(f_hi[:-1])),
            "vdiff_at_prior_edges_v": vd_hi[:-1],
            "n_transients": len(seen)}


def insitu_threshold(vcm_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0, temperature_c: float = 27.0,
                     c_load_f: float = C_LOAD_F, c_bitline_f: float = C_BITLINE_F, n_history: int = N_HISTORY,
                     tol_v: float = INSITU_TOL_V, timing: dict | None = None) -> dict:
    """Decision threshold of one instance on floating bitline-like inputs, beside its ideal-source offset.

    Ideal-source offset: :func:`offset_sample` (bisection, sources on both inputs).
    In-situ: both inputs floating on ``c_bitline_f`` (:func:`_insitu_testbench`);
    ``threshold_first_v`` is the V(inp) - V(inn) at the clock edge at which the first
    decision flips; ``threshold_after_history_v`` the same for the decision that
    follows ``n_history`` "not fired" decisions, the differential rising by
    INSITU_STEP_V per cycle (a ramp). All in V. ``timing``: :func:`column_timing`
    (the default) or the same keys.
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    shifts = checked_delvto(delvto_v)
    c_bitline_f = checked_in_range(c_bitline_f, "c_bitline_f", 1e-15, 10e-12)
    if not isinstance(n_history, int) or isinstance(n_history, bool) or not 1 <= n_history <= 10:
        raise ValueError(f"n_history must be an integer in [1, 10], got {n_history!r}")
    tol_v = checked_in_range(tol_v, "tol_v", 1e-6, 1e-3)
    timing = _timing(timing)
    ideal = offset_sample(shifts, [vcm_v], vdd_v, temperature_c, c_load_f, tol_v=OFFSET_TOL_V)
    vos = ideal["offset_v"][0]
    args = (vcm_v, shifts, vdd_v, temperature_c, c_load_f, c_bitline_f, c_bitline_f)
    first = _insitu_flip(*args, 0, vos, tol_v, timing)
    hist = _insitu_flip(*args, n_history, vos, tol_v, timing)
    return {"vcm_v": vcm_v, "c_bitline_f": c_bitline_f, "offset_ideal_v": vos,
            "threshold_first_v": first["threshold_v"], "threshold_after_history_v": hist["threshold_v"],
            "n_history": n_history, "step_v": INSITU_STEP_V, "tol_v": tol_v,
            "first": first, "after_history": hist, "timing": timing,
            "n_transients": ideal["n_transients"] + first["n_transients"] + hist["n_transients"]}


def input_capacitance(vcm_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0, temperature_c: float = 27.0,
                      c_load_f: float = C_LOAD_F) -> dict:
    """Small-signal capacitance (F) one input presents to its bitline, in reset and when latched.

    A slow ramp (V_CIN_RAMP_V over T_CIN_RAMP_S) on inp, inn held CIN_VDIFF_V lower,
    with clk low (reset: the state the bitline sees while the ramp cells discharge it)
    or after a real clock edge (latched, outp the winner; the ramp starts
    T_CIN_SETTLE_S after the edge). C = -(mean i(vinp) - the same without the ramp) /
    slope over the ramp's middle: the difference removes the slow drift of the
    latched state's floating internal nodes. The neutralisation capacitor (to clkb,
    a steady rail in both states) is included.
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    shifts = checked_delvto(delvto_v)
    t_clk = 0.1e-9
    t1, t2 = t_clk + T_CIN_SETTLE_S, t_clk + T_CIN_SETTLE_S + T_CIN_RAMP_S
    slope = V_CIN_RAMP_V / T_CIN_RAMP_S
    out = {"vcm_v": vcm_v}
    for state, v_clk in (("reset", 0.0), ("latched", vdd_v)):
        i_avg = []
        for ramp_v in (V_CIN_RAMP_V, 0.0):
            net = "\n".join([
                "* topkima comparator input capacitance (sa_strongarm)",
                *model_lines(), subckt_include(NETLISTS[0]),
                f".temp {num(temperature_c, 'temperature')}",
                f"vdd vdd 0 dc {num(vdd_v, 'vdd')}",
                f"vinp inp 0 pwl(0 {num(vcm_v)} {num(t1)} {num(vcm_v)} {num(t2)} {num(vcm_v + ramp_v)})",
                f"vinn inn 0 dc {num(vcm_v - CIN_VDIFF_V)}",
                f"vclk clk 0 pwl(0 0 {num(t_clk)} 0 {num(t_clk + T_CLK_EDGE_S)} {num(v_clk)})",
                subckt_instance("xsa", "inp", "inn", "clk", "outp", "outn", "vdd", "0", shifts),
                f"cloadp outp 0 {num(c_load_f, 'c_load_f')}",
                f"cloadn outn 0 {num(c_load_f, 'c_load_f')}",
                f".tran 5e-12 {num(t2 + 0.05e-9)} 0 5e-12",
                ".save i(vinp)",
                f".meas tran iin avg i(vinp) from={num(t1 + 0.3 * T_CIN_RAMP_S)} to={num(t2 - 0.1 * T_CIN_RAMP_S)}",
                ".end"]) + "\n"
            i_avg.append(spice.simulate(net, BLOCK).measures["iin"])
        out[f"c_in_{state}_f"] = -(i_avg[0] - i_avg[1]) / slope
    return out


def kickback(vcm_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0, temperature_c: float = 27.0,
             c_load_f: float = C_LOAD_F, c_bitline_f: float = C_BITLINE_F, n_cycles: int = 3,
             tol_v: float = INSITU_TOL_V, timing: dict | None = None) -> dict:
    """Kick of the comparator on two floating ``c_bitline_f`` inputs, and what it costs.

    Two runs of ``n_cycles`` decisions with no ramp, differential +KICK_VDIFF_V
    (every decision fires) and -KICK_VDIFF_V (none does) around the comparator's own
    floating-input threshold (``threshold_equal_c_v``, ``kick_center_v``): at the slow
    corner and a 0.45 V common mode that threshold is itself several mV (measured
    while adding the ss artefact), so ±KICK_VDIFF_V around 0 would not fire. All in V,
    relative to the value at the first clock edge:

    * ``cm_excursion_max_v`` / ``cm_excursion_min_v``: extremes of the input common
      mode during the first evaluate phase; ``cm_at_read_v`` at the decision read;
    * ``cm_residue_v``: common-mode change from one clock edge to the next, per cycle
      (what the next decision inherits);
    * ``diff_excursion_max_abs_v``: largest change of V(inp) - V(inn) during the first
      evaluate phase (mostly regeneration, after the decision is taken);
    * ``diff_residue_fired_v`` / ``diff_residue_not_fired_v``: change of the
      differential from one edge to the next after each decision;
    * ``threshold_shift_per_pct_imbalance_v``: shift of the first-decision threshold
      when inn carries C_IMBALANCE_FRACTION more capacitance than inp, per percent
      (the common-mode kick turned differential by unequal bitlines).
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    shifts = checked_delvto(delvto_v)
    c_bitline_f = checked_in_range(c_bitline_f, "c_bitline_f", 1e-15, 10e-12)
    timing = _timing(timing)
    args = (vcm_v, shifts, vdd_v, temperature_c, c_load_f)
    equal = _insitu_flip(*args, c_bitline_f, c_bitline_f, 0, 0.0, tol_v, timing)
    center = equal["threshold_v"]
    out: dict = {"vcm_v": vcm_v, "c_bitline_f": c_bitline_f, "vdiff_v": KICK_VDIFF_V, "kick_center_v": center,
                 "n_cycles": n_cycles}
    for sign, tag in ((1, "fired"), (-1, "not_fired")):
        vdiff = center + sign * KICK_VDIFF_V
        fired, vd_edges, res, t0 = _insitu_run(vcm_v, vdiff, shifts, vdd_v, temperature_c, c_load_f,
                                               c_bitline_f, c_bitline_f, n_cycles, 0.0, timing)
        if fired != [sign > 0] * n_cycles:
            raise spice.SpiceError(BLOCK, f"kick run at {vdiff:.6f} V (threshold {center:.6f} V "
                                          f"{'+' if sign > 0 else '-'} {KICK_VDIFF_V} V) decided {fired}")
        t, vp, vn = res.time, res.v("inp"), res.v("inn")
        cm, vd = 0.5 * (vp + vn), vp - vn
        edges = [t0 + k * timing["t_clk_s"] for k in range(n_cycles)]
        cm_edges = [float(np.interp(e, t, cm)) for e in edges]
        win = (t >= t0) & (t <= t0 + timing["t_eval_s"] + T_CLK_EDGE_S)
        out[f"diff_residue_{tag}_v"] = list(np.diff(vd_edges))
        if sign > 0:
            out["cm_excursion_max_v"] = float(np.max(cm[win]) - cm_edges[0])
            out["cm_excursion_min_v"] = float(np.min(cm[win]) - cm_edges[0])
            out["cm_at_read_v"] = float(np.interp(t0 + timing["t_read_s"], t, cm) - cm_edges[0])
            out["cm_residue_v"] = list(np.diff(cm_edges))
            out["diff_excursion_max_abs_v"] = float(np.max(np.abs(vd[win] - vd_edges[0])))
    unequal = _insitu_flip(*args, c_bitline_f, c_bitline_f * (1 + C_IMBALANCE_FRACTION), 0, 0.0, tol_v, timing)
    out["threshold_equal_c_v"] = equal["threshold_v"]
    out["threshold_unequal_c_v"] = unequal["threshold_v"]
    out["c_imbalance_fraction"] = C_IMBALANCE_FRACTION
    out["threshold_shift_per_pct_imbalance_v"] = (unequal["threshold_v"] - equal["threshold_v"]) / (
        100 * C_IMBALANCE_FRACTION)
    out.update({k: v for k, v in input_capacitance(vcm_v, shifts, vdd_v, temperature_c, c_load_f).items()
                if k.startswith("c_in_")})
    return out
