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
"""
from __future__ import annotations

import math

#: SRAM cells per key element: three ternary pairs (×1, ×2, ×4) of an L and an R cell (SPEC §2)
CELLS_PER_KEY_ELEMENT = 6
#: shift-adds per digital MAC: the key level's magnitude bits (levels −7…7)
SHIFT_ADDS_PER_MAC = 3


def exact_readback_row(cfg, k: int, d_head: int) -> dict:
    """Per query row: the exact read-back's energy by component (J) and its time (s).

    ``cfg``: an :class:`~topkima.behavioral.accelerator.model.AcceleratorConfig`; ``k`` kept keys of
    ``d_head`` elements. Returns {"energy_j": {component: J}, "latency_s": s, "macs": k·d}."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or isinstance(d_head, bool) \
            or not isinstance(d_head, int) or d_head < 1:
        raise ValueError(f"k and d_head must be positive integers, got k = {k!r}, d_head = {d_head!r}")
    s, a, m = cfg.system, cfg.sram_av, cfg.macro
    macs = k * d_head
    bits = macs * m.k_bits
    energy = {
        "readback_sram": k * CELLS_PER_KEY_ELEMENT * d_head * a.e_cell_cycle_j,
        "readback_mac": macs * SHIFT_ADDS_PER_MAC * a.e_shift_add_j,
        "readback_transfer": bits * 2 * s.e_buffer_bit_j,
    }
    latency = k * a.t_write_row_s + math.ceil(macs / s.digital_lanes) * s.t_clk_s
    return {"energy_j": energy, "latency_s": latency, "macs": macs}


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
