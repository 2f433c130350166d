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

These are the 65 nm preset's rows and clocks. A design's own replica rows (``geometry.n_ramp_rows``,
``n_cal_rows``), key elements (``geometry.n_elements``: 3 MAC rows each; :class:`Rows`) and clocks
(``[timing]``: :func:`topkima.circuits.timing.active`) are what the testbench writers below use; the
64 elements, 192 MAC rows, 0.5 ns, 4 ns and 32 above become theirs.

Per-row wire parasitics [ours, estimates]: cell pitch along the bitline 0.75 µm for a
dual-10T cell; minimum-width 65 nm M2 ≈ 0.2 fF/µm and ≈ 2.7 Ω/µm give
C = 0.15 fF and R = 2 Ω per row.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from topkima.circuits import comparator
from topkima.circuits import netlist as nl
from topkima.circuits import technology as tech
from topkima.circuits import timing as tm
from topkima.circuits.corners import Corner, Supplies
from topkima.circuits.design import Design, DeviceSize, default_design, reference_design
from topkima.circuits.design_rules import MAX_ELEMENTS as _MAX_ELEMENTS

BLOCK = "column"
NETLISTS = ("readport.sp",)

# Geometry: the 65 nm preset's [geometry] table (circuits/designs/topkima-65nm.toml). A design's own replica-row
# counts (geometry.n_ramp_rows, n_cal_rows) reach the testbench writers below through ``design`` (:class:`Rows`).
_GEO = reference_design().geometry
N_ROWS = _GEO.n_rows                  #: 256
N_RAMP_ROWS = _GEO.n_ramp_rows        #: 32
N_CAL_ROWS = _GEO.n_cal_rows          #: 32
N_MAC_ROWS = _GEO.n_mac_rows          #: 192
N_ELEMENTS = _GEO.n_elements          #: 64
PAIR_SCALES = _GEO.pair_scales        #: (1, 2, 4)
RAMP_ROW0, CAL_ROW0, MAC_ROW0 = 0, N_RAMP_ROWS, N_RAMP_ROWS + N_CAL_ROWS

#: Largest calibration-row count a design may have (circuits/design.py's bound)
MAX_CAL_ROWS = 256
#: Largest key-element count a design may have (circuits/design_rules.py)
MAX_ELEMENTS = _MAX_ELEMENTS
Q_MAX = _GEO.q_max       #: largest |input| (5-bit magnitude; 31 units = 15.5 ns on the x1 pair, SPEC §2)
K_MAX = _GEO.k_max       #: key levels -7..7 (SPEC §2)

# The 65 nm preset's sizes and wire parasitics; a design's own are passed down as ``design``
# (the testbench writers below read them from it).
R_WIRE_ROW_OHM = _GEO.r_wire_row_ohm  #: per-row bitline wire resistance [ours, see module docstring]
C_WIRE_ROW_F = _GEO.c_wire_row_f      #: per-row bitline wire capacitance [ours]
W_READ_M = reference_design().sizes.read_port.w_m   #: read-port device width [ours, readport.sp]
L_READ_M = reference_design().sizes.read_port.l_m   #: read-port device length [ours, readport.sp]
W_PRE_M, L_PRE_M = reference_design().sizes.precharge.w_m, reference_design().sizes.precharge.l_m  #: precharge PMOS [ours]
#: The sense amplifier's input capacitance in reset, per input (F): measured by
#: circuits/comparator_insitu.py (``input_capacitance``, 16.5–16.7 fF over CM 0.15–0.45 V; a test
#: keeps this constant in step with the artefact). Testbenches without the sense amplifier
#: put this load on each bitline, so the characterised swing is the swing the comparator sees.
C_SA_IN_RESET_F = 16.6e-15
T_PRINT_S = 0.1e-9       #: transient print step; also caps the internal step (2 µV from a 20 ps run)


