"""Time to STOP in SPICE: sense amplifiers → request latches → AER arbiter tree → k-counter.

What is simulated (one ngspice transient at transistor level, PTM 65 nm):

* ``n`` columns' StrongARM sense amplifiers (``netlists/strongarm.sp``) with each column's own
  device draws and the corner, on the 1.0 V SA supply, clocked once per ramp cycle exactly as in
  the column testbench (edge T_SA_CLK_S into each 4 ns cycle, evaluate T_SA_EVAL_S);
* per column the request interface, built of ``netlists/digital.sp`` cells on the digital
  supply: the SA output through an inverter (level shift 1.0 → 0.8 V), a "done" SR latch set by
  the column's grant (the granted column is disabled, SPEC §2), and the request SR latch as in
  :func:`topkima.circuits.digital.arb_tree_netlist` (set by the SA firing while not done, reset by
  the grant: a four-phase handshake);
* the arbiter of a 256-column array (``tree_levels``: another array's log2 of its columns) as far
  as these columns see it: a binary subtree of ``arb2`` cells (lower address wins) over the ``n``
  columns (addresses 0…n−1), then the chain of cells above it up to the root (8 levels in all), each with its other input idle,
  with the π-wires of :func:`digital.tree_wire_lengths_m` between levels; the root acknowledge
  is the top cell's ru buffered on the digital supply (as in the tree bench) and clocks
  ``kcnt5`` preset to k; STOP is its output.

The bitlines are replayed, not re-simulated [ours]: each column's RBL_L / RBL_R are
piecewise-linear staircases through the voltages its golden end-to-end conversion measured at
every ramp cycle's SA clock (``v_rbl_*_at_sa_clk_v`` in tests/golden/*_conversions.json), moving
while the ramp cell's wordline is open (T_PULSE_DELAY_S … +2 ns) and flat when the SA decides.
So this run adds the comparators and the digital chain to stored column physics; the SA's
kickback into the bitline and the ramp's stop are not modelled (the sources are ideal).

Time origin: the start of ramp cycle 1. The digital cells run at ``digital_corner`` (the
artefact's latency uses the slow corner's digital delays, SPEC §2), the SAs at the corner of
the conversions they replay.
"""
from __future__ import annotations

import math

import numpy as np

from topkima.circuits import comparator
from topkima.circuits import digital as dg
from topkima.circuits import testbench as tb
from topkima.circuits import timing as tm
from topkima.circuits.corners import corner
from topkima.circuits.jobs import Job
from topkima.circuits.netlist import ident, num
from topkima.circuits.technology import model_lines, subckt_include

BLOCK = "topk_chain"
NETLISTS = ("digital.sp", "strongarm.sp")
T0_S = 1.0e-9              #: ramp cycle 1 starts here (reset released at T_RESET_S)
T_RESET_S = 0.5e-9
T_STEP_S = 10e-12          #: as the digital benches' long step (clk→q within 0.5 % of 1 ps)
T_RAMP_MOVE_S = 2.0e-9     #: the ramp cell's pulse (4 units × 0.5 ns): the bitline moves during it
MAX_COLUMNS = 16


def cycle_start_s(j: int) -> float:
    """Start of ramp cycle ``j`` (1…32) in this bench."""
    return T0_S + (j - 1) * tm.active().t_clk_ramp_s


def _staircase(name: str, node: str, v_at_clk: list[float], n_cycles: int) -> str:
    """PWL: the level before cycle 1 (cycle 1's step extrapolated back), then each cycle's
    stored level reached linearly while the ramp pulse is on, held while the SA decides."""
    v = [float(num(x, "bitline voltage")) for x in v_at_clk[:n_cycles]]
    if not all(0.0 <= x <= 2.0 for x in v):
        raise ValueError(f"bitline voltages of {name} must lie in 0…2.0 V")
    v_before = v[0] + (v[0] - v[1]) if len(v) > 1 else v[0]
    points = [(0.0, v_before)]
    prev = v_before
    for j, level in enumerate(v, start=1):
        t_move = cycle_start_s(j) + tm.active().t_pulse_delay_s
        points += [(t_move, prev), (t_move + T_RAMP_MOVE_S, level)]
        prev = level
    text = " ".join(f"{num(t)} {num(x)}" for t, x in points)
    return f"{ident('v' + name)} {ident(node)} 0 pwl({text})"


