"""Behavioural-model parameters, read from the calibration artefact only (never from SPICE).

Everything here is a number or a table measured by ``topkima calibrate``; the physics they
feed is documented in :mod:`topkima.behavioral.macro`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topkima.calibration import ArtefactError, Calibration


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True)
class MacroParams:
    """Calibrated parameters of one Topkima column/macro (units in names)."""

    # geometry and timing
    n_elements: int
    pair_scales: tuple[int, ...]
    q_max: int
    k_max: int
    n_ramp_steps: int
    t_unit_s: float
    t_pwm_s: float
    t_clk_ima_s: float
    t_cal_start_s: float
    t_mac_start_s: float
    t_sa_clk_in_cycle_s: float
    # bitline physics
    curve_units: np.ndarray          #: accumulated nominal-cell units
    curve_v: np.ndarray              #: V(RBL) after those units (decreasing)
    pulse_slope: float               #: effective units per nominal unit of a pulse storing 1
    pulse_offset_units: float        #: effective units added per pulse storing 1
    share_width_units: np.ndarray    #: pulse widths of the charge-share table
    share_units: np.ndarray          #: units a pulsed stack storing 0 takes, per pulse
    share_mm_width_units: np.ndarray  #: widths of the packet's mismatch table
    share_alpha_per_v: np.ndarray    #: packet / nominal = 1 + α·Δa + β·Δs (access, storage threshold shifts)
    share_beta_per_v: np.ndarray
    leak1_units_per_unit: float      #: idle stack storing 1: leakage in cell units per PWM unit
    leak0_units_per_unit: float      #: idle stack storing 0
    log_ratio_fit: np.ndarray        #: ln(I/I0) = a·Δa + b·Δs + c·Δa² + d·Δs² + e·Δa·Δs
    sigma_vth_read_v: float          #: Pelgrom σ of one read-port device
    # ramp
    n_cal: int
    t_cal_units: int
    t_ramp_units: int
    lsb_v: float
    # comparator: V_os(CM) = intercept + Σ_i s_i·ΔV_th,i at each CM of the grid
    sa_offset_sigma_v: float
    sa_noise_sigma_v: float
    e_per_decision_j: float
    sa_vcm_v: np.ndarray             #: common-mode grid of the offset model (increasing)
    sa_intercept_v: np.ndarray       #: (n_vcm,)
    sa_sensitivity: np.ndarray       #: (n_vcm, n_devices) V of offset per V of delvto
    sa_residual_sigma_v: np.ndarray  #: (n_vcm,) spread the linear model does not explain
    sa_device_sigma_vth_v: np.ndarray  #: (n_devices,) Pelgrom σ of each comparator device
    sa_devices: tuple[str, ...]
    #: nominal column + sense-amplifier conversions (artefact ``column.insitu_conversions.runs``):
    #: the model fits its in-situ bitline correction and e_decision(CM) to them (macro.py)
    insitu: tuple[tuple[dict, ...], tuple[int, int, int]]  #: (runs, their (n_cal, t_cal_units, t_ramp_units))
    # energy and latency events
    e_wordline_pulse_j: float
    c_bitline_eff_f: float           #: effective bitline capacitance for the restore energy
    v_precharge_v: float
    digital: dict

    def v_of_units(self, units: np.ndarray) -> np.ndarray:
        """The discharge curve f: bitline voltage after ``units`` accumulated units."""
        return np.interp(units, self.curve_units, self.curve_v)

    def units_of_v(self, v: np.ndarray) -> np.ndarray:
        """Inverse of the discharge curve."""
        return np.interp(-np.asarray(v), -self.curve_v, self.curve_units)

    def share(self, width_units: np.ndarray) -> np.ndarray:
        """Charge-share units of a pulsed stack storing 0, interpolated in log(width)."""
        w = np.maximum(np.asarray(width_units, dtype=float), 1.0)
        return np.interp(np.log(w), np.log(self.share_width_units), self.share_units)

    def share_mismatch(self, width_units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(α, β) of the charge-share packet at each pulse width, interpolated in log(width)."""
        lw = np.log(np.maximum(np.asarray(width_units, dtype=float), 1.0))
        lg = np.log(self.share_mm_width_units)
        return np.interp(lw, lg, self.share_alpha_per_v), np.interp(lw, lg, self.share_beta_per_v)

    def current_factor(self, d_access_v: np.ndarray, d_storage_v: np.ndarray) -> np.ndarray:
        """Read-stack current relative to nominal for threshold shifts of its two devices."""
        a, b, c, d, e = self.log_ratio_fit
        da, ds = d_access_v, d_storage_v
        return np.exp(a * da + b * ds + c * da * da + d * ds * ds + e * da * ds)


