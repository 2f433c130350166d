"""Latency and energy of three softmax macros: conventional, digital top-k and Topkima.

What is modelled: the paper's equations 3–4 (Dong et al., "Topkima-Former", arXiv 2411.13050,
§IV; SPEC §4), term by term, for d query rows applied one after another against d keys:

* conventional: ``T = T_wr + d·(T_pwm + T_ima + d·T_nl)``
* digital top-k: ``T = T_wr + d·(T_pwm + T_ima + T_sort + k·T_nl)``,
  ``T_sort = min(d·log2 d, d·k)·T_clk,sort``
* Topkima: ``T = T_wr + d·(T_pwm + T_ima,arb + k·T_nl)``,
  ``T_ima,arb = max(α·T_ima + T_arb, T_clk + k·T_arb)``

Two additions of ours, both zero in the paper's reading: ``t_cal_s``, the ramp ADC's
calibration clock (our column converts in 1 + 32 clocks, SPEC §2), added to T_ima and
T_ima,arb alike; and keys that exceed one array (d > ``n_cols``) are spread over
⌈d/n_cols⌉ arrays converting in parallel, with the quota k split as evenly as possible
(SPEC §3's 3 + 2 for d = 384), so the serial grant term is ``max quota·T_arb``.
α may be one number or the per-row early-stop fractions; latencies are then averaged over
the rows (the max in T_ima,arb is taken per row).

Energy per query row is the sum of per-event figures (:class:`MacroEnergy`): MAC wordline
pulses and bitline discharge, the calibration phase, ramp steps, comparator decisions,
read-out (code latches, or arbiter grants), sorting and the digital softmax; plus the K write
per input. Which figure comes from our SPICE (65 nm, the paper's macro node) and which from a
publication is recorded in :func:`energy_from_calibration` and in each preset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from topkima.behavioral.macro.arrays import split_in_proportion

KINDS = ("conventional", "dtopk", "topkima")
#: the two readings of the input-pulse phase (SPEC §4): three key pairs pulsed together (62 ns,
#: our column's timing) or in sequence (15.5 + 31 + 62 = 108.5 ns)
T_PWM_READINGS_S = {"62ns": 62e-9, "108.5ns": 108.5e-9}


@dataclass(frozen=True)
class MacroTiming:
    """Timing of one softmax macro (all seconds)."""

    t_wr_s: float          #: rewrite K into the array, once per input (paper: 64 rows × 5 ns)
    t_pwm_s: float         #: PWM input phase per query row
    t_clk_s: float         #: ramp-ADC clock
    n_ramp_steps: int      #: ramp steps of a full conversion; T_ima = n_ramp_steps·t_clk_s
    t_arb_s: float         #: arbiter + encoder (+ counter) delay per grant
    t_nl_s: float          #: digital softmax core, per value
    t_clk_sort_s: float    #: sorter clock (one compare-exchange per clock)
    t_cal_s: float = 0.0   #: calibration phase per conversion [ours; 0 in the paper's equations]
    n_cols: int = 256      #: keys per array

    @property
    def t_ima_s(self) -> float:
        """Full-ramp conversion time T_ima."""
        return self.n_ramp_steps * self.t_clk_s

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v)) or v < 0 or (v == 0 and f.name != "t_cal_s"):
                raise ValueError(f"MacroTiming.{f.name} must be a positive finite number, got {v!r}")


@dataclass(frozen=True)
class MacroEnergy:
    """Per-event energies of one macro (joules). Per column = per key column of one array."""

    e_mac_bitline_col_j: float     #: MAC-phase bitline discharge + restore, per column and row
    e_mac_row_pulse_j: float       #: one MAC wordline pulse across an array (driver + wordline)
    n_mac_row_pulses: float        #: MAC wordline pulses per query row and array (activity·192)
    e_cal_bitline_col_j: float     #: calibration-phase bitline energy per column
    e_cal_rows_j: float            #: calibration rows' wordline pulses, per array and conversion
    e_ramp_bitline_col_j: float    #: bitline energy per ramp step and column
    e_ramp_step_j: float           #: ramp generator + register + driver + wordline, per step and array
    e_decision_j: float            #: one comparator decision
    e_count_j: float               #: ramp counter, per clock (and per 5-bit code latch)
    e_grant_j: float               #: arbiter grant + k-count + encode, per granted key
    e_cmpx_j: float                #: one compare-exchange of the digital sorter
    e_nl_value_j: float            #: digital softmax, per value (exp, sum, multiply)
    e_nl_row_j: float              #: digital softmax, per row (the reciprocal)
    e_write_cell_j: float          #: one SRAM cell write (K rewrite)
    cells_per_key: int = 384       #: 64 elements × 3 pairs × 2 cells

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v)) or v < 0:
                raise ValueError(f"MacroEnergy.{f.name} must be a non-negative finite number, got {v!r}")


def n_arrays(d: int, n_cols: int) -> int:
    """Arrays that hold d keys side by side."""
    return -(-int(d) // int(n_cols))


def quotas(d: int, k: int, n_cols: int) -> tuple[int, ...]:
    """Sub-top-k quotas per array: k split in proportion to each array's keys (largest
    remainder, each ≥ 1 while k allows): 3 + 2 for d = 384 on 256-column arrays (SPEC §3).
    When arrays outnumber k, a global k-counter stops every array: quota 1 each for the
    serial-grant term."""
    m = n_arrays(d, n_cols)
    if m == 1:
        return (min(k, d),)
    if m > k:
        return (1,) * m
    sizes = [min(n_cols, d - i * n_cols) for i in range(m)]
    return split_in_proportion(k, sizes)


def t_sort_s(d: int, k: int, t_clk_sort_s: float) -> float:
    """T_sort = min(d·log2 d, d·k)·T_clk,sort (SPEC §4)."""
    return min(d * math.log2(d), d * k) * t_clk_sort_s if d > 1 else 0.0


def t_ima_arb_s(alpha, k: int, t: MacroTiming, d: int | None = None) -> np.ndarray:
    """T_ima,arb = max(α·T_ima + T_arb, T_clk + k_arb·T_arb) per row (k_arb: the largest quota)."""
    k_arb = max(quotas(d, k, t.n_cols)) if d is not None else k
    a = np.asarray(alpha, dtype=float)
    return np.maximum(a * t.t_ima_s + t.t_arb_s, t.t_clk_s + k_arb * t.t_arb_s)


def _check(d, k, alpha):
    if not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"sequence length d must be a positive integer, got {d!r}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise ValueError(f"k must be an integer in 1..d = {d}, got {k!r}")
    a = np.asarray(alpha, dtype=float)
    if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(a > 1):
        raise ValueError("alpha (early-stop fraction) must lie in (0, 1]")


def _check_grants(kind: str, d: int, k: int, grants) -> int:
    """The k-counter's stop count: k by default; k ≤ grants ≤ d, topkima only."""
    if grants is None:
        return k
    if isinstance(grants, bool) or not isinstance(grants, (int, np.integer)) or not k <= grants <= d:
        raise ValueError(f"grants (the k-counter's stop count k + m) must be an integer in k..d = {k}..{d}, "
                         f"got {grants!r}")
    if kind != "topkima" and grants != k:
        raise ValueError(f"grants applies to the topkima macro only, got kind {kind!r}")
    return int(grants)


