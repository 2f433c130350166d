"""Counters, AER arbiter and address encoder of the Topkima macro, at transistor level.

What is modelled (cells in ``netlists/digital.sp``, PTM 65 nm, digital supply 0.8 V):

* ``cnt5``: the 5-bit synchronous ramp-cycle counter (code = cycle at which a column fires);
* ``kcnt5``: the grant counter that raises STOP once ``count >= k`` (5-bit preset k);
* ``arb2``: a 2-input fixed-priority (lower address wins), non-preemptive AER arbiter cell;
  the 256-input arbiter is a binary tree of 8 levels of it;
* ``enc8`` / the 128-input OR tree per address bit: the one-hot-grant → address encoder.

Every delay is a ``.meas tran ... TRIG ... TARG`` at half the supply and every energy a
``.meas tran q INTEG i(vdd)`` (E = −VDD·q) from ngspice. Each testbench also checks function
(the counter counts and wraps, STOP rises exactly at k, the arbiter grants the lower address
on simultaneous requests and never pre-empts a grant, the encoder maps one-hot to binary).

The 256-input tree is not a single macro-cell: its critical path (one request from a leaf
up 8 levels, the root acknowledge, the grant down 8 levels) is simulated as 8 instances
of the characterised ``arb2`` cell with an RC π-wire between levels. The wire from a level-l
cell to its parent is half the span of the level-l subtree, ``2**(l-2)`` column pitches
(level 1: half a pitch from the sense amplifier), so the path carries 127.5 pitches of
wire each way. The encoder path is built the same way: 7 alternating nor2/nand2 levels
(the 128-input OR of one address bit, inputs every other column) with ``2**(j-1)`` pitches
before level j, plus the output inverter. Off-path inputs sit at their idle level, which
is exact for one grant at a time (one-hot). The geometry numbers below are ours.

Timing target (SPEC §2, paper at SS 0.8 V): arbiter 1.51 ns, encoder 0.57 ns, counter
0.51 ns, "T_arb < 2.08 ns". Note 1.51 + 0.57 = 2.08: the paper's total is arbiter +
encoder, with the counter apparently overlapped. :func:`summarise` reports both that sum
(``t_arb_arbiter_encoder_s``) and the serial sum asked for by this project
(``t_arb_total_s`` = arbiter tree + encoder + k-counter count→STOP, slow corner).
Our figures are whatever ngspice gives for these cells; they are not tuned to the paper.
Measured when this module was written (ss, 0.8 V; quick and full plans agree): tree grant
1.93 ns, encoder 0.59 ns, count→STOP 0.20 ns (STOP decode 0.48 ns, hidden inside the grant),
so ``t_arb_arbiter_encoder_s`` ≈ 2.53 ns against the paper's 2.08 ns and ``t_arb_total_s`` ≈
2.73 ns. The tree is ~30 % slower than the paper's 1.51 ns because the top two levels drive
96 µm and 192 µm of wire with the same 2x-output cell as the leaves (no repeaters/upsizing),
see the per-level delays in the summary.

The k-counter's STOP is registered (see ``kcnt5`` in the netlist): count→STOP is one
flip-flop clk→q after the k-th grant edge; the decode of "next grant reaches k" settles
during the grant and bounds the grant rate instead (``t_kcounter_decode_s``).
"""
from __future__ import annotations

import math

import numpy as np

from topkima.circuits.corners import corner
from topkima.circuits.jobs import Job
from topkima.circuits import testbench as tb
from topkima.circuits.netlist import ident, num
from topkima.circuits.settings import CalSettings
from topkima.circuits.spice import SimResult, simulate
from topkima.circuits.timing import T_CLK_RAMP_S

BLOCK = "digital"
NETLISTS = ("digital.sp",)

#: Corners characterised always (both at the digital supply); SPEC §2 quotes SS, tt is the reference.
ALWAYS_CORNERS = ("tt", "ss")
#: The corner whose figures make t_arb_total_s (SPEC §2: the paper quotes SS).
SLOW_CORNER = "ss"

N_COLUMNS = 256                       #: columns of the array (SPEC §2: 256 x 256)
TREE_LEVELS = 8                       #: log2(256) levels of 2-input arbiter cells
ENCODER_LEVELS = 7                    #: log2(128) levels of 2-input OR per address bit
ADDRESS_BITS = 8                      #: log2(256)
MEAN_ADDRESS_ONES = ADDRESS_BITS / 2  #: mean popcount over 0..255 = 4: address bits that toggle per encode
K_BITS = 5                            #: k-counter preset width (k <= 31 covers the paper's k sweep, SPEC §3)
COUNTER_BITS = 5                      #: ramp counter width (5-bit ADC, SPEC §2)

# Geometry and wires [ours]: no layout is published.
#: Column pitch: two 10T SRAM cells (L and R halves of the ternary weight, SPEC §2) side by side,
#: ~1.5 µm each in 65 nm (a 6T cell is ~1 µm wide at this node; the decoupled read port adds ~50 %).
COLUMN_PITCH_M = 3.0e-6
#: Wire capacitance per length, intermediate metal at minimum pitch in 65 nm (ITRS-class 0.2 fF/µm).
WIRE_C_F_PER_M = 0.2e-15 / 1e-6
#: Wire resistance per length: Cu (effective ρ ≈ 2.2 µΩ·cm with barrier and scattering) on a
#: 0.1 µm × 0.2 µm intermediate-metal wire ≈ 1.1 Ω/µm, rounded.
WIRE_R_OHM_PER_M = 1.0 / 1e-6

