"""Behavioural-model parameters, read from the calibration artefact only (never from SPICE).

Everything here is a number or a table measured by ``topkima calibrate``; the physics they
feed is documented in :mod:`topkima.behavioral.macro`. The artefact's contract (which fields
exist, their units and sanity) is :mod:`topkima.calibration.artefact`'s, checked once when a
:class:`~topkima.calibration.Calibration` is made; this module only turns the checked fields
into typed parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from topkima.behavioral.macro.ramp_limits import DEFAULT_MAX_T_CAL_UNITS, DEFAULT_MAX_T_RAMP_UNITS, RampLimits
from topkima.calibration import Calibration


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
    n_cal_rows: int                  #: calibration replica cells per column (artefact column.geometry)
    n_ramp_rows: int                 #: ramp replica cells per column (one per ramp step: = n_ramp_steps)
    max_t_cal_units: int             #: longest calibration pulse, PWM units (``macro.ramp_limits``)
    max_t_ramp_units: int            #: longest ramp pulse, PWM units
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
    #: the comparator's threshold in the column beyond its ideal-source offset (artefact
    #: ``comparator.in_column``, :func:`in_column_threshold`):
    #: θ = V_os(CM) + shift + shift_per_v·(CM − shift_vcm0) + Σ_i x_i·ΔV_th,i;
    #: 0 and None for an artefact without the field (the ideal-source offset alone)
    sa_in_column_shift_v: float = 0.0
    sa_in_column_extra_per_v: np.ndarray | None = None   #: (n_devices,) x_i, V of threshold per V of delvto
    #: columns of the array (one comparator each): the design's ``geometry.n_columns`` (``provenance.design``;
    #: 256, SPEC §2, for the committed artefact and artefacts made before design files)
    n_columns: int = 256
    sa_in_column_shift_per_v: float = 0.0   #: the shift's slope in the bitlines' common mode (V/V)
    sa_in_column_shift_vcm0_v: float = 0.0  #: the common mode at which the shift is sa_in_column_shift_v
    #: the decision energy's dependence on the input overdrive (artefact ``comparator.energy``, the
    #: comparator bench, :func:`decision_energy_overdrive`): e falls by ``sa_e_per_ln_overdrive_j`` per
    #: e-fold of |V_R − V_L|, clamped to the measured overdrives; 0 for an artefact without the table
    sa_e_per_ln_overdrive_j: float = 0.0
    sa_overdrive_min_v: float = 1e-4
    sa_overdrive_max_v: float = 0.1
    sa_overdrive_ref_v: float = 0.01      #: the overdrive at which the term is zero
    #: the idle stacks' leakage at each point of the discharge curve relative to its rate at the level
    #: the model takes it at (``v_leak_v``, 0.45 V): the bitlines' droop measured in the column (artefact
    #: ``column.bitline_droop``, :func:`leak_relative_at_curve`); None for an artefact without it (constant)
    leak_rel_at_curve: np.ndarray | None = None
    t_pulse_delay_s: float = 0.0          #: wordline pulse start after its clock edge (artefact column.timing)
    #: a replica cell's pulsed charge relative to nominal, ln(Q/Q₀) = α·Δa + β·Δs + γ·Δa² + δ·Δs² + ε·Δa·Δs,
    #: measured on the calibration phase in SPICE (artefact ``column.replica_pulse``, :meth:`replica_factor`);
    #: None for an artefact without it (the replica cells then scale by the DC current fit)
    replica_log_ratio_fit: np.ndarray | None = None
    #: units a pulsed read stack storing 1 takes per pulse beyond its DC factor, per V of its access and
    #: storage devices' shifts (its wordline's edges; artefact ``column.replica_pulse.edge_per_pulse``,
    #: :meth:`pulse_edge_units`); (0, 0) for an artefact without it
    pulse_edge_units_per_v: tuple[float, float] = (0.0, 0.0)
    #: units a MAC pulse's single-pulse charge (``pulse_units_fit`` / ``charge_share_units``) exceeds what it
    #: takes in the MAC phase, a + b·ln(w) for a stack storing 1 and for one storing 0 (a₁, b₁, a₀, b₀; artefact
    #: ``column.mac_pulses``, :meth:`mac_pulse_excess`); None for an artefact without it (no correction)
    mac_pulse_excess_units: tuple[float, float, float, float] | None = None

    def v_of_units(self, units: np.ndarray) -> np.ndarray:
        """The discharge curve f: bitline voltage after ``units`` accumulated units."""
        return np.interp(units, self.curve_units, self.curve_v)

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

    def pulse_edge_units(self, d_access_v: np.ndarray, d_storage_v: np.ndarray) -> np.ndarray:
        """Units a read stack storing 1 takes per pulse beyond its DC current factor, whatever the pulse's
        width: during the wordline's rise and fall the access device is barely on and weighs more than in
        a DC current (SPICE: the calibration phase at 1, 2, 4 and 6 units, ``column.replica_pulse``)."""
        e_access, e_storage = self.pulse_edge_units_per_v
        return e_access * np.asarray(d_access_v) + e_storage * np.asarray(d_storage_v)

    def mac_pulse_excess(self, width_units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(stored 1, stored 0): units a MAC pulse of ``width_units`` (> 0) takes less in the MAC phase than
        its single-pulse charge, a + b·ln(w) (SPICE: the nominal MAC-phase runs of ``column.mac_pulses``,
        ``topkima calibrate-mac-pulses``); zeros without that field."""
        w = np.asarray(width_units, dtype=float)
        if self.mac_pulse_excess_units is None:
            return np.zeros_like(w), np.zeros_like(w)
        a1, b1, a0, b0 = self.mac_pulse_excess_units
        lw = np.log(np.maximum(w, 1.0))
        return a1 + b1 * lw, a0 + b0 * lw

    def replica_factor(self, d_access_v: np.ndarray, d_storage_v: np.ndarray) -> np.ndarray:
        """A replica (calibration or ramp) cell's pulsed charge relative to nominal for threshold shifts of
        its two devices: the SPICE fit of the pulsed calibration phase where the artefact has it
        (``column.replica_pulse``: a short pulse weighs the access device more than a DC current does),
        else the DC current factor (:meth:`current_factor`)."""
        if self.replica_log_ratio_fit is None:
            return self.current_factor(d_access_v, d_storage_v)
        a, b, c, d, e = self.replica_log_ratio_fit
        da, ds = d_access_v, d_storage_v
        return np.exp(a * da + b * ds + c * da * da + d * ds * ds + e * da * ds)


