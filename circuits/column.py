"""One Topkima SRAM column at transistor level: MAC, calibration phase, ramp, sense amplifier.

What is simulated (SPEC §2; choices marked [ours] are this project's):

* 256 rows: ramp rows 0–31 (nearest the sense amplifier), calibration rows 32–63,
  MAC rows 64–255. MAC row ``64 + 3·e + p`` holds pair ``p`` (pulse scale 1, 2, 4)
  of key element ``e`` (0–63), so the 15-level key ``k_e`` is three ternary digits
  ``sign(k_e)·bit_p(|k_e|)`` [ours: sign-magnitude digits].
* Differential read bitlines RBL_L / RBL_R, each a 256-segment RC ladder (per-row
  wire R and C, below) plus the junction load of every read port on it, precharged
  through a PMOS switch to ``v_precharge``.
* Read ports are :file:`netlists/readport.sp` stacks (storage nodes ideal sources).
  Every stack whose wordline is pulsed is an explicit device pair with its own
  mismatch; the stacks whose wordline stays low in a given conversion only leak and
  are lumped per bitline and storage value into one instance with ``m = count``
  (exact for identical devices; their mismatch is not modelled, as it only moves
  leakage). Their drains sit at the middle of the column.
* PWM wordlines: trapezoidal pulses in 0.5 ns units (2 GHz PWM clock) with 0.2 ns
  edges at the array supply; the 50 % width equals the nominal width. Pair p is
  pulsed for ``|q|·2^p`` units; all pairs start together (the 62 ns reading of T_pwm).
* Calibration phase (one 4 ns clock): ``n_cal`` calibration cells (storage 1) are
  pulsed for ``t_cal_units`` on RBL_R. Ramp: one ramp cell per 4 ns clock, pulsed
  for ``t_ramp_units`` on RBL_L; the sense amplifier is clocked near the end of each
  ramp clock. The column fires at the first ramp cycle ``j`` (1…32) at which
  V(RBL_R) > V(RBL_L); code = 32 − j (larger MAC → earlier firing → larger code).

Per-row wire parasitics [ours, estimates]: cell pitch along the bitline 0.75 µm for a
dual-10T cell; minimum-width 65 nm M2 ≈ 0.2 fF/µm and ≈ 2.7 Ω/µm give
C = 0.15 fF and R = 2 Ω per row.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from topkima.circuits import netlist as nl
from topkima.circuits.corners import Corner, Supplies
from topkima.circuits.timing import (MAX_RAMP_UNITS, N_RAMP_STEPS, T_CAL0_S, T_CLK_RAMP_S, T_MAC0_S, T_PRE_EDGE_S,
                                     T_PRE_END_S, T_PULSE_DELAY_S, T_PWM_S, T_SA_CLK_S, T_SA_EDGE_S, T_SA_EVAL_S,
                                     T_UNIT_S, T_WL_EDGE_S, conversion_end_s, ramp_cycle_start_s, sa_sample_time_s,
                                     sense_instant_s)

BLOCK = "column"
NETLISTS = ("readport.sp",)

N_ROWS = 256
N_RAMP_ROWS = 32
N_CAL_ROWS = 32
N_MAC_ROWS = 192
N_ELEMENTS = 64
PAIR_SCALES = (1, 2, 4)
RAMP_ROW0, CAL_ROW0, MAC_ROW0 = 0, 32, 64

Q_MAX = 31               #: largest |input| (5-bit magnitude; 31 units = 15.5 ns on the x1 pair, SPEC §2)
K_MAX = 7                #: key levels -7..7 (SPEC §2)

R_WIRE_ROW_OHM = 2.0     #: per-row bitline wire resistance [ours, see module docstring]
C_WIRE_ROW_F = 0.15e-15  #: per-row bitline wire capacitance [ours]
W_READ_M = 120e-9        #: read-port device width [ours, readport.sp]
L_READ_M = 960e-9        #: read-port device length [ours, readport.sp]
W_PRE_M, L_PRE_M = 1.0e-6, 60e-9  #: precharge PMOS [ours]
#: The sense amplifier's input capacitance in reset, per input (F): measured by
#: circuits/comparator_insitu.py (``input_capacitance``, 16.5–16.7 fF over CM 0.15–0.45 V; a test
#: keeps this constant in step with the artefact). Testbenches without the sense amplifier
#: put this load on each bitline, so the characterised swing is the swing the comparator sees.
C_SA_IN_RESET_F = 16.6e-15
T_PRINT_S = 0.1e-9       #: transient print step; also caps the internal step (2 µV from a 20 ps run)

#: Stack slots of one MAC row: (cell, wordline sign, bitline it discharges).
STACKS = (("L", +1, "l"), ("L", -1, "r"), ("R", +1, "r"), ("R", -1, "l"))


def key_digits(level: int) -> tuple[int, int, int]:
    """Ternary digits (x1, x2, x4 pairs) of a key level: sign(level)·bit_p(|level|)."""
    sign, mag = (1 if level > 0 else -1 if level < 0 else 0), abs(level)
    return tuple(sign * ((mag >> p) & 1) for p in range(3))


def _check_int_vector(values, n: int, lo: int, hi: int, what: str) -> tuple[int, ...]:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{what} must have {n} entries, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{what} must be integers, got {values!r}")
    arr = arr.astype(int)
    if arr.min() < lo or arr.max() > hi:
        raise ValueError(f"{what} must lie in {lo}..{hi}; got values from {arr.min()} to {arr.max()}")
    return tuple(int(x) for x in arr)


@dataclass(frozen=True)
class ColumnDraws:
    """Per-device threshold shifts (V) of one column instance (mismatch only, no corner).

    ``mac_dvt_v[row, stack, device]`` with row 0–191 (MAC row order), stack as in
    :data:`STACKS`, device 0 = access (RWL-gated), 1 = storage (Q-gated);
    ``cal_dvt_v[i, device]`` and ``ramp_dvt_v[i, device]`` for the replica cells;
    ``sa_dvt_v`` per sense-amplifier device name.
    """

    mac_dvt_v: np.ndarray = field(default_factory=lambda: np.zeros((N_MAC_ROWS, 4, 2)))
    cal_dvt_v: np.ndarray = field(default_factory=lambda: np.zeros((N_CAL_ROWS, 2)))
    ramp_dvt_v: np.ndarray = field(default_factory=lambda: np.zeros((N_RAMP_ROWS, 2)))
    sa_dvt_v: dict = field(default_factory=dict)

    @classmethod
    def draw(cls, rng: np.random.Generator, sa_devices=()) -> "ColumnDraws":
        """Pelgrom draws for every read-port device and the given SA devices (comparator.Device)."""
        from topkima.circuits.mismatch import draw_dvth_v
        mac = draw_dvth_v(rng, "n", W_READ_M, L_READ_M, (N_MAC_ROWS, 4, 2))
        cal = draw_dvth_v(rng, "n", W_READ_M, L_READ_M, (N_CAL_ROWS, 2))
        ramp = draw_dvth_v(rng, "n", W_READ_M, L_READ_M, (N_RAMP_ROWS, 2))
        sa = {d.name: float(draw_dvth_v(rng, d.kind, d.w_m, d.l_m, ())) for d in sa_devices}
        return cls(mac, cal, ramp, sa)

    def to_json(self) -> dict:
        return {"mac_dvt_v": self.mac_dvt_v.tolist(), "cal_dvt_v": self.cal_dvt_v.tolist(),
                "ramp_dvt_v": self.ramp_dvt_v.tolist(), "sa_dvt_v": dict(self.sa_dvt_v)}

    @classmethod
    def from_json(cls, data: dict | None) -> "ColumnDraws":
        if not data:
            return cls()
        draws = cls(np.asarray(data["mac_dvt_v"], float), np.asarray(data["cal_dvt_v"], float),
                    np.asarray(data["ramp_dvt_v"], float), {k: float(v) for k, v in data.get("sa_dvt_v", {}).items()})
        for name, arr, shape in (("mac_dvt_v", draws.mac_dvt_v, (N_MAC_ROWS, 4, 2)),
                                 ("cal_dvt_v", draws.cal_dvt_v, (N_CAL_ROWS, 2)),
                                 ("ramp_dvt_v", draws.ramp_dvt_v, (N_RAMP_ROWS, 2))):
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(f"mismatch draws '{name}' must be finite with shape {shape}, got {arr.shape}")
        return draws


@dataclass(frozen=True)
class ColumnConversion:
    """One column conversion: 64 key levels, 64 signed inputs, and the ADC range settings."""

    keys: tuple[int, ...]
    inputs: tuple[int, ...]
    n_cal: int = 32            #: enabled calibration cells (0–32)
    t_cal_units: int = 4       #: calibration pulse (0.5 ns units, ≤ 6 within one 4 ns clock)
    t_ramp_units: int = 4      #: ramp-cell pulse per step (0.5 ns units, ≤ 4: the SA evaluates after it)

    def __post_init__(self):
        object.__setattr__(self, "keys", _check_int_vector(self.keys, N_ELEMENTS, -K_MAX, K_MAX, "key levels"))
        object.__setattr__(self, "inputs", _check_int_vector(self.inputs, N_ELEMENTS, -Q_MAX, Q_MAX, "inputs"))
        for name, lo, hi in (("n_cal", 0, N_CAL_ROWS), ("t_cal_units", 0, 6), ("t_ramp_units", 1, MAX_RAMP_UNITS)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")

    @property
    def mac_units(self) -> int:
        """Ideal MAC value Σ q·k in PWM units (one unit = one cell for 0.5 ns)."""
        return int(np.dot(self.inputs, self.keys))

    def bitline_units(self) -> tuple[int, int]:
        """Ideal discharge units (P on RBL_L, N on RBL_R) of the MAC phase."""
        p = n = 0
        for q, k in zip(self.inputs, self.keys):
            if q * k > 0:
                p += abs(q * k)
            elif q * k < 0:
                n += abs(q * k)
        return p, n


def _pulse(name: str, node: str, v_high: float, t_start: float, width_s: float) -> str:
    """A single trapezoidal pulse whose 50 % width is ``width_s``."""
    pw = width_s - T_WL_EDGE_S
    return (f"{nl.ident(name)} {nl.ident(node)} 0 PULSE(0 {nl.num(v_high)} {nl.num(t_start)} "
            f"{nl.num(T_WL_EDGE_S)} {nl.num(T_WL_EDGE_S)} {nl.num(pw)} 1)")


@dataclass
class _Bitlines:
    """Accumulates the column's devices while a testbench is being written."""

    lines: list = field(default_factory=list)
    idle: dict = field(default_factory=lambda: {("l", 0): 0, ("l", 1): 0, ("r", 0): 0, ("r", 1): 0})
    n_dev: int = 0

    def stack(self, bitline: str, row: int, wl: str, q_node: str, dvt: tuple[float, float]) -> None:
        self.n_dev += 1
        self.lines.append(f"xs{self.n_dev} rbl_{bitline}{row} {nl.ident(wl)} {nl.ident(q_node)} 0 readport "
                          f"w={nl.num(W_READ_M)} l={nl.num(L_READ_M)} dvt_a={nl.num(dvt[0])} dvt_s={nl.num(dvt[1])}")

    def idle_stack(self, bitline: str, stored: int) -> None:
        self.idle[(bitline, stored)] += 1


