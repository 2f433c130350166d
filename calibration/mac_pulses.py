"""`topkima calibrate-mac-pulses`: the charge a MAC pulse takes in the MAC phase itself, measured in
ngspice with every device nominal (:mod:`topkima.circuits.mac_nominal`) and added to an artefact as
``column.mac_pulses`` (with its own provenance).

Why: the model gives a pulsed read stack storing 1 ``slope·w + offset`` units and one storing 0 the
charge-share packet ``share(w)``, both measured one pulse at a time on the discharge bench
(``column.pulse_units_fit``, ``column.charge_share_units``). In the MAC phase every pulsed wordline
starts at once on a bitline still at its precharged level. On 120 nominal MAC-phase runs the model's
units at the end of the phase exceed SPICE's by an amount that grows with the *number* of pulses on
the bitline, at the same total units: a bitline reached by many short pulses ends higher in SPICE
than the model says (docs/behavioral-model.md, "The MAC pulses' charge in the MAC phase").

The fit, per bitline of every run that ends the MAC phase at or above :data:`V_MIN_V`: the model's
nominal units (:func:`bitline_pulses`, :func:`nominal_units`: the model's arithmetic, no mismatch)
minus SPICE's (its voltage through the discharge curve, less the model's leakage to that instant,
:func:`leak_units`) is least-squares fitted with

    Σ_stored-1 pulses (a₁ + b₁·ln w) + Σ_stored-0 pulses (a₀ + b₀·ln w) + p(u)

p a cubic in the bitline's model units: a smooth error of the discharge curve that the in-situ
correction (fitted to conversions, :mod:`topkima.behavioral.macro.bitline`) takes up in its own
terms and that is not part of the per-pulse term. The model subtracts a₁ + b₁·ln w from every pulse
of a stack storing 1 and a₀ + b₀·ln w from every charge-share packet
(:meth:`topkima.behavioral.params.MacroParams.mac_pulse_excess`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from topkima.calibration.artefact import load_calibration
from topkima.calibration.artefact_extension import add_measured_section
from topkima.calibration.in_column import settings_of_artefact

#: wall-clock limit per job (s): one MAC-phase transient took ~4 s on a shared core
TIMEOUT_S = 600.0
#: MAC-phase runs (jobs) of the plan (:func:`topkima.circuits.mac_nominal.plan`)
N_VECTORS = 120
#: only bitlines that end the MAC phase at or above this level are fitted: the in-range conversions of
#: the fitting set (calibration/fit_conversions.json) end it at 0.27 … 0.44 V; lower, where a quarter
#: of the runs end (activity 1, keys ±7), the cells leave saturation and the residual grows tenfold
V_MIN_V = 0.25
#: degree of the smooth nuisance p(u) in the bitline's model units
NUISANCE_DEGREE = 3
#: the per-pulse terms, in the order of ``excess_units``
TERMS = ("stored1", "stored1_ln_w", "stored0", "stored0_ln_w")
#: the model's leakage is taken at this bitline level (behavioral.params.params_from_calibration's v_leak_v)
V_LEAK_V = 0.45


def add_mac_pulses(artefact: str | Path | None, out: str | Path | None, *, workers: int = 1,
                   cache_dir: str | Path | None = None, timeout_s: float = TIMEOUT_S, command: str = "") -> dict:
    """Run the MAC-phase jobs for ``artefact`` (None: the committed one), add their section to it and
    write it to ``out`` (None: in place); returns the section."""
    from topkima.circuits import mac_nominal
    cal = load_calibration(artefact)
    settings = settings_of_artefact(cal)
    if settings.corner_name != "tt" or cal.design["name"] != "topkima-65nm":
        raise ValueError(f"{cal.path}: calibrate-mac-pulses is characterised for the topkima-65nm design at tt only "
                         f"(this artefact: {cal.design['name']} at {settings.corner_name})")
    return add_measured_section(cal, settings, mac_nominal.plan(settings, N_VECTORS),
                                lambda r: artefact_section(cal, r, mac_nominal.plan(settings, N_VECTORS)),
                                "column", "mac_pulses", out, workers=workers, cache_dir=cache_dir,
                                timeout_s=timeout_s, command=command)


def bitline_pulses(inputs, keys, scales) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((widths of pulsed stacks storing 1, storing 0) on RBL_L, the same on RBL_R), PWM units.

    Element e with input q ≠ 0 pulses one wordline of each of its pairs (scale s) for |q|·s units;
    that wordline reads one stack on each bitline. The stack on RBL_L stores 1 where
    sign(q)·digit = +1, the one on RBL_R where sign(q)·digit = −1 (digit: sign(k)·bit_s(|k|); the
    wiring of docs/spec.md §2, as in :mod:`topkima.behavioral.macro.mac`)."""
    out = [([], []), ([], [])]
    for q, k in zip(inputs, keys):
        if q == 0:
            continue
        for bit, scale in enumerate(scales):
            w = abs(int(q)) * int(scale)
            digit = int(np.sign(k)) * ((abs(int(k)) >> bit) & 1)
            prod = int(np.sign(q)) * digit
            out[0][0 if prod > 0 else 1].append(w)
            out[1][0 if prod < 0 else 1].append(w)
    return tuple((np.asarray(a, float), np.asarray(b, float)) for a, b in out)