@dataclass(frozen=True)
class Rows:
    """A design's column, bottom up: ramp rows (nearest the sense amplifier), calibration rows, MAC rows."""

    n_ramp: int
    n_cal: int
    n_mac: int

    @classmethod
    def of(cls, design: Design | None) -> "Rows":
        g = (design or default_design()).geometry
        return cls(g.n_ramp_rows, g.n_cal_rows, g.n_mac_rows)

    @property
    def n_rows(self) -> int:
        return self.n_ramp + self.n_cal + self.n_mac

    @property
    def cal_row0(self) -> int:
        return self.n_ramp

    @property
    def mac_row0(self) -> int:
        return self.n_ramp + self.n_cal


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
    def zeros(cls, design: Design | None = None) -> "ColumnDraws":
        """No mismatch, shaped for the design's rows (None: the 65 nm preset)."""
        r = Rows.of(design)
        return cls(np.zeros((r.n_mac, 4, 2)), np.zeros((r.n_cal, 2)), np.zeros((r.n_ramp, 2)), {})

    @classmethod
    def draw(cls, rng: np.random.Generator, sa_devices=(), design: Design | None = None) -> "ColumnDraws":
        """Pelgrom draws for every read-port device and the given SA devices (comparator.Device), with the
        design's read-port size and A_VT (None: the 65 nm preset)."""
        from topkima.circuits.mismatch import a_vt_of, draw_dvth_v
        design = design or default_design()
        rp, a_n, r = design.sizes.read_port, a_vt_of(design, "n"), Rows.of(design)
        mac = draw_dvth_v(rng, "n", rp.w_m, rp.l_m, (r.n_mac, 4, 2), a_n)
        cal = draw_dvth_v(rng, "n", rp.w_m, rp.l_m, (r.n_cal, 2), a_n)
        ramp = draw_dvth_v(rng, "n", rp.w_m, rp.l_m, (r.n_ramp, 2), a_n)
        sa = {d.name: float(draw_dvth_v(rng, d.kind, d.w_m, d.l_m, (), a_vt_of(design, d.kind))) for d in sa_devices}
        return cls(mac, cal, ramp, sa)

    def to_json(self) -> dict:
        return {"mac_dvt_v": self.mac_dvt_v.tolist(), "cal_dvt_v": self.cal_dvt_v.tolist(),
                "ramp_dvt_v": self.ramp_dvt_v.tolist(), "sa_dvt_v": dict(self.sa_dvt_v)}

    @classmethod
    def from_json(cls, data: dict | None, design: Design | None = None) -> "ColumnDraws":
        """Draws back from :meth:`to_json`, checked against the design's rows (None: the 65 nm preset)."""
        if not data:
            return cls.zeros(design)
        r = Rows.of(design)
        draws = cls(np.asarray(data["mac_dvt_v"], float), np.asarray(data["cal_dvt_v"], float),
                    np.asarray(data["ramp_dvt_v"], float), {k: float(v) for k, v in data.get("sa_dvt_v", {}).items()})
        for name, arr, shape in (("mac_dvt_v", draws.mac_dvt_v, (r.n_mac, 4, 2)),
                                 ("cal_dvt_v", draws.cal_dvt_v, (r.n_cal, 2)),
                                 ("ramp_dvt_v", draws.ramp_dvt_v, (r.n_ramp, 2))):
            if arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(f"mismatch draws '{name}' must be finite with shape {shape}, got {arr.shape}")
        return draws


@dataclass(frozen=True)
class ColumnConversion:
    """One column conversion: a key level and a signed input per key element (64 of each at 65 nm), and the
    ADC range settings."""

    keys: tuple[int, ...]
    inputs: tuple[int, ...]
    n_cal: int = 32            #: enabled calibration cells (0–32)
    t_cal_units: int = 4       #: calibration pulse (PWM units, ≤ 6 within one 4 ns clock at 65 nm: Clocks.max_cal_units)
    t_ramp_units: int = 4      #: ramp-cell pulse per step (PWM units, ≤ Clocks.max_ramp_units: the SA evaluates after it)
    n_cal_rows: int = N_CAL_ROWS  #: the design's calibration rows, the bound of n_cal (:class:`Rows`)
    n_elements: int = N_ELEMENTS  #: the design's key elements per column (``geometry.n_elements``): the vectors' length

    def __post_init__(self):
        if isinstance(self.n_elements, bool) or not isinstance(self.n_elements, (int, np.integer)) \
                or not 1 <= self.n_elements <= MAX_ELEMENTS:
            raise ValueError(f"n_elements must be an integer in 1..{MAX_ELEMENTS}, got {self.n_elements!r}")
        n = int(self.n_elements)
        object.__setattr__(self, "keys", _check_int_vector(self.keys, n, -K_MAX, K_MAX, "key levels"))
        object.__setattr__(self, "inputs", _check_int_vector(self.inputs, n, -Q_MAX, Q_MAX, "inputs"))
        clocks = tm.active()   # the pulses must fit the clocks of the design being simulated
        if not isinstance(self.n_cal_rows, (int, np.integer)) or not 0 <= self.n_cal_rows <= MAX_CAL_ROWS:
            raise ValueError(f"n_cal_rows must be an integer in 0..{MAX_CAL_ROWS}, got {self.n_cal_rows!r}")
        for name, lo, hi in (("n_cal", 0, self.n_cal_rows), ("t_cal_units", 0, clocks.max_cal_units),
                             ("t_ramp_units", 1, clocks.max_ramp_units)):
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
    """A single trapezoidal pulse whose 50 % width is ``width_s`` (edges: the active clocks' wordline edge)."""
    edge = tm.active().t_wl_edge_s
    pw = width_s - edge
    return (f"{nl.ident(name)} {nl.ident(node)} 0 PULSE(0 {nl.num(v_high)} {nl.num(t_start)} "
            f"{nl.num(edge)} {nl.num(edge)} {nl.num(pw)} 1)")


