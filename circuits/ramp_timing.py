"""Ramp wordline pulse generation at transistor level: token register, pulse width, drivers.

Part of the ``ramp`` block: the column testbench (:mod:`topkima.circuits.column`) drives the
32 ramp wordlines with ideal pulses (row i in ramp clock j = i + 1, ``T_PULSE_DELAY_S`` =
0.2 ns after the clock edge, width ``t_ramp_units`` x 0.5 ns, 20 ps edges, 0.5 V). This module
builds the circuit that makes those pulses in the macro and measures how far its pulses are
from that assumption. Cells: ``netlists/ramp_timing.sp`` (on ``netlists/digital.sp``).

Architecture [ours; the paper gives no circuit]
* **Token register**: 32 ``dffr`` in a one-hot shift register clocked by the 4 ns ramp clock
  (0.8 V digital supply). START (raised by the controller during the calibration clock) is
  sampled at ramp clock 1, so row i holds the token during ramp clock i + 1, as the column
  testbench assumes. After row 31 the token leaves; nothing refills the register.
* **Pulse-width generator** (one for the whole ramp, ``rttaps`` + ``rtwin``): a small state
  machine on the *falling* edge of the 2 GHz PWM clock. Four taps sample the ramp clock; a
  window flop W is loaded from them so that it rises at the first PWM falling edge after the
  ramp clock edge and falls exactly N PWM periods later (N = 1…6, static one-hot selects).
  Why this and not a gated delay or a counter decode: both edges of W are one clk→q of the
  same flop, so the width is N x 0.5 ns to within that flop's rise/fall clk→q difference,
  whatever the corner, and the select logic sits in W's D path with half a PWM period to
  settle (no decode glitches). Sampling on the falling edge puts every sample 0.25 ns from
  any ramp-clock transition (the ramp clock's edges coincide with PWM rising edges [ours]:
  both come from the macro's clock generator, 4 ns = 8 PWM periods). Cost: W opens 0.25 ns
  + clk→q after the ramp clock edge; that also lets the token settle (the register moves it
  at the edge), so token and window never race.
* **Row gate and driver** (``rtrow`` + ``rtdrv``): nand2(token, W) → two 0.8 V pre-driver
  inverters → a final inverter on the 0.5 V array supply. Going down from 0.8 V to 0.5 V needs
  no cross-coupled level shifter (a 0.8 V gate turns the 0.5 V PMOS firmly off); the PMOS
  pulls up with only 0.5 V of gate drive, so it is made :data:`WP_DRV_M` / :data:`WN_DRV_M`
  wide, sized so that the far end's rise and fall delays match at tt (measured while choosing).
* **STOP** (early stop, SPEC §2): sampled on the ramp clock's falling edge (``rtctl``), it
  gates the ramp clock into the generator, so the ramp step in progress completes and no
  later window opens; one clock later it also clears the token register.
* **Wordline load**: one ramp row across the array = 256 columns x 2 read-port access devices
  (W = 120 nm, L = 960 nm, :mod:`column`) plus wire. Lumped C (hand estimate, PTM card:
  toxe = 1.85 nm → Cox = 18.7 fF/µm²; W_eff x L_eff = 110 nm x 919.5 nm after wint/lint/xl):
  gate ≤ 512 x 1.89 fF = 0.97 pF in strong inversion, less near threshold (a 0.5 V gate is
  only ~80 mV above the card's vth0 = 0.423 V); wire 256 x 3 µm x 0.2 fF/µm = 154 fF and
  768 µm x 1 Ω/µm = 768 Ω (per-length values from :mod:`digital`). Simulated as a
  :data:`WL_SEGMENTS`-section RC ladder whose every node carries its share of the *real*
  access and storage devices (BSIM4 instances with ``m`` = columns per section; half store 1,
  half 0, drains on a 0.5 V bitline source that is not counted as wordline energy), so the
  gate load is the true non-linear one. ``c_wordline_eff_f`` reports the charge-based C.

What is simulated and what is composed
* ``measure_widths`` (one run per corner): the real taps, six window slices (N = 1…6, each
  the full ``rtwin`` with its own selects, window line and one row gate + driver + wordline)
  sharing the taps, the STOP/clock control, and one token flop. The other 31 rows' pin loads
  on each window line are m-multiplied MOS gates (idle nand2 inputs).
* ``measure_chain`` (one run per corner): generator at one N, control, and four real rows
  chained 0 → 1 → 2 → 31 (token flop, gate, driver, full wordline each). Rows 3…30 are not
  simulated: their clock, window and reset pin loads sit on the 32-section clock/window/reset
  lines as scaled gates (on the testbench supply). Row 31 takes its token straight from row 2:
  it stands for the last row at the far end of those lines. Energies of 32 rows are composed
  as the measured real rows plus 28 x the energy a real row draws in a cycle without token.
* Widths, edges and delays are read from the simulated waveforms (linear interpolation of
  the crossings, the same thing ``.meas`` does); energies are ``.meas tran INTEG i(v...)``
  per supply and per ramp clock, E = −V·q.
"""
from __future__ import annotations

