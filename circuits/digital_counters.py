"""The ramp-cycle counter (``cnt5``) and the grant counter that raises STOP at k (``kcnt5``),
at transistor level (cells in ``netlists/digital.sp``; block description: :mod:`.digital`).
"""
from __future__ import annotations

import numpy as np

from topkima.circuits import testbench as tb
from topkima.circuits.digital import (BLOCK, COUNTER_BITS, K_BITS, T_SRC_EDGE_S, T_STEP_LONG_S, avg_meas, bench_header,
                                      buffer_pair, checked_int, checked_time, checked_vdd, delay_meas, logic_level,
                                      logic_word, tran_line)
from topkima.circuits.netlist import num
from topkima.circuits.spice import simulate
from topkima.circuits import timing as tm


def bench_clock_s() -> float:
    """The counters' default bench clock and grant-strobe period: a quarter of the active ramp clock
    (1 ns at 65 nm). Faster than the ramp to save ngspice time; for the k-counter, a grant every quarter
    ramp clock is faster than the arbiter tree can grant (its handshake cycle: 2.9-3.5 ns at 65 nm,
    calibration/default_calibration.json), so a k-counter that passes here keeps up with the tree."""
    return tm.active().t_clk_ramp_s / 4


def ramp_counter_netlist(corner_name: str, vdd_v: float, n_clocks: int = 33, t_clk_s: float | None = None,
                         t_step_s: float = T_STEP_LONG_S) -> tuple[str, dict]:
    """cnt5 (en = 1) clocked ``n_clocks`` times (period ``t_clk_s``, None: :func:`bench_clock_s`);
    returns the netlist and the timing plan."""
    vdd_v = checked_vdd(vdd_v)
    n_clocks = checked_int(n_clocks, "n_clocks", 2, 64)
    t_clk_s = checked_time(bench_clock_s() if t_clk_s is None else t_clk_s, "t_clk_s")
    t0 = 1.5e-9                                 # first rising clock edge (after reset and a quiet window)
    t_stop = t0 + n_clocks * t_clk_s
    m_counts = min(n_clocks, 32)                # energy window: whole counts, a full 0..31 cycle if possible
    q_from = t0 - t_clk_s / 4
    lines = bench_header("ramp_counter", corner_name, vdd_v)
    lines += [tb.pwl_source("vrst", "rst", vdd_v, 1, [(0.4e-9, 0)], T_SRC_EDGE_S),
              f"vclk clks 0 pulse(0 {num(vdd_v)} {num(t0)} {num(T_SRC_EDGE_S)} {num(T_SRC_EDGE_S)} "
              f"{num(t_clk_s / 2 - T_SRC_EDGE_S)} {num(t_clk_s)})"]
    # the clock buffer driving the five flip-flop clock pins is on vdd: it is part of counting
    lines += buffer_pair("ckbuf", "clks", "clk", "vdd")
    lines.append(tb.instance("cnt", ["clk", "vdd", "rst"] + [f"q{i}" for i in range(5)] + [f"qb{i}" for i in range(5)]
                    + [f"d{i}" for i in range(5)] + ["vdd", "0"], "cnt5"))
    lines += [delay_meas("t_cq_q0_rise", "clk", "RISE", "q0", "RISE", vdd_v, trig_n=1),
              delay_meas("t_cq_q0_fall", "clk", "RISE", "q0", "FALL", vdd_v, trig_n=2),
              tb.charge_meas("q_count", "vdd", q_from, q_from + m_counts * t_clk_s),
              avg_meas("i_leak", 0.8e-9, t0 - 0.1e-9)]
    if n_clocks >= 16:
        lines.append(delay_meas("t_cq_q4_rise", "clk", "RISE", "q4", "RISE", vdd_v, trig_n=16))
    if n_clocks >= 32:
        lines.append(delay_meas("t_cq_wrap", "clk", "RISE", "q4", "FALL", vdd_v, trig_n=32))
    lines += [tran_line(t_step_s, t_stop), ".end"]
    samples = [t0 + j * t_clk_s - t_clk_s / 4 for j in range(n_clocks + 1)]  # after j edges
    return "\n".join(lines) + "\n", {"samples_s": samples, "m_counts": m_counts, "t_clk_s": t_clk_s}


