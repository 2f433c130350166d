"""Comparator block: the per-column PMOS-input StrongARM latch (``netlists/strongarm.sp``),
with common-mode kickback neutralisation for its floating bitline inputs.

What this module measures with ngspice, and how:

* **Offset** (input-referred, Monte Carlo): each sample gets per-device Pelgrom
  threshold draws (:mod:`topkima.circuits.mismatch`) plus the corner's global shift,
  written as the subcircuit's ``dvt_<device>`` parameters. Its offset V_os (the
  ``V(inp) - V(inn)`` at which the decision flips) is found by **bisection**: one short
  transient per trial input, decided from the sign of the latch nodes at the end.
* **Delay vs overdrive**: clk rising through vdd/2 to the winning output rising
  through vdd/2 (``.meas TRIG/TARG``), overdrive 0.1 mV ... 100 mV.
* **Energy per decision**: charge from the supply over one full clock cycle
  (evaluate + reset), ``E = -VDD * INTEG i(vdd)`` (TOOLCHAIN pitfall 6).
* **Input-referred noise**: ngspice has no BSIM4 device noise in transient analysis,
  so :func:`noise_estimate` combines two SPICE results by linear time-varying noise
  theory (white noise through a time-varying impulse sensitivity, as in P. Nuzzo,
  F. De Bernardinis, P. Terreni, G. Van der Plas, "Noise analysis of regenerative
  comparators for reconfigurable ADC architectures", IEEE TCAS-I 55(6):1441-1454,
  2008, who integrate the input pair's noise over the comparator's integration phase):
  (1) the comparator's sensitivity g(tau) to a short voltage pulse on one input gate at
  time tau, by bisection in transients; (2) the gate-referred white-noise density of
  the input transistor at its bias at tau, from ngspice's own BSIM4 ``.noise``
  analysis. sigma^2 = integral of S_v(tau) * g(tau)^2 dtau over the evaluation, plus
  the kT/C noise frozen on the four reset nodes when the reset opens. Flicker noise
  and the noise of the latch devices during regeneration are left out (Nuzzo et al.
  find the input pair's integration-phase noise dominant).
* **In-situ threshold** (:func:`insitu_threshold`): in the macro the comparator senses
  two *floating* read bitlines (≈ 170 fF each) and kicks them when it is clocked. Each
  input is loaded with C_BITLINE_F, set by an ideal switch that opens 0.3 ns before the
  clock, and clocked as in the column; the threshold is the differential on the
  floating inputs at the clock edge at which the decision flips, for the first
  decision and for one after N_HISTORY "not fired" ones (the differential rising by a
  ramp step per cycle), beside the same instance's ideal-source offset.
* **Kick and input load** (:func:`kickback`, :func:`input_capacitance`): common-mode
  and differential excursion and per-cycle residue on floating bitlines, the threshold
  shift per percent of bitline-capacitance imbalance, and the input capacitance in
  reset and latched.

Transient step: the latch's decision needs a step of ≲ 20 ps (or reltol ≲ 1e-4).
With ngspice's default reltol = 1e-3 and a 0.1 ns cap the decided threshold was off
by up to 12 mV at Vcm = 0.15 V, with ideal sources as well as floating ones (checked
while writing this module): every bench here caps the step at 2 ... 10 ps.

Every function used as a job takes JSON-able keyword arguments and returns a
JSON-able dict; every random draw is made in :func:`plan` from
``settings.rng("comparator.offset")``. Testbench text is assembled only from
:func:`~topkima.circuits.netlist.num`, :func:`~topkima.circuits.netlist.ident` and
:func:`~topkima.circuits.netlist.include`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from topkima.circuits import spice
from topkima.circuits import timing as tm
from topkima.circuits.corners import Corner
from topkima.circuits.jobs import Job
from topkima.circuits.mismatch import draw_dvth_v, sigma_vth_v
from topkima.circuits.netlist import MODEL_CARD, NMOS, PMOS, ident, include, mos, num
from topkima.circuits.settings import CalSettings

BLOCK = "comparator"
NETLISTS = ("strongarm.sp",)
SUBCKT = "sa_strongarm"
PINS = ("inp", "inn", "clk", "outp", "outn", "vdd", "vss")


@dataclass(frozen=True)
class Device:
    """One transistor of ``sa_strongarm`` (keep in sync with ``netlists/strongarm.sp``)."""

    name: str    #: instance name inside the subcircuit; its parameter is ``dvt_<name>``
    kind: str    #: 'n' or 'p'
    w_m: float   #: drawn width (m)
    l_m: float   #: drawn length (m)
    role: str    #: what it does

    @property
    def param(self) -> str:
        return f"dvt_{self.name}"

    @property
    def model(self) -> str:
        return NMOS if self.kind == "n" else PMOS


#: Every transistor of the latch, in the order of the subcircuit's parameter list.
DEVICES: tuple[Device, ...] = (
    Device("mckp", "p", 2e-6, 60e-9, "clock inverter"),
    Device("mckn", "n", 1e-6, 60e-9, "clock inverter"),
    Device("mtail", "p", 2e-6, 60e-9, "tail switch"),
    Device("mip", "p", 8e-6, 200e-9, "input (gate inp)"),
    Device("min", "p", 8e-6, 200e-9, "input (gate inn)"),
    Device("mlp", "p", 4e-6, 60e-9, "latch PMOS"),
    Device("mln", "p", 4e-6, 60e-9, "latch PMOS"),
    Device("mnp", "n", 1e-6, 120e-9, "latch NMOS"),
    Device("mnn", "n", 1e-6, 120e-9, "latch NMOS"),
    Device("mrxp", "n", 0.5e-6, 60e-9, "reset switch"),
    Device("mrxn", "n", 0.5e-6, 60e-9, "reset switch"),
    Device("mrlp", "n", 0.5e-6, 60e-9, "reset switch"),
    Device("mrln", "n", 0.5e-6, 60e-9, "reset switch"),
    Device("mb1pp", "p", 1.2e-6, 60e-9, "output buffer (skewed)"),
    Device("mb1pn", "n", 0.3e-6, 120e-9, "output buffer (skewed)"),
    Device("mb2pp", "p", 1.2e-6, 60e-9, "output buffer"),
    Device("mb2pn", "n", 0.6e-6, 60e-9, "output buffer"),
    Device("mb1np", "p", 1.2e-6, 60e-9, "output buffer (skewed)"),
    Device("mb1nn", "n", 0.3e-6, 120e-9, "output buffer (skewed)"),
    Device("mb2np", "p", 1.2e-6, 60e-9, "output buffer"),
    Device("mb2nn", "n", 0.6e-6, 60e-9, "output buffer"),
)
DEVICE_BY_NAME: dict[str, Device] = {d.name: d for d in DEVICES}
#: The input pair. V_os = k·(dvt_mip - dvt_min) with k ≈ 1.17 measured here, not 1: BSIM4
#: (mobmod = 0) lowers the vertical-field mobility degradation along with |Vth|, so a
#: delvto moves the drain current a little more than the same shift on the gate.
INPUT_PAIR = ("mip", "min")

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
T_EDGE_S = 20e-12
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

BOLTZMANN_J_PER_K = 1.380649e-23  #: exact (SI 2019)


# --- validation helpers ----------------------------------------------------------------
def _real(value, what: str) -> float:
    num(value, what)  # raises a clear ValueError for strings, bools, NaN, inf
    return float(value)


def _in_range(value, what: str, lo: float, hi: float) -> float:
    value = _real(value, what)
    if not lo <= value <= hi:
        raise ValueError(f"{what} must lie in [{lo:g}, {hi:g}], got {value!r}")
    return value


def _delvto(delvto_v: Mapping[str, float] | None) -> dict[str, float]:
    """Validated ``{device: delvto (V)}``; unknown devices and non-numbers are refused."""
    if delvto_v is None:
        return {}
    if not isinstance(delvto_v, Mapping):
        raise ValueError(f"delvto_v must be a mapping device -> volts, got {type(delvto_v).__name__}")
    out = {}
    for name, value in delvto_v.items():
        if name not in DEVICE_BY_NAME:
            raise ValueError(f"unknown comparator device {name!r}; known: {', '.join(DEVICE_BY_NAME)}")
        out[name] = _in_range(value, f"delvto of {name}", -0.5, 0.5)
    return out


def _node(name: str) -> str:
    return "0" if name == "0" else ident(name, "node")


# --- public helpers for other blocks ----------------------------------------------------
def subckt_instance(name: str, inp: str, inn: str, clk: str, outp: str, outn: str, vdd: str, vss: str,
                    delvto: Mapping[str, float] | None = None) -> str:
    """The instance line of one ``sa_strongarm`` (validated).

    ``name`` must start with 'x' (a subcircuit instance). Node names are identifiers
    or ``"0"``; ``delvto`` maps device names of :data:`DEVICES` to threshold shifts (V)
    (mismatch + corner; omitted devices get 0). The testbench must also contain
    ``include(MODEL_CARD)`` and ``include("strongarm.sp")``.
    """
    ident(name, "instance name")
    if name[0] not in "xX":
        raise ValueError(f"subcircuit instance name must start with 'x', got {name!r}")
    nodes = " ".join(_node(n) for n in (inp, inn, clk, outp, outn, vdd, vss))
    shifts = _delvto(delvto)
    params = " ".join(f"{DEVICE_BY_NAME[d.name].param}={num(shifts[d.name], 'delvto of ' + d.name)}"
                      for d in DEVICES if d.name in shifts)
    return f"{name} {nodes} {SUBCKT}" + (f" {params}" if params else "")


def corner_delvto_v(corner: Corner) -> dict[str, float]:
    """The corner's global threshold shift as ``{device: delvto (V)}`` for every device."""
    return {d.name: corner.delvto_n() if d.kind == "n" else corner.delvto_p() for d in DEVICES}