def params_from_calibration(cal: Calibration, v_mid_v: float = 0.35, v_leak_v: float = 0.45) -> MacroParams:
    """Build :class:`MacroParams` from a validated artefact.

    Geometry and timing come from the artefact's ``column.geometry`` and ``column.timing``, written
    from the design the artefact was characterised for (``provenance.design``; an artefact made
    before design files has no design block and is the ``topkima-65nm`` preset's, whose geometry
    and timing its ``column`` section states all the same); the array's width from that design
    (:func:`array_columns`).

    The mismatch sensitivity is taken at ``v_mid_v``, the middle of the bitline range the
    conversions use (it hardly depends on V(RBL): see the artefact's table). Leakage, which
    does (≈2.5× from 0.35 to 0.5 V), is taken at ``v_leak_v``, where the bitlines spend the
    ramp near the top of the ADC window; with it the modelled LSB matches the SPICE ramp's
    (2.243 vs 2.245 mV), against 2.207 mV at 0.35 V.
    """
    col, ramp, comp = cal.column, cal.ramp, cal.comparator
    _check_ramp_geometry(col, ramp["settings"], cal.path)
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
    n_columns = array_columns(cal)
    lin = comp["offset"]["linear_model"]
    order = np.argsort(lin["vcm_v"])
    sigma_dev = {d["name"]: d["sigma_vth_v"] for d in comp["devices"]}
    return MacroParams(
        n_elements=int(geo["n_elements"]), pair_scales=tuple(int(x) for x in geo["pair_scales"]),
        q_max=int(geo["q_max"]), k_max=int(geo["k_max"]), n_ramp_steps=int(timing["n_ramp_steps"]),
        n_cal_rows=int(geo["n_cal_rows"]), n_ramp_rows=int(geo["n_ramp_rows"]),
        max_t_cal_units=int(timing.get("max_t_cal_units", DEFAULT_MAX_T_CAL_UNITS)),
        max_t_ramp_units=int(timing.get("max_t_ramp_units", DEFAULT_MAX_T_RAMP_UNITS)),
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
        insitu=_insitu_runs(col),
        leak_rel_at_curve=leak_relative_at_curve(col, v_leak_v),
        t_pulse_delay_s=float(timing.get("t_pulse_delay_s", 0.0)),
        replica_log_ratio_fit=_arr(col["replica_pulse"]["log_ratio_fit"]) if col.get("replica_pulse") else None,
        pulse_edge_units_per_v=_pulse_edge(col),
        mac_pulse_excess_units=_mac_pulse_excess(col),
        **in_column_threshold(comp),
        **decision_energy_overdrive(comp),
        n_columns=n_columns,
    )


