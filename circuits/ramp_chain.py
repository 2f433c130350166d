"""Ramp timing generator, chain bench: token order, STOP, skew and energy per ramp step.

One run per corner: the generator, control and three real rows chained 0 → 1 → 31 (token
flop, gate, driver, full wordline each; at 32 rows: a design with another ramp-row count has its
own last row, :func:`~topkima.circuits.ramp_timing.chain_rows`, and its own idle count). Rows 2…30 are not simulated: their clock, window and
reset pin loads sit on 32-section lines as scaled gates (on the testbench supply). Row 31
takes its token straight from row 1 and stands for the far end of those lines. Energy per
step of the 32-row ramp = everything measured in clock 2 (row 1 takes the token and pulses,
row 0 gives it up, row 31 sees its D rise: the pattern of any step) + 29 x the register and
driver energy of row 0 in clock 3, when it idles.
"""
from __future__ import annotations

from topkima.circuits import testbench as tb
from topkima.circuits.corners import corner as corner_of
from topkima.circuits.netlist import num
from topkima.circuits.ramp_timing import (BLOCK, CHAIN_CLOCKS, N_COLUMNS, N_UNITS_RAMP, STOP_CLOCK, chain_rows, n_ramp_rows,
                                          T_SRC_EDGE_S, T_START_LEAD_S, T_STEP_S, WL_DRIVE,
                                          WN_DRV_M, WP_DRV_M, READ_PORT_M, bench_header, checked_drive, checked_driver_size,
                                          checked_supplies, checked_units, clock_edge, control_and_taps, crossings,
                                          edge_s, first_after, pulse_count, pulse_shape, register_loads, row_driver,
                                          row_line, save_line, select_sources, window_loads, window_slice,
                                          t_stop_in_clock_s, wordline_sections)
from topkima.circuits import timing as tm



def chain_expected(stop: bool = True) -> dict[int, list[int]]:
    """Ramp clocks in which each real row of the chain bench must pulse (and in no other)."""
    real_rows = chain_rows()
    out = {r: [1 + i] for i, r in enumerate(real_rows)}             # token 1: clocks 1..4
    for i, r in enumerate(real_rows):                                # token 2 from STOP_CLOCK
        if STOP_CLOCK + i < CHAIN_CLOCKS and (not stop or i == 0):    # STOP: only the open step
            out[r].append(STOP_CLOCK + i)
    return out