def draw_mismatch_v(rng: np.random.Generator, n: int, devices: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Pelgrom threshold draws (V), ``n`` per device, devices in :data:`DEVICES` order.

    ``devices`` restricts the draw (others get zeros and consume no random numbers).
    """
    names = [d.name for d in DEVICES] if devices is None else list(devices)
    for name in names:
        if name not in DEVICE_BY_NAME:
            raise ValueError(f"unknown comparator device {name!r}")
    out = {}
    for d in DEVICES:
        out[d.name] = draw_dvth_v(rng, d.kind, d.w_m, d.l_m, n) if d.name in names else np.zeros(n)
    return out


def pelgrom_input_pair_sigma_v() -> float:
    """Expected offset σ (V) from the input pair alone: √2·σ_Vth(input device)."""
    d = DEVICE_BY_NAME["mip"]
    return math.sqrt(2.0) * float(sigma_vth_v(d.kind, d.w_m, d.l_m))


# --- testbench -------------------------------------------------------------------------
def _testbench(*, vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float,
               temperature_c: float, c_load_f: float, t_stop_s: float, t_max_s: float,
               inp_pulse: tuple[float, float, float] | None = None,
               saves: Sequence[str] = (), measures: Sequence[str] = ()) -> str:
    """One comparator testbench: ideal inputs, one clock, loaded outputs.

    The clock starts low (reset) and rises at ``T_DELAY_S``; period: the ramp clock, 50 % duty cycle.
    ``inp_pulse = (t_s, height_v, width_s)`` adds a trapezoidal pulse on inp (edges
    NOISE_PULSE_EDGE_S) for the noise sensitivity. ``saves``/``measures`` are lines built here.
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
    t_high = tm.T_CLK_RAMP_S / 2 - T_EDGE_S
    lines = [
        "* topkima comparator testbench (sa_strongarm)",
        include(MODEL_CARD),
        include(NETLISTS[0]),
        f".temp {num(temperature_c, 'temperature')}",
        f"vdd vdd 0 dc {num(vdd_v, 'vdd')}",
        src_inp,
        f"vinn inn 0 dc {num(v_inn, 'V(inn)')}",
        f"vclk clk 0 pulse(0 {num(vdd_v)} {num(T_DELAY_S)} {num(T_EDGE_S)} {num(T_EDGE_S)} "
        f"{num(t_high)} {num(tm.T_CLK_RAMP_S)})",
        subckt_instance("xsa", "inp", "inn", "clk", "outp", "outn", "vdd", "0", delvto_v),
        f"cloadp outp 0 {num(c_load_f, 'c_load_f')}",
        f"cloadn outn 0 {num(c_load_f, 'c_load_f')}",
        f".tran {num(t_max_s)} {num(t_stop_s)} 0 {num(t_max_s)}",
        *saves,
        *measures,
        ".end",
    ]
    return "\n".join(lines) + "\n"


def _conditions(vdd_v, temperature_c, c_load_f) -> tuple[float, float, float]:
    return (_in_range(vdd_v, "vdd_v", 0.5, 1.3), _in_range(temperature_c, "temperature_c", -55, 150),
            _in_range(c_load_f, "c_load_f", 0.0, 1e-12))


def _vcm(vcm_v, vdd_v: float) -> float:
    return _in_range(vcm_v, "vcm_v", 0.0, vdd_v)


def _decision(vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float, temperature_c: float,
              c_load_f: float, inp_pulse=None) -> bool:
    """True if outp wins (the latch's lp node ends above ln) after one short evaluation.

    A trial still unresolved (latch nodes less than vdd/2 apart) after T_DECIDE_S is
    rerun over the whole evaluate phase (slow corners at high common mode); if it is
    still unresolved the input sits within the bisection resolution of the offset and
    the sign of the latch nodes is as good an answer as any.
    """
    for window_s in (T_DECIDE_S, tm.T_CLK_RAMP_S / 2):
        net = _testbench(vcm_v=vcm_v, vdiff_v=vdiff_v, delvto_v=delvto_v, vdd_v=vdd_v, temperature_c=temperature_c,
                         c_load_f=c_load_f, t_stop_s=T_DELAY_S + window_s, t_max_s=T_MAX_DECIDE_S,
                         inp_pulse=inp_pulse, saves=[".save v(xsa.lp) v(xsa.ln)"])
        res = spice.simulate(net, BLOCK)
        split_v = float(res.v("xsa.lp")[-1] - res.v("xsa.ln")[-1])
        if abs(split_v) > vdd_v / 2:
            break
    return split_v > 0


def _bisect_flip(decide: Callable[[float], bool], bracket_v: float, tol_v: float) -> tuple[float, int]:
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
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    vdiff_v = _in_range(vdiff_v, "vdiff_v", -vdd_v, vdd_v)
    net = _testbench(vcm_v=vcm_v, vdiff_v=vdiff_v, delvto_v=_delvto(delvto_v), vdd_v=vdd_v,
                     temperature_c=temperature_c, c_load_f=c_load_f, t_stop_s=T_DELAY_S + tm.T_CLK_RAMP_S,
                     t_max_s=T_MAX_FINE_S, saves=[".save v(clk) v(outp) v(outn)"])
    res = spice.simulate(net, BLOCK)
    t, clk, outp, outn = res.time, res.v("clk"), res.v("outp"), res.v("outn")
    i_eval = int(np.searchsorted(t, T_DELAY_S + tm.T_CLK_RAMP_S / 2 - 10e-12))  # just before clk falls
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
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    shifts = _delvto(delvto_v)
    if isinstance(vcm_v, (str, bytes)) or not isinstance(vcm_v, Sequence) or not vcm_v:
        raise ValueError(f"vcm_v must be a non-empty list of volts, got {vcm_v!r}")
    cms = [_vcm(v, vdd_v) for v in vcm_v]
    tol_v = _in_range(tol_v, "tol_v", 1e-7, 1e-2)
    bracket_v = _in_range(bracket_v, "bracket_v", 1e-4, MAX_BRACKET_V)
    offsets, runs = [], 0
    for cm in cms:
        vos, n = _bisect_flip(lambda vd: _decision(cm, vd, shifts, vdd_v, temperature_c, c_load_f),
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
    where outp did not rise within the evaluate phase (tm.T_CLK_RAMP_S / 2).
    """
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    shifts = _delvto(delvto_v)
    ods = [_in_range(v, "overdrive_v", 1e-7, vdd_v) for v in overdrive_v]
    delays = []
    for od in ods:
        net = _testbench(vcm_v=vcm_v, vdiff_v=od, delvto_v=shifts, vdd_v=vdd_v, temperature_c=temperature_c,
                         c_load_f=c_load_f, t_stop_s=T_DELAY_S + tm.T_CLK_RAMP_S / 2, t_max_s=T_MAX_FINE_S,
                         saves=[".save v(clk) v(outp)"])
        res = spice.simulate(net, BLOCK)
        delay = _first_crossing(res.time, res.v("outp"), vdd_v / 2) - _first_crossing(res.time, res.v("clk"), vdd_v / 2)
        delays.append(None if math.isnan(delay) else delay)
    return {"vcm_v": vcm_v, "overdrive_v": ods, "t_clk_to_out_s": delays}


def energy_per_decision(vcm_v: float, overdrive_v: list, delvto_v: dict | None = None, vdd_v: float = 1.0,
                        temperature_c: float = 27.0, c_load_f: float = C_LOAD_F) -> dict:
    """Supply energy (J) of one full clock cycle (evaluate + reset) per overdrive (V).

    E = -VDD · ∫ i(vdd) dt from the clock's rising edge over one period tm.T_CLK_RAMP_S; it
    includes the internal clock inverter and the output loads, not the clock source's
    own gate charge nor the (capacitive) charge drawn from the inputs. Also returns
    the reset-state leakage power (W) averaged before the edge.
    """
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    shifts = _delvto(delvto_v)
    ods = [_in_range(v, "overdrive_v", 1e-7, vdd_v) for v in overdrive_v]
    t0, t1 = T_DELAY_S, T_DELAY_S + tm.T_CLK_RAMP_S
    meas = [f".meas tran qvdd integ i(vdd) from={num(t0)} to={num(t1)}",
            f".meas tran ileak avg i(vdd) from={num(0.2 * T_DELAY_S)} to={num(0.9 * T_DELAY_S)}"]
    energies, leak = [], []
    for od in ods:
        net = _testbench(vcm_v=vcm_v, vdiff_v=od, delvto_v=shifts, vdd_v=vdd_v, temperature_c=temperature_c,
                         c_load_f=c_load_f, t_stop_s=t1 + 10e-12, t_max_s=T_MAX_FINE_S,
                         saves=[".save i(vdd)"], measures=meas)
        m = spice.simulate(net, BLOCK).measures
        energies.append(-vdd_v * m["qvdd"])
        leak.append(-vdd_v * m["ileak"])
    return {"vcm_v": vcm_v, "overdrive_v": ods, "e_per_decision_j": energies, "t_cycle_s": tm.T_CLK_RAMP_S,
            "p_leak_reset_w": leak, "c_load_f": c_load_f}


# --- noise -------------------------------------------------------------------------------
#: Noise sensitivity probe: trapezoidal pulse on inp (height V, flat width s, edges 2 ps).
#: 20 mV is small against the input pair's ≈ 0.2 V overdrive (linear), large enough that
#: its input-referred effect (≈ 1 mV) is 500× the bisection resolution NOISE_TOL_V.
NOISE_PULSE_V = 0.02
NOISE_PULSE_WIDTH_S = 8e-12
NOISE_PULSE_EDGE_S = 2e-12
NOISE_TOL_V = 2e-6
#: Spacing of the probe times (s); the sensitivity varies on a ≈ 100 ps scale.
NOISE_TAU_STEP_S = 15e-12
NOISE_TAU_STEP_QUICK_S = 30e-12
#: Frequency band of the ``.noise`` runs (Hz): white channel noise, far above the
#: flicker corner, where the input transistor's gate admittance is still ≪ its gm.
NOISE_BAND_HZ = (1e9, 1.1e9)


def _gate_noise_psd(vcm_v: float, v_source_v: float, v_drain_v: float, v_bulk_v: float, delvto_v: float,
                    temperature_c: float) -> tuple[float, float]:
    """Gate-referred white noise density (V²/Hz, one-sided) and gm (S) of the input device.

    ngspice ``.noise`` of one PMOS of the input pair's size at the given terminal
    voltages (BSIM4 channel thermal noise, ``tnoimod = 0`` in the PTM card).
    """
    d = DEVICE_BY_NAME["mip"]
    f1, f2 = NOISE_BAND_HZ
    net = "\n".join([
        "* topkima comparator: input-device noise density",
        include(MODEL_CARD),
        f".temp {num(temperature_c, 'temperature')}",
        f"vsrc s 0 dc {num(v_source_v)}",
        f"vbulk b 0 dc {num(v_bulk_v)}",
        f"vgate g 0 dc {num(vcm_v)} ac 1",
        f"vdrain d 0 dc {num(v_drain_v)}",
        "hsense out 0 vdrain 1",
        mos("m1", "d", "g", "s", "b", d.model, d.w_m, d.l_m, delvto_v),
        f".noise v(out) vgate lin 2 {num(f1)} {num(f2)}",
        ".end",
    ]) + "\n"
    res = spice.simulate(net, BLOCK)
    onoise, inoise = float(res.vectors["onoise_total"][0]), float(res.vectors["inoise_total"][0])
    band = f2 - f1
    return inoise ** 2 / band, (onoise / inoise if inoise > 0 else 0.0)


def noise_estimate(vcm_v: float = VCM_V, delvto_v: dict | None = None, vdd_v: float = 1.0,
                   temperature_c: float = 27.0, c_load_f: float = C_LOAD_F,
                   tau_step_s: float = NOISE_TAU_STEP_S) -> dict:
    """Input-referred noise σ (V) of the comparator: an estimate from SPICE quantities.

    Not a transient noise simulation (ngspice has none for BSIM4 devices here). The
    comparator is treated as a linear time-varying system up to its decision:

    1. Sensitivity: a short pulse of area A (V·s) on inp at time τ shifts the
       balance point by ``-g(τ)·A``; g (1/s) is found by bisection in transients.
    2. Input-pair channel noise, referred to the gate: white, one-sided density
       S_v(τ) (V²/Hz) from ngspice ``.noise`` of the input device at its terminal
       voltages at τ (taken from a balanced transient).
    3. Two independent devices, each with two-sided density S_v/2 through the same
       |g|: ``σ_th² = ∫ S_v(τ)·g(τ)² dτ``.
    4. Reset noise: ``kT·C`` of charge left on each of xn, ln (and xp, lp) when the
       reset opens, referred through the charge sensitivity ``h = g/gm`` at the
       input device's peak gm: ``σ_rst² = 2·kT·(C_x + C_l)·h²``, with C_x, C_l from
       the node slopes of the balanced transient (C = I / dV/dt).

    Also returned: the first-order ``4kTγ/∫gm dt`` (γ from the same ``.noise``),
    integrated from the clock edge to the latch NMOS turn-on, for comparison.
    Left out: flicker noise and the latch devices' noise (the input pair's
    integration-phase noise dominates: Nuzzo et al., IEEE TCAS-I 55(6), 2008).
    """
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    shifts = _delvto(delvto_v)
    tau_step_s = _in_range(tau_step_s, "tau_step_s", 2e-12, 100e-12)
    kt_j = BOLTZMANN_J_PER_K * (temperature_c + 273.15)

    # balanced transient: operating point along the evaluation
    vos = offset_sample(shifts, [vcm_v], vdd_v, temperature_c, c_load_f, tol_v=NOISE_TOL_V)["offset_v"][0]
    saves = [".save v(clk) v(xsa.tail) v(xsa.xn) v(xsa.ln) @m.xsa.mip[gm] @m.xsa.mip[id] @m.xsa.mln[id] "
             "@m.xsa.mnn[vth]"]
    net = _testbench(vcm_v=vcm_v, vdiff_v=vos, delvto_v=shifts, vdd_v=vdd_v, temperature_c=temperature_c,
                     c_load_f=c_load_f, t_stop_s=T_DELAY_S + T_DECIDE_S, t_max_s=1e-12, saves=saves)
    op = spice.simulate(net, BLOCK)
    t = op.time
    tail, xn, ln = op.v("xsa.tail"), op.v("xsa.xn"), op.v("xsa.ln")
    gm = np.abs(op.vectors["@m.xsa.mip[gm]"])
    id_in = np.abs(op.vectors["@m.xsa.mip[id]"])
    id_latch = np.abs(op.vectors["@m.xsa.mln[id]"])
    vthn = float(np.median(op.vectors["@m.xsa.mnn[vth]"]))

    # node capacitances from slopes: C = I / (dV/dt)
    dxn, dln = np.gradient(xn, t), np.gradient(ln, t)
    win_x = (xn > 0.1 * vdd_v) & (xn < 0.3 * vdd_v) & (id_latch < 0.05 * id_in) & (dxn > 0)
    win_l = (ln > 0.05 * vdd_v) & (ln < 0.5 * vthn) & (dln > 0)
    if not win_x.any() or not win_l.any():
        raise spice.SpiceError(BLOCK, "noise estimate: the balanced transient has no clean integration phase")
    c_x_f = float(np.median(id_in[win_x] / dxn[win_x]))
    c_l_f = float(np.median(id_latch[win_l] / dln[win_l]))

    # first-order estimate window: clock edge to the latch NMOS turn-on
    t_on = float(t[np.flatnonzero(ln >= vthn)[0]]) if (ln >= vthn).any() else float(t[-1])
    sel = (t >= T_DELAY_S) & (t <= t_on)
    gm_integral_c_per_v = float(np.trapezoid(gm[sel], t[sel]))

    # sensitivity g(τ) and gate noise density S_v(τ)
    area_v_s = NOISE_PULSE_V * (NOISE_PULSE_WIDTH_S + NOISE_PULSE_EDGE_S)
    taus, g_per_s, s_v, gm_tau = [], [], [], []
    tau = T_DELAY_S
    g_max = 0.0
    while tau < T_DELAY_S + T_DECIDE_S - 0.2e-9:
        t0 = tau - NOISE_PULSE_WIDTH_S / 2 - NOISE_PULSE_EDGE_S
        pulse = (t0, NOISE_PULSE_V, NOISE_PULSE_WIDTH_S)
        bal, _ = _bisect_flip(lambda vd: _decision(vcm_v, vd, shifts, vdd_v, temperature_c, c_load_f, pulse),
                              0.002, NOISE_TOL_V)
        g = -(bal - vos) / area_v_s
        k = min(int(np.searchsorted(t, tau)), len(t) - 1)
        psd, gm_n = _gate_noise_psd(vcm_v, float(tail[k]), float(xn[k]), vdd_v, shifts.get("mip", 0.0),
                                    temperature_c)
        taus.append(tau)
        g_per_s.append(g)
        s_v.append(psd)
        gm_tau.append(gm_n)
        g_max = max(g_max, abs(g))
        if g_max > 0 and abs(g) < 0.02 * g_max and len(taus) > 3:
            break  # the latch has taken over: later noise no longer matters
        tau += tau_step_s
    taus_a, g_a, s_a, gm_noise_a = map(np.asarray, (taus, g_per_s, s_v, gm_tau))
    gm_a = np.interp(taus_a, t, gm)  # the input device's gm in the transient at each τ
    # A device that is off has a huge gate-referred density but no g; skip it (its
    # product would only add bisection round-off).
    on = gm_a > 0.1 * gm_a.max()
    integrand = np.where(on, s_a * g_a ** 2, 0.0)
    var_th = float(np.sum(integrand) * tau_step_s)
    i_pk = int(np.argmax(gm_a))
    h_v_per_c = abs(g_a[i_pk]) / gm_a[i_pk]
    var_rst = 2 * kt_j * (c_x_f + c_l_f) * h_v_per_c ** 2
    gamma = float(s_a[i_pk] * gm_noise_a[i_pk] / (4 * kt_j))
    var_first = 4 * kt_j * gamma / gm_integral_c_per_v
    return {
        "vcm_v": vcm_v,
        "sigma_noise_v": math.sqrt(var_th + var_rst),
        "sigma_thermal_v": math.sqrt(var_th),
        "sigma_reset_v": math.sqrt(var_rst),
        "sigma_first_order_v": math.sqrt(var_first),
        "gamma_eff": gamma,
        "gm_integral_c_per_v": gm_integral_c_per_v,
        "c_x_f": c_x_f,
        "c_l_f": c_l_f,
        "tau_s": [float(x) for x in taus_a],
        "g_per_s": [float(x) for x in g_a],
        "s_v_v2_per_hz": [float(x) for x in s_a],
        "gm_a_per_v": [float(x) for x in gm_a],
        "offset_v": vos,
    }


# --- in-situ threshold: floating capacitive inputs, as on the read bitlines -------------
#: Capacitance of one read bitline at the sense amplifier (F): ≈ 170 fF measured by the
#: lead on the column testbench of circuits/column.py (256 rows × 0.15 fF wire plus the
#: read ports' junctions). The in-situ benches load each input with this, floating.
C_BITLINE_F = 170e-15
#: Kickback-neutralisation capacitor on each input, to the internal clkb (F); the value
#: written in netlists/strongarm.sp (cnkp, cnkn), checked against it by the tests.
C_NEUTRALISE_F = 3.5e-15
#: Cross-coupled neutralisation capacitor from each input to the other input device's
#: drain (F): cxkp (inp - xp), cxkn (inn - xn) in netlists/strongarm.sp.
C_CROSS_NEUTRALISE_F = 2.4e-15
#: The bitlines are set by ideal switches that open this long before the first clock
#: edge (s); ours, as in the lead's floating-input check (the column's precharge/MAC
#: drivers let go of the bitlines well before; 0.3 ns is the shortest, harshest case).
T_SWITCH_OPEN_BEFORE_CLK_S = 0.3e-9
#: Switches closed from t = 0 until here (s): the DC point is the reset state.
T_SWITCH_OPEN_S = 0.5e-9


def column_timing() -> dict:
    """The column's sense-amplifier timing (s), read from circuits/timing.py now.

    ``t_clk_s`` ramp clock; ``t_eval_s`` evaluate phase (clk high); ``t_read_s``
    decision read after the SA clock edge (timing.sa_sample_time_s); the ramp-cell
    pulse starts ``t_ramp_after_edge_s`` after an SA clock edge (next ramp clock +
    its wordline delay) and lasts ``t_ramp_width_s`` (MAX_RAMP_UNITS units). Passed
    to the in-situ jobs as an argument so a timing change in the column reruns them.
    """
    timing = {"t_clk_s": tm.T_CLK_RAMP_S, "t_eval_s": tm.T_SA_EVAL_S,
              "t_read_s": tm.sa_sample_time_s(1) - tm.ramp_cycle_start_s(1) - tm.T_SA_CLK_S,
              "t_ramp_after_edge_s": tm.T_CLK_RAMP_S - tm.T_SA_CLK_S + tm.T_PULSE_DELAY_S,
              "t_ramp_width_s": tm.MAX_RAMP_UNITS * tm.T_UNIT_S}
    return {k: round(float(v), 15) for k, v in timing.items()}  # femtosecond grid: stable cache keys


def _timing(timing: Mapping[str, float] | None) -> dict:
    ref = column_timing()
    if timing is None:
        return ref
    if not isinstance(timing, Mapping) or set(timing) != set(ref):
        raise ValueError(f"timing must map exactly {sorted(ref)} to seconds, got {timing!r}")
    return {k: _in_range(v, k, 1e-12, 1e-6) for k, v in timing.items()}


#: Ramp step (V): R - L rises 2.09 ... 2.14 mV per ramp clock in the column at
#: t_ramp_units = 4 (2.86 mV at 5; measured with column.measure_conversion, tt,
#: CM ≈ 0.41 V). On the in-situ bench the comparator's own input load takes ~9 % of it.
INSITU_STEP_V = 2.1e-3
#: Prior "not fired" decisions before the history-case decision; ours (task brief: ≥ 3).
N_HISTORY = 3
#: Common modes of the in-situ checks (V): the read-bitline range at the SA (SPEC §2:
#: 0.5 V precharge; the ramp ends near 0.15 V at full scale) [ours].
INSITU_VCM_V = (0.15, 0.25, 0.35, 0.45)
INSITU_VCM_QUICK_V = (0.15, 0.3, 0.45)
#: Bisection resolution of the in-situ thresholds (V): 1/10 of the ±0.5 mV target.
INSITU_TOL_V = 20e-6
#: First bracket half-width around the ideal-source offset (V); doubled if needed.
INSITU_BRACKET_V = 2e-3
#: Largest time step of in-situ trials (s). With the 0.1 ns cap of a coarse
#: ``.tran 0.1n`` (the column testbench's) the decision of this latch is wrong by up
#: to 12 mV at Vcm = 0.15 V even with ideal sources; 20 ps and 5 ps gave identical
#: thresholds (±10 µV) in our checks, and so does reltol = 1e-4 at 0.1 ns.
T_MAX_INSITU_S = 10e-12
#: Differential of the kick runs (V): a clear "fired" (+) and "not fired" (-) decision.
KICK_VDIFF_V = 5e-3
#: Bitline-capacitance imbalance of the sensitivity check (fraction of C_BITLINE_F on inn).
C_IMBALANCE_FRACTION = 0.05
#: Input-capacitance probe: a slow ramp of this height over T_CIN_RAMP_S on one input.
V_CIN_RAMP_V = 10e-3
T_CIN_RAMP_S = 1e-9
T_CIN_SETTLE_S = 1e-9
CIN_VDIFF_V = 50e-3


def _insitu_testbench(*, vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float,
                      temperature_c: float, c_load_f: float, c_inp_f: float, c_inn_f: float, n_cycles: int,
                      step_v: float, t_max_s: float, saves: Sequence[str], timing: Mapping[str, float]
                      ) -> tuple[str, float]:
    """Floating-input testbench: each input a capacitor set by an ideal switch.

    The switches hold ``V(inp) = vcm + vdiff/2`` and ``V(inn) = vcm - vdiff/2`` until
    ``T_SWITCH_OPEN_S`` and open 0.3 ns before the first clock edge; the comparator is
    then clocked ``n_cycles`` times as in the column (``timing``: evaluate ``t_eval_s``
    every ``t_clk_s``). Between decisions a current pulse removes ``c_inn·step_v`` of
    charge from inn (the ramp on RBL_L), timed as the column's ramp-cell pulse.
    Returns the netlist and the first edge time (s).
    """
    t_edge0 = T_SWITCH_OPEN_S + T_SWITCH_OPEN_BEFORE_CLK_S
    t_clk, t_ramp_w = timing["t_clk_s"], timing["t_ramp_width_s"]
    t_stop = t_edge0 + (n_cycles - 1) * t_clk + timing["t_read_s"] + 20e-12
    lines = [
        "* topkima comparator in-situ testbench: floating capacitive inputs (sa_strongarm)",
        include(MODEL_CARD),
        include(NETLISTS[0]),
        f".temp {num(temperature_c, 'temperature')}",
        f"vdd vdd 0 dc {num(vdd_v, 'vdd')}",
        f"vsetp setp 0 dc {num(vcm_v + vdiff_v / 2, 'V(inp)')}",
        f"vsetn setn 0 dc {num(vcm_v - vdiff_v / 2, 'V(inn)')}",
        f"vsw sw 0 pwl(0 1 {num(T_SWITCH_OPEN_S)} 1 {num(T_SWITCH_OPEN_S + T_EDGE_S)} 0)",
        "ssetp inp setp sw 0 swideal",
        "ssetn inn setn sw 0 swideal",
        ".model swideal sw vt=0.5 vh=0.1 ron=10 roff=1e13",
        f"cblp inp 0 {num(c_inp_f, 'c_inp_f')}",
        f"cbln inn 0 {num(c_inn_f, 'c_inn_f')}",
        f"vclk clk 0 pulse(0 {num(vdd_v)} {num(t_edge0)} {num(T_EDGE_S)} {num(T_EDGE_S)} "
        f"{num(timing['t_eval_s'])} {num(t_clk)})",
        subckt_instance("xsa", "inp", "inn", "clk", "outp", "outn", "vdd", "0", delvto_v),
        f"cloadp outp 0 {num(c_load_f, 'c_load_f')}",
        f"cloadn outn 0 {num(c_load_f, 'c_load_f')}",
    ]
    if step_v and n_cycles > 1:
        i_ramp_a = c_inn_f * step_v / t_ramp_w
        lines.append(f"iramp inn 0 pulse(0 {num(i_ramp_a)} {num(t_edge0 + timing['t_ramp_after_edge_s'])} "
                     f"{num(T_EDGE_S)} {num(T_EDGE_S)} {num(t_ramp_w - T_EDGE_S)} {num(t_clk)})")
    lines += [f".tran {num(t_max_s)} {num(t_stop)} 0 {num(t_max_s)}", *saves, ".end"]
    return "\n".join(lines) + "\n", t_edge0


def _insitu_run(vcm_v: float, vdiff_v: float, delvto_v: Mapping[str, float], vdd_v: float, temperature_c: float,
                c_load_f: float, c_inp_f: float, c_inn_f: float, n_cycles: int, step_v: float,
                timing: Mapping[str, float]):
    """One floating-input transient: (fired per cycle, V(inp)-V(inn) at each edge, result, t_edge0)."""
    net, t0 = _insitu_testbench(vcm_v=vcm_v, vdiff_v=vdiff_v, delvto_v=delvto_v, vdd_v=vdd_v,
                                temperature_c=temperature_c, c_load_f=c_load_f, c_inp_f=c_inp_f, c_inn_f=c_inn_f,
                                n_cycles=n_cycles, step_v=step_v, t_max_s=T_MAX_INSITU_S,
                                saves=[".save v(inp) v(inn) v(outp) v(outn)"], timing=timing)
    res = spice.simulate(net, BLOCK)
    t, outp = res.time, res.v("outp")
    vd = res.v("inp") - res.v("inn")
    edges = [t0 + k * timing["t_clk_s"] for k in range(n_cycles)]
    fired = [bool(np.interp(e + timing["t_read_s"], t, outp) > vdd_v / 2) for e in edges]
    vd_edges = [float(np.interp(e, t, vd)) for e in edges]
    return fired, vd_edges, res, t0


def _insitu_flip(vcm_v: float, delvto_v: Mapping[str, float], vdd_v: float, temperature_c: float, c_load_f: float,
                 c_inp_f: float, c_inn_f: float, n_history: int, guess_v: float, tol_v: float,
                 timing: Mapping[str, float]) -> dict:
    """In-situ threshold of decision ``n_history`` (0 = first) by bisection on the set differential.

    ``decide(v0)`` is True if decision ``n_history`` or an earlier one fired (an
    earlier firing means v0 is above the flip point: monotonic). The threshold is the
    differential V(inp) - V(inn) on the floating inputs at that decision's clock edge
    (kick residue of the earlier cycles included), at the two bracketing trials.
    """
    n_cycles = n_history + 1
    seen: dict[float, tuple[list[bool], list[float]]] = {}

    def decide(v0: float) -> bool:
        v_set = v0 - n_history * INSITU_STEP_V  # the ramp adds one step per earlier cycle
        fired, vd_edges, _, _ = _insitu_run(vcm_v, v_set, delvto_v, vdd_v, temperature_c, c_load_f, c_inp_f,
                                            c_inn_f, n_cycles, INSITU_STEP_V, timing)
        seen[v0] = (fired, vd_edges)
        return any(fired)

    lo, hi = guess_v - INSITU_BRACKET_V, guess_v + INSITU_BRACKET_V
    half = INSITU_BRACKET_V
    while decide(lo) or not decide(hi):
        half *= 2
        if half > MAX_BRACKET_V:
            raise spice.SpiceError(BLOCK, f"in-situ threshold not within ±{MAX_BRACKET_V} V of {guess_v} V")
        lo, hi = guess_v - half, guess_v + half
    while hi - lo > tol_v:
        mid = 0.5 * (lo + hi)
        if decide(mid):
            hi = mid
        else:
            lo = mid
    (f_lo, vd_lo), (f_hi, vd_hi) = seen[lo], seen[hi]
    return {"threshold_v": 0.5 * (vd_lo[-1] + vd_hi[-1]),
            "bracket_v": [vd_lo[-1], vd_hi[-1]],
            "prior_fired_at_flip": bool(any(f_hi[:-1])),
            "vdiff_at_prior_edges_v": vd_hi[:-1],
            "n_transients": len(seen)}


def insitu_threshold(vcm_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0, temperature_c: float = 27.0,
                     c_load_f: float = C_LOAD_F, c_bitline_f: float = C_BITLINE_F, n_history: int = N_HISTORY,
                     tol_v: float = INSITU_TOL_V, timing: dict | None = None) -> dict:
    """Decision threshold of one instance on floating bitline-like inputs, beside its ideal-source offset.

    Ideal-source offset: :func:`offset_sample` (bisection, sources on both inputs).
    In-situ: both inputs floating on ``c_bitline_f`` (:func:`_insitu_testbench`);
    ``threshold_first_v`` is the V(inp) - V(inn) at the clock edge at which the first
    decision flips; ``threshold_after_history_v`` the same for the decision that
    follows ``n_history`` "not fired" decisions, the differential rising by
    INSITU_STEP_V per cycle (a ramp). All in V. ``timing``: :func:`column_timing`
    (the default) or the same keys.
    """
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    shifts = _delvto(delvto_v)
    c_bitline_f = _in_range(c_bitline_f, "c_bitline_f", 1e-15, 10e-12)
    if not isinstance(n_history, int) or isinstance(n_history, bool) or not 1 <= n_history <= 10:
        raise ValueError(f"n_history must be an integer in [1, 10], got {n_history!r}")
    tol_v = _in_range(tol_v, "tol_v", 1e-6, 1e-3)
    timing = _timing(timing)
    ideal = offset_sample(shifts, [vcm_v], vdd_v, temperature_c, c_load_f, tol_v=OFFSET_TOL_V)
    vos = ideal["offset_v"][0]
    args = (vcm_v, shifts, vdd_v, temperature_c, c_load_f, c_bitline_f, c_bitline_f)
    first = _insitu_flip(*args, 0, vos, tol_v, timing)
    hist = _insitu_flip(*args, n_history, vos, tol_v, timing)
    return {"vcm_v": vcm_v, "c_bitline_f": c_bitline_f, "offset_ideal_v": vos,
            "threshold_first_v": first["threshold_v"], "threshold_after_history_v": hist["threshold_v"],
            "n_history": n_history, "step_v": INSITU_STEP_V, "tol_v": tol_v,
            "first": first, "after_history": hist, "timing": timing,
            "n_transients": ideal["n_transients"] + first["n_transients"] + hist["n_transients"]}


def input_capacitance(vcm_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0, temperature_c: float = 27.0,
                      c_load_f: float = C_LOAD_F) -> dict:
    """Small-signal capacitance (F) one input presents to its bitline, in reset and when latched.

    A slow ramp (V_CIN_RAMP_V over T_CIN_RAMP_S) on inp, inn held CIN_VDIFF_V lower,
    with clk low (reset: the state the bitline sees while the ramp cells discharge it)
    or after a real clock edge (latched, outp the winner; the ramp starts
    T_CIN_SETTLE_S after the edge). C = -(mean i(vinp) - the same without the ramp) /
    slope over the ramp's middle: the difference removes the slow drift of the
    latched state's floating internal nodes. The neutralisation capacitor (to clkb,
    a steady rail in both states) is included.
    """
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    shifts = _delvto(delvto_v)
    t_clk = 0.1e-9
    t1, t2 = t_clk + T_CIN_SETTLE_S, t_clk + T_CIN_SETTLE_S + T_CIN_RAMP_S
    slope = V_CIN_RAMP_V / T_CIN_RAMP_S
    out = {"vcm_v": vcm_v}
    for state, v_clk in (("reset", 0.0), ("latched", vdd_v)):
        i_avg = []
        for ramp_v in (V_CIN_RAMP_V, 0.0):
            net = "\n".join([
                "* topkima comparator input capacitance (sa_strongarm)",
                include(MODEL_CARD), include(NETLISTS[0]),
                f".temp {num(temperature_c, 'temperature')}",
                f"vdd vdd 0 dc {num(vdd_v, 'vdd')}",
                f"vinp inp 0 pwl(0 {num(vcm_v)} {num(t1)} {num(vcm_v)} {num(t2)} {num(vcm_v + ramp_v)})",
                f"vinn inn 0 dc {num(vcm_v - CIN_VDIFF_V)}",
                f"vclk clk 0 pwl(0 0 {num(t_clk)} 0 {num(t_clk + T_EDGE_S)} {num(v_clk)})",
                subckt_instance("xsa", "inp", "inn", "clk", "outp", "outn", "vdd", "0", shifts),
                f"cloadp outp 0 {num(c_load_f, 'c_load_f')}",
                f"cloadn outn 0 {num(c_load_f, 'c_load_f')}",
                f".tran 5e-12 {num(t2 + 0.05e-9)} 0 5e-12",
                ".save i(vinp)",
                f".meas tran iin avg i(vinp) from={num(t1 + 0.3 * T_CIN_RAMP_S)} to={num(t2 - 0.1 * T_CIN_RAMP_S)}",
                ".end"]) + "\n"
            i_avg.append(spice.simulate(net, BLOCK).measures["iin"])
        out[f"c_in_{state}_f"] = -(i_avg[0] - i_avg[1]) / slope
    return out


def kickback(vcm_v: float, delvto_v: dict | None = None, vdd_v: float = 1.0, temperature_c: float = 27.0,
             c_load_f: float = C_LOAD_F, c_bitline_f: float = C_BITLINE_F, n_cycles: int = 3,
             tol_v: float = INSITU_TOL_V, timing: dict | None = None) -> dict:
    """Kick of the comparator on two floating ``c_bitline_f`` inputs, and what it costs.

    Two runs of ``n_cycles`` decisions with no ramp, differential +KICK_VDIFF_V
    (every decision fires) and -KICK_VDIFF_V (none does). All in V, relative to the
    value at the first clock edge:

    * ``cm_excursion_max_v`` / ``cm_excursion_min_v``: extremes of the input common
      mode during the first evaluate phase; ``cm_at_read_v`` at the decision read;
    * ``cm_residue_v``: common-mode change from one clock edge to the next, per cycle
      (what the next decision inherits);
    * ``diff_excursion_max_abs_v``: largest change of V(inp) - V(inn) during the first
      evaluate phase (mostly regeneration, after the decision is taken);
    * ``diff_residue_fired_v`` / ``diff_residue_not_fired_v``: change of the
      differential from one edge to the next after each decision;
    * ``threshold_shift_per_pct_imbalance_v``: shift of the first-decision threshold
      when inn carries C_IMBALANCE_FRACTION more capacitance than inp, per percent
      (the common-mode kick turned differential by unequal bitlines).
    """
    vdd_v, temperature_c, c_load_f = _conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = _vcm(vcm_v, vdd_v)
    shifts = _delvto(delvto_v)
    c_bitline_f = _in_range(c_bitline_f, "c_bitline_f", 1e-15, 10e-12)
    timing = _timing(timing)
    out: dict = {"vcm_v": vcm_v, "c_bitline_f": c_bitline_f, "vdiff_v": KICK_VDIFF_V, "n_cycles": n_cycles}
    for sign, tag in ((1, "fired"), (-1, "not_fired")):
        fired, vd_edges, res, t0 = _insitu_run(vcm_v, sign * KICK_VDIFF_V, shifts, vdd_v, temperature_c, c_load_f,
                                               c_bitline_f, c_bitline_f, n_cycles, 0.0, timing)
        if fired != [sign > 0] * n_cycles:
            raise spice.SpiceError(BLOCK, f"kick run at {sign * KICK_VDIFF_V} V decided {fired}")
        t, vp, vn = res.time, res.v("inp"), res.v("inn")
        cm, vd = 0.5 * (vp + vn), vp - vn
        edges = [t0 + k * timing["t_clk_s"] for k in range(n_cycles)]
        cm_edges = [float(np.interp(e, t, cm)) for e in edges]
        win = (t >= t0) & (t <= t0 + timing["t_eval_s"] + T_EDGE_S)
        out[f"diff_residue_{tag}_v"] = list(np.diff(vd_edges))
        if sign > 0:
            out["cm_excursion_max_v"] = float(np.max(cm[win]) - cm_edges[0])
            out["cm_excursion_min_v"] = float(np.min(cm[win]) - cm_edges[0])
            out["cm_at_read_v"] = float(np.interp(t0 + timing["t_read_s"], t, cm) - cm_edges[0])
            out["cm_residue_v"] = list(np.diff(cm_edges))
            out["diff_excursion_max_abs_v"] = float(np.max(np.abs(vd[win] - vd_edges[0])))
    args = (vcm_v, shifts, vdd_v, temperature_c, c_load_f)
    equal = _insitu_flip(*args, c_bitline_f, c_bitline_f, 0, 0.0, tol_v, timing)
    unequal = _insitu_flip(*args, c_bitline_f, c_bitline_f * (1 + C_IMBALANCE_FRACTION), 0, 0.0, tol_v, timing)
    out["threshold_equal_c_v"] = equal["threshold_v"]
    out["threshold_unequal_c_v"] = unequal["threshold_v"]
    out["c_imbalance_fraction"] = C_IMBALANCE_FRACTION
    out["threshold_shift_per_pct_imbalance_v"] = (unequal["threshold_v"] - equal["threshold_v"]) / (
        100 * C_IMBALANCE_FRACTION)
    out.update({k: v for k, v in input_capacitance(vcm_v, shifts, vdd_v, temperature_c, c_load_f).items()
                if k.startswith("c_in_")})
    return out


# --- plan and summary ----------------------------------------------------------------------
RNG_PURPOSE = "comparator.offset"
_FN = "topkima.circuits.comparator:"
#: Mirror-image device pairs: swapping sides flips the offset's sign, so the budget
#: simulates the first of each pair and counts the pair twice. The clock inverter and
#: the tail are shared by both sides and add no offset by symmetry.
MIRROR_PAIRS: tuple[tuple[str, str], ...] = (
    ("mip", "min"), ("mlp", "mln"), ("mnp", "mnn"), ("mrxp", "mrxn"), ("mrlp", "mrln"),
    ("mb1pp", "mb1np"), ("mb1pn", "mb1nn"), ("mb2pp", "mb2np"), ("mb2pn", "mb2nn"),
)


def _offset_draws(settings: CalSettings) -> dict[str, np.ndarray]:
    """The Monte Carlo's local threshold draws (V), regenerated identically from the seed."""
    return draw_mismatch_v(settings.rng(RNG_PURPOSE), settings.mc_samples)