def params_from_calibration(cal: Calibration, v_mid_v: float = 0.35, v_leak_v: float = 0.45) -> MacroParams:
    """Build :class:`MacroParams` from a validated artefact.

    The mismatch sensitivity is taken at ``v_mid_v``, the middle of the bitline range the
    conversions use (it hardly depends on V(RBL): see the artefact's table). Leakage, which
    does (≈2.5× from 0.35 to 0.5 V), is taken at ``v_leak_v``, where the bitlines spend the
    ramp near the top of the ADC window; with it the modelled LSB matches the SPICE ramp's
    (2.243 vs 2.245 mV), against 2.207 mV at 0.35 V.
    """
    col, ramp, comp = cal.column, cal.ramp, cal.comparator
    try:
        leak = col["leakage"]
        v_tab = _arr(leak["v_rbl_v"])[::-1]
        i_on = np.interp(v_leak_v, v_tab, _arr(leak["i_on_nominal_a"])[::-1])
        i1 = np.interp(v_leak_v, v_tab, _arr(leak["i_leak_stored1_a"])[::-1])
        i0 = np.interp(v_leak_v, v_tab, _arr(leak["i_leak_stored0_a"])[::-1])
        mm = col["mismatch"]
        fits = _arr(mm["log_ratio_fit_per_v"])
        v_mm = _arr(mm["v_rbl_v"])
        fit = np.array([np.interp(v_mid_v, v_mm[::-1], fits[::-1, i]) for i in range(fits.shape[1])])
        energy = col["energy"]
        c_eff = _effective_bitline_capacitance(energy, col)
        timing, geo = col["timing"], col["geometry"]
        lin = comp["offset"]["linear_model"]
        order = np.argsort(lin["vcm_v"])
        sigma_dev = {d["name"]: d["sigma_vth_v"] for d in comp["devices"]}
        return MacroParams(
            n_elements=int(geo["n_elements"]), pair_scales=tuple(int(x) for x in geo["pair_scales"]),
            q_max=int(geo["q_max"]), k_max=int(geo["k_max"]), n_ramp_steps=int(timing["n_ramp_steps"]),
            t_unit_s=float(timing["t_unit_s"]), t_pwm_s=float(timing["t_pwm_s"]),
            t_clk_ima_s=float(timing["t_clk_ima_s"]), t_cal_start_s=float(timing["t_cal_start_s"]),
            t_mac_start_s=float(timing["t_mac_start_s"]),
            t_sa_clk_in_cycle_s=float(timing["t_sa_clk_in_cycle_s"]),
            curve_units=_arr(col["discharge_curve"]["units"]), curve_v=_arr(col["discharge_curve"]["v_rbl_v"]),
            pulse_slope=float(col["pulse_units_fit"]["slope"]),
            pulse_offset_units=float(col["pulse_units_fit"]["offset_units"]),
            share_width_units=_arr(col["charge_share_units"]["width_units"]),
            share_units=_arr(col["charge_share_units"]["units"]),
            share_mm_width_units=_arr(col["charge_share_mismatch"]["width_units"]),
            share_alpha_per_v=_arr(col["charge_share_mismatch"]["alpha_per_v"]),
            share_beta_per_v=_arr(col["charge_share_mismatch"]["beta_per_v"]),
            leak1_units_per_unit=float(i1 / i_on), leak0_units_per_unit=float(i0 / i_on),
            log_ratio_fit=fit, sigma_vth_read_v=float(mm["sigma_vth_per_device_v"]),
            n_cal=int(ramp["settings"]["n_cal"]), t_cal_units=int(ramp["settings"]["t_cal_units"]),
            t_ramp_units=int(ramp["settings"]["t_ramp_units"]), lsb_v=float(ramp["lsb_v"]),
            sa_offset_sigma_v=float(comp["offset_sigma_v"]), sa_noise_sigma_v=float(comp["noise_sigma_v"]),
            e_per_decision_j=float(comp["e_per_decision_j"]),
            sa_vcm_v=_arr(lin["vcm_v"])[order], sa_intercept_v=_arr(lin["intercept_v"])[order],
            sa_sensitivity=_arr(lin["sensitivity_v_per_v"])[order],
            sa_residual_sigma_v=_arr(lin["residual_sigma_v"])[order],
            sa_device_sigma_vth_v=_arr([sigma_dev[n] for n in lin["devices"]]),
            sa_devices=tuple(lin["devices"]),
            e_wordline_pulse_j=float(energy["e_wordline_pulse_j"]), c_bitline_eff_f=c_eff,
            v_precharge_v=float(cal.provenance["supplies"]["v_precharge_v"]),
            digital=cal.digital,
            insitu=_insitu_runs(col, int(geo["n_elements"]), int(timing["n_ramp_steps"])),
        )
    except (KeyError, TypeError, IndexError) as exc:
        raise ArtefactError(f"calibration artefact lacks a field the behavioural model needs: {exc}") from None


