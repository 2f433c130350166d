"""The macro's clocks and one conversion's timeline: a design's ``[timing]``, read by every testbench.

One column conversion (SPEC §2; [ours] marks this project's choices): precharge, the PWM
phase (inputs as wordline pulses in units of the PWM clock's period, 0.5 ns at 2 GHz in the
65 nm preset), one calibration clock, then up to ``n_ramp_steps`` ramp clocks (4 ns each in
the preset). In each ramp clock the ramp cell's wordline opens ``t_pulse_delay_s`` after the
clock edge and the sense amplifier evaluates from ``t_sa_clk_s`` into the clock: its *sense
instant*, where the bitline voltages it compares are read.

:class:`Clocks` is that timeline for one design (:func:`of_design`: its ``timing`` table and
the geometry the timeline depends on). Which clocks the netlists being written use is the
*active* one (:func:`active`), set for a job's duration from its ``timing`` payload the way
:mod:`topkima.circuits.technology` scopes the technology (:func:`using`,
:func:`topkima.circuits.jobs.run_job`); outside a job it is the 65 nm preset's. A design whose
clocks are the preset's has no payload (None), so its jobs keep their cache keys and its
netlists stay byte-identical. The behavioural model never imports this module: it reads the
same numbers from the calibration artefact (``column.timing``).

The upper-case constants below are the 65 nm preset's values, for documents and tests; a
testbench reads :func:`active` instead.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Mapping

from topkima.circuits.design import reference_design

#: Settling gap between the end of the PWM phase and the calibration clock [ours]
T_PWM_TO_CAL_GAP_S = 0.5e-9


@dataclass(frozen=True)
class Clocks:
    """One design's clocks and conversion timeline (s); field sources: ``circuits/designs/*.toml`` ``[timing]``."""

    t_unit_s: float          #: PWM unit: period of the PWM clock
    t_clk_ramp_s: float      #: the ramp ADC's clock: calibration clock and each ramp step
    t_pwm_s: float           #: PWM phase: the widest pair's longest pulse (q_max × largest pair scale units)
    n_ramp_steps: int        #: ramp steps of a full conversion: one per ramp row
    max_ramp_units: int      #: longest ramp pulse (PWM units): it ends before the SA evaluates
    t_wl_edge_s: float       #: wordline rise/fall (0–100 %)
    t_pre_end_s: float       #: precharge active until here
    t_pre_edge_s: float      #: precharge gate edge
    t_mac0_s: float          #: PWM pulses start
    t_pulse_delay_s: float   #: ramp/calibration wordline pulse start after its clock edge
    t_sa_clk_s: float        #: sense-amplifier evaluate edge within each ramp clock
    t_sa_edge_s: float       #: sense-amplifier clock edge
    t_sa_eval_s: float       #: evaluate phase
    t_sa_read_s: float       #: the latched decision is read this long after the SA clock edge

    @property
    def t_cal0_s(self) -> float:
        """Calibration clock starts (PWM phase done, plus a settling gap)."""
        return self.t_mac0_s + self.t_pwm_s + T_PWM_TO_CAL_GAP_S

    @property
    def max_cal_units(self) -> int:
        """Longest calibration pulse (PWM units) that fits one ramp clock after the pulse delay."""
        return int((self.t_clk_ramp_s - self.t_pulse_delay_s) / self.t_unit_s + 1e-9)

    def ramp_cycle_start_s(self, j: int) -> float:
        """Start of ramp clock ``j`` (1…n_ramp_steps); clock 0, from t_cal0_s, is the calibration phase."""
        return self.t_cal0_s + self.t_clk_ramp_s * j

    def sense_instant_s(self, j: int) -> float:
        """The sense instant of ramp cycle ``j``: the SA clock edge, where the compared bitlines are read."""
        return self.ramp_cycle_start_s(j) + self.t_sa_clk_s

    def sa_sample_time_s(self, j: int) -> float:
        """When the latched sense-amplifier output of ramp cycle ``j`` is read."""
        return self.sense_instant_s(j) + self.t_sa_read_s

    def conversion_end_s(self, ramp: bool = True) -> float:
        """End of a conversion: after the last ramp clock, or after the calibration clock."""
        return (self.ramp_cycle_start_s(self.n_ramp_steps) + self.t_clk_ramp_s if ramp
                else self.t_cal0_s + self.t_clk_ramp_s)

    def to_json(self) -> dict:
        return asdict(self)


def of_design(design) -> Clocks:
    """The clocks of a validated :class:`~topkima.circuits.design.Design`."""
    t, g = design.timing, design.geometry
    return Clocks(t_unit_s=t.t_unit_s, t_clk_ramp_s=t.t_clk_ramp_s,
                  t_pwm_s=g.q_max * max(g.pair_scales) * t.t_unit_s, n_ramp_steps=g.n_ramp_rows,
                  max_ramp_units=t.max_ramp_units, t_wl_edge_s=t.t_wl_edge_s, t_pre_end_s=t.t_pre_end_s,
                  t_pre_edge_s=t.t_pre_edge_s, t_mac0_s=t.t_mac_start_s, t_pulse_delay_s=t.t_pulse_delay_s,
                  t_sa_clk_s=t.t_sa_clk_in_cycle_s, t_sa_edge_s=t.t_sa_edge_s, t_sa_eval_s=t.t_sa_eval_s,
                  t_sa_read_s=t.t_sa_read_s)


