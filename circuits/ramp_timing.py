"""Ramp wordline pulse generation at transistor level: token register, pulse width, drivers.

Part of the ``ramp`` block. The column testbench (:mod:`topkima.circuits.column`) drives the 32
ramp wordlines with ideal pulses: row i in ramp clock j = i + 1, ``T_PULSE_DELAY_S`` after the
clock edge, 50 % width ``t_ramp_units`` x 0.5 ns, ``T_WL_EDGE_S`` edges, 0.5 V
(:mod:`topkima.circuits.timing`). This module holds the circuit that makes those pulses (cells
in ``netlists/ramp_timing.sp`` on ``netlists/digital.sp``): its sizes, the netlist pieces of
its two testbenches, waveform reading, the plan and the artefact's ``ramp.timing`` part. The
benches: :mod:`.ramp_widths` (pulse width, edges, delay and read charge per N) and
:mod:`.ramp_chain` (token order, STOP, skew, energy per ramp step).

Architecture [ours; the paper gives no circuit]: a 32-row one-hot token register on the 4 ns
ramp clock (START sampled at ramp clock 1); one pulse-width generator for the whole ramp, a
window flop on the falling edge of the 2 GHz PWM clock that is open for exactly N PWM periods
(N = 1…6, static one-hot selects); per row nand2(token, window) → two 0.8 V pre-driver
inverters → a final inverter on the 0.5 V array supply (shifting down needs no level shifter;
its PMOS is 15x the NMOS for matched edges); a centre-driven wordline (two 128-column halves at 256 columns);
STOP sampled on the ramp clock's falling edge gates the generator, so the step in progress
completes, and clears the token a clock later. Wordline load: the array's columns (the design's
``geometry.n_columns``, 256) x 2 read-port access gates as real BSIM4 devices on four RC sections
(64 columns each at 256), plus wire (per-length values of :mod:`.digital`). The design choices, what is simulated and what composed, and the
figures measured while choosing them: docs/circuits.md.
"""
import dataclasses
import math

import numpy as np

from topkima.circuits import column as col
from topkima.circuits import digital as dig
from topkima.circuits import netlist as nl
from topkima.circuits import technology as tech
from topkima.circuits import testbench as tb
from topkima.circuits.corners import Supplies, corner as corner_of
from topkima.circuits.design import reference_design
from topkima.circuits.design_rules import RAMP_GENERATOR_MAX_UNITS
from topkima.circuits.jobs import Job
from topkima.circuits import timing as tm

BLOCK = "ramp"
NETLISTS = ("ramp_timing.sp", "digital.sp")

N_RAMP_ROWS = col.N_RAMP_ROWS             #: 32 ramp rows (SPEC §2); a design's own: :func:`n_ramp_rows`
N_UNITS_MAX = RAMP_GENERATOR_MAX_UNITS    #: widest pulse the generator makes (the brief: N = 1…6)
#: The ramp's default width: the column testbench's default ``t_ramp_units`` (a design's own: ``adc.t_ramp_units``).
N_UNITS_RAMP = {f.name: f.default for f in dataclasses.fields(col.ColumnConversion)}["t_ramp_units"]

# Wordline load (module docstring); geometry and per-length wire values of the digital block [ours].
# A design's own width (geometry.n_columns) reaches the benches as ``n_columns``; the constants are the 65 nm preset's.
N_COLUMNS = dig.N_COLUMNS
ACCESS_GATES_PER_COLUMN = 2               #: read-port access gates per column on one ramp wordline
N_WL_SECTIONS = 4                         #: RC sections of the wordline ladder (two per half when centre-driven)


def wordline_wire(n_columns: int) -> tuple[float, float]:
    """(R (Ω), C (F)) of the wire of a wordline across ``n_columns`` column pitches (768 Ω, 153.6 fF at 256)."""
    length_m = n_columns * dig.COLUMN_PITCH_M
    return length_m * dig.WIRE_R_OHM_PER_M, length_m * dig.WIRE_C_F_PER_M


def section_columns(n_columns: int) -> int:
    """Columns per RC section of the wordline ladder (64 at 256 columns)."""
    if isinstance(n_columns, bool) or not isinstance(n_columns, (int, np.integer)) \
            or n_columns < 4 * N_WL_SECTIONS or n_columns % N_WL_SECTIONS:
        raise ValueError(f"n_columns must be an integer multiple of {N_WL_SECTIONS} of at least {4 * N_WL_SECTIONS} "
                         f"(the wordline's RC sections), got {n_columns!r}")
    return int(n_columns) // N_WL_SECTIONS


