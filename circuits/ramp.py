"""The in-memory ramp generator: calibration phase on RBL_R and the replica-cell ramp on RBL_L.

Simulated on the full column testbench of :mod:`topkima.circuits.column` (same bitlines,
same replica read ports) without the sense amplifier, so the ramp sees exactly the load it
has in a conversion. Timing generation: the wordline pulse generator (token shift register,
pulse-width generator, 0.5 V drivers and the full wordline load) is simulated at transistor
level by :mod:`topkima.circuits.ramp_timing`; the column testbench drives its wordlines with
trapezoidal sources carrying the generator's measured delay and edge times.

Measured: bitline voltages at every ramp clock's sense instant, from which the step per
cycle, the LSB, INL/DNL over the 32 steps (endpoint fit, in LSB), the starting level set
by the calibration phase, the step's dependence on the bitline level it starts from, and
the step mismatch σ (Monte Carlo over the replica cells' Pelgrom draws).
"""
from __future__ import annotations

import numpy as np

from topkima.circuits import column as col
from topkima.circuits import ramp_timing
from topkima.circuits import timing as tm
from topkima.circuits.column_measure import corner_and_supplies
from topkima.circuits.design import COLUMN_FIELDS, design_with
from topkima.circuits.jobs import Job

BLOCK = "ramp"
NETLISTS = col.NETLISTS


