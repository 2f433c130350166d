"""The column's calibration: its jobs, and the artefact's ``column`` section fitted from them.

Fitted here: the discharge curve (V(RBL) against accumulated nominal-cell units, idle-stack
leakage removed), the effective units of a pulse against its width, the charge-share packet
of a stack storing 0 and its mismatch sensitivity, the read-stack current's mismatch
sensitivity, the MAC sweep's line, and the energy tables.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from topkima.circuits import comparator
from topkima.circuits.column import BLOCK, K_MAX, NETLISTS, PAIR_SCALES, Q_MAX, Rows, random_vectors
from topkima.circuits.design import COLUMN_FIELDS
from topkima.circuits.jobs import Job
from topkima.circuits.mismatch import a_vt_of, draw_dvth_v, sigma_vth_v
from topkima.circuits import timing as tm

_MEASURE = "topkima.circuits.column_measure:"


def _job(label: str, fn: str, **kwargs):
    return Job(BLOCK, label, f"{_MEASURE}{fn}", kwargs, NETLISTS)


def cell_current_voltages(v_precharge_v: float) -> list[float]:
    """Bitline voltages of the cell-current sweep: the precharge level down to a tenth of it in tenths
    (0.5, 0.45, … 0.05 V for the 65 nm preset's 0.5 V precharge)."""
    return [round(v_precharge_v * (10 - i) / 10, 9) for i in range(10)]


def plan(settings) -> list:
    """Discharge curves, cell currents (with Monte Carlo), MAC sweep and energy vs activity."""
    design = settings.design
    rp, adc, a_n = design.sizes.read_port, design.adc, a_vt_of(design, "n")
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(), "design_fields": design.values(COLUMN_FIELDS)}
    ck = tm.active()   # the design's clocks (calibrate.plan_all makes them active)
    pulses = [1, 2, 4, 8, 16, 31, 62, 124] if settings.quick else [1, 2, 3, 4, 6, 8, 12, 16, 24, 31, 62, 124]
    t_pulses = sum(pulses) * ck.t_unit_s + len(pulses) * 1e-9 + ck.t_mac0_s + 1e-9
    t_pulses *= 2  # the same widths again on stacks storing 0
    # the curve's cells are MAC cells: a design with fewer than 16 MAC rows uses all it has
    n_on = sorted({min(n, Rows.of(design).n_mac) for n in ((16,) if settings.quick else (4, 16))})
    jobs = [_job(f"discharge_n{n}", "measure_discharge", n_on_l=n, pulses_r_units=pulses, share_r_units=pulses,
                 tstop_s=max(t_pulses, ck.t_mac0_s + 1600 * ck.t_unit_s / n), **base)
            for n in n_on]
    dvt = draw_dvth_v(settings.rng("column.cell_mismatch"), "n", rp.w_m, rp.l_m, (settings.mc_samples, 2), a_n)
    jobs.append(_job("cell_currents", "measure_cell_currents", dvt_v=dvt.round(9).tolist(),
                     v_rbl_v=cell_current_voltages(settings.supplies.v_precharge_v), **base))
    rng = settings.rng("column.mac_sweep")
    n_sweep = 4 if settings.quick else 16
    for i in range(n_sweep):
        # realistic activity and magnitudes: half the inputs non-zero, |q| ≤ 12, |k| ≤ 4
        keys, inputs = random_vectors(rng, 0.5, q_max=12, k_max=4, n_elements=design.geometry.n_elements)
        jobs.append(_job(f"mac_{i:02d}", "measure_mac", keys=keys, inputs=inputs, **base))
    rng = settings.rng("column.energy")
    for activity in ((0.0, 0.5) if settings.quick else (0.0, 0.25, 0.5, 1.0)):
        keys, inputs = random_vectors(rng, activity, q_max=12, k_max=4, n_elements=design.geometry.n_elements)
        jobs.append(_job(f"energy_a{int(activity * 100):03d}", "measure_conversion_energy", keys=keys, inputs=inputs,
                         n_cal=adc.n_cal, t_cal_units=adc.t_cal_units, t_ramp_units=adc.t_ramp_units, **base))
    # charge-share packets of stacks storing 0 with mismatch: one nominal run, then draws
    share_widths = [1, 2, 4, 8, 16, 31, 62, 124] if settings.quick else [1, 2, 3, 4, 6, 8, 12, 16, 24, 31, 62, 124]
    t_share = ck.t_mac0_s + 2e-9 + sum(share_widths) * ck.t_unit_s + len(share_widths) * 1e-9
    dvt_share = draw_dvth_v(settings.rng("column.share_mismatch"), "n", rp.w_m, rp.l_m,
                            (N_SHARE_MISMATCH[bool(settings.quick)], 2), a_n)
    for i, dvt in enumerate([(0.0, 0.0)] + [tuple(x) for x in dvt_share.round(7).tolist()]):
        jobs.append(_job(f"share_mm_{i:02d}", "measure_discharge", n_on_l=0, pulses_r_units=[],
                         share_r_units=share_widths, tstop_s=t_share, pulse_dvt_v=list(dvt), **base))
    jobs += plan_insitu(settings, base)
    return jobs