def _preamble(corner: Corner, supplies: Supplies, title: str) -> list[str]:
    """Includes, supplies, both bitline ladders and their precharge switches."""
    out = [f"* topkima column: {title}, corner {corner.name}", nl.include(nl.MODEL_CARD), nl.include("readport.sp"),
           nl.include("strongarm.sp")]
    out += [f"vdda vdda 0 {nl.num(supplies.v_array_v)}", f"vpre vpre 0 {nl.num(supplies.v_precharge_v)}",
            f"vq1 vq1 0 {nl.num(supplies.v_array_v)}", f"vsa vsa 0 {nl.num(supplies.v_sa_v)}"]
    # Bitline ladders: node rbl_x{row}, row 0 at the sense amplifier.
    for b in ("l", "r"):
        for row in range(N_ROWS):
            out.append(f"c{b}{row} rbl_{b}{row} 0 {nl.num(C_WIRE_ROW_F)}")
            if row + 1 < N_ROWS:
                out.append(f"r{b}{row} rbl_{b}{row} rbl_{b}{row + 1} {nl.num(R_WIRE_ROW_OHM)}")
        # Precharge PMOS (gate low = on) from the precharge supply; off level is the SA supply.
        out.append(nl.mos(f"mpre{b}", f"rbl_{b}0", "preb", "vpre", "vpre", nl.PMOS, W_PRE_M, L_PRE_M,
                          delvto_v=corner.delvto_p()))
    return out


def _precharge_source(supplies: Supplies, recharge_at_s: float | None) -> str:
    """PRE_b: low (precharging) until T_PRE_END_S, and again from ``recharge_at_s`` if given."""
    hi, e = nl.num(supplies.v_sa_v), T_PRE_EDGE_S
    points = [(0, "0"), (T_PRE_END_S, "0"), (T_PRE_END_S + e, hi)]
    if recharge_at_s is not None:
        points += [(recharge_at_s, hi), (recharge_at_s + e, "0")]
    return "vpreb preb 0 PWL(" + " ".join(f"{nl.num(t)} {v}" for t, v in points) + ")"