def latency(kind: str, d: int, k: int, t: MacroTiming, alpha=1.0, pipelined: bool = False,
            grants: int | None = None) -> dict[str, float]:
    """Latency breakdown (s) of one macro over d query rows; the values sum to ``"total"``.

    ``grants`` (topkima): the grants after which the k-counter stops, k_c ≥ k (k + m candidates,
    :mod:`topkima.behavioral.readback`); default k. The arbiter then serves k_c grants; the
    softmax core still evaluates k values.

    Non-pipelined (the paper's equations): every row's phases run in sequence. Pipelined
    [ours]: the digital stage of row i (sort and softmax core) overlaps the conversion of
    row i + 1, so a row costs max(analog, digital) and the last row's digital stage drains.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _check(d, k, alpha)
    grants = _check_grants(kind, d, k, grants)
    n_nl = d if kind == "conventional" else k
    analog = {"pwm": t.t_pwm_s, "calibration": t.t_cal_s}
    if kind == "topkima":
        analog["ima_arb"] = float(np.mean(t_ima_arb_s(alpha, grants, t, d)))
    else:
        analog["ima"] = t.t_ima_s
    digital = {"sort": t_sort_s(d, k, t.t_clk_sort_s) if kind == "dtopk" else 0.0, "softmax": n_nl * t.t_nl_s}
    out = {"write": t.t_wr_s}
    if not pipelined:
        out.update({name: d * v for name, v in {**analog, **digital}.items()})
        out = {name: float(v) for name, v in out.items() if v or name == "write"}
    else:
        # the slower stage is paid once per row, the faster one once (fill or drain)
        t_a, t_d = sum(analog.values()), sum(digital.values())
        out["analog"] = d * t_a if t_a >= t_d else t_a
        out["digital"] = d * t_d if t_d > t_a else t_d
    out["total"] = float(sum(out.values()))
    return out


def row_energy(kind: str, d: int, k: int, e: MacroEnergy, alpha=1.0, n_ramp_steps: int = 32,
               n_cols: int = 256, grants: int | None = None) -> dict[str, float]:
    """Energy breakdown (J) of one query row against d keys; the values sum to ``"total"``.

    Conventional and digital top-k convert every column with the full ramp and clock every
    comparator at every step (a standard single-slope ADC); the conventional macro latches d
    codes and runs the softmax on all d, the digital top-k one sorts and runs it on k.
    Topkima stops the ramp at α of its steps: its comparators are clocked α·n_steps times
    (a fired column is disabled by its grant; only k fire before the stop), k keys are granted
    (``grants`` = k_c ≥ k with k + m candidates: α is then the stop of the k_c-th grant).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    _check(d, k, alpha)
    grants = _check_grants(kind, d, k, grants)
    m = n_arrays(d, n_cols)
    a = float(np.mean(alpha)) if kind == "topkima" else 1.0
    steps = a * n_ramp_steps
    out = {
        "mac": d * e.e_mac_bitline_col_j + m * e.n_mac_row_pulses * e.e_mac_row_pulse_j,
        "calibration": d * e.e_cal_bitline_col_j + m * e.e_cal_rows_j,
        "ramp": steps * (d * e.e_ramp_bitline_col_j + m * e.e_ramp_step_j),
        "comparators": steps * d * e.e_decision_j,
        "counter": steps * m * e.e_count_j,
    }
    if kind == "topkima":
        out["readout"] = grants * e.e_grant_j
        out["sort"] = 0.0
    else:
        out["readout"] = d * e.e_count_j          # each column latches its 5-bit code
        out["sort"] = min(d * math.log2(d), d * k) * e.e_cmpx_j if kind == "dtopk" else 0.0
    n_nl = d if kind == "conventional" else k
    out["softmax"] = n_nl * e.e_nl_value_j + e.e_nl_row_j
    out = {name: float(v) for name, v in out.items()}
    out["total"] = float(sum(out.values()))
    return out


