"""What the exact read-back of the k kept keys costs per query row (``readback="exact"``;
:mod:`topkima.behavioral.readback`).

After the ramp ADC has selected a row's k keys, the digital side reads the k granted key rows
from the Q·Kᵀ SRAM (ordinary reads) and computes their integer Q·K with the row's query codes,
before the softmax core. Priced from the accelerator configuration's own figures (their sources
are the config's ``*_source`` fields; ``presets/paper.toml``):

* **row reads**: a key element is three ternary cell pairs (×1, ×2, ×4; SPEC §2), 6 cells, so a
  key row is 6·d cells, each read for one clock at ``sram_av.e_cell_cycle_j`` (Topkima-Former
  Table I: 1.8e-7 mW/MHz per SRAM cell, per accessed cell and clock);
* **MACs**: k·d products of a sign + 5-bit query code and a key level −7…7, each as up to three
  shift-adds of the query code (the level's 3 magnitude bits, as the array's ×1 / ×2 / ×4 pairs)
  at ``sram_av.e_shift_add_j`` (Horowitz, ISSCC 2014: 32-bit add, 0.1 pJ; an upper bound for
  12-bit sums);
* **transfer**: the k·d key levels (``macro.k_bits`` each) written into and read from a buffer
  beside the macro (``system.e_buffer_bit_j``: Horowitz's 8 KB SRAM, 10 pJ per 64-bit access), no
  H-tree (the softmax core sits beside its macro). The configuration has no smaller storage
  figure; for the 1,280 bits of k = 5, d = 64 a register would cost far less, so this term is an
  upper bound, and the largest of the three;
* **time** [ours]: one row read per ``sram_av.t_write_row_s`` (a read as long as the paper's 5 ns
  row write), then the k·d MACs on the ``system.digital_lanes``-lane digital unit, one clock
  (``system.f_clk_hz``) per ``digital_lanes`` MACs. It joins the row's digital stage (before the
  softmax core): in sequence in the serial schedule, overlapping the next row's conversion in the
  pipelined one (:func:`topkima.behavioral.softmax_macro.latency`).

With k + m **candidates** (the k-counter stops at k_c = k + m grants; :mod:`topkima.behavioral.readback`)
the rows read, the MACs and the transfer are those of k_c keys, and the digital side adds a top-k of
the k_c exact scores [ours]: the paper's sort model (SPEC §4, T_sort = min(n·log₂n, n·k)·T_clk,sort)
over n = k_c values, in compare-exchanges at ``macro.timing.t_clk_sort_s`` each, and at the macro's
``macro.energy.e_cmpx_j`` scaled from its (5-bit code, 9-bit address) key to an exact score's key:
(2·b + 5) flip-flop events for a b-bit key (:func:`topkima.behavioral.softmax_macro.energy_from_calibration`),
b = the score's bits (⌈log₂(2·31·7·d + 1)⌉) + the address's (⌈log₂ 256⌉).
"""
from __future__ import annotations

import math

#: SRAM cells per key element: three ternary pairs (×1, ×2, ×4) of an L and an R cell (SPEC §2)
CELLS_PER_KEY_ELEMENT = 6
#: shift-adds per digital MAC: the key level's magnitude bits (levels −7…7)
SHIFT_ADDS_PER_MAC = 3
#: the key bits of the macro's ``e_cmpx_j`` (a 5-bit code and a 9-bit address: softmax_macro's sort_key_bits)
CMPX_KEY_BITS = 14
#: key addresses in one array (256 columns)
ADDRESS_BITS = 8


def select_compare_exchanges(candidates: int, k: int) -> int:
    """Compare-exchanges of the digital top-k of ``candidates`` values: the paper's sort model
    min(n·log₂n, n·k) at n = candidates (SPEC §4), rounded up; 0 when nothing is dropped."""
    if candidates <= k:
        return 0
    return math.ceil(min(candidates * math.log2(candidates), candidates * k))


def exact_readback_row(cfg, k: int, d_head: int, candidates: int | None = None) -> dict:
    """Per query row: the exact read-back's energy by component (J) and its time (s).

    ``cfg``: an :class:`~topkima.behavioral.accelerator.model.AcceleratorConfig`; ``k`` kept keys of
    ``d_head`` elements; ``candidates``: the k_c ≥ k key rows read back (None: k), of which the
    digital top-k keeps k. Returns {"energy_j": {component: J}, "latency_s": s, "macs": k_c·d,
    "compare_exchanges": of the top-k}."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or isinstance(d_head, bool) \
            or not isinstance(d_head, int) or d_head < 1:
        raise ValueError(f"k and d_head must be positive integers, got k = {k!r}, d_head = {d_head!r}")
    k_c = k if candidates is None else candidates
    if isinstance(k_c, bool) or not isinstance(k_c, int) or k_c < k:
        raise ValueError(f"candidates must be an integer ≥ k = {k}, got {candidates!r}")
    s, a, m = cfg.system, cfg.sram_av, cfg.macro
    macs = k_c * d_head
    bits = macs * m.k_bits
    n_cmpx = select_compare_exchanges(k_c, k)
    score_bits = math.ceil(math.log2(2 * 31 * 7 * d_head + 1))
    key_bits = score_bits + ADDRESS_BITS
    energy = {
        "readback_sram": k_c * CELLS_PER_KEY_ELEMENT * d_head * a.e_cell_cycle_j,
        "readback_mac": macs * SHIFT_ADDS_PER_MAC * a.e_shift_add_j,
        "readback_transfer": bits * 2 * s.e_buffer_bit_j,
    }
    latency = k_c * a.t_write_row_s + math.ceil(macs / s.digital_lanes) * s.t_clk_s
    if n_cmpx:
        energy["readback_select"] = n_cmpx * m.energy.e_cmpx_j * (2 * key_bits + 5) / (2 * CMPX_KEY_BITS + 5)
        latency += n_cmpx * m.timing.t_clk_sort_s
    return {"energy_j": energy, "latency_s": latency, "macs": macs, "compare_exchanges": n_cmpx}


def latency_with_readback(serial: dict, seq: int, t_readback_s: float, pipelined: bool) -> dict:
    """The Topkima macro's latency over ``seq`` rows (``serial``: its serial breakdown from
    :func:`topkima.behavioral.softmax_macro.latency`) with ``t_readback_s`` added to each row's
    digital stage; the values sum to ``"total"``. Pipelined: as that function, the slower of the
    analog and digital stages paid once per row, the other once."""
    write, softmax = serial["write"], serial.get("softmax", 0.0)
    t_analog = (serial["total"] - write - softmax) / seq
    t_digital = softmax / seq + t_readback_s
    out = {"write": write}
    if not pipelined:
        out.update({"analog": seq * t_analog, "softmax": softmax, "readback": seq * t_readback_s})
    else:
        out["analog"] = seq * t_analog if t_analog >= t_digital else t_analog
        out["digital"] = seq * t_digital if t_digital > t_analog else t_digital
    out["total"] = float(sum(out.values()))
    return out
