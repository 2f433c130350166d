"""The calibration artefact: the only thing that crosses from SPICE to the behavioural model.

A JSON document with top-level keys ``schema_version``, ``corner`` (the process corner it
was characterised at, equal to ``provenance.corner``), ``provenance``, ``column``,
``ramp``, ``comparator`` and ``digital``. Every quantity carries its unit in its name
(``_v``, ``_s``, ``_j``, ``_a``, ``_f``, ``_ohm``, ``_units`` = 0.5 ns nominal-cell units,
``_lsb``, ``_rel`` = relative).

This module is the artefact's contract, defined once: :data:`SCHEMA` and :func:`validate`
check the structure and the physics-level sanity of every field the behavioural model reads
(:mod:`topkima.behavioral.params` turns them into typed parameters and checks nothing
itself) and name the first field that fails. A :class:`Calibration` is validated when it is
made, so no unchecked artefact reaches the model. :func:`write_atomic` never leaves a
half-written file behind.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # 2: column.insitu_conversions (column + sense amplifier runs)
DEFAULT_ARTEFACT = "default_calibration.json"

PROVENANCE_KEYS = ("ngspice_version", "pyspice_version", "model_card_sha256", "netlist_sha256", "corner",
                   "temperature_c", "supplies", "seed", "created", "command_line")


class ArtefactError(ValueError):
    """A calibration artefact is missing, corrupt, partial or of another schema version."""


# Required fields: dotted path -> kind. "num" finite number, "pos" > 0, "int" integer,
# "list" non-empty list of finite numbers, "inc"/"dec" strictly increasing/decreasing
# list, "str" string, "dict" mapping, "list2" non-empty list of lists of numbers,
# "records" non-empty list of mappings (their fields are checked in :func:`validate`),
# "names" non-empty list of strings.
SCHEMA: dict[str, dict[str, str]] = {
    "column": {
        "geometry.n_rows": "int", "geometry.n_elements": "int", "geometry.q_max": "int", "geometry.k_max": "int",
        "geometry.n_cal_rows": "int", "geometry.n_ramp_rows": "int",
        "geometry.pair_scales": "list",
        "timing.t_unit_s": "pos", "timing.t_pwm_s": "pos", "timing.t_clk_ima_s": "pos",
        "timing.t_mac_start_s": "pos", "timing.t_cal_start_s": "pos", "timing.t_sa_clk_in_cycle_s": "pos",
        "timing.n_ramp_steps": "int",
        "discharge_curve.units": "inc", "discharge_curve.v_rbl_v": "dec",
        "v_rbl_precharged_v": "pos",
        "pulse_units_fit.slope": "pos", "pulse_units_fit.offset_units": "num",
        "charge_share_units.width_units": "inc", "charge_share_units.units": "list",
        "leakage.v_rbl_v": "dec", "leakage.i_leak_stored1_a": "list", "leakage.i_leak_stored0_a": "list",
        "leakage.i_on_nominal_a": "list",
        "mismatch.v_rbl_v": "dec", "mismatch.i_on_sigma_rel": "list", "mismatch.log_ratio_fit_per_v": "list2",
        "mismatch.sigma_vth_per_device_v": "pos",
        "settling_1pct_s": "num",
        "energy.e_wordline_pulse_j": "pos", "energy.activity": "list", "energy.e_conversion_j": "list",
        "energy.e_bitline_j": "list", "energy.delta_v_sum_v": "list",
        "insitu_conversions.runs": "records", "insitu_conversions.n_cal": "count",
        "insitu_conversions.t_cal_units": "count", "insitu_conversions.t_ramp_units": "count",
        "charge_share_mismatch.width_units": "inc", "charge_share_mismatch.alpha_per_v": "list",
        "charge_share_mismatch.beta_per_v": "list",
    },
    "ramp": {
        "lsb_v": "pos", "steps_v": "list", "inl_lsb": "list", "dnl_lsb": "list", "v_cal_step_v": "num",
        "v_start_diff_v": "num", "step_mismatch.n_instances": "int",
        "settings.n_cal": "int", "settings.t_cal_units": "int", "settings.t_ramp_units": "int",
    },
    "comparator": {
        "offset_sigma_v": "pos", "offset_sigma_ci95_v": "list", "e_per_decision_j": "pos",
        "noise_sigma_v": "pos", "delay_vs_overdrive.overdrive_v": "inc", "delay_vs_overdrive.t_clk_to_q_s": "list",
        "devices": "records", "offset.linear_model.vcm_v": "list", "offset.linear_model.devices": "names",
        "offset.linear_model.intercept_v": "list", "offset.linear_model.sensitivity_v_per_v": "list2",
        "offset.linear_model.residual_sigma_v": "list",
    },
    "digital": {
        "t_arb_total_s": "pos", "corners": "dict",
    },
}


def _get(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check(value: Any, kind: str) -> str | None:
    """Why ``value`` is not of ``kind``, or None."""
    if kind == "num":
        return None if _finite(value) else "must be a finite number"
    if kind == "pos":
        return None if _finite(value) and value > 0 else "must be a positive finite number"
    if kind == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if kind == "count":
        return None if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
            else "must be an integer ≥ 0"
    if kind == "names":
        if not isinstance(value, list) or not value or not all(isinstance(x, str) and x for x in value):
            return "must be a non-empty list of names"
        return None
    if kind == "str":
        return None if isinstance(value, str) and value else "must be a non-empty string"
    if kind == "dict":
        return None if isinstance(value, dict) and value else "must be a non-empty mapping"
    if kind in ("list", "inc", "dec"):
        if not isinstance(value, list) or not value or not all(_finite(x) for x in value):
            return "must be a non-empty list of finite numbers"
        pairs = list(zip(value[:-1], value[1:]))
        if kind == "inc" and not all(b > a for a, b in pairs):
            return "must be strictly increasing"
        if kind == "dec" and not all(b < a for a, b in pairs):
            return "must be strictly decreasing"
        return None
    if kind == "records":
        if not isinstance(value, list) or not value or not all(isinstance(r, dict) and r for r in value):
            return "must be a non-empty list of objects"
        return None
    if kind == "list2":
        if not isinstance(value, list) or not value or not all(
                isinstance(row, list) and row and all(_finite(x) for x in row) for row in value):
            return "must be a non-empty list of lists of finite numbers"
        return None
    raise AssertionError(kind)


def validate(data: Any, source: str = "artefact") -> None:
    """Raise :class:`ArtefactError` naming the first field that is missing or wrong."""
    if not isinstance(data, dict):
        raise ArtefactError(f"{source}: the top level must be a JSON object")
    version = data.get("schema_version")
    if version is None:
        raise ArtefactError(f"{source}: field 'schema_version' is missing")
    if version != SCHEMA_VERSION:
        raise ArtefactError(f"{source}: field 'schema_version' is {version!r}, this topkima reads version "
                            f"{SCHEMA_VERSION}; regenerate it with `topkima calibrate`")
    prov = data.get("provenance")
    if not isinstance(prov, dict):
        raise ArtefactError(f"{source}: field 'provenance' is missing or not an object")
    for key in PROVENANCE_KEYS:
        if key not in prov:
            raise ArtefactError(f"{source}: field 'provenance.{key}' is missing")
    if not isinstance(prov["netlist_sha256"], dict) or not prov["netlist_sha256"]:
        raise ArtefactError(f"{source}: field 'provenance.netlist_sha256' must map netlist files to hashes")
    if "corner" not in data:
        raise ArtefactError(f"{source}: field 'corner' is missing (older artefacts keep it only in provenance.corner); "
                            f"add \"corner\": {json.dumps(prov['corner'])} at the top level or regenerate it with "
                            "`topkima calibrate --corner NAME`")
    if not (isinstance(data["corner"], str) and data["corner"].isalpha()) or data["corner"] != prov["corner"]:
        raise ArtefactError(f"{source}: field 'corner' is {data['corner']!r}, but provenance.corner says "
                            f"{prov['corner']!r}: they must name the same process corner")
    for section, fields in SCHEMA.items():
        if not isinstance(data.get(section), dict):
            raise ArtefactError(f"{source}: section '{section}' is missing or not an object")
        for dotted, kind in fields.items():
            try:
                value = _get(data[section], dotted)
            except KeyError:
                raise ArtefactError(f"{source}: field '{section}.{dotted}' is missing") from None
            why = _check(value, kind)
            if why:
                raise ArtefactError(f"{source}: field '{section}.{dotted}' {why}")
    col = data["column"]
    for table, keys in (("discharge_curve", ("units", "v_rbl_v")),
                        ("charge_share_units", ("width_units", "units")),
                        ("leakage", ("v_rbl_v", "i_leak_stored1_a", "i_leak_stored0_a", "i_on_nominal_a")),
                        ("mismatch", ("v_rbl_v", "i_on_sigma_rel", "log_ratio_fit_per_v")),
                        ("energy", ("activity", "e_conversion_j"))):
        lengths = {k: len(col[table][k]) for k in keys}
        if len(set(lengths.values())) != 1:
            raise ArtefactError(f"{source}: field 'column.{table}' has lists of different lengths {lengths}")
    delay = data["comparator"]["delay_vs_overdrive"]
    if len(delay["overdrive_v"]) != len(delay["t_clk_to_q_s"]):
        raise ArtefactError(f"{source}: field 'comparator.delay_vs_overdrive' has lists of different lengths")
    _validate_energy_vs_overdrive(data["comparator"], source)
    n_measured = _characterised_ramp_steps(data, source)
    if len(data["ramp"]["steps_v"]) != n_measured:
        raise ArtefactError(f"{source}: field 'ramp.steps_v' must hold one step per characterised ramp cycle "
                            f"({n_measured})")
    v_pre = prov["supplies"].get("v_precharge_v") if isinstance(prov["supplies"], dict) else None
    if _check(v_pre, "pos"):
        raise ArtefactError(f"{source}: field 'provenance.supplies.v_precharge_v' must be a positive finite number")
    energy = col["energy"]
    if len(energy["delta_v_sum_v"]) != len(energy["e_bitline_j"]):
        raise ArtefactError(f"{source}: field 'column.energy' has lists of different lengths "
                            "(delta_v_sum_v, e_bitline_j)")
    _validate_insitu_runs(col, source)
    _validate_bitline_droop(col, source)
    _validate_replica_pulse(col, source)
    _validate_mac_pulses(col, source)
    _validate_insitu_extra(col, source)
    _validate_offset_model(data["comparator"], source)


def _characterised_ramp_steps(data: dict, source: str) -> int:
    """The ramp cycles the artefact's measurements hold (ramp.steps_v, the in-situ conversions):
    ``column.timing.n_ramp_steps``, or fewer in a what-if copy (``provenance.what_if`` says what
    was changed in memory, ``column.timing.n_ramp_steps_characterised`` how many were measured).
    Also checks the optional ramp limits ``column.timing.max_t_cal_units`` / ``max_t_ramp_units``."""
    timing = data["column"]["timing"]
    for name in ("max_t_cal_units", "max_t_ramp_units", "n_ramp_steps_characterised"):
        if name in timing and (_check(timing[name], "int") or timing[name] < 1):
            raise ArtefactError(f"{source}: field 'column.timing.{name}' must be a positive integer")
    n_steps = timing["n_ramp_steps"]
    n_measured = timing.get("n_ramp_steps_characterised", n_steps)
    if n_measured != n_steps:
        if n_measured > n_steps:
            raise ArtefactError(f"{source}: field 'column.timing.n_ramp_steps_characterised' ({n_measured}) exceeds "
                                f"the ramp's n_ramp_steps ({n_steps})")
        if _check(data["provenance"].get("what_if"), "str"):
            raise ArtefactError(f"{source}: a ramp of {n_steps} steps characterised on {n_measured} is a what-if: "
                                "field 'provenance.what_if' must say what was changed")
    return n_measured


def _validate_insitu_runs(col: dict, source: str) -> None:
    """Each in-situ conversion: keys, inputs and both bitlines at every sense instant, and a positive SA energy.

    The runs have the column's key elements, or ``insitu_conversions.n_elements`` where a what-if array
    (:func:`topkima.studies.circuit_whatif.variant_array`) keeps the runs measured on another column."""
    n_elements = col["insitu_conversions"].get("n_elements", col["geometry"]["n_elements"])
    if isinstance(n_elements, bool) or not isinstance(n_elements, int) or n_elements < 1:
        raise ArtefactError(f"{source}: field 'column.insitu_conversions.n_elements' must be a positive integer, "
                            f"got {n_elements!r}")
    n_steps = col["timing"].get("n_ramp_steps_characterised", col["timing"]["n_ramp_steps"])
    for i, run in enumerate(col["insitu_conversions"]["runs"]):
        where = f"column.insitu_conversions.runs[{i}]"
        for name, n in (("keys", n_elements), ("inputs", n_elements), ("v_rbl_l_at_sa_clk_v", n_steps),
                        ("v_rbl_r_at_sa_clk_v", n_steps)):
            x = run.get(name)
            if not isinstance(x, list) or len(x) != n or not all(_finite(v) for v in x):
                raise ArtefactError(f"{source}: field '{where}.{name}' must be a list of {n} finite numbers")
        if _check(run.get("e_sa_32_decisions_j"), "pos"):
            raise ArtefactError(f"{source}: field '{where}.e_sa_32_decisions_j' must be a positive number")


def _validate_offset_model(comp: dict, source: str) -> None:
    """The comparator's offset model: one intercept, residual and sensitivity row per common mode, one
    sensitivity per device, and every device in the device table with its Pelgrom σ."""
    lin = comp["offset"]["linear_model"]
    n_vcm, n_dev = len(lin["vcm_v"]), len(lin["devices"])
    if len(lin["intercept_v"]) != n_vcm or len(lin["residual_sigma_v"]) != n_vcm \
            or len(lin["sensitivity_v_per_v"]) != n_vcm or any(len(r) != n_dev for r in lin["sensitivity_v_per_v"]):
        raise ArtefactError(f"{source}: field 'comparator.offset.linear_model' must hold one intercept, residual "
                            "and sensitivity row per common mode, one sensitivity per device")
    sigma = {d.get("name"): d.get("sigma_vth_v") for d in comp["devices"]}
    for name in lin["devices"]:
        if _check(sigma.get(name), "pos"):
            raise ArtefactError(f"{source}: field 'comparator.devices' must list device {name!r} with a positive "
                                "sigma_vth_v")
    _validate_in_column(comp, source)
    _validate_in_column_devices(comp, source)
    _validate_offset_trim(comp, source)


def _validate_offset_trim(comp: dict, source: str) -> None:
    """The optional trimmed offset (``topkima calibrate-trim``): a linear model of the residual over the
    offset model's common modes and devices, and a positive spread and finite mean per common mode."""
    tr = comp.get("offset_trim")
    if tr is None:
        return
    where = f"{source}: field 'comparator.offset_trim"
    if not isinstance(tr, dict) or not isinstance(tr.get("linear_model"), dict) or not isinstance(tr.get("by_vcm"), list):
        raise ArtefactError(f"{where}' must be an object with a linear_model and by_vcm (remake it with "
                            "topkima calibrate-trim)")
    lin, main = tr["linear_model"], comp["offset"]["linear_model"]
    n_vcm, n_dev = len(main["vcm_v"]), len(main["devices"])
    if lin.get("vcm_v") != main["vcm_v"] or lin.get("devices") != main["devices"]:
        raise ArtefactError(f"{where}.linear_model' must have the offset model's common modes and devices")
    for name in ("intercept_v", "residual_sigma_v"):
        x = lin.get(name)
        if not isinstance(x, list) or len(x) != n_vcm or not all(_finite(v) for v in x):
            raise ArtefactError(f"{where}.linear_model.{name}' must be {n_vcm} finite numbers (V)")
    sens = lin.get("sensitivity_v_per_v")
    if not isinstance(sens, list) or len(sens) != n_vcm or any(
            not isinstance(r, list) or len(r) != n_dev or not all(_finite(v) for v in r) for r in sens):
        raise ArtefactError(f"{where}.linear_model.sensitivity_v_per_v' must be {n_vcm} rows of {n_dev} finite numbers")
    if len(tr["by_vcm"]) != n_vcm or any(not isinstance(b, dict) or not _finite(b.get("mean_v")) or _check(b.get("sigma_v"), "pos")
                                         for b in tr["by_vcm"]):
        raise ArtefactError(f"{where}.by_vcm' must hold a finite mean_v and a positive sigma_v per common mode")