def energy(kind: str, d: int, k: int, e: MacroEnergy, alpha=1.0, n_ramp_steps: int = 32,
           n_cols: int = 256, grants: int | None = None) -> dict[str, float]:
    """Energy breakdown (J) of one macro over d query rows plus the K write; sums to ``"total"``."""
    per_row = row_energy(kind, d, k, e, alpha, n_ramp_steps, n_cols, grants)
    out = {"write": d * e.cells_per_key * e.e_write_cell_j}
    out.update({name: d * v for name, v in per_row.items() if name != "total"})
    out["total"] = float(sum(out.values()))
    return out


@dataclass(frozen=True)
class Comparison:
    """Topkima against the conventional and digital top-k macros at one (d, k, α)."""

    d: int
    k: int
    alpha: float
    latency_s: dict           #: kind -> breakdown
    energy_j: dict            #: kind -> breakdown

    @property
    def speedup_vs_conventional(self) -> float:
        return self.latency_s["conventional"]["total"] / self.latency_s["topkima"]["total"]

    @property
    def speedup_vs_dtopk(self) -> float:
        return self.latency_s["dtopk"]["total"] / self.latency_s["topkima"]["total"]

    @property
    def energy_ratio_vs_conventional(self) -> float:
        return self.energy_j["conventional"]["total"] / self.energy_j["topkima"]["total"]

    @property
    def energy_ratio_vs_dtopk(self) -> float:
        return self.energy_j["dtopk"]["total"] / self.energy_j["topkima"]["total"]

    @property
    def sort_share_of_dtopk(self) -> float:
        """Sorting's share of the digital top-k macro's latency."""
        return self.latency_s["dtopk"].get("sort", 0.0) / self.latency_s["dtopk"]["total"]

    def as_dict(self) -> dict:
        return {"d": self.d, "k": self.k, "alpha": self.alpha,
                "speedup_vs_conventional": self.speedup_vs_conventional,
                "speedup_vs_dtopk": self.speedup_vs_dtopk,
                "energy_ratio_vs_conventional": self.energy_ratio_vs_conventional,
                "energy_ratio_vs_dtopk": self.energy_ratio_vs_dtopk,
                "sort_share_of_dtopk_latency": self.sort_share_of_dtopk,
                "latency_s": self.latency_s, "energy_j": self.energy_j}


