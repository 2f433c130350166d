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
WN_DRV_M = 4.0e-6
WP_DRV_M = 60.0e-6

# Testbench timeline [ours]
T_RESET_END_S = 0.6e-9      #: global reset released
T_EDGE0_S = 1.0e-9          #: ramp clock edge of cycle 0 (the calibration clock)
T_SRC_EDGE_S = 20e-12       #: ideal source edges, shaped by two inverters on the testbench supply
T_STEP_S = 20e-12          #: transient step cap: 10 ps moved widths by < 0.005 units (measured while choosing)
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
    """Driver output ``wl{tag}_0`` → ladder → far end ``wl{tag}_{WL_SEGMENTS}``, devices at every node.

    The drains of section k's cells storing 1 sit on their own bitline source
    ``vbl{tag}_{k}`` (0.5 V), so the read charge each quarter of the row passes is measured.
    """
    dn = corner.delvto_n()
    per_seg = N_COLUMNS // WL_SEGMENTS
    out = []
    for k in range(1, WL_SEGMENTS + 1):
        a, b = f"wl{tag}_{k - 1}", f"wl{tag}_{k}"
        out.append(f"rwl{tag}_{k} {a} {b} {nl.num(R_WIRE_WL_OHM / WL_SEGMENTS)}")
        out.append(f"cwl{tag}_{k} {b} 0 {nl.num(C_WIRE_WL_F / WL_SEGMENTS)}")
        out.append(_src(f"vbl{tag}_{k}", f"bl{tag}_{k}", sup.v_precharge_v))
        # one cell per column stores 1 (the ramp replica cell), its partner port stores 0
        for s, q, drain in (("a", "vq1", f"bl{tag}_{k}"), ("b", "0", "vbl")):
            out.append(nl.mos(f"ma{s}{tag}_{k}", drain, b, f"x{s}{tag}_{k}", "0", nl.NMOS,
                              col.W_READ_M, col.L_READ_M, dn, m=per_seg))
            out.append(nl.mos(f"ms{s}{tag}_{k}", f"x{s}{tag}_{k}", q, "0", "0", nl.NMOS,
                              col.W_READ_M, col.L_READ_M, dn, m=per_seg))
    return out


def _row_driver(tag: str, wlb: str, sup: Supplies, corner, wn_m: float, wp_m: float) -> list[str]:
    vd, va = sup.v_digital_v, sup.v_array_v
    return [_src(f"vddp{tag}", f"vddp{tag}", vd), _src(f"vdda{tag}", f"vdda{tag}", va),
            _x(f"drv{tag}", [wlb, f"wl{tag}_0", f"vddp{tag}", f"vdda{tag}", "0"], "rtdrv", wn=wn_m, wp=wp_m),
            *_wordline(tag, corner, sup)]


#: Cells of the reference stack driven by the column testbench's ideal pulse.
M_REF = 8


def _reference(tag: str, n_units: int, t_start_s: float, corner, sup: Supplies) -> list[str]:
    """The column testbench's ideal wordline pulse (50 % width N x 0.5 ns, 20 ps edges) on
    ``M_REF`` read ports storing 1, drains on ``vblref{tag}``: the charge the column model assumes."""
    dn, va = corner.delvto_n(), sup.v_array_v
    e = col.T_EDGE_S
    return [f"vref{tag} ref{tag} 0 PULSE(0 {nl.num(va)} {nl.num(t_start_s)} {nl.num(e)} {nl.num(e)} "
            f"{nl.num(n_units * T_UNIT_S - e)} 1)",
            _src(f"vblref{tag}", f"blref{tag}", sup.v_precharge_v),
            nl.mos(f"mra{tag}", f"blref{tag}", f"ref{tag}", f"xr{tag}", "0", nl.NMOS, col.W_READ_M, col.L_READ_M,
                   dn, m=M_REF),
            nl.mos(f"mrs{tag}", f"xr{tag}", "vq1", "0", "0", nl.NMOS, col.W_READ_M, col.L_READ_M, dn, m=M_REF)]


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


