"""Counters, AER arbiter and address encoder of the Topkima macro, at transistor level.

What is modelled (cells in ``netlists/digital.sp``, PTM 65 nm, digital supply 0.8 V):

* ``cnt5``: the 5-bit synchronous ramp-cycle counter (code = cycle at which a column fires);
* ``kcnt5``: the grant counter that raises STOP once ``count >= k`` (5-bit preset k);
* ``arb2``: a 2-input fixed-priority (lower address wins), non-preemptive AER arbiter cell;
  the 256-input arbiter is a binary tree of 8 levels of it;
* ``enc8`` / the 128-input OR tree per address bit: the one-hot-grant → address encoder.

Those are the 65 nm preset's 256 columns; a design's own ``geometry.n_columns`` (a power of two)
sets the tree's log2(n) levels and the encoder's log2(n) − 1 levels per address bit
(:func:`tree_levels`, :func:`encoder_levels`), which its jobs carry as ``levels``.

The benches: :mod:`.digital_counters` (counters) and :mod:`.digital_arbiter` (arbiter
cell, tree and encoder); this module holds the geometry, the shared bench lines, the plan and
the artefact's ``digital`` section. Every delay is a ``.meas tran ... TRIG ... TARG`` at half
the supply and every energy a ``.meas tran q INTEG i(vdd)`` (E = −VDD·q) from ngspice. Each testbench also checks function
(the counter counts and wraps, STOP rises exactly at k, the arbiter grants the lower address
on simultaneous requests and never pre-empts a grant, the encoder maps one-hot to binary).

The 256-input tree is not a single macro-cell: its critical path (one request from a leaf
up 8 levels, the root acknowledge, the grant down 8 levels) is simulated as 8 instances
of the characterised ``arb2`` cell with an RC π-wire between levels. The wire from a level-l
cell to its parent is half the span of the level-l subtree, ``2**(l-2)`` column pitches
(level 1: half a pitch from the sense amplifier), so the path carries 127.5 pitches of
wire each way. The encoder path is built the same way: 7 alternating nor2/nand2 levels
(the 128-input OR of one address bit, inputs every other column) with ``2**(j-1)`` pitches
before level j, plus the output inverter. Off-path inputs sit at their idle level, which
is exact for one grant at a time (one-hot). The geometry numbers below are ours.

Timing target (SPEC §2, paper at SS 0.8 V): arbiter 1.51 ns, encoder 0.57 ns, counter
0.51 ns, "T_arb < 2.08 ns". Note 1.51 + 0.57 = 2.08: the paper's total is arbiter +
encoder, with the counter apparently overlapped. :func:`artefact_section` reports both that sum
(``t_arb_arbiter_encoder_s``) and the serial sum asked for by this project
(``t_arb_total_s`` = arbiter tree + encoder + k-counter count→STOP, slow corner).
Our figures are whatever ngspice gives for these cells; they are not tuned to the paper (the
figures measured when the cells were designed, and why the tree is slower than the paper's:
docs/circuits.md).

The k-counter's STOP is registered (see ``kcnt5`` in the netlist): count→STOP is one
flip-flop clk→q after the k-th grant edge; the decode of "next grant reaches k" settles
during the grant and bounds the grant rate instead (``t_kcounter_decode_s``).
"""
from __future__ import annotations

import math

import numpy as np

from topkima.circuits import testbench as tb
from topkima.circuits.corners import corner
from topkima.circuits.jobs import Job
from topkima.circuits.netlist import ident, num
from topkima.circuits.settings import CalSettings
from topkima.circuits.spice import SimResult
from topkima.circuits import timing as tm

BLOCK = "digital"
NETLISTS = ("digital.sp",)

#: Corners characterised always (both at the digital supply); SPEC §2 quotes SS, tt is the reference.
ALWAYS_CORNERS = ("tt", "ss")
#: The corner whose figures make t_arb_total_s (SPEC §2: the paper quotes SS).
SLOW_CORNER = "ss"

K_BITS = 5                            #: k-counter preset width (k <= 31 covers the paper's k sweep, SPEC §3)
COUNTER_BITS = 5                      #: ramp counter width (5-bit ADC, SPEC §2)

