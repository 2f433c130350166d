"""The AER readout at transistor level: the 2-input arbiter cell (``arb2``), the critical path of
an ``2**levels``-input arbiter tree composed of it (the design's ``geometry.n_columns``: 256, 8 levels), and the grant → address encoder (cells in
``netlists/digital.sp``; block description, geometry and wires: :mod:`.digital`).
"""
from __future__ import annotations

import math

from topkima.circuits import testbench as tb
from topkima.circuits.timing import clock_free
from topkima.circuits.digital import (BLOCK, COLUMN_PITCH_M, ENCODER_LEVELS, T_SRC_EDGE_S,
                                      T_STEP_FINE_S, TREE_LEVELS, avg_meas, bench_header, buffer_pair, checked_int,
                                      checked_time, checked_vdd, delay_meas, encoder_wire_lengths_m, logic_level,
                                      logic_word, pi_wire, tran_line, tree_wire_lengths_m)
from topkima.circuits.netlist import num
from topkima.circuits.spice import simulate


#: Phases of the single-cell bench, each (request edges, expected (g0, g1) at the end).
#: 0: r0 and r1 together -> lower address (g0); 1: r0 done -> hand over to r1 via the root;
#: 2: r1 done -> idle; 3: r1 alone -> g1; 4: r0 arrives while g1 is out -> g1 kept;
#: 5: r1 done -> g0; 6: r0 done -> idle; 7: r0 alone -> g0; 8: r0 done -> idle.
_CELL_PHASES: tuple[tuple[tuple[tuple[str, int], ...], tuple[int, int]], ...] = (
    ((("r0", 1), ("r1", 1)), (1, 0)),
    ((("r0", 0),), (0, 1)),
    ((("r1", 0),), (0, 0)),
    ((("r1", 1),), (0, 1)),
    ((("r0", 1),), (0, 1)),
    ((("r1", 0),), (1, 0)),
    ((("r0", 0),), (0, 0)),
    ((("r0", 1),), (1, 0)),
    ((("r0", 0),), (0, 0)),
)


