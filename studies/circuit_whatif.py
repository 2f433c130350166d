"""What-if chips: the calibrated macro with one circuit change applied in memory (issue 14, item 3).

Which circuit change would bring the chip to the quantised top-k it approximates? Each variant
scales spreads of the committed calibration artefact in a copy held in memory (the artefact on
disk is never changed), and `topkima lm-eval --chip-variant NAME` measures it on SmolLM2 like
the chip as characterised. The spreads and the physical change each scaling stands for:

* ``read_sigma_scale`` — the Pelgrom σ of every read-port and replica-cell device of the Q·Kᵀ
  array (MAC cells, 32 calibration and 32 ramp cells): σ_Vth = A_VT/√(W·L), so 0.5 is a cell of
  4× the gate area (Pelgrom, Duinmaijer, Welbers, IEEE JSSC 24(5), 1989).
* ``comparator_offset_scale`` — the sense amplifier's offset: its devices' σ_Vth and the part of
  the offset the artefact's linear model does not explain. 0 is a comparator whose offset is
  calibrated away per column (the systematic offset common to all columns, the intercept, stays:
  it shifts every column alike and changes no ranking).
* ``comparator_noise_scale`` — the comparator's input-referred noise.
* ``av_sigma_scale`` — the A·V SRAM cells' current spread (0: an exact A·V array).

* ``n_ramp_steps`` — a longer ramp (issue 14 item 6): N ramp replica rows, one step each at the
  same 4 ns clock and the same pulse limits (so the same LSB), and as many calibration replica
  rows (the paper's column has 32 + 32), so that a window can reach N·6 units at its top and
  N·4 units of span instead of 192 and 128. The ADC code then has ⌈log₂ N⌉ bits (6 at 64, 7 at
  128); the digital side reads it back as it reads 5 bits (score = top − (cycle − ½)·LSB, then
  the softmax core's fixed point, whose input is a difference of scores: its 6 fractional bits
  of x and its −16 clamp do not depend on the code's width). A full conversion takes N clocks
  (T_ima = N × 4 ns) and N comparator decisions; the arbiter stops it at α·N.

  **This is a behavioural what-if on the 65 nm artefact's measured curve, not a SPICE-calibrated
  design.** What it keeps from the 32-row characterisation and what it extrapolates:

  - the discharge curve is the measured one (0 … 1,203 units from 0.50 V, linear to ~600 units,
    compressing beyond ~700: 2.26 mV per 4-unit step at 0 units, 1.58 mV at 800, 0.56 mV at
    1,000); a window top of up to N·6 units (384 at 64 steps, 768 at 128) on RBL_R plus the
    MAC units puts the longer ramps' conversions further down that curve, where the model
    follows the measured compression (and the comparator's offset model extrapolates below its
    lowest characterised common mode, 0.15 V);
  - the extra 2·(N − 32) replica rows add leakage ports (modelled: the leakage count follows the
    rows) and bitline capacitance (**not** modelled: the curve was measured on a 256-row bitline;
    a taller bitline lowers the volts per unit and so the LSB in mV, which makes the comparator's
    offset and noise larger in LSB: these variants are optimistic by up to that ratio);
  - the sense amplifier's in-situ correction is fitted on the 32 measured sense instants; its
    drift term (linear in the cycle) is extrapolated to cycles 33 … N;
  - the replica rows' mismatch is drawn from the same Pelgrom σ (one current factor per row).
* ``n_ramp_steps`` on an artefact whose ramp is already longer than the paper's 32 steps (a longer-ramp
  design calibrated in SPICE, e.g. ``topkima-65nm-ramp128-wideport``): **finer steps over the same
  swing** (issue 14 item 6, the 256-step what-if). Only twice the characterised steps is allowed. The
  ramp replica rows double (128 → 256, one per step, same 4 ns clock); the calibration rows are kept
  (the design chose them so that the window top, 96 × 6 = 576 units, stays on the measured curve
  above the comparator's lowest characterised common mode); the window's ramp pulse is capped at half
  the characterised limit (2 units against 4, ``timing.window_max_t_ramp_units``, read by
  :func:`variant_ramp_limits`), so a full ramp, 256 × 2 = 512 units, swings RBL_L exactly as far as the
  characterised 128 × 4: every conversion stays on the part of the curve SPICE measured, and a head's
  window is the one the 128-step chip would choose at up to half its step (a 2-unit pulse delivers
  0.46× the charge of a 4-unit one by the artefact's pulse fit, effective units 1.003·t − 0.32).
  What it assumes and leaves out:

  - the 128 extra replica rows' bitline capacitance is **not** modelled: the curve, volts per unit and
    LSB are the 416-row bitline's. From the artefact's own geometry (rows of 0.15 fF wire plus two
    read-port drains per bitline) the taller bitline holds more charge per volt, so the LSB in volts is
    lower than modelled and the comparator's offset residual and noise are larger in LSB: the what-if
    is optimistic by that ratio (docs/language-model.md estimates it);
  - the in-situ correction's drift is fitted on the 128 measured sense instants and extrapolated to
    cycles 129 … 256; replica-row mismatch is drawn from the same Pelgrom σ;
  - a full conversion takes 256 clocks (T_ima 1,024 ns) and up to 256 comparator decisions, and the
    ADC code has 8 bits, one more than the 7-bit cycle counter of the design rules allows.
* Comparator offset cancellation (``comparator_offset_scale`` 0, combined with a longer ramp): a
  per-column offset calibration of the StrongARM latch, e.g. a foreground trim at power-up
  (Miyahara, Asada, Paik, Matsuzawa, "A low-noise self-calibrating dynamic comparator for
  high-speed ADCs", IEEE A-SSCC 2008: a charge pump trims a latch's offset from repeated
  decisions at zero input) or an auto-zeroed preamplifier stage ahead of the latch. Its cost is
  an estimate of this project, not characterised: see :data:`OFFSET_CANCELLATION_COST`.
* ``comparator_trim`` (variant ``offset-trimmed``): the comparator offset trim **characterised in
  SPICE** (``topkima calibrate-trim``, :mod:`topkima.circuits.comparator_trim`: a capacitor DAC on the
  latch's integration nodes set at power-up at a 0.35 V common mode). Each comparator's offset is
  drawn from the artefact's ``comparator.offset_trim.linear_model``, the residual after the trim as a
  function of the same device draws, instead of the untrimmed model: what is left is about a trim step
  at the trim's common mode and more away from it. Not a what-if of the spreads: the artefact must
  carry the section (an artefact without it is refused with the command that adds it).
"""
from __future__ import annotations