def _pre_discharge_vectors(pre_units: int, n_elements: int = col.N_ELEMENTS) -> tuple[list[int], list[int]]:
    """Keys/inputs (``n_elements`` each) that discharge RBL_L by ``pre_units`` (elements with key 4, input q)."""
    if 4 * col.Q_MAX * n_elements < pre_units:
        raise ValueError(f"pre_units_l = {pre_units} exceeds what {n_elements} key elements can discharge "
                         f"({4 * col.Q_MAX * n_elements} units)")
    keys, inputs = [0] * n_elements, [0] * n_elements
    left, e = int(pre_units), 0
    while left > 0:  # key level 4 stores a 1 in the x4 pair only: 4 units per input step
        keys[e], inputs[e] = 4, min(col.Q_MAX, -(-left // 4))
        left -= 4 * inputs[e]
        e += 1
    return keys, inputs


def measure_ramp(corner_name: str, supplies: dict, n_cal: int, t_cal_units: int, t_ramp_units: int,
                 pre_units_l: int = 0, draws: dict | None = None, design_fields: dict | None = None) -> dict:
    """Bitline voltages at each ramp clock's sense instant (and around the calibration clock);
    ``design`` (None: the 65 nm preset) as in :mod:`topkima.circuits.column_measure`."""
    from topkima.circuits.spice import simulate
    corner, sup = corner_and_supplies(corner_name, supplies)
    design = design_with(design_fields)
    keys, inputs = _pre_discharge_vectors(pre_units_l, design.geometry.n_elements)
    conv = col.ColumnConversion(tuple(keys), tuple(inputs), n_cal, t_cal_units, t_ramp_units, col.Rows.of(design).n_cal,
                                design.geometry.n_elements)
    text = col.column_netlist(conv, corner=corner, supplies=sup, draws=col.ColumnDraws.from_json(draws, design),
                              with_sa=False, design=design)
    res = simulate(text, BLOCK)
    ck = tm.active()
    t_sense = [ck.t_cal0_s - 0.1e-9] + [ck.sense_instant_s(j) for j in range(0, ck.n_ramp_steps + 1)]
    # index 0: before calibration; 1: end of calibration clock (before the first ramp step);
    # 1 + j: after ramp step j
    v_l = [float(np.interp(t, res.time, res.v("rbl_l0"))) for t in t_sense]
    v_r = [float(np.interp(t, res.time, res.v("rbl_r0"))) for t in t_sense]
    return {"t_sense_s": t_sense, "v_rbl_l_v": v_l, "v_rbl_r_v": v_r, "pre_units_l": conv.bitline_units()[0],
            "n_cal": n_cal, "t_cal_units": t_cal_units, "t_ramp_units": t_ramp_units}


def ramp_metrics(run: dict) -> dict:
    """Steps, LSB, INL/DNL (endpoint fit, LSB) and calibration step from one ramp run."""
    v_l = np.asarray(run["v_rbl_l_v"])
    v_r = np.asarray(run["v_rbl_r_v"])
    levels = v_l[1:]                       # before step 1, after steps 1..32
    steps = levels[:-1] - levels[1:]       # 32 steps (V)
    lsb = (levels[0] - levels[-1]) / steps.size   # the run's ramp steps (32 at 65 nm)
    dnl = steps / lsb - 1.0
    inl = (levels[0] - levels) / lsb - np.arange(levels.size)
    return {"steps_v": steps.tolist(), "lsb_v": float(lsb), "dnl_lsb": dnl.tolist(), "inl_lsb": inl.tolist(),
            "dnl_max_lsb": float(dnl.max()), "dnl_min_lsb": float(dnl.min()),
            "inl_max_lsb": float(inl.max()), "inl_min_lsb": float(inl.min()),
            "v_cal_step_v": float(v_r[0] - v_r[1]),
            "v_start_diff_v": float(v_r[1] - v_l[1]),
            "v_rbl_l_start_v": float(levels[0])}


def plan(settings) -> list[Job]:
    adc = settings.design.adc
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict(),
            "n_cal": adc.n_cal, "t_cal_units": adc.t_cal_units, "t_ramp_units": adc.t_ramp_units,
            "design_fields": settings.design.values(COLUMN_FIELDS)}
    jobs = [Job(BLOCK, f"ramp_pre{p:03d}", "topkima.circuits.ramp:measure_ramp", dict(base, pre_units_l=p), NETLISTS)
            for p in ((0, 300) if settings.quick else (0, 100, 200, 300, 400))]
    rng = settings.rng("ramp.step_mismatch")
    for i in range(4 if settings.quick else 24):
        draws = col.ColumnDraws.draw(rng, design=settings.design).to_json()
        # only the replica cells matter here; drop the MAC draws to keep the job small
        draws = {"mac_dvt_v": np.zeros((settings.design.geometry.n_mac_rows, 4, 2)).tolist(), "cal_dvt_v": draws["cal_dvt_v"],
                 "ramp_dvt_v": draws["ramp_dvt_v"], "sa_dvt_v": {}}
        jobs.append(Job(BLOCK, f"ramp_mc{i:03d}", "topkima.circuits.ramp:measure_ramp",
                        dict(base, pre_units_l=0, draws=draws), NETLISTS))
    return jobs + ramp_timing.plan(settings)


def _timing_summary(settings, results: dict) -> dict:
    return ramp_timing.timing_section(settings, {k: v for k, v in results.items() if k.startswith("timing_")})


def artefact_section(settings, results: dict) -> dict:
    """The artefact's ``ramp`` section: steps, LSB, INL/DNL, step mismatch, and the timing generator."""
    nominal = sorted((r for k, r in results.items() if k.startswith("ramp_pre")), key=lambda r: r["pre_units_l"])
    main = ramp_metrics(nominal[0])
    by_level = [{"pre_units_l": r["pre_units_l"], **{k: v for k, v in ramp_metrics(r).items()
                                                      if k in ("lsb_v", "v_rbl_l_start_v", "inl_max_lsb", "inl_min_lsb",
                                                               "dnl_max_lsb", "dnl_min_lsb")}}
                for r in nominal]
    mc = [ramp_metrics(r) for k, r in sorted(results.items()) if k.startswith("ramp_mc")]
    steps = np.array([m["steps_v"] for m in mc]) if mc else np.zeros((0, tm.active().n_ramp_steps))
    nominal_steps = np.asarray(main["steps_v"])
    rel = steps / nominal_steps[None, :] - 1.0 if mc else np.zeros((0, tm.active().n_ramp_steps))
    return {
        "settings": {"n_cal": settings.design.adc.n_cal, "t_cal_units": settings.design.adc.t_cal_units,
                     "t_ramp_units": settings.design.adc.t_ramp_units},
        "timing_generation": "column testbench: trapezoidal wordline pulses with the generator's delay and edges; "
                             "the generator itself (token register, pulse-width generator, 0.5 V drivers, "
                             "wordline load) is characterised at transistor level under 'timing'",
        "timing": _timing_summary(settings, results),
        **main,
        "step_vs_start_level": by_level,
        "step_mismatch": {
            "n_instances": len(mc),
            "step_sigma_rel": float(rel.std(ddof=1)) if rel.size > 1 else None,
            "dnl_spread_max_lsb": [float(np.max(m["dnl_lsb"])) for m in mc],
            "dnl_spread_min_lsb": [float(np.min(m["dnl_lsb"])) for m in mc],
            "inl_spread_max_lsb": [float(np.max(m["inl_lsb"])) for m in mc],
            "inl_spread_min_lsb": [float(np.min(m["inl_lsb"])) for m in mc],
        },
        "reference_measured": {"source": "Yu et al., JSSC 57(11) 2022 (SPEC §2), after calibration",
                               "dnl_max_lsb": 0.314, "dnl_min_lsb": -0.256,
                               "inl_max_lsb": 0.27, "inl_min_lsb": -0.116},
    }