@dataclass
class _Bitlines:
    """Accumulates the column's devices while a testbench is being written."""

    read_port: DeviceSize
    lines: list = field(default_factory=list)
    idle: dict = field(default_factory=lambda: {("l", 0): 0, ("l", 1): 0, ("r", 0): 0, ("r", 1): 0})
    n_dev: int = 0

    def stack(self, bitline: str, row: int, wl: str, q_node: str, dvt: tuple[float, float]) -> None:
        self.n_dev += 1
        self.lines.append(f"xs{self.n_dev} rbl_{bitline}{row} {nl.ident(wl)} {nl.ident(q_node)} 0 readport "
                          f"w={nl.num(self.read_port.w_m)} l={nl.num(self.read_port.l_m)} dvt_a={nl.num(dvt[0])} "
                          f"dvt_s={nl.num(dvt[1])}")

    def idle_stack(self, bitline: str, stored: int) -> None:
        self.idle[(bitline, stored)] += 1


def _preamble(corner: Corner, supplies: Supplies, title: str, design: Design) -> list[str]:
    """Includes, supplies, both bitline ladders and their precharge switches (the design's wire and sizes)."""
    geo, pre, n_rows = design.geometry, design.sizes.precharge, Rows.of(design).n_rows
    out = [f"* topkima column: {title}, corner {corner.name}", *tech.model_lines(corner.name), tech.subckt_include("readport.sp"),
           tech.subckt_include("strongarm.sp")]
    out += [f"vdda vdda 0 {nl.num(supplies.v_array_v)}", f"vpre vpre 0 {nl.num(supplies.v_precharge_v)}",
            f"vq1 vq1 0 {nl.num(supplies.v_array_v)}", f"vsa vsa 0 {nl.num(supplies.v_sa_v)}"]
    # Bitline ladders: node rbl_x{row}, row 0 at the sense amplifier.
    for b in ("l", "r"):
        for row in range(n_rows):
            out.append(f"c{b}{row} rbl_{b}{row} 0 {nl.num(geo.c_wire_row_f)}")
            if row + 1 < n_rows:
                out.append(f"r{b}{row} rbl_{b}{row} rbl_{b}{row + 1} {nl.num(geo.r_wire_row_ohm)}")
        # Precharge PMOS (gate low = on) from the precharge supply; off level is the SA supply.
        out.append(nl.mos(f"mpre{b}", f"rbl_{b}0", "preb", "vpre", "vpre", tech.pmos(), pre.w_m, pre.l_m,
                          delvto_v=corner.delvto_p()))
    return out


def _precharge_source(supplies: Supplies, recharge_at_s: float | None) -> str:
    """PRE_b: low (precharging) until t_pre_end_s, and again from ``recharge_at_s`` if given."""
    ck = tm.active()
    hi, e = nl.num(supplies.v_sa_v), ck.t_pre_edge_s
    points = [(0, "0"), (ck.t_pre_end_s, "0"), (ck.t_pre_end_s + e, hi)]
    if recharge_at_s is not None:
        points += [(recharge_at_s, hi), (recharge_at_s + e, "0")]
    return "vpreb preb 0 PWL(" + " ".join(f"{nl.num(t)} {v}" for t, v in points) + ")"