R_WIRE_WL_OHM, C_WIRE_WL_F = wordline_wire(N_COLUMNS)   #: 768 Ω, 153.6 fF
SECTION_COLUMNS = section_columns(N_COLUMNS)             #: 64
def c_gate_access_hand_f(w_m: float, l_m: float) -> float:
    """Hand estimate of one access gate in strong inversion: Cox·W_eff·L_eff, PTM card values (docstring)."""
    return 3.9 * 8.854e-12 / 1.85e-9 * (w_m - 2 * 5e-9) * (l_m - 30e-9 - 2 * 5.25e-9)


#: The hand estimate at the 65 nm preset's read port (120 nm x 960 nm).
C_GATE_ACCESS_HAND_F = c_gate_access_hand_f(col.W_READ_M, col.L_READ_M)
#: Row pitch along the register/window lines: the cell pitch along the bitline (column docstring).
ROW_PITCH_M = 0.75e-6
DRIVES = ("centre", "end")
WL_DRIVE = "centre"                       #: wordline driven from the middle of the row [ours, docstring]

#: Final driver NMOS / PMOS [ours, docstring]: the 65 nm preset's ``sizes.wordline_driver``; a design's own are
#: passed to the benches as ``wn_m``/``wp_m`` (and its read port as ``read_port_m``).
WN_DRV_M = reference_design().sizes.wordline_driver.wn_m
WP_DRV_M = reference_design().sizes.wordline_driver.wp_m
READ_PORT_M = (col.W_READ_M, col.L_READ_M)

# Testbench timeline [ours]
T_RESET_END_S = 0.6e-9      #: global reset released
T_EDGE0_S = 1.0e-9          #: ramp clock edge of clock 0 (the calibration clock)
T_SRC_EDGE_S = 20e-12       #: ideal source edges, shaped by two inverters on the testbench supply
T_STEP_S = 20e-12           #: transient step cap: 10 ps moved widths by < 0.005 units (checked while choosing)
T_START_LEAD_S = 1.0e-9     #: START changes this long after a ramp clock edge
#: Real rows of the chain bench at 32 rows, in token order: neighbours 0 → 1 and the far end (:func:`chain_rows`).
CHAIN_ROWS = (0, 1, 31)


def n_ramp_rows() -> int:
    """Rows of the token register: the active clocks' ramp steps (the design's ``geometry.n_ramp_rows``)."""
    return tm.active().n_ramp_steps


def chain_rows() -> tuple[int, int, int]:
    """Real rows of the chain bench, in token order: neighbours 0 → 1 and the far end of the register."""
    return (0, 1, n_ramp_rows() - 1)
CHAIN_CLOCKS = 7            #: clocks simulated by the chain bench (0 = calibration clock)
#: STOP of the chain bench: rises :func:`t_stop_in_clock_s` into this clock; the step of that
#: clock must still complete and nothing follow.
STOP_CLOCK = 5


def t_stop_in_clock_s() -> float:
    """When STOP rises in the chain bench's STOP_CLOCK: a quarter of the active ramp clock after its edge
    (1 ns at 65 nm, while row 0's window, open 0.7–2.7 ns into the 4 ns clock, is open). STOP is sampled
    on the clock's falling edge, so the step of that clock must complete whenever in the first half STOP rises."""
    return tm.active().t_clk_ramp_s / 4
#: Cells of the reference read ports driven by the column testbench's ideal pulse.
M_REF = 8


# --------------------------------------------------------------------------- checks

def checked_units(n_units) -> int:
    if isinstance(n_units, bool) or not isinstance(n_units, (int, np.integer)) or not 1 <= n_units <= N_UNITS_MAX:
        raise ValueError(f"ramp pulse width n_units must be an integer 1..{N_UNITS_MAX} "
                         f"(PWM units of {tm.active().t_unit_s * 1e9:g} ns), got {n_units!r}")
    return int(n_units)


def checked_units_list(values) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"n_units must be a list of integers 1..{N_UNITS_MAX}, got {values!r}")
    out = tuple(checked_units(v) for v in values)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"n_units must be a non-empty list of distinct widths, got {values!r}")
    return out


def checked_drive(drive) -> str:
    if drive not in DRIVES:
        raise ValueError(f"drive must be one of {DRIVES}, got {drive!r}")
    return drive