import copy
import functools

import numpy as np

#: the variants of the study: name → knob values (every knob absent is 1, as characterised)
VARIANTS: dict[str, dict] = {
    "as-characterised": {},
    "offset-calibrated": {"comparator_offset_scale": 0.0},
    "cells-4x-area": {"read_sigma_scale": 0.5},
    "offset-calibrated-cells-4x": {"comparator_offset_scale": 0.0, "read_sigma_scale": 0.5},
    "exact-av": {"av_sigma_scale": 0.0},
    "no-mismatch": {"comparator_offset_scale": 0.0, "read_sigma_scale": 0.0, "av_sigma_scale": 0.0},
    "nominal": {"comparator_offset_scale": 0.0, "read_sigma_scale": 0.0, "av_sigma_scale": 0.0,
                "comparator_noise_scale": 0.0},
    # longer ramps (issue 14 item 6): N ramp + N calibration replica rows, same clock and LSB
    "ramp64": {"n_ramp_steps": 64},
    "ramp128": {"n_ramp_steps": 128},
    "ramp64-offset-calibrated": {"n_ramp_steps": 64, "comparator_offset_scale": 0.0},
    "ramp128-offset-calibrated": {"n_ramp_steps": 128, "comparator_offset_scale": 0.0},
    "ramp128-offset-calibrated-cells-4x": {"n_ramp_steps": 128, "comparator_offset_scale": 0.0,
                                           "read_sigma_scale": 0.5},
    "ramp128-offset-calibrated-cells-16x": {"n_ramp_steps": 128, "comparator_offset_scale": 0.0,
                                            "read_sigma_scale": 0.25},
    "ramp128-no-mismatch": {"n_ramp_steps": 128, "comparator_offset_scale": 0.0, "read_sigma_scale": 0.0,
                            "av_sigma_scale": 0.0},
    # what the longer ramps reach without any mismatch or noise (bounds, as "nominal" does at 32)
    "ramp64-nominal": {"n_ramp_steps": 64, "comparator_offset_scale": 0.0, "read_sigma_scale": 0.0,
                       "av_sigma_scale": 0.0, "comparator_noise_scale": 0.0},
    "ramp128-nominal": {"n_ramp_steps": 128, "comparator_offset_scale": 0.0, "read_sigma_scale": 0.0,
                        "av_sigma_scale": 0.0, "comparator_noise_scale": 0.0},
    # the offset trim characterised in SPICE (topkima calibrate-trim): the artefact's trimmed offset model
    "offset-trimmed": {"comparator_trim": True},
    # the trimmed chip with exact A·V cells: what the A·V cells' current spread costs on it (issue 14 item 6)
    "offset-trimmed-exact-av": {"comparator_trim": True, "av_sigma_scale": 0.0},
    # on a 128-step design (--artefact calibration/ramp128_wideport_quick_calibration.json): twice its
    # steps over the same swing (issue 14 item 6; module docstring)
    "ramp256": {"n_ramp_steps": 256},
    "ramp256-offset-trimmed": {"n_ramp_steps": 256, "comparator_trim": True},
    "ramp256-no-mismatch": {"n_ramp_steps": 256, "comparator_offset_scale": 0.0, "read_sigma_scale": 0.0,
                            "av_sigma_scale": 0.0},
    "ramp256-nominal": {"n_ramp_steps": 256, "comparator_offset_scale": 0.0, "read_sigma_scale": 0.0,
                        "av_sigma_scale": 0.0, "comparator_noise_scale": 0.0},
}
#: ramp steps a variant may ask for: the paper's 32 and the longer ramps this study simulates
RAMP_STEP_CHOICES = (32, 64, 128, 256)
#: the ramp of the paper's column; an artefact characterised with more steps is a longer-ramp design,
#: which a ramp what-if refines (twice the steps over the same swing) instead of lengthening
PAPER_RAMP_STEPS = 32
#: what cancelling the comparator's offset costs [our estimates, not characterised]:
#: * foreground trim (what ``comparator_offset_scale`` 0 models: the offset is gone at every
#:   conversion): no time per conversion; per column a trim DAC of ~6 bits (±3σ_os = ±16 mV in
#:   0.5 mV steps, below the 2.24 mV LSB) and its register, and a calibration of all columns at
#:   power-up (a binary search of 6 decisions per trim bit at zero input: ~36 decisions × 4 ns).
#: * auto-zero instead (offset stored on capacitors each conversion): one extra 4 ns phase before
#:   the ramp, i.e. +1 clock on 33 (+3 %), and a preamplifier's static current during the ramp.
OFFSET_CANCELLATION_COST = {
    "foreground_trim": {"extra_clocks_per_conversion": 0, "trim_bits_per_column": 6,
                        "power_up_decisions_per_column": 36},
    "auto_zero": {"extra_clocks_per_conversion": 1},
}
#: what a scale of 0 becomes (the artefact's schema refuses spreads of 0)
ZERO_SCALE = 1e-9
KNOBS = ("read_sigma_scale", "comparator_offset_scale", "comparator_noise_scale", "av_sigma_scale")


