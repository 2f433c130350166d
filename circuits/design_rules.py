"""Rules a design's clocks, replica rows and ADC knobs must keep for the testbenches to be valid.

:func:`check_consistency` is called by :func:`topkima.circuits.design.design_from_dict` on every
design; each rule names the field at fault and why the benches need it (docs/design.md).
"""
from __future__ import annotations

#: Ramp replica-row counts a design may have: a power of two (the ramp-cycle counter's 2**bits states), and at
#: least 8 (the ramp timing generator's chain bench simulates rows 0, 1 and the last)
RAMP_ROW_COUNTS = (8, 16, 32, 64, 128)
#: Column counts a design may have: a power of two (the AER arbiter is a binary tree of log2(n_columns) levels of
#: 2-input cells and the encoder's address has log2(n_columns) bits, circuits/digital.py), from 16 (the ramp
#: wordline's four RC sections of at least 4 columns, circuits/ramp_timing.py) to 1024
COLUMN_COUNTS = (16, 32, 64, 128, 256, 512, 1024)
#: Key elements per column a design may have: 1 … 256 (MAC rows = n_elements × len(pair_scales) on the bitline)
MAX_ELEMENTS = 256
#: Widest ramp pulse the ramp timing generator makes (PWM units; circuits/ramp_timing.py N_UNITS_MAX)
RAMP_GENERATOR_MAX_UNITS = 6
#: The discharge bench switches its curve's cells on this long before the precharge release (circuits/column.py)
T_CURVE_ON_LEAD_S = 0.5e-9


def check_consistency(d, fail) -> None:
    """Raise (through ``fail(field, message)``) at the first rule ``d`` (a Design) breaks."""
    t = d.timing
    ratio = t.t_clk_ramp_s / t.t_unit_s
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 2:
        fail("timing.t_clk_ramp_s", f"the ramp clock must be a whole number (≥ 2) of PWM units (t_unit_s = "
                                     f"{t.t_unit_s:g} s): the ramp timing generator cuts its pulses from the PWM clock, "
                                     f"aligned to each ramp clock edge; got {ratio:g} units")
    if t.t_wl_edge_s >= t.t_unit_s:
        fail("timing.t_wl_edge_s", f"the wordline edge ({t.t_wl_edge_s:g} s) must be shorter than one PWM unit "
                                    f"({t.t_unit_s:g} s): a one-unit pulse keeps its 50 % width only then")
    if t.t_sa_edge_s >= t.t_sa_eval_s:
        fail("timing.t_sa_edge_s", "the sense-amplifier clock edge must be shorter than its evaluate phase (t_sa_eval_s)")
    if t.t_pre_end_s < T_CURVE_ON_LEAD_S + t.t_wl_edge_s:
        fail("timing.t_pre_end_s", f"the precharge must last at least {T_CURVE_ON_LEAD_S:g} s + t_wl_edge_s: the "
                                    "discharge bench switches its cells on that long before the release")
    if t.t_mac_start_s <= t.t_pre_end_s + t.t_pre_edge_s:
        fail("timing.t_mac_start_s", "the PWM pulses must start after the precharge is released "
                                      "(t_pre_end_s + t_pre_edge_s)")
    if t.t_sa_clk_in_cycle_s + t.t_sa_eval_s > t.t_clk_ramp_s + t.t_pulse_delay_s:
        fail("timing.t_sa_clk_in_cycle_s", "the sense amplifier's evaluate phase must end before the next ramp "
                                            "pulse starts (t_clk_ramp_s + t_pulse_delay_s)")
    if t.t_sa_read_s >= t.t_sa_eval_s:
        fail("timing.t_sa_read_s", "the decision must be read inside the evaluate phase (t_sa_read_s < t_sa_eval_s)")
    if t.t_pulse_delay_s + t.max_ramp_units * t.t_unit_s > t.t_sa_clk_in_cycle_s:
        fail("timing.max_ramp_units", "the longest ramp pulse must end before the sense instant")
    if d.adc.t_cal_units > t.max_cal_units:
        fail("adc.t_cal_units", f"the calibration pulse must fit inside one ramp clock (≤ {t.max_cal_units} units)")
    n_ramp = d.geometry.n_ramp_rows
    if n_ramp not in RAMP_ROW_COUNTS:
        fail("geometry.n_ramp_rows", f"the ramp has one replica row per step and its cycle counter counts them in "
                                      f"binary (circuits/digital_counters.py): choose one of "
                                      f"{', '.join(map(str, RAMP_ROW_COUNTS))} (a 3- to 7-bit ADC), got {n_ramp}")
    n_cols = d.geometry.n_columns
    if n_cols not in COLUMN_COUNTS:
        fail("geometry.n_columns", f"the AER arbiter is a binary tree of 2-input cells and the encoder writes "
                                    f"log2(n_columns) address bits (circuits/digital.py): choose a power of two, "
                                    f"one of {', '.join(map(str, COLUMN_COUNTS))}, got {n_cols}")
    if not 1 <= d.geometry.n_elements <= MAX_ELEMENTS:
        fail("geometry.n_elements", f"key elements per column must lie in 1 … {MAX_ELEMENTS} (each takes "
                                     f"{len(d.geometry.pair_scales)} MAC rows of the column), got {d.geometry.n_elements}")
    if d.adc.t_ramp_units > RAMP_GENERATOR_MAX_UNITS:
        fail("adc.t_ramp_units", f"the ramp timing generator (circuits/ramp_timing.py) makes pulses of 1 … "
                                  f"{RAMP_GENERATOR_MAX_UNITS} PWM units, got {d.adc.t_ramp_units}")