def _finish(out: list[str], bl: "_Bitlines", corner: Corner, save: tuple[str, ...], extra: tuple[str, ...],
            tstop_s: float) -> str:
    out += bl.lines
    dn, mid = corner.delvto_n(), N_ROWS // 2
    for (b, stored), count in bl.idle.items():
        if count:
            out.append(f"xidle_{b}{stored} rbl_{b}{mid} 0 {'vq1' if stored else '0'} 0 readport "
                       f"w={nl.num(W_READ_M)} l={nl.num(L_READ_M)} dvt_a={nl.num(dn)} dvt_s={nl.num(dn)} m={count}")
    out += list(extra)
    out.append(".save " + " ".join(f"v({nl.ident(n)})" for n in save))
    out.append(f".tran {nl.num(T_PRINT_S)} {nl.num(tstop_s)}")
    out.append(".end")
    return "\n".join(out) + "\n"


def _sense_amplifier_load() -> list[str]:
    """The sense amplifier's reset-state input capacitance, as linear capacitors."""
    return [f"csal rbl_l0 0 {nl.num(C_SA_IN_RESET_F)}", f"csar rbl_r0 0 {nl.num(C_SA_IN_RESET_F)}"]


def _sense_amplifier(corner: Corner, supplies: Supplies, draws: "ColumnDraws") -> list[str]:
    """The column's StrongARM on RBL_R (inp) / RBL_L (inn), clocked once per ramp step."""
    from topkima.circuits import comparator
    t0 = sense_instant_s(1)
    clock = (f"vsaclk saclk 0 PULSE(0 {nl.num(supplies.v_sa_v)} {nl.num(t0)} {nl.num(T_SA_EDGE_S)} "
             f"{nl.num(T_SA_EDGE_S)} {nl.num(T_SA_EVAL_S - T_SA_EDGE_S)} {nl.num(T_CLK_RAMP_S)})")
    shifts = {d.name: (corner.delvto_n() if d.kind == "n" else corner.delvto_p()) + draws.sa_dvt_v.get(d.name, 0.0)
              for d in comparator.DEVICES}
    return [clock, comparator.subckt_instance("xsa", "rbl_r0", "rbl_l0", "saclk", "sa_outp", "sa_outn",
                                              "vsa", "0", shifts)]


def column_netlist(conv: ColumnConversion, *, corner: Corner, supplies: Supplies,
                   draws: ColumnDraws | None = None, with_sa: bool = True,
                   ramp: bool = True, calibration: bool = True, recharge: bool = False,
                   extra: tuple[str, ...] = (), save: tuple[str, ...] = ("rbl_l0", "rbl_r0")) -> str:
    """The full column testbench for one conversion (SPICE text).

    ``with_sa`` adds the StrongARM sense amplifier (``netlists/strongarm.sp``), clocked once
    per ramp step; without it each bitline carries the amplifier's reset-state input load;
    ``ramp``/``calibration`` switch those phases; ``recharge``
    precharges the bitlines again after the conversion (2 ns) so the energy drawn from
    the precharge supply can be measured; ``extra`` are further validated lines
    (``.meas``) written by the block modules.
    """
    draws = draws or ColumnDraws()
    dn, va = corner.delvto_n(), supplies.v_array_v
    end = conversion_end_s(ramp)
    out = _preamble(corner, supplies, "conversion")
    out.append(_precharge_source(supplies, end if recharge else None))
    bl = _Bitlines()
    # MAC rows
    for e, (q, k) in enumerate(zip(conv.inputs, conv.keys)):
        digits = key_digits(k)
        for p, scale in enumerate(PAIR_SCALES):
            row_idx = 3 * e + p
            row = MAC_ROW0 + row_idx
            d = digits[p]
            stored = {"L": 1 if d > 0 else 0, "R": 1 if d < 0 else 0}
            sign = (q > 0) - (q < 0)
            if sign:
                out.append(_pulse(f"vwl{row}", f"wl{row}", va, T_MAC0_S, abs(q) * scale * T_UNIT_S))
            for s, (cell, wl_sign, bline) in enumerate(STACKS):
                if sign and wl_sign == sign:
                    dvt = draws.mac_dvt_v[row_idx, s]
                    bl.stack(bline, row, f"wl{row}", "vq1" if stored[cell] else "0", (dn + dvt[0], dn + dvt[1]))
                else:
                    bl.idle_stack(bline, stored[cell])
    # Calibration rows discharge RBL_R; ramp rows discharge RBL_L. The opposite bitline
    # carries an idle replica port so both bitlines see the same junction load.
    for i in range(N_CAL_ROWS):
        row = CAL_ROW0 + i
        if calibration and i < conv.n_cal and conv.t_cal_units > 0:
            out.append(_pulse(f"vwl{row}", f"wl{row}", va, T_CAL0_S + T_PULSE_DELAY_S, conv.t_cal_units * T_UNIT_S))
            dvt = draws.cal_dvt_v[i]
            bl.stack("r", row, f"wl{row}", "vq1", (dn + dvt[0], dn + dvt[1]))
        else:
            bl.idle_stack("r", 1 if i < conv.n_cal else 0)
        bl.idle_stack("l", 0)
    for i in range(N_RAMP_ROWS):
        row = RAMP_ROW0 + i
        if ramp:
            out.append(_pulse(f"vwl{row}", f"wl{row}", va, ramp_cycle_start_s(i + 1) + T_PULSE_DELAY_S,
                              conv.t_ramp_units * T_UNIT_S))
            dvt = draws.ramp_dvt_v[i]
            bl.stack("l", row, f"wl{row}", "vq1", (dn + dvt[0], dn + dvt[1]))
        else:
            bl.idle_stack("l", 1)
        bl.idle_stack("r", 0)
    if with_sa:
        out += _sense_amplifier(corner, supplies, draws)
        save = tuple(save) + ("sa_outp",)
    else:
        out += _sense_amplifier_load()
    # The latch's decision needs a tight tolerance: at the default reltol and a 0.1 ns step it
    # errs by up to ~1 mV even from ideal sources (checked against 5 ps steps in
    # circuits/comparator.py); reltol 3e-5 brackets every threshold correctly. The other column
    # testbenches use it too, so that conversions and characterisation share one accuracy.
    extra = (".options reltol=3e-5",) + tuple(extra)
    tstop = end + (2.5e-9 if recharge else 0.1e-9)
    return _finish(out, bl, corner, save, extra, tstop)