def compare(d: int, k: int, t: MacroTiming, e: MacroEnergy, alpha=1.0, pipelined: bool = False) -> Comparison:
    """The three macros at one operating point."""
    lat = {kind: latency(kind, d, k, t, alpha, pipelined) for kind in KINDS}
    en = {kind: energy(kind, d, k, e, alpha, t.n_ramp_steps, t.n_cols) for kind in KINDS}
    return Comparison(d=d, k=k, alpha=float(np.mean(alpha)), latency_s=lat, energy_j=en)


# -- parameters from the calibration artefact ----------------------------------------------------

def timing_from_calibration(cal, *, t_pwm_reading: str = "62ns", t_wr_s: float = 320e-9, t_nl_s: float = 6.5e-9,
                            t_clk_sort_s: float = 0.5e-9, include_calibration_clock: bool = False,
                            t_arb: str = "spice") -> MacroTiming:
    """:class:`MacroTiming` with the ramp clock, step count and T_arb from our SPICE artefact.

    ``t_pwm_reading``: "62ns" (our column's timing: three key pairs pulsed together; equal to
    the artefact's ``column.timing.t_pwm_s``) or "108.5ns" (three PWM phases in sequence).
    ``t_wr_s`` (64 rows × 5 ns) and ``t_nl_s`` (6.5 ns per value) are the paper's figures
    (SPEC §2); ``t_clk_sort_s`` is an assumption (the paper does not state its sort clock).
    ``t_arb``: "spice" = the artefact's ``digital.t_arb_total_s`` (arbiter + encoder +
    k-counter at SS 0.8 V), "paper" = 2.08 ns. Keys per array (``n_cols``): the artefact's design's
    columns (:func:`topkima.behavioral.params.array_columns`, 256 for the committed artefact).
    """
    col = cal.column["timing"]
    if t_pwm_reading not in T_PWM_READINGS_S:
        raise ValueError(f"t_pwm_reading must be one of {', '.join(T_PWM_READINGS_S)}, got {t_pwm_reading!r}")
    t_pwm = float(col["t_pwm_s"]) if t_pwm_reading == "62ns" else T_PWM_READINGS_S[t_pwm_reading]
    if t_arb not in ("spice", "paper"):
        raise ValueError(f"t_arb must be 'spice' or 'paper', got {t_arb!r}")
    dig = cal.digital
    t_arb_s = float(dig["t_arb_total_s"]) if t_arb == "spice" else float(dig.get("paper_ss_0v8", {}).get("t_arb_s", 2.08e-9))
    from topkima.behavioral.params import array_columns
    return MacroTiming(t_wr_s=t_wr_s, t_pwm_s=t_pwm, t_clk_s=float(col["t_clk_ima_s"]),
                       n_ramp_steps=int(col["n_ramp_steps"]), t_arb_s=t_arb_s, t_nl_s=t_nl_s,
                       t_clk_sort_s=t_clk_sort_s,
                       t_cal_s=float(col["t_clk_ima_s"]) if include_calibration_clock else 0.0,
                       n_cols=array_columns(cal))


