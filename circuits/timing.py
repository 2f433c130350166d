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

T_UNIT_S = 0.5e-9        #: PWM unit: 2 GHz PWM clock (SPEC §2)
T_CLK_RAMP_S = 4e-9      #: the ramp ADC's clock, T_clk = 4 ns: calibration clock and each ramp step (SPEC §2)
T_PWM_S = 62e-9          #: PWM phase: the x4 pair's longest pulse, 124 units (SPEC §4, 62 ns reading)
N_RAMP_STEPS = 32        #: ramp steps of the 5-bit ADC (SPEC §2)
MAX_RAMP_UNITS = 4       #: ramp pulse ≤ 2 ns so it has ended (with the generator's delay and edges) before the SA evaluates
#: Wordline rise/fall (0–100 %): the ramp timing generator's driver gives 10–90 % edges of
#: 170–230 ps at tt (circuits/ramp_timing.py)
T_WL_EDGE_S = 0.2e-9

# Timeline of one conversion (s) [ours]
T_PRE_END_S = 1.0e-9     #: precharge active until here
T_PRE_EDGE_S = 50e-12    #: precharge gate edge (a strong 1 V driver) [ours]
T_MAC0_S = 1.5e-9        #: PWM pulses start
T_CAL0_S = T_MAC0_S + T_PWM_S + 0.5e-9   #: calibration clock starts (PWM phase done)
T_PULSE_DELAY_S = 0.7e-9  #: wordline pulse start after its clock edge (ramp timing generator: 0.67–0.74 ns at tt)
T_SA_CLK_S = 3.0e-9      #: sense-amplifier evaluate edge, within each 4 ns ramp clock (after a ≤ 2 ns ramp pulse)
T_SA_EDGE_S = 30e-12     #: sense-amplifier clock edge (a sharp digital clock) [ours]
T_SA_EVAL_S = 1.2e-9     #: evaluate phase (clk→out ≤ 1.06 ns at tt up to a 0.5 V common mode, 0.1 mV)
T_SA_READ_S = 1.15e-9    #: the latched decision is read this long after the SA clock edge (inside T_SA_EVAL_S)


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