def chain_netlist(corner_name: str, supplies: dict | None = None, n_units: int = N_UNITS_RAMP,
                  stop: bool = True, drive: str = WL_DRIVE, wn_m: float = WN_DRV_M,
                  wp_m: float = WP_DRV_M, read_port_m=READ_PORT_M, n_columns: int = N_COLUMNS) -> tuple[str, dict]:
    """Token register with rows chain_rows() real (0, 1, 31 at 32 rows), the generator at ``n_units``, two tokens, STOP.

    Token 1: START sampled at clock 1 → rows 0, 1, 31 in clocks 1–3; clock 4 empty.
    Token 2: START sampled at clock 5 → row 0 in clock 5; STOP rises t_stop_in_clock_s() into
    clock 5 (during row 0's window), is taken at clock 5's falling edge: row 0's pulse
    completes, clock 6 stays empty and the token is cleared at clock 6.
    """
    n = checked_units(n_units)
    sup = checked_supplies(supplies)
    drive = checked_drive(drive)
    wn_m, wp_m = checked_driver_size(wn_m, wp_m)
    if not isinstance(stop, bool):
        raise ValueError(f"stop must be True or False, got {stop!r}")
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    rows = chain_rows()
    lines = bench_header("chain", corner_name, sup)
    srcs, sel_nodes = select_sources("g", n, vd)
    starts = [(edge_s(0) + T_START_LEAD_S, 1), (edge_s(1) + T_START_LEAD_S, 0),
              (edge_s(STOP_CLOCK - 1) + T_START_LEAD_S, 1), (edge_s(STOP_CLOCK) + T_START_LEAD_S, 0)]
    lines += [*srcs, *control_and_taps(vd), tb.dc_source("vddg", "vddg", vd),
              tb.pwl_source("vstop", "stop", vd, 0, [(edge_s(STOP_CLOCK) + t_stop_in_clock_s(), 1)] if stop else [],
                            T_SRC_EDGE_S),
              tb.pwl_source("vstart", "start", vd, 0, starts, T_SRC_EDGE_S),
              window_slice("g", sel_nodes, "w", "vddg"),
              *row_line("wline", "w"), *row_line("rck", "rck"), *row_line("rstk", "rstk"),
              *window_loads("g", "wline", rows, c.delvto_n(), c.delvto_p()),
              *register_loads(rows)]
    prev = "start"
    for r in rows:
        tag = f"r{r}"
        drv, _ = row_driver(tag, f"wlb{tag}", sup, c, wn_m, wp_m, drive, read_port_m, n_columns)
        lines += [tb.dc_source(f"vddr{tag}", f"vddr{tag}", vd),
                  tb.instance(f"row{tag}", [prev, f"rck_r{r}", f"rstk_r{r}", f"wline_r{r}", f"tk{r}", f"wlb{tag}",
                                   f"vddr{tag}", "0"], "rtrow"),
                  *drv]
        prev = f"tk{r}"
    t_stop = edge_s(CHAIN_CLOCKS)
    sources = ["vddt", "vddg", "vddc"] + [f"{s}r{r}" for r in rows for s in ("vddr", "vddp", "vdda")]
    for s in sources:
        lines.append(tb.charge_meas(f"q_{s}_c2", s, edge_s(2), edge_s(3)))
    for s in ("vddr", "vddp", "vdda"):   # row 0 idles in clock 3
        lines.append(tb.charge_meas(f"q_{s}r{rows[0]}_c3", f"{s}r{rows[0]}", edge_s(3), edge_s(4)))
    far = wordline_sections(drive)
    saves = ["rclk", "w", "stopq"] + [f"tk{r}" for r in rows] + [f"wlr{r}_0" for r in rows] \
        + [f"wlr{r}_{far}" for r in rows]
    lines += [save_line(saves, sources), f".tran {num(T_STEP_S)} {num(t_stop)}", ".end"]
    return "\n".join(lines) + "\n", {"rows": list(rows), "n_units": n, "stop": stop, "t_stop_s": t_stop,
                                     "expected": chain_expected(stop), "drive": drive, "far_section": far}