def _finish(out: list[str], bl: "_Bitlines", corner: Corner, save: tuple[str, ...], extra: tuple[str, ...],
            tstop_s: float, n_rows: int = N_ROWS) -> str:
    out += bl.lines
    dn, mid = corner.delvto_n(), n_rows // 2
    for (b, stored), count in bl.idle.items():
        if count:
            out.append(f"xidle_{b}{stored} rbl_{b}{mid} 0 {'vq1' if stored else '0'} 0 readport "
                       f"w={nl.num(bl.read_port.w_m)} l={nl.num(bl.read_port.l_m)} dvt_a={nl.num(dn)} "
                       f"dvt_s={nl.num(dn)} m={count}")
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
    ck = tm.active()
    t0 = ck.sense_instant_s(1)
    clock = (f"vsaclk saclk 0 PULSE(0 {nl.num(supplies.v_sa_v)} {nl.num(t0)} {nl.num(ck.t_sa_edge_s)} "
             f"{nl.num(ck.t_sa_edge_s)} {nl.num(ck.t_sa_eval_s - ck.t_sa_edge_s)} {nl.num(ck.t_clk_ramp_s)})")
    shifts = {d.name: (corner.delvto_n() if d.kind == "n" else corner.delvto_p()) + draws.sa_dvt_v.get(d.name, 0.0)
              for d in comparator.DEVICES}
    return [clock, comparator.subckt_instance("xsa", "rbl_r0", "rbl_l0", "saclk", "sa_outp", "sa_outn",
                                              "vsa", "0", shifts)]


