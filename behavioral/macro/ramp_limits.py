"""What a column's replica rows and clock allow the ramp ADC's window (issue 14, item 6).

The window (:class:`~topkima.behavioral.macro.adc.AdcRange`) is set by n_cal calibration cells
pulsed for t_cal units (its top) and a ramp of one replica cell per clock pulsed for t_ramp units
(its LSB). Four numbers bound it, all read from the calibration artefact:

* ``n_steps`` — ramp steps of a full conversion, one ramp replica row each (artefact
  ``column.timing.n_ramp_steps``, equal to ``column.geometry.n_ramp_rows``). The ADC code of a
  fired column is n_steps − cycle: ⌈log₂ n_steps⌉ bits (5 at 32 steps, SPEC §2; 6 at 64, 7 at 128).
* ``n_cal_cells`` — calibration replica rows (``column.geometry.n_cal_rows``; SPEC §2: 32).
* ``max_t_cal_units`` — the longest calibration pulse: it must fit one ramp clock after the
  timing generator's delay (circuits/design.py: t_pulse_delay + t_cal·t_unit ≤ t_clk, 6 units at
  0.7 ns + 6 × 0.5 ns ≤ 4 ns). Artefact ``column.timing.max_t_cal_units``; absent in artefacts
  written before this field: 6, the value of their design.
* ``max_t_ramp_units`` — the longest ramp pulse: it must end before the sense instant
  (design ``timing.max_ramp_units``: 4 units). Artefact ``column.timing.max_t_ramp_units``; absent: 4.

So a window's top is at most n_cal_cells·max_t_cal_units MAC units and its span at most
n_steps·max_t_ramp_units (192 and 128 units for the 32 + 32 rows of the paper's column).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: the paper's column (SPEC §2: 32 ramp + 32 calibration rows, 4 ns clock) and this project's pulse limits
DEFAULT_N_STEPS = 32
DEFAULT_N_CAL_CELLS = 32
DEFAULT_MAX_T_CAL_UNITS = 6
DEFAULT_MAX_T_RAMP_UNITS = 4


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"RampLimits.{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RampLimits:
    """The bounds of a column's ADC window (module docstring); defaults: the paper's column."""

    n_steps: int = DEFAULT_N_STEPS                  #: ramp steps (= ramp replica rows)
    n_cal_cells: int = DEFAULT_N_CAL_CELLS          #: calibration replica rows
    max_t_cal_units: int = DEFAULT_MAX_T_CAL_UNITS  #: longest calibration pulse, PWM units
    max_t_ramp_units: int = DEFAULT_MAX_T_RAMP_UNITS  #: longest ramp pulse, PWM units

    def __post_init__(self):
        for name in ("n_steps", "n_cal_cells", "max_t_cal_units", "max_t_ramp_units"):
            _positive_int(name, getattr(self, name))

    @property
    def code_bits(self) -> int:
        """Bits of the ADC code (n_steps codes: 0 … n_steps − 1)."""
        return max(1, math.ceil(math.log2(self.n_steps)))

    @property
    def max_top_units(self) -> int:
        """The highest window top the calibration phase can set (MAC units)."""
        return self.n_cal_cells * self.max_t_cal_units

    @property
    def max_span_units(self) -> int:
        """The widest window the ramp can span (MAC units)."""
        return self.n_steps * self.max_t_ramp_units

    def check(self, n_cal, t_cal_units, t_ramp_units) -> None:
        """ValueError naming the setting that these limits do not allow, and the limit."""
        for name, v, lo, hi, what in (
                ("n_cal", n_cal, 0, self.n_cal_cells, "the column's calibration replica rows"),
                ("t_cal_units", t_cal_units, 0, self.max_t_cal_units, "the longest calibration pulse"),
                ("t_ramp_units", t_ramp_units, 1, self.max_t_ramp_units, "the longest ramp pulse")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"AdcRange.{name} must be an integer in {lo}..{hi} ({what}, "
                                 f"{self.describe()}), got {v!r}")

    def describe(self) -> str:
        return (f"{self.n_steps} ramp steps, {self.n_cal_cells} calibration cells, calibration pulse ≤ "
                f"{self.max_t_cal_units} units, ramp pulse ≤ {self.max_t_ramp_units} units")

    def to_json(self) -> dict:
        return {"n_steps": self.n_steps, "n_cal_cells": self.n_cal_cells, "max_t_cal_units": self.max_t_cal_units,
                "max_t_ramp_units": self.max_t_ramp_units}

    @classmethod
    def from_json(cls, data: dict) -> "RampLimits":
        try:
            return cls(**{k: data[k] for k in ("n_steps", "n_cal_cells", "max_t_cal_units", "max_t_ramp_units")})
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not stored ramp limits: {exc!r}") from None

    @classmethod
    def of_params(cls, p) -> "RampLimits":
        """The limits of a macro's :class:`~topkima.behavioral.params.MacroParams`."""
        return cls(p.n_ramp_steps, p.n_cal_rows, p.max_t_cal_units, p.max_t_ramp_units)