def _control_and_taps(vd: float) -> list[str]:
    return [_src("vddt", "vddt", vd), _src("vddc", "vddc", vd),
            _x("ctl", ["rclk", "rst", "stop", "rck", "rstk", "stopq", "vddc", "0"], "rtctl"),
            _x("taps", ["rclk", "clkp", "rst", "stopq", "clkpb", "rg", "t0", "t1", "t2", "t3", "vddt", "0"], "rttaps")]


def _window(tag: str, sel_nodes: list[str], out: str, supply: str) -> str:
    return _x(f"win{tag}", ["clkpb", "rg", "t0", "t1", "t2", "t3", "rst"] + sel_nodes + [out, supply, "0"], "rtwin")


# --------------------------------------------------------------------------- width bench

def widths_netlist(corner_name: str, supplies: dict | None = None, n_units=(1, 2, 3, 4, 5, 6),
                   wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M) -> tuple[str, dict]:
    """Pulse widths for several N in one run: shared taps, one window slice + row per N.

    Timeline: reset, ramp clock 0 (calibration: windows open but no token), START sampled at
    clock 1 (every slice's row pulses once), START low at clock 2 (token gone: no pulse).
    Also holds, per N, the column testbench's ideal pulse on reference read ports.
    """
    ns = _check_units_list(n_units)
    sup = _supplies(supplies)
    wn_m, wp_m = _driver_size(wn_m, wp_m)
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    lines = _header("widths", corner_name, sup)
    lines += [*_control_and_taps(vd), _src("vddr", "vddr", vd), _src("vstop", "stop", 0.0),
              _pwl("vstart", "start", vd, 0, [(edge_s(0) + T_START_LEAD_S, 1), (edge_s(1) + T_START_LEAD_S, 0)]),
              # one token flop, its output shared by the row gates of all slices
              _x("tok", ["start", "rck", "rstk", "tok", "tokb", "vddr", "0"], "dffr")]
    sources = ["vddt", "vddc", "vddr"]
    for n in ns:
        tag = f"n{n}"
        srcs, sel_nodes = _select_sources(tag, n, vd)
        lines += [*srcs, _src(f"vddg{tag}", f"vddg{tag}", vd), _window(tag, sel_nodes, f"w{tag}", f"vddg{tag}"),
                  *_line(f"wline{tag}", {0: f"w{tag}"}),
                  *_window_loads(tag, f"wline{tag}", (0,), c.delvto_n(), c.delvto_p()),
                  # the row gate, on the pre-driver supply of its row
                  _x(f"nd{tag}", ["tok", f"wline{tag}_r0", f"wlb{tag}", f"vddp{tag}", "0"], "nand2"),
                  *_row_driver(tag, f"wlb{tag}", sup, c, wn_m, wp_m),
                  *_reference(tag, n, edge_s(1) + T_PULSE_DELAY_ASSUMED_S, c, sup)]
        sources += [f"vddg{tag}", f"vddp{tag}", f"vdda{tag}", f"vblref{tag}"]
        sources += [f"vbl{tag}_{k}" for k in range(1, WL_SEGMENTS + 1)]
    for s in sources:
        lines.append(_integ(f"q_{s}", s, edge_s(1), edge_s(2)))
    t_stop = edge_s(2) + 1.2e-9
    saves = ["rclk", "tok"] + [f"wn{n}" for n in ns] + [f"wln{n}_0" for n in ns] \
        + [f"wln{n}_{WL_SEGMENTS}" for n in ns]
    lines += [_save(saves, sources), _tran(t_stop), ".end"]
    return "\n".join(lines) + "\n", {"n_units": list(ns), "t_stop_s": t_stop, "wn_m": wn_m, "wp_m": wp_m}


# --------------------------------------------------------------------------- chain bench

#: Chain bench: clocks simulated (0 = calibration clock), and when each real row must pulse.
CHAIN_CYCLES = 9


