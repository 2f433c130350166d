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

What cannot be varied this way: the number of ramp steps (32 replica cells, a 5-bit code) and the
range a window can span (32 calibration cells × 6 units at the top, 32 steps × 4 units of span:
:class:`~topkima.behavioral.macro.AdcRange`). They are constants of the macro model, not fields
of the artefact, so "more ramp steps" cannot be simulated here; the nominal chip (every spread
× 0) bounds what any change of matching alone can reach.
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
}
#: what a scale of 0 becomes (the artefact's schema refuses spreads of 0)
ZERO_SCALE = 1e-9
KNOBS = ("read_sigma_scale", "comparator_offset_scale", "comparator_noise_scale", "av_sigma_scale")


def variant_knobs(name: str) -> dict:
    """The knobs of variant ``name`` (all four, floats), or ValueError naming the variants."""
    if name not in VARIANTS:
        raise ValueError(f"unknown chip variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return {knob: float(VARIANTS[name].get(knob, 1.0)) for knob in KNOBS}


def variant_calibration(cal=None, *, read_sigma_scale: float = 1.0, comparator_offset_scale: float = 1.0,
                        comparator_noise_scale: float = 1.0, av_sigma_scale: float = 1.0):
    """A validated copy of calibration ``cal`` (default: the committed artefact) with its spreads
    scaled (module docstring); the original is not changed."""
    from topkima.calibration import Calibration, load_calibration
    for name, value in (("read_sigma_scale", read_sigma_scale), ("comparator_offset_scale", comparator_offset_scale),
                        ("comparator_noise_scale", comparator_noise_scale), ("av_sigma_scale", av_sigma_scale)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
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
    for device in comp["devices"]:
        device["sigma_vth_v"] *= comparator_offset_scale
    linear = comp["offset"]["linear_model"]
    linear["residual_sigma_v"] = [x * comparator_offset_scale for x in linear["residual_sigma_v"]]
    comp["offset_sigma_v"] *= comparator_offset_scale
    comp["noise_sigma_v"] *= comparator_noise_scale
    return Calibration(data, cal.path)


@functools.lru_cache(maxsize=4)
def variant_macro(read_sigma_scale: float = 1.0, comparator_offset_scale: float = 1.0,
                  comparator_noise_scale: float = 1.0, av_sigma_scale: float = 1.0):
    """A :class:`~topkima.behavioral.TopkimaMacro` of :func:`variant_calibration` (one per process
    and knob setting)."""
    from topkima.behavioral import TopkimaMacro
    return TopkimaMacro(variant_calibration(read_sigma_scale=read_sigma_scale,
                                            comparator_offset_scale=comparator_offset_scale,
                                            comparator_noise_scale=comparator_noise_scale,
                                            av_sigma_scale=av_sigma_scale))