def _pulse_edge(col: dict) -> tuple[float, float]:
    """(access, storage) units per V a pulse's edges add (``column.replica_pulse.edge_per_pulse``), else (0, 0)."""
    edge = (col.get("replica_pulse") or {}).get("edge_per_pulse")
    if not edge:
        return (0.0, 0.0)
    return (float(edge["e0_access_units_per_v"]), float(edge["e0_storage_units_per_v"]))


def _mac_pulse_excess(col: dict) -> tuple[float, float, float, float] | None:
    """(a₁, b₁, a₀, b₀) of ``column.mac_pulses.excess_units`` (``topkima calibrate-mac-pulses``), else None."""
    section = col.get("mac_pulses")
    if not section:
        return None
    a1, b1, a0, b0 = (float(x) for x in section["excess_units"])
    return (a1, b1, a0, b0)


def leak_relative_at_curve(col: dict, v_leak_v: float) -> np.ndarray | None:
    """The idle stacks' leakage rate at each point of the discharge curve relative to its rate at
    ``v_leak_v`` (where the model takes the ``.op`` stack currents), from the artefact's
    ``column.bitline_droop`` (``topkima calibrate-droop``); None without the field.

    Physics: a stack's subthreshold current grows with its drain voltage, the bitline level (drain-
    induced barrier lowering); the column's droop is 3.2× faster at 0.5 V than at 0.18 V. The measured
    relative rates are interpolated linearly in the level, flat beyond the measured levels, and held
    monotone in the level (each the smallest at or above it): within 0.1 V of ground the cell current
    itself falls, so the rate in curve units rises again there (0.39 → 0.44 at tt); no conversion
    decides there, and the crossing search's bounds (:mod:`.macro.adc`) take a rate that does not
    grow as the level falls."""
    droop = col.get("bitline_droop")
    if not droop:
        return None
    v = _arr(droop["v_rbl_v"])
    rel = np.minimum.accumulate(_arr(droop["rate_rel"])[::-1])[::-1]
    curve_v = _arr(col["discharge_curve"]["v_rbl_v"])
    return np.interp(curve_v, v, rel) / float(np.interp(v_leak_v, v, rel))


def array_columns(cal: Calibration) -> int:
    """The columns of the artefact's array: its design's ``geometry.n_columns`` (:attr:`Calibration.design`:
    the recorded design, or the 65 nm preset's 256 for an artefact made before design files), checked
    against the column section's key elements (both are written from the one design)."""
    geo = cal.design["geometry"]
    n_columns = geo["n_columns"]
    if isinstance(n_columns, bool) or not isinstance(n_columns, int) or n_columns < 1:
        raise ValueError(f"{cal.path}: provenance.design.geometry.n_columns must be a positive integer, got {n_columns!r}")
    if int(geo["n_elements"]) != int(cal.column["geometry"]["n_elements"]):
        raise ValueError(f"{cal.path}: provenance.design.geometry.n_elements ({geo['n_elements']}) and "
                         f"column.geometry.n_elements ({cal.column['geometry']['n_elements']}) disagree: the artefact's "
                         f"column was not characterised for its recorded design")
    return n_columns


