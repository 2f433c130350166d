"""A NeuroSim-style analytic model of a Topkima-Former accelerator running whole transformers.

What is modelled (Dong et al., "Topkima-Former", arXiv 2411.13050, §V and Table I; SPEC §5):
a chip of tiles, PEs and 256 × 256 arrays sized to hold the model. Per transformer layer:

* **Projections and FFN** (X·W_QKV, W_O, FFN) on RRAM IMC arrays (weight stationary, 2 bit
  per cell, an 8-bit weight over 4 cells): each token's input is applied bit-serially, each
  input bit reads every array in parallel, ``adc_mux`` columns share one ADC, partial sums are
  shift-added and accumulated across row blocks. Array energy follows NeuroSim's parallel-read
  model (bitline charging C_BL·V_read² per selected column; Peng et al., DNN+NeuroSim V1.3,
  ``SubArray.cpp``) plus the cells' conduction over the sensing window.
* **Q·Kᵀ** on Topkima SRAM macros, one head per macro group, heads in parallel: latency and
  energy from :mod:`topkima.behavioral.softmax_macro` (eqs. 3–4 with our SPICE per-event
  energies), the digital softmax core included.
  With ``readback="exact"`` each row adds the digital re-scoring of its k kept keys
  (:mod:`.readback`); with ``candidates`` = k_c > k the k-counter stops at k_c grants (α is then
  the run's, measured with k_c), k_c rows are re-scored and a digital top-k keeps k of them.
* **A·V** on SRAM arrays holding V (1 bit per cell, rewritten per input), A's 5-bit values
  applied bit-serially; sparse A drives only the k kept rows (the paper's SRAM figure,
  1.8e-7 mW/MHz per cell, per active cell and clock).
* **Buffers and interconnect**: every activation, partial sum and K/V/A transfer is counted
  in bits; energy per bit for buffer accesses and per bit·mm on the H-tree.
* **Digital units** (whole model only): LayerNorm, GELU and residual additions per element.

Ops are counted as 2 per MAC of the dense computation (as the paper counts 1.81 GOP for one
BERT-base attention module at sequence 384: X·W_QKV, Q·Kᵀ and A·V). Every parameter comes in
a config whose fields carry their source (``presets/*.toml`` beside this module, read by
:mod:`topkima.behavioral.accelerator.config`). Schedules: ``serial`` (every operation, and
every token inside it, in sequence: the paper's v1) and ``pipelined`` [ours]: inside an
operation, buffer traffic and the softmax core overlap the next row's conversion; across
operations, rows stream from Q·Kᵀ through A·V, W_O and the FFN (X·W_QKV must finish before
Q·Kᵀ starts, since every row needs all keys).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from topkima.behavioral import softmax_macro as sm


@dataclass(frozen=True)
class ModelSpec:
    """A transformer encoder's shape."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    d_ffn: int
    seq_len: int       #: default sequence length
    source: str

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


MODELS = {
    "bert-base": ModelSpec("bert-base", 12, 768, 12, 3072, 384,
                           "Devlin et al., NAACL 2019; sequence 384 as the paper's SQuAD v1.1 setting"),
    "distilbert": ModelSpec("distilbert", 6, 768, 12, 3072, 384, "Sanh et al., 2019 (DistilBERT: 6 layers of BERT-base)"),
    "vit-b16": ModelSpec("vit-b16", 12, 768, 12, 3072, 197,
                         "Dosovitskiy et al., ICLR 2021 (ViT-B/16, 224² image: 196 patches + [CLS])"),
    "minilm": ModelSpec("minilm", 6, 384, 12, 1536, 128,
                        "all-MiniLM-L6-v2 (Wang et al., NeurIPS 2020; sentence-transformers); sequence 128 [ours]"),
}