def discharge_netlist(*, corner: Corner, supplies: Supplies, n_on_l: int, pulses_r_units: tuple[int, ...],
                      tstop_s: float, share_r_units: tuple[int, ...] = (),
                      gap_s: float = 1.0e-9, pulse_dvt_v: tuple[float, float] = (0.0, 0.0)) -> tuple[str, list[float], dict]:
    """Characterisation testbench on the full column's bitlines (no MAC inputs).

    RBL_L: ``n_on_l`` nominal MAC cells switched on at T_MAC0_S and left on, so V(RBL_L)
    traces the discharge curve. RBL_R, in turn (``gap_s`` apart): one nominal cell
    storing 1 pulsed for each width in ``pulses_r_units`` (the charge of a pulse), then
    one *fresh* stack storing 0 per width in ``share_r_units`` (the charge its internal
    node takes from the bitline when its wordline first opens). Every other port idles.
    ``pulse_dvt_v`` (access, storage) threshold shifts are given to every pulsed stack on
    RBL_R (mismatch of the pulse charge). Returns the netlist, the pulse start times and the
    idle-stack counts per bitline.
    """
    va = supplies.v_array_v
    da, ds = (float(nl.num(x)) for x in pulse_dvt_v)   # validated as numbers
    if abs(da) > 0.2 or abs(ds) > 0.2:
        raise ValueError(f"pulse_dvt_v must be threshold shifts within ±0.2 V, got {pulse_dvt_v!r}")
    dn = corner.delvto_n()
    out = _preamble(corner, supplies, "discharge characterisation")
    out.append(_precharge_source(supplies, None))
    bl = _Bitlines()
    row_far = N_ROWS - 1
    # The curve's cells are switched on while the precharge still holds the bitline, so the
    # discharge after the release is free of wordline-edge coupling from its first unit.
    t_on = T_PRE_END_S - 0.5e-9
    for i in range(n_on_l):
        row = MAC_ROW0 + i
        out.append(f"vwl{row} wl{row} 0 PWL(0 0 {nl.num(t_on)} 0 {nl.num(t_on + T_WL_EDGE_S)} {nl.num(va)})")
        bl.stack("l", row, f"wl{row}", "vq1", (dn, dn))
    t = T_MAC0_S + 1e-9  # clear of the precharge release
    starts = []
    for w in tuple(pulses_r_units) + tuple(share_r_units):
        if not isinstance(w, (int, np.integer)) or not 1 <= w <= 4 * Q_MAX:
            raise ValueError(f"pulse width must be an integer 1..{4 * Q_MAX} units, got {w!r}")
        starts.append(t)
        t += w * T_UNIT_S + gap_s

    def pwl(pulses) -> str:
        pts = ["0 0"]
        for t0, w in pulses:
            t1 = t0 + w * T_UNIT_S
            pts += [f"{nl.num(t0 - T_WL_EDGE_S / 2)} 0", f"{nl.num(t0 + T_WL_EDGE_S / 2)} {nl.num(va)}",
                    f"{nl.num(t1 - T_WL_EDGE_S / 2)} {nl.num(va)}", f"{nl.num(t1 + T_WL_EDGE_S / 2)} 0"]
        return f"PWL({' '.join(pts)})"

    n_one = len(pulses_r_units)
    if n_one:
        out.append(f"vwlp wlp 0 {pwl(zip(starts[:n_one], pulses_r_units))}")
        bl.stack("r", row_far, "wlp", "vq1", (dn + da, dn + ds))
    for i, (t0, w) in enumerate(zip(starts[n_one:], share_r_units)):
        row = row_far - 1 - i
        out.append(f"vwls{i} wls{i} 0 {pwl([(t0, w)])}")
        bl.stack("r", row, f"wls{i}", "0", (dn + da, dn + ds))
    # The rest of the column idles: MAC stacks storing 0/1 alternately (a key digit is
    # non-zero in about half the cells), replica rows storing 0, as in a conversion.
    for b in ("l", "r"):
        used = n_on_l if b == "l" else (int(n_one > 0) + len(share_r_units))
        for k in range(2 * N_MAC_ROWS - used):
            bl.idle_stack(b, k % 2)
        for _ in range(N_CAL_ROWS + N_RAMP_ROWS):
            bl.idle_stack(b, 0)
    out += _sense_amplifier_load()
    if n_one:
        # Charge the wordline source delivers on the first rising edge (the driver's C·V).
        t_mid = starts[0] + pulses_r_units[0] * T_UNIT_S / 2
        out += [".save i(vwlp)", f".meas tran q_wlp INTEG i(vwlp) FROM={nl.num(starts[0] - T_WL_EDGE_S)} TO={nl.num(t_mid)}"]
    save = ("rbl_l0", "rbl_r0", f"rbl_r{row_far}")
    idle = {f"{b}{stored}": n for (b, stored), n in bl.idle.items()}
    return _finish(out, bl, corner, save, (), tstop_s), starts, idle


def firing_cycle(time_s: np.ndarray, v_out: np.ndarray, v_sa: float) -> int | None:
    """First ramp cycle (1–32) whose sense-amplifier decision is "fired", or None.

    The sense amplifier's outputs return to zero in reset, so each cycle's decision is
    read at the end of its evaluate phase, 1.15 ns after the clock edge.
    """
    for j in range(1, N_RAMP_STEPS + 1):
        if np.interp(sa_sample_time_s(j), time_s, v_out) > v_sa / 2:
            return j
    return None


def code_from_cycle(cycle: int | None) -> int:
    """ADC code: 32 − firing cycle; a column that never fires reads 0."""
    return 0 if cycle is None else N_RAMP_STEPS - cycle


# --------------------------------------------------------------------------------------
# Measurements (run as jobs in worker processes; JSON-able arguments and results)
# --------------------------------------------------------------------------------------

def _setup(corner_name: str, supplies: dict) -> tuple[Corner, Supplies]:
    from topkima.circuits.corners import corner
    return corner(corner_name), Supplies(**supplies)


def measure_discharge(corner_name: str, supplies: dict, n_on_l: int, pulses_r_units: list[int],
                      tstop_s: float, share_r_units: list[int] = (), n_points: int = 2000,
                      pulse_dvt_v: list[float] = (0.0, 0.0)) -> dict:
    """Discharge curve V(RBL) vs accumulated units, and the charge of single pulses.

    The curve: ``n_on_l`` cells held on, so after time t the bitline has taken
    ``n_on_l·(t − T_MAC0_S)/T_UNIT_S`` units. The pulses: a single cell's pulses of
    each width on the other bitline; V before and after each is returned so the
    calibration can express each pulse in curve units.
    """
    from topkima.circuits.spice import simulate
    corner, sup = _setup(corner_name, supplies)
    text, starts, idle = discharge_netlist(corner=corner, supplies=sup, n_on_l=n_on_l,
                                     pulses_r_units=tuple(pulses_r_units), tstop_s=tstop_s,
                                     share_r_units=tuple(share_r_units), pulse_dvt_v=tuple(pulse_dvt_v))
    res = simulate(text, BLOCK)
    t, v_l, v_r, v_far = res.time, res.v("rbl_l0"), res.v("rbl_r0"), res.v(f"rbl_r{N_ROWS - 1}")
    t_release = T_PRE_END_S + T_PRE_EDGE_S   # precharge switch fully off
    t_grid = np.linspace(t_release + 0.1e-9, tstop_s, n_points)  # after the release's own coupling
    units = n_on_l * (t_grid - t_release) / T_UNIT_S
    before, after, settle = [], [], []
    gap = 1.0e-9
    widths = list(pulses_r_units) + list(share_r_units)
    for t0, w in zip(starts, widths):
        t1 = t0 + w * T_UNIT_S
        before.append(float(np.interp(t0 - T_WL_EDGE_S, t, v_r)))
        v_end = float(np.interp(t1 + gap - T_WL_EDGE_S, t, v_r))
        after.append(v_end)
        # settling: after the wordline has fallen, until the sense end (row 0) agrees with the
        # pulsed cell's end of the bitline to 1 % of the step (distributed wire RC)
        step = abs(before[-1] - v_end)
        t_off = t1 + T_WL_EDGE_S / 2  # end of the falling edge; the window ends before the next rising edge
        window = (t >= t_off) & (t <= t1 + gap - T_WL_EDGE_S)
        off = np.abs(v_r[window] - v_far[window]) > 0.01 * max(step, 1e-6)
        settle.append(float(t[window][np.nonzero(off)[0][-1]] - t_off) if off.any() else 0.0)
    return {
        "units": units.tolist(), "v_rbl_v": np.interp(t_grid, t, v_l).tolist(),
        "pulse_units": widths, "pulse_stored": [1] * len(pulses_r_units) + [0] * len(share_r_units),
        "v_before_v": before, "v_after_v": after,
        "settle_1pct_s": settle,
        "far_minus_near_max_v": float(np.max(np.abs(v_far - v_r))),
        "e_wordline_pulse_j": abs(res.measures.get("q_wlp", 0.0)) * sup.v_array_v,
        "n_on_l": n_on_l, "idle_stacks": idle, "t_grid_s": (t_grid - t_release).tolist(),
        # the level a conversion starts from: RBL_R, no cell on, just before its first pulse
        "v_released_v": float(np.interp(starts[0] - T_WL_EDGE_S if starts else T_MAC0_S, t, v_r)),
        "pulse_window_s": [w * T_UNIT_S + gap for w in widths],
        "pulse_dvt_v": [float(x) for x in pulse_dvt_v],
    }