@lru_cache(maxsize=1)
def reference() -> Clocks:
    """The 65 nm preset's clocks."""
    return of_design(reference_design())


def payload(design) -> dict | None:
    """A job's ``timing``: None when the design's clocks are the 65 nm preset's (its jobs keep their keys)."""
    clocks = of_design(design)
    return None if clocks == reference() else clocks.to_json()


def from_json(data: Mapping) -> Clocks:
    """Clocks back from :func:`payload`, validated: exactly the fields, finite positive numbers."""
    names = [f.name for f in fields(Clocks)]
    if not isinstance(data, Mapping) or set(data) != set(names):
        raise ValueError(f"a job's timing must map exactly {', '.join(names)}, got {data!r}")
    out = {}
    for name in names:
        v = data[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"timing.{name} must be a finite positive number, got {v!r}")
        if name in ("n_ramp_steps", "max_ramp_units"):
            if int(v) != v:
                raise ValueError(f"timing.{name} must be an integer, got {v!r}")
            v = int(v)
        elif not v < 1e-5:
            raise ValueError(f"timing.{name} must be a time in seconds below 10 µs, got {v!r}")
        out[name] = v
    return Clocks(**out)


_ACTIVE: contextvars.ContextVar[Clocks | None] = contextvars.ContextVar("topkima_clocks", default=None)


def active() -> Clocks:
    """The clocks the netlists being written use (the 65 nm preset's outside :func:`using`)."""
    clocks = _ACTIVE.get()
    return clocks if clocks is not None else reference()


@contextlib.contextmanager
def using(clocks: Clocks | Mapping | None):
    """Make ``clocks`` (:class:`Clocks`, a job's JSON payload, or None: the 65 nm preset's) active."""
    if clocks is not None and not isinstance(clocks, Clocks):
        clocks = from_json(clocks)
    token = _ACTIVE.set(clocks)
    try:
        yield active()
    finally:
        _ACTIVE.reset(token)


def clock_free(fn):
    """Mark a job function whose netlists never read the clocks (asynchronous benches with their own fixed
    stimulus times, DC operating points): its jobs carry no ``timing`` payload, so designs that differ only
    in their clocks share them (:func:`topkima.calibration.calibrate.plan_all`)."""
    fn.clock_free = True
    return fn


def is_clock_free(fn) -> bool:
    return bool(getattr(fn, "clock_free", False))


# The active clocks' timeline, as functions (what the testbenches call)
def ramp_cycle_start_s(j: int) -> float:
    """Start of ramp clock ``j`` of the active clocks (:meth:`Clocks.ramp_cycle_start_s`)."""
    return active().ramp_cycle_start_s(j)


def sense_instant_s(j: int) -> float:
    """The sense instant of ramp cycle ``j`` of the active clocks."""
    return active().sense_instant_s(j)


def sa_sample_time_s(j: int) -> float:
    """When the latched SA output of ramp cycle ``j`` is read (active clocks)."""
    return active().sa_sample_time_s(j)


def conversion_end_s(ramp: bool = True) -> float:
    """End of a conversion with the active clocks."""
    return active().conversion_end_s(ramp)


# The 65 nm preset's values (circuits/designs/topkima-65nm.toml, each with its source there)
_R = reference()
T_UNIT_S = _R.t_unit_s               #: PWM unit: 2 GHz PWM clock (SPEC §2)
T_CLK_RAMP_S = _R.t_clk_ramp_s       #: the ramp ADC's clock, T_clk = 4 ns (SPEC §2)
T_PWM_S = _R.t_pwm_s                 #: PWM phase: the x4 pair's longest pulse, 124 units (SPEC §4, 62 ns reading)
N_RAMP_STEPS = _R.n_ramp_steps       #: ramp steps of the 5-bit ADC: one per ramp row (SPEC §2)
MAX_RAMP_UNITS = _R.max_ramp_units   #: ramp pulse ≤ 2 ns, ended before the SA evaluates
T_WL_EDGE_S = _R.t_wl_edge_s         #: wordline edges (the ramp timing generator's 170–230 ps 10–90 % at tt)
T_PRE_END_S = _R.t_pre_end_s
T_PRE_EDGE_S = _R.t_pre_edge_s
T_MAC0_S = _R.t_mac0_s
T_CAL0_S = _R.t_cal0_s
T_PULSE_DELAY_S = _R.t_pulse_delay_s
T_SA_CLK_S = _R.t_sa_clk_s
T_SA_EDGE_S = _R.t_sa_edge_s
T_SA_EVAL_S = _R.t_sa_eval_s
T_SA_READ_S = _R.t_sa_read_s