def _positive(obj, names=None):
    for f in fields(obj):
        if names is not None and f.name not in names:
            continue
        v = getattr(obj, f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{type(obj).__name__}.{f.name} must be positive, got {v!r}")


@dataclass(frozen=True)
class SystemParams:
    f_clk_hz: float                 #: system clock
    act_bits: int                   #: activations in buffers
    psum_bits: int                  #: partial sums between arrays and accumulators
    e_buffer_bit_j: float           #: one buffer access, per bit
    bus_width_bits: int             #: buffer / H-tree bus width per clock
    e_wire_bit_mm_j: float          #: H-tree, per bit and mm
    wire_mean_mm: float             #: mean H-tree distance of a transfer
    e_digital_element_j: float      #: LayerNorm / GELU / residual, per element
    digital_lanes: int              #: elements the digital units process per clock

    def __post_init__(self):
        _positive(self)

    @property
    def t_clk_s(self) -> float:
        return 1.0 / self.f_clk_hz


@dataclass(frozen=True)
class RramParams:
    array_rows: int
    array_cols: int
    cell_bits: int
    weight_bits: int
    input_bits: int                 #: bit-serial input cycles per token
    input_activity: float           #: fraction of input bits that are 1
    adc_mux: int                    #: columns sharing one ADC (cycles per input bit)
    v_read_v: float
    r_on_ohm: float
    r_off_ohm: float
    c_bitline_per_m_f: float        #: bitline wire capacitance per metre
    cell_height_m: float            #: cell pitch along the bitline
    t_sense_s: float                #: cells conduct while their column is sensed
    e_adc_j: float                  #: one ADC conversion
    e_shift_add_j: float            #: one shift-add / accumulate of a conversion

    def __post_init__(self):
        _positive(self)
        if self.r_off_ohm <= self.r_on_ohm:
            raise ValueError("RramParams.r_off_ohm must exceed r_on_ohm")
        if self.input_activity > 1:
            raise ValueError("RramParams.input_activity must lie in (0, 1]")

    @property
    def cells_per_weight(self) -> int:
        return -(-self.weight_bits // self.cell_bits)

    @property
    def g_mean_s(self) -> float:
        """Mean conductance over the 2^cell_bits levels, spaced evenly in G [ours: levels used evenly]."""
        g_on, g_off = 1 / self.r_on_ohm, 1 / self.r_off_ohm
        return 0.5 * (g_on + g_off)

    @property
    def e_column_read_j(self) -> float:
        """Bitline charging per selected column read (NeuroSim: C_BL·V_read²)."""
        return self.c_bitline_per_m_f * self.cell_height_m * self.array_rows * self.v_read_v ** 2

    @property
    def e_cell_conduct_j(self) -> float:
        """One conducting cell over the sensing window, V²·G·t."""
        return self.v_read_v ** 2 * self.g_mean_s * self.t_sense_s


@dataclass(frozen=True)
class SramAVParams:
    array_rows: int
    array_cols: int
    v_bits: int                     #: V precision, one cell per bit
    a_bits: int                     #: A precision, bit-serial
    adc_mux: int
    e_cell_cycle_j: float           #: an accessed SRAM cell, per clock (paper: 1.8e-7 mW/MHz/cell)
    e_adc_j: float
    e_shift_add_j: float
    t_write_row_s: float            #: row-parallel write, per row
    sparse_a: bool = True           #: drive only the k kept rows of A

    def __post_init__(self):
        _positive(self)


@dataclass(frozen=True)
class QKMacroParams:
    """The Topkima Q·Kᵀ macro as the accelerator counts it: its latency and energy per operation
    (:mod:`topkima.behavioral.softmax_macro`), k and the operand widths. Not the calibrated
    circuit parameters of :class:`topkima.behavioral.params.MacroParams`."""

    timing: sm.MacroTiming
    energy: sm.MacroEnergy
    k: int
    k_bits: int = 4                 #: key levels −7…7 in the buffers
    q_bits: int = 6                 #: sign + 5-bit PWM magnitude


@dataclass(frozen=True)
class AcceleratorConfig:
    name: str
    system: SystemParams
    rram: RramParams
    sram_av: SramAVParams
    macro: QKMacroParams
    sources: dict = field(default_factory=dict, compare=False)
    #: how the kept keys' scores reach the softmax core: "ramp-code" (from the ADC codes, the
    #: paper's) or "exact" (the k kept key rows read and re-scored digitally: :mod:`.readback`)
    readback: str = "ramp-code"
    #: with readback="exact": the grants k_c = k + m after which the k-counter stops, of which the
    #: digital side keeps the k best exact scores (:mod:`topkima.behavioral.readback`); None: macro.k
    candidates: int | None = None

    def __post_init__(self):
        if self.readback not in ("ramp-code", "exact"):
            raise ValueError(f"AcceleratorConfig.readback must be 'ramp-code' or 'exact', got {self.readback!r}")
        c = self.candidates
        if c is not None:
            if isinstance(c, bool) or not isinstance(c, int) or c < self.macro.k:
                raise ValueError(f"AcceleratorConfig.candidates must be an integer ≥ macro.k = {self.macro.k}, "
                                 f"got {c!r}")
            if c > self.macro.k and self.readback != "exact":
                raise ValueError(f"AcceleratorConfig.candidates = {c} > k needs readback 'exact', got {self.readback!r}")


@dataclass
class OpResult:
    """One operation of one layer: its ops, latency, per-row steady-state time, energy breakdown."""

    name: str
    ops: float
    latency_s: float                #: serial schedule
    row_time_s: float               #: steady-state time per token (pipelined streaming)
    fill_s: float                   #: time outside the per-row stream (writes, drain)
    energy_j: dict                  #: component -> J
    arrays: int = 0

    @property
    def energy_total_j(self) -> float:
        return float(sum(self.energy_j.values()))


def _transfer(sys_p: SystemParams, bits: float) -> dict:
    """Buffer (one write + one read) and H-tree energy of moving ``bits``."""
    return {"buffer": 2 * bits * sys_p.e_buffer_bit_j, "interconnect": bits * sys_p.e_wire_bit_mm_j * sys_p.wire_mean_mm}


def _bus_time(sys_p: SystemParams, bits: float) -> float:
    return math.ceil(bits / sys_p.bus_width_bits) * sys_p.t_clk_s


def _add(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, v in b.items():
        out[key] = out.get(key, 0.0) + v
    return out


def rram_matmul(name: str, cfg: AcceleratorConfig, seq: int, d_in: int, d_out: int, pipelined: bool) -> OpResult:
    """X (seq × d_in) · W (d_in × d_out) on weight-stationary RRAM arrays."""
    r, s = cfg.rram, cfg.system
    n_rb = -(-d_in // r.array_rows)
    cols = d_out * r.cells_per_weight
    n_cb = -(-cols // r.array_cols)
    conversions = seq * r.input_bits * n_rb * cols            # every column, every input bit
    t_token = r.input_bits * r.adc_mux * s.t_clk_s
    t_accum = (math.ceil(math.log2(n_rb)) + 1) * s.t_clk_s if n_rb > 1 else s.t_clk_s
    bits_in = d_in * s.act_bits * n_cb                          # input copied into each column block's PE buffer
    bits_psum = n_rb * d_out * s.psum_bits                      # partial sums to the tile accumulators
    bits_out = d_out * s.act_bits
    # the global bus carries the input once (an H-tree broadcast) and the outputs; partial sums
    # travel on the tiles' local buses in parallel with it
    t_bus = _bus_time(s, d_in * s.act_bits + bits_out)
    energy = {
        "rram_array": conversions * r.e_column_read_j
        + seq * r.input_bits * r.input_activity * d_in * cols * r.e_cell_conduct_j,
        "adc": conversions * r.e_adc_j,
        "accumulation": conversions * r.e_shift_add_j,
    }
    energy = _add(energy, _transfer(s, seq * (bits_in + bits_psum + bits_out)))
    serial = seq * (t_token + t_accum + t_bus)
    row = max(t_token, t_bus)
    return OpResult(name, 2.0 * seq * d_in * d_out, serial if not pipelined else seq * row + t_accum + t_bus,
                    row, t_accum + t_bus, energy, n_rb * n_cb)


def qk_topkima(cfg: AcceleratorConfig, seq: int, n_heads: int, d_head: int, alpha, pipelined: bool) -> OpResult:
    """Q·Kᵀ, top-k and softmax on Topkima macros, heads in parallel."""
    m, s = cfg.macro, cfg.system
    k = min(m.k, seq)
    k_c = min(cfg.candidates or k, seq)         # the k-counter's stop count (k + m candidates)
    lat = sm.latency("topkima", seq, k, m.timing, alpha, pipelined, grants=k_c)
    en = sm.energy("topkima", seq, k, m.energy, alpha, m.timing.n_ramp_steps, m.timing.n_cols, grants=k_c)
    # each grant's code and address leave the macro (k_c of them with k + m candidates)
    bits = n_heads * seq * (d_head * (m.k_bits + m.q_bits) + k_c * (5 + math.ceil(math.log2(max(seq, 2)))))
    energy = {"sram_macro": n_heads * sum(v for key, v in en.items() if key not in ("softmax", "write", "total")),
              "digital_softmax": n_heads * en["softmax"], "sram_write": n_heads * en["write"]}
    energy = _add(energy, _transfer(s, bits))
    if cfg.readback == "exact":
        from topkima.behavioral.accelerator.readback import exact_readback_row, latency_with_readback
        rb = exact_readback_row(cfg, k, d_head, k_c)
        energy = _add(energy, {name: n_heads * seq * v for name, v in rb["energy_j"].items()})
        lat = latency_with_readback(sm.latency("topkima", seq, k, m.timing, alpha, False, grants=k_c), seq,
                                    rb["latency_s"], pipelined)
    row = (lat["total"] - lat["write"]) / seq
    arrays = n_heads * sm.n_arrays(seq, m.timing.n_cols)
    return OpResult("qk_softmax", 2.0 * n_heads * seq * seq * d_head, lat["total"], row, lat["write"], energy, arrays)


def av_sram(cfg: AcceleratorConfig, seq: int, n_heads: int, d_head: int, pipelined: bool) -> OpResult:
    """A·V on SRAM arrays holding V; A sparse (k kept per row) or dense."""
    a, s, m = cfg.sram_av, cfg.system, cfg.macro
    k = min(m.k, seq)
    n_rb = -(-seq // a.array_rows)
    cols = d_head * a.v_bits
    n_cb = -(-cols // a.array_cols)
    active_rows = k if a.sparse_a else seq
    t_row = a.a_bits * a.adc_mux * s.t_clk_s
    t_write = min(seq, a.array_rows) * a.t_write_row_s          # row blocks written in parallel
    conversions = n_heads * seq * a.a_bits * n_rb * cols
    bits_a = seq * (k * (5 + math.ceil(math.log2(max(seq, 2)))) if a.sparse_a else seq * 5)
    bits = n_heads * (bits_a + seq * d_head * a.v_bits + n_rb * seq * d_head * s.psum_bits + seq * d_head * s.act_bits)
    energy = {
        "sram_av_array": n_heads * seq * a.a_bits * a.adc_mux * active_rows * cols * a.e_cell_cycle_j,
        "adc": conversions * a.e_adc_j,
        "accumulation": conversions * a.e_shift_add_j,
        "sram_write": n_heads * seq * cols * a.e_cell_cycle_j,
    }
    energy = _add(energy, _transfer(s, bits))
    t_bus = _bus_time(s, bits / (n_heads * seq))
    serial = t_write + seq * (t_row + t_bus)
    latency = t_write + seq * max(t_row, t_bus) + t_bus if pipelined else serial
    return OpResult("av", 2.0 * n_heads * seq * seq * d_head, latency, max(t_row, t_bus), t_write,
                    energy, n_heads * n_rb * n_cb)


def digital_op(name: str, cfg: AcceleratorConfig, seq: int, elements_per_token: int, pipelined: bool) -> OpResult:
    """LayerNorm / GELU / residual: per-element energy, ``digital_lanes`` elements per clock."""
    s = cfg.system
    t_row = math.ceil(elements_per_token / s.digital_lanes) * s.t_clk_s
    energy = {"digital": seq * elements_per_token * s.e_digital_element_j}
    return OpResult(name, 0.0, seq * t_row, t_row, 0.0, energy)


def layer_ops(cfg: AcceleratorConfig, model: ModelSpec, seq: int, alpha, pipelined: bool,
              scope: str = "model") -> list[list[OpResult]]:
    """One layer's operations in stream groups: rows stream through a group when pipelined.

    ``scope="attention"``: X·W_QKV, Q·Kᵀ (+ top-k, softmax), A·V — the paper's attention module.
    ``scope="model"``: plus W_O, the FFN, two LayerNorms, GELU and two residual additions.
    """
    d, h, dh = model.d_model, model.n_heads, model.d_head
    first = [rram_matmul("qkv_projection", cfg, seq, d, 3 * d, pipelined)]
    second = [qk_topkima(cfg, seq, h, dh, alpha, pipelined), av_sram(cfg, seq, h, dh, pipelined)]
    if scope == "model":
        second += [rram_matmul("out_projection", cfg, seq, d, d, pipelined),
                   digital_op("residual_layernorm", cfg, seq, 2 * d, pipelined),
                   rram_matmul("ffn1", cfg, seq, d, model.d_ffn, pipelined),
                   digital_op("gelu", cfg, seq, model.d_ffn, pipelined),
                   rram_matmul("ffn2", cfg, seq, model.d_ffn, d, pipelined),
                   digital_op("residual_layernorm2", cfg, seq, 2 * d, pipelined)]
    elif scope != "attention":
        raise ValueError(f"scope must be 'attention' or 'model', got {scope!r}")
    return [first, second]


def group_latency(group: list[OpResult], seq: int, pipelined: bool) -> float:
    """Serial: the sum. Pipelined: rows stream; the slowest stage sets the pace, every other
    stage adds one row (fill/drain), plus the fixed parts (writes) of all stages."""
    if not pipelined or len(group) == 1:
        return sum(op.latency_s for op in group)
    slow = max(op.row_time_s for op in group)
    return seq * slow + sum(op.row_time_s for op in group) - slow + sum(op.fill_s for op in group)


@dataclass
class Estimate:
    """Whole-workload result: totals and breakdowns by operation and by component."""

    model: str
    scope: str
    seq_len: int
    n_layers: int
    pipelined: bool
    alpha: float
    ops: float
    latency_s: float
    energy_j: float
    latency_by_op_s: dict
    energy_by_op_j: dict
    energy_by_component_j: dict
    arrays_by_op: dict

    @property
    def throughput_tops(self) -> float:
        return self.ops / self.latency_s / 1e12

    @property
    def efficiency_tops_per_w(self) -> float:
        return self.ops / self.energy_j / 1e12

    def as_dict(self) -> dict:
        return {"model": self.model, "scope": self.scope, "seq_len": self.seq_len, "n_layers": self.n_layers,
                "pipelined": self.pipelined, "alpha": self.alpha, "ops": self.ops,
                "throughput_tops": self.throughput_tops, "efficiency_tops_per_w": self.efficiency_tops_per_w,
                "latency_s": self.latency_s, "energy_j": self.energy_j,
                "latency_by_op_s": self.latency_by_op_s, "energy_by_op_j": self.energy_by_op_j,
                "energy_by_component_j": self.energy_by_component_j, "arrays_by_op": self.arrays_by_op}


def estimate(cfg: AcceleratorConfig, model: ModelSpec, seq_len: int | None = None, alpha=0.31,
             pipelined: bool = False, scope: str = "model") -> Estimate:
    """Latency, energy and ops of ``model`` (all layers) or of one attention module.

    ``scope="attention"`` is one layer's attention module (the paper's Table I workload);
    ``scope="model"`` all ``n_layers`` layers, run one after another on the chip that holds them.
    """
    seq = model.seq_len if seq_len is None else seq_len
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 2:
        raise ValueError(f"sequence length must be an integer ≥ 2, got {seq!r}")
    if cfg.macro.k > seq:
        raise ValueError(f"k = {cfg.macro.k} exceeds the sequence length {seq}")
    groups = layer_ops(cfg, model, seq, alpha, pipelined, scope)
    n_layers = 1 if scope == "attention" else model.n_layers
    lat_by_op, en_by_op, en_by_comp, arrays = {}, {}, {}, {}
    latency = 0.0
    for group in groups:
        g_lat = group_latency(group, seq, pipelined)
        latency += n_layers * g_lat
        serial = sum(op.latency_s for op in group)
        for op in group:   # a pipelined group's time is shared out in proportion to the serial times
            share = op.latency_s / serial if serial > 0 else 0.0
            lat_by_op[op.name] = n_layers * g_lat * share
            en_by_op[op.name] = n_layers * op.energy_total_j
            arrays[op.name] = op.arrays
            for comp, v in op.energy_j.items():
                en_by_comp[comp] = en_by_comp.get(comp, 0.0) + n_layers * v
    ops = n_layers * sum(op.ops for group in groups for op in group)
    energy = sum(en_by_op.values())
    return Estimate(model=model.name, scope=scope, seq_len=seq, n_layers=n_layers, pipelined=pipelined,
                    alpha=float(np.mean(alpha)), ops=ops, latency_s=latency, energy_j=energy,
                    latency_by_op_s=lat_by_op, energy_by_op_j=en_by_op, energy_by_component_j=en_by_comp,
                    arrays_by_op=arrays)


# -- scaling of Q·Kᵀ by 1/√d_k (SPEC §3) ----------------------------------------------------------

SCALING_METHODS = ("scale-free", "left-shift", "tron")


def scaling_row_time_s(method: str, d: int, d_head: int, t: sm.MacroTiming, t_shift_s: float,
                       t_mul_s: float) -> float:
    """Extra time per query row that scaling by 1/√d_k adds in front of the top-k.

    scale-free (Topkima-Former): folded into W_Q offline, nothing at run time.
    left-shift (ReTransformer, Yang et al., ICCAD 2020) [our reading]: every one of the row's
    d scores passes a shifter, one per ``t_shift_s``, before the top-k sees them.
    tron [our reading of "Tron's method"]: the query row's d_head elements are scaled by a
    serial multiplier, one per ``t_mul_s``, before the PWM.
    The paper states neither timing; these readings are ours and configurable.
    """
    if method not in SCALING_METHODS:
        raise ValueError(f"scaling method must be one of {SCALING_METHODS}, got {method!r}")
    if method == "scale-free":
        return 0.0
    if method == "left-shift":
        return d * t_shift_s
    return d_head * t_mul_s


def scaling_comparison(d: int, k: int, d_head: int, t: sm.MacroTiming, alpha, t_shift_s: float,
                       t_mul_s: float) -> dict:
    """Topkima macro latency (d rows) with each scaling method, and scale-free's speed-ups."""
    base = sm.latency("topkima", d, k, t, alpha)["total"]
    out = {m: base + d * scaling_row_time_s(m, d, d_head, t, t_shift_s, t_mul_s) for m in SCALING_METHODS}
    return {"latency_s": out, "speedup_vs_left_shift": out["left-shift"] / out["scale-free"],
            "speedup_vs_tron": out["tron"] / out["scale-free"]}


# -- published accelerators (SPEC §5, §7) -----------------------------------------------------------

PUBLISHED = [
    # name, node nm, MAC type, TOPS, TOPS/W, source
    ("ELSA", 40, "logic", 1.09, 1.14, "Ham et al., ISCA 2021; as tabulated in Topkima-Former Table I"),
    ("ReTransformer", 27, "RRAM IMC", 0.08, 0.47, "Yang et al., ICCAD 2020; Topkima-Former Table I"),
    ("TranCIM", 28, "SRAM IMC", 0.19, 5.10, "Tu et al., JSSC 2023; Topkima-Former Table I"),
    ("X-Former", 32, "SRAM/RRAM IMC", None, 13.44, "Sridharan et al., TVLSI 2023; Topkima-Former Table I"),
    ("HARDSEA", 32, "SRAM/RRAM IMC", 3.64, 3.73, "Liu et al., TVLSI 2023; Topkima-Former Table I"),
    ("Topkima-Former (paper)", 32, "SRAM/RRAM IMC", 6.70, 16.84, "Dong et al., arXiv 2411.13050, Table I"),
]
RACE_IT = ("RACE-IT", None, "analog CAM + crossbars", None, None,
           "arXiv 2312.06532 v1: 10.7× performance and 1193× lower energy vs GPU, 5.9× and 3.9× vs prior IMC "
           "accelerators (no absolute TOPS or TOPS/W in SPEC §7)")


def comparison_rows(throughput_tops: float, efficiency_tops_per_w: float) -> list[dict]:
    """Our figures beside the published accelerators, with the speed-up and efficiency ratios."""
    rows = []
    for name, node, mac, tops, eff, source in PUBLISHED + [RACE_IT]:
        rows.append({"name": name, "node_nm": node, "mac": mac, "throughput_tops": tops,
                     "efficiency_tops_per_w": eff, "source": source,
                     "our_speedup": throughput_tops / tops if tops else None,
                     "our_efficiency_ratio": efficiency_tops_per_w / eff if eff else None})
    return rows


def ratio_ranges(rows: list[dict], exclude=("Topkima-Former (paper)",)) -> dict:
    """min–max of our speed-up and efficiency ratios over the other accelerators."""
    sp = [r["our_speedup"] for r in rows if r["our_speedup"] and r["name"] not in exclude]
    ef = [r["our_efficiency_ratio"] for r in rows if r["our_efficiency_ratio"] and r["name"] not in exclude]
    return {"speedup": [min(sp), max(sp)], "efficiency": [min(ef), max(ef)]}