def _validate_replica_pulse(col: dict, source: str) -> None:
    """The optional replica cells' pulsed-charge fit (``topkima calibrate-replica-pulse``): five finite
    coefficients of ln(Q/Q0) in the DC fit's terms."""
    rp = col.get("replica_pulse")
    if rp is None:
        return
    fit = rp.get("log_ratio_fit") if isinstance(rp, dict) else None
    if not isinstance(fit, list) or len(fit) != 5 or not all(_finite(x) for x in fit):
        raise ArtefactError(f"{source}: field 'column.replica_pulse.log_ratio_fit' must be five finite numbers "
                            "(ln(Q/Q0) per V and V^2 of da, ds, da^2, ds^2, da*ds; remake it with "
                            "topkima calibrate-replica-pulse)")
    edge = rp.get("edge_per_pulse")
    if edge is not None and (not isinstance(edge, dict) or not all(
            _finite(edge.get(name)) for name in ("e0_access_units_per_v", "e0_storage_units_per_v"))):
        raise ArtefactError(f"{source}: field 'column.replica_pulse.edge_per_pulse' must hold finite numbers "
                            "e0_access_units_per_v and e0_storage_units_per_v (units per V a MAC pulse's edges add; "
                            "remake it with topkima calibrate-replica-pulse)")