#: Monte Carlo draws of the charge-share packet's mismatch [ours: enough for a 2-term linear fit per width]
N_SHARE_MISMATCH = {True: 8, False: 24}


#: End-to-end conversions with the sense amplifier attached, nominal devices [ours: enough
#: runs that a 5-term linear correction per bitline is fitted with ~30 points per term].
N_INSITU_RUNS = {True: 6, False: 12}


def plan_insitu(settings, base: dict) -> list:
    """Nominal end-to-end conversions (column + sense amplifier, as in the macro).

    The bitline voltages at every sense instant are what the comparator really sees: the
    sense amplifier in reset couples the two floating bitlines through its input pair's
    common source, its first evaluation leaves a kick residue, and its input capacitance
    changes the swing. The behavioural model fits its in-situ bitline correction and the
    sense amplifier's energy per decision against the common mode from these runs
    (:mod:`topkima.behavioral.params`). Inputs have the golden conversions' statistics but an
    independent random stream, so the golden test is not fitted to.
    """
    rng = settings.rng("column.insitu")
    adc = settings.design.adc
    jobs = []
    for i in range(N_INSITU_RUNS[bool(settings.quick)]):
        keys, inputs = random_vectors(rng, 0.5, q_max=12, k_max=4, n_elements=settings.design.geometry.n_elements)
        jobs.append(Job(BLOCK, f"insitu_{i:02d}", _MEASURE + "measure_conversion",
                        dict(base, keys=keys, inputs=inputs, n_cal=adc.n_cal, t_cal_units=adc.t_cal_units,
                             t_ramp_units=adc.t_ramp_units),
                        NETLISTS + comparator.NETLISTS))
    return jobs


def leak_units_per_unit_time(idle: dict, currents: dict, v_rbl: np.ndarray, bitline: str) -> np.ndarray:
    """Leakage of a bitline's idle stacks in nominal-cell units per PWM unit, at V(RBL)."""
    v = np.asarray(currents["v_rbl_v"])[::-1]
    i_on = np.interp(v_rbl, v, np.asarray(currents["i_on_nominal_a"])[::-1])
    i1 = np.interp(v_rbl, v, np.asarray(currents["i_leak_stored1_a"])[::-1])
    i0 = np.interp(v_rbl, v, np.asarray(currents["i_leak_stored0_a"])[::-1])
    return (idle.get(f"{bitline}1", 0) * i1 + idle.get(f"{bitline}0", 0) * i0) / i_on


def discharge_curve(run: dict, currents: dict) -> tuple[np.ndarray, np.ndarray]:
    """f: V(RBL) against accumulated nominal-cell units, leakage of the idle stacks included.

    U(t) = ∫ (n_on + Λ(V)) dt / t_unit (the active clocks' PWM unit), Λ the idle stacks' leakage in cell units.
    """
    t = np.asarray(run["t_grid_s"])
    v = np.asarray(run["v_rbl_v"])
    rate = run["n_on_l"] + leak_units_per_unit_time(run["idle_stacks"], currents, v, "l")
    units = (rate[0] * t[0] + np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])) / tm.active().t_unit_s
    # The curve's cells were already on at the precharge release, so it starts a few units
    # below the level a conversion starts from (their current flowed through the precharge
    # switch): prepend that level at U = 0, continuing the curve's initial slope.
    v0 = float(run["v_released_v"])
    clean = (units > units[0] + 15) & (units < units[0] + 80)   # past the release transient
    slope, intercept = np.polyfit(units[clean], v[clean], 1)
    shift = (v0 - intercept) / -slope           # where the clean line meets the starting level
    keep_from = units + shift > 0
    units = np.concatenate([[0.0], units[keep_from] + shift])
    v = np.concatenate([[v0], v[keep_from]])
    keep = np.concatenate([[True], (np.diff(v) < 0) & (units[1:] > 0)])  # strictly decreasing
    return units[keep], v[keep]