def column_netlist(conv: ColumnConversion, *, corner: Corner, supplies: Supplies,
                   draws: ColumnDraws | None = None, with_sa: bool = True,
                   ramp: bool = True, calibration: bool = True, recharge: bool = False,
                   extra: tuple[str, ...] = (), save: tuple[str, ...] = ("rbl_l0", "rbl_r0"),
                   design: Design | None = None, tstop_s: float | None = None,
                   idle_through_ramp: bool = False) -> str:
    """The full column testbench for one conversion (SPICE text).

    ``with_sa`` adds the StrongARM sense amplifier (``netlists/strongarm.sp``), clocked once
    per ramp step; without it each bitline carries the amplifier's reset-state input load;
    ``ramp``/``calibration`` switch those phases; ``recharge``
    precharges the bitlines again after the conversion (2 ns) so the energy drawn from
    the precharge supply can be measured; ``extra`` are further validated lines
    (``.meas``) written by the block modules. ``design`` (None: the 65 nm preset) gives the
    read-port and precharge sizes and the bitline wire. ``tstop_s`` ends the transient earlier
    than the whole conversion (a measurement that needs only the first ramp cycles).
    ``idle_through_ramp`` with ``ramp=False`` still simulates the ramp's duration, its rows idle
    (the bitlines' own droop, :mod:`topkima.circuits.bitline_droop`).
    """
    design = design or default_design()
    rows = Rows.of(design)
    draws = draws or ColumnDraws.zeros(design)
    if conv.n_cal > rows.n_cal:
        raise ValueError(f"n_cal must be an integer in 0..{rows.n_cal} (the design's calibration rows), got {conv.n_cal}")
    if draws.cal_dvt_v.shape[0] != rows.n_cal or draws.ramp_dvt_v.shape[0] != rows.n_ramp:
        raise ValueError(f"mismatch draws are shaped for {draws.ramp_dvt_v.shape[0]} ramp + {draws.cal_dvt_v.shape[0]} "
                         f"calibration rows; the design has {rows.n_ramp} + {rows.n_cal}")
    if len(conv.keys) * len(PAIR_SCALES) != rows.n_mac or draws.mac_dvt_v.shape[0] != rows.n_mac:
        raise ValueError(f"the conversion has {len(conv.keys)} key elements and its draws {draws.mac_dvt_v.shape[0]} MAC "
                         f"rows; the design has {design.geometry.n_elements} elements ({rows.n_mac} MAC rows): build the "
                         f"conversion with n_elements={design.geometry.n_elements} and the draws for the design")
    ck = tm.active()
    dn, va = corner.delvto_n(), supplies.v_array_v
    end = ck.conversion_end_s(ramp or idle_through_ramp)
    out = _preamble(corner, supplies, "conversion", design)
    out.append(_precharge_source(supplies, end if recharge else None))
    bl = _Bitlines(design.sizes.read_port)
    # MAC rows
    for e, (q, k) in enumerate(zip(conv.inputs, conv.keys)):
        digits = key_digits(k)
        for p, scale in enumerate(PAIR_SCALES):
            row_idx = 3 * e + p
            row = rows.mac_row0 + row_idx
            d = digits[p]
            stored = {"L": 1 if d > 0 else 0, "R": 1 if d < 0 else 0}
            sign = (q > 0) - (q < 0)
            if sign:
                out.append(_pulse(f"vwl{row}", f"wl{row}", va, ck.t_mac0_s, abs(q) * scale * ck.t_unit_s))
            for s, (cell, wl_sign, bline) in enumerate(STACKS):
                if sign and wl_sign == sign:
                    dvt = draws.mac_dvt_v[row_idx, s]
                    bl.stack(bline, row, f"wl{row}", "vq1" if stored[cell] else "0", (dn + dvt[0], dn + dvt[1]))
                else:
                    bl.idle_stack(bline, stored[cell])
    # Calibration rows discharge RBL_R; ramp rows discharge RBL_L. The opposite bitline
    # carries an idle replica port so both bitlines see the same junction load.
    for i in range(rows.n_cal):
        row = rows.cal_row0 + i
        if calibration and i < conv.n_cal and conv.t_cal_units > 0:
            out.append(_pulse(f"vwl{row}", f"wl{row}", va, ck.t_cal0_s + ck.t_pulse_delay_s, conv.t_cal_units * ck.t_unit_s))
            dvt = draws.cal_dvt_v[i]
            bl.stack("r", row, f"wl{row}", "vq1", (dn + dvt[0], dn + dvt[1]))
        else:
            bl.idle_stack("r", 1 if i < conv.n_cal else 0)
        bl.idle_stack("l", 0)
    for i in range(rows.n_ramp):
        row = i
        if ramp:
            out.append(_pulse(f"vwl{row}", f"wl{row}", va, ck.ramp_cycle_start_s(i + 1) + ck.t_pulse_delay_s,
                              conv.t_ramp_units * ck.t_unit_s))
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
    # circuits/comparator_bench.py); reltol 3e-5 brackets every threshold correctly. The other column
    # testbenches use it too, so that conversions and characterisation share one accuracy.
    extra = (".options reltol=3e-5",) + tuple(extra)
    tstop = end + (2.5e-9 if recharge else 0.1e-9)
    if tstop_s is not None:
        tstop = min(tstop, float(nl.num(tstop_s, "tstop_s")))
    return _finish(out, bl, corner, save, extra, tstop, rows.n_rows)


