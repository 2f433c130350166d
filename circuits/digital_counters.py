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


def counter_bits() -> int:
    """Width of the ramp-cycle counter: enough bits to count the active clocks' ramp steps (5 for 32)."""
    return max(1, (tm.active().n_ramp_steps - 1).bit_length())


def counter_instances(bits: int) -> list[str]:
    """The ramp counter (en = 1): ``cnt5`` of netlists/digital.sp for 5 bits, else the same ripple-carry
    structure of its cells (per bit: carry nand2 + inv, aoi22 toggle, dffr) for ``bits`` bits."""
    q, qb, d = ([f"{p}{i}" for i in range(bits)] for p in ("q", "qb", "d"))
    if bits == COUNTER_BITS:
        return [tb.instance("cnt", ["clk", "vdd", "rst"] + q + qb + d + ["vdd", "0"], "cnt5")]
    out = [tb.instance("cntb0", ["vdd", "cntt0b", "vdd", "0"], "inv"),
           tb.instance("cntd0", ["q0", "vdd", "qb0", "cntt0b", "d0", "vdd", "0"], "aoi22"),
           tb.instance("cntf0", ["d0", "clk", "rst", "q0", "qb0", "vdd", "0"], "dffr")]
    for i in range(1, bits):
        t_prev = "vdd" if i == 1 else f"cntt{i - 1}"
        out += [tb.instance(f"cntc{i}", [t_prev, f"q{i - 1}", f"cntt{i}b", "vdd", "0"], "nand2"),
                tb.instance(f"cntt{i}", [f"cntt{i}b", f"cntt{i}", "vdd", "0"], "inv"),
                tb.instance(f"cntd{i}", [f"q{i}", f"cntt{i}", f"qb{i}", f"cntt{i}b", f"d{i}", "vdd", "0"], "aoi22"),
                tb.instance(f"cntf{i}", [f"d{i}", "clk", "rst", f"q{i}", f"qb{i}", "vdd", "0"], "dffr")]
    return out


def ramp_counter_netlist(corner_name: str, vdd_v: float, n_clocks: int | None = None, t_clk_s: float | None = None,
                         t_step_s: float = T_STEP_LONG_S) -> tuple[str, dict]:
    """The ramp counter (:func:`counter_bits` wide, en = 1) clocked ``n_clocks`` times (None: one wrap,
    2**bits + 1; 33 for cnt5) at period ``t_clk_s`` (None: :func:`bench_clock_s`); returns the netlist and
    the timing plan."""
    vdd_v = checked_vdd(vdd_v)
    bits = counter_bits()
    full = 2 ** bits
    n_clocks = checked_int(full + 1 if n_clocks is None else n_clocks, "n_clocks", 2, 2 * full + 1)
    t_clk_s = checked_time(bench_clock_s() if t_clk_s is None else t_clk_s, "t_clk_s")
    t0 = 1.5e-9                                 # first rising clock edge (after reset and a quiet window)
    t_stop = t0 + n_clocks * t_clk_s
    m_counts = min(n_clocks, full)              # energy window: whole counts, a full cycle (0..31 for cnt5) if possible
    q_from = t0 - t_clk_s / 4
    top = bits - 1
    lines = bench_header("ramp_counter", corner_name, vdd_v)
    lines += [tb.pwl_source("vrst", "rst", vdd_v, 1, [(0.4e-9, 0)], T_SRC_EDGE_S),
              f"vclk clks 0 pulse(0 {num(vdd_v)} {num(t0)} {num(T_SRC_EDGE_S)} {num(T_SRC_EDGE_S)} "
              f"{num(t_clk_s / 2 - T_SRC_EDGE_S)} {num(t_clk_s)})"]
    # the clock buffer driving the flip-flop clock pins is on vdd: it is part of counting
    lines += buffer_pair("ckbuf", "clks", "clk", "vdd")
    lines += counter_instances(bits)
    lines += [delay_meas("t_cq_q0_rise", "clk", "RISE", "q0", "RISE", vdd_v, trig_n=1),
              delay_meas("t_cq_q0_fall", "clk", "RISE", "q0", "FALL", vdd_v, trig_n=2),
              tb.charge_meas("q_count", "vdd", q_from, q_from + m_counts * t_clk_s),
              avg_meas("i_leak", 0.8e-9, t0 - 0.1e-9)]
    if n_clocks >= full // 2:
        lines.append(delay_meas(f"t_cq_q{top}_rise", "clk", "RISE", f"q{top}", "RISE", vdd_v, trig_n=full // 2))
    if n_clocks >= full:
        lines.append(delay_meas("t_cq_wrap", "clk", "RISE", f"q{top}", "FALL", vdd_v, trig_n=full))
    lines += [tran_line(t_step_s, t_stop), ".end"]
    samples = [t0 + j * t_clk_s - t_clk_s / 4 for j in range(n_clocks + 1)]  # after j edges
    return "\n".join(lines) + "\n", {"samples_s": samples, "m_counts": m_counts, "t_clk_s": t_clk_s, "bits": bits}


def measure_ramp_counter(corner_name: str, vdd_v: float, n_clocks: int | None = None, t_clk_s: float | None = None,
                         t_clk_ramp_s: float | None = None) -> dict:
    """Count check, clk->q and energy per count of the ramp counter (:func:`counter_bits` wide).

    The bench clocks faster than the ramp (``t_clk_s``, None: :func:`bench_clock_s`, 1 ns against
    4 ns at 65 nm) to save ngspice time; the energy per count at the ramp clock (``t_clk_ramp_s``,
    None: the active clocks') is the dynamic energy plus leakage over one ramp clock
    (static CMOS: the switched charge does not depend on the period).
    """
    t_clk_ramp_s = checked_time(tm.active().t_clk_ramp_s if t_clk_ramp_s is None else t_clk_ramp_s, "t_clk_ramp_s")
    netlist, plan = ramp_counter_netlist(corner_name, vdd_v, n_clocks, t_clk_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    bits, top = plan["bits"], plan["bits"] - 1
    full = 2 ** bits
    nodes = [f"q{i}" for i in range(bits)]
    codes = [logic_word(res, nodes, t, vdd_v) for t in plan["samples_s"]]
    expected = [j % full for j in range(len(codes))]
    p_leak_w = -vdd_v * m["i_leak"]
    window_s = plan["m_counts"] * plan["t_clk_s"]
    e_dyn_per_count_j = (tb.energy_drawn_j(m["q_count"], vdd_v) - p_leak_w * window_s) / plan["m_counts"]
    delays = [m[k] for k in ("t_cq_q0_rise", "t_cq_q0_fall", f"t_cq_q{top}_rise", "t_cq_wrap") if k in m]
    return {
        "corner": corner_name, "vdd_v": vdd_v, "bits": bits,
        "codes": codes, "counts_ok": codes == expected,
        "wraps_ok": len(codes) > full and codes[full] == 0 and codes[full - 1] == full - 1,
        "t_cq_q0_rise_s": m["t_cq_q0_rise"], "t_cq_q0_fall_s": m["t_cq_q0_fall"],
        f"t_cq_q{top}_rise_s": m.get(f"t_cq_q{top}_rise"), "t_cq_wrap_s": m.get("t_cq_wrap"),
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