def fit_cell_current_mismatch(currents: dict):
    """Read-stack current mismatch: each Monte Carlo stack's current relative to nominal at every
    bitline voltage, its σ with a 95 % chi-square interval, and per voltage the least-squares fit
    ln(I/I0) = a·Δa + b·Δs + c·Δa² + d·Δs² + e·Δa·Δs (Δa, Δs: access/storage delvto, V).

    Returns (ratio (n_v, n_mc), draws (n_mc, 2), [a..e] per voltage, σ_rel per voltage, CI per voltage).
    """
    i_on = np.asarray(currents["i_on_a"])                       # (n_v, n_mc)
    ratio = i_on / np.asarray(currents["i_on_nominal_a"])[:, None]
    dvt = np.asarray(currents["dvt_v"])
    basis = np.column_stack([dvt[:, 0], dvt[:, 1], dvt[:, 0] ** 2, dvt[:, 1] ** 2, dvt[:, 0] * dvt[:, 1]])
    sens = [np.linalg.lstsq(basis, np.log(r), rcond=None)[0].tolist() for r in ratio]
    sigma_rel = ratio.std(axis=1, ddof=1)
    n_mc = ratio.shape[1]
    chi = stats.chi2.ppf([0.975, 0.025], n_mc - 1)
    ci = [[float(s * np.sqrt((n_mc - 1) / chi[0])), float(s * np.sqrt((n_mc - 1) / chi[1]))] for s in sigma_rel]
    return ratio, dvt, sens, sigma_rel, ci


def timing_section(ck: "tm.Clocks") -> dict:
    """The artefact's ``column.timing``: the clocks the column was simulated with, which the behavioural
    model reads (topkima.behavioral.params: sense instants, latency, the ADC window's pulse limits)."""
    return {
        "t_unit_s": ck.t_unit_s, "t_pwm_s": ck.t_pwm_s, "t_clk_ima_s": ck.t_clk_ramp_s, "t_edge_s": ck.t_wl_edge_s,
        "t_mac_start_s": ck.t_mac0_s, "t_cal_start_s": ck.t_cal0_s, "t_pulse_delay_s": ck.t_pulse_delay_s,
        "t_sa_clk_in_cycle_s": ck.t_sa_clk_s, "n_ramp_steps": ck.n_ramp_steps,
        # the ADC window's pulse limits (topkima.behavioral.macro.ramp_limits)
        "max_t_cal_units": ck.max_cal_units, "max_t_ramp_units": ck.max_ramp_units,
    }