def _effective_bitline_capacitance(energy: dict, col: dict) -> float:
    """C such that the restore energy is V_pre·C·(ΔV_L + ΔV_R), fitted to the SPICE energies."""
    if "delta_v_sum_v" in energy and len(energy["delta_v_sum_v"]) == len(energy["e_bitline_j"]):
        dv = _arr(energy["delta_v_sum_v"])
        e = _arr(energy["e_bitline_j"])
        v_pre = float(col.get("v_rbl_precharged_v", 0.5))
        return float(np.dot(dv, e) / np.dot(dv, dv) / v_pre)
    # fallback: the discharge-curve slope and the cell current give C = I·T/ΔV
    i_on = float(np.max(col["leakage"]["i_on_nominal_a"]))
    slope = float(col["unit_step_vs_v_rbl"]["dv_per_unit_v"][2])
    return i_on * float(col["timing"]["t_unit_s"]) / slope


def _insitu_runs(col: dict, n_elements: int, n_steps: int) -> tuple[tuple[dict, ...], tuple[int, int, int]]:
    """The in-situ conversions, each checked field by field (named in the error)."""
    section = col["insitu_conversions"]
    runs = []
    for i, run in enumerate(section["runs"]):
        where = f"column.insitu_conversions.runs[{i}]"
        out = {}
        for name, n in (("keys", n_elements), ("inputs", n_elements), ("v_rbl_l_at_sa_clk_v", n_steps),
                        ("v_rbl_r_at_sa_clk_v", n_steps)):
            x = run.get(name)
            if not isinstance(x, list) or len(x) != n or not np.all(np.isfinite(_arr(x))):
                raise ArtefactError(f"calibration artefact field '{where}.{name}' must be a list of {n} finite numbers")
            out[name] = _arr(x)
        e = run.get("e_sa_32_decisions_j")
        if not isinstance(e, (int, float)) or not np.isfinite(e) or e <= 0:
            raise ArtefactError(f"calibration artefact field '{where}.e_sa_32_decisions_j' must be a positive number")
        out["e_sa_32_decisions_j"] = float(e)
        out["keys"], out["inputs"] = out["keys"].astype(np.int64), out["inputs"].astype(np.int64)
        runs.append(out)
    adc_range = []
    for name in ("n_cal", "t_cal_units", "t_ramp_units"):
        v = section.get(name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ArtefactError(f"calibration artefact field 'column.insitu_conversions.{name}' must be an integer ≥ 0")
        adc_range.append(v)
    return tuple(runs), tuple(adc_range)