def variant_knobs(name: str) -> dict:
    """The knobs of variant ``name`` (the four scales, floats, and ``n_ramp_steps`` and
    ``comparator_trim`` where the variant sets them), or ValueError naming the variants."""
    if name not in VARIANTS:
        raise ValueError(f"unknown chip variant {name!r}; choose one of {', '.join(VARIANTS)}")
    knobs = {knob: float(VARIANTS[name].get(knob, 1.0)) for knob in KNOBS}
    if "n_ramp_steps" in VARIANTS[name]:
        knobs["n_ramp_steps"] = int(VARIANTS[name]["n_ramp_steps"])
    if VARIANTS[name].get("comparator_trim"):
        knobs["comparator_trim"] = True
    return knobs


def variant_calibration(cal=None, *, read_sigma_scale: float = 1.0, comparator_offset_scale: float = 1.0,
                        comparator_noise_scale: float = 1.0, av_sigma_scale: float = 1.0, n_ramp_steps: int | None = None,
                        comparator_trim: bool = False):
    """A validated copy of calibration ``cal`` (default: the committed artefact) with its spreads
    scaled, ``n_ramp_steps`` given, its ramp lengthened and, ``comparator_trim``, its comparators
    trimmed (module docstring); the original is not changed."""
    from topkima.calibration import Calibration, load_calibration
    for name, value in (("read_sigma_scale", read_sigma_scale), ("comparator_offset_scale", comparator_offset_scale),
                        ("comparator_noise_scale", comparator_noise_scale), ("av_sigma_scale", av_sigma_scale)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    if n_ramp_steps is not None and (isinstance(n_ramp_steps, bool) or n_ramp_steps not in RAMP_STEP_CHOICES):
        raise ValueError(f"n_ramp_steps must be one of {RAMP_STEP_CHOICES} (ramp replica rows), got {n_ramp_steps!r}")
    cal = load_calibration() if cal is None else cal
    # the artefact's schema demands positive spreads: a scale of 0 is taken as 1e-9 (a 5 fV offset)
    read_sigma_scale, comparator_offset_scale, comparator_noise_scale, av_sigma_scale = (
        max(float(x), ZERO_SCALE) for x in (read_sigma_scale, comparator_offset_scale, comparator_noise_scale,
                                           av_sigma_scale))
    data = copy.deepcopy(cal.data)
    mismatch = data["column"]["mismatch"]
    mismatch["sigma_vth_per_device_v"] *= read_sigma_scale
    mismatch["i_on_sigma_rel"] = [x * av_sigma_scale for x in mismatch["i_on_sigma_rel"]]
    comp = data["comparator"]
    if comparator_trim:
        _trim_comparators(comp, cal.path)
    for device in comp["devices"]:
        device["sigma_vth_v"] *= comparator_offset_scale
    linear = comp["offset"]["linear_model"]
    linear["residual_sigma_v"] = [x * comparator_offset_scale for x in linear["residual_sigma_v"]]
    comp["offset_sigma_v"] *= comparator_offset_scale
    comp["noise_sigma_v"] *= comparator_noise_scale
    if n_ramp_steps is not None:
        _lengthen_ramp(data, int(n_ramp_steps))
    return Calibration(data, cal.path)


def _trim_comparators(comp: dict, path: str | None) -> None:
    """The trimmed offset model of artefact section ``comp`` (in place): the residual's linear model
    replaces the untrimmed one, and the headline σ is the residual's at the primary common mode.
    The comparator's in-column threshold term (``in_column`` and its extension ``in_column_devices``)
    is dropped: it is a static shift of the same latch's threshold, which a power-up trim made in the
    column nulls along with the rest (its extra sensitivities are relative to the untrimmed linear
    model and would add the untrimmed spread back)."""
    trim = comp.get("offset_trim")
    if trim is None:
        raise ValueError(f"chip variant offset-trimmed needs an artefact with comparator.offset_trim: run "
                         f"topkima calibrate-trim --artefact {path or 'FILE'} first")
    comp["offset"]["linear_model"] = copy.deepcopy(trim["linear_model"])
    comp.pop("in_column", None)
    comp.pop("in_column_devices", None)
    by_vcm = {b["vcm_v"]: b for b in trim["by_vcm"]}
    if comp["vcm_v"] in by_vcm:
        comp["offset_sigma_v"] = float(by_vcm[comp["vcm_v"]]["sigma_v"])


def _lengthen_ramp(data: dict, n_steps: int) -> None:
    """N ramp and N calibration replica rows in artefact ``data`` (in place), the rest as measured."""
    geo, timing = data["column"]["geometry"], data["column"]["timing"]
    n_measured = timing.get("n_ramp_steps_characterised", timing["n_ramp_steps"])
    if n_steps == timing["n_ramp_steps"]:
        return
    if n_steps < timing["n_ramp_steps"]:
        raise ValueError(f"a ramp what-if lengthens the ramp: this artefact's ramp already has "
                         f"{timing['n_ramp_steps']} steps, more than {n_steps}")
    if n_measured > PAPER_RAMP_STEPS:
        _refine_ramp(data, n_steps)
        return
    if n_steps > 4 * PAPER_RAMP_STEPS:
        raise ValueError(f"a {n_steps}-step what-if of a {n_measured}-step artefact would put the window top at up to "
                         f"{n_steps * 6} units, beyond the measured curve: use it on a 128-step design "
                         f"(--artefact calibration/ramp128_wideport_quick_calibration.json)")
    extra = (n_steps - geo["n_ramp_rows"]) + (n_steps - geo["n_cal_rows"])
    geo.update(n_ramp_rows=n_steps, n_cal_rows=n_steps, n_rows=geo["n_rows"] + extra)
    timing.update(n_ramp_steps=n_steps, n_ramp_steps_characterised=n_measured)
    data["provenance"]["what_if"] = (
        f"behavioural what-if: {n_steps} ramp + {n_steps} calibration replica rows on the curve, cells and "
        f"comparator characterised with {n_measured} + {n_measured} (topkima.studies.circuit_whatif)")


def _refine_ramp(data: dict, n_steps: int) -> None:
    """Twice the ramp steps of a longer-ramp design over the same swing (module docstring), in place:
    ramp rows doubled, calibration rows kept, the window's ramp pulse capped at half the limit."""
    geo, timing = data["column"]["geometry"], data["column"]["timing"]
    n_old, pulse_limit = int(timing["n_ramp_steps"]), int(timing.get("max_t_ramp_units", 4))
    if n_steps != 2 * n_old or pulse_limit < 2:
        raise ValueError(f"a ramp what-if of this {n_old}-step design doubles its steps over the same swing: "
                         f"n_ramp_steps must be {2 * n_old} (and its ramp pulse limit, {pulse_limit} units, at least 2), "
                         f"got {n_steps}")
    n_cal, n_mac = int(geo["n_cal_rows"]), int(geo["n_mac_rows"])
    geo.update(n_ramp_rows=n_steps, n_rows=geo["n_rows"] + (n_steps - n_old),
               row_order=f"ramp 0-{n_steps - 1}, cal {n_steps}-{n_steps + n_cal - 1}, "
                         f"MAC {n_steps + n_cal}-{n_steps + n_cal + n_mac - 1}")
    timing.update(n_ramp_steps=n_steps, n_ramp_steps_characterised=n_old,
                  window_max_t_ramp_units=pulse_limit * n_old // n_steps)
    data["provenance"]["what_if"] = (
        f"behavioural what-if: {n_steps} ramp replica rows (characterised: {n_old}) over the same swing, window ramp "
        f"pulse ≤ {pulse_limit * n_old // n_steps} units, {geo['n_cal_rows']} calibration rows as characterised; the "
        f"extra rows' bitline capacitance is not modelled (topkima.studies.circuit_whatif)")


@functools.lru_cache(maxsize=4)
def variant_macro(read_sigma_scale: float = 1.0, comparator_offset_scale: float = 1.0,
                  comparator_noise_scale: float = 1.0, av_sigma_scale: float = 1.0, n_ramp_steps: int | None = None,
                  artefact: str | None = None, comparator_trim: bool = False):
    """A :class:`~topkima.behavioral.TopkimaMacro` of :func:`variant_calibration` of ``artefact``
    (a calibration artefact's path; None: the committed one), one per process and knob setting."""
    from topkima.behavioral import TopkimaMacro
    return TopkimaMacro(variant_calibration(_artefact_calibration(artefact), read_sigma_scale=read_sigma_scale,
                                            comparator_offset_scale=comparator_offset_scale,
                                            comparator_noise_scale=comparator_noise_scale,
                                            av_sigma_scale=av_sigma_scale, n_ramp_steps=n_ramp_steps,
                                            comparator_trim=comparator_trim))


def _artefact_calibration(artefact: str | None):
    """The calibration of ``artefact`` (None: None, the committed one)."""
    if artefact is None:
        return None
    from topkima.calibration import load_calibration
    return load_calibration(artefact)


def variant_ramp_limits(macro_variant: dict | None, artefact: str | None = None):
    """The :class:`~topkima.behavioral.macro.ramp_limits.RampLimits` of a variant's macro on
    ``artefact`` (None: the committed artefact's), for fitting ADC windows that its chips can take.
    A refined ramp (twice a longer-ramp design's steps) caps the window's ramp pulse so that its full
    ramp keeps the characterised swing (module docstring)."""
    from topkima.behavioral.macro.ramp_limits import RampLimits
    from topkima.behavioral.params import params_from_calibration
    cal = variant_calibration(_artefact_calibration(artefact), n_ramp_steps=(macro_variant or {}).get("n_ramp_steps"))
    limits = RampLimits.of_params(params_from_calibration(cal))
    window_pulse = cal.column["timing"].get("window_max_t_ramp_units")     # a refined ramp: the same swing
    if window_pulse is not None:
        limits = RampLimits(limits.n_steps, limits.n_cal_cells, limits.max_t_cal_units, int(window_pulse))
    return limits


def variant_array(cal=None, *, n_columns: int, n_elements: int):
    """A validated copy of calibration ``cal`` (default: the committed artefact) whose recorded design
    has ``n_columns`` columns and ``n_elements`` key elements per column: a behavioural what-if of
    another array width, used to exercise the behavioural model's geometry plumbing without a
    calibration (hours of SPICE). The original is not changed.

    Changed: ``provenance.design.geometry`` (the two fields, validated by the design's own rules,
    :mod:`topkima.circuits.design_rules`) and its SHA-256, and ``column.geometry``'s key elements and
    row counts (3 MAC rows per element). **Kept as measured on the source design** (so this is not a
    characterisation of the new array): the discharge curve and every cell figure (a column with fewer
    MAC rows has less bitline capacitance, so more volts per unit: not modelled), the wordline pulse
    energy of the source's row width, and the arbiter tree's delays and energies of the source's width.
    The leakage follows the ports a column has (the behavioural model counts them from the elements); the
    in-situ conversions stay as measured (``insitu_conversions.n_elements``), replayed on a column of their length.
    ``provenance.what_if`` says so. Run ``topkima calibrate --design`` for the real thing.
    """
    from topkima.calibration import Calibration, load_calibration
    from topkima.circuits.design import design_from_dict
    cal = load_calibration() if cal is None else cal
    data = copy.deepcopy(cal.data)
    design = copy.deepcopy(cal.design)
    design["geometry"].update(n_columns=n_columns, n_elements=n_elements)
    new = design_from_dict(design, source="what-if")            # the design rules name a bad value
    geo = data["column"]["geometry"]
    n_mac = new.geometry.n_mac_rows
    geo.update(n_elements=new.geometry.n_elements, n_mac_rows=n_mac, n_rows=geo["n_cal_rows"] + geo["n_ramp_rows"] + n_mac,
               row_order=f"ramp 0-{geo['n_ramp_rows'] - 1}, cal {geo['n_ramp_rows']}-"
                         f"{geo['n_ramp_rows'] + geo['n_cal_rows'] - 1}, MAC {geo['n_ramp_rows'] + geo['n_cal_rows']}-"
                         f"{geo['n_ramp_rows'] + geo['n_cal_rows'] + n_mac - 1}")
    insitu = data["column"]["insitu_conversions"]
    insitu.setdefault("n_elements", int(cal.column["geometry"]["n_elements"]))   # the runs as measured
    prov = data["provenance"]
    prov.update(design=new.to_dict(), design_sha256=new.sha256(),
                what_if=f"behavioural what-if: a {n_columns}-column array of {n_elements} key elements per column on "
                        f"the column, cell and comparator figures characterised for {prov.get('design_name', 'its design')} "
                        f"(topkima.studies.circuit_whatif.variant_array)")
    return Calibration(data, cal.path)