def _validate_mac_pulses(col: dict, source: str) -> None:
    """The optional MAC pulses' charge in the MAC phase (``topkima calibrate-mac-pulses``): four finite
    per-pulse excess coefficients (a, b of a + b*ln(w), for stacks storing 1 and 0)."""
    mp = col.get("mac_pulses")
    if mp is None:
        return
    excess = mp.get("excess_units") if isinstance(mp, dict) else None
    if not isinstance(excess, list) or len(excess) != 4 or not all(_finite(x) for x in excess):
        raise ArtefactError(f"{source}: field 'column.mac_pulses.excess_units' must be four finite numbers (units a "
                            "MAC pulse's single-pulse charge exceeds its charge in the MAC phase: a, b of a + b*ln(w) "
                            "for stacks storing 1, then 0; remake it with topkima calibrate-mac-pulses)")


def _validate_insitu_extra(col: dict, source: str) -> None:
    """The optional extra in-situ runs (``topkima add-insitu-runs``): the in-situ runs' window, and per run
    keys, inputs and one finite V(RBL_L), V(RBL_R) per sense instant and a finite decision energy."""
    extra = col.get("insitu_extra")
    if extra is None:
        return
    where = f"{source}: field 'column.insitu_extra"
    own = col.get("insitu_conversions") or {}
    if not isinstance(extra, dict) or not isinstance(extra.get("runs"), list) or not extra["runs"]:
        raise ArtefactError(f"{where}.runs' must list the added conversions (remake it with topkima add-insitu-runs)")
    if any(extra.get(k) != own.get(k) for k in ("n_cal", "t_cal_units", "t_ramp_units")):
        raise ArtefactError(f"{where}' must have the in-situ runs' window (n_cal, t_cal_units, t_ramp_units)")
    n = len(own["runs"][0]["v_rbl_l_at_sa_clk_v"]) if own.get("runs") else None
    for run in extra["runs"]:
        ok = (isinstance(run, dict) and all(isinstance(run.get(k), list) for k in ("keys", "inputs"))
              and all(isinstance(run.get(k), list) and len(run[k]) == n and all(_finite(x) for x in run[k])
                      for k in ("v_rbl_l_at_sa_clk_v", "v_rbl_r_at_sa_clk_v"))
              and _finite(run.get("e_sa_32_decisions_j")))
        if not ok:
            raise ArtefactError(f"{where}.runs' must hold keys, inputs, {n} finite bitline voltages per bitline and a "
                                "finite e_sa_32_decisions_j per run (remake it with topkima add-insitu-runs)")