def chain_expected(stop: bool = True) -> dict[int, list[int]]:
    """Ramp clocks in which each real row of the chain bench must pulse (and no other)."""
    first = {r: [1 + i] for i, r in enumerate(CHAIN_ROWS)}          # token 1: clocks 1..4
    second = {CHAIN_ROWS[0]: STOP_CYCLE, CHAIN_ROWS[1]: STOP_CYCLE + 1}  # token 2 until STOP
    if not stop:
        second = {r: STOP_CYCLE + i for i, r in enumerate(CHAIN_ROWS) if STOP_CYCLE + i < CHAIN_CYCLES}
    return {r: first[r] + ([second[r]] if r in second else []) for r in CHAIN_ROWS}


def chain_netlist(corner_name: str, supplies: dict | None = None, n_units: int = N_UNITS_MAX,
                  stop: bool = True, wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M) -> tuple[str, dict]:
    """Token register with rows CHAIN_ROWS real, the generator at ``n_units``, two tokens, STOP.

    Token 1: START sampled at clock 1 → rows 0, 1, 2, 31 in clocks 1–4; clock 5 empty.
    Token 2: START sampled at clock 6 → row 0 in clock 6; STOP rises T_STOP_IN_CYCLE_S into
    clock 6 and is taken at clock 7's falling edge: row 1 completes clock 7, nothing after.
    """
    n = _check_units(n_units)
    sup = _supplies(supplies)
    wn_m, wp_m = _driver_size(wn_m, wp_m)
    if not isinstance(stop, bool):
        raise ValueError(f"stop must be True or False, got {stop!r}")
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    rows = CHAIN_ROWS
    lines = _header("chain", corner_name, sup)
    srcs, sel_nodes = _select_sources("g", n, vd)
    starts = [(edge_s(0) + T_START_LEAD_S, 1), (edge_s(1) + T_START_LEAD_S, 0),
              (edge_s(STOP_CYCLE - 1) + T_START_LEAD_S, 1), (edge_s(STOP_CYCLE) + T_START_LEAD_S, 0)]
    lines += [*srcs, *_control_and_taps(vd), _src("vddg", "vddg", vd),
              _pwl("vstop", "stop", vd, 0, [(edge_s(STOP_CYCLE) + T_STOP_IN_CYCLE_S, 1)] if stop else []),
              _pwl("vstart", "start", vd, 0, starts),
              _window("g", sel_nodes, "w", "vddg"),
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
    t_stop = edge_s(CHAIN_CYCLES)
    sources = ["vddt", "vddg", "vddc"] + [f"{s}r{r}" for r in rows for s in ("vddr", "vddp", "vdda")]
    for j in range(1, CHAIN_CYCLES):
        for s in sources:
            lines.append(_integ(f"q_{s}_c{j}", s, edge_s(j), edge_s(j + 1)))
    saves = ["rclk", "w", "stopq"] + [f"tk{r}" for r in rows] + [f"wlr{r}_0" for r in rows] \
        + [f"wlr{r}_{WL_SEGMENTS}" for r in rows]
    lines += [_save(saves, sources), _tran(t_stop), ".end"]
    return "\n".join(lines) + "\n", {"rows": list(rows), "n_units": n, "stop": stop, "t_stop_s": t_stop,
                                     "expected": chain_expected(stop), "wn_m": wn_m, "wp_m": wp_m}


# --------------------------------------------------------------------------- waveform reading

def _crossings(t: np.ndarray, v: np.ndarray, level: float, rising: bool) -> np.ndarray:
    """Times at which ``v`` crosses ``level`` (linear interpolation between time points)."""
    s = v - level
    idx = np.nonzero((s[:-1] < 0) & (s[1:] >= 0))[0] if rising else np.nonzero((s[:-1] >= 0) & (s[1:] < 0))[0]
    return t[idx] + (t[idx + 1] - t[idx]) * (-s[idx]) / (s[idx + 1] - s[idx])


def _first(times: np.ndarray, after: float, before: float = math.inf) -> float | None:
    sel = times[(times >= after) & (times < before)]
    return float(sel[0]) if sel.size else None


def _clock_edge(t: np.ndarray, rclk: np.ndarray, cycle: int, vd: float) -> float:
    """50 % rising crossing of the ramp clock at the block input, nearest to ``edge_s(cycle)``."""
    times = _crossings(t, rclk, vd / 2, True)
    return float(times[np.argmin(np.abs(times - edge_s(cycle)))])


def pulse_shape(t: np.ndarray, v: np.ndarray, v_high: float, t_edge: float, t_end: float) -> dict:
    """First pulse of ``v`` after ``t_edge``: 50 % width, 10–90 % edges, delay, peak."""
    win = (t >= t_edge) & (t < t_end)
    peak = float(v[win].max()) if win.any() else 0.0
    r50 = _first(_crossings(t, v, v_high / 2, True), t_edge, t_end)
    out = {"v_peak_v": peak, "delay_rise_s": None, "width_s": None, "rise_10_90_s": None, "fall_90_10_s": None,
           "t_fall_50_s": None, "t_off_10_s": None}
    if r50 is None:
        return out
    f50 = _first(_crossings(t, v, v_high / 2, False), r50, t_end)
    r10 = _first(_crossings(t, v, 0.1 * v_high, True), t_edge, t_end)
    r90 = _first(_crossings(t, v, 0.9 * v_high, True), r50, t_end)
    f90 = _first(_crossings(t, v, 0.9 * v_high, False), r90, t_end) if r90 is not None else None
    f10 = _first(_crossings(t, v, 0.1 * v_high, False), r50, t_end)
    out.update(delay_rise_s=r50 - t_edge, width_s=None if f50 is None else f50 - r50,
               rise_10_90_s=None if r90 is None or r10 is None else r90 - r10,
               fall_90_10_s=None if f90 is None or f10 is None else f10 - f90,
               t_fall_50_s=None if f50 is None else f50 - t_edge, t_off_10_s=None if f10 is None else f10 - t_edge)
    return out


def _pulse_count(t: np.ndarray, v: np.ndarray, v_high: float, a: float, b: float) -> int:
    r = _crossings(t, v, v_high / 2, True)
    return int(np.count_nonzero((r >= a) & (r < b)))


def _energy_j(q_c: float, v: float) -> float:
    """Energy drawn from a supply whose ``INTEG i(v)`` is ``q_c`` (source current is negative)."""
    return -v * q_c


# --------------------------------------------------------------------------- measurements (jobs)

def measure_widths(corner_name: str, supplies: dict | None = None, n_units=(1, 2, 3, 4, 5, 6),
                   wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M) -> dict:
    """Wordline pulse width, edges, delay, read-charge width and energy for each N (one run)."""
    from topkima.circuits.spice import simulate
    sup = _supplies(supplies)
    text, plan_ = widths_netlist(corner_name, sup.as_dict(), n_units, wn_m, wp_m)
    res = simulate(text, BLOCK)
    t, m = res.time, res.measures
    vd, va = sup.v_digital_v, sup.v_array_v
    e1 = _clock_edge(t, res.v("rclk"), 1, vd)
    e0, e2 = e1 - T_CLK_S, e1 + T_CLK_S
    tok = _first(_crossings(t, res.v("tok"), vd / 2, True), e1, e2)
    per_n = []
    for n in plan_["n_units"]:
        tag = f"n{n}"
        w = pulse_shape(t, res.v(f"w{tag}"), vd, e1, e2)
        near = pulse_shape(t, res.v(f"wl{tag}_0"), va, e1, e2)
        far = pulse_shape(t, res.v(f"wl{tag}_{WL_SEGMENTS}"), va, e1, e2)
        q_ref = m[f"q_vblref{tag}"] / M_REF
        q_sec = [m[f"q_vbl{tag}_{k}"] / (N_COLUMNS // WL_SEGMENTS) for k in range(1, WL_SEGMENTS + 1)]
        counts = [_pulse_count(t, res.v(f"wl{tag}_{WL_SEGMENTS}"), va, a, b)
                  for a, b in ((0.0, e1), (e1, e2), (e2, plan_["t_stop_s"]))]
        nominal = n * T_UNIT_S

        def err(shape):
            return None if shape["width_s"] is None else (shape["width_s"] - nominal) / T_UNIT_S

        per_n.append({
            "n_units": n, "width_nominal_s": nominal,
            "window_width_s": w["width_s"], "window_width_error_units": err(w), "window_delay_s": w["delay_rise_s"],
            "width_near_s": near["width_s"], "width_far_s": far["width_s"],
            "width_error_near_units": err(near), "width_error_far_units": err(far),
            "rise_10_90_near_s": near["rise_10_90_s"], "fall_90_10_near_s": near["fall_90_10_s"],
            "rise_10_90_far_s": far["rise_10_90_s"], "fall_90_10_far_s": far["fall_90_10_s"],
            "delay_near_s": near["delay_rise_s"], "delay_far_s": far["delay_rise_s"],
            "t_fall_50_far_s": far["t_fall_50_s"], "t_off_10_far_s": far["t_off_10_s"],
            "v_peak_near_v": near["v_peak_v"], "v_peak_far_v": far["v_peak_v"],
            # read charge of each quarter of the row (cells storing 1) over the ideal pulse's, in units
            "charge_width_by_quarter_units": [n * q / q_ref for q in q_sec],
            "pulses_per_clock_far": counts,
            "one_pulse_ok": counts == [0, 1, 0],
            "e_window_j": _energy_j(m[f"q_vddg{tag}"], vd),
            "e_predriver_j": _energy_j(m[f"q_vddp{tag}"], vd),
            "e_wordline_j": _energy_j(m[f"q_vdda{tag}"], va),
            "c_wordline_eff_f": _energy_j(m[f"q_vdda{tag}"], va) / va ** 2,
        })
    return {"corner": corner_name, "supplies": sup.as_dict(), "wn_drv_m": plan_["wn_m"], "wp_drv_m": plan_["wp_m"],
            "t_token_after_edge_s": None if tok is None else tok - e1,
            "e_taps_j": _energy_j(m["q_vddt"], vd), "per_n": per_n}


def measure_chain(corner_name: str, supplies: dict | None = None, n_units: int = N_UNITS_MAX, stop: bool = True,
                  wn_m: float = WN_DRV_M, wp_m: float = WP_DRV_M) -> dict:
    """Order, STOP, skew and energy per ramp step of the token register (rows CHAIN_ROWS real)."""
    from topkima.circuits.spice import simulate
    sup = _supplies(supplies)
    text, plan_ = chain_netlist(corner_name, sup.as_dict(), n_units, stop, wn_m, wp_m)
    res = simulate(text, BLOCK)
    t, m = res.time, res.measures
    vd, va = sup.v_digital_v, sup.v_array_v
    edges = [_clock_edge(t, res.v("rclk"), j, vd) for j in range(CHAIN_CYCLES)] + [plan_["t_stop_s"]]
    expected = plan_["expected"]
    pulses, quiet_max, shapes = {}, {}, {}
    for r in CHAIN_ROWS:
        far = res.v(f"wlr{r}_{WL_SEGMENTS}")
        pulses[str(r)] = [_pulse_count(t, far, va, edges[j], edges[j + 1]) for j in range(CHAIN_CYCLES)]
        # largest excursion in clocks where this row must stay low
        quiet = [float(far[(t >= edges[j]) & (t < edges[j + 1])].max()) for j in range(CHAIN_CYCLES)
                 if j not in expected[r]]
        quiet_max[str(r)] = max(quiet)
        j = expected[r][0]
        shapes[str(r)] = {"near": pulse_shape(t, res.v(f"wlr{r}_0"), va, edges[j], edges[j + 1]),
                          "far": pulse_shape(t, far, va, edges[j], edges[j + 1])}
    want = {str(r): [1 if j in expected[r] else 0 for j in range(CHAIN_CYCLES)] for r in CHAIN_ROWS}
    in_order = all(pulses[k] == want[k] for k in want)
    quiet_ok = max(quiet_max.values()) < QUIET_FRACTION * va
    last = expected[CHAIN_ROWS[-1]][0]
    after_token = all(sum(p[last + 1:STOP_CYCLE]) == 0 for p in pulses.values())
    stop_at = STOP_CYCLE + 2
    after_stop = all(sum(p[stop_at:]) == 0 for p in pulses.values()) if stop else None
    tk_end = {str(r): float(res.v(f"tk{r}")[-1]) for r in CHAIN_ROWS}
    # token settles before the window opens (clock 2: token moves 0 -> 1)
    tk_rise = _first(_crossings(t, res.v(f"tk{CHAIN_ROWS[1]}"), vd / 2, True), edges[2], edges[3])
    w_rise = _first(_crossings(t, res.v("w"), vd / 2, True), edges[2], edges[3])
    delays_near = [shapes[str(r)]["near"]["delay_rise_s"] for r in CHAIN_ROWS]
    delays_far = [shapes[str(r)]["far"]["delay_rise_s"] for r in CHAIN_ROWS]

    def e(name: str, j: int) -> float:
        return _energy_j(m[f"q_{name}_c{j}"], va if name.startswith("vdda") else vd)

    # energy per ramp step, clock 2: row 1 takes the token (and pulses), row 0 gives it up,
    # row 2 sees its D rise, row 31 idles: exactly the pattern of any step of the 32-row register
    j = 2
    active, giving, nxt, idle = (f"r{r}" for r in CHAIN_ROWS)
    e_idle_row = e(f"vddr{idle}", j)
    e_idle_drv = e(f"vddp{idle}", j) + e(f"vdda{idle}", j)
    n_idle_rows = N_RAMP_ROWS - 3
    e_register = sum(e(f"vddr{x}", j) for x in (active, giving, nxt)) + n_idle_rows * e_idle_row
    e_drivers_idle = sum(e(f"vddp{x}", j) + e(f"vdda{x}", j) for x in (giving, nxt)) \
        + (N_RAMP_ROWS - 3) * e_idle_drv
    active, giving = f"r{CHAIN_ROWS[1]}", f"r{CHAIN_ROWS[0]}"
    e_active_pre, e_active_wl = e(f"vddp{active}", j), e(f"vdda{active}", j)
    e_gen = e("vddt", j) + e("vddg", j)
    e_ctl = e("vddc", j)
    return {
        "corner": corner_name, "supplies": sup.as_dict(), "n_units": plan_["n_units"], "stop": stop,
        "rows": list(CHAIN_ROWS), "expected_clocks": {str(k): v for k, v in expected.items()},
        "pulses_per_clock": pulses, "quiet_max_v": quiet_max,
        "one_pulse_per_clock_in_order_ok": bool(in_order and quiet_ok),
        "none_after_token_left_ok": bool(after_token),
        "stop_halts_ok": None if after_stop is None else bool(after_stop and in_order),
        "token_cleared_after_stop_ok": None if not stop else all(v < 0.25 * vd for v in tk_end.values()),
        "shapes": shapes,
        "delay_near_by_row_s": dict(zip(map(str, CHAIN_ROWS), delays_near)),
        "delay_far_by_row_s": dict(zip(map(str, CHAIN_ROWS), delays_far)),
        "skew_near_s": max(delays_near) - min(delays_near), "skew_far_s": max(delays_far) - min(delays_far),
        "t_token_after_edge_s": None if tk_rise is None else tk_rise - edges[2],
        "t_window_after_edge_s": None if w_rise is None else w_rise - edges[2],
        "t_token_to_window_margin_s": None if tk_rise is None or w_rise is None else w_rise - tk_rise,
        "e_generator_j": e_gen, "e_control_j": e_ctl, "e_register_j": e_register,
        "e_idle_row_j": e_idle_row, "e_idle_driver_j": e_idle_drv, "e_drivers_idle_j": e_drivers_idle,
        "e_active_predriver_j": e_active_pre, "e_active_wordline_j": e_active_wl,
        "e_step_j": e_gen + e_ctl + e_register + e_drivers_idle + e_active_pre + e_active_wl,
        "energy_clock": j,
    }