def measure_cell_currents(corner_name: str, supplies: dict, dvt_v: list[list[float]],
                          v_rbl_v: list[float]) -> dict:
    """Read-stack currents at each bitline voltage (one ``.op`` per voltage).

    Returns the nominal on-current (wordline high, storage 1), the on-current of each
    (access, storage) ``delvto`` pair in ``dvt_v`` (mismatch draws, corner added here),
    and the leakage of an idle stack (wordline low) storing 1 and storing 0.
    """
    from topkima.circuits.spice import simulate
    corner, sup = _setup(corner_name, supplies)
    dn = corner.delvto_n()
    va = nl.num(sup.v_array_v)
    rows = [("wl", "vq1", 0.0, 0.0), ("0", "vq1", 0.0, 0.0), ("0", "0", 0.0, 0.0)]
    rows += [("wl", "vq1", float(da), float(ds)) for da, ds in dvt_v]
    out = {"v_rbl_v": list(v_rbl_v), "dvt_v": [list(map(float, d)) for d in dvt_v], "i_on_nominal_a": [], "i_leak_stored1_a": [], "i_leak_stored0_a": [], "i_on_a": []}
    for v_bl in v_rbl_v:
        lines = [f"* topkima read-stack currents at V(RBL) = {nl.num(v_bl)} V", nl.include(nl.MODEL_CARD),
                 nl.include("readport.sp"), f"vwl wl 0 {va}", f"vq1 vq1 0 {va}"]
        for i, (wl, q, da, ds) in enumerate(rows):
            lines += [f"vb{i} b{i} 0 {nl.num(v_bl)}",
                      f"xs{i} b{i} {wl} {q} 0 readport w={nl.num(W_READ_M)} l={nl.num(L_READ_M)} "
                      f"dvt_a={nl.num(dn + da)} dvt_s={nl.num(dn + ds)}"]
        lines += [".op", ".end"]
        res = simulate("\n".join(lines) + "\n", BLOCK)
        cur = [-float(res.vectors[f"vb{i}#branch"][0]) for i in range(len(rows))]
        out["i_on_nominal_a"].append(cur[0])
        out["i_leak_stored1_a"].append(cur[1])
        out["i_leak_stored0_a"].append(cur[2])
        out["i_on_a"].append(cur[3:])
    return out


def measure_mac(corner_name: str, supplies: dict, keys: list[int], inputs: list[int],
                draws: dict | None = None) -> dict:
    """Bitline voltages at the end of the MAC phase for one key/input vector."""
    from topkima.circuits.spice import simulate
    corner, sup = _setup(corner_name, supplies)
    conv = ColumnConversion(tuple(keys), tuple(inputs))
    text = column_netlist(conv, corner=corner, supplies=sup, draws=ColumnDraws.from_json(draws),
                          with_sa=False, ramp=False, calibration=False)
    res = simulate(text, BLOCK)
    t_end = T_CAL0_S - 0.1e-9
    p, n = conv.bitline_units()
    return {"mac_units": conv.mac_units, "p_units": p, "n_units": n,
            "v_rbl_l_v": float(np.interp(t_end, res.time, res.v("rbl_l0"))),
            "v_rbl_r_v": float(np.interp(t_end, res.time, res.v("rbl_r0")))}


def measure_conversion_energy(corner_name: str, supplies: dict, keys: list[int], inputs: list[int],
                              n_cal: int, t_cal_units: int, t_ramp_units: int) -> dict:
    """Bitline energy of one conversion (MAC, calibration, full ramp), without the SA.

    Measured as the charge the precharge supply returns to both bitlines after the
    conversion (E = V_pre·Q), which is where the discharged charge is paid for.
    Wordline energy is separate (per pulse, from the discharge testbench).
    """
    from topkima.circuits.spice import simulate
    corner, sup = _setup(corner_name, supplies)
    conv = ColumnConversion(tuple(keys), tuple(inputs), n_cal, t_cal_units, t_ramp_units)
    end = conversion_end_s(True)
    meas = (".save i(vpre)", f".meas tran q_pre INTEG i(vpre) FROM={nl.num(end)} TO={nl.num(end + 2.5e-9)}",)
    text = column_netlist(conv, corner=corner, supplies=sup, with_sa=False, recharge=True, extra=meas)
    res = simulate(text, BLOCK)
    v_l, v_r = (float(np.interp(end - 0.05e-9, res.time, res.v(n))) for n in ("rbl_l0", "rbl_r0"))
    n_pulses = sum(1 for q in inputs if q != 0) * len(PAIR_SCALES) + n_cal * (t_cal_units > 0) + N_RAMP_STEPS
    return {"e_bitline_j": -sup.v_precharge_v * res.measures["q_pre"],
            "activity": sum(1 for q in inputs if q != 0) / N_ELEMENTS, "n_wordline_pulses": n_pulses,
            "v_rbl_l_end_v": v_l, "v_rbl_r_end_v": v_r, "v_precharge_v": sup.v_precharge_v,
            "p_units": conv.bitline_units()[0], "n_units": conv.bitline_units()[1]}