def _validate_bitline_droop(col: dict, source: str) -> None:
    """The optional bitline droop (``topkima calibrate-droop``): levels in increasing order, one positive
    relative leakage rate each, and a finite reference level."""
    droop = col.get("bitline_droop")
    if droop is None:
        return
    where = f"{source}: field 'column.bitline_droop"
    if not isinstance(droop, dict):
        raise ArtefactError(f"{where}' must be an object (remake it with topkima calibrate-droop)")
    v, rel = droop.get("v_rbl_v"), droop.get("rate_rel")
    if not isinstance(v, list) or len(v) < 2 or not all(_finite(x) for x in v) or any(b <= a for a, b in zip(v, v[1:])):
        raise ArtefactError(f"{where}.v_rbl_v' must list at least two bitline levels (V) in increasing order")
    if not isinstance(rel, list) or len(rel) != len(v) or not all(_finite(x) and x > 0 for x in rel):
        raise ArtefactError(f"{where}.rate_rel' must hold one positive relative leakage rate per level")
    if not _finite(droop.get("v_ref_v")):
        raise ArtefactError(f"{where}.v_ref_v' must be a finite number (V)")


def _validate_energy_vs_overdrive(comp: dict, source: str) -> None:
    """The comparator bench's energy per decision against the input overdrive (optional; the model's
    decision-energy overdrive term reads it): positive overdrives in increasing order, one positive
    energy each, and a positive reference overdrive if one is given."""
    energy = comp.get("energy")
    if not isinstance(energy, dict) or "overdrive_v" not in energy:
        return
    od, e = energy.get("overdrive_v"), energy.get("e_per_decision_j")
    where = f"{source}: field 'comparator.energy"
    if not isinstance(od, list) or len(od) < 2 or not all(_finite(x) and x > 0 for x in od) \
            or any(b <= a for a, b in zip(od, od[1:])):
        raise ArtefactError(f"{where}.overdrive_v' must list at least two positive overdrives (V) in increasing order")
    if not isinstance(e, list) or len(e) != len(od) or not all(_finite(x) and x > 0 for x in e):
        raise ArtefactError(f"{where}.e_per_decision_j' must hold one positive energy (J) per overdrive")
    typical = energy.get("typical_overdrive_v")
    if typical is not None and not (_finite(typical) and typical > 0):
        raise ArtefactError(f"{where}.typical_overdrive_v' must be a positive overdrive (V), the term's reference")