def measure_chain(corner_name: str, supplies: dict | None = None, n_units: int = N_UNITS_RAMP, stop: bool = True,
                  drive: str = WL_DRIVE, wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M,
                   read_port_m=READ_PORT_M, n_columns: int = N_COLUMNS) -> dict:
    """Order, STOP, skew and energy per ramp step of the token register (rows chain_rows() real)."""
    from topkima.circuits.spice import simulate
    real_rows = chain_rows()
    sup = checked_supplies(supplies)
    text, bench = chain_netlist(corner_name, sup.as_dict(), n_units, stop, drive, wn_m, wp_m, read_port_m, n_columns)
    res = simulate(text, BLOCK)
    t, m = res.time, res.measures
    vd, va = sup.v_digital_v, sup.v_array_v
    edges = [clock_edge(t, res.v("rclk"), j, vd) for j in range(CHAIN_CLOCKS)] + [bench["t_stop_s"]]
    expected = bench["expected"]
    pulses, glitches, shapes = {}, {}, {}
    for r in real_rows:
        far = res.v(f"wlr{r}_{bench['far_section']}")
        pulses[str(r)] = [pulse_count(t, far, va / 2, edges[j], edges[j + 1]) for j in range(CHAIN_CLOCKS)]
        # any upward crossing of 10 % of the supply in a clock where this row must stay low
        glitches[str(r)] = sum(pulse_count(t, far, 0.1 * va, edges[j], edges[j + 1])
                               for j in range(CHAIN_CLOCKS) if j not in expected[r])
        shapes[str(r)] = [{"clock": j,
                           "near": pulse_shape(t, res.v(f"wlr{r}_0"), va, edges[j], edges[j + 1]),
                           "far": pulse_shape(t, far, va, edges[j], edges[j + 1])} for j in expected[r]]
    want = {str(r): [1 if j in expected[r] else 0 for j in range(CHAIN_CLOCKS)] for r in real_rows}
    in_order = all(pulses[k] == want[k] for k in want) and sum(glitches.values()) == 0
    last = expected[real_rows[-1]][0]
    after_token = all(sum(p[last + 1:STOP_CLOCK]) == 0 for p in pulses.values())
    t_unit = tm.active().t_unit_s
    nominal = bench["n_units"] * t_unit
    stop_ok = token_cleared = None
    if stop:
        after = all(sum(p[STOP_CLOCK + 1:]) == 0 for p in pulses.values())
        # the step open when STOP rose completes at full width
        w_last = shapes[str(real_rows[0])][-1]["near"]["width_s"]
        stop_ok = bool(after and w_last is not None and abs(w_last - nominal) < 0.25 * t_unit)
        token_cleared = all(float(res.v(f"tk{r}")[-1]) < 0.25 * vd for r in real_rows)
    # token settles before the window opens (clock 2: the token moves from row 0 to row 1)
    tk_rise = first_after(crossings(t, res.v(f"tk{real_rows[1]}"), vd / 2, True), edges[2], edges[3])
    w_rise = first_after(crossings(t, res.v("w"), vd / 2, True), edges[2], edges[3])
    first = {str(r): shapes[str(r)][0] for r in real_rows}
    delays_near = [first[str(r)]["near"]["delay_s"] for r in real_rows]
    delays_far = [first[str(r)]["far"]["delay_s"] for r in real_rows]

    def e(name: str, clock: int = 2) -> float:
        return tb.energy_drawn_j(m[f"q_{name}_c{clock}"], va if name.startswith("vdda") else vd)

    # clock 2: row 1 takes the token and pulses, row 0 gives it up, row 31 sees its D rise:
    # the pattern of every step of the 32-row register; the other 29 rows idle as row 0 in clock 3
    taking, giving, nxt = (f"r{r}" for r in (real_rows[1], real_rows[0], real_rows[2]))
    n_idle = n_ramp_rows() - 3
    e_idle_row = e(f"vddr{giving}", 3)
    e_idle_drv = e(f"vddp{giving}", 3) + e(f"vdda{giving}", 3)
    parts = {
        "e_generator_j": e("vddt") + e("vddg"),
        "e_control_j": e("vddc"),
        "e_register_j": sum(e(f"vddr{x}") for x in (taking, giving, nxt)) + n_idle * e_idle_row,
        "e_drivers_idle_j": sum(e(f"vddp{x}") + e(f"vdda{x}") for x in (giving, nxt)) + n_idle * e_idle_drv,
        "e_predriver_j": e(f"vddp{taking}"),
        "e_wordline_j": e(f"vdda{taking}"),
    }
    return {
        "corner": corner_name, "supplies": sup.as_dict(), "n_units": bench["n_units"], "stop": stop,
        "drive": bench["drive"], "rows": list(real_rows),
        "expected_clocks": {str(k): v for k, v in expected.items()},
        "pulses_per_clock": pulses, "glitches": glitches,
        "one_pulse_per_clock_in_order_ok": bool(in_order),
        "none_after_token_left_ok": bool(after_token),
        "stop_halts_ok": stop_ok, "token_cleared_after_stop_ok": token_cleared,
        "shapes": shapes,
        "delay_near_by_row_s": dict(zip(map(str, real_rows), delays_near)),
        "delay_far_by_row_s": dict(zip(map(str, real_rows), delays_far)),
        "width_far_by_row_s": {str(r): first[str(r)]["far"]["width_s"] for r in real_rows},
        "skew_near_s": max(delays_near) - min(delays_near), "skew_far_s": max(delays_far) - min(delays_far),
        "t_token_after_edge_s": None if tk_rise is None else tk_rise - edges[2],
        "t_window_after_edge_s": None if w_rise is None else w_rise - edges[2],
        "t_token_to_window_margin_s": None if tk_rise is None or w_rise is None else w_rise - tk_rise,
        **parts, "e_idle_row_j": e_idle_row, "e_idle_driver_j": e_idle_drv,
        "e_step_j": sum(parts.values()),
    }
