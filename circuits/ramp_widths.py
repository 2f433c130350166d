"""Ramp timing generator, width bench: pulse width, edges, delay, read charge and energy per N.

One run per corner: the real taps and control, N window slices (each the full ``rtwin`` with
its own selects, window line, one row gate, driver and wordline) sharing the taps, and one
token flop. The 31 other rows' nand2 inputs on each window line are m-multiplied MOS gates.
The shared taps carry all the slices (six times the real load: a pessimistic setup slack,
~15 ps of extra delay; the generator's energy per step comes from the chain bench). Each slice
also drives, for reference, read ports with the column testbench's ideal pulse:
``charge_width_*_units`` = N x (read charge per cell under the real pulse) / (under the ideal
pulse), the width the column actually sees. Widths, edges and delays are read from the
waveforms (linear interpolation of crossings, as ``.meas`` does); energies are
``.meas tran INTEG i(v...)`` per supply, E = −V·q.
"""
from __future__ import annotations

from topkima.circuits import testbench as tb
from topkima.circuits.corners import corner as corner_of
from topkima.circuits.netlist import num
from topkima.circuits.ramp_timing import (BLOCK, M_REF, N_COLUMNS, T_SRC_EDGE_S, T_START_LEAD_S, T_STEP_S,
                                          WL_DRIVE, WN_DRV_M, WP_DRV_M, READ_PORT_M, bench_header, checked_drive,
                                          checked_driver_size, checked_supplies, checked_units_list, clock_edge,
                                          control_and_taps, crossings, edge_s, first_after, ideal_reference,
                                          pulse_count, pulse_shape, row_driver, row_line, save_line, select_sources,
                                          section_columns, window_loads, window_slice, wordline_sections)
from topkima.circuits import timing as tm



def widths_netlist(corner_name: str, supplies: dict | None = None, n_units=(1, 2, 3, 4, 5, 6),
                   drive: str = WL_DRIVE, wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M,
                   read_port_m=READ_PORT_M, n_columns: int = N_COLUMNS) -> tuple[str, dict]:
    """Pulse widths for several N in one run: shared taps, one window slice + row per N.

    Timeline: reset, ramp clock 0 (calibration: windows open, no token), START sampled at
    clock 1 (every slice's row pulses once), START low at clock 2 (token gone: no pulse).
    """
    ns = checked_units_list(n_units)
    sup = checked_supplies(supplies)
    drive = checked_drive(drive)
    wn_m, wp_m = checked_driver_size(wn_m, wp_m)
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    lines = bench_header("widths", corner_name, sup)
    lines += [*control_and_taps(vd), tb.dc_source("vddr", "vddr", vd), tb.dc_source("vstop", "stop", 0.0),
              tb.pwl_source("vstart", "start", vd, 0, [(edge_s(0) + T_START_LEAD_S, 1), (edge_s(1) + T_START_LEAD_S, 0)],
                            T_SRC_EDGE_S),
              # one token flop, its output shared by the row gates of all slices
              tb.instance("tok", ["start", "rck", "rstk", "tok", "tokb", "vddr", "0"], "dffr")]
    sources = ["vddt", "vddc", "vddr"]
    for n in ns:
        tag = f"n{n}"
        srcs, sel_nodes = select_sources(tag, n, vd)
        drv, measured = row_driver(tag, f"wlb{tag}", sup, c, wn_m, wp_m, drive, read_port_m, n_columns)
        lines += [*srcs, tb.dc_source(f"vddg{tag}", f"vddg{tag}", vd), window_slice(tag, sel_nodes, f"w{tag}", f"vddg{tag}"),
                  *row_line(f"wline{tag}", f"w{tag}"),
                  *window_loads(tag, f"wline{tag}", (0,), c.delvto_n(), c.delvto_p()),
                  # the row gate, on the pre-driver supply of its row
                  tb.instance(f"nd{tag}", ["tok", f"wline{tag}_r0", f"wlb{tag}", f"vddp{tag}", "0"], "nand2"),
                  *drv, *ideal_reference(tag, n, edge_s(1) + tm.active().t_pulse_delay_s, c, sup, read_port_m)]
        sources += [f"vddg{tag}", f"vddp{tag}", f"vdda{tag}", f"vblref{tag}", *measured]
    for s in sources:
        lines.append(tb.charge_meas(f"q_{s}", s, edge_s(1), edge_s(2)))
    t_stop = edge_s(2) + 1.2e-9
    far = wordline_sections(drive)
    saves = ["rclk", "tok", "clkpb"] + [f"{p}n{n}" for p in ("dw", "w") for n in ns] \
        + [f"wln{n}_0" for n in ns] + [f"wln{n}_{far}" for n in ns]
    lines += [save_line(saves, sources), f".tran {num(T_STEP_S)} {num(t_stop)}", ".end"]
    return "\n".join(lines) + "\n", {"n_units": list(ns), "t_stop_s": t_stop, "drive": drive, "far_section": far,
                                     "wn_m": wn_m, "wp_m": wp_m}