def _validate_in_column(comp: dict, source: str) -> None:
    """The optional in-column threshold (``topkima calibrate-in-column``): a finite nominal threshold
    and common mode, and a finite sensitivity per device of the offset model."""
    ic = comp.get("in_column")
    if ic is None:
        return
    where = f"{source}: field 'comparator.in_column"
    if not isinstance(ic, dict):
        raise ArtefactError(f"{where}' must be an object (remake it with topkima calibrate-in-column)")
    for name in ("threshold_nominal_v", "vcm_v"):
        if not _finite(ic.get(name)):
            raise ArtefactError(f"{where}.{name}' must be a finite number (V)")
    sens = ic.get("sensitivity_v_per_v")
    devices = comp["offset"]["linear_model"]["devices"]
    if not isinstance(sens, dict) or not sens or not all(d in devices and _finite(v) for d, v in sens.items()):
        raise ArtefactError(f"{where}.sensitivity_v_per_v' must map devices of the offset model "
                            f"({', '.join(devices)}) to finite numbers (V/V)")
    plane = ic.get("nominal_shift")
    if plane is not None:
        for name in ("shift_v", "per_v", "per_cycle_v", "vcm0_v", "cycle0"):
            if not isinstance(plane, dict) or not _finite(plane.get(name)):
                raise ArtefactError(f"{where}.nominal_shift.{name}' must be a finite number "
                                    "(remake the field with topkima calibrate-in-column)")


