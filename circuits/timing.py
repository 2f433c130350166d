"""The macro's clocks and one conversion's timeline, defined once for every testbench.

One column conversion (SPEC §2; [ours] marks this project's choices): precharge, the PWM
phase (inputs as wordline pulses in 0.5 ns units of the 2 GHz PWM clock), one 4 ns
calibration clock, then up to 32 ramp clocks of 4 ns. In each ramp clock the ramp cell's
wordline opens ``T_PULSE_DELAY_S`` after the clock edge and the sense amplifier evaluates
from ``T_SA_CLK_S`` into the clock: its *sense instant*, where the bitline voltages it
compares are read. The behavioural model never imports this module: it reads the same
numbers from the calibration artefact (``column.timing``).
"""
from __future__ import annotations

from topkima.circuits.design import reference_design

# The one definition of these clocks is the design preset's [timing] table
# (circuits/designs/topkima-65nm.toml, each value with its source there). A design cannot change them
# in this version: the comparator, ramp-generator and digital benches clock at them too.
_T = reference_design().timing
_G = reference_design().geometry
T_UNIT_S = _T.t_unit_s               #: PWM unit: 2 GHz PWM clock (SPEC §2)
T_CLK_RAMP_S = _T.t_clk_ramp_s       #: the ramp ADC's clock, T_clk = 4 ns: calibration clock and each ramp step (SPEC §2)
#: PWM phase: the x4 pair's longest pulse, 124 units (SPEC §4, 62 ns reading)
T_PWM_S = _G.q_max * max(_G.pair_scales) * T_UNIT_S
N_RAMP_STEPS = _G.n_ramp_rows        #: ramp steps of the 5-bit ADC: one per ramp row (SPEC §2)
MAX_RAMP_UNITS = _T.max_ramp_units   #: ramp pulse ≤ 2 ns so it has ended (with the generator's delay and edges) before the SA evaluates
#: Wordline rise/fall (0–100 %): the ramp timing generator's driver gives 10–90 % edges of
#: 170–230 ps at tt (circuits/ramp_timing.py)
T_WL_EDGE_S = _T.t_wl_edge_s

# Timeline of one conversion (s) [ours]
T_PRE_END_S = _T.t_pre_end_s         #: precharge active until here
T_PRE_EDGE_S = _T.t_pre_edge_s       #: precharge gate edge (a strong 1 V driver) [ours]
T_MAC0_S = _T.t_mac_start_s          #: PWM pulses start
T_CAL0_S = T_MAC0_S + T_PWM_S + 0.5e-9   #: calibration clock starts (PWM phase done)
T_PULSE_DELAY_S = _T.t_pulse_delay_s  #: wordline pulse start after its clock edge (ramp timing generator: 0.67–0.74 ns at tt)
T_SA_CLK_S = _T.t_sa_clk_in_cycle_s  #: sense-amplifier evaluate edge, within each 4 ns ramp clock (after a ≤ 2 ns ramp pulse)
T_SA_EDGE_S = _T.t_sa_edge_s         #: sense-amplifier clock edge (a sharp digital clock) [ours]
T_SA_EVAL_S = _T.t_sa_eval_s         #: evaluate phase (clk→out ≤ 1.06 ns at tt up to a 0.5 V common mode, 0.1 mV)
T_SA_READ_S = _T.t_sa_read_s         #: the latched decision is read this long after the SA clock edge (inside T_SA_EVAL_S)


def ramp_cycle_start_s(j: int) -> float:
    """Start of ramp clock ``j`` (1–32); clock 0, from T_CAL0_S, is the calibration phase.

    In each ramp clock the ramp cell's wordline opens T_PULSE_DELAY_S after the edge, and
    the sense amplifier evaluates from T_SA_CLK_S to T_SA_CLK_S + T_SA_EVAL_S.
    """
    return T_CAL0_S + T_CLK_RAMP_S * j


def sense_instant_s(j: int) -> float:
    """The sense instant of ramp cycle ``j``: the SA clock edge, where the compared bitlines are read."""
    return ramp_cycle_start_s(j) + T_SA_CLK_S


def sa_sample_time_s(j: int) -> float:
    """When the latched sense-amplifier output of ramp cycle ``j`` is read."""
    return sense_instant_s(j) + T_SA_READ_S


def conversion_end_s(ramp: bool = True) -> float:
    """End of a conversion: after the last ramp clock, or after the calibration clock."""
    return ramp_cycle_start_s(N_RAMP_STEPS) + T_CLK_RAMP_S if ramp else T_CAL0_S + T_CLK_RAMP_S