def discharge_netlist(*, corner: Corner, supplies: Supplies, n_on_l: int, pulses_r_units: tuple[int, ...],
                      tstop_s: float, share_r_units: tuple[int, ...] = (),
                      gap_s: float = 1.0e-9, pulse_dvt_v: tuple[float, float] = (0.0, 0.0),
                      design: Design | None = None) -> tuple[str, list[float], dict]:
    """Characterisation testbench on the full column's bitlines (no MAC inputs).

    RBL_L: ``n_on_l`` nominal MAC cells switched on at T_MAC0_S and left on, so V(RBL_L)
    traces the discharge curve. RBL_R, in turn (``gap_s`` apart): one nominal cell
    storing 1 pulsed for each width in ``pulses_r_units`` (the charge of a pulse), then
    one *fresh* stack storing 0 per width in ``share_r_units`` (the charge its internal
    node takes from the bitline when its wordline first opens). Every other port idles.
    ``pulse_dvt_v`` (access, storage) threshold shifts are given to every pulsed stack on
    RBL_R (mismatch of the pulse charge). Returns the netlist, the pulse start times and the
    idle-stack counts per bitline. ``design``: as for :func:`column_netlist`.
    """
    design = design or default_design()
    ck = tm.active()
    unit, edge = ck.t_unit_s, ck.t_wl_edge_s
    va = supplies.v_array_v
    da, ds = (float(nl.num(x)) for x in pulse_dvt_v)   # validated as numbers
    if abs(da) > 0.2 or abs(ds) > 0.2:
        raise ValueError(f"pulse_dvt_v must be threshold shifts within ±0.2 V, got {pulse_dvt_v!r}")
    dn = corner.delvto_n()
    out = _preamble(corner, supplies, "discharge characterisation", design)
    out.append(_precharge_source(supplies, None))
    bl = _Bitlines(design.sizes.read_port)
    rows = Rows.of(design)
    row_far = rows.n_rows - 1
    if not 0 <= n_on_l <= rows.n_mac:
        raise ValueError(f"n_on_l must be 0..{rows.n_mac} (the design's MAC rows hold the curve's cells), got {n_on_l!r}")
    # The curve's cells are switched on while the precharge still holds the bitline, so the
    # discharge after the release is free of wordline-edge coupling from its first unit.
    t_on = ck.t_pre_end_s - 0.5e-9
    for i in range(n_on_l):
        row = rows.mac_row0 + i
        out.append(f"vwl{row} wl{row} 0 PWL(0 0 {nl.num(t_on)} 0 {nl.num(t_on + edge)} {nl.num(va)})")
        bl.stack("l", row, f"wl{row}", "vq1", (dn, dn))
    t = ck.t_mac0_s + 1e-9  # clear of the precharge release
    starts = []
    for w in tuple(pulses_r_units) + tuple(share_r_units):
        if not isinstance(w, (int, np.integer)) or not 1 <= w <= 4 * Q_MAX:
            raise ValueError(f"pulse width must be an integer 1..{4 * Q_MAX} units, got {w!r}")
        starts.append(t)
        t += w * unit + gap_s

    def pwl(pulses) -> str:
        pts = ["0 0"]
        for t0, w in pulses:
            t1 = t0 + w * unit
            pts += [f"{nl.num(t0 - edge / 2)} 0", f"{nl.num(t0 + edge / 2)} {nl.num(va)}",
                    f"{nl.num(t1 - edge / 2)} {nl.num(va)}", f"{nl.num(t1 + edge / 2)} 0"]
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
        for k in range(2 * rows.n_mac - used):
            bl.idle_stack(b, k % 2)
        for _ in range(rows.n_cal + rows.n_ramp):
            bl.idle_stack(b, 0)
    out += _sense_amplifier_load()
    if n_one:
        # Charge the wordline source delivers on the first rising edge (the driver's C·V).
        t_mid = starts[0] + pulses_r_units[0] * unit / 2
        out += [".save i(vwlp)", f".meas tran q_wlp INTEG i(vwlp) FROM={nl.num(starts[0] - edge)} TO={nl.num(t_mid)}"]
    save = ("rbl_l0", "rbl_r0", f"rbl_r{row_far}")
    idle = {f"{b}{stored}": n for (b, stored), n in bl.idle.items()}
    return _finish(out, bl, corner, save, (), tstop_s, rows.n_rows), starts, idle


def firing_cycle(time_s: np.ndarray, v_out: np.ndarray, v_sa: float) -> int | None:
    """First ramp cycle (1…n_ramp_steps of the active clocks) whose sense-amplifier decision is "fired", or None.

    The sense amplifier's outputs return to zero in reset, so each cycle's decision is
    read inside its evaluate phase, t_sa_read_s (1.15 ns at 65 nm) after the clock edge.
    """
    ck = tm.active()
    for j in range(1, ck.n_ramp_steps + 1):
        if np.interp(ck.sa_sample_time_s(j), time_s, v_out) > v_sa / 2:
            return j
    return None


def code_from_cycle(cycle: int | None) -> int:
    """ADC code: n_ramp_steps − firing cycle (32 − cycle at 65 nm); a column that never fires reads 0."""
    return 0 if cycle is None else tm.active().n_ramp_steps - cycle


def random_vectors(rng: np.random.Generator, activity: float, q_max: int = Q_MAX, k_max: int = K_MAX,
                   n_elements: int = N_ELEMENTS):
    """Random keys (−k_max…k_max) and inputs (|q| ≤ q_max, a fraction ``activity`` non-zero), ``n_elements`` each."""
    keys = rng.integers(-k_max, k_max + 1, n_elements)
    inputs = rng.integers(1, q_max + 1, n_elements) * rng.choice([-1, 1], n_elements)
    inputs = inputs * (rng.random(n_elements) < activity)
    return [int(x) for x in keys], [int(x) for x in inputs]