# Paper figures at SS 0.8 V (SPEC §2), for comparison only.
PAPER_T_ARBITER_S = 1.51e-9
PAPER_T_ENCODER_S = 0.57e-9
PAPER_T_COUNTER_S = 0.51e-9
PAPER_T_ARB_S = 2.08e-9

#: Input edge rate of the ideal testbench sources (before the shaping buffers) [ours].
T_EDGE_S = 20e-12
#: Transient step: 10 ps kept clk->q within 0.5 % and charge within 0.2 % of a 1 ps run
#: (cnt5 at ss, measured while writing this module); 5 ps for the short delay benches.
T_STEP_LONG_S = 10e-12
T_STEP_FINE_S = 5e-12
#: A sampled node counts as a logic level only outside the middle 50 % of the supply.
LOGIC_MARGIN = 0.25


# --------------------------------------------------------------------------- helpers

def _check_vdd(vdd_v: float) -> float:
    if isinstance(vdd_v, bool) or not isinstance(vdd_v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(vdd_v)) or not 0.4 <= float(vdd_v) <= 1.2:
        raise ValueError(f"digital supply vdd_v must be a finite voltage in [0.4, 1.2] V, got {vdd_v!r}")
    return float(vdd_v)


def _check_time(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or not 0 < float(value) < 1e-6:
        raise ValueError(f"{what} must be a finite time in (0, 1 µs), got {value!r}")
    return float(value)


def _check_int(value: int, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _header(title: str, corner_name: str, vdd_v: float) -> list[str]:
    """Title, model card, cells, corner parameters, temperature and the DUT supply ``vdd``."""
    c = corner(corner_name)
    return tb.corner_header(f"* topkima digital {ident(title, 'testbench')} corner {ident(c.name, 'corner')}", c,
                            NETLISTS) + [
        f"vdd vdd 0 {num(vdd_v, 'vdd')}",
        # testbench drivers/loads on their own supply so i(vdd) is the DUT's alone
        f"vddtb vddtb 0 {num(vdd_v, 'vdd')}"]


def _buffer(name: str, a: str, y: str, supply: str) -> list[str]:
    """Two inverters a -> y on ``supply`` (shapes ideal edges into real gate edges)."""
    return [tb.instance(name + "a", [a, name + "_m", supply, "0"], "inv"),
            tb.instance(name + "b", [name + "_m", y, supply, "0"], "inv")]


def _wire(name: str, a: str, b: str, length_m: float) -> list[str]:
    """π model of a wire: C/2 at each end, R between (lengths and per-metre values: see module)."""
    r_ohm = max(WIRE_R_OHM_PER_M * length_m, 1e-3)
    c_half_f = WIRE_C_F_PER_M * length_m / 2
    return [f"{ident('rw' + name)} {ident(a)} {ident(b)} {num(r_ohm, 'wire R')}",
            f"{ident('cwa' + name)} {ident(a)} 0 {num(c_half_f, 'wire C')}",
            f"{ident('cwb' + name)} {ident(b)} 0 {num(c_half_f, 'wire C')}"]


def _delay(name: str, trig: str, trig_dir: str, targ: str, targ_dir: str, vdd_v: float,
           td_s: float = 0.0, trig_n: int = 1, targ_n: int = 1) -> str:
    """``.meas`` of a propagation delay between half-supply crossings (after ``td_s``)."""
    half = num(vdd_v / 2, "threshold")
    td = f" TD={num(td_s, 'TD')}" if td_s > 0 else ""
    return (f".meas tran {ident(name)} TRIG v({ident(trig)}) VAL={half}{td} {trig_dir}={int(trig_n)} "
            f"TARG v({ident(targ)}) VAL={half}{td} {targ_dir}={int(targ_n)}")


def _avg(name: str, t_from: float, t_to: float) -> str:
    return f".meas tran {ident(name)} AVG i(vdd) FROM={num(t_from)} TO={num(t_to)}"


def _tran(t_step: float, t_stop: float) -> str:
    return f".tran {num(t_step, 'step')} {num(t_stop, 'stop')}"


def _level(res: SimResult, node: str, t: float, vdd_v: float) -> int | None:
    """Logic level of ``node`` at ``t``: 1, 0, or None if between the margins."""
    v = float(np.interp(t, res.time, res.v(node)))
    if v > (1 - LOGIC_MARGIN) * vdd_v:
        return 1
    if v < LOGIC_MARGIN * vdd_v:
        return 0
    return None


def _word(res: SimResult, nodes: list[str], t: float, vdd_v: float) -> int | None:
    """Unsigned integer read from ``nodes`` (LSB first), None if any bit is undecided."""
    bits = [_level(res, n, t, vdd_v) for n in nodes]
    if any(b is None for b in bits):
        return None
    return sum(b << i for i, b in enumerate(bits))


# --------------------------------------------------------------------------- ramp counter

def ramp_counter_netlist(corner_name: str, vdd_v: float, n_clocks: int = 33, t_clk_s: float = 1e-9,
                         t_step_s: float = T_STEP_LONG_S) -> tuple[str, dict]:
    """cnt5 (en = 1) clocked ``n_clocks`` times; returns the netlist and the timing plan."""
    vdd_v = _check_vdd(vdd_v)
    n_clocks = _check_int(n_clocks, "n_clocks", 2, 64)
    t_clk_s = _check_time(t_clk_s, "t_clk_s")
    t0 = 1.5e-9                                 # first rising clock edge (after reset and a quiet window)
    t_stop = t0 + n_clocks * t_clk_s
    m_counts = min(n_clocks, 32)                # energy window: whole counts, a full 0..31 cycle if possible
    q_from = t0 - t_clk_s / 4
    lines = _header("ramp_counter", corner_name, vdd_v)
    lines += [tb.pwl_source("vrst", "rst", vdd_v, 1, [(0.4e-9, 0)], T_EDGE_S),
              f"vclk clks 0 pulse(0 {num(vdd_v)} {num(t0)} {num(T_EDGE_S)} {num(T_EDGE_S)} "
              f"{num(t_clk_s / 2 - T_EDGE_S)} {num(t_clk_s)})"]
    # the clock buffer driving the five flip-flop clock pins is on vdd: it is part of counting
    lines += _buffer("ckbuf", "clks", "clk", "vdd")
    lines.append(tb.instance("cnt", ["clk", "vdd", "rst"] + [f"q{i}" for i in range(5)] + [f"qb{i}" for i in range(5)]
                    + [f"d{i}" for i in range(5)] + ["vdd", "0"], "cnt5"))
    lines += [_delay("t_cq_q0_rise", "clk", "RISE", "q0", "RISE", vdd_v, trig_n=1),
              _delay("t_cq_q0_fall", "clk", "RISE", "q0", "FALL", vdd_v, trig_n=2),
              tb.charge_meas("q_count", "vdd", q_from, q_from + m_counts * t_clk_s),
              _avg("i_leak", 0.8e-9, t0 - 0.1e-9)]
    if n_clocks >= 16:
        lines.append(_delay("t_cq_q4_rise", "clk", "RISE", "q4", "RISE", vdd_v, trig_n=16))
    if n_clocks >= 32:
        lines.append(_delay("t_cq_wrap", "clk", "RISE", "q4", "FALL", vdd_v, trig_n=32))
    lines += [_tran(t_step_s, t_stop), ".end"]
    samples = [t0 + j * t_clk_s - t_clk_s / 4 for j in range(n_clocks + 1)]  # after j edges
    return "\n".join(lines) + "\n", {"samples_s": samples, "m_counts": m_counts, "t_clk_s": t_clk_s}


def measure_ramp_counter(corner_name: str, vdd_v: float, n_clocks: int = 33, t_clk_s: float = 1e-9,
                         t_clk_ramp_s: float = T_CLK_RAMP_S) -> dict:
    """Count check, clk->q and energy per count of the ramp counter.

    The bench clocks faster than the ramp (1 ns instead of 4 ns) to save ngspice time; the
    energy per count at the ramp clock is the dynamic energy plus leakage over ``t_clk_ramp_s``
    (static CMOS: the switched charge does not depend on the period).
    """
    t_clk_ramp_s = _check_time(t_clk_ramp_s, "t_clk_ramp_s")
    netlist, plan = ramp_counter_netlist(corner_name, vdd_v, n_clocks, t_clk_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    nodes = [f"q{i}" for i in range(COUNTER_BITS)]
    codes = [_word(res, nodes, t, vdd_v) for t in plan["samples_s"]]
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
                     t_grant_s: float = 1e-9, t_step_s: float = T_STEP_LONG_S) -> tuple[str, dict]:
    """kcnt5 with preset ``k`` fed ``n_grants`` grant strobes (default k + 2)."""
    vdd_v = _check_vdd(vdd_v)
    k = _check_int(k, "k", 1, 2 ** K_BITS - 1)
    n_grants = k + 2 if n_grants is None else _check_int(n_grants, "n_grants", 1, 64)
    t_grant_s = _check_time(t_grant_s, "t_grant_s")
    t0 = 1.5e-9
    t_stop = t0 + n_grants * t_grant_s
    q_from = t0 - t_grant_s / 4
    lines = _header("kcounter", corner_name, vdd_v)
    lines += [tb.pwl_source("vrst", "rst", vdd_v, 1, [(0.4e-9, 0)], T_EDGE_S),
              f"vgnt gnts 0 pulse(0 {num(vdd_v)} {num(t0)} {num(T_EDGE_S)} {num(T_EDGE_S)} "
              f"{num(t_grant_s / 2 - T_EDGE_S)} {num(t_grant_s)})"]
    lines += _buffer("gbuf", "gnts", "gnt", "vdd")   # the strobe driver is part of counting
    kbits = ["vdd" if (k >> i) & 1 else "0" for i in range(K_BITS)]
    lines.append(tb.instance("kc", ["gnt", "rst"] + kbits + ["stop", "eq"] + [f"c{i}" for i in range(K_BITS)] + ["vdd", "0"],
                    "kcnt5"))
    if k >= 2:  # decode of "next count == k" after the (k-1)-th grant (for k = 1 it is true from reset)
        half = num(vdd_v / 2, "threshold")
        lines.append(f".meas tran t_decode TRIG v(gnt) VAL={half} RISE={k - 1} TARG v(eq) VAL={half} RISE=LAST")
    lines += [_delay("t_count_stop", "gnt", "RISE", "stop", "RISE", vdd_v, trig_n=k),
              tb.charge_meas("q_run", "vdd", q_from, q_from + k * t_grant_s),
              _avg("i_leak", 0.8e-9, t0 - 0.1e-9)]
    if n_grants >= k + 1:
        lines.append(tb.charge_meas("q_stopped", "vdd", q_from + k * t_grant_s, q_from + (k + 1) * t_grant_s))
    lines += [_tran(t_step_s, t_stop), ".end"]
    samples = [t0 + j * t_grant_s - t_grant_s / 4 for j in range(n_grants + 1)]
    return "\n".join(lines) + "\n", {"samples_s": samples, "k": k, "t_grant_s": t_grant_s, "t0_s": t0,
                                     "n_grants": n_grants}


def measure_kcounter(corner_name: str, vdd_v: float, k: int = 5, n_grants: int | None = None,
                     t_grant_s: float = 1e-9) -> dict:
    """STOP exactly at k (and the count frozen there), count->STOP delay, energy per counted grant."""
    netlist, plan = kcounter_netlist(corner_name, vdd_v, k, n_grants, t_grant_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    k = plan["k"]
    nodes = [f"c{i}" for i in range(K_BITS)]
    counts = [_word(res, nodes, t, vdd_v) for t in plan["samples_s"]]
    stops = [_level(res, "stop", t, vdd_v) for t in plan["samples_s"]]
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


# --------------------------------------------------------------------------- arbiter cell

#: Phases of the single-cell bench, each (request edges, expected (g0, g1) at the end).
#: 0: r0 and r1 together -> lower address (g0); 1: r0 done -> hand over to r1 via the root;
#: 2: r1 done -> idle; 3: r1 alone -> g1; 4: r0 arrives while g1 is out -> g1 kept;
#: 5: r1 done -> g0; 6: r0 done -> idle; 7: r0 alone -> g0; 8: r0 done -> idle.
_CELL_PHASES: tuple[tuple[tuple[tuple[str, int], ...], tuple[int, int]], ...] = (
    ((("r0", 1), ("r1", 1)), (1, 0)),
    ((("r0", 0),), (0, 1)),
    ((("r1", 0),), (0, 0)),
    ((("r1", 1),), (0, 1)),
    ((("r0", 1),), (0, 1)),
    ((("r1", 0),), (1, 0)),
    ((("r0", 0),), (0, 0)),
    ((("r0", 1),), (1, 0)),
    ((("r0", 0),), (0, 0)),
)


def arb_cell_netlist(corner_name: str, vdd_v: float, t_phase_s: float = 1e-9,
                     t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """One arb2 acting as the root (ad = buffered ru), driven through the phases above."""
    vdd_v = _check_vdd(vdd_v)
    t_phase_s = _check_time(t_phase_s, "t_phase_s")
    t0 = 0.5e-9
    edges: dict[str, list[tuple[float, int]]] = {"r0": [], "r1": []}
    for i, (changes, _) in enumerate(_CELL_PHASES):
        for name, level in changes:
            edges[name].append((t0 + i * t_phase_s, level))
    t_stop = t0 + len(_CELL_PHASES) * t_phase_s
    lines = _header("arb_cell", corner_name, vdd_v)
    for name in ("r0", "r1"):
        lines.append(tb.pwl_source("v" + name, name + "s", vdd_v, 0, edges[name], T_EDGE_S))
        lines += _buffer(name + "buf", name + "s", name, "vddtb")
    lines.append(tb.instance("dut", ["r0", "r1", "ru", "ad", "g0", "g1", "vdd", "0"], "arb2"))
    lines += _buffer("root", "ru", "ad", "vddtb")                       # root acknowledge = ru, buffered
    lines += [tb.instance("ld0", ["g0", "ld0", "vddtb", "0"], "inv"),            # sense-amplifier reset inputs
              tb.instance("ld1", ["g1", "ld1", "vddtb", "0"], "inv")]
    p = t_phase_s
    lines += [
        _delay("t_simul_r2g", "r0", "RISE", "g0", "RISE", vdd_v),
        _delay("t_up_r0", "r0", "RISE", "ru", "RISE", vdd_v, td_s=t0 + 7 * p - 0.05e-9),
        _delay("t_down_g0", "ad", "RISE", "g0", "RISE", vdd_v, td_s=t0 + 7 * p - 0.05e-9),
        _delay("t_single_r0", "r0", "RISE", "g0", "RISE", vdd_v, td_s=t0 + 7 * p - 0.05e-9),
        _delay("t_up_r1", "r1", "RISE", "ru", "RISE", vdd_v, td_s=t0 + 3 * p - 0.05e-9),
        _delay("t_down_g1", "ad", "RISE", "g1", "RISE", vdd_v, td_s=t0 + 3 * p - 0.05e-9),
        _delay("t_single_r1", "r1", "RISE", "g1", "RISE", vdd_v, td_s=t0 + 3 * p - 0.05e-9),
        _delay("t_handoff", "r0", "FALL", "g1", "RISE", vdd_v, td_s=t0 + p - 0.05e-9),
        tb.charge_meas("q_handshake", "vdd", t0 + 7 * p - 0.05e-9, t0 + 9 * p - 0.05e-9),
        _avg("i_leak", 0.1e-9, t0 - 0.05e-9),
        _tran(t_step_s, t_stop), ".end"]
    samples = [t0 + (i + 0.9) * p for i in range(len(_CELL_PHASES))]
    return "\n".join(lines) + "\n", {"samples_s": samples, "t_phase_s": p}


def measure_arb_cell(corner_name: str, vdd_v: float, t_phase_s: float = 1e-9) -> dict:
    """Function (priority, non-preemption, hand-over) and stage delays of one arb2."""
    netlist, plan = arb_cell_netlist(corner_name, vdd_v, t_phase_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    grants = [[_level(res, "g0", t, vdd_v), _level(res, "g1", t, vdd_v)] for t in plan["samples_s"]]
    expected = [list(g) for _, g in _CELL_PHASES]
    p_leak_w = -vdd_v * m["i_leak"]
    t_up_s = max(m["t_up_r0"], m["t_up_r1"])
    t_down_s = max(m["t_down_g0"], m["t_down_g1"])
    return {
        "corner": corner_name, "vdd_v": vdd_v,
        "grants": grants, "expected_grants": expected,
        "function_ok": grants == expected,
        "lower_address_wins_ok": grants[0] == [1, 0],
        "single_requester_ok": grants[3] == [0, 1] and grants[7] == [1, 0],
        "non_preemptive_ok": grants[4] == [0, 1],
        "t_simul_req_to_gnt_s": m["t_simul_r2g"],
        "t_single_req_to_gnt_r0_s": m["t_single_r0"], "t_single_req_to_gnt_r1_s": m["t_single_r1"],
        "t_req_up_r0_s": m["t_up_r0"], "t_req_up_r1_s": m["t_up_r1"],
        "t_gnt_down_g0_s": m["t_down_g0"], "t_gnt_down_g1_s": m["t_down_g1"],
        "t_req_up_s": t_up_s, "t_gnt_down_s": t_down_s,
        "t_stage_s": t_up_s + t_down_s,
        "t_handoff_s": m["t_handoff"],
        "e_handshake_j": tb.energy_drawn_j(m["q_handshake"], vdd_v) - p_leak_w * 2 * plan["t_phase_s"],
        "p_leak_w": p_leak_w,
    }


# --------------------------------------------------------------------------- arbiter tree

def tree_wire_lengths_m(levels: int = TREE_LEVELS, pitch_m: float = COLUMN_PITCH_M) -> list[float]:
    """Wire from a level-l cell (l = 1..levels) to its children: 2**(l-2) pitches (level 1: 1/2)."""
    return [pitch_m * 2.0 ** (lvl - 2) for lvl in range(1, levels + 1)]


def arb_tree_netlist(corner_name: str, vdd_v: float, address: int = 0, levels: int = TREE_LEVELS,
                     pitch_m: float = COLUMN_PITCH_M, t_stop_s: float = 8e-9,
                     t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """Critical path of a 2**levels-input arbiter tree for leaf ``address``, one 4-phase handshake.

    The leaf is the sense amplifier's request latch (a nor2 SR latch on the testbench supply: set
    by ``fire``, reset by its grant). Cell l takes the path on input ``(address >> (l-1)) & 1``;
    the sibling input is idle (0). The root acknowledge is ru of the top cell through a buffer on
    vdd (zero-work root: no storage handshake is modelled).
    """
    vdd_v = _check_vdd(vdd_v)
    levels = _check_int(levels, "levels", 1, 10)
    address = _check_int(address, "address", 0, 2 ** levels - 1)
    if not (math.isfinite(pitch_m) and 0 < pitch_m < 1e-4):
        raise ValueError(f"pitch_m must be a column pitch in (0, 100 µm), got {pitch_m!r}")
    t_stop_s = _check_time(t_stop_s, "t_stop_s")
    wires = tree_wire_lengths_m(levels, pitch_m)
    t_fire = 0.5e-9
    lines = _header("arb_tree", corner_name, vdd_v)
    lines += [tb.pwl_source("vfire", "fire", vdd_v, 0, [(t_fire, 1), (t_fire + 0.2e-9, 0)], T_EDGE_S),
              tb.instance("sa1", ["fire", "req", "reqn", "vddtb", "0"], "nor2"),
              tb.instance("sa2", ["reqn", "gleaf", "req", "vddtb", "0"], "nor2"),
              ".ic v(req)=0"]                                   # the SR latch starts reset
    lines += _wire("u1", "req", "rin1", wires[0])
    lines += _wire("d1", "gd1", "gleaf", wires[0])
    for lvl in range(1, levels + 1):
        b = (address >> (lvl - 1)) & 1
        r = ["rin%d" % lvl, "0"] if b == 0 else ["0", "rin%d" % lvl]
        g = ["gd%d" % lvl, "gx%d" % lvl] if b == 0 else ["gx%d" % lvl, "gd%d" % lvl]
        lines.append(tb.instance(f"a{lvl}", r + [f"ru{lvl}", f"ad{lvl}"] + g + ["vdd", "0"], "arb2"))
        if lvl < levels:
            lines += _wire(f"u{lvl + 1}", f"ru{lvl}", f"rin{lvl + 1}", wires[lvl])
            lines += _wire(f"d{lvl + 1}", f"gd{lvl + 1}", f"ad{lvl}", wires[lvl])
    lines += _buffer("root", f"ru{levels}", f"ad{levels}", "vdd")
    lines += [_delay("t_grant", "req", "RISE", "gleaf", "RISE", vdd_v),
              _delay("t_cycle", "req", "RISE", "gleaf", "FALL", vdd_v),
              _delay("t_root", f"ru{levels}", "RISE", f"ad{levels}", "RISE", vdd_v)]
    for lvl in range(1, levels + 1):
        lines.append(_delay(f"t_up{lvl}", "req" if lvl == 1 else f"ru{lvl - 1}", "RISE", f"ru{lvl}", "RISE", vdd_v))
        lines.append(_delay(f"t_dn{lvl}", f"ad{lvl}", "RISE", "gleaf" if lvl == 1 else f"ad{lvl - 1}", "RISE", vdd_v))
    lines += [tb.charge_meas("q_total", "vdd", 0.45e-9, t_stop_s), _avg("i_leak", 0.1e-9, 0.45e-9),
              _tran(t_step_s, t_stop_s), ".end"]
    return "\n".join(lines) + "\n", {"wires_m": wires, "levels": levels, "address": address,
                                     "window_s": t_stop_s - 0.45e-9, "t_stop_s": t_stop_s}


def measure_arb_tree(corner_name: str, vdd_v: float, address: int = 0, levels: int = TREE_LEVELS,
                     pitch_m: float = COLUMN_PITCH_M) -> dict:
    """Request->grant delay, per-level delays and energy of one grant through the composed tree."""
    netlist, plan = arb_tree_netlist(corner_name, vdd_v, address, levels, pitch_m)
    res = simulate(netlist, BLOCK)
    m = res.measures
    n = plan["levels"]
    t_end = plan["t_stop_s"]
    settled = all(_level(res, node, t_end, vdd_v) == 0 for node in ("req", "gleaf", f"ad{n}", f"ru{n}"))
    p_leak_w = -vdd_v * m["i_leak"]
    return {
        "corner": corner_name, "vdd_v": vdd_v, "address": plan["address"], "levels": n,
        "n_inputs": 2 ** n,
        "grant_reaches_leaf_ok": settled and m["t_grant"] > 0,
        "t_grant_tree_s": m["t_grant"],
        "t_handshake_cycle_s": m["t_cycle"],
        "t_root_ack_s": m["t_root"],
        "t_req_up_per_level_s": [m[f"t_up{lvl}"] for lvl in range(1, n + 1)],
        "t_gnt_down_per_level_s": [m[f"t_dn{lvl}"] for lvl in range(1, n + 1)],
        "wire_per_level_m": plan["wires_m"],
        "e_grant_tree_j": tb.energy_drawn_j(m["q_total"], vdd_v) - p_leak_w * plan["window_s"],
        "p_leak_path_w": p_leak_w,
    }


# --------------------------------------------------------------------------- encoder

def encoder_wire_lengths_m(levels: int = ENCODER_LEVELS, pitch_m: float = COLUMN_PITCH_M) -> list[float]:
    """Input wire of OR-tree level j (j = 1..levels): 2**(j-1) pitches (inputs every other column)."""
    return [pitch_m * 2.0 ** (j - 1) for j in range(1, levels + 1)]


def encoder_gate_scale(level: int) -> int:
    """Width multiple of the OR-tree gate at ``level`` (1-based): 1, 1, 1, 2, 2, 4, 4, ...

    Our sizing choice: the wire each level drives doubles per level, so the gate width doubles
    every second level (stage effort stays within ~2x of the lower levels) while the grant line
    still sees one unit gate. Measured at ss, 0.8 V while choosing: grant->address 1.01 ns with
    all-unit gates, 0.59 ns with this taper, for +25 % energy per encode.
    """
    return 2 ** max(0, (level - 2) // 2)


_ENC8_PHASES = (None, 0, 1, 2, 3, 4, 5, 6, 7, None)  # which one-hot input is high per phase


def encoder_netlist(corner_name: str, vdd_v: float, levels: int = ENCODER_LEVELS, pitch_m: float = COLUMN_PITCH_M,
                    t_pulse_s: float = 1.5e-9, t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """Critical path of one address bit of the 256-column encoder, plus an enc8 function check.

    The path: grant (driven by an inverter on the testbench supply, like the arbiter's grant
    output) -> levels alternating nor2/nand2 (odd levels nor2 with the off input at 0, even
    levels nand2 with the off input at 1; widths tapered by :func:`encoder_gate_scale`) with
    π-wires, -> output inverter (2x) -> the
    address register input (an inverter on the testbench supply). The enc8 slice runs on its
    own supply ``vdde`` so that i(vdd) is the path alone.
    """
    vdd_v = _check_vdd(vdd_v)
    levels = _check_int(levels, "levels", 1, 10)
    if not (math.isfinite(pitch_m) and 0 < pitch_m < 1e-4):
        raise ValueError(f"pitch_m must be a column pitch in (0, 100 µm), got {pitch_m!r}")
    t_pulse_s = _check_time(t_pulse_s, "t_pulse_s")
    wires = encoder_wire_lengths_m(levels, pitch_m)
    t_rise = 0.5e-9
    t_fall = t_rise + t_pulse_s
    t_stop = t_fall + t_pulse_s
    lines = _header("encoder", corner_name, vdd_v)
    lines.append(tb.pwl_source("vg", "gs", vdd_v, 0, [(t_rise, 1), (t_fall, 0)], T_EDGE_S))
    lines += _buffer("gbuf", "gs", "g", "vddtb")
    node = "g"
    for j in range(1, levels + 1):
        lines += _wire(f"e{j}", node, f"i{j}", wires[j - 1])
        s = encoder_gate_scale(j)
        if j % 2:
            lines.append(tb.instance(f"o{j}", [f"i{j}", "0", f"o{j}", "vdd", "0"], "nor2", wn=200e-9 * s, wp=600e-9 * s))
        else:
            lines.append(tb.instance(f"o{j}", [f"i{j}", "vdd", f"o{j}", "vdd", "0"], "nand2", wn=400e-9 * s, wp=300e-9 * s))
        node = f"o{j}"
    if levels % 2:   # active-low after an odd number of levels: output inverter restores polarity
        lines.append(tb.instance("out", [node, "abit", "vdd", "0"], "inv", wn=400e-9, wp=600e-9))
    else:
        lines += _buffer("out", node, "abit", "vdd")
    lines.append(tb.instance("areg", ["abit", "aregn", "vddtb", "0"], "inv"))
    lines += [_delay("t_enc_rise", "g", "RISE", "abit", "RISE", vdd_v),
              _delay("t_enc_fall", "g", "FALL", "abit", "FALL", vdd_v),
              tb.charge_meas("q_encode", "vdd", t_rise - 0.1e-9, t_stop),
              _avg("i_leak", 0.1e-9, t_rise - 0.1e-9)]
    # enc8 function check on its own supply
    t_ph = 0.5e-9
    t8 = t_stop + 0.2e-9
    lines.append(f"vdde vdde 0 {num(vdd_v)}")
    for i in range(8):
        edges = []
        for p, hot in enumerate(_ENC8_PHASES):
            if hot == i:
                edges += [(t8 + p * t_ph, 1), (t8 + (p + 1) * t_ph - 0.05e-9, 0)]
        lines.append(tb.pwl_source(f"vh{i}", f"h{i}", vdd_v, 0, edges, T_EDGE_S))
    lines.append(tb.instance("enc8", [f"h{i}" for i in range(8)] + ["e0", "e1", "e2", "vdde", "0"], "enc8"))
    t_end = t8 + len(_ENC8_PHASES) * t_ph
    lines += [_tran(t_step_s, t_end), ".end"]
    samples = [t8 + (p + 0.8) * t_ph for p in range(len(_ENC8_PHASES))]
    return "\n".join(lines) + "\n", {"wires_m": wires, "samples_s": samples, "window_s": t_stop - t_rise + 0.1e-9}


def measure_encoder(corner_name: str, vdd_v: float, levels: int = ENCODER_LEVELS,
                    pitch_m: float = COLUMN_PITCH_M) -> dict:
    """Grant->address delay and energy of one address bit (256 columns), enc8 function."""
    netlist, plan = encoder_netlist(corner_name, vdd_v, levels, pitch_m)
    res = simulate(netlist, BLOCK)
    m = res.measures
    got = [_word(res, ["e0", "e1", "e2"], t, vdd_v) for t in plan["samples_s"]]
    expected = [0 if hot is None else hot for hot in _ENC8_PHASES]
    p_leak_w = -vdd_v * m["i_leak"]
    e_bit_j = tb.energy_drawn_j(m["q_encode"], vdd_v) - p_leak_w * plan["window_s"]
    return {
        "corner": corner_name, "vdd_v": vdd_v, "levels": levels,
        "enc8_addresses": got, "enc8_ok": got == expected,
        "t_enc_rise_s": m["t_enc_rise"], "t_enc_fall_s": m["t_enc_fall"],
        "t_enc_s": max(m["t_enc_rise"], m["t_enc_fall"]),
        "e_per_bit_event_j": e_bit_j,            # one grant pulse (rise + fall) on a '1' address bit
        "e_per_encode_j": MEAN_ADDRESS_ONES * e_bit_j,
        "wire_per_level_m": plan["wires_m"],
        "p_leak_path_w": p_leak_w,
    }


# --------------------------------------------------------------------------- plan and summary

def corners_for(settings: CalSettings) -> tuple[str, ...]:
    """tt and ss always, plus the run's corner if it is another."""
    names = list(ALWAYS_CORNERS)
    if settings.corner_name not in names:
        names.append(settings.corner_name)
    return tuple(names)


def _k_values(settings: CalSettings) -> tuple[int, ...]:
    # quick: the paper's headline k = 5 only; full: also the ends of its sweep {1, ..., 20} (SPEC §3)
    return (5,) if settings.quick else (1, 5, 20)


def _addresses(settings: CalSettings) -> tuple[int, ...]:
    # leaf 0 takes input 0 at every level, leaf 255 input 1: both latch polarities of the cell
    return (0,) if settings.quick else (0, N_COLUMNS - 1)


def plan(settings: CalSettings) -> list[Job]:
    """Jobs of the digital block: per corner, ramp counter, k-counter(s), cell, tree(s), encoder."""
    vdd_v = settings.supplies.v_digital_v
    mod = __name__
    jobs = []
    for c in corners_for(settings):
        base = {"corner_name": c, "vdd_v": vdd_v}
        jobs.append(Job(BLOCK, f"{BLOCK}/{c}/ramp_counter", f"{mod}:measure_ramp_counter", dict(base), NETLISTS))
        for k in _k_values(settings):
            jobs.append(Job(BLOCK, f"{BLOCK}/{c}/kcounter_k{k}", f"{mod}:measure_kcounter", {**base, "k": k}, NETLISTS))
        jobs.append(Job(BLOCK, f"{BLOCK}/{c}/arb_cell", f"{mod}:measure_arb_cell", dict(base), NETLISTS))
        for a in _addresses(settings):
            jobs.append(Job(BLOCK, f"{BLOCK}/{c}/arb_tree_a{a}", f"{mod}:measure_arb_tree",
                            {**base, "address": a}, NETLISTS))
        jobs.append(Job(BLOCK, f"{BLOCK}/{c}/encoder", f"{mod}:measure_encoder", dict(base), NETLISTS))
    return jobs


def summarise(settings: CalSettings, results: dict[str, dict]) -> dict:
    """The digital section of the calibration artefact (units in every key).

    Raises RuntimeError if any functional check failed: a wrong circuit must not calibrate.
    """
    corners_out = {}
    failures = []
    for c in corners_for(settings):
        def get(name: str) -> dict:
            label = f"{BLOCK}/{c}/{name}"
            if label not in results:
                raise KeyError(f"digital summary needs the result of job '{label}'")
            return results[label]

        rc, cell, enc = get("ramp_counter"), get("arb_cell"), get("encoder")
        kcs = {k: get(f"kcounter_k{k}") for k in _k_values(settings)}
        trees = {a: get(f"arb_tree_a{a}") for a in _addresses(settings)}
        checks = {"ramp_counter_counts_and_wraps": rc["counts_ok"] and rc["wraps_ok"],
                  "kcounter_stops_at_k": all(r["stop_at_k_ok"] for r in kcs.values()),
                  "arbiter_lower_address_wins": cell["lower_address_wins_ok"],
                  "arbiter_function": cell["function_ok"],
                  "arbiter_tree_grants": all(t["grant_reaches_leaf_ok"] for t in trees.values()),
                  "encoder_enc8": enc["enc8_ok"]}
        failures += [f"{c}: {name}" for name, ok in checks.items() if not ok]
        worst_tree = max(trees.values(), key=lambda t: t["t_grant_tree_s"])
        k_ref = 5 if 5 in kcs else min(kcs)
        p_leak_tree_w = (N_COLUMNS - 1) * cell["p_leak_w"]
        # encoder leakage scaled from the measured path: per gate of the path, times the
        # ADDRESS_BITS trees of 127 gates + output inverter each (an estimate, idle state)
        p_leak_enc_w = enc["p_leak_path_w"] / (enc["levels"] + 1) * ADDRESS_BITS * N_COLUMNS / 2
        corners_out[c] = {
            "functional_checks": checks,
            "t_arb_stage_req_up_s": cell["t_req_up_s"],
            "t_arb_stage_gnt_down_s": cell["t_gnt_down_s"],
            "t_arb_stage_s": cell["t_stage_s"],
            "t_arb_cell_simultaneous_req_to_gnt_s": cell["t_simul_req_to_gnt_s"],
            "t_arb_cell_handoff_s": cell["t_handoff_s"],
            "t_arb_tree_grant_s": worst_tree["t_grant_tree_s"],
            "t_arb_tree_grant_by_address_s": {str(a): t["t_grant_tree_s"] for a, t in trees.items()},
            "t_arb_tree_handshake_cycle_s": worst_tree["t_handshake_cycle_s"],
            "t_arb_tree_req_up_per_level_s": worst_tree["t_req_up_per_level_s"],
            "t_arb_tree_gnt_down_per_level_s": worst_tree["t_gnt_down_per_level_s"],
            "t_encoder_s": enc["t_enc_s"],
            "t_counter_clk_q_s": rc["t_clk_q_s"],
            "t_kcounter_count_stop_s": kcs[k_ref]["t_count_stop_s"],
            "t_kcounter_count_stop_by_k_s": {str(k): r["t_count_stop_s"] for k, r in kcs.items()},
            "t_kcounter_decode_s": kcs[k_ref]["t_decode_s"],
            "e_per_count_j": rc["e_per_count_j"],
            "e_dyn_per_count_j": rc["e_dyn_per_count_j"],
            "e_per_grant_tree_j": max(t["e_grant_tree_j"] for t in trees.values()),
            "e_per_grant_count_j": kcs[k_ref]["e_per_grant_count_j"],
            "e_per_encode_j": enc["e_per_encode_j"],
            "e_arb_cell_handshake_j": cell["e_handshake_j"],
            "p_leak_ramp_counter_w": rc["p_leak_w"],
            "p_leak_kcounter_w": kcs[k_ref]["p_leak_w"],
            "p_leak_arb_cell_w": cell["p_leak_w"],
            "p_leak_arb_tree_w": p_leak_tree_w,
            "p_leak_encoder_w": p_leak_enc_w,
        }
    if failures:
        raise RuntimeError("digital block failed its functional checks: " + "; ".join(failures))
    slow = corners_out[SLOW_CORNER]
    t_arb_enc_s = slow["t_arb_tree_grant_s"] + slow["t_encoder_s"]
    return {
        "vdd_digital_v": settings.supplies.v_digital_v,
        "corners": corners_out,
        "slow_corner": SLOW_CORNER,
        # serial sum at the slow corner: tree grant + encoder + k-counter count->STOP
        "t_arb_total_s": t_arb_enc_s + slow["t_kcounter_count_stop_s"],
        # the paper's own arithmetic (1.51 + 0.57 = 2.08 ns): arbiter + encoder, counter overlapped
        "t_arb_arbiter_encoder_s": t_arb_enc_s,
        "paper_ss_0v8": {"t_arbiter_s": PAPER_T_ARBITER_S, "t_encoder_s": PAPER_T_ENCODER_S,
                         "t_counter_s": PAPER_T_COUNTER_S, "t_arb_s": PAPER_T_ARB_S,
                         "source": "SPEC §2 (Topkima-Former, arXiv 2411.13050)"},
        "k_for_count_stop": 5 if 5 in _k_values(settings) else min(_k_values(settings)),
        "tree_model": {
            "n_columns": N_COLUMNS, "levels": TREE_LEVELS, "encoder_levels": ENCODER_LEVELS,
            "column_pitch_m": COLUMN_PITCH_M, "wire_c_f_per_m": WIRE_C_F_PER_M,
            "wire_r_ohm_per_m": WIRE_R_OHM_PER_M,
            "arb_wire_per_level_m": tree_wire_lengths_m(),
            "enc_wire_per_level_m": encoder_wire_lengths_m(),
            "note": "256-input tree = 8 levels of the characterised arb2 cell on the critical path, "
                    "pi-wires of 2**(l-2) column pitches between levels; root acknowledge = buffered "
                    "ru; encoder = 7-level nor2/nand2 OR path per address bit; pitch and wire "
                    "per-length values are project estimates (no layout published)",
        },
        "t_clk_ramp_s": T_CLK_RAMP_S,
        "design": {
            "ramp_counter": "cnt5: 5-bit synchronous binary up-counter, TG master-slave flip-flops",
            "k_counter": "kcnt5: 5-bit preset k (1..31), registered STOP when count reaches k, count frozen",
            "arbiter": "arb2: 2-input fixed priority (lower address), non-preemptive, 4-phase, "
                       "one root round trip per grant; 256 inputs = 8-level binary tree",
            "encoder": "per address bit a 128-input OR (7 levels nor2/nand2, tapered) + inverter",
        },
    }