def chain_netlist(columns: list[dict], k: int, sa_corner_name: str, digital_corner_name: str,
                  v_sa_v: float, v_digital_v: float, n_cycles: int,
                  tree_levels: int = dg.TREE_LEVELS) -> tuple[str, dict]:
    """The bench for ``columns`` (each: ``v_rbl_l_at_sa_clk_v``, ``v_rbl_r_at_sa_clk_v``, ``draws``)."""
    n = len(columns)
    if not 2 <= n <= MAX_COLUMNS or n & (n - 1):
        raise ValueError(f"the chain needs a power of two of columns in 2…{MAX_COLUMNS}, got {n}")
    k = dg.checked_int(k, "k", 1, min(n, 2 ** dg.K_BITS - 1))
    ck = tm.active()
    n_cycles = dg.checked_int(n_cycles, "n_cycles", 2, ck.n_ramp_steps)
    vdd = dg.checked_vdd(v_digital_v)
    v_sa = dg.checked_vdd(v_sa_v)
    sa_corner, dig_corner = corner(sa_corner_name), corner(digital_corner_name)
    levels = int(math.log2(n))
    tree_levels = dg.checked_int(tree_levels, "tree_levels", levels, 10)
    t_end = cycle_start_s(n_cycles + 1) + 1e-9
    lines = [f"* topkima top-k chain: {n} columns, k = {k}, SA corner {sa_corner.name}, digital corner {dig_corner.name}",
             *model_lines(digital_corner_name), subckt_include("strongarm.sp"), subckt_include("digital.sp"),
             f".param dvn={num(dig_corner.delvto_n())} dvp={num(dig_corner.delvto_p())}",
             f".options temp={num(dig_corner.temperature_c)} reltol=3e-5",
             f"vdd vdd 0 {num(vdd)}", f"vsa vsa 0 {num(v_sa)}",
             tb.pwl_source("vrst", "rst", vdd, 1, [(T_RESET_S, 0)], dg.T_SRC_EDGE_S),
             f"vsaclk saclk 0 PULSE(0 {num(v_sa)} {num(cycle_start_s(1) + ck.t_sa_clk_s)} {num(ck.t_sa_edge_s)} "
             f"{num(ck.t_sa_edge_s)} {num(ck.t_sa_eval_s - ck.t_sa_edge_s)} {num(ck.t_clk_ramp_s)})"]
    for c, column in enumerate(columns):
        sa_dvt_v = (column.get("draws") or {}).get("sa_dvt_v", {})
        shifts = {d.name: (sa_corner.delvto_n() if d.kind == "n" else sa_corner.delvto_p())
                  + float(num(sa_dvt_v.get(d.name, 0.0), "SA threshold shift")) for d in comparator.DEVICES}
        lines += [_staircase(f"rl{c}", f"rl{c}", column["v_rbl_l_at_sa_clk_v"], n_cycles),
                  _staircase(f"rr{c}", f"rr{c}", column["v_rbl_r_at_sa_clk_v"], n_cycles),
                  comparator.subckt_instance(f"xsa{c}", f"rr{c}", f"rl{c}", "saclk", f"sop{c}", f"son{c}", "vsa", "0",
                                             shifts),
                  tb.instance(f"fb{c}", [f"sop{c}", f"fb{c}", "vdd", "0"], "inv"),             # level shift, fire bar
                  tb.instance(f"dq{c}", ["rst", f"dnb{c}", f"dn{c}", "vdd", "0"], "nor2"),      # done: set by grant
                  tb.instance(f"dqb{c}", [f"g{c}", f"dn{c}", f"dnb{c}", "vdd", "0"], "nor2"),
                  tb.instance(f"fe{c}", [f"fb{c}", f"dn{c}", f"fe{c}", "vdd", "0"], "nor2"),    # fired and not done
                  tb.instance(f"rq{c}", [f"fe{c}", f"req{c}", f"reqn{c}", "vdd", "0"], "nor2"),  # request latch
                  tb.instance(f"rqb{c}", [f"reqn{c}", f"g{c}", f"req{c}", "vdd", "0"], "nor2"),
                  f".ic v(req{c})=0 v(dn{c})=0"]
    wires = dg.tree_wire_lengths_m(tree_levels)
    below = [f"req{c}" for c in range(n)]             # request nodes of the level below
    grants = [f"g{c}" for c in range(n)]              # and the grant nodes they receive
    for lvl in range(1, levels + 1):
        up, acks = [], []
        for i in range(len(below) // 2):
            r0, r1, g0, g1 = f"ri{lvl}_{2 * i}", f"ri{lvl}_{2 * i + 1}", f"gi{lvl}_{2 * i}", f"gi{lvl}_{2 * i + 1}"
            for node_in, node_cell, g_cell, g_out in ((below[2 * i], r0, g0, grants[2 * i]),
                                                      (below[2 * i + 1], r1, g1, grants[2 * i + 1])):
                lines += dg.pi_wire(f"u{node_cell}", node_in, node_cell, wires[lvl - 1])
                lines += dg.pi_wire(f"d{node_cell}", g_cell, g_out, wires[lvl - 1])
            lines.append(tb.instance(f"a{lvl}_{i}", [r0, r1, f"ru{lvl}_{i}", f"ad{lvl}_{i}", g0, g1, "vdd", "0"], "arb2"))
            up.append(f"ru{lvl}_{i}")
            acks.append(f"ad{lvl}_{i}")
        below, grants = up, acks
    for lvl in range(levels + 1, tree_levels + 1):   # the chain above the columns' subtree: input 0, input 1 idle
        lines += dg.pi_wire(f"uc{lvl}", below[0], f"ric{lvl}", wires[lvl - 1])
        lines += dg.pi_wire(f"dc{lvl}", f"gic{lvl}", grants[0], wires[lvl - 1])
        lines.append(tb.instance(f"ac{lvl}", [f"ric{lvl}", "0", f"ruc{lvl}", f"adc{lvl}", f"gic{lvl}", f"gxc{lvl}", "vdd", "0"],
                           "arb2"))
        below, grants = [f"ruc{lvl}"], [f"adc{lvl}"]
    lines += dg.buffer_pair("root", below[0], grants[0], "vdd")              # root acknowledge = ru, buffered
    kbits = ["vdd" if (k >> i) & 1 else "0" for i in range(dg.K_BITS)]
    lines.append(tb.instance("kc", [grants[0], "rst"] + kbits + ["stop", "eq"] + [f"cnt{i}" for i in range(dg.K_BITS)]
                       + ["vdd", "0"], "kcnt5"))
    save = ["stop", grants[0]] + [f"{p}{c}" for c in range(n) for p in ("sop", "req", "g")]
    lines += [".save " + " ".join(f"v({s})" for s in save), f".tran {num(T_STEP_S)} {num(t_end)}", ".end"]
    return "\n".join(lines) + "\n", {"n": n, "k": k, "levels": tree_levels, "t_end_s": t_end, "root_ack": grants[0]}


def _first_rise_s(time_s: np.ndarray, v: np.ndarray, threshold_v: float, after_s: float = 0.0) -> float | None:
    """First upward crossing of ``threshold_v`` after ``after_s`` (linear interpolation), or None."""
    above = (v >= threshold_v) & (time_s > after_s)
    idx = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    if idx.size == 0:
        return None
    i = idx[0]
    return float(time_s[i - 1] + (threshold_v - v[i - 1]) * (time_s[i] - time_s[i - 1]) / (v[i] - v[i - 1]))


def measure_stop(columns: list[dict], k: int, sa_corner_name: str, digital_corner_name: str, v_sa_v: float,
                 v_digital_v: float, n_cycles: int, tree_levels: int = dg.TREE_LEVELS) -> dict:
    """Time to STOP, the grant order and each column's first SA firing, from one transient
    (``tree_levels``: the array's arbiter depth, log2 of its columns: 8 at 256)."""
    from topkima.circuits.spice import simulate
    netlist, plan = chain_netlist(columns, k, sa_corner_name, digital_corner_name, v_sa_v, v_digital_v, n_cycles,
                                  tree_levels)
    res = simulate(netlist, BLOCK)
    t = res.time
    t_stop = _first_rise_s(t, res.v("stop"), v_digital_v / 2, T_RESET_S)
    fire, grant = [], []
    for c in range(plan["n"]):
        fire.append(_first_rise_s(t, res.v(f"sop{c}"), v_sa_v / 2, T_RESET_S))
        grant.append(_first_rise_s(t, res.v(f"g{c}"), v_digital_v / 2, T_RESET_S))
    fired_cycle = [None if f is None else int((f - T0_S) // tm.active().t_clk_ramp_s) + 1 for f in fire]
    order = sorted((g, c) for c, g in enumerate(grant) if g is not None)
    root = res.v(plan["root_ack"])
    n_root_grants, above = 0, False
    for x in root:                       # rising edges of the root acknowledge (one per grant)
        if not above and x > 0.75 * v_digital_v:
            n_root_grants, above = n_root_grants + 1, True
        elif above and x < 0.25 * v_digital_v:
            above = False
    return {"k": plan["k"], "n_columns": plan["n"], "tree_levels": plan["levels"], "n_cycles": n_cycles,
            "t_end_s": plan["t_end_s"],
            "sa_corner": sa_corner_name, "digital_corner": digital_corner_name,
            "t_stop_from_ramp_start_s": None if t_stop is None else t_stop - T0_S,
            "stop_cycle_spice": None if t_stop is None else int((t_stop - T0_S) // tm.active().t_clk_ramp_s) + 1,
            "t_first_fire_from_ramp_start_s": [None if f is None else f - T0_S for f in fire],
            "sa_first_fire_cycle": fired_cycle,
            "t_grant_from_ramp_start_s": [None if g is None else g - T0_S for g in grant],
            "grant_order": [c for _, c in order], "n_root_grants": n_root_grants}


def plan(golden_doc: dict, n_groups: int, columns_per_run: int, k: int, digital_corner_name: str = dg.SLOW_CORNER,
         v_digital_v: float = 0.8, n_columns: int = dg.N_COLUMNS) -> list[Job]:
    """One job per golden group: its first ``columns_per_run`` columns, simulated until two
    cycles after the stored k-th firing (the whole ramp if fewer than k of them fired), under the
    arbiter tree of an ``n_columns``-column array (the 65 nm preset's 256: the golden sets' design)."""
    tree = {} if n_columns == dg.N_COLUMNS else {"tree_levels": dg.tree_levels(n_columns)}
    jobs = []
    for g, group in enumerate(golden_doc["groups"][:n_groups]):
        cols = group["columns"][:columns_per_run]
        cycles = sorted(c["firing_cycle"] for c in cols if c["firing_cycle"] is not None)
        n_cycles = min(tm.active().n_ramp_steps, cycles[k - 1] + 2) if len(cycles) >= k else tm.active().n_ramp_steps
        sub = [{"v_rbl_l_at_sa_clk_v": c["v_rbl_l_at_sa_clk_v"], "v_rbl_r_at_sa_clk_v": c["v_rbl_r_at_sa_clk_v"],
                "draws": {"sa_dvt_v": c["draws"]["sa_dvt_v"]}} for c in cols]
        jobs.append(Job(BLOCK, f"stop_g{g:03d}", f"{__name__}:measure_stop",
                        {"columns": sub, "k": k, "sa_corner_name": golden_doc["corner"],
                         "digital_corner_name": digital_corner_name, "v_sa_v": golden_doc["supplies"]["v_sa_v"],
                         "v_digital_v": v_digital_v, "n_cycles": n_cycles, **tree}, NETLISTS))
    return jobs