def nominal_units(col: dict, widths_1: np.ndarray, widths_0: np.ndarray) -> float:
    """A bitline's units after the MAC phase with nominal devices, as the model counts them: each pulse
    of a stack storing 1 ``slope·w + offset`` (``column.pulse_units_fit``), each of a stack storing 0 the
    charge-share packet interpolated in ln(w) (``column.charge_share_units``)."""
    fit, share = col["pulse_units_fit"], col["charge_share_units"]
    full = float(np.sum(fit["slope"] * widths_1 + fit["offset_units"]))
    lw = np.log(np.maximum(widths_0, 1.0))
    packets = np.interp(lw, np.log(np.asarray(share["width_units"], float)), np.asarray(share["units"], float))
    return full + float(np.sum(packets))


def leak_units(col: dict, keys, units: float, t_units: float) -> float:
    """Units a bitline has leaked by ``t_units`` after the MAC start, as the model takes them: its idle
    stacks' ``.op`` leakage at :data:`V_LEAK_V` (Σ|digit| stored 1s among the MAC stacks, the rest and
    the replica ports as stored 0s) times the droop's relative rate at its level, the units at the end
    of the MAC phase plus half the leakage (``column.bitline_droop``; :mod:`topkima.behavioral.macro.bitline`)."""
    leak, geo = col["leakage"], col["geometry"]
    v_tab = np.asarray(leak["v_rbl_v"], float)[::-1]
    at = lambda name: float(np.interp(V_LEAK_V, v_tab, np.asarray(leak[name], float)[::-1]))  # noqa: E731
    i_on, i1, i0 = at("i_on_nominal_a"), at("i_leak_stored1_a"), at("i_leak_stored0_a")
    n_stacks = 2 * int(geo["n_elements"]) * len(geo["pair_scales"]) + int(geo["n_cal_rows"]) + int(geo["n_ramp_rows"])
    n1 = sum(bin(abs(int(k))).count("1") for k in keys)
    rate = (i1 * n1 + i0 * (n_stacks - n1)) / i_on
    curve = col["discharge_curve"]
    level = float(np.interp(units + 0.5 * rate * t_units, curve["units"], curve["v_rbl_v"]))
    droop = col.get("bitline_droop")
    rel = 1.0
    if droop:
        v, r = np.asarray(droop["v_rbl_v"], float), np.minimum.accumulate(np.asarray(droop["rate_rel"], float)[::-1])[::-1]
        rel = float(np.interp(level, v, r) / np.interp(V_LEAK_V, v, r))
    return rate * t_units * rel