def measure_conversion(corner_name: str, supplies: dict, keys: list[int], inputs: list[int],
                       n_cal: int, t_cal_units: int, t_ramp_units: int, draws: dict | None = None) -> dict:
    """End-to-end SPICE conversion with the sense amplifier: the firing cycle and code.

    Also the energy of the conversion's bitlines (charge the precharge supply returns after
    the full 32-step ramp, E = V_pre·Q) and of the sense amplifier over its 32 decisions
    (E = −V_sa·∫i), for the behavioural model's energy check.
    """
    from topkima.circuits.spice import simulate
    corner, sup = _setup(corner_name, supplies)
    conv = ColumnConversion(tuple(keys), tuple(inputs), n_cal, t_cal_units, t_ramp_units)
    end = conversion_end_s(True)
    meas = (".save i(vpre) i(vsa)",
            f".meas tran q_pre INTEG i(vpre) FROM={nl.num(end)} TO={nl.num(end + 2.5e-9)}",
            f".meas tran q_sa INTEG i(vsa) FROM={nl.num(ramp_cycle_start_s(1))} TO={nl.num(end)}")
    text = column_netlist(conv, corner=corner, supplies=sup, draws=ColumnDraws.from_json(draws), with_sa=True,
                          recharge=True, extra=meas)
    res = simulate(text, BLOCK)
    cycle = firing_cycle(res.time, res.v("sa_outp"), sup.v_sa_v)
    v_l = [float(np.interp(sense_instant_s(j), res.time, res.v("rbl_l0"))) for j in range(1, N_RAMP_STEPS + 1)]
    v_r = [float(np.interp(sense_instant_s(j), res.time, res.v("rbl_r0"))) for j in range(1, N_RAMP_STEPS + 1)]
    p, n = conv.bitline_units()
    return {"keys": list(conv.keys), "inputs": list(conv.inputs),
            "mac_units": conv.mac_units, "p_units": p, "n_units": n, "firing_cycle": cycle,
            "code": code_from_cycle(cycle), "v_rbl_l_at_sa_clk_v": v_l, "v_rbl_r_at_sa_clk_v": v_r,
            "e_bitline_j": -sup.v_precharge_v * res.measures["q_pre"],
            "e_sa_32_decisions_j": -sup.v_sa_v * res.measures["q_sa"]}


# --------------------------------------------------------------------------------------
# Plan and summary (what `topkima calibrate` runs for this block)
# --------------------------------------------------------------------------------------

def random_vectors(rng: np.random.Generator, activity: float, q_max: int = Q_MAX, k_max: int = K_MAX):
    """Random keys (−k_max…k_max) and inputs (|q| ≤ q_max, a fraction ``activity`` non-zero)."""
    keys = rng.integers(-k_max, k_max + 1, N_ELEMENTS)
    inputs = rng.integers(1, q_max + 1, N_ELEMENTS) * rng.choice([-1, 1], N_ELEMENTS)
    inputs = inputs * (rng.random(N_ELEMENTS) < activity)
    return [int(x) for x in keys], [int(x) for x in inputs]


def _job(label: str, fn: str, **kwargs):
    from topkima.circuits.jobs import Job
    return Job(BLOCK, label, f"topkima.circuits.column:{fn}", kwargs, NETLISTS)


def plan(settings) -> list:
    """Discharge curves, cell currents (with Monte Carlo), MAC sweep and energy vs activity."""
    from topkima.circuits.mismatch import draw_dvth_v
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict()}
    pulses = [1, 2, 4, 8, 16, 31, 62, 124] if settings.quick else [1, 2, 3, 4, 6, 8, 12, 16, 24, 31, 62, 124]
    t_pulses = sum(pulses) * T_UNIT_S + len(pulses) * 1e-9 + T_MAC0_S + 1e-9
    t_pulses *= 2  # the same widths again on stacks storing 0
    jobs = [_job(f"discharge_n{n}", "measure_discharge", n_on_l=n, pulses_r_units=pulses, share_r_units=pulses,
                 tstop_s=max(t_pulses, T_MAC0_S + 1600 * T_UNIT_S / n), **base)
            for n in ((16,) if settings.quick else (4, 16))]
    dvt = draw_dvth_v(settings.rng("column.cell_mismatch"), "n", W_READ_M, L_READ_M, (settings.mc_samples, 2))
    jobs.append(_job("cell_currents", "measure_cell_currents", dvt_v=dvt.round(9).tolist(),
                     v_rbl_v=[0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05], **base))
    rng = settings.rng("column.mac_sweep")
    n_sweep = 4 if settings.quick else 16
    for i in range(n_sweep):
        # realistic activity and magnitudes: half the inputs non-zero, |q| ≤ 12, |k| ≤ 4
        keys, inputs = random_vectors(rng, 0.5, q_max=12, k_max=4)
        jobs.append(_job(f"mac_{i:02d}", "measure_mac", keys=keys, inputs=inputs, **base))
    rng = settings.rng("column.energy")
    for activity in ((0.0, 0.5) if settings.quick else (0.0, 0.25, 0.5, 1.0)):
        keys, inputs = random_vectors(rng, activity, q_max=12, k_max=4)
        jobs.append(_job(f"energy_a{int(activity * 100):03d}", "measure_conversion_energy", keys=keys, inputs=inputs,
                         n_cal=32, t_cal_units=4, t_ramp_units=4, **base))
    # charge-share packets of stacks storing 0 with mismatch: one nominal run, then draws
    share_widths = [1, 2, 4, 8, 16, 31, 62, 124] if settings.quick else [1, 2, 3, 4, 6, 8, 12, 16, 24, 31, 62, 124]
    t_share = T_MAC0_S + 2e-9 + sum(share_widths) * T_UNIT_S + len(share_widths) * 1e-9
    dvt_share = draw_dvth_v(settings.rng("column.share_mismatch"), "n", W_READ_M, L_READ_M,
                            (N_SHARE_MISMATCH[bool(settings.quick)], 2))
    for i, dvt in enumerate([(0.0, 0.0)] + [tuple(x) for x in dvt_share.round(7).tolist()]):
        jobs.append(_job(f"share_mm_{i:02d}", "measure_discharge", n_on_l=0, pulses_r_units=[],
                         share_r_units=share_widths, tstop_s=t_share, pulse_dvt_v=list(dvt), **base))
    jobs += plan_insitu(settings, base)
    return jobs


#: Monte Carlo draws of the charge-share packet's mismatch [ours: enough for a 2-term linear fit per width]
N_SHARE_MISMATCH = {True: 8, False: 24}


#: End-to-end conversions with the sense amplifier attached, nominal devices [ours: enough
#: runs that a 5-term linear correction per bitline is fitted with ~30 points per term].
N_INSITU_RUNS = {True: 6, False: 12}


