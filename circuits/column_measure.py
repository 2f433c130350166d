"""Measurements on the column testbench (run as jobs in worker processes; JSON-able arguments
and results): the discharge curve and single-pulse charges, read-stack currents with their
mismatch, the MAC phase, a conversion's bitline energy, and end-to-end conversions with the
sense amplifier. The testbenches themselves are :mod:`topkima.circuits.column`'s.

Every measurement takes the design values the column testbench reads as ``design_fields``
(:data:`~topkima.circuits.design.COLUMN_FIELDS`: read-port and precharge sizes, bitline wire; so they
are part of the job's cache key, and a design change elsewhere reuses the job); the supplies come
as ``supplies`` and the ADC knobs and threshold draws as their own arguments. ``None`` means the
``topkima-65nm`` preset (the golden sets and older callers).
"""
from __future__ import annotations

import numpy as np

from topkima.circuits import netlist as nl
from topkima.circuits import technology as tech
from topkima.circuits.column import (BLOCK, PAIR_SCALES, ColumnConversion, ColumnDraws, Rows,
                                     code_from_cycle, column_netlist, discharge_netlist, firing_cycle)
from topkima.circuits.corners import Corner, Supplies
from topkima.circuits.design import design_with
from topkima.circuits import timing as tm



def corner_and_supplies(corner_name: str, supplies: dict) -> tuple[Corner, Supplies]:
    from topkima.circuits.corners import corner
    return corner(corner_name), Supplies(**supplies)


def measure_discharge(corner_name: str, supplies: dict, n_on_l: int, pulses_r_units: list[int],
                      tstop_s: float, share_r_units: list[int] = (), n_points: int = 2000,
                      pulse_dvt_v: list[float] = (0.0, 0.0), design_fields: dict | None = None) -> dict:
    """Discharge curve V(RBL) vs accumulated units, and the charge of single pulses.

    The curve: ``n_on_l`` cells held on, so after time t the bitline has taken
    ``n_on_l·(t − t_release)/t_unit_s`` units (the active clocks, :func:`topkima.circuits.timing.active`). The pulses: a single cell's pulses of
    each width on the other bitline; V before and after each is returned so the
    calibration can express each pulse in curve units.
    """
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    text, starts, idle = discharge_netlist(corner=corner, supplies=sup, n_on_l=n_on_l,
                                     pulses_r_units=tuple(pulses_r_units), tstop_s=tstop_s,
                                     share_r_units=tuple(share_r_units), pulse_dvt_v=tuple(pulse_dvt_v),
                                     design=design)
    res = simulate(text, BLOCK)
    n_rows = Rows.of(design).n_rows
    ck = tm.active()
    t_unit, t_edge = ck.t_unit_s, ck.t_wl_edge_s
    t, v_l, v_r, v_far = res.time, res.v("rbl_l0"), res.v("rbl_r0"), res.v(f"rbl_r{n_rows - 1}")
    t_release = ck.t_pre_end_s + ck.t_pre_edge_s   # precharge switch fully off
    t_grid = np.linspace(t_release + 0.1e-9, tstop_s, n_points)  # after the release's own coupling
    units = n_on_l * (t_grid - t_release) / t_unit
    before, after, settle = [], [], []
    gap = 1.0e-9
    widths = list(pulses_r_units) + list(share_r_units)
    for t0, w in zip(starts, widths):
        t1 = t0 + w * t_unit
        before.append(float(np.interp(t0 - t_edge, t, v_r)))
        v_end = float(np.interp(t1 + gap - t_edge, t, v_r))
        after.append(v_end)
        # settling: after the wordline has fallen, until the sense end (row 0) agrees with the
        # pulsed cell's end of the bitline to 1 % of the step (distributed wire RC)
        step = abs(before[-1] - v_end)
        t_off = t1 + t_edge / 2  # end of the falling edge; the window ends before the next rising edge
        window = (t >= t_off) & (t <= t1 + gap - t_edge)
        off = np.abs(v_r[window] - v_far[window]) > 0.01 * max(step, 1e-6)
        settle.append(float(t[window][np.nonzero(off)[0][-1]] - t_off) if off.any() else 0.0)
    return {
        "units": units.tolist(), "v_rbl_v": np.interp(t_grid, t, v_l).tolist(),
        "pulse_units": widths, "pulse_stored": [1] * len(pulses_r_units) + [0] * len(share_r_units),
        "v_before_v": before, "v_after_v": after,
        "settle_1pct_s": settle,
        "far_minus_near_max_v": float(np.max(np.abs(v_far - v_r))),
        "e_wordline_pulse_j": abs(res.measures.get("q_wlp", 0.0)) * sup.v_array_v,
        "n_on_l": n_on_l, "idle_stacks": idle, "t_grid_s": (t_grid - t_release).tolist(),
        # the level a conversion starts from: RBL_R, no cell on, just before its first pulse
        "v_released_v": float(np.interp(starts[0] - t_edge if starts else ck.t_mac0_s, t, v_r)),
        "pulse_window_s": [w * t_unit + gap for w in widths],
        "pulse_dvt_v": [float(x) for x in pulse_dvt_v],
    }