def _common(settings: CalSettings) -> dict:
    return {"vdd_v": float(settings.supplies.v_sa_v), "temperature_c": float(settings.temperature_c),
            "c_load_f": C_LOAD_F}


def _mv(v: float) -> str:
    return f"{round(v * 1e3):d}mV"


def plan(settings: CalSettings) -> list[Job]:
    """Every comparator job for ``settings`` (offset MC, offset budget, delay, energy, noise)."""
    common = _common(settings)
    shift = corner_delvto_v(settings.corner)
    jobs: list[Job] = []
    draws = _offset_draws(settings)
    for i in range(settings.mc_samples):
        delvto = {d.name: shift[d.name] + float(draws[d.name][i]) for d in DEVICES}
        jobs.append(Job(BLOCK, f"{BLOCK}/offset/{i:04d}", _FN + "offset_sample",
                        {"delvto_v": delvto, "vcm_v": list(OFFSET_VCM_V), **common}, NETLISTS))
    jobs.append(Job(BLOCK, f"{BLOCK}/budget/none", _FN + "offset_sample",
                    {"delvto_v": dict(shift), "vcm_v": list(OFFSET_VCM_V), **common}, NETLISTS))
    for first, _ in MIRROR_PAIRS:
        d = DEVICE_BY_NAME[first]
        delvto = dict(shift)
        delvto[first] += float(sigma_vth_v(d.kind, d.w_m, d.l_m))
        jobs.append(Job(BLOCK, f"{BLOCK}/budget/{first}", _FN + "offset_sample",
                        {"delvto_v": delvto, "vcm_v": list(OFFSET_VCM_V), **common}, NETLISTS))
    ods = DELAY_OVERDRIVES_QUICK_V if settings.quick else DELAY_OVERDRIVES_V
    for vcm in DELAY_VCM_V:
        jobs.append(Job(BLOCK, f"{BLOCK}/delay/{_mv(vcm)}", _FN + "delay_sweep",
                        {"vcm_v": vcm, "overdrive_v": list(ods), "delvto_v": dict(shift), **common}, NETLISTS))
    jobs.append(Job(BLOCK, f"{BLOCK}/energy/{_mv(VCM_V)}", _FN + "energy_per_decision",
                    {"vcm_v": VCM_V, "overdrive_v": list(ENERGY_OVERDRIVES_V), "delvto_v": dict(shift), **common},
                    NETLISTS))
    step = NOISE_TAU_STEP_QUICK_S if settings.quick else NOISE_TAU_STEP_S
    for vcm in OFFSET_VCM_V:
        jobs.append(Job(BLOCK, f"{BLOCK}/noise/{_mv(vcm)}", _FN + "noise_estimate",
                        {"vcm_v": vcm, "delvto_v": dict(shift), "tau_step_s": step, **common}, NETLISTS))
    cms = insitu_vcm_v(settings)
    for name, _, i in insitu_instances(settings):
        delvto = {d.name: shift[d.name] + float(draws[d.name][i]) for d in DEVICES}
        for vcm in cms:
            jobs.append(Job(BLOCK, f"{BLOCK}/insitu/{name}/{_mv(vcm)}", _FN + "insitu_threshold",
                            {"vcm_v": vcm, "delvto_v": delvto, "timing": column_timing(), **common}, NETLISTS))
    for vcm in cms:
        jobs.append(Job(BLOCK, f"{BLOCK}/kick/{_mv(vcm)}", _FN + "kickback",
                        {"vcm_v": vcm, "delvto_v": dict(shift), "timing": column_timing(), **common}, NETLISTS))
    return jobs