#: Digital figures that are not in our SPICE, with their sources. Horowitz, "Computing's energy
#: problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V: 16-bit integer add ≈ 0.05 pJ
#: (between 8 bit 0.03 and 32 bit 0.1 pJ), 8-bit multiply 0.2 pJ, 32-bit multiply 3.1 pJ, FP16
#: multiply 1.1 pJ. One softmax value (table exponential, 16-bit accumulate, 16×8-bit multiply by
#: the reciprocal) ≈ 1 pJ; one row's 16-bit reciprocal ≈ a 32-bit multiply, 3.1 pJ [our sums].
HOROWITZ_2014 = "Horowitz, ISSCC 2014 (45 nm, 0.9 V) energy table"
E_NL_VALUE_J = 1.0e-12
E_NL_ROW_J = 3.1e-12


def energy_from_calibration(cal, *, input_activity: float = 1.0, e_nl_value_j: float = E_NL_VALUE_J,
                            e_nl_row_j: float = E_NL_ROW_J, sort_key_bits: int = 14) -> tuple[MacroEnergy, dict]:
    """:class:`MacroEnergy` from our SPICE artefact (65 nm, tt) and the provenance of each figure.

    From SPICE (``column.energy``, ``ramp.timing``, ``comparator``, ``digital``):
    bitline energies per column (the conversion table split into MAC, calibration and ramp
    parts by their voltage swings), wordline pulse energies per row (driver + wordline of a
    256-column row), the comparator's energy per decision, the counter's energy per clock
    (also used per 5-bit code latch), the arbiter tree + k-counter + encoder per grant (SS,
    as the paper characterises them). Derived from our digital cells [ours]: one sorter
    compare-exchange of a (5-bit code, 9-bit address) pair = rewriting two 14-bit registers
    plus one 5-bit comparison, at the counter's SPICE energy per flip-flop (e_per_count / 5).
    From a publication: the softmax core's energy (Horowitz 2014, see ``E_NL_VALUE_J``).
    K write: one cell write = C_bitline·V² with the artefact's effective bitline capacitance
    and precharge level [ours: write bitlines taken equal to the read bitlines].
    ``input_activity``: fraction of the 64 query inputs with a non-zero pulse (α's run measures it).
    """
    if not 0 <= input_activity <= 1:
        raise ValueError(f"input_activity must lie in [0, 1], got {input_activity!r}")
    from topkima.behavioral.params import params_from_calibration
    p = params_from_calibration(cal)
    col, ramp, comp, dig = cal.column, cal.ramp, cal.comparator, cal.digital
    en = col["energy"]
    act = np.asarray(en["activity"], float)
    e_bl = np.asarray(en["e_bitline_j"], float)
    e_bl_act = float(np.interp(input_activity, act, e_bl))
    e_bl0 = float(e_bl[np.argmin(act)])
    n_steps = int(col["timing"]["n_ramp_steps"])
    v_cal = abs(float(ramp["v_cal_step_v"]))
    v_ramp = n_steps * float(ramp["lsb_v"])
    e_cal_col = e_bl0 * v_cal / (v_cal + v_ramp)
    e_ramp_col = e_bl0 * v_ramp / (v_cal + v_ramp) / n_steps
    tt = ramp["timing"]["corners"]["tt"]
    by4 = tt["by_n"][str(tt.get("ramp_n_units", 4))]
    e_row_pulse = float(by4["e_wordline_j"] + by4["e_predriver_j"])
    n_cal = int(ramp["settings"]["n_cal"])
    geo = col["geometry"]
    n_mac_rows = int(geo["n_elements"]) * len(geo["pair_scales"])
    slow = dig["corners"][dig.get("slow_corner", "ss")]
    e_count = float(slow["e_per_count_j"])
    e_grant = float(slow["e_per_grant_tree_j"] + slow["e_per_grant_count_j"] + slow["e_per_encode_j"])
    e_ff = e_count / 5
    e_cmpx = (2 * sort_key_bits + 5) * e_ff
    e_write = p.c_bitline_eff_f * p.v_precharge_v ** 2
    e = MacroEnergy(
        e_mac_bitline_col_j=max(e_bl_act - e_bl0, 0.0), e_mac_row_pulse_j=e_row_pulse,
        n_mac_row_pulses=input_activity * n_mac_rows, e_cal_bitline_col_j=e_cal_col,
        e_cal_rows_j=n_cal * e_row_pulse, e_ramp_bitline_col_j=e_ramp_col, e_ramp_step_j=float(tt["e_step_j"]),
        e_decision_j=float(comp["e_per_decision_j"]), e_count_j=e_count, e_grant_j=e_grant, e_cmpx_j=e_cmpx,
        e_nl_value_j=e_nl_value_j, e_nl_row_j=e_nl_row_j, e_write_cell_j=e_write,
        cells_per_key=2 * n_mac_rows)
    spice = "our SPICE artefact (65 nm PTM, tt unless noted)"
    prov = {
        "e_mac_bitline_col_j": f"{spice}: column.energy.e_bitline_j at the input activity minus at none",
        "e_mac_row_pulse_j": f"{spice}: ramp.timing tt wordline + predriver energy of one {p.n_columns}-column row pulse",
        "n_mac_row_pulses": f"input activity × {geo['n_elements']} elements × {len(geo['pair_scales'])} pairs",
        "e_cal_bitline_col_j": f"{spice}: column.energy at no input, split by the calibration/ramp swings",
        "e_cal_rows_j": f"{spice}: n_cal row pulses",
        "e_ramp_bitline_col_j": f"{spice}: column.energy at no input, ramp share / 32",
        "e_ramp_step_j": f"{spice}: ramp.timing.corners.tt.e_step_j (generator, register, driver, wordline)",
        "e_decision_j": f"{spice}: comparator.e_per_decision_j (1.0 V StrongARM)",
        "e_count_j": f"{spice}: digital ss e_per_count_j",
        "e_grant_j": f"{spice}: digital ss arbiter tree + k-count + encode per grant",
        "e_cmpx_j": f"derived from {spice}: (2×{sort_key_bits} + 5) flip-flop events at e_per_count_j/5",
        "e_nl_value_j": f"{HOROWITZ_2014}: LUT exp + 16-bit add + 16×8 multiply [our sum]",
        "e_nl_row_j": f"{HOROWITZ_2014}: 16-bit reciprocal ≈ one 32-bit multiply",
        "e_write_cell_j": f"derived from {spice}: C_bitline,eff × V_precharge²",
    }
    return e, prov