def decision_energy_overdrive(comp: dict) -> dict:
    """The decision energy's overdrive term from the comparator bench (artefact ``comparator.energy``:
    energy per decision at input overdrives 0.1 … 100 mV, ideal sources, CM 0.35 V).

    Physics: the StrongARM's regeneration starts from the imbalance the input sets; the smaller the
    overdrive, the longer both branches conduct before the outputs separate (the clock-to-output
    delay grows as ln(1/overdrive), ``comparator.delay_vs_overdrive``), so the charge drawn per decision
    grows the same way. The bench gives 140.7, 133.8, 128.2, 122.3 fJ at 0.1, 1, 10, 100 mV: a line in
    ln(overdrive). κ is its least-squares slope (J per e-fold); the term is κ·ln(V_ref / |V_R − V_L|)
    with |V_R − V_L| clamped to the measured overdrives and V_ref the bench's typical overdrive.
    Without the table (an older artefact) κ = 0: the energy line in the common mode alone."""
    energy = comp.get("energy") or {}
    od, e = energy.get("overdrive_v"), energy.get("e_per_decision_j")
    if not od or not e or len(od) < 2 or len(od) != len(e):
        return {}
    od, e = _arr(od), _arr(e)
    kappa = -float(np.polyfit(np.log(od), e, 1)[0])
    return {"sa_e_per_ln_overdrive_j": kappa, "sa_overdrive_min_v": float(od.min()),
            "sa_overdrive_max_v": float(od.max()),
            "sa_overdrive_ref_v": float(energy.get("typical_overdrive_v", np.sqrt(od.min() * od.max())))}


#: Mirror-image device pairs of the StrongARM (netlists/strongarm.sp): swapping sides flips the
#: offset's sign, so the mirror device of a measured one acts with the opposite sign
SA_MIRROR_DEVICES = {"mip": "min", "mlp": "mln", "mnp": "mnn", "mrxp": "mrxn", "mrlp": "mrln",
                     "mb1pp": "mb1np", "mb1pn": "mb1nn", "mb2pp": "mb2np", "mb2pn": "mb2nn"}


def in_column_threshold(comp: dict) -> dict:
    """The comparator's threshold in the column beyond its ideal-source linear offset model, from the
    artefact's ``comparator.in_column`` (``topkima calibrate-in-column``), as :class:`MacroParams`
    fields: the nominal shift at a common mode CM₀, its slope in the common mode and the extra
    sensitivity per device (V/V); {} without the field.

    SPICE measured the threshold V_R − V_L at which the column's own latch flips: the nominal latch
    on a grid of decision cycles and common modes, and single devices shifted ±ΔV_th, all decided
    in the base run's cycle at its common mode CM₀. The nominal shift (threshold minus the linear
    model's intercept) is the plane fitted over the grid (``nominal_shift``), taken here in the
    common mode only: its slope in the decision cycle was measured negligible (docs/behavioral-model.md).
    An artefact measured before the grid (no ``nominal_shift``) gives the shift at CM₀, constant.
    A measured device's extra sensitivity is its in-column sensitivity minus the linear model's at
    CM₀, its mirror device's the same with the opposite sign (unless the mirror was measured too);
    unmeasured devices add nothing; the extra sensitivities are held constant over the common mode.
    The devices measured are ``in_column``'s three pairs and, where the artefact has it,
    ``in_column_devices``'s (``topkima calibrate-in-column-devices``: the reset switches and the
    output buffer, at the same base run)."""
    ic = comp.get("in_column")
    if not ic:
        return {}
    lin = comp["offset"]["linear_model"]
    order = np.argsort(lin["vcm_v"])
    vcm, icpt, sens = _arr(lin["vcm_v"])[order], _arr(lin["intercept_v"])[order], _arr(lin["sensitivity_v_per_v"])[order]
    devices = list(lin["devices"])
    cm0 = float(ic["vcm_v"])
    extra = np.zeros(len(devices))
    measured = dict(ic["sensitivity_v_per_v"], **comp.get("in_column_devices", {}).get("sensitivity_v_per_v", {}))
    for dev, s_col in measured.items():
        for name, sign in ((dev, 1.0), (SA_MIRROR_DEVICES.get(dev), -1.0)):
            if name in devices and not (sign < 0 and name in measured):   # a measured mirror keeps its own
                i = devices.index(name)
                extra[i] = sign * float(s_col) - float(np.interp(cm0, vcm, sens[:, i]))
    plane = ic.get("nominal_shift")
    if plane:
        shift = {"sa_in_column_shift_v": float(plane["shift_v"]), "sa_in_column_shift_per_v": float(plane["per_v"]),
                 "sa_in_column_shift_vcm0_v": float(plane["vcm0_v"])}
    else:
        shift = {"sa_in_column_shift_v": float(ic["threshold_nominal_v"]) - float(np.interp(cm0, vcm, icpt)),
                 "sa_in_column_shift_vcm0_v": cm0}
    return dict(shift, sa_in_column_extra_per_v=extra)