def arb_cell_netlist(corner_name: str, vdd_v: float, t_phase_s: float = 1e-9,
                     t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """One arb2 acting as the root (ad = buffered ru), driven through the phases above."""
    vdd_v = checked_vdd(vdd_v)
    t_phase_s = checked_time(t_phase_s, "t_phase_s")
    t0 = 0.5e-9
    edges: dict[str, list[tuple[float, int]]] = {"r0": [], "r1": []}
    for i, (changes, _) in enumerate(_CELL_PHASES):
        for name, level in changes:
            edges[name].append((t0 + i * t_phase_s, level))
    t_stop = t0 + len(_CELL_PHASES) * t_phase_s
    lines = bench_header("arb_cell", corner_name, vdd_v)
    for name in ("r0", "r1"):
        lines.append(tb.pwl_source("v" + name, name + "s", vdd_v, 0, edges[name], T_SRC_EDGE_S))
        lines += buffer_pair(name + "buf", name + "s", name, "vddtb")
    lines.append(tb.instance("dut", ["r0", "r1", "ru", "ad", "g0", "g1", "vdd", "0"], "arb2"))
    lines += buffer_pair("root", "ru", "ad", "vddtb")                       # root acknowledge = ru, buffered
    lines += [tb.instance("ld0", ["g0", "ld0", "vddtb", "0"], "inv"),            # sense-amplifier reset inputs
              tb.instance("ld1", ["g1", "ld1", "vddtb", "0"], "inv")]
    p = t_phase_s
    lines += [
        delay_meas("t_simul_r2g", "r0", "RISE", "g0", "RISE", vdd_v),
        delay_meas("t_up_r0", "r0", "RISE", "ru", "RISE", vdd_v, td_s=t0 + 7 * p - 0.05e-9),
        delay_meas("t_down_g0", "ad", "RISE", "g0", "RISE", vdd_v, td_s=t0 + 7 * p - 0.05e-9),
        delay_meas("t_single_r0", "r0", "RISE", "g0", "RISE", vdd_v, td_s=t0 + 7 * p - 0.05e-9),
        delay_meas("t_up_r1", "r1", "RISE", "ru", "RISE", vdd_v, td_s=t0 + 3 * p - 0.05e-9),
        delay_meas("t_down_g1", "ad", "RISE", "g1", "RISE", vdd_v, td_s=t0 + 3 * p - 0.05e-9),
        delay_meas("t_single_r1", "r1", "RISE", "g1", "RISE", vdd_v, td_s=t0 + 3 * p - 0.05e-9),
        delay_meas("t_handoff", "r0", "FALL", "g1", "RISE", vdd_v, td_s=t0 + p - 0.05e-9),
        tb.charge_meas("q_handshake", "vdd", t0 + 7 * p - 0.05e-9, t0 + 9 * p - 0.05e-9),
        avg_meas("i_leak", 0.1e-9, t0 - 0.05e-9),
        tran_line(t_step_s, t_stop), ".end"]
    samples = [t0 + (i + 0.9) * p for i in range(len(_CELL_PHASES))]
    return "\n".join(lines) + "\n", {"samples_s": samples, "t_phase_s": p}


@clock_free
def measure_arb_cell(corner_name: str, vdd_v: float, t_phase_s: float = 1e-9) -> dict:
    """Function (priority, non-preemption, hand-over) and stage delays of one arb2."""
    netlist, plan = arb_cell_netlist(corner_name, vdd_v, t_phase_s)
    res = simulate(netlist, BLOCK)
    m = res.measures
    grants = [[logic_level(res, "g0", t, vdd_v), logic_level(res, "g1", t, vdd_v)] for t in plan["samples_s"]]
    expected = [list(g) for _, g in _CELL_PHASES]
    p_leak_w = -vdd_v * m["i_leak"]
    t_up_s = max(m["t_up_r0"], m["t_up_r1"])
    t_down_s = max(m["t_down_g0"], m["t_down_g1"])
    return {
        "corner": corner_name, "vdd_v": vdd_v,
        "grants": grants, "expected_grants": expected,
        "function_ok": grants == expected,
        "lower_address_wins_ok": grants[0] == [1, 0],
        "single_requester_ok": grants[3] == [0, 1] and grants[7] == [1, 0],
        "non_preemptive_ok": grants[4] == [0, 1],
        "t_simul_req_to_gnt_s": m["t_simul_r2g"],
        "t_single_req_to_gnt_r0_s": m["t_single_r0"], "t_single_req_to_gnt_r1_s": m["t_single_r1"],
        "t_req_up_r0_s": m["t_up_r0"], "t_req_up_r1_s": m["t_up_r1"],
        "t_gnt_down_g0_s": m["t_down_g0"], "t_gnt_down_g1_s": m["t_down_g1"],
        "t_req_up_s": t_up_s, "t_gnt_down_s": t_down_s,
        "t_stage_s": t_up_s + t_down_s,
        "t_handoff_s": m["t_handoff"],
        "e_handshake_j": tb.energy_drawn_j(m["q_handshake"], vdd_v) - p_leak_w * 2 * plan["t_phase_s"],
        "p_leak_w": p_leak_w,
    }


def arb_tree_netlist(corner_name: str, vdd_v: float, address: int = 0, levels: int = TREE_LEVELS,
                     pitch_m: float = COLUMN_PITCH_M, t_stop_s: float = 8e-9,
                     t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """Critical path of a 2**levels-input arbiter tree for leaf ``address``, one 4-phase handshake.

    The leaf is the sense amplifier's request latch (a nor2 SR latch on the testbench supply: set
    by ``fire``, reset by its grant). Cell l takes the path on input ``(address >> (l-1)) & 1``;
    the sibling input is idle (0). The root acknowledge is ru of the top cell through a buffer on
    vdd (zero-work root: no storage handshake is modelled).
    """
    vdd_v = checked_vdd(vdd_v)
    levels = checked_int(levels, "levels", 1, 10)
    address = checked_int(address, "address", 0, 2 ** levels - 1)
    if not (math.isfinite(pitch_m) and 0 < pitch_m < 1e-4):
        raise ValueError(f"pitch_m must be a column pitch in (0, 100 µm), got {pitch_m!r}")
    t_stop_s = checked_time(t_stop_s, "t_stop_s")
    wires = tree_wire_lengths_m(levels, pitch_m)
    t_fire = 0.5e-9
    lines = bench_header("arb_tree", corner_name, vdd_v)
    lines += [tb.pwl_source("vfire", "fire", vdd_v, 0, [(t_fire, 1), (t_fire + 0.2e-9, 0)], T_SRC_EDGE_S),
              tb.instance("sa1", ["fire", "req", "reqn", "vddtb", "0"], "nor2"),
              tb.instance("sa2", ["reqn", "gleaf", "req", "vddtb", "0"], "nor2"),
              ".ic v(req)=0"]                                   # the SR latch starts reset
    lines += pi_wire("u1", "req", "rin1", wires[0])
    lines += pi_wire("d1", "gd1", "gleaf", wires[0])
    for lvl in range(1, levels + 1):
        b = (address >> (lvl - 1)) & 1
        r = ["rin%d" % lvl, "0"] if b == 0 else ["0", "rin%d" % lvl]
        g = ["gd%d" % lvl, "gx%d" % lvl] if b == 0 else ["gx%d" % lvl, "gd%d" % lvl]
        lines.append(tb.instance(f"a{lvl}", r + [f"ru{lvl}", f"ad{lvl}"] + g + ["vdd", "0"], "arb2"))
        if lvl < levels:
            lines += pi_wire(f"u{lvl + 1}", f"ru{lvl}", f"rin{lvl + 1}", wires[lvl])
            lines += pi_wire(f"d{lvl + 1}", f"gd{lvl + 1}", f"ad{lvl}", wires[lvl])
    lines += buffer_pair("root", f"ru{levels}", f"ad{levels}", "vdd")
    lines += [delay_meas("t_grant", "req", "RISE", "gleaf", "RISE", vdd_v),
              delay_meas("t_cycle", "req", "RISE", "gleaf", "FALL", vdd_v),
              delay_meas("t_root", f"ru{levels}", "RISE", f"ad{levels}", "RISE", vdd_v)]
    for lvl in range(1, levels + 1):
        lines.append(delay_meas(f"t_up{lvl}", "req" if lvl == 1 else f"ru{lvl - 1}", "RISE", f"ru{lvl}", "RISE", vdd_v))
        lines.append(delay_meas(f"t_dn{lvl}", f"ad{lvl}", "RISE", "gleaf" if lvl == 1 else f"ad{lvl - 1}", "RISE", vdd_v))
    lines += [tb.charge_meas("q_total", "vdd", 0.45e-9, t_stop_s), avg_meas("i_leak", 0.1e-9, 0.45e-9),
              tran_line(t_step_s, t_stop_s), ".end"]
    return "\n".join(lines) + "\n", {"wires_m": wires, "levels": levels, "address": address,
                                     "window_s": t_stop_s - 0.45e-9, "t_stop_s": t_stop_s}


@clock_free
def measure_arb_tree(corner_name: str, vdd_v: float, address: int = 0, levels: int = TREE_LEVELS,
                     pitch_m: float = COLUMN_PITCH_M) -> dict:
    """Request->grant delay, per-level delays and energy of one grant through the composed tree."""
    netlist, plan = arb_tree_netlist(corner_name, vdd_v, address, levels, pitch_m)
    res = simulate(netlist, BLOCK)
    m = res.measures
    n = plan["levels"]
    t_end = plan["t_stop_s"]
    settled = all(logic_level(res, node, t_end, vdd_v) == 0 for node in ("req", "gleaf", f"ad{n}", f"ru{n}"))
    p_leak_w = -vdd_v * m["i_leak"]
    return {
        "corner": corner_name, "vdd_v": vdd_v, "address": plan["address"], "levels": n,
        "n_inputs": 2 ** n,
        "grant_reaches_leaf_ok": settled and m["t_grant"] > 0,
        "t_grant_tree_s": m["t_grant"],
        "t_handshake_cycle_s": m["t_cycle"],
        "t_root_ack_s": m["t_root"],
        "t_req_up_per_level_s": [m[f"t_up{lvl}"] for lvl in range(1, n + 1)],
        "t_gnt_down_per_level_s": [m[f"t_dn{lvl}"] for lvl in range(1, n + 1)],
        "wire_per_level_m": plan["wires_m"],
        "e_grant_tree_j": tb.energy_drawn_j(m["q_total"], vdd_v) - p_leak_w * plan["window_s"],
        "p_leak_path_w": p_leak_w,
    }


# --------------------------------------------------------------------------- encoder

def encoder_gate_scale(level: int) -> int:
    """Width multiple of the OR-tree gate at ``level`` (1-based): 1, 1, 1, 2, 2, 4, 4, ...

    Our sizing choice: the wire each level drives doubles per level, so the gate width doubles
    every second level (stage effort stays within ~2x of the lower levels) while the grant line
    still sees one unit gate. Measured at ss, 0.8 V while choosing: grant->address 1.01 ns with
    all-unit gates, 0.59 ns with this taper, for +25 % energy per encode.
    """
    return 2 ** max(0, (level - 2) // 2)


_ENC8_PHASES = (None, 0, 1, 2, 3, 4, 5, 6, 7, None)  # which one-hot input is high per phase


def encoder_netlist(corner_name: str, vdd_v: float, levels: int = ENCODER_LEVELS, pitch_m: float = COLUMN_PITCH_M,
                    t_pulse_s: float = 1.5e-9, t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """Critical path of one address bit of a 2**(levels+1)-column encoder (256 at 7 levels), plus an enc8 function check.

    The path: grant (driven by an inverter on the testbench supply, like the arbiter's grant
    output) -> levels alternating nor2/nand2 (odd levels nor2 with the off input at 0, even
    levels nand2 with the off input at 1; widths tapered by :func:`encoder_gate_scale`) with
    π-wires, -> output inverter (2x) -> the
    address register input (an inverter on the testbench supply). The enc8 slice runs on its
    own supply ``vdde`` so that i(vdd) is the path alone.
    """
    vdd_v = checked_vdd(vdd_v)
    levels = checked_int(levels, "levels", 1, 10)
    if not (math.isfinite(pitch_m) and 0 < pitch_m < 1e-4):
        raise ValueError(f"pitch_m must be a column pitch in (0, 100 µm), got {pitch_m!r}")
    t_pulse_s = checked_time(t_pulse_s, "t_pulse_s")
    wires = encoder_wire_lengths_m(levels, pitch_m)
    t_rise = 0.5e-9
    t_fall = t_rise + t_pulse_s
    t_stop = t_fall + t_pulse_s
    lines = bench_header("encoder", corner_name, vdd_v)
    lines.append(tb.pwl_source("vg", "gs", vdd_v, 0, [(t_rise, 1), (t_fall, 0)], T_SRC_EDGE_S))
    lines += buffer_pair("gbuf", "gs", "g", "vddtb")
    node = "g"
    for j in range(1, levels + 1):
        lines += pi_wire(f"e{j}", node, f"i{j}", wires[j - 1])
        s = encoder_gate_scale(j)
        if j % 2:
            lines.append(tb.instance(f"o{j}", [f"i{j}", "0", f"o{j}", "vdd", "0"], "nor2", wn=200e-9 * s, wp=600e-9 * s))
        else:
            lines.append(tb.instance(f"o{j}", [f"i{j}", "vdd", f"o{j}", "vdd", "0"], "nand2", wn=400e-9 * s, wp=300e-9 * s))
        node = f"o{j}"
    if levels % 2:   # active-low after an odd number of levels: output inverter restores polarity
        lines.append(tb.instance("out", [node, "abit", "vdd", "0"], "inv", wn=400e-9, wp=600e-9))
    else:
        lines += buffer_pair("out", node, "abit", "vdd")
    lines.append(tb.instance("areg", ["abit", "aregn", "vddtb", "0"], "inv"))
    lines += [delay_meas("t_enc_rise", "g", "RISE", "abit", "RISE", vdd_v),
              delay_meas("t_enc_fall", "g", "FALL", "abit", "FALL", vdd_v),
              tb.charge_meas("q_encode", "vdd", t_rise - 0.1e-9, t_stop),
              avg_meas("i_leak", 0.1e-9, t_rise - 0.1e-9)]
    # enc8 function check on its own supply
    t_ph = 0.5e-9
    t8 = t_stop + 0.2e-9
    lines.append(f"vdde vdde 0 {num(vdd_v)}")
    for i in range(8):
        edges = []
        for p, hot in enumerate(_ENC8_PHASES):
            if hot == i:
                edges += [(t8 + p * t_ph, 1), (t8 + (p + 1) * t_ph - 0.05e-9, 0)]
        lines.append(tb.pwl_source(f"vh{i}", f"h{i}", vdd_v, 0, edges, T_SRC_EDGE_S))
    lines.append(tb.instance("enc8", [f"h{i}" for i in range(8)] + ["e0", "e1", "e2", "vdde", "0"], "enc8"))
    t_end = t8 + len(_ENC8_PHASES) * t_ph
    lines += [tran_line(t_step_s, t_end), ".end"]
    samples = [t8 + (p + 0.8) * t_ph for p in range(len(_ENC8_PHASES))]
    return "\n".join(lines) + "\n", {"wires_m": wires, "samples_s": samples, "window_s": t_stop - t_rise + 0.1e-9}


@clock_free
def measure_encoder(corner_name: str, vdd_v: float, levels: int = ENCODER_LEVELS,
                    pitch_m: float = COLUMN_PITCH_M) -> dict:
    """Grant->address delay and energy of one address bit (2**(levels+1) columns: 256 at 7 levels), enc8 function."""
    netlist, plan = encoder_netlist(corner_name, vdd_v, levels, pitch_m)
    res = simulate(netlist, BLOCK)
    m = res.measures
    got = [logic_word(res, ["e0", "e1", "e2"], t, vdd_v) for t in plan["samples_s"]]
    expected = [0 if hot is None else hot for hot in _ENC8_PHASES]
    p_leak_w = -vdd_v * m["i_leak"]
    e_bit_j = tb.energy_drawn_j(m["q_encode"], vdd_v) - p_leak_w * plan["window_s"]
    return {
        "corner": corner_name, "vdd_v": vdd_v, "levels": levels,
        "enc8_addresses": got, "enc8_ok": got == expected,
        "t_enc_rise_s": m["t_enc_rise"], "t_enc_fall_s": m["t_enc_fall"],
        "t_enc_s": max(m["t_enc_rise"], m["t_enc_fall"]),
        "e_per_bit_event_j": e_bit_j,            # one grant pulse (rise + fall) on a '1' address bit
        # the address has levels + 1 bits (an OR of 2**levels inputs per bit); half of them are 1 on average
        "e_per_encode_j": (levels + 1) / 2 * e_bit_j,
        "wire_per_level_m": plan["wires_m"],
        "p_leak_path_w": p_leak_w,
    }


# --------------------------------------------------------------------------- whole encoder (function)

def encoder_function_netlist(corner_name: str, vdd_v: float, n_columns: int, addresses: list[int],
                             pitch_m: float = COLUMN_PITCH_M, t_phase_s: float = 2e-9,
                             t_step_s: float = T_STEP_FINE_S) -> tuple[str, dict]:
    """Every address bit of an ``n_columns``-column encoder, each a full OR tree, granted one column at a time.

    Address bit b is the OR of the grants of the n_columns/2 columns whose address has bit b set, built
    like :func:`encoder_netlist`'s path but whole: log2(n_columns) − 1 alternating nor2/nand2 levels
    (tapered by :func:`encoder_gate_scale`, π-wires of 2**(j−1) pitches before level j), then the
    output inverter(s). The grants of ``addresses`` rise one per phase (one-hot, each on its testbench
    buffer), every other grant idles at 0. The bench's purpose is function: the address read back in
    each phase. Practical for small arrays (n_columns ≤ 64: (n_columns/2 − 1)·log2(n_columns) gates).
    """
    vdd_v = checked_vdd(vdd_v)
    n = checked_int(n_columns, "n_columns", 4, 64)
    if n & (n - 1):
        raise ValueError(f"n_columns must be a power of two, got {n}")
    bits = n.bit_length() - 1
    addresses = [checked_int(a, "address", 0, n - 1) for a in addresses]
    if not addresses:
        raise ValueError("addresses must name at least one column")
    t_phase_s = checked_time(t_phase_s, "t_phase_s")
    t0 = 0.5e-9
    lines = bench_header("encoder_function", corner_name, vdd_v)
    for a in sorted(set(addresses)):
        edges = [(t0 + p * t_phase_s, 1) if on else (t0 + (p + 0.5) * t_phase_s, 0)
                 for p, hot in enumerate(addresses) if hot == a for on in (True, False)]
        lines.append(tb.pwl_source(f"vg{a}", f"gs{a}", vdd_v, 0, edges, T_SRC_EDGE_S))
        lines += buffer_pair(f"gb{a}", f"gs{a}", f"g{a}", "vddtb")
    levels = bits - 1
    for b in range(bits):
        nodes = [f"g{c}" if c in addresses else "0" for c in range(n) if (c >> b) & 1]
        for j in range(1, levels + 1):
            s = encoder_gate_scale(j)
            idle = "0" if j % 2 else "vdd"      # an idle input: 0 into a nor2 level, 1 into a nand2 level
            nxt = []
            for i in range(len(nodes) // 2):
                pair = []
                for side in (0, 1):
                    node = nodes[2 * i + side]
                    if node in ("0", "vdd"):     # a constant input (a column not granted in this bench)
                        pair.append(idle)
                        continue
                    wired = f"i{b}_{j}_{2 * i + side}"
                    lines += pi_wire(f"e{b}_{j}_{2 * i + side}", node, wired, pitch_m * 2.0 ** (j - 1))
                    pair.append(wired)
                out = f"o{b}_{j}_{i}"
                if all(p == idle for p in pair):   # both inputs constant: the gate's output is constant too
                    nxt.append("vdd" if j % 2 else "0")
                    continue
                if j % 2:
                    lines.append(tb.instance(f"o{b}_{j}_{i}", pair + [out, "vdd", "0"], "nor2", wn=200e-9 * s, wp=600e-9 * s))
                else:
                    lines.append(tb.instance(f"o{b}_{j}_{i}", pair + [out, "vdd", "0"], "nand2", wn=400e-9 * s, wp=300e-9 * s))
                nxt.append(out)
            nodes = nxt
        top = nodes[0]
        if top in ("0", "vdd"):                # no granted column has this bit set: the bit stays 0
            lines.append(tb.dc_source(f"vconst{b}", f"a{b}", 0.0))
        elif levels % 2:
            lines.append(tb.instance(f"out{b}", [top, f"a{b}", "vdd", "0"], "inv", wn=400e-9, wp=600e-9))
        else:
            lines += buffer_pair(f"out{b}", top, f"a{b}", "vdd")
        lines.append(tb.instance(f"areg{b}", [f"a{b}", f"aregn{b}", "vddtb", "0"], "inv"))
    t_stop = t0 + len(addresses) * t_phase_s
    lines += [".save " + " ".join(f"v(a{b})" for b in range(bits)), tran_line(t_step_s, t_stop), ".end"]
    samples = [t0 + (p + 0.45) * t_phase_s for p in range(len(addresses))]
    idle_samples = [t0 + (p + 0.95) * t_phase_s for p in range(len(addresses))]
    return "\n".join(lines) + "\n", {"bits": bits, "samples_s": samples, "idle_samples_s": idle_samples}


@clock_free
def measure_encoder_function(corner_name: str, vdd_v: float, n_columns: int, addresses: list[int]) -> dict:
    """The address each granted column of ``addresses`` encodes to, and 0 between grants (whole encoder)."""
    netlist, plan = encoder_function_netlist(corner_name, vdd_v, n_columns, addresses)
    res = simulate(netlist, BLOCK)
    nodes = [f"a{b}" for b in range(plan["bits"])]
    got = [logic_word(res, nodes, t, vdd_v) for t in plan["samples_s"]]
    idle = [logic_word(res, nodes, t, vdd_v) for t in plan["idle_samples_s"]]
    return {"corner": corner_name, "vdd_v": vdd_v, "n_columns": n_columns, "addresses": list(addresses),
            "encoded": got, "idle": idle, "encodes_ok": got == list(addresses) and all(x == 0 for x in idle)}