def plan_insitu(settings, base: dict) -> list:
    """Nominal end-to-end conversions (column + sense amplifier, as in the macro).

    The bitline voltages at every sense instant are what the comparator really sees: the
    sense amplifier in reset couples the two floating bitlines through its input pair's
    common source, its first evaluation leaves a kick residue, and its input capacitance
    changes the swing. The behavioural model fits its in-situ bitline correction and the
    sense amplifier's energy per decision against the common mode from these runs
    (:mod:`topkima.behavioral.params`). Inputs have the golden conversions' statistics but an
    independent random stream, so the golden test is not fitted to.
    """
    from topkima.circuits import comparator
    from topkima.circuits.jobs import Job
    rng = settings.rng("column.insitu")
    jobs = []
    for i in range(N_INSITU_RUNS[bool(settings.quick)]):
        keys, inputs = random_vectors(rng, 0.5, q_max=12, k_max=4)
        jobs.append(Job(BLOCK, f"insitu_{i:02d}", "topkima.circuits.column:measure_conversion",
                        dict(base, keys=keys, inputs=inputs, n_cal=32, t_cal_units=4, t_ramp_units=4),
                        NETLISTS + comparator.NETLISTS))
    return jobs


def leak_units_per_unit_time(idle: dict, currents: dict, v_rbl: np.ndarray, bitline: str) -> np.ndarray:
    """Leakage of a bitline's idle stacks in nominal-cell units per PWM unit, at V(RBL)."""
    v = np.asarray(currents["v_rbl_v"])[::-1]
    i_on = np.interp(v_rbl, v, np.asarray(currents["i_on_nominal_a"])[::-1])
    i1 = np.interp(v_rbl, v, np.asarray(currents["i_leak_stored1_a"])[::-1])
    i0 = np.interp(v_rbl, v, np.asarray(currents["i_leak_stored0_a"])[::-1])
    return (idle.get(f"{bitline}1", 0) * i1 + idle.get(f"{bitline}0", 0) * i0) / i_on


def discharge_curve(run: dict, currents: dict) -> tuple[np.ndarray, np.ndarray]:
    """f: V(RBL) against accumulated nominal-cell units, leakage of the idle stacks included.

    U(t) = ∫ (n_on + Λ(V)) dt / T_UNIT, Λ the idle stacks' leakage in cell units.
    """
    t = np.asarray(run["t_grid_s"])
    v = np.asarray(run["v_rbl_v"])
    rate = run["n_on_l"] + leak_units_per_unit_time(run["idle_stacks"], currents, v, "l")
    units = (rate[0] * t[0] + np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])) / T_UNIT_S
    # The curve's cells were already on at the precharge release, so it starts a few units
    # below the level a conversion starts from (their current flowed through the precharge
    # switch): prepend that level at U = 0, continuing the curve's initial slope.
    v0 = float(run["v_released_v"])
    clean = (units > units[0] + 15) & (units < units[0] + 80)   # past the release transient
    slope, intercept = np.polyfit(units[clean], v[clean], 1)
    shift = (v0 - intercept) / -slope           # where the clean line meets the starting level
    keep_from = units + shift > 0
    units = np.concatenate([[0.0], units[keep_from] + shift])
    v = np.concatenate([[v0], v[keep_from]])
    keep = np.concatenate([[True], (np.diff(v) < 0) & (units[1:] > 0)])  # strictly decreasing
    return units[keep], v[keep]