def t_end_units(col: dict) -> float:
    """The bench's reading instant (0.1 ns before the calibration clock) after the MAC start, PWM units."""
    t = col["timing"]
    return (float(t["t_cal_start_s"]) - 0.1e-9 - float(t["t_mac_start_s"])) / float(t["t_unit_s"])


def excess_rows(col: dict, runs: list[dict]) -> dict:
    """Per bitline of each run: the model's nominal units, SPICE's (through the curve, less leakage), the
    SPICE level, and the per-pulse features (count and Σ ln w of pulses storing 1, then storing 0)."""
    curve = col["discharge_curve"]
    cu, cv = np.asarray(curve["units"], float), np.asarray(curve["v_rbl_v"], float)
    scales = col["geometry"]["pair_scales"]
    t = t_end_units(col)
    model, spice, level, feats = [], [], [], []
    for run in runs:
        for (w1, w0), v in zip(bitline_pulses(run["inputs"], run["keys"], scales), (run["v_rbl_l_v"], run["v_rbl_r_v"])):
            u = nominal_units(col, w1, w0)
            model.append(u)
            spice.append(float(np.interp(-v, -cv, cu)) - leak_units(col, run["keys"], u, t))
            level.append(float(v))
            feats.append([w1.size, float(np.log(w1).sum()), w0.size, float(np.log(w0).sum())])
    return {"model_units": np.array(model), "spice_units": np.array(spice), "v_end_v": np.array(level),
            "features": np.array(feats, float)}


def fit_excess(rows: dict, v_min_v: float = V_MIN_V, degree: int = NUISANCE_DEGREE) -> dict:
    """Least squares of model − SPICE units on the per-pulse features plus a polynomial in the model
    units (module docstring), over the rows at or above ``v_min_v``. Also the residual without the
    per-pulse terms (the polynomial alone) and each row's leave-one-out residual."""
    keep = rows["v_end_v"] >= v_min_v
    u = rows["model_units"][keep] / 100.0
    y = rows["model_units"][keep] - rows["spice_units"][keep]
    smooth = np.column_stack([u ** d for d in range(degree + 1)])
    a = np.column_stack([rows["features"][keep], smooth])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    loo = resid / (1.0 - np.einsum("ij,ji->i", a, np.linalg.pinv(a)))
    c0, *_ = np.linalg.lstsq(smooth, y, rcond=None)
    return {"excess_units": [float(c) for c in coef[:len(TERMS)]],
            "n_bitlines": int(keep.sum()),
            "rms_residual_units": float(np.sqrt(np.mean(resid ** 2))),
            "rms_loo_units": float(np.sqrt(np.mean(loo ** 2))),
            "rms_residual_without_units": float(np.sqrt(np.mean((y - smooth @ c0) ** 2)))}


def artefact_section(cal, results: dict, jobs) -> dict:
    """The ``column.mac_pulses`` field from the jobs' results (by label) and their inputs."""
    col = cal.column
    runs = [{"label": j.label, "keys": list(j.kwargs["keys"]), "inputs": list(j.kwargs["inputs"]),
             "v_rbl_l_v": results[j.label]["v_rbl_l_v"], "v_rbl_r_v": results[j.label]["v_rbl_r_v"]} for j in jobs]
    fit = fit_excess(excess_rows(col, runs))
    return {
        "method": "MAC phase alone (circuits/mac_nominal.py), every device nominal; per bitline, model units "
                  "minus SPICE's (V at 0.1 ns before the calibration clock through the discharge curve, less the "
                  "model's leakage) least-squares fitted with per-pulse terms a + b*ln(w) for stacks storing 1 "
                  "and 0, plus a polynomial in the model units (calibration/mac_pulses.py)",
        "terms": list(TERMS), **fit,
        "v_min_v": V_MIN_V, "nuisance_degree": NUISANCE_DEGREE, "t_end_units": t_end_units(col),
        "runs": runs,
    }
