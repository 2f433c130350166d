"""The comparator on ideal input sources: offset, delay against overdrive, energy per decision.

* **Offset** (input-referred, Monte Carlo): each sample gets per-device Pelgrom
  threshold draws (:mod:`topkima.circuits.mismatch`) plus the corner's global shift,
  written as the subcircuit's ``dvt_<device>`` parameters. Its offset V_os (the
  ``V(inp) - V(inn)`` at which the decision flips) is found by **bisection**: one short
  transient per trial input, decided from the sign of the latch nodes at the end.
* **Delay vs overdrive**: clk rising through vdd/2 to the winning output rising
  through vdd/2 (``.meas TRIG/TARG``), overdrive 0.1 mV ... 100 mV.
* **Energy per decision**: charge from the supply over one full clock cycle
  (evaluate + reset), ``E = -VDD * INTEG i(vdd)`` (TOOLCHAIN pitfall 6).

Transient step: the latch's decision needs a step of ≲ 20 ps (or reltol ≲ 1e-4).
With ngspice's default reltol = 1e-3 and a 0.1 ns cap the decided threshold was off
by up to 12 mV at Vcm = 0.15 V, with ideal sources as well as floating ones (checked
while writing this module): every bench here caps the step at 2 ... 10 ps.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np

from topkima.circuits import spice
from topkima.circuits import timing as tm
from topkima.circuits.comparator import BLOCK, NETLISTS, checked_delvto, checked_in_range, subckt_instance
from topkima.circuits.netlist import num
from topkima.circuits.technology import model_lines, subckt_include

# --- operating conditions of the testbenches (each with its source) -------------------
#: Primary bitline common mode for offset and energy (V); ours: the middle of the
#: 0.1 ... 0.5 V read-bitline range (0.5 V precharge, SPEC §2).
VCM_V = 0.35
#: Common modes at which the offset is reported (V); ours: the middle, the low end (largest
#: input-pair overdrive = least gain) and the top of the range the ADC decides in (after the
#: calibration phase the bitlines sit at or below ~0.45 V), so the behavioural model can
#: interpolate each instance's offset in common mode.
OFFSET_VCM_V = (0.35, 0.15, 0.45)
#: Common modes of the delay sweep (V); ours: low, middle, precharge level.
DELAY_VCM_V = (0.15, 0.35, 0.5)
#: Clock edge (10-90 % is ~0.8 of this linear ramp) (s); ours: a typical 65 nm clock buffer.
T_CLK_EDGE_S = 20e-12
#: Time before the first clock edge (s); the circuit starts at its reset DC point.
T_DELAY_S = 50e-12
#: Load on each output (F); ours: ≈ two minimum 65 nm gate inputs of the arbiter request logic.
C_LOAD_F = 2e-15
#: Evaluation window of one bisection trial (s): long enough for the latch nodes to
#: split from a few µV of input at every common mode used (measured here: clk-to-out
#: 1.0 ns at 0.1 mV and Vcm = 0.5 V; the latch nodes split ≈ 0.1 ns earlier).
T_DECIDE_S = 1.2e-9
#: Largest time step of a bisection trial (s): decisions were right down to 1 µV of
#: input with 1 ... 20 ps, and Monte Carlo offsets moved by ≤ 25 µV (≈ 0.5 % of σ)
#: against 2 ps in our checks.
T_MAX_DECIDE_S = 10e-12
#: Largest time step of delay and energy transients (s): the delay is read at ±1 ps.
T_MAX_FINE_S = 2e-12
#: Bisection: first bracket half-width and final resolution (V). ±32 mV is ≈ 8 σ of the
#: expected offset; the bracket doubles (up to MAX_BRACKET_V) if the offset lies outside.
OFFSET_BRACKET_V = 0.032
OFFSET_TOL_V = 20e-6
MAX_BRACKET_V = 0.25
#: Overdrives of the delay sweep (V): full and quick.
DELAY_OVERDRIVES_V = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)
DELAY_OVERDRIVES_QUICK_V = (1e-4, 1e-3, 1e-2, 1e-1)
#: Overdrives at which energy per decision is measured (V): near-metastable to large.
ENERGY_OVERDRIVES_V = (1e-4, 1e-3, 1e-2, 1e-1)
#: Overdrive whose energy is the artefact's ``e_per_decision_j`` (V); ours: most ramp
#: comparisons are a step or more away from the crossing (0.1 ... 100 mV span ≈ ±10 %).
ENERGY_TYPICAL_OVERDRIVE_V = 1e-2
#: Edges of the short probe pulse ``ideal_source_testbench`` can add on inp (the noise
#: sensitivity probe of :mod:`.comparator_noise`) (s).
NOISE_PULSE_EDGE_S = 2e-12


# --- testbench -------------------------------------------------------------------------
def ideal_source_testbench(*, vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float,
               temperature_c: float, c_load_f: float, t_stop_s: float, t_max_s: float,
               inp_pulse: tuple[float, float, float] | None = None,
               saves: Sequence[str] = (), measures: Sequence[str] = (), extra: Sequence[str] = ()) -> str:
    """One comparator testbench: ideal inputs, one clock, loaded outputs.

    The clock starts low (reset) and rises at ``T_DELAY_S``; period: the ramp clock, 50 % duty cycle.
    ``inp_pulse = (t_s, height_v, width_s)`` adds a trapezoidal pulse on inp (edges
    NOISE_PULSE_EDGE_S) for the noise sensitivity. ``saves``/``measures`` are lines built here, and
    so are ``extra`` element lines (the offset trim's capacitors, :mod:`.comparator_trim`).
    """
    v_inp = vcm_v + vdiff_v / 2
    v_inn = vcm_v - vdiff_v / 2
    if inp_pulse is None:
        src_inp = f"vinp inp 0 dc {num(v_inp, 'V(inp)')}"
    else:
        t0, h, w = inp_pulse
        r = NOISE_PULSE_EDGE_S
        pts = [(0.0, v_inp), (t0, v_inp), (t0 + r, v_inp + h), (t0 + r + w, v_inp + h), (t0 + 2 * r + w, v_inp)]
        src_inp = "vinp inp 0 pwl(" + " ".join(f"{num(t, 't')} {num(v, 'V')}" for t, v in pts) + ")"
    t_high = tm.active().t_clk_ramp_s / 2 - T_CLK_EDGE_S
    lines = [
        "* topkima comparator testbench (sa_strongarm)",
        *model_lines(),
        subckt_include(NETLISTS[0]),
        f".temp {num(temperature_c, 'temperature')}",
        f"vdd vdd 0 dc {num(vdd_v, 'vdd')}",
        src_inp,
        f"vinn inn 0 dc {num(v_inn, 'V(inn)')}",
        f"vclk clk 0 pulse(0 {num(vdd_v)} {num(T_DELAY_S)} {num(T_CLK_EDGE_S)} {num(T_CLK_EDGE_S)} "
        f"{num(t_high)} {num(tm.active().t_clk_ramp_s)})",
        subckt_instance("xsa", "inp", "inn", "clk", "outp", "outn", "vdd", "0", delvto_v),
        *extra,
        f"cloadp outp 0 {num(c_load_f, 'c_load_f')}",
        f"cloadn outn 0 {num(c_load_f, 'c_load_f')}",
        f".tran {num(t_max_s)} {num(t_stop_s)} 0 {num(t_max_s)}",
        *saves,
        *measures,
        ".end",
    ]
    return "\n".join(lines) + "\n"


def checked_conditions(vdd_v, temperature_c, c_load_f) -> tuple[float, float, float]:
    return (checked_in_range(vdd_v, "vdd_v", 0.5, 2.0), checked_in_range(temperature_c, "temperature_c", -55, 150),
            checked_in_range(c_load_f, "c_load_f", 0.0, 1e-12))


def checked_vcm(vcm_v, vdd_v: float) -> float:
    return checked_in_range(vcm_v, "vcm_v", 0.0, vdd_v)


def decides_outp(vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float, temperature_c: float,
              c_load_f: float, inp_pulse=None, extra: Sequence[str] = ()) -> bool:
    """True if outp wins (the latch's lp node ends above ln) after one short evaluation.

    A trial still unresolved (latch nodes less than vdd/2 apart) after T_DECIDE_S is
    rerun over the whole evaluate phase (slow corners at high common mode); if it is
    still unresolved the input sits within the bisection resolution of the offset and
    the sign of the latch nodes is as good an answer as any.
    """
    for window_s in (T_DECIDE_S, tm.active().t_clk_ramp_s / 2):
        net = ideal_source_testbench(vcm_v=vcm_v, vdiff_v=vdiff_v, delvto_v=delvto_v, vdd_v=vdd_v, temperature_c=temperature_c,
                         c_load_f=c_load_f, t_stop_s=T_DELAY_S + window_s, t_max_s=T_MAX_DECIDE_S,
                         inp_pulse=inp_pulse, saves=[".save v(xsa.lp) v(xsa.ln)"], extra=extra)
        res = spice.simulate(net, BLOCK)
        split_v = float(res.v("xsa.lp")[-1] - res.v("xsa.ln")[-1])
        if abs(split_v) > vdd_v / 2:
            break
    return split_v > 0


def bisect_flip(decide: Callable[[float], bool], bracket_v: float, tol_v: float) -> tuple[float, int]:
    """The input at which ``decide`` flips from False to True, and the number of trials.

    Assumes ``decide`` is monotonic (False below the flip point, True above).
    """
    runs = 1
    at_zero = decide(0.0)
    side = -1.0 if at_zero else 1.0  # where the flip lies
    half = bracket_v
    while True:
        runs += 1
        if decide(side * half) != at_zero:
            break
        if half >= MAX_BRACKET_V:
            raise spice.SpiceError(BLOCK, f"offset beyond ±{MAX_BRACKET_V} V: the comparator does not "
                                          "flip (check supplies, common mode and delvto)")
        half = min(2 * half, MAX_BRACKET_V)
    lo, hi = (0.0, half) if side > 0 else (-half, 0.0)  # decide(lo) False, decide(hi) True
    while hi - lo > tol_v:
        mid = 0.5 * (lo + hi)
        runs += 1
        if decide(mid):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi), runs


# --- measurement functions (jobs) ----------------------------------------------------------
def decide(vcm_v: float, vdiff_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0,
           temperature_c: float = 27.0, c_load_f: float = C_LOAD_F) -> dict:
    """One full clock cycle (evaluate, then reset) with ``V(inp) - V(inn) = vdiff_v``.

    Returns ``outp_high`` (bool) and the output levels (V) at the end of the evaluate
    phase (``v_outp_v``, ``v_outn_v``) and at the end of the following reset phase
    (``v_outp_reset_v``, ``v_outn_reset_v``), ``v_loser_max_v`` (the highest the
    losing output got during evaluation: a glitch would look like a second firing to
    the arbiter) and ``t_clk_to_out_s`` (clk rising through vdd/2 to the first output
    rising through vdd/2; None if neither rose).
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    vdiff_v = checked_in_range(vdiff_v, "vdiff_v", -vdd_v, vdd_v)
    net = ideal_source_testbench(vcm_v=vcm_v, vdiff_v=vdiff_v, delvto_v=checked_delvto(delvto_v), vdd_v=vdd_v,
                     temperature_c=temperature_c, c_load_f=c_load_f, t_stop_s=T_DELAY_S + tm.active().t_clk_ramp_s,
                     t_max_s=T_MAX_FINE_S, saves=[".save v(clk) v(outp) v(outn)"])
    res = spice.simulate(net, BLOCK)
    t, clk, outp, outn = res.time, res.v("clk"), res.v("outp"), res.v("outn")
    i_eval = int(np.searchsorted(t, T_DELAY_S + tm.active().t_clk_ramp_s / 2 - 10e-12))  # just before clk falls
    half = vdd_v / 2
    t_clk = _first_crossing(t, clk, half)
    rises = [x for x in (_first_crossing(t, outp, half), _first_crossing(t, outn, half)) if not math.isnan(x)]
    delay = min(rises) - t_clk if rises else None
    outp_high = bool(outp[i_eval] > outn[i_eval])
    loser = outn if outp_high else outp
    return {"outp_high": outp_high,
            "v_loser_max_v": float(np.max(loser[: i_eval + 1])),
            "v_outp_v": float(outp[i_eval]), "v_outn_v": float(outn[i_eval]),
            "v_outp_reset_v": float(outp[-1]), "v_outn_reset_v": float(outn[-1]),
            "t_clk_to_out_s": delay}


def _first_crossing(t: np.ndarray, v: np.ndarray, level: float) -> float:
    """First rising crossing of ``level`` (linear interpolation), NaN if none."""
    above = v >= level
    idx = np.flatnonzero(above[1:] & ~above[:-1])
    if idx.size == 0:
        return math.nan
    i = int(idx[0])
    return float(t[i] + (level - v[i]) * (t[i + 1] - t[i]) / (v[i + 1] - v[i]))


def offset_sample(delvto_v: dict, vcm_v: list, vdd_v: float = 1.0, temperature_c: float = 27.0,
                  c_load_f: float = C_LOAD_F, tol_v: float = OFFSET_TOL_V,
                  bracket_v: float = OFFSET_BRACKET_V) -> dict:
    """Input-referred offset (V) of one comparator instance at each common mode, by bisection.

    V_os is the ``V(inp) - V(inn)`` above which outp wins. Returns ``vcm_v``,
    ``offset_v`` (one per common mode) and ``n_transients``.
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    shifts = checked_delvto(delvto_v)
    if isinstance(vcm_v, (str, bytes)) or not isinstance(vcm_v, Sequence) or not vcm_v:
        raise ValueError(f"vcm_v must be a non-empty list of volts, got {vcm_v!r}")
    cms = [checked_vcm(v, vdd_v) for v in vcm_v]
    tol_v = checked_in_range(tol_v, "tol_v", 1e-7, 1e-2)
    bracket_v = checked_in_range(bracket_v, "bracket_v", 1e-4, MAX_BRACKET_V)
    offsets, runs = [], 0
    for cm in cms:
        vos, n = bisect_flip(lambda vd: decides_outp(cm, vd, shifts, vdd_v, temperature_c, c_load_f),
                              bracket_v, tol_v)
        offsets.append(vos)
        runs += n
    return {"vcm_v": cms, "offset_v": offsets, "n_transients": runs}


def delay_sweep(vcm_v: float, overdrive_v: list, delvto_v: dict | None = None, vdd_v: float = 1.0,
                temperature_c: float = 27.0, c_load_f: float = C_LOAD_F) -> dict:
    """Clock-to-output delay (s) vs positive overdrive (V) at one common mode.

    Delay = clk rising through vdd/2 to outp rising through vdd/2 (interpolated on
    the 2 ps grid), the input ``V(inp) - V(inn) = overdrive`` applied before the clock
    (nominal instance: zero offset by symmetry unless ``delvto_v`` breaks it). None
    where outp did not rise within the evaluate phase (half the active ramp clock).
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    shifts = checked_delvto(delvto_v)
    ods = [checked_in_range(v, "overdrive_v", 1e-7, vdd_v) for v in overdrive_v]
    delays = []
    for od in ods:
        net = ideal_source_testbench(vcm_v=vcm_v, vdiff_v=od, delvto_v=shifts, vdd_v=vdd_v, temperature_c=temperature_c,
                         c_load_f=c_load_f, t_stop_s=T_DELAY_S + tm.active().t_clk_ramp_s / 2, t_max_s=T_MAX_FINE_S,
                         saves=[".save v(clk) v(outp)"])
        res = spice.simulate(net, BLOCK)
        delay = _first_crossing(res.time, res.v("outp"), vdd_v / 2) - _first_crossing(res.time, res.v("clk"), vdd_v / 2)
        delays.append(None if math.isnan(delay) else delay)
    return {"vcm_v": vcm_v, "overdrive_v": ods, "t_clk_to_out_s": delays}


def energy_per_decision(vcm_v: float, overdrive_v: list, delvto_v: dict | None = None, vdd_v: float = 1.0,
                        temperature_c: float = 27.0, c_load_f: float = C_LOAD_F) -> dict:
    """Supply energy (J) of one full clock cycle (evaluate + reset) per overdrive (V).

    E = -VDD · ∫ i(vdd) dt from the clock's rising edge over one period of the active ramp clock; it
    includes the internal clock inverter and the output loads, not the clock source's
    own gate charge nor the (capacitive) charge drawn from the inputs. Also returns
    the reset-state leakage power (W) averaged before the edge.
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    shifts = checked_delvto(delvto_v)
    ods = [checked_in_range(v, "overdrive_v", 1e-7, vdd_v) for v in overdrive_v]
    t0, t1 = T_DELAY_S, T_DELAY_S + tm.active().t_clk_ramp_s
    meas = [f".meas tran qvdd integ i(vdd) from={num(t0)} to={num(t1)}",
            f".meas tran ileak avg i(vdd) from={num(0.2 * T_DELAY_S)} to={num(0.9 * T_DELAY_S)}"]
    energies, leak = [], []
    for od in ods:
        net = ideal_source_testbench(vcm_v=vcm_v, vdiff_v=od, delvto_v=shifts, vdd_v=vdd_v, temperature_c=temperature_c,
                         c_load_f=c_load_f, t_stop_s=t1 + 10e-12, t_max_s=T_MAX_FINE_S,
                         saves=[".save i(vdd)"], measures=meas)
        m = spice.simulate(net, BLOCK).measures
        energies.append(-vdd_v * m["qvdd"])
        leak.append(-vdd_v * m["ileak"])
    return {"vcm_v": vcm_v, "overdrive_v": ods, "e_per_decision_j": energies, "t_cycle_s": tm.active().t_clk_ramp_s,
            "p_leak_reset_w": leak, "c_load_f": c_load_f}