def summarise(settings, results: dict) -> dict:
    """The artefact's ``column`` section."""
    currents = results["cell_currents"]
    runs = sorted((r for k, r in results.items() if k.startswith("discharge_")), key=lambda r: r["n_on_l"])
    main = runs[-1]
    units, v_curve = discharge_curve(main, currents)
    # Resample on a fixed grid of units down to where the bitline is within 5 mV of ground.
    u_max = float(np.interp(-0.005, -v_curve, units))
    grid = np.linspace(0.0, u_max, 257)
    v_grid = np.interp(grid, units, v_curve)
    dv_per_unit = -np.gradient(v_grid, grid)
    inv = lambda volts: np.interp(-np.asarray(volts), -v_curve, units)  # noqa: E731
    # Single pulses expressed in curve units, leakage during the measuring window removed.
    before, after = np.asarray(main["v_before_v"]), np.asarray(main["v_after_v"])
    leak_r = leak_units_per_unit_time(main["idle_stacks"], currents, 0.5 * (before + after), "r")
    eff_all = inv(after) - inv(before) - leak_r * np.asarray(main["pulse_window_s"]) / T_UNIT_S
    stored = np.asarray(main["pulse_stored"])
    widths = np.asarray(main["pulse_units"], float)[stored == 1]
    eff, share = eff_all[stored == 1], eff_all[stored == 0]
    share_widths = np.asarray(main["pulse_units"], float)[stored == 0]
    slope, offset = np.polyfit(widths, eff, 1)
    # Cell-current mismatch: ratio to nominal at each bitline voltage, and its sensitivity fit.
    i_on = np.asarray(currents["i_on_a"])                       # (n_v, n_mc)
    ratio = i_on / np.asarray(currents["i_on_nominal_a"])[:, None]
    dvt = np.asarray(currents["dvt_v"])
    # ln(I/I0) = a·Δa + b·Δs + c·Δa² + d·Δs² + e·Δa·Δs (Δa, Δs: access/storage delvto, V)
    basis = np.column_stack([dvt[:, 0], dvt[:, 1], dvt[:, 0] ** 2, dvt[:, 1] ** 2, dvt[:, 0] * dvt[:, 1]])
    sens = [np.linalg.lstsq(basis, np.log(r), rcond=None)[0].tolist() for r in ratio]
    sigma_rel = ratio.std(axis=1, ddof=1)
    n_mc = ratio.shape[1]
    from scipy import stats
    chi = stats.chi2.ppf([0.975, 0.025], n_mc - 1)
    ci = [[float(s * np.sqrt((n_mc - 1) / chi[0])), float(s * np.sqrt((n_mc - 1) / chi[1]))] for s in sigma_rel]
    mac = sorted((r for k, r in results.items() if k.startswith("mac_")), key=lambda r: r["mac_units"])
    mac_units = np.array([r["mac_units"] for r in mac], float)
    v_diff = np.array([r["v_rbl_r_v"] - r["v_rbl_l_v"] for r in mac])
    fit = np.polyfit(mac_units, v_diff, 1) if len(mac) >= 2 else np.array([np.nan, np.nan])
    energy = sorted((r for k, r in results.items() if k.startswith("energy_")), key=lambda r: r["activity"])
    e_wl = main["e_wordline_pulse_j"]
    insitu = [results[k] for k in sorted(results) if k.startswith("insitu_")]
    share_mm = [results[k] for k in sorted(results) if k.startswith("share_mm_")]
    return {
        "geometry": {
            "n_rows": N_ROWS, "n_mac_rows": N_MAC_ROWS, "n_cal_rows": N_CAL_ROWS, "n_ramp_rows": N_RAMP_ROWS,
            "n_elements": N_ELEMENTS, "pair_scales": list(PAIR_SCALES), "row_order": "ramp 0-31, cal 32-63, MAC 64-255",
            "r_wire_per_row_ohm": R_WIRE_ROW_OHM, "c_wire_per_row_f": C_WIRE_ROW_F,
            "w_read_m": W_READ_M, "l_read_m": L_READ_M, "q_max": Q_MAX, "k_max": K_MAX,
        },
        "timing": {
            "t_unit_s": T_UNIT_S, "t_pwm_s": T_PWM_S, "t_clk_ima_s": T_CLK_RAMP_S, "t_edge_s": T_WL_EDGE_S,
            "t_mac_start_s": T_MAC0_S, "t_cal_start_s": T_CAL0_S, "t_pulse_delay_s": T_PULSE_DELAY_S,
            "t_sa_clk_in_cycle_s": T_SA_CLK_S, "n_ramp_steps": N_RAMP_STEPS,
        },
        "discharge_curve": {
            "units": grid.tolist(), "v_rbl_v": v_grid.tolist(),
            "note": "V(RBL) after U nominal-cell units (one cell on for 0.5 ns), leakage of idle stacks removed",
            "n_cells_on": main["n_on_l"],
        },
        "unit_step_vs_v_rbl": {"v_rbl_v": v_grid[::8].tolist(), "dv_per_unit_v": dv_per_unit[::8].tolist()},
        "v_rbl_precharged_v": float(v_grid[0]),
        "pulse_units_fit": {"slope": float(slope), "offset_units": float(offset),
                            "width_units": widths.tolist(), "effective_units": eff.tolist()},
        "charge_share_units": {
            "width_units": share_widths.tolist(), "units": share.tolist(),
            "v_rbl_v": (0.5 * (before + after))[stored == 0].tolist(),
            "note": "charge a pulsed stack storing 0 takes from its bitline (its internal node charging "
                    "through the open access device), in nominal-cell units, per wordline pulse"},
        "curve_consistency": [
            {"n_cells_on": r["n_on_l"],
             "max_dev_from_main_v": float(np.max(np.abs(np.interp(grid[grid < u_max * 0.9], *discharge_curve(r, currents))
                                                      - v_grid[grid < u_max * 0.9])))}
            for r in runs],
        "leakage": {"v_rbl_v": currents["v_rbl_v"], "i_leak_stored1_a": currents["i_leak_stored1_a"],
                    "i_leak_stored0_a": currents["i_leak_stored0_a"], "i_on_nominal_a": currents["i_on_nominal_a"]},
        "mismatch": {
            "v_rbl_v": currents["v_rbl_v"], "i_on_sigma_rel": sigma_rel.tolist(), "i_on_sigma_rel_ci95": ci,
            "n_samples": int(n_mc), "a_vt_v_m": _a_vt(), "sigma_vth_per_device_v": _sigma_read(),
            "ratio_samples": ratio.tolist(), "dvt_samples_v": dvt.tolist(),
            "log_ratio_fit_terms": ["d_access", "d_storage", "d_access^2", "d_storage^2", "d_access*d_storage"],
            "log_ratio_fit_per_v": sens,
        },
        "settling_1pct_s": float(max(main["settle_1pct_s"])),
        "mac_sweep": {"mac_units": mac_units.tolist(), "p_units": [r["p_units"] for r in mac],
                      "n_units": [r["n_units"] for r in mac], "v_diff_v": v_diff.tolist(),
                      "linear_fit_v_per_unit": float(fit[0]), "linear_fit_offset_v": float(fit[1]),
                      "max_dev_from_line_v": float(np.max(np.abs(np.polyval(fit, mac_units) - v_diff))) if len(mac) >= 2 else None},
        "energy": {"e_wordline_pulse_j": e_wl,
                   "activity": [r["activity"] for r in energy],
                   "e_bitline_j": [r["e_bitline_j"] for r in energy],
                   "delta_v_sum_v": [2 * r["v_precharge_v"] - r["v_rbl_l_end_v"] - r["v_rbl_r_end_v"] for r in energy],
                   "n_wordline_pulses": [r["n_wordline_pulses"] for r in energy],
                   "e_conversion_j": [r["e_bitline_j"] + e_wl * r["n_wordline_pulses"] for r in energy],
                   "note": "per column, one conversion (MAC, calibration, 32 ramp steps), sense amplifier excluded"},
        "charge_share_mismatch": _share_mismatch(share_mm, inv, currents) if share_mm else None,
        "insitu_conversions": {
            "note": "nominal column + sense amplifier, end to end (plan_insitu); bitline voltages at each of "
                    "the 32 sense instants, the sense amplifier's energy over its 32 decisions",
            "n_cal": 32, "t_cal_units": 4, "t_ramp_units": 4,
            "runs": [{key: r[key] for key in ("keys", "inputs", "p_units", "n_units", "firing_cycle",
                                               "v_rbl_l_at_sa_clk_v", "v_rbl_r_at_sa_clk_v",
                                               "e_sa_32_decisions_j", "e_bitline_j")} for r in insitu],
        },
    }


def _share_mismatch(runs: list[dict], inv, currents: dict) -> dict:
    """The charge-share packet of a stack storing 0 against its threshold shifts.

    Each run pulses fresh stacks storing 0 (one per width) whose access and storage devices
    carry the run's (Δa, Δs); run 0 is nominal. Each packet is the bitline's change in curve
    units minus the idle stacks' leakage over its window (as for the main packet table); per
    width, packet / nominal packet is fitted as 1 + α·Δa + β·Δs (least squares over the draws).
    """
    packets = []
    for r in runs:
        before, after = np.asarray(r["v_before_v"]), np.asarray(r["v_after_v"])
        leak = leak_units_per_unit_time(r["idle_stacks"], currents, 0.5 * (before + after), "r")
        packets.append(inv(after) - inv(before) - leak * np.asarray(r["pulse_window_s"]) / T_UNIT_S)
    nominal = packets[0]
    dvt = np.array([r["pulse_dvt_v"] for r in runs[1:]])
    ratio = np.array(packets[1:]) / nominal[None, :]
    basis = np.column_stack([dvt[:, 0], dvt[:, 1]])
    coef, *_ = np.linalg.lstsq(basis, ratio - 1.0, rcond=None)
    resid = ratio - 1.0 - basis @ coef
    return {"width_units": list(runs[0]["pulse_units"]), "alpha_per_v": coef[0].tolist(), "beta_per_v": coef[1].tolist(),
            "nominal_packet_units": nominal.tolist(),
            "ratio_sigma_rel": ratio.std(axis=0, ddof=1).tolist(), "fit_residual_rel": resid.std(axis=0, ddof=1).tolist(),
            "n_draws": int(len(runs) - 1),
            "note": "packet / nominal packet = 1 + alpha*d_access + beta*d_storage (d in V), per pulse width; "
                    "packets net of the idle stacks' leakage"}


def _a_vt() -> float:
    from topkima.circuits.mismatch import A_VT_N_V_M
    return A_VT_N_V_M


def _sigma_read() -> float:
    from topkima.circuits.mismatch import sigma_vth_v
    return float(sigma_vth_v("n", W_READ_M, L_READ_M))