import math

import numpy as np

from topkima.circuits import column as col
from topkima.circuits import digital as dig
from topkima.circuits import netlist as nl
from topkima.circuits.corners import Supplies, corner as corner_of
from topkima.circuits.jobs import Job

BLOCK = "ramp"
NETLISTS = ("ramp_timing.sp", "digital.sp")

N_RAMP_ROWS = col.N_RAMP_ROWS             #: 32 ramp rows (SPEC §2)
T_CLK_S = col.T_CLK_IMA_S                 #: ramp clock 4 ns (SPEC §2)
T_UNIT_S = col.T_UNIT_S                   #: PWM unit 0.5 ns (2 GHz PWM clock, SPEC §2)
N_UNITS_MAX = 6                           #: widest ramp pulse, as ColumnConversion.t_ramp_units ≤ 6
T_PULSE_DELAY_ASSUMED_S = col.T_PULSE_DELAY_S  #: what the column testbench assumes (0.2 ns)
T_SA_CLK_S = col.T_SA_CLK_S               #: sense-amplifier evaluate edge in each ramp clock (column)

# Wordline load (module docstring): geometry and wire values from the digital block [ours]
N_COLUMNS = dig.N_COLUMNS
ACCESS_PER_COLUMN = 2                     #: read-port access gates per column on one ramp wordline (brief)
WL_LENGTH_M = N_COLUMNS * dig.COLUMN_PITCH_M
C_WIRE_WL_F = WL_LENGTH_M * dig.WIRE_C_F_PER_M      #: 153.6 fF
R_WIRE_WL_OHM = WL_LENGTH_M * dig.WIRE_R_OHM_PER_M  #: 768 Ω
WL_SEGMENTS = 4                           #: RC sections of the wordline ladder
#: Hand estimate of one access gate in strong inversion: Cox·W_eff·L_eff, PTM card values (docstring).
C_GATE_ACCESS_HAND_F = 3.9 * 8.854e-12 / 1.85e-9 * (120e-9 - 2 * 5e-9) * (960e-9 - 30e-9 - 2 * 5.25e-9)
#: Row pitch along the register/window lines: the cell pitch along the bitline (column docstring).
ROW_PITCH_M = 0.75e-6

#: Final wordline driver widths [ours]: chosen so the far end's rise and fall delays match at tt.
WN_DRV_M = 2.0e-6
WP_DRV_M = 10.0e-6

# Testbench timeline [ours]
T_RESET_END_S = 0.6e-9      #: global reset released
T_EDGE0_S = 1.0e-9          #: ramp clock edge of cycle 0 (the calibration clock)
T_SRC_EDGE_S = 20e-12       #: ideal source edges, shaped by two inverters on the testbench supply
T_STEP_S = 20e-12           #: transient step (cap); see test of the step's effect in tests
T_START_LEAD_S = 1.0e-9     #: START changes this long after a ramp clock edge
#: Real rows of the chain bench, in token order: neighbours 0 → 1 → 2 and the far end.
CHAIN_ROWS = (0, 1, 2, 31)
#: STOP of the chain bench: asserted in the second half of this cycle (after the falling
#: edge, the realistic case: the k-th grant comes ~2.7 ns after a firing, SPEC §2).
STOP_CYCLE = 6
T_STOP_IN_CYCLE_S = 3.0e-9
#: A wordline counts as pulsed above half its supply; "quiet" below this fraction.
QUIET_FRACTION = 0.1


# --------------------------------------------------------------------------- checks

def _check_units(n_units) -> int:
    if isinstance(n_units, bool) or not isinstance(n_units, (int, np.integer)) or not 1 <= n_units <= N_UNITS_MAX:
        raise ValueError(f"ramp pulse width n_units must be an integer 1..{N_UNITS_MAX} "
                         f"(PWM units of {T_UNIT_S * 1e9:g} ns), got {n_units!r}")
    return int(n_units)