@tm.clock_free   # .op only
def measure_cell_currents(corner_name: str, supplies: dict, dvt_v: list[list[float]],
                          v_rbl_v: list[float], design_fields: dict | None = None) -> dict:
    """Read-stack currents at each bitline voltage (one ``.op`` per voltage).

    Returns the nominal on-current (wordline high, storage 1), the on-current of each
    (access, storage) ``delvto`` pair in ``dvt_v`` (mismatch draws, corner added here),
    and the leakage of an idle stack (wordline low) storing 1 and storing 0.
    """
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    rp = design_with(design_fields).sizes.read_port
    dn = corner.delvto_n()
    va = nl.num(sup.v_array_v)
    rows = [("wl", "vq1", 0.0, 0.0), ("0", "vq1", 0.0, 0.0), ("0", "0", 0.0, 0.0)]
    rows += [("wl", "vq1", float(da), float(ds)) for da, ds in dvt_v]
    out = {"v_rbl_v": list(v_rbl_v), "dvt_v": [list(map(float, d)) for d in dvt_v], "i_on_nominal_a": [], "i_leak_stored1_a": [], "i_leak_stored0_a": [], "i_on_a": []}
    for v_bl in v_rbl_v:
        lines = [f"* topkima read-stack currents at V(RBL) = {nl.num(v_bl)} V", *tech.model_lines(corner.name),
                 tech.subckt_include("readport.sp"), f"vwl wl 0 {va}", f"vq1 vq1 0 {va}"]
        for i, (wl, q, da, ds) in enumerate(rows):
            lines += [f"vb{i} b{i} 0 {nl.num(v_bl)}",
                      f"xs{i} b{i} {wl} {q} 0 readport w={nl.num(rp.w_m)} l={nl.num(rp.l_m)} "
                      f"dvt_a={nl.num(dn + da)} dvt_s={nl.num(dn + ds)}"]
        lines += [".op", ".end"]
        res = simulate("\n".join(lines) + "\n", BLOCK)
        cur = [-float(res.vectors[f"vb{i}#branch"][0]) for i in range(len(rows))]
        out["i_on_nominal_a"].append(cur[0])
        out["i_leak_stored1_a"].append(cur[1])
        out["i_leak_stored0_a"].append(cur[2])
        out["i_on_a"].append(cur[3:])
    return out


def measure_mac(corner_name: str, supplies: dict, keys: list[int], inputs: list[int],
                draws: dict | None = None, design_fields: dict | None = None) -> dict:
    """Bitline voltages at the end of the MAC phase for one key/input vector."""
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    n_cal_rows = Rows.of(design).n_cal   # calibration off; n_cal sets which idle calibration cells store 1
    conv = ColumnConversion(tuple(keys), tuple(inputs), n_cal=min(32, n_cal_rows), n_cal_rows=n_cal_rows,
                            n_elements=design.geometry.n_elements)
    text = column_netlist(conv, corner=corner, supplies=sup, draws=ColumnDraws.from_json(draws, design),
                          with_sa=False, ramp=False, calibration=False, design=design)
    res = simulate(text, BLOCK)
    t_end = tm.active().t_cal0_s - 0.1e-9
    p, n = conv.bitline_units()
    return {"mac_units": conv.mac_units, "p_units": p, "n_units": n,
            "v_rbl_l_v": float(np.interp(t_end, res.time, res.v("rbl_l0"))),
            "v_rbl_r_v": float(np.interp(t_end, res.time, res.v("rbl_r0")))}