def checked_supplies(supplies: dict | None) -> Supplies:
    if supplies is None:
        return Supplies()
    if not isinstance(supplies, dict):
        raise ValueError(f"supplies must be a dict of Supplies fields, got {type(supplies).__name__}")
    try:
        sup = Supplies(**supplies)
    except TypeError as exc:
        raise ValueError(f"supplies: {exc}") from None
    for name, lo, hi in (("v_digital_v", 0.5, 2.0), ("v_array_v", 0.3, 2.0), ("v_precharge_v", 0.0, 2.0)):
        v = getattr(sup, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"supplies.{name} must be a voltage in [{lo}, {hi}] V, got {v!r}")
    if sup.v_array_v > sup.v_digital_v:
        raise ValueError("the wordline driver shifts DOWN: v_array_v must not exceed v_digital_v")
    return sup


def checked_driver_size(wn_m: float, wp_m: float) -> tuple[float, float]:
    for v, what in ((wn_m, "wn_m"), (wp_m, "wp_m")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.2e-6 <= v <= 200e-6:
            raise ValueError(f"driver width {what} must be in [0.2, 200] µm, got {v!r}")
    return float(wn_m), float(wp_m)


def checked_read_port(read_port_m) -> tuple[float, float]:
    """The read port's (W, L) in metres, validated as numbers in a plausible range."""
    if not isinstance(read_port_m, (list, tuple)) or len(read_port_m) != 2:
        raise ValueError(f"read_port_m must be (W, L) in metres, got {read_port_m!r}")
    for v, what in zip(read_port_m, ("W", "L")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 10e-9 <= v <= 100e-6:
            raise ValueError(f"read-port {what} must be in [10 nm, 100 µm] (metres), got {v!r}")
    return float(read_port_m[0]), float(read_port_m[1])


def selects(n_units: int) -> dict[str, int]:
    """Static one-hot selects of ``rtwin`` for a width of ``n_units`` PWM units."""
    n = checked_units(n_units)
    sel = {f"sa{k}": 0 for k in range(4)} | {"saz": 0} | {f"sb{k}": 0 for k in range(2)} | {"sbz": 0}
    sel.update({f"sa{n - 1}": 1, "sbz": 1} if n <= 4 else {"saz": 1, f"sb{n - 5}": 1})
    return sel


def edge_s(clock: int) -> float:
    """Rising edge of ramp clock ``clock`` in the testbenches (clock 0 = calibration clock; active clocks)."""
    return T_EDGE0_S + clock * tm.active().t_clk_ramp_s


# --------------------------------------------------------------------------- netlist pieces

def bench_header(title: str, corner_name: str, sup: Supplies) -> list[str]:
    """Includes, corner, testbench supplies, shaped ramp and PWM clocks, reset."""
    c = corner_of(corner_name)
    vd = sup.v_digital_v
    t_clk, t_unit = tm.active().t_clk_ramp_s, tm.active().t_unit_s
    lines = tb.corner_header(f"* topkima ramp timing: {nl.ident(title, 'testbench')}, corner {nl.ident(c.name, 'corner')}",
                             c, ("digital.sp", "ramp_timing.sp"))
    lines += [tb.dc_source("vddtb", "vddtb", vd),
              tb.dc_source("vbl", "vbl", sup.v_precharge_v),   # read bitlines of the loaded row, precharged
              tb.dc_source("vq1", "vq1", sup.v_array_v)]       # storage node of a cell storing 1
    # rising edges of both clocks aligned at the ideal sources; identical shaping buffers
    lines.append(f"vrs rclks 0 pulse(0 {nl.num(vd)} {nl.num(T_EDGE0_S)} {nl.num(T_SRC_EDGE_S)} "
                 f"{nl.num(T_SRC_EDGE_S)} {nl.num(t_clk / 2 - T_SRC_EDGE_S)} {nl.num(t_clk)})")
    # the PWM clock starts whole periods before clock 0's edge (two at 65 nm), so an edge falls on every ramp edge
    lead_periods = min(2, int(T_EDGE0_S / t_unit + 1e-9))
    lines.append(f"vps clkps 0 pulse(0 {nl.num(vd)} {nl.num(T_EDGE0_S - lead_periods * t_unit)} {nl.num(T_SRC_EDGE_S)} "
                 f"{nl.num(T_SRC_EDGE_S)} {nl.num(t_unit / 2 - T_SRC_EDGE_S)} {nl.num(t_unit)})")
    for tag, src, out in (("rb", "rclks", "rclk"), ("pb", "clkps", "clkp")):
        lines += [tb.instance(tag + "a", [src, tag + "m", "vddtb", "0"], "inv", wn=800e-9, wp=1200e-9),
                  tb.instance(tag + "b", [tag + "m", out, "vddtb", "0"], "inv", wn=1.6e-6, wp=2.4e-6)]
    lines.append(tb.pwl_source("vrst", "rst", vd, 1, [(T_RESET_END_S, 0)], T_SRC_EDGE_S))
    return lines


def select_sources(tag: str, n_units: int, vd: float) -> tuple[list[str], list[str]]:
    sel = selects(n_units)
    return [tb.dc_source(f"v{k}_{tag}", f"{k}_{tag}", vd * v) for k, v in sel.items()], [f"{k}_{tag}" for k in sel]


def row_line(name: str, driver: str) -> list[str]:
    """A line along the register's rows (32 at 65 nm), driven at row 0: node ``{name}_r{i}`` at row i, RC per row pitch."""
    r_ohm = ROW_PITCH_M * dig.WIRE_R_OHM_PER_M
    c_f = ROW_PITCH_M * dig.WIRE_C_F_PER_M
    out = [f"r{name}_in {nl.ident(driver)} {name}_r0 {nl.num(1e-3)}"]
    n_rows = n_ramp_rows()
    for i in range(n_rows):
        out.append(f"c{name}_{i} {name}_r{i} 0 {nl.num(c_f)}")
        if i + 1 < n_rows:
            out.append(f"r{name}_{i} {name}_r{i} {name}_r{i + 1} {nl.num(r_ohm)}")
    return out


def _idle_groups(real_rows: tuple[int, ...]) -> list[tuple[int, int]]:
    """(middle row, count) of each run of rows that are not simulated."""
    groups, run = [], []
    for i in list(range(n_ramp_rows())) + [None]:
        if i is None or i in real_rows:
            if run:
                groups.append((run[len(run) // 2], len(run)))
            run = []
        else:
            run.append(i)
    return groups


def window_loads(tag: str, line: str, real_rows: tuple[int, ...], dvn: float, dvp: float) -> list[str]:
    """Idle rows' nand2 window inputs (token 0: output high, series node at 0) as MOS gates."""
    out = []
    for mid, count in _idle_groups(real_rows):
        node = f"{line}_r{mid}"
        out.append(nl.mos(f"mwn{tag}{mid}", "0", node, "0", "0", tech.nmos(), *tech.logic_size(400e-9), dvn, m=count))
        out.append(nl.mos(f"mwp{tag}{mid}", "vddtb", node, "vddtb", "vddtb", tech.pmos(), *tech.logic_size(300e-9), dvp, m=count))
    return out


def register_loads(real_rows: tuple[int, ...]) -> list[str]:
    """Idle rows' clock pins (a unit inverter each) and reset pins (inverter + nor2 input).

    Scaled gates on the testbench supply: their input charge comes from the control cell's
    buffers as in the macro; their own switching is part of the idle-row energy that is
    composed from a real row (module docstring).
    """
    out = []
    for mid, count in _idle_groups(real_rows):
        out.append(tb.instance(f"ckl{mid}", [f"rck_r{mid}", f"ckl{mid}", "vddtb", "0"], "inv",
                      wn=200e-9 * count, wp=300e-9 * count))
        out.append(tb.instance(f"rsl{mid}", [f"rstk_r{mid}", f"rsl{mid}", "vddtb", "0"], "inv",
                      wn=400e-9 * count, wp=900e-9 * count))
    return out


def wordline_sections(drive: str) -> int:
    """Sections between the driver and the far end (:data:`N_WL_SECTIONS` in all: 64 columns each at 256)."""
    return N_WL_SECTIONS // 2 if checked_drive(drive) == "centre" else N_WL_SECTIONS


def _wordline(tag: str, corner, sup: Supplies, drive: str,
              read_port_m: tuple[float, float] = READ_PORT_M, n_columns: int = N_COLUMNS) -> tuple[list[str], list[str]]:
    """Driver output ``wl{tag}_0`` → sections → far end ``wl{tag}_{S}`` (S = wordline_sections).

    ``centre``: a mirror branch ``wl{tag}_m1..`` holds the other half of the row. Every section
    node carries its columns' (:func:`section_columns` of ``n_columns``) access and storage devices; the drains
    of the cells storing 1 on the measured branch sit on ``vbl{tag}_{k}`` (k = 1 nearest the driver) so each
    section's read charge is measured. ``read_port_m``: the read port's (W, L). Returns the lines
    and those sources.
    """
    w_read, l_read = checked_read_port(read_port_m)
    dn = corner.delvto_n()
    s_far = wordline_sections(drive)
    n_sec = section_columns(n_columns)
    r_wire_ohm, c_wire_f = wordline_wire(n_columns)
    r_sec = r_wire_ohm * n_sec / n_columns
    c_sec = c_wire_f * n_sec / n_columns
    branches = [("", True)] + ([("m", False)] if drive == "centre" else [])
    out, measured = [], []
    for br, measure in branches:
        prev = f"wl{tag}_0"
        for k in range(1, s_far + 1):
            node = f"wl{tag}_{br}{k}"
            out += [f"rwl{tag}{br}_{k} {prev} {node} {nl.num(r_sec)}", f"cwl{tag}{br}_{k} {node} 0 {nl.num(c_sec)}"]
            drain1 = f"bl{tag}_{k}" if measure else "vbl"
            if measure:
                out.append(tb.dc_source(f"vbl{tag}_{k}", drain1, sup.v_precharge_v))
                measured.append(f"vbl{tag}_{k}")
            # one cell per column stores 1 (the ramp replica cell), its partner port stores 0
            for s, q, drain in (("a", "vq1", drain1), ("b", "0", "vbl")):
                out.append(nl.mos(f"ma{s}{tag}{br}_{k}", drain, node, f"x{s}{tag}{br}_{k}", "0", tech.nmos(),
                                  w_read, l_read, dn, m=n_sec))
                out.append(nl.mos(f"ms{s}{tag}{br}_{k}", f"x{s}{tag}{br}_{k}", q, "0", "0", tech.nmos(),
                                  w_read, l_read, dn, m=n_sec))
            prev = node
    return out, measured


def row_driver(tag: str, wlb: str, sup: Supplies, corner, wn_m: float, wp_m: float,
                drive: str, read_port_m: tuple[float, float] = READ_PORT_M,
                n_columns: int = N_COLUMNS) -> tuple[list[str], list[str]]:
    vd, va = sup.v_digital_v, sup.v_array_v
    wl_lines, measured = _wordline(tag, corner, sup, drive, read_port_m, n_columns)
    return [tb.dc_source(f"vddp{tag}", f"vddp{tag}", vd), tb.dc_source(f"vdda{tag}", f"vdda{tag}", va),
            tb.instance(f"drv{tag}", [wlb, f"wl{tag}_0", f"vddp{tag}", f"vdda{tag}", "0"], "rtdrv", wn=wn_m, wp=wp_m),
            *wl_lines], measured


def ideal_reference(tag: str, n_units: int, t_start_s: float, corner, sup: Supplies,
                    read_port_m: tuple[float, float] = READ_PORT_M) -> list[str]:
    """The column testbench's pulse (50 % width N PWM units, the wordline edges of the active clocks, like
    ``column._pulse``) on ``M_REF`` read ports (W, L = ``read_port_m``) storing 1, drains on ``vblref{tag}``."""
    dn, va, e = corner.delvto_n(), sup.v_array_v, tm.active().t_wl_edge_s
    w_read, l_read = checked_read_port(read_port_m)
    return [f"vref{tag} ref{tag} 0 PULSE(0 {nl.num(va)} {nl.num(t_start_s)} {nl.num(e)} {nl.num(e)} "
            f"{nl.num(n_units * tm.active().t_unit_s - e)} 1)",
            tb.dc_source(f"vblref{tag}", f"blref{tag}", sup.v_precharge_v),
            nl.mos(f"mra{tag}", f"blref{tag}", f"ref{tag}", f"xr{tag}", "0", tech.nmos(), w_read, l_read,
                   dn, m=M_REF),
            nl.mos(f"mrs{tag}", f"xr{tag}", "vq1", "0", "0", tech.nmos(), w_read, l_read, dn, m=M_REF)]


def save_line(nodes: list[str], sources: list[str]) -> str:
    return ".save " + " ".join([f"v({nl.ident(n)})" for n in nodes] + [f"i({nl.ident(s)})" for s in sources])


def control_and_taps(vd: float) -> list[str]:
    return [tb.dc_source("vddt", "vddt", vd), tb.dc_source("vddc", "vddc", vd),
            tb.instance("ctl", ["rclk", "rst", "stop", "rck", "rstk", "stopq", "vddc", "0"], "rtctl"),
            tb.instance("taps", ["rclk", "clkp", "rst", "stopq", "clkpb", "rg", "tb0", "tb1", "tb2", "tb3", "vddt", "0"],
               "rttaps")]


def window_slice(tag: str, sel_nodes: list[str], out: str, supply: str) -> str:
    return tb.instance(f"win{tag}", ["clkpb", "rg", "tb0", "tb1", "tb2", "tb3", "rst"] + sel_nodes
              + [f"dw{tag}", out, supply, "0"], "rtwin")


# --------------------------------------------------------------------------- waveform reading

def crossings(t: np.ndarray, v: np.ndarray, level: float, rising: bool) -> np.ndarray:
    """Times at which ``v`` crosses ``level`` upwards or downwards (linear interpolation)."""
    s = np.asarray(v, float) - level
    idx = np.nonzero((s[:-1] < 0) & (s[1:] >= 0))[0] if rising else np.nonzero((s[:-1] >= 0) & (s[1:] < 0))[0]
    return t[idx] + (t[idx + 1] - t[idx]) * (-s[idx]) / (s[idx + 1] - s[idx])


def first_after(times: np.ndarray, after: float, before: float = math.inf) -> float | None:
    sel = times[(times >= after) & (times < before)]
    return float(sel[0]) if sel.size else None


def clock_edge(t: np.ndarray, rclk: np.ndarray, clock: int, vd: float) -> float:
    """50 % rising crossing of the ramp clock at the block input nearest to ``edge_s(clock)``."""
    times = crossings(t, rclk, vd / 2, True)
    return float(times[np.argmin(np.abs(times - edge_s(clock)))])


def pulse_shape(t: np.ndarray, v: np.ndarray, v_high: float, t_edge: float, t_end: float) -> dict:
    """First pulse of ``v`` after the clock edge ``t_edge``: 50 % width, 10–90 % edges, timing.

    Times are relative to ``t_edge``; a 10/90 % crossing that does not occur before
    ``t_end`` gives None.
    """
    win = (t >= t_edge) & (t < t_end)
    out = {"v_peak_v": float(v[win].max()) if win.any() else 0.0, "delay_s": None, "width_s": None,
           "rise_10_90_s": None, "fall_90_10_s": None, "t_fall_50_s": None, "t_off_10_s": None,
           "v_at_next_edge_v": float(np.interp(t_end, t, v))}
    r50 = first_after(crossings(t, v, v_high / 2, True), t_edge, t_end)
    if r50 is None:
        return out
    f50 = first_after(crossings(t, v, v_high / 2, False), r50, math.inf)
    r10 = first_after(crossings(t, v, 0.1 * v_high, True), t_edge, r50)
    r90 = first_after(crossings(t, v, 0.9 * v_high, True), r50, t_end)
    f90 = first_after(crossings(t, v, 0.9 * v_high, False), r90, math.inf) if r90 is not None else None
    f10 = first_after(crossings(t, v, 0.1 * v_high, False), r50, math.inf)
    out.update(delay_s=r50 - t_edge, width_s=None if f50 is None else f50 - r50,
               rise_10_90_s=None if r90 is None or r10 is None else r90 - r10,
               fall_90_10_s=None if f90 is None or f10 is None else f10 - f90,
               t_fall_50_s=None if f50 is None else f50 - t_edge, t_off_10_s=None if f10 is None else f10 - t_edge)
    return out


def pulse_count(t: np.ndarray, v: np.ndarray, level: float, a: float, b: float) -> int:
    r = crossings(t, v, level, True)
    return int(np.count_nonzero((r >= a) & (r < b)))


# --------------------------------------------------------------------------- plan and artefact section

SLOW_CORNER = "ss"


def corners_for(settings) -> tuple[str, ...]:
    """The run's corner, plus ss (the brief; the paper quotes SS for the digital periphery)."""
    return (settings.corner_name,) if settings.corner_name == SLOW_CORNER else (settings.corner_name, SLOW_CORNER)


def n_units_ramp(settings) -> int:
    """The ramp pulse of the design being calibrated (PWM units): its ``adc.t_ramp_units``."""
    return settings.design.adc.t_ramp_units


def n_units_for(settings) -> tuple[int, ...]:
    """Widths characterised: all six in the full plan; quick: 1, 2 and the design's ramp width."""
    return tuple(sorted({1, 2, n_units_ramp(settings)})) if settings.quick else tuple(range(1, N_UNITS_MAX + 1))


def plan(settings) -> list[Job]:
    """Per corner one width run and one chain run; full plan adds an end-driven width run."""
    jobs = []
    sizes = settings.design.sizes
    # the design's driver and read port (the wordline's load); the preset's are the functions' defaults
    own = {"wn_m": sizes.wordline_driver.wn_m, "wp_m": sizes.wordline_driver.wp_m,
           "read_port_m": [sizes.read_port.w_m, sizes.read_port.l_m],
           "n_columns": settings.design.geometry.n_columns}
    for c in corners_for(settings):
        base = {"corner_name": c, "supplies": settings.supplies.as_dict(), **own}
        jobs.append(Job(BLOCK, f"timing_widths_{c}", "topkima.circuits.ramp_widths:measure_widths",
                        {**base, "n_units": list(n_units_for(settings))}, NETLISTS))
        jobs.append(Job(BLOCK, f"timing_chain_{c}", "topkima.circuits.ramp_chain:measure_chain",
                        {**base, "n_units": n_units_ramp(settings), "stop": True}, NETLISTS))
    if not settings.quick:
        c = settings.corner_name
        jobs.append(Job(BLOCK, f"timing_widths_end_{c}", "topkima.circuits.ramp_widths:measure_widths",
                        {"corner_name": c, "supplies": settings.supplies.as_dict(),
                         "n_units": list(n_units_for(settings)), "drive": "end", **own}, NETLISTS))
    return jobs


def _by_n(widths: dict, chain: dict) -> dict:
    t_sa_clk = tm.active().t_sa_clk_s
    out = {}
    for p in widths["per_n"]:
        q = p["charge_width_by_section_units"]
        out[str(p["n_units"])] = {
            "width_error_near_units": p["width_error_near_units"],
            "width_error_far_units": p["width_error_far_units"],
            "window_width_error_units": p["window_width_error_units"],
            "rise_10_90_near_s": p["rise_10_90_near_s"], "fall_90_10_near_s": p["fall_90_10_near_s"],
            "rise_10_90_far_s": p["rise_10_90_far_s"], "fall_90_10_far_s": p["fall_90_10_far_s"],
            "delay_near_s": p["delay_near_s"], "delay_far_s": p["delay_far_s"],
            "t_fall_50_far_s": p["t_fall_50_far_s"], "t_off_10_far_s": p["t_off_10_far_s"],
            # > 0: the far end is below half supply when the column testbench's SA evaluates
            "sa_clock_margin_s": None if p["t_fall_50_far_s"] is None else t_sa_clk - p["t_fall_50_far_s"],
            "v_peak_far_v": p["v_peak_far_v"],
            "charge_width_near_units": q[0], "charge_width_far_units": q[-1],
            "charge_width_mean_units": float(np.mean(q)),
            "charge_width_error_mean_units": float(np.mean(q)) - p["n_units"],
            "e_wordline_j": p["e_wordline_j"], "e_predriver_j": p["e_predriver_j"], "e_window_j": p["e_window_j"],
            "c_wordline_eff_f": p["c_wordline_eff_f"],
            # composed: the chain run's step (generator, control, register, idle drivers: real
            # loads, independent of N) with this N's active pre-driver and wordline (width run;
            # the width run's taps carry six window slices, so its generator energy is not used)
            "e_step_j": chain["e_step_j"] - chain["e_predriver_j"] - chain["e_wordline_j"]
            + p["e_predriver_j"] + p["e_wordline_j"],
        }
    return out


def timing_section(settings, results: dict) -> dict:
    """The ``timing`` part of the ramp section (units in every key).

    Raises RuntimeError if a functional check failed: a wrong circuit must not calibrate.
    """
    sizes, n_columns = settings.design.sizes, settings.design.geometry.n_columns
    c_gate = c_gate_access_hand_f(sizes.read_port.w_m, sizes.read_port.l_m)
    r_wire_ohm, c_wire_f = wordline_wire(n_columns)
    ck, n_ramp = tm.active(), n_units_ramp(settings)

    def get(label: str) -> dict:
        if label not in results:
            raise KeyError(f"ramp timing section needs the result of job '{label}'")
        return results[label]

    corners_out, failures = {}, []
    for c in corners_for(settings):
        widths, chain = get(f"timing_widths_{c}"), get(f"timing_chain_{c}")
        checks = {"one_pulse_per_clock_in_order": chain["one_pulse_per_clock_in_order_ok"],
                  "none_after_token_left": chain["none_after_token_left_ok"],
                  "stop_halts_ramp": bool(chain["stop_halts_ok"]),
                  "token_cleared_after_stop": bool(chain["token_cleared_after_stop_ok"]),
                  "one_pulse_per_width": all(p["one_pulse_ok"] for p in widths["per_n"])}
        failures += [(c, k) for k, ok in checks.items() if not ok]
        by_n = _by_n(widths, chain)
        errs = [abs(v[k]) for v in by_n.values() for k in ("width_error_near_units", "width_error_far_units")
                if v[k] is not None]
        ramp = by_n.get(str(n_ramp), {})
        first = chain["shapes"][str(chain_rows()[0])][0]
        corners_out[c] = {
            "functional_checks": checks,
            "by_n": by_n,
            "width_error_max_abs_units": max(errs) if errs else None,
            # timing of the ramp's pulse from the chain run (real generator loads), row 0
            "delay_near_s": first["near"]["delay_s"], "delay_far_s": first["far"]["delay_s"],
            "delay_error_far_s": first["far"]["delay_s"] - ck.t_pulse_delay_s,
            "t_fall_50_far_s": first["far"]["t_fall_50_s"],
            "sa_clock_margin_s": None if first["far"]["t_fall_50_s"] is None
            else ck.t_sa_clk_s - first["far"]["t_fall_50_s"],
            "charge_width_mean_units": ramp.get("charge_width_mean_units"),
            "skew_near_s": chain["skew_near_s"], "skew_far_s": chain["skew_far_s"],
            "t_token_after_edge_s": chain["t_token_after_edge_s"],
            "t_window_after_edge_s": chain["t_window_after_edge_s"],
            "t_token_to_window_margin_s": chain["t_token_to_window_margin_s"],
            "ramp_n_units": n_ramp,
            "e_step_j": chain["e_step_j"],   # at the ramp's N, all from the chain run
            "e_step_breakdown_j": {k: chain[k] for k in ("e_generator_j", "e_control_j", "e_register_j",
                                                         "e_drivers_idle_j", "e_predriver_j", "e_wordline_j")},
        }
    # The run's corner must pass; a failure at the extra slow corner is recorded, not fatal: a design
    # whose logic cannot make its PWM windows at ss (sky130's 1.8 V cells at 2 GHz) is still characterised
    # at its own corner, and the artefact says where it fails.
    fatal = [f"{c}: {k}" for c, k in failures if c == settings.corner_name]
    if fatal:
        raise RuntimeError("ramp timing failed its functional checks: " + "; ".join(fatal))
    out = {
        "drive": WL_DRIVE, "wn_drv_m": sizes.wordline_driver.wn_m, "wp_drv_m": sizes.wordline_driver.wp_m,
        "characterised_n_units": list(n_units_for(settings)),
        "corners": corners_out,
        "assumed_by_column": {"t_pulse_delay_s": ck.t_pulse_delay_s, "t_sa_clk_s": ck.t_sa_clk_s,
                              "ramp_n_units": n_ramp,
                              "t_edge_s": ck.t_wl_edge_s, "source": "topkima.circuits.column testbench timeline"},
        "wordline_load": {"n_columns": n_columns, "access_gates_per_column": ACCESS_GATES_PER_COLUMN,
                          "c_gate_access_hand_f": c_gate,
                          "c_gate_row_hand_f": c_gate * n_columns * ACCESS_GATES_PER_COLUMN,
                          "c_wire_f": c_wire_f, "r_wire_ohm": r_wire_ohm, "section_columns": section_columns(n_columns),
                          "note": "hand values: strong-inversion Cox*W*L (upper bound) and per-length wire "
                                  "estimates; the simulated load is the real BSIM4 devices"},
        "simulated_vs_composed": "width run: real taps/control, one window slice + row gate + driver + "
                                 "wordline per N, idle rows' window inputs as MOS gates; chain run: real "
                                 "generator, control and rows 0,1,31, rows 2-30 as pin loads; energy per "
                                 "step = measured clock + 29 idle rows x measured idle row",
        "design": {
            "token_register": f"{n_ramp_rows()} dffr one-hot shift register on the {ck.t_clk_ramp_s * 1e9:g} ns ramp clock, "
                              "START sampled at clock 1",
            "pulse_width": f"4 taps + window flop on the {1e-9 / ck.t_unit_s:g} GHz PWM clock's falling edge, "
                           "N = 1..6 one-hot select",
            "driver": "nand2(token, W) -> 2 inverters at 0.8 V -> inverter at 0.5 V (no level shifter needed)",
            "stop": "sampled on the ramp clock's falling edge; gates the generator, clears the token a clock later",
        },
    }
    if failures:
        out["failed_checks"] = [f"{c}: {k}" for c, k in failures]
    end_label = f"timing_widths_end_{settings.corner_name}"
    if end_label in results:
        out["end_driven"] = {"corner": settings.corner_name,
                             "by_n": _by_n(results[end_label], get(f"timing_chain_{settings.corner_name}"))}
    return out