def _check_ramp_geometry(col: dict, settings: dict, source) -> None:
    """The ramp fields agree: one ramp replica row per ramp step, and the characterised window
    within the column's limits (``macro.ramp_limits``); else a ValueError naming the field."""
    geo, timing = col["geometry"], col["timing"]
    if int(geo["n_ramp_rows"]) != int(timing["n_ramp_steps"]):
        raise ValueError(f"{source}: column.geometry.n_ramp_rows ({geo['n_ramp_rows']}) must equal "
                         f"column.timing.n_ramp_steps ({timing['n_ramp_steps']}): each ramp step pulses one replica row")
    limits = {}
    for name, default in (("max_t_cal_units", DEFAULT_MAX_T_CAL_UNITS), ("max_t_ramp_units", DEFAULT_MAX_T_RAMP_UNITS)):
        v = timing.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{source}: column.timing.{name} must be a positive integer (PWM units), got {v!r}")
        limits[name] = v
    try:
        RampLimits(int(timing["n_ramp_steps"]), int(geo["n_cal_rows"]), **limits).check(
            settings["n_cal"], settings["t_cal_units"], settings["t_ramp_units"])
    except ValueError as exc:
        raise ValueError(f"{source}: ramp.settings: {exc}") from None


def _effective_bitline_capacitance(energy: dict, col: dict) -> float:
    """C such that the restore energy is V_pre·C·(ΔV_L + ΔV_R), fitted to the SPICE energies (least squares)."""
    dv = _arr(energy["delta_v_sum_v"])
    e = _arr(energy["e_bitline_j"])
    v_pre = float(col["v_rbl_precharged_v"])
    return float(np.dot(dv, e) / np.dot(dv, dv) / v_pre)


def _insitu_runs(col: dict) -> tuple[tuple[dict, ...], tuple[int, int, int]]:
    """The in-situ conversions as arrays, and their ADC range (n_cal, t_cal_units, t_ramp_units): the
    calibration's own (``column.insitu_conversions``), then the nominal conversions added from the
    fit-nominal golden set where the artefact has them (``column.insitu_extra``, ``topkima add-insitu-runs``;
    the same window, checked when they were added)."""
    section = col["insitu_conversions"]
    extra = (col.get("insitu_extra") or {}).get("runs", [])
    runs = []
    for run in list(section["runs"]) + list(extra):
        runs.append({"keys": _arr(run["keys"]).astype(np.int64), "inputs": _arr(run["inputs"]).astype(np.int64),
                     "v_rbl_l_at_sa_clk_v": _arr(run["v_rbl_l_at_sa_clk_v"]),
                     "v_rbl_r_at_sa_clk_v": _arr(run["v_rbl_r_at_sa_clk_v"]),
                     "e_sa_32_decisions_j": float(run["e_sa_32_decisions_j"])})
    return tuple(runs), (section["n_cal"], section["t_cal_units"], section["t_ramp_units"])