def _check_units_list(values) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"n_units must be a list of integers 1..{N_UNITS_MAX}, got {values!r}")
    out = tuple(_check_units(v) for v in values)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"n_units must be a non-empty list of distinct widths, got {values!r}")
    return out


def _supplies(supplies: dict | None) -> Supplies:
    if supplies is None:
        return Supplies()
    if not isinstance(supplies, dict):
        raise ValueError(f"supplies must be a dict of Supplies fields, got {type(supplies).__name__}")
    sup = Supplies(**supplies)
    for name, lo, hi in (("v_digital_v", 0.5, 1.2), ("v_array_v", 0.3, 1.0)):
        v = getattr(sup, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"supplies.{name} must be a voltage in [{lo}, {hi}] V, got {v!r}")
    if sup.v_array_v > sup.v_digital_v:
        raise ValueError("the wordline driver shifts DOWN: v_array_v must not exceed v_digital_v")
    return sup


def selects(n_units: int) -> dict[str, int]:
    """Static one-hot selects of ``rtwin`` for a width of ``n_units`` PWM units."""
    n = _check_units(n_units)
    sel = {f"sa{k}": 0 for k in range(4)} | {f"sb{k}": 0 for k in range(2)}
    sel[f"sa{n - 1}" if n <= 4 else f"sb{n - 5}"] = 1
    return sel


def edge_s(cycle: int) -> float:
    """Rising edge of ramp clock ``cycle`` in the testbenches (cycle 0 = calibration clock)."""
    return T_EDGE0_S + cycle * T_CLK_S


# --------------------------------------------------------------------------- netlist pieces

def _x(name: str, nodes: list[str], cell: str, **sizes: float) -> str:
    line = " ".join([nl.ident("x" + name, "instance")] + [nl.ident(n, "node") for n in nodes] + [nl.ident(cell, "cell")])
    line += " dvn={dvn} dvp={dvp}"
    for key, value in sizes.items():
        line += f" {nl.ident(key, 'parameter')}={nl.num(value, key)}"
    return line


def _src(name: str, node: str, value: float) -> str:
    return f"{nl.ident(name, 'source')} {nl.ident(node, 'node')} 0 {nl.num(value, name)}"


def _pwl(name: str, node: str, v_high: float, initial: int, edges: list[tuple[float, int]]) -> str:
    points = [(0.0, initial * v_high)]
    level = initial
    for t, new in sorted(edges):
        points += [(t, level * v_high), (t + T_SRC_EDGE_S, new * v_high)]
        level = new
    return f"{nl.ident(name, 'source')} {nl.ident(node, 'node')} 0 pwl(" + \
        " ".join(f"{nl.num(t)} {nl.num(v)}" for t, v in points) + ")"


def _header(title: str, corner_name: str, sup: Supplies) -> list[str]:
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    lines = [f"* topkima ramp timing: {nl.ident(title, 'testbench')}, corner {nl.ident(c.name, 'corner')}",
             nl.include(nl.MODEL_CARD), nl.include("digital.sp"), nl.include("ramp_timing.sp"),
             f".param dvn={nl.num(c.delvto_n(), 'delvto_n')} dvp={nl.num(c.delvto_p(), 'delvto_p')}",
             f".options temp={nl.num(c.temperature_c, 'temperature')}",
             _src("vddtb", "vddtb", vd),
             _src("vbl", "vbl", sup.v_precharge_v),   # read bitlines of the loaded row, precharged
             _src("vq1", "vq1", sup.v_array_v)]       # storage node of a cell storing 1
    # Clocks: ideal sources shaped by two inverters on the testbench supply; rising edges aligned.
    t_end_pulse = T_CLK_S / 2 - T_SRC_EDGE_S
    lines.append(f"vrs rclks 0 pulse(0 {nl.num(vd)} {nl.num(T_EDGE0_S)} {nl.num(T_SRC_EDGE_S)} "
                 f"{nl.num(T_SRC_EDGE_S)} {nl.num(t_end_pulse)} {nl.num(T_CLK_S)})")
    lines.append(f"vps clkps 0 pulse(0 {nl.num(vd)} {nl.num(T_EDGE0_S - 2 * T_UNIT_S)} {nl.num(T_SRC_EDGE_S)} "
                 f"{nl.num(T_SRC_EDGE_S)} {nl.num(T_UNIT_S / 2 - T_SRC_EDGE_S)} {nl.num(T_UNIT_S)})")
    for tag, src, out in (("rb", "rclks", "rclk"), ("pb", "clkps", "clkp")):
        lines += [_x(tag + "a", [src, tag + "m", "vddtb", "0"], "inv", wn=800e-9, wp=1200e-9),
                  _x(tag + "b", [tag + "m", out, "vddtb", "0"], "inv", wn=1.6e-6, wp=2.4e-6)]
    lines.append(_pwl("vrst", "rst", vd, 1, [(T_RESET_END_S, 0)]))
    return lines