def measure_conversion_energy(corner_name: str, supplies: dict, keys: list[int], inputs: list[int],
                              n_cal: int, t_cal_units: int, t_ramp_units: int, design_fields: dict | None = None) -> dict:
    """Bitline energy of one conversion (MAC, calibration, full ramp), without the SA.

    Measured as the charge the precharge supply returns to both bitlines after the
    conversion (E = V_pre·Q), which is where the discharged charge is paid for.
    Wordline energy is separate (per pulse, from the discharge testbench).
    """
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    conv = ColumnConversion(tuple(keys), tuple(inputs), n_cal, t_cal_units, t_ramp_units, Rows.of(design).n_cal,
                            design.geometry.n_elements)
    end = tm.conversion_end_s(True)
    meas = (".save i(vpre)", f".meas tran q_pre INTEG i(vpre) FROM={nl.num(end)} TO={nl.num(end + 2.5e-9)}",)
    text = column_netlist(conv, corner=corner, supplies=sup, with_sa=False, recharge=True, extra=meas,
                          design=design)
    res = simulate(text, BLOCK)
    v_l, v_r = (float(np.interp(end - 0.05e-9, res.time, res.v(n))) for n in ("rbl_l0", "rbl_r0"))
    n_pulses = sum(1 for q in inputs if q != 0) * len(PAIR_SCALES) + n_cal * (t_cal_units > 0) + tm.active().n_ramp_steps
    return {"e_bitline_j": -sup.v_precharge_v * res.measures["q_pre"],
            "activity": sum(1 for q in inputs if q != 0) / len(inputs), "n_wordline_pulses": n_pulses,
            "v_rbl_l_end_v": v_l, "v_rbl_r_end_v": v_r, "v_precharge_v": sup.v_precharge_v,
            "p_units": conv.bitline_units()[0], "n_units": conv.bitline_units()[1]}


def measure_conversion(corner_name: str, supplies: dict, keys: list[int], inputs: list[int],
                       n_cal: int, t_cal_units: int, t_ramp_units: int, draws: dict | None = None,
                       design_fields: dict | None = None) -> dict:
    """End-to-end SPICE conversion with the sense amplifier: the firing cycle and code.

    Also the energy of the conversion's bitlines (charge the precharge supply returns after
    the full 32-step ramp, E = V_pre·Q) and of the sense amplifier over its 32 decisions
    (E = −V_sa·∫i), for the behavioural model's energy check.
    """
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    conv = ColumnConversion(tuple(keys), tuple(inputs), n_cal, t_cal_units, t_ramp_units, Rows.of(design).n_cal,
                            design.geometry.n_elements)
    ck = tm.active()
    end = ck.conversion_end_s(True)
    meas = (".save i(vpre) i(vsa)",
            f".meas tran q_pre INTEG i(vpre) FROM={nl.num(end)} TO={nl.num(end + 2.5e-9)}",
            f".meas tran q_sa INTEG i(vsa) FROM={nl.num(ck.ramp_cycle_start_s(1))} TO={nl.num(end)}")
    text = column_netlist(conv, corner=corner, supplies=sup, draws=ColumnDraws.from_json(draws, design), with_sa=True,
                          recharge=True, extra=meas, design=design)
    res = simulate(text, BLOCK)
    cycle = firing_cycle(res.time, res.v("sa_outp"), sup.v_sa_v)
    instants = [ck.sense_instant_s(j) for j in range(1, ck.n_ramp_steps + 1)]
    v_l = [float(np.interp(ti, res.time, res.v("rbl_l0"))) for ti in instants]
    v_r = [float(np.interp(ti, res.time, res.v("rbl_r0"))) for ti in instants]
    p, n = conv.bitline_units()
    return {"keys": list(conv.keys), "inputs": list(conv.inputs),
            "mac_units": conv.mac_units, "p_units": p, "n_units": n, "firing_cycle": cycle,
            "code": code_from_cycle(cycle), "v_rbl_l_at_sa_clk_v": v_l, "v_rbl_r_at_sa_clk_v": v_r,
            "e_bitline_j": -sup.v_precharge_v * res.measures["q_pre"],
            "e_sa_32_decisions_j": -sup.v_sa_v * res.measures["q_sa"]}