# Geometry and wires [ours]: no layout is published.
#: Column pitch: two 10T SRAM cells (L and R halves of the ternary weight, SPEC §2) side by side,
#: ~1.5 µm each in 65 nm (a 6T cell is ~1 µm wide at this node; the decoupled read port adds ~50 %).
COLUMN_PITCH_M = 3.0e-6
#: Wire capacitance per length, intermediate metal at minimum pitch in 65 nm (ITRS-class 0.2 fF/µm).
WIRE_C_F_PER_M = 0.2e-15 / 1e-6
#: Wire resistance per length: Cu (effective ρ ≈ 2.2 µΩ·cm with barrier and scattering) on a
#: 0.1 µm × 0.2 µm intermediate-metal wire ≈ 1.1 Ω/µm, rounded.
WIRE_R_OHM_PER_M = 1.0 / 1e-6

# Paper figures at SS 0.8 V (SPEC §2), for comparison only.
PAPER_T_ARBITER_S = 1.51e-9
PAPER_T_ENCODER_S = 0.57e-9
PAPER_T_COUNTER_S = 0.51e-9
PAPER_T_ARB_S = 2.08e-9

#: Input edge rate of the ideal testbench sources (before the shaping buffers) [ours].
T_SRC_EDGE_S = 20e-12
#: Transient step: 10 ps kept clk->q within 0.5 % and charge within 0.2 % of a 1 ps run
#: (cnt5 at ss, measured while writing this module); 5 ps for the short delay benches.
T_STEP_LONG_S = 10e-12
T_STEP_FINE_S = 5e-12
#: A sampled node counts as a logic level only outside the middle 50 % of the supply.
LOGIC_MARGIN = 0.25


# --------------------------------------------------------------------------- helpers

def checked_vdd(vdd_v: float) -> float:
    if isinstance(vdd_v, bool) or not isinstance(vdd_v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(vdd_v)) or not 0.4 <= float(vdd_v) <= 2.0:
        raise ValueError(f"digital supply vdd_v must be a finite voltage in [0.4, 2.0] V, got {vdd_v!r}")
    return float(vdd_v)