def measure_ramp_counter(corner_name: str, vdd_v: float, n_clocks: int = 33, t_clk_s: float | None = None,
                         t_clk_ramp_s: float | None = None) -> dict:
    """Count check, clk->q and energy per count of the ramp counter.

    The bench clocks faster than the ramp (``t_clk_s``, None: :func:`bench_clock_s`, 1 ns against
    4 ns at 65 nm) to save ngspice time; the energy per count at the ramp clock (``t_clk_ramp_s``,
    None: the active clocks') is the dynamic energy plus leakage over one ramp clock
    (static CMOS: the switched charge does not depend on the period).
    """
    t_clk_ramp_s = checked_time(tm.active().t_clk_ramp_s if t_clk_ramp_s is None else t_clk_ramp_s, "t_clk_ramp_s")
    netlist, plan = ramp_counter_netlist(corner_name, vdd_v, n_clocks, t_clk_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    nodes = [f"q{i}" for i in range(COUNTER_BITS)]
    codes = [logic_word(res, nodes, t, vdd_v) for t in plan["samples_s"]]
    expected = [j % 2 ** COUNTER_BITS for j in range(len(codes))]
    p_leak_w = -vdd_v * m["i_leak"]
    window_s = plan["m_counts"] * plan["t_clk_s"]
    e_dyn_per_count_j = (tb.energy_drawn_j(m["q_count"], vdd_v) - p_leak_w * window_s) / plan["m_counts"]
    delays = [m[k] for k in ("t_cq_q0_rise", "t_cq_q0_fall", "t_cq_q4_rise", "t_cq_wrap") if k in m]
    return {
        "corner": corner_name, "vdd_v": vdd_v,
        "codes": codes, "counts_ok": codes == expected,
        "wraps_ok": len(codes) > 32 and codes[32] == 0 and codes[31] == 31,
        "t_cq_q0_rise_s": m["t_cq_q0_rise"], "t_cq_q0_fall_s": m["t_cq_q0_fall"],
        "t_cq_q4_rise_s": m.get("t_cq_q4_rise"), "t_cq_wrap_s": m.get("t_cq_wrap"),
        "t_clk_q_s": max(delays),
        "e_dyn_per_count_j": e_dyn_per_count_j,
        "e_per_count_j": e_dyn_per_count_j + p_leak_w * t_clk_ramp_s,
        "t_clk_ramp_s": t_clk_ramp_s, "t_clk_bench_s": plan["t_clk_s"],
        "p_leak_w": p_leak_w,
    }


# --------------------------------------------------------------------------- k-counter

def kcounter_netlist(corner_name: str, vdd_v: float, k: int = 5, n_grants: int | None = None,
                     t_grant_s: float | None = None, t_step_s: float = T_STEP_LONG_S) -> tuple[str, dict]:
    """kcnt5 with preset ``k`` fed ``n_grants`` grant strobes (default k + 2), one per ``t_grant_s``
    (None: :func:`bench_clock_s`)."""
    vdd_v = checked_vdd(vdd_v)
    k = checked_int(k, "k", 1, 2 ** K_BITS - 1)
    n_grants = k + 2 if n_grants is None else checked_int(n_grants, "n_grants", 1, 64)
    t_grant_s = checked_time(bench_clock_s() if t_grant_s is None else t_grant_s, "t_grant_s")
    t0 = 1.5e-9
    t_stop = t0 + n_grants * t_grant_s
    q_from = t0 - t_grant_s / 4
    lines = bench_header("kcounter", corner_name, vdd_v)
    lines += [tb.pwl_source("vrst", "rst", vdd_v, 1, [(0.4e-9, 0)], T_SRC_EDGE_S),
              f"vgnt gnts 0 pulse(0 {num(vdd_v)} {num(t0)} {num(T_SRC_EDGE_S)} {num(T_SRC_EDGE_S)} "
              f"{num(t_grant_s / 2 - T_SRC_EDGE_S)} {num(t_grant_s)})"]
    lines += buffer_pair("gbuf", "gnts", "gnt", "vdd")   # the strobe driver is part of counting
    kbits = ["vdd" if (k >> i) & 1 else "0" for i in range(K_BITS)]
    lines.append(tb.instance("kc", ["gnt", "rst"] + kbits + ["stop", "eq"] + [f"c{i}" for i in range(K_BITS)] + ["vdd", "0"],
                    "kcnt5"))
    if k >= 2:  # decode of "next count == k" after the (k-1)-th grant (for k = 1 it is true from reset)
        half = num(vdd_v / 2, "threshold")
        lines.append(f".meas tran t_decode TRIG v(gnt) VAL={half} RISE={k - 1} TARG v(eq) VAL={half} RISE=LAST")
    lines += [delay_meas("t_count_stop", "gnt", "RISE", "stop", "RISE", vdd_v, trig_n=k),
              tb.charge_meas("q_run", "vdd", q_from, q_from + k * t_grant_s),
              avg_meas("i_leak", 0.8e-9, t0 - 0.1e-9)]
    if n_grants >= k + 1:
        lines.append(tb.charge_meas("q_stopped", "vdd", q_from + k * t_grant_s, q_from + (k + 1) * t_grant_s))
    lines += [tran_line(t_step_s, t_stop), ".end"]
    samples = [t0 + j * t_grant_s - t_grant_s / 4 for j in range(n_grants + 1)]
    return "\n".join(lines) + "\n", {"samples_s": samples, "k": k, "t_grant_s": t_grant_s, "t0_s": t0,
                                     "n_grants": n_grants}


def measure_kcounter(corner_name: str, vdd_v: float, k: int = 5, n_grants: int | None = None,
                     t_grant_s: float | None = None) -> dict:
    """STOP exactly at k (and the count frozen there), count->STOP delay, energy per counted grant."""
    netlist, plan = kcounter_netlist(corner_name, vdd_v, k, n_grants, t_grant_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    k = plan["k"]
    nodes = [f"c{i}" for i in range(K_BITS)]
    counts = [logic_word(res, nodes, t, vdd_v) for t in plan["samples_s"]]
    stops = [logic_level(res, "stop", t, vdd_v) for t in plan["samples_s"]]
    expected_counts = [min(j, k) for j in range(len(counts))]
    expected_stops = [int(j >= k) for j in range(len(stops))]
    # no STOP pulse before the k-th strobe (decode glitches at 10 ps resolution)
    t_edge_k = plan["t0_s"] + (k - 1) * plan["t_grant_s"]
    before = (res.time > 0.6e-9) & (res.time < t_edge_k + 0.02e-9)
    v_stop_max_before_k_v = float(np.max(res.v("stop")[before]))
    p_leak_w = -vdd_v * m["i_leak"]
    t = plan["t_grant_s"]
    out = {
        "corner": corner_name, "vdd_v": vdd_v, "k": k,
        "counts": counts, "stops": stops,
        "stop_at_k_ok": stops == expected_stops and counts == expected_counts
                        and v_stop_max_before_k_v < vdd_v / 2,
        "v_stop_max_before_k_v": v_stop_max_before_k_v,
        "t_count_stop_s": m["t_count_stop"],
        "t_decode_s": m.get("t_decode"),    # grant edge -> STOP decode settled: bounds the grant rate
        "e_per_grant_count_j": (tb.energy_drawn_j(m["q_run"], vdd_v) - p_leak_w * k * t) / k,
        "p_leak_w": p_leak_w,
    }
    if "q_stopped" in m:
        out["e_per_strobe_stopped_j"] = tb.energy_drawn_j(m["q_stopped"], vdd_v) - p_leak_w * t
    return out