def insitu_vcm_v(settings: CalSettings) -> tuple[float, ...]:
    """Common modes (V) of the in-situ and kick jobs."""
    return INSITU_VCM_QUICK_V if settings.quick else INSITU_VCM_V


def insitu_instances(settings: CalSettings) -> list[tuple[str, str, int]]:
    """Monte Carlo instances whose in-situ threshold is measured: (name, why, sample index).

    A nominal instance reads 0 both ways by symmetry, so two drawn ones are used:
    the sample with the largest latch-PMOS mismatch (its offset is not the input
    pair's: at the balance point the input devices carry unequal overdrives, hence
    unequal channel charge, the in-situ error mechanism) and the one with the largest
    input-pair mismatch (the usual dominant offset).
    """
    draws = _offset_draws(settings)
    i_latch = int(np.argmax(np.abs(draws["mlp"] - draws["mln"])))
    i_pair = int(np.argmax(np.abs(draws["mip"] - draws["min"])))
    out = [(f"mc{i_latch:04d}", "largest latch-PMOS mismatch |dvt_mlp - dvt_mln|", i_latch)]
    if i_pair != i_latch:
        out.append((f"mc{i_pair:04d}", "largest input-pair mismatch |dvt_mip - dvt_min|", i_pair))
    return out


def sigma_confidence_interval(sigma: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Chi-square confidence interval of a normal σ estimated (ddof = 1) from ``n`` samples."""
    from scipy.stats import chi2
    dof = n - 1
    lo_q, hi_q = chi2.ppf([(1 + level) / 2, (1 - level) / 2], dof)
    return float(sigma * math.sqrt(dof / lo_q)), float(sigma * math.sqrt(dof / hi_q))


def _get(results: Mapping[str, dict], label: str) -> dict:
    try:
        return results[label]
    except KeyError:
        raise ValueError(f"comparator summary: result '{label}' is missing; rerun the comparator plan") from None


def _at_overdrive(od_v: float, overdrives_v: Sequence[float], values: Sequence[float]) -> float:
    """``values`` interpolated at ``od_v`` on a log-overdrive axis (the points include it)."""
    order = np.argsort(overdrives_v)
    return float(np.interp(math.log10(od_v), np.log10(np.asarray(overdrives_v)[order]), np.asarray(values)[order]))


def offset_sensitivity(draws: Mapping[str, np.ndarray], samples: np.ndarray) -> dict:
    """Least-squares offset model per common mode: V_os = intercept + Σ_i s_i·ΔV_th,i.

    Fitted to the Monte Carlo samples (draws → bisected offsets); it lets the behavioural
    model give a chip instance with explicit device draws (e.g. a golden SPICE column) its
    offset, and shows how linear the offset is (``residual_sigma_v``).
    """
    names = [d.name for d in DEVICES]
    x = np.column_stack([np.ones(samples.shape[0])] + [np.asarray(draws[n]) for n in names])
    coef, *_ = np.linalg.lstsq(x, samples, rcond=None)          # (1 + n_dev, n_vcm)
    resid = samples - x @ coef
    dof = max(samples.shape[0] - x.shape[1], 1)
    return {"vcm_v": list(OFFSET_VCM_V), "devices": names,
            "intercept_v": coef[0].tolist(), "sensitivity_v_per_v": coef[1:].T.tolist(),
            "residual_sigma_v": np.sqrt((resid ** 2).sum(axis=0) / dof).tolist()}


def summarise(settings: CalSettings, results: Mapping[str, dict]) -> dict:
    """The comparator's artefact section (JSON-able; every quantity's unit in its key)."""
    common = _common(settings)
    n = settings.mc_samples
    draws = _offset_draws(settings)
    samples = np.array([_get(results, f"{BLOCK}/offset/{i:04d}")["offset_v"] for i in range(n)])  # (n, n_vcm)
    ref = np.array(_get(results, f"{BLOCK}/budget/none")["offset_v"])
    budget, var_budget = [], np.zeros(len(OFFSET_VCM_V))
    for first, second in MIRROR_PAIRS:
        d = DEVICE_BY_NAME[first]
        s_vth = float(sigma_vth_v(d.kind, d.w_m, d.l_m))
        sens = (np.array(_get(results, f"{BLOCK}/budget/{first}")["offset_v"]) - ref) / s_vth
        contribution = math.sqrt(2.0) * np.abs(sens) * s_vth  # both devices of the pair
        var_budget += contribution ** 2
        budget.append({"devices": [first, second], "sigma_vth_v": s_vth,
                       "sensitivity_v_per_v": sens.tolist(), "sigma_contribution_v": contribution.tolist()})
    by_vcm = []
    for j, vcm in enumerate(OFFSET_VCM_V):
        col = samples[:, j]
        sigma = float(np.std(col, ddof=1))
        by_vcm.append({"vcm_v": vcm, "sigma_v": sigma, "sigma_ci95_v": list(sigma_confidence_interval(sigma, n)),
                       "mean_v": float(np.mean(col)), "budget_sigma_v": float(math.sqrt(var_budget[j])),
                       "samples_v": col.tolist()})
    delay = [_get(results, f"{BLOCK}/delay/{_mv(v)}") for v in DELAY_VCM_V]
    energy = _get(results, f"{BLOCK}/energy/{_mv(VCM_V)}")
    noise = [{k: v for k, v in _get(results, f"{BLOCK}/noise/{_mv(v)}").items()} for v in OFFSET_VCM_V]
    sensitivity = offset_sensitivity(draws, samples)
    d_main = delay[DELAY_VCM_V.index(VCM_V)]
    i_main = OFFSET_VCM_V.index(VCM_V)
    insitu = _summarise_insitu(settings, results)
    return {
        "netlist": NETLISTS[0],
        "subckt": SUBCKT,
        "pins": list(PINS),
        "clock": "clk high = evaluate, clk low = reset",
        "reset_output_level": "both outputs low (vss) during reset",
        "decision": "outp high iff V(inp) - V(inn) > offset",
        "corner": settings.corner_name,
        **common,
        "t_clk_s": tm.T_CLK_RAMP_S,
        "t_edge_s": T_EDGE_S,
        "devices": [{"name": d.name, "kind": d.kind, "w_m": d.w_m, "l_m": d.l_m, "role": d.role,
                     "sigma_vth_v": float(sigma_vth_v(d.kind, d.w_m, d.l_m))} for d in DEVICES],
        # headline figures at the primary common mode VCM_V (the artefact schema's fields)
        "vcm_v": VCM_V,
        "offset_sigma_v": by_vcm[i_main]["sigma_v"],
        "offset_sigma_ci95_v": by_vcm[i_main]["sigma_ci95_v"],
        "offset_mean_v": by_vcm[i_main]["mean_v"],
        "e_per_decision_j": _at_overdrive(ENERGY_TYPICAL_OVERDRIVE_V, energy["overdrive_v"],
                                          energy["e_per_decision_j"]),
        "noise_sigma_v": noise[i_main]["sigma_noise_v"],
        "t_clk_to_q_1mv_s": _at_overdrive(1e-3, d_main["overdrive_v"], d_main["t_clk_to_out_s"]),
        "t_clk_to_q_10mv_s": _at_overdrive(1e-2, d_main["overdrive_v"], d_main["t_clk_to_out_s"]),
        "delay_vs_overdrive": {"vcm_v": VCM_V, "overdrive_v": list(d_main["overdrive_v"]),
                               "t_clk_to_q_s": list(d_main["t_clk_to_out_s"])},
        "offset": {
            "method": "Monte Carlo of per-device Pelgrom delvto (+ corner shift); offset per sample by "
                      "bisection of V(inp)-V(inn) at each common mode, one transient per trial",
            "seed": settings.seed,
            "rng_purpose": RNG_PURPOSE,
            "n_samples": n,
            "bisection_tol_v": OFFSET_TOL_V,
            "pelgrom_input_pair_sigma_v": pelgrom_input_pair_sigma_v(),
            "by_vcm": by_vcm,
            "budget": budget,
            "corner_delvto_v": {"n": settings.corner.delvto_n(), "p": settings.corner.delvto_p()},
            "draws_dvth_v": {name: draws[name].tolist() for name in DEVICE_BY_NAME},
            "linear_model": sensitivity,
        },
        "delay": {"definition": "clk rising through vdd/2 to the winning output rising through vdd/2",
                  "by_vcm": delay},
        "energy": {"definition": "-VDD * integral of i(vdd) over one clock period from the rising edge "
                                 "(evaluate + reset), internal clock inverter, output loads and the kickback-"
                                 "neutralisation capacitors (charged through clkb) included; no static bias "
                                 "current exists, reset leakage is inside the period",
                   "c_neutralise_f": C_NEUTRALISE_F,
                   "typical_overdrive_v": ENERGY_TYPICAL_OVERDRIVE_V, **energy},
        "noise": {"method": "linear time-varying estimate (see comparator.noise_estimate): input-pair channel "
                            "noise density from ngspice .noise x pulse sensitivity from transients, plus reset "
                            "kT/C; not a transient noise simulation",
                  "by_vcm": noise},
        "insitu": insitu,
    }


def _summarise_insitu(settings: CalSettings, results: Mapping[str, dict]) -> dict:
    """The ``insitu`` part of the summary: thresholds on floating inputs, kick, input load."""
    cms = list(insitu_vcm_v(settings))
    instances = []
    for name, why, i in insitu_instances(settings):
        rs = [_get(results, f"{BLOCK}/insitu/{name}/{_mv(v)}") for v in cms]
        ideal = [r["offset_ideal_v"] for r in rs]
        first = [r["threshold_first_v"] for r in rs]
        hist = [r["threshold_after_history_v"] for r in rs]
        instances.append({"name": name, "mc_sample": i, "selected_for": why, "offset_ideal_v": ideal,
                          "threshold_first_v": first, "threshold_after_history_v": hist,
                          "deviation_first_v": [a - b for a, b in zip(first, ideal)],
                          "deviation_after_history_v": [a - b for a, b in zip(hist, ideal)],
                          "prior_fired_at_flip": [r["after_history"]["prior_fired_at_flip"] for r in rs]})
    deviations = [abs(x) for inst in instances for x in inst["deviation_first_v"] + inst["deviation_after_history_v"]]
    kicks = [_get(results, f"{BLOCK}/kick/{_mv(v)}") for v in cms]

    def col(key):
        return [k[key] for k in kicks]

    return {
        "method": "floating-input testbench: each input a c_bitline_f capacitor set by an ideal switch that "
                  "opens 0.3 ns before the first clock edge; clocked as in the column (timing_s, read from "
                  "circuits/column.py); threshold = V(inp)-V(inn) at the clock edge "
                  "at which the decision flips (bisection); 'after history' = the decision after n_history "
                  "'not fired' ones with the differential rising by step_v per cycle (a ramp on inn); the ideal-"
                  "source offset of the same instance beside it",
        "c_bitline_f": C_BITLINE_F,
        "c_neutralise_f": C_NEUTRALISE_F,
        "c_cross_neutralise_f": C_CROSS_NEUTRALISE_F,
        "step_v": INSITU_STEP_V,
        "n_history": N_HISTORY,
        "tol_v": INSITU_TOL_V,
        "t_max_step_s": T_MAX_INSITU_S,
        "timing_s": column_timing(),
        "v_cm_v": cms,
        # headline: the first instance (latch-dominated offset)
        "instance": instances[0]["name"],
        "offset_ideal_v": instances[0]["offset_ideal_v"],
        "threshold_first_v": instances[0]["threshold_first_v"],
        "threshold_after_history_v": instances[0]["threshold_after_history_v"],
        "max_abs_deviation_v": max(deviations),
        "instances": instances,
        "c_in_reset_f": col("c_in_reset_f"),
        "c_in_latched_f": col("c_in_latched_f"),
        "kick": {
            "definition": "nominal instance, floating c_bitline_f inputs, differential +-vdiff_v, no ramp; "
                          "relative to the value at the first clock edge",
            "vdiff_v": KICK_VDIFF_V,
            "cm_excursion_max_v": col("cm_excursion_max_v"),
            "cm_excursion_min_v": col("cm_excursion_min_v"),
            "cm_at_read_v": col("cm_at_read_v"),
            "cm_residue_first_cycle_v": [k["cm_residue_v"][0] for k in kicks],
            "cm_residue_later_cycles_v": [k["cm_residue_v"][-1] for k in kicks],
            "diff_excursion_max_abs_v": col("diff_excursion_max_abs_v"),
            "diff_residue_fired_v": [max(k["diff_residue_fired_v"], key=abs) for k in kicks],
            "diff_residue_not_fired_v": [max(k["diff_residue_not_fired_v"], key=abs) for k in kicks],
            "c_imbalance_fraction": C_IMBALANCE_FRACTION,
            "threshold_shift_per_pct_imbalance_v": col("threshold_shift_per_pct_imbalance_v"),
        },
    }