def checked_time(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or not 0 < float(value) < 1e-6:
        raise ValueError(f"{what} must be a finite time in (0, 1 µs), got {value!r}")
    return float(value)


def checked_int(value: int, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise ValueError(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def tree_levels(n_columns: int) -> int:
    """Levels of 2-input arbiter cells of an ``n_columns``-input AER tree: log2(n_columns)."""
    n = checked_int(n_columns, "n_columns", 2, 2 ** 10)
    if n & (n - 1):
        raise ValueError(f"n_columns must be a power of two (a binary arbiter tree), got {n}")
    return n.bit_length() - 1


def address_bits(n_columns: int) -> int:
    """Bits of a column address: log2(n_columns)."""
    return tree_levels(n_columns)


def encoder_levels(n_columns: int) -> int:
    """Levels of the 2-input OR tree of one address bit: log2(n_columns / 2) (a bit is 1 in half the columns)."""
    return tree_levels(n_columns) - 1


def mean_address_ones(n_columns: int) -> float:
    """Mean popcount of the addresses 0 … n_columns − 1: the address bits that toggle per encode."""
    return address_bits(n_columns) / 2


# The 65 nm preset's array (circuits/designs/topkima-65nm.toml; a design's own: settings.design.geometry.n_columns)
N_COLUMNS = 256                       #: columns of the array (SPEC §2: 256 x 256)
TREE_LEVELS = 8                       #: log2(256) levels of 2-input arbiter cells
ENCODER_LEVELS = 7                    #: log2(128) levels of 2-input OR per address bit
ADDRESS_BITS = 8                      #: log2(256)
MEAN_ADDRESS_ONES = ADDRESS_BITS / 2  #: mean popcount over 0..255 = 4: address bits that toggle per encode


def bench_header(title: str, corner_name: str, vdd_v: float) -> list[str]:
    """Title, model card, cells, corner parameters, temperature and the DUT supply ``vdd``."""
    c = corner(corner_name)
    return tb.corner_header(f"* topkima digital {ident(title, 'testbench')} corner {ident(c.name, 'corner')}", c,
                            NETLISTS) + [
        f"vdd vdd 0 {num(vdd_v, 'vdd')}",
        # testbench drivers/loads on their own supply so i(vdd) is the DUT's alone
        f"vddtb vddtb 0 {num(vdd_v, 'vdd')}"]


def buffer_pair(name: str, a: str, y: str, supply: str) -> list[str]:
    """Two inverters a -> y on ``supply`` (shapes ideal edges into real gate edges)."""
    return [tb.instance(name + "a", [a, name + "_m", supply, "0"], "inv"),
            tb.instance(name + "b", [name + "_m", y, supply, "0"], "inv")]


def pi_wire(name: str, a: str, b: str, length_m: float) -> list[str]:
    """π model of a wire: C/2 at each end, R between (lengths and per-metre values: see module)."""
    r_ohm = max(WIRE_R_OHM_PER_M * length_m, 1e-3)
    c_half_f = WIRE_C_F_PER_M * length_m / 2
    return [f"{ident('rw' + name)} {ident(a)} {ident(b)} {num(r_ohm, 'wire R')}",
            f"{ident('cwa' + name)} {ident(a)} 0 {num(c_half_f, 'wire C')}",
            f"{ident('cwb' + name)} {ident(b)} 0 {num(c_half_f, 'wire C')}"]


def delay_meas(name: str, trig: str, trig_dir: str, targ: str, targ_dir: str, vdd_v: float,
           td_s: float = 0.0, trig_n: int = 1, targ_n: int = 1) -> str:
    """``.meas`` of a propagation delay between half-supply crossings (after ``td_s``)."""
    half = num(vdd_v / 2, "threshold")
    td = f" TD={num(td_s, 'TD')}" if td_s > 0 else ""
    return (f".meas tran {ident(name)} TRIG v({ident(trig)}) VAL={half}{td} {trig_dir}={int(trig_n)} "
            f"TARG v({ident(targ)}) VAL={half}{td} {targ_dir}={int(targ_n)}")


def avg_meas(name: str, t_from: float, t_to: float) -> str:
    return f".meas tran {ident(name)} AVG i(vdd) FROM={num(t_from)} TO={num(t_to)}"


def tran_line(t_step: float, t_stop: float) -> str:
    return f".tran {num(t_step, 'step')} {num(t_stop, 'stop')}"


def logic_level(res: SimResult, node: str, t: float, vdd_v: float) -> int | None:
    """Logic level of ``node`` at ``t``: 1, 0, or None if between the margins."""
    v = float(np.interp(t, res.time, res.v(node)))
    if v > (1 - LOGIC_MARGIN) * vdd_v:
        return 1
    if v < LOGIC_MARGIN * vdd_v:
        return 0
    return None


def logic_word(res: SimResult, nodes: list[str], t: float, vdd_v: float) -> int | None:
    """Unsigned integer read from ``nodes`` (LSB first), None if any bit is undecided."""
    bits = [logic_level(res, n, t, vdd_v) for n in nodes]
    if any(b is None for b in bits):
        return None
    return sum(b << i for i, b in enumerate(bits))


def tree_wire_lengths_m(levels: int = TREE_LEVELS, pitch_m: float = COLUMN_PITCH_M) -> list[float]:
    """Wire from a level-l cell (l = 1..levels) to its children: 2**(l-2) pitches (level 1: 1/2)."""
    return [pitch_m * 2.0 ** (lvl - 2) for lvl in range(1, levels + 1)]


def encoder_wire_lengths_m(levels: int = ENCODER_LEVELS, pitch_m: float = COLUMN_PITCH_M) -> list[float]:
    """Input wire of OR-tree level j (j = 1..levels): 2**(j-1) pitches (inputs every other column)."""
    return [pitch_m * 2.0 ** (j - 1) for j in range(1, levels + 1)]


# --------------------------------------------------------------------------- plan and summary

def corners_for(settings: CalSettings) -> tuple[str, ...]:
    """tt and ss always, plus the run's corner if it is another."""
    names = list(ALWAYS_CORNERS)
    if settings.corner_name not in names:
        names.append(settings.corner_name)
    return tuple(names)


def _k_values(settings: CalSettings) -> tuple[int, ...]:
    # quick: the paper's headline k = 5 only; full: also the ends of its sweep {1, ..., 20} (SPEC §3)
    return (5,) if settings.quick else (1, 5, 20)


def _addresses(settings: CalSettings) -> tuple[int, ...]:
    # leaf 0 takes input 0 at every level, the last leaf (255 at 256 columns) input 1: both latch polarities of the cell
    return (0,) if settings.quick else (0, settings.design.geometry.n_columns - 1)


_COUNTERS = "topkima.circuits.digital_counters:"
_ARBITER = "topkima.circuits.digital_arbiter:"


def plan(settings: CalSettings) -> list[Job]:
    """Jobs of the digital block: per corner, ramp counter, k-counter(s), cell, tree(s), encoder."""
    from topkima.circuits import technology
    vdd_v = settings.supplies.v_digital_v
    # The ramp counter's bench clocks at a quarter of the ramp clock (1 ns at 65 nm), to save ngspice time:
    # the 65 nm cells follow it at ss. Another technology's cells are clocked at half the ramp clock (2 ns:
    # sky130 at ss: clk->q ~0.4 ns, and the bench samples the count a quarter clock before each edge)
    counter = {} if technology.payload(settings.design) is None else {"t_clk_s": tm.active().t_clk_ramp_s / 2}
    # the tree and the encoder path are as deep as the design's array is wide
    n_columns = settings.design.geometry.n_columns
    tree, encoder = {"levels": tree_levels(n_columns)}, {"levels": encoder_levels(n_columns)}
    jobs = []
    for c in corners_for(settings):
        base = {"corner_name": c, "vdd_v": vdd_v}
        jobs.append(Job(BLOCK, f"{BLOCK}/{c}/ramp_counter", _COUNTERS + "measure_ramp_counter", {**base, **counter},
                        NETLISTS))
        for k in _k_values(settings):
            jobs.append(Job(BLOCK, f"{BLOCK}/{c}/kcounter_k{k}", _COUNTERS + "measure_kcounter", {**base, "k": k}, NETLISTS))
        jobs.append(Job(BLOCK, f"{BLOCK}/{c}/arb_cell", _ARBITER + "measure_arb_cell", dict(base), NETLISTS))
        for a in _addresses(settings):
            jobs.append(Job(BLOCK, f"{BLOCK}/{c}/arb_tree_a{a}", _ARBITER + "measure_arb_tree",
                            {**base, "address": a, **tree}, NETLISTS))
        jobs.append(Job(BLOCK, f"{BLOCK}/{c}/encoder", _ARBITER + "measure_encoder", {**base, **encoder}, NETLISTS))
    return jobs


def artefact_section(settings: CalSettings, results: dict[str, dict]) -> dict:
    """The digital section of the calibration artefact (units in every key).

    Raises RuntimeError if any functional check failed: a wrong circuit must not calibrate.
    """
    n_columns = settings.design.geometry.n_columns
    corners_out = {}
    failures = []
    for c in corners_for(settings):
        def get(name: str) -> dict:
            label = f"{BLOCK}/{c}/{name}"
            if label not in results:
                raise KeyError(f"digital section needs the result of job '{label}'")
            return results[label]

        rc, cell, enc = get("ramp_counter"), get("arb_cell"), get("encoder")
        kcs = {k: get(f"kcounter_k{k}") for k in _k_values(settings)}
        trees = {a: get(f"arb_tree_a{a}") for a in _addresses(settings)}
        checks = {"ramp_counter_counts_and_wraps": rc["counts_ok"] and rc["wraps_ok"],
                  "kcounter_stops_at_k": all(r["stop_at_k_ok"] for r in kcs.values()),
                  "arbiter_lower_address_wins": cell["lower_address_wins_ok"],
                  "arbiter_function": cell["function_ok"],
                  "arbiter_tree_grants": all(t["grant_reaches_leaf_ok"] for t in trees.values()),
                  "encoder_enc8": enc["enc8_ok"]}
        failures += [(c, name) for name, ok in checks.items() if not ok]
        worst_tree = max(trees.values(), key=lambda t: t["t_grant_tree_s"])
        k_ref = 5 if 5 in kcs else min(kcs)
        p_leak_tree_w = (n_columns - 1) * cell["p_leak_w"]
        # encoder leakage scaled from the measured path: per gate of the path, times the address
        # bits' trees of n_columns/2 - 1 gates (127 at 256 columns) + output inverter each (an estimate, idle state)
        p_leak_enc_w = enc["p_leak_path_w"] / (enc["levels"] + 1) * address_bits(n_columns) * n_columns / 2
        corners_out[c] = {
            "functional_checks": checks,
            "t_arb_stage_req_up_s": cell["t_req_up_s"],
            "t_arb_stage_gnt_down_s": cell["t_gnt_down_s"],
            "t_arb_stage_s": cell["t_stage_s"],
            "t_arb_cell_simultaneous_req_to_gnt_s": cell["t_simul_req_to_gnt_s"],
            "t_arb_cell_handoff_s": cell["t_handoff_s"],
            "t_arb_tree_grant_s": worst_tree["t_grant_tree_s"],
            "t_arb_tree_grant_by_address_s": {str(a): t["t_grant_tree_s"] for a, t in trees.items()},
            "t_arb_tree_handshake_cycle_s": worst_tree["t_handshake_cycle_s"],
            "t_arb_tree_req_up_per_level_s": worst_tree["t_req_up_per_level_s"],
            "t_arb_tree_gnt_down_per_level_s": worst_tree["t_gnt_down_per_level_s"],
            "t_encoder_s": enc["t_enc_s"],
            "t_counter_clk_q_s": rc["t_clk_q_s"],
            "t_kcounter_count_stop_s": kcs[k_ref]["t_count_stop_s"],
            "t_kcounter_count_stop_by_k_s": {str(k): r["t_count_stop_s"] for k, r in kcs.items()},
            "t_kcounter_decode_s": kcs[k_ref]["t_decode_s"],
            "e_per_count_j": rc["e_per_count_j"],
            "e_dyn_per_count_j": rc["e_dyn_per_count_j"],
            "e_per_grant_tree_j": max(t["e_grant_tree_j"] for t in trees.values()),
            "e_per_grant_count_j": kcs[k_ref]["e_per_grant_count_j"],
            "e_per_encode_j": enc["e_per_encode_j"],
            "e_arb_cell_handshake_j": cell["e_handshake_j"],
            "p_leak_ramp_counter_w": rc["p_leak_w"],
            "p_leak_kcounter_w": kcs[k_ref]["p_leak_w"],
            "p_leak_arb_cell_w": cell["p_leak_w"],
            "p_leak_arb_tree_w": p_leak_tree_w,
            "p_leak_encoder_w": p_leak_enc_w,
        }
    # The run's corner must pass; a failure at another corner is recorded in the section, not fatal (as
    # for the ramp timing generator): the sky130 preset's 1.8 V cells fail a check at ss
    fatal = [f"{c}: {name}" for c, name in failures if c == settings.corner_name]
    if fatal:
        raise RuntimeError("digital block failed its functional checks: " + "; ".join(fatal))
    slow = corners_out[SLOW_CORNER]
    t_arb_enc_s = slow["t_arb_tree_grant_s"] + slow["t_encoder_s"]
    failed = {"failed_checks": [f"{c}: {name}" for c, name in failures]} if failures else {}
    return {
        **failed,
        "vdd_digital_v": settings.supplies.v_digital_v,
        "corners": corners_out,
        "slow_corner": SLOW_CORNER,
        # serial sum at the slow corner: tree grant + encoder + k-counter count->STOP
        "t_arb_total_s": t_arb_enc_s + slow["t_kcounter_count_stop_s"],
        # the paper's own arithmetic (1.51 + 0.57 = 2.08 ns): arbiter + encoder, counter overlapped
        "t_arb_arbiter_encoder_s": t_arb_enc_s,
        "paper_ss_0v8": {"t_arbiter_s": PAPER_T_ARBITER_S, "t_encoder_s": PAPER_T_ENCODER_S,
                         "t_counter_s": PAPER_T_COUNTER_S, "t_arb_s": PAPER_T_ARB_S,
                         "source": "SPEC §2 (Topkima-Former, arXiv 2411.13050)"},
        "k_for_count_stop": 5 if 5 in _k_values(settings) else min(_k_values(settings)),
        "tree_model": {
            "n_columns": n_columns, "levels": tree_levels(n_columns), "encoder_levels": encoder_levels(n_columns),
            "column_pitch_m": COLUMN_PITCH_M, "wire_c_f_per_m": WIRE_C_F_PER_M,
            "wire_r_ohm_per_m": WIRE_R_OHM_PER_M,
            "arb_wire_per_level_m": tree_wire_lengths_m(tree_levels(n_columns)),
            "enc_wire_per_level_m": encoder_wire_lengths_m(encoder_levels(n_columns)),
            "note": f"{n_columns}-input tree = {tree_levels(n_columns)} levels of the characterised arb2 cell on the "
                    "critical path, pi-wires of 2**(l-2) column pitches between levels; root acknowledge = buffered "
                    f"ru; encoder = {encoder_levels(n_columns)}-level nor2/nand2 OR path per address bit; pitch and "
                    "wire per-length values are project estimates (no layout published)",
        },
        "t_clk_ramp_s": tm.active().t_clk_ramp_s,
        "design": {
            "ramp_counter": "cnt5: 5-bit synchronous binary up-counter, TG master-slave flip-flops",
            "k_counter": "kcnt5: 5-bit preset k (1..31), registered STOP when count reaches k, count frozen",
            "arbiter": "arb2: 2-input fixed priority (lower address), non-preemptive, 4-phase, "
                       f"one root round trip per grant; {n_columns} inputs = {tree_levels(n_columns)}-level binary tree",
            "encoder": f"per address bit a {n_columns // 2}-input OR ({encoder_levels(n_columns)} levels nor2/nand2, "
                       "tapered) + inverter",
        },
    }