def _validate_in_column_devices(comp: dict, source: str) -> None:
    """The optional in-column sensitivities of the other devices (``topkima calibrate-in-column-devices``):
    only beside ``comparator.in_column``, a finite sensitivity per device of the offset model."""
    icd = comp.get("in_column_devices")
    if icd is None:
        return
    where = f"{source}: field 'comparator.in_column_devices"
    if not comp.get("in_column"):
        raise ArtefactError(f"{where}' needs comparator.in_column (run topkima calibrate-in-column, then "
                            "topkima calibrate-in-column-devices)")
    devices = comp["offset"]["linear_model"]["devices"]
    sens = icd.get("sensitivity_v_per_v") if isinstance(icd, dict) else None
    if not isinstance(sens, dict) or not sens or not all(d in devices and _finite(v) for d, v in sens.items()):
        raise ArtefactError(f"{where}.sensitivity_v_per_v' must map devices of the offset model "
                            f"({', '.join(devices)}) to finite numbers (V/V; remake it with "
                            "topkima calibrate-in-column-devices)")


@dataclass(frozen=True)
class Calibration:
    """A validated calibration artefact (read-only view of the JSON document); validated when made."""

    data: dict
    path: str | None = None

    def __post_init__(self):
        validate(self.data, self.path or "artefact")

    @property
    def schema_version(self) -> int:
        return self.data["schema_version"]

    @property
    def corner(self) -> str:
        """The process corner the artefact was characterised at (tt, ss, ff, sf, fs)."""
        return self.data["corner"]

    @property
    def provenance(self) -> dict:
        return self.data["provenance"]

    @property
    def design(self) -> dict:
        """The design the artefact was characterised for (``provenance.design``, as in the design file).

        Artefacts made before design files (no ``design`` block) are the ``topkima-65nm`` preset's:
        its design is returned for them (read from the shipped preset).
        """
        if "design" in self.provenance:
            return self.provenance["design"]
        from topkima.circuits.design import reference_design   # the preset file only: no SPICE
        return reference_design().to_dict()

    @property
    def design_sha256(self) -> str:
        """SHA-256 of :attr:`design` (recorded, or the 65 nm preset's for older artefacts)."""
        if "design_sha256" in self.provenance:
            return self.provenance["design_sha256"]
        from topkima.circuits.design import reference_design
        return reference_design().sha256()

    @property
    def column(self) -> dict:
        return self.data["column"]

    @property
    def ramp(self) -> dict:
        return self.data["ramp"]

    @property
    def comparator(self) -> dict:
        return self.data["comparator"]

    @property
    def digital(self) -> dict:
        return self.data["digital"]


def default_artefact_path() -> Path:
    return Path(str(resources.files("topkima.calibration").joinpath(DEFAULT_ARTEFACT)))


def load_calibration(path: str | os.PathLike | None = None) -> Calibration:
    """Load and validate an artefact; with no path, the committed default one."""
    path = Path(path) if path is not None else default_artefact_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ArtefactError(f"calibration artefact {path} does not exist; create it with "
                            "`topkima calibrate --out FILE` or omit the path to use the default") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"calibration artefact {path} cannot be read as text: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtefactError(f"{path}: not valid JSON (corrupt or partial file): {exc}") from None
    return Calibration(data, str(path))


def write_atomic(path: str | os.PathLike, data: dict, indent: int | None = 1) -> None:
    """Write JSON to ``path`` atomically (the project's one writer, :mod:`topkima.circuits.files`)."""
    # imported here: reading an artefact (all the behavioural model does) loads nothing of circuits/
    from topkima.circuits.files import write_json_atomic
    write_json_atomic(path, data, indent=indent)