def measure_widths(corner_name: str, supplies: dict | None = None, n_units=(1, 2, 3, 4, 5, 6),
                   drive: str = WL_DRIVE, wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M,
                   read_port_m=READ_PORT_M, n_columns: int = N_COLUMNS) -> dict:
    """Wordline pulse width, edges, delay, read-charge width and energy for each N (one run)."""
    from topkima.circuits.spice import simulate
    sup = checked_supplies(supplies)
    text, bench = widths_netlist(corner_name, sup.as_dict(), n_units, drive, wn_m, wp_m, read_port_m, n_columns)
    res = simulate(text, BLOCK)
    t, m = res.time, res.measures
    vd, va = sup.v_digital_v, sup.v_array_v
    e1 = clock_edge(t, res.v("rclk"), 1, vd)
    t_unit = tm.active().t_unit_s
    e2 = e1 + tm.active().t_clk_ramp_s
    tok = first_after(crossings(t, res.v("tok"), vd / 2, True), e1, e2)
    far_node = bench["far_section"]
    per_n = []
    for n in bench["n_units"]:
        tag = f"n{n}"
        nominal = n * t_unit
        w = pulse_shape(t, res.v(f"w{tag}"), vd, e1, e2)
        near = pulse_shape(t, res.v(f"wl{tag}_0"), va, e1, e2)
        far_v = res.v(f"wl{tag}_{far_node}")
        far = pulse_shape(t, far_v, va, e1, e2)
        q_ref = m[f"q_vblref{tag}"] / M_REF
        charge = [n * (m[f"q_vbl{tag}_{k}"] / section_columns(n_columns)) / q_ref for k in range(1, far_node + 1)]
        counts = [pulse_count(t, far_v, va / 2, a, b) for a, b in ((0.0, e1), (e1, e2), (e2, bench["t_stop_s"]))]

        def err(shape):
            return None if shape["width_s"] is None else (shape["width_s"] - nominal) / t_unit

        # the window flop's D must fall before the PWM edge that ends the window
        d_fall = first_after(crossings(t, res.v(f"dw{tag}"), vd / 2, False), e1, e2)
        clk_after = None if d_fall is None else first_after(crossings(t, res.v("clkpb"), vd / 2, True), d_fall)
        per_n.append({
            "n_units": n, "width_nominal_s": nominal,
            "window_d_setup_slack_s": None if clk_after is None else clk_after - d_fall,
            "window_width_s": w["width_s"], "window_width_error_units": err(w), "window_delay_s": w["delay_s"],
            "width_near_s": near["width_s"], "width_far_s": far["width_s"],
            "width_error_near_units": err(near), "width_error_far_units": err(far),
            "rise_10_90_near_s": near["rise_10_90_s"], "fall_90_10_near_s": near["fall_90_10_s"],
            "rise_10_90_far_s": far["rise_10_90_s"], "fall_90_10_far_s": far["fall_90_10_s"],
            "delay_near_s": near["delay_s"], "delay_far_s": far["delay_s"],
            "t_fall_50_far_s": far["t_fall_50_s"], "t_off_10_far_s": far["t_off_10_s"],
            "v_peak_near_v": near["v_peak_v"], "v_peak_far_v": far["v_peak_v"],
            "charge_width_by_section_units": charge,       # section 1 nearest the driver
            "pulses_per_clock_far": counts,                 # clocks 0, 1, part of 2
            "one_pulse_ok": counts == [0, 1, 0],
            "e_window_j": tb.energy_drawn_j(m[f"q_vddg{tag}"], vd),
            "e_predriver_j": tb.energy_drawn_j(m[f"q_vddp{tag}"], vd),
            "e_wordline_j": tb.energy_drawn_j(m[f"q_vdda{tag}"], va),
            "c_wordline_eff_f": tb.energy_drawn_j(m[f"q_vdda{tag}"], va) / va ** 2,
        })
    return {"corner": corner_name, "supplies": sup.as_dict(), "drive": bench["drive"],
            "wn_drv_m": bench["wn_m"], "wp_drv_m": bench["wp_m"],
            "t_token_after_edge_s": None if tok is None else tok - e1,
            "e_taps_j": tb.energy_drawn_j(m["q_vddt"], vd), "per_n": per_n}