def _select_sources(tag: str, n_units: int, vd: float) -> tuple[list[str], list[str]]:
    sel = selects(n_units)
    nodes = [f"{k}_{tag}" for k in sel]
    return [_src(f"v{k}_{tag}", f"{k}_{tag}", vd * v) for k, v in sel.items()], nodes


def _line(name: str, taps: dict[int, str], length_rows: int = N_RAMP_ROWS) -> list[str]:
    """A line along the rows: node ``{name}_r{i}`` at row i, one RC section per row pitch.

    ``taps`` maps a row to the node that drives the line there (row 0 = the driver end).
    """
    r_ohm = ROW_PITCH_M * dig.WIRE_R_OHM_PER_M
    c_f = ROW_PITCH_M * dig.WIRE_C_F_PER_M
    out = []
    for i in range(length_rows):
        out.append(f"c{name}_{i} {name}_r{i} 0 {nl.num(c_f)}")
        if i + 1 < length_rows:
            out.append(f"r{name}_{i} {name}_r{i} {name}_r{i + 1} {nl.num(r_ohm)}")
    for row, node in taps.items():
        out.append(f"r{name}_in{row} {nl.ident(node)} {name}_r{row} {nl.num(1e-3)}")
    return out


def _idle_groups(real_rows: tuple[int, ...]) -> list[tuple[int, int]]:
    """(middle row, count) of each run of rows that are not simulated."""
    groups, run = [], []
    for i in range(N_RAMP_ROWS):
        if i in real_rows:
            if run:
                groups.append((run[len(run) // 2], len(run)))
            run = []
        else:
            run.append(i)
    if run:
        groups.append((run[len(run) // 2], len(run)))
    return groups


def _window_loads(tag: str, line: str, real_rows: tuple[int, ...], dvn: float, dvp: float) -> list[str]:
    """Idle rows' nand2 window inputs (token 0: output high, internal node at 0) as MOS gates."""
    out = []
    for mid, count in _idle_groups(real_rows):
        node = f"{line}_r{mid}"
        out.append(nl.mos(f"mwn{tag}{mid}", "0", node, "0", "0", nl.NMOS, 400e-9, 65e-9, dvn, m=count))
        out.append(nl.mos(f"mwp{tag}{mid}", "vddtb", node, "vddtb", "vddtb", nl.PMOS, 300e-9, 65e-9, dvp, m=count))
    return out


def _register_loads(real_rows: tuple[int, ...]) -> list[str]:
    """Idle rows' clock pins (a unit inverter each) and reset pins (inverter + nor2 input).

    Scaled gates on the testbench supply: their input charge comes from the control cell's
    buffers as in the macro; their own switching is part of the idle-row energy that is
    composed from a real row (module docstring).
    """
    out = []
    for mid, count in _idle_groups(real_rows):
        out.append(_x(f"ckl{mid}", [f"rck_r{mid}", f"ckl{mid}", "vddtb", "0"], "inv",
                      wn=200e-9 * count, wp=300e-9 * count))
        out.append(_x(f"rsl{mid}", [f"rstk_r{mid}", f"rsl{mid}", "vddtb", "0"], "inv",
                      wn=400e-9 * count, wp=900e-9 * count))
    return out


def _wordline(tag: str, corner, sup: Supplies) -> list[str]:
    """Driver output ``wl{tag}_0`` → ladder → far end ``wl{tag}_{WL_SEGMENTS}`` with its access devices."""
    dn = corner.delvto_n()
    per_seg = N_COLUMNS // WL_SEGMENTS
    out = []
    for k in range(1, WL_SEGMENTS + 1):
        a, b = f"wl{tag}_{k - 1}", f"wl{tag}_{k}"
        out.append(f"rwl{tag}_{k} {a} {b} {nl.num(R_WIRE_WL_OHM / WL_SEGMENTS)}")
        out.append(f"cwl{tag}_{k} {b} 0 {nl.num(C_WIRE_WL_F / WL_SEGMENTS)}")
        # one cell per column stores 1 (the ramp replica cell), its partner port stores 0
        for s, q in (("a", "vq1"), ("b", "0")):
            out.append(nl.mos(f"ma{s}{tag}_{k}", "vbl", b, f"x{s}{tag}_{k}", "0", nl.NMOS,
                              col.W_READ_M, col.L_READ_M, dn, m=per_seg))
            out.append(nl.mos(f"ms{s}{tag}_{k}", f"x{s}{tag}_{k}", q, "0", "0", nl.NMOS,
                              col.W_READ_M, col.L_READ_M, dn, m=per_seg))
    return out


def _row_driver(tag: str, wlb: str, sup: Supplies, corner, wn_m: float, wp_m: float) -> list[str]:
    vd, va = sup.v_digital_v, sup.v_array_v
    return [_src(f"vddp{tag}", f"vddp{tag}", vd), _src(f"vdda{tag}", f"vdda{tag}", va),
            _x(f"drv{tag}", [wlb, f"wl{tag}_0", f"vddp{tag}", f"vdda{tag}", "0"], "rtdrv", wn=wn_m, wp=wp_m),
            *_wordline(tag, corner, sup)]


def _integ(name: str, source: str, t_from: float, t_to: float) -> str:
    return f".meas tran {nl.ident(name)} INTEG i({nl.ident(source)}) FROM={nl.num(t_from)} TO={nl.num(t_to)}"


def _save(nodes: list[str], sources: list[str]) -> str:
    return ".save " + " ".join([f"v({nl.ident(n)})" for n in nodes] + [f"i({nl.ident(s)})" for s in sources])


def _tran(t_stop: float) -> str:
    return f".tran {nl.num(T_STEP_S)} {nl.num(t_stop)}"


def _driver_size(wn_m: float, wp_m: float) -> tuple[float, float]:
    for v, what in ((wn_m, "wn_m"), (wp_m, "wp_m")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.2e-6 <= v <= 200e-6:
            raise ValueError(f"driver width {what} must be in [0.2, 200] µm, got {v!r}")
    return float(wn_m), float(wp_m)


# --------------------------------------------------------------------------- width bench

def widths_netlist(corner_name: str, supplies: dict | None = None, n_units=(1, 2, 3, 4, 5, 6),
                   wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M) -> tuple[str, dict]:
    """Pulse widths for several N in one run: shared taps, one window slice + row per N.

    Timeline: reset, ramp clock 0 (calibration; windows but no token), START sampled at
    clock 1 (every slice's row pulses), START low at clock 2 (token gone; no pulse).
    """
    ns = _check_units_list(n_units)
    sup = _supplies(supplies)
    wn_m, wp_m = _driver_size(wn_m, wp_m)
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    lines = _header("widths", corner_name, sup)
    lines += [_src("vddt", "vddt", vd), _src("vddc", "vddc", vd), _src("vddr", "vddr", vd),
              _src("vstop", "stop", 0.0),
              _pwl("vstart", "start", vd, 0, [(edge_s(0) + T_START_LEAD_S, 1), (edge_s(1) + T_START_LEAD_S, 0)]),
              _x("ctl", ["rclk", "rst", "stop", "rck", "rstk", "stopq", "vddc", "0"], "rtctl"),
              _x("taps", ["rclk", "clkp", "rst", "stopq", "clkpb", "rg", "rgb", "t0", "t1", "t2", "t3", "vddt", "0"],
                 "rttaps"),
              # one token flop, its output shared by the six row gates
              _x("tok", ["start", "rck", "rstk", "tok", "tokb", "vddr", "0"], "dffr")]
    for n in ns:
        tag = f"n{n}"
        srcs, sel_nodes = _select_sources(tag, n, vd)
        lines += srcs
        lines += [_src(f"vddg{tag}", f"vddg{tag}", vd),
                  _x(f"win{tag}", ["clkpb", "rg", "rgb", "t0", "t1", "t2", "t3", "rst"] + sel_nodes
                     + [f"w{tag}", f"vddg{tag}", "0"], "rtwin"),
                  *_line(f"wline{tag}", {0: f"w{tag}"}),
                  *_window_loads(tag, f"wline{tag}", (0,), c.delvto_n(), c.delvto_p()),
                  # the row gate on the pre-driver supply of its row
                  _x(f"nd{tag}", ["tok", f"wline{tag}_r0", f"wlb{tag}", f"vddp{tag}", "0"], "nand2"),
                  *_row_driver(tag, f"wlb{tag}", sup, c, wn_m, wp_m)]
    t_stop = edge_s(2) + 1.2e-9
    supplies_j = ["vddt", "vddc", "vddr"] + [f"{s}n{n}" for n in ns for s in ("vddg", "vddp", "vdda")]
    for s in supplies_j:
        lines.append(_integ(f"q_{s}_c1", s, edge_s(1), edge_s(2)))
    saves = ["rclk"] + [f"wn{n}" for n in ns] + [f"wln{n}_0" for n in ns] + [f"wln{n}_{WL_SEGMENTS}" for n in ns]
    lines += [_save(saves, supplies_j), _tran(t_stop), ".end"]
    return "\n".join(lines) + "\n", {"n_units": list(ns), "t_stop_s": t_stop}


# --------------------------------------------------------------------------- chain bench

def chain_netlist(corner_name: str, supplies: dict | None = None, n_units: int = N_UNITS_MAX,
                  stop: bool = True, wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M) -> tuple[str, dict]:
    """Token register with rows CHAIN_ROWS real, the generator at ``n_units``, START twice, STOP.

    Token 1: START sampled at clock 1 → rows 0, 1, 2, 31 in clocks 1–4, clock 5 empty.
    Token 2: START sampled at clock 6 → row 0 in clock 6; STOP rises T_STOP_IN_CYCLE_S into
    clock 6, is taken at clock 7's falling edge: row 1 completes clock 7, nothing after.
    """
    n = _check_units(n_units)
    sup = _supplies(supplies)
    wn_m, wp_m = _driver_size(wn_m, wp_m)
    if not isinstance(stop, bool):
        raise ValueError(f"stop must be True or False, got {stop!r}")
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    rows = CHAIN_ROWS
    n_cycles = 9
    lines = _header("chain", corner_name, sup)
    stop_edges = [(edge_s(STOP_CYCLE) + T_STOP_IN_CYCLE_S, 1)] if stop else []
    srcs, sel_nodes = _select_sources("g", n, vd)
    lines += srcs
    lines += [_src("vddt", "vddt", vd), _src("vddg", "vddg", vd), _src("vddc", "vddc", vd),
              _pwl("vstop", "stop", vd, 0, stop_edges),
              _pwl("vstart", "start", vd, 0, [(edge_s(0) + T_START_LEAD_S, 1), (edge_s(1) + T_START_LEAD_S, 0),
                                              (edge_s(5) + T_START_LEAD_S, 1), (edge_s(6) + T_START_LEAD_S, 0)]),
              _x("ctl", ["rclk", "rst", "stop", "rck", "rstk", "stopq", "vddc", "0"], "rtctl"),
              _x("taps", ["rclk", "clkp", "rst", "stopq", "clkpb", "rg", "rgb", "t0", "t1", "t2", "t3", "vddt", "0"],
                 "rttaps"),
              _x("win", ["clkpb", "rg", "rgb", "t0", "t1", "t2", "t3", "rst"] + sel_nodes + ["w", "vddg", "0"], "rtwin"),
              *_line("wline", {0: "w"}), *_line("rck", {0: "rck"}), *_line("rstk", {0: "rstk"}),
              *_window_loads("g", "wline", rows, c.delvto_n(), c.delvto_p()),
              *_register_loads(rows)]
    prev = "start"
    for r in rows:
        tag = f"r{r}"
        lines += [_src(f"vddr{tag}", f"vddr{tag}", vd),
                  _x(f"row{tag}", [prev, f"rck_r{r}", f"rstk_r{r}", f"wline_r{r}", f"tk{r}", f"wlb{tag}",
                                   f"vddr{tag}", "0"], "rtrow"),
                  *_row_driver(tag, f"wlb{tag}", sup, c, wn_m, wp_m)]
        prev = f"tk{r}"
    t_stop = edge_s(n_cycles)
    supplies_j = ["vddt", "vddg", "vddc"] + [f"{s}r{r}" for r in rows for s in ("vddr", "vddp", "vdda")]
    for j in range(1, n_cycles):
        for s in supplies_j:
            lines.append(_integ(f"q_{s}_c{j}", s, edge_s(j), edge_s(j + 1)))
    saves = ["rclk", "w", "stopq"] + [f"tk{r}" for r in rows] + [f"wlr{r}_0" for r in rows] \
        + [f"wlr{r}_{WL_SEGMENTS}" for r in rows]
    lines += [_save(saves, supplies_j), _tran(t_stop), ".end"]
    return "\n".join(lines) + "\n", {"rows": list(rows), "n_cycles": n_cycles, "n_units": n, "stop": stop,
                                     "t_stop_s": t_stop}