def artefact_section(settings, results: dict) -> dict:
    """The artefact's ``column`` section, fitted from the block's measurements."""
    design = settings.design
    rp = design.sizes.read_port
    ck = tm.active()   # the design's clocks (calibrate.run_calibration makes them active)
    rows = Rows.of(design)
    currents = results["cell_currents"]
    runs = sorted((r for k, r in results.items() if k.startswith("discharge_")), key=lambda r: r["n_on_l"])
    main = runs[-1]
    units, v_curve = discharge_curve(main, currents)
    # Resample on a fixed grid of units down to where the bitline is within 5 mV of ground.
    u_max = float(np.interp(-0.005, -v_curve, units))
    grid = np.linspace(0.0, u_max, 257)
    v_grid = np.interp(grid, units, v_curve)
    dv_per_unit = -np.gradient(v_grid, grid)
    def curve_units_at_v(volts):  # the curve inverted: accumulated units at a bitline voltage
        return np.interp(-np.asarray(volts), -v_curve, units)

    # Single pulses expressed in curve units, leakage during the measuring window removed.
    before, after = np.asarray(main["v_before_v"]), np.asarray(main["v_after_v"])
    leak_r = leak_units_per_unit_time(main["idle_stacks"], currents, 0.5 * (before + after), "r")
    eff_all = curve_units_at_v(after) - curve_units_at_v(before) - leak_r * np.asarray(main["pulse_window_s"]) / ck.t_unit_s
    stored = np.asarray(main["pulse_stored"])
    widths = np.asarray(main["pulse_units"], float)[stored == 1]
    eff, share = eff_all[stored == 1], eff_all[stored == 0]
    share_widths = np.asarray(main["pulse_units"], float)[stored == 0]
    slope, offset = np.polyfit(widths, eff, 1)
    ratio, dvt, sens, sigma_rel, ci = fit_cell_current_mismatch(currents)
    n_mc = ratio.shape[1]
    mac = sorted((r for k, r in results.items() if k.startswith("mac_")), key=lambda r: r["mac_units"])
    mac_units = np.array([r["mac_units"] for r in mac], float)
    v_diff = np.array([r["v_rbl_r_v"] - r["v_rbl_l_v"] for r in mac])
    fit = np.polyfit(mac_units, v_diff, 1) if len(mac) >= 2 else np.array([np.nan, np.nan])
    energy = sorted((r for k, r in results.items() if k.startswith("energy_")), key=lambda r: r["activity"])
    e_wl = main["e_wordline_pulse_j"]
    insitu = [results[k] for k in sorted(results) if k.startswith("insitu_")]
    share_mm = [results[k] for k in sorted(results) if k.startswith("share_mm_")]
    return {
        "geometry": {
            "n_rows": rows.n_rows, "n_mac_rows": rows.n_mac, "n_cal_rows": rows.n_cal, "n_ramp_rows": rows.n_ramp,
            "n_elements": design.geometry.n_elements, "pair_scales": list(PAIR_SCALES),
            "row_order": f"ramp 0-{rows.n_ramp - 1}, cal {rows.cal_row0}-{rows.mac_row0 - 1}, MAC {rows.mac_row0}-{rows.n_rows - 1}",
            "r_wire_per_row_ohm": design.geometry.r_wire_row_ohm, "c_wire_per_row_f": design.geometry.c_wire_row_f,
            "w_read_m": rp.w_m, "l_read_m": rp.l_m, "q_max": Q_MAX, "k_max": K_MAX,
        },
        "timing": timing_section(ck),
        "discharge_curve": {
            "units": grid.tolist(), "v_rbl_v": v_grid.tolist(),
            "note": f"V(RBL) after U nominal-cell units (one cell on for {ck.t_unit_s * 1e9:g} ns), leakage of idle stacks removed",
            "n_cells_on": main["n_on_l"],
        },
        "unit_step_vs_v_rbl": {"v_rbl_v": v_grid[::8].tolist(), "dv_per_unit_v": dv_per_unit[::8].tolist()},
        "v_rbl_precharged_v": float(v_grid[0]),
        "pulse_units_fit": {"slope": float(slope), "offset_units": float(offset),
                            "width_units": widths.tolist(), "effective_units": eff.tolist()},
        "charge_share_units": {
            "width_units": share_widths.tolist(), "units": share.tolist(),
            "v_rbl_v": (0.5 * (before + after))[stored == 0].tolist(),
            "note": "charge a pulsed stack storing 0 takes from its bitline (its internal node charging "
                    "through the open access device), in nominal-cell units, per wordline pulse"},
        "curve_consistency": [
            {"n_cells_on": r["n_on_l"],
             "max_dev_from_main_v": float(np.max(np.abs(np.interp(grid[grid < u_max * 0.9], *discharge_curve(r, currents))
                                                      - v_grid[grid < u_max * 0.9])))}
            for r in runs],
        "leakage": {"v_rbl_v": currents["v_rbl_v"], "i_leak_stored1_a": currents["i_leak_stored1_a"],
                    "i_leak_stored0_a": currents["i_leak_stored0_a"], "i_on_nominal_a": currents["i_on_nominal_a"]},
        "mismatch": {
            "v_rbl_v": currents["v_rbl_v"], "i_on_sigma_rel": sigma_rel.tolist(), "i_on_sigma_rel_ci95": ci,
            "n_samples": int(n_mc), "a_vt_v_m": a_vt_of(design, "n"),
            "sigma_vth_per_device_v": float(sigma_vth_v("n", rp.w_m, rp.l_m, a_vt_of(design, "n"))),
            "ratio_samples": ratio.tolist(), "dvt_samples_v": dvt.tolist(),
            "log_ratio_fit_terms": ["d_access", "d_storage", "d_access^2", "d_storage^2", "d_access*d_storage"],
            "log_ratio_fit_per_v": sens,
        },
        "settling_1pct_s": float(max(main["settle_1pct_s"])),
        "mac_sweep": {"mac_units": mac_units.tolist(), "p_units": [r["p_units"] for r in mac],
                      "n_units": [r["n_units"] for r in mac], "v_diff_v": v_diff.tolist(),
                      "linear_fit_v_per_unit": float(fit[0]), "linear_fit_offset_v": float(fit[1]),
                      "max_dev_from_line_v": float(np.max(np.abs(np.polyval(fit, mac_units) - v_diff))) if len(mac) >= 2 else None},
        "energy": {"e_wordline_pulse_j": e_wl,
                   "activity": [r["activity"] for r in energy],
                   "e_bitline_j": [r["e_bitline_j"] for r in energy],
                   "delta_v_sum_v": [2 * r["v_precharge_v"] - r["v_rbl_l_end_v"] - r["v_rbl_r_end_v"] for r in energy],
                   "n_wordline_pulses": [r["n_wordline_pulses"] for r in energy],
                   "e_conversion_j": [r["e_bitline_j"] + e_wl * r["n_wordline_pulses"] for r in energy],
                   "note": f"per column, one conversion (MAC, calibration, {rows.n_ramp} ramp steps), sense amplifier excluded"},
        "charge_share_mismatch": fit_share_mismatch(share_mm, curve_units_at_v, currents) if share_mm else None,
        "insitu_conversions": {
            "note": "nominal column + sense amplifier, end to end (plan_insitu); bitline voltages at each of "
                    f"the {rows.n_ramp} sense instants, the sense amplifier's energy over its {rows.n_ramp} decisions",
            "n_cal": design.adc.n_cal, "t_cal_units": design.adc.t_cal_units, "t_ramp_units": design.adc.t_ramp_units,
            "runs": [{key: r[key] for key in ("keys", "inputs", "p_units", "n_units", "firing_cycle",
                                               "v_rbl_l_at_sa_clk_v", "v_rbl_r_at_sa_clk_v",
                                               "e_sa_32_decisions_j", "e_bitline_j")} for r in insitu],
        },
    }


def fit_share_mismatch(runs: list[dict], curve_units_at_v, currents: dict) -> dict:
    """The charge-share packet of a stack storing 0 against its threshold shifts.

    Each run pulses fresh stacks storing 0 (one per width) whose access and storage devices
    carry the run's (Δa, Δs); run 0 is nominal. Each packet is the bitline's change in curve
    units minus the idle stacks' leakage over its window (as for the main packet table); per
    width, packet / nominal packet is fitted as 1 + α·Δa + β·Δs (least squares over the draws).
    """
    packets = []
    for r in runs:
        before, after = np.asarray(r["v_before_v"]), np.asarray(r["v_after_v"])
        leak = leak_units_per_unit_time(r["idle_stacks"], currents, 0.5 * (before + after), "r")
        packets.append(curve_units_at_v(after) - curve_units_at_v(before) - leak * np.asarray(r["pulse_window_s"]) / tm.active().t_unit_s)
    nominal = packets[0]
    dvt = np.array([r["pulse_dvt_v"] for r in runs[1:]])
    ratio = np.array(packets[1:]) / nominal[None, :]
    basis = np.column_stack([dvt[:, 0], dvt[:, 1]])
    coef, *_ = np.linalg.lstsq(basis, ratio - 1.0, rcond=None)
    resid = ratio - 1.0 - basis @ coef
    return {"width_units": list(runs[0]["pulse_units"]), "alpha_per_v": coef[0].tolist(), "beta_per_v": coef[1].tolist(),
            "nominal_packet_units": nominal.tolist(),
            "ratio_sigma_rel": ratio.std(axis=0, ddof=1).tolist(), "fit_residual_rel": resid.std(axis=0, ddof=1).tolist(),
            "n_draws": int(len(runs) - 1),
            "note": "packet / nominal packet = 1 + alpha*d_access + beta*d_storage (d in V), per pulse width; "
                    "packets net of the idle stacks' leakage"}
