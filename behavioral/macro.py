"""Calibrated behavioural model of the Topkima macro: top-k selection inside the ramp ADC.

What is modelled (every parameter from the calibration artefact, see :mod:`.params`):

* **Crossbar.** Key level k ∈ −K…K of element e is stored as three ternary pair digits
  ``sign(k)·bit_p(|k|)`` (pulse scales 1, 2, 4); a signed input q opens RWL+ (q > 0) or
  RWL− (q < 0) of every pair of element e for ``|q|·2^p`` PWM units. A pulsed read stack
  storing 1 discharges its bitline by ``m·(slope·w + offset)`` nominal-cell units (m: its
  frozen current factor from its two devices' threshold shifts); a pulsed stack storing 0
  takes the small charge-share packet ``share(w)·(1 + α(w)·Δa + β(w)·Δs)`` (its access and
  storage devices' threshold shifts; α, β from SPICE Monte Carlo of the packet). Idle stacks leak (units per PWM unit
  per stack, by stored value). A bitline's voltage is the calibrated discharge curve f of
  its accumulated units — exact for cells whose current depends only on V(RBL).
* **In-memory ADC.** The calibration phase adds Σ m_cal·(slope·t_cal + offset) units to
  RBL_R; ramp step j adds m_ramp_j·(slope·t_ramp + offset) units to RBL_L. The column's
  comparator fires at the first ramp cycle j (1…32) at which
  f(U_R(j)) − f(U_L(j)) > V_os(CM) + σ_n·z_j, z_j a standard normal. V_os is the frozen
  offset of that comparator, piecewise linear in the bitlines' common mode CM between the
  common modes the artefact characterises (from the comparator's linear offset model of its
  device threshold shifts).
* **Noise window.** Comparator noise (σ_n ≈ 0.1 LSB) is drawn for the four decisions around
  the noiseless crossing j0 (j0−2 … j0+1); decisions further away are more than one LSB
  (≈ 10 σ_n) from the threshold and are taken as deterministic. The slow reference in the
  tests applies exactly this rule, cycle by cycle.
* **Arbiter / early stop.** The first k firings are granted, ties to lower addresses; the ramp
  stops at the cycle of the k-th grant. Sub-top-k: each array converts its own keys with its
  own quota; results are concatenated.

* **Batches.** One call converts many query-row sets against their own key sets (leading
  dimensions, one key set each). With ``key_mask`` a batch may be ragged: each key set is
  written only up to the last key any of its rows may see and only its rows up to the last one
  that sees a key are applied (padding is not converted and costs no energy); the others are
  disabled at the arbiter. The comparator noise follows the (batch, row, column) order of the
  converted elements.
* **Precision.** The MAC's products are float32 (:data:`MAC_DTYPE`: ~1e-8 V on a bitline);
  everything after it is float64.

Energy per query row and array: bitline restore V_pre·C_eff·ΣΔV, wordline pulses, sense-amplifier
decisions (each column is clocked until it fires or the ramp stops), ramp counter per cycle,
arbiter tree + k-counter + encoder per grant. Latency: PWM phase + calibration clock + the
cycles used × 4 ns + the slow-corner arbiter/encoder/counter delay.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from topkima.behavioral.params import MacroParams, params_from_calibration
from topkima.calibration import Calibration

ARRAYS = {
    # columns, key elements per column, pulse scales (ternary pairs per element)
    "256x256": (256, 64, (1, 2, 4)),
    "128x128": (128, 64, (1,)),
}
SUBTOPK_PRESETS = {
    # SPEC §3: BERT-base, sequence 384 — 256 + 128 columns with quotas 3 + 2;
    # 128 × 128 arrays, three arrays, quotas 2 + 2 + 1.
    "3+2": ("256x256", (256, 128), (3, 2)),
    "2+2+1": ("128x128", (128, 128, 128), (2, 2, 1)),
}
N_STACKS = 4  # per MAC row: (L,+,RBL_L), (L,−,RBL_R), (R,+,RBL_R), (R,−,RBL_L)


@dataclass
class TopkResult:
    """Per query row: selected key indices and codes (−1 where fewer than k fired), cycles, energy, latency."""

    indices: np.ndarray
    codes: np.ndarray
    cycles: np.ndarray      #: ramp cycles used (max over the arrays that worked in parallel)
    energy_j: np.ndarray
    latency_s: np.ndarray
    n_ramp_steps: int = 32
    firing_cycle: np.ndarray | None = field(default=None, repr=False)  #: (..., n_keys), 33 = never

    @property
    def alpha(self) -> np.ndarray:
        """Early-stop fraction of the full ramp."""
        return self.cycles / self.n_ramp_steps


@dataclass(frozen=True)
class TileDraws:
    """Frozen mismatch of one array's columns (threshold shifts in V, and SA offsets)."""

    mac_dvt_v: np.ndarray    #: (n_cols, rows, 4, 2)
    cal_dvt_v: np.ndarray    #: (n_cols, 32, 2)
    ramp_dvt_v: np.ndarray   #: (n_cols, 32, 2)
    sa_offset_v: np.ndarray  #: (n_cols, n_vcm): each comparator's offset at the artefact's CM grid


@dataclass(frozen=True)
class InsituCorrection:
    """What the attached sense amplifier does to the floating bitlines, fitted to SPICE.

    The discharge curve is measured on bitlines loaded by the sense amplifier's reset input
    capacitance only. In the macro the amplifier's input pair also couples the two floating
    bitlines (through its common source while the tail is off), its first evaluation leaves a
    kick residue, and its clocking adds a slow drift. Per bitline X ∈ {L, R}:

        V_X ← V_X + c_X · [1, j − 1, [j = 1], V0 − V_L, V0 − V_R]

    at the sense instant of ramp cycle j (V0: the precharged level), least-squares fitted to
    the artefact's nominal column + sense-amplifier conversions (``column.insitu_conversions``,
    12 runs × 32 instants in a full calibration). Their sense-amplifier energies give the energy
    per decision as a line in the bitlines' common mode, e = a + b·CM.
    """

    coef_l_v: np.ndarray       #: (5,) correction of V_L, terms as above
    coef_r_v: np.ndarray       #: (5,) correction of V_R
    rms_residual_v: float      #: what the fit leaves, over all runs and instants
    e_decision_a_j: float      #: energy per decision at CM = 0
    e_decision_b_j_per_v: float  #: its slope in the common mode

    def _offsets(self, v0: float):
        """c_X(j) for j = 0…33 (the constant terms of :meth:`apply`), computed once per v0."""
        cache = self.__dict__.setdefault("_offset_cache", {})   # frozen: a plain per-instance memo
        if v0 not in cache:
            cl, cr = self.coef_l_v, self.coef_r_v
            jj = np.arange(0, 34)
            cache[v0] = (cl[0] + cl[1] * (jj - 1) + cl[2] * (jj == 1) + (cl[3] + cl[4]) * v0,
                         cr[0] + cr[1] * (jj - 1) + cr[2] * (jj == 1) + (cr[3] + cr[4]) * v0)
        return cache[v0]

    def apply(self, j, v_l: np.ndarray, v_r: np.ndarray, v0: float):
        # the same terms regrouped: V_X ← g_XL·V_L + g_XR·V_R + c_X(j), c_X tabulated over j
        cl, cr = self.coef_l_v, self.coef_r_v
        c_l, c_r = self._offsets(v0)
        if np.ndim(j) == 0:
            off_l, off_r = c_l[int(j)], c_r[int(j)]
        else:
            off_l, off_r = c_l.take(j), c_r.take(j)
        # in place, with the same operations in the same order as the two lines written out:
        # (1 − cl3)·V_L − cl4·V_R + c_L(j) and −cr3·V_L + (1 − cr4)·V_R + c_R(j)
        new_l = (1 - cl[3]) * v_l
        new_l -= cl[4] * v_r
        new_l += off_l
        new_r = -cr[3] * v_l
        new_r += (1 - cr[4]) * v_r
        new_r += off_r
        return new_l, new_r

    def e_per_decision_j(self, v_cm: np.ndarray) -> np.ndarray:
        return self.e_decision_a_j + self.e_decision_b_j_per_v * np.asarray(v_cm)


def fit_insitu_correction(params: MacroParams) -> InsituCorrection:
    """Fit :class:`InsituCorrection` to the artefact's in-situ conversions (nominal devices)."""
    runs, (n_cal, t_cal, t_ramp) = params.insitu
    p = replace(params, n_cal=n_cal, t_cal_units=t_cal, t_ramp_units=t_ramp)
    engine = _Engine(p, "256x256", noise=False, linear=False)
    tile = _Tile(p, engine.n_cols, engine.n_elements, engine.scales, None)
    n_runs = len(runs)
    if n_runs > engine.n_cols:
        raise ValueError("more in-situ runs than columns of one array")
    # run r: its keys in column r, its query in row r; the model's units are then u[r, r]
    kl = np.zeros((engine.n_elements, engine.n_cols), dtype=np.int64)
    q = np.zeros((n_runs, engine.n_elements), dtype=np.int64)
    for r, run in enumerate(runs):
        kl[: run["keys"].size, r] = run["keys"]
        q[r, : run["inputs"].size] = run["inputs"]
    q, kl = engine.check_inputs(q, kl, None)
    u_l, u_r = engine.mac_units(q, kl, tile)
    leak = engine.leak_rates(kl, tile)
    diag = np.arange(n_runs)
    u_l, u_r = u_l[diag, diag][:, None], u_r[diag, diag][:, None]
    v0 = float(p.curve_v[0])
    feats, res_l, res_r = [], [], []
    for j in range(1, p.n_ramp_steps + 1):
        t_units = (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * j + p.t_sa_clk_in_cycle_s) / p.t_unit_s
        v_l = engine.f(u_l[:, 0] + leak[diag] * t_units + tile.u_ramp_cum[diag, j])
        v_r = engine.f(u_r[:, 0] + leak[diag] * t_units + tile.u_cal[diag])
        feats.append(np.column_stack([np.ones(n_runs), np.full(n_runs, j - 1.0), np.full(n_runs, float(j == 1)),
                                      v0 - v_l, v0 - v_r]))
        res_l.append(np.array([run["v_rbl_l_at_sa_clk_v"][j - 1] for run in runs]) - v_l)
        res_r.append(np.array([run["v_rbl_r_at_sa_clk_v"][j - 1] for run in runs]) - v_r)
    a = np.concatenate(feats)
    b_l, b_r = np.concatenate(res_l), np.concatenate(res_r)
    coef_l = np.linalg.lstsq(a, b_l, rcond=None)[0]
    coef_r = np.linalg.lstsq(a, b_r, rcond=None)[0]
    rms = float(np.sqrt(np.mean(np.concatenate([b_l - a @ coef_l, b_r - a @ coef_r]) ** 2)))
    # energy per decision against the measured common mode (mean over the 32 instants)
    cm = np.array([0.5 * (run["v_rbl_l_at_sa_clk_v"] + run["v_rbl_r_at_sa_clk_v"]).mean() for run in runs])
    e_dec = np.array([run["e_sa_32_decisions_j"] / p.n_ramp_steps for run in runs])
    if n_runs >= 3 and np.ptp(cm) > 0.02:
        slope, intercept = np.polyfit(cm, e_dec, 1)
    else:  # too little spread for a slope: the mean
        slope, intercept = 0.0, float(e_dec.mean())
    return InsituCorrection(coef_l, coef_r, rms, float(intercept), float(slope))


class _Tile:
    """Per-column quantities of one array instance, precomputed once."""

    #: what depends on the devices only, shared by the same array under other ADC windows
    _DEVICE_FIELDS = ("m_stack", "dvt_a", "dvt_s", "m_cal", "m_ramp", "vcm_breaks", "os_a", "os_b", "v_os_mid",
                      "_mac_cache")

    def __init__(self, p: MacroParams, n_cols: int, n_elements: int, scales: tuple[int, ...], draws: TileDraws | None,
                 like: "_Tile | None" = None):
        self.n_cols, self.n_elements, self.scales = n_cols, n_elements, scales
        if like is not None:
            for name in self._DEVICE_FIELDS:
                setattr(self, name, getattr(like, name))
        else:
            self._devices(p, n_cols, n_elements * len(scales), draws)
        self._window(p, n_cols)

    def _devices(self, p: MacroParams, n_cols: int, rows: int, draws: TileDraws | None) -> None:
        if draws is None:
            self.m_stack = np.ones((rows, N_STACKS, n_cols))
            self.dvt_a = self.dvt_s = np.zeros((rows, N_STACKS, n_cols))
            self.m_cal = np.ones((n_cols, 32))
            self.m_ramp = np.ones((n_cols, p.n_ramp_steps))
            v_os = np.zeros((n_cols, p.sa_vcm_v.size))
        else:
            d = draws.mac_dvt_v
            self.m_stack = np.transpose(p.current_factor(d[..., 0], d[..., 1]), (1, 2, 0))  # (rows, 4, n_cols)
            self.dvt_a = np.transpose(d[..., 0], (1, 2, 0))   # access / storage threshold shifts,
            self.dvt_s = np.transpose(d[..., 1], (1, 2, 0))   # for the charge-share packets
            self.m_cal = p.current_factor(draws.cal_dvt_v[..., 0], draws.cal_dvt_v[..., 1])
            self.m_ramp = p.current_factor(draws.ramp_dvt_v[..., 0], draws.ramp_dvt_v[..., 1])[:, : p.n_ramp_steps]
            v_os = np.asarray(draws.sa_offset_v, float).reshape(n_cols, p.sa_vcm_v.size)
        # offset piecewise linear in common mode: per column and segment, V_os = a + b·CM
        self.vcm_breaks = p.sa_vcm_v[1:-1]
        g = p.sa_vcm_v
        self.os_b = (v_os[:, 1:] - v_os[:, :-1]) / (g[1:] - g[:-1])      # (n_cols, n_seg)
        self.os_a = v_os[:, :-1] - self.os_b * g[:-1]
        # at mid common mode (only used to start the crossing search): the segment holding 0.35 V
        mid_seg = min(int(np.searchsorted(self.vcm_breaks, 0.35)), self.os_a.shape[1] - 1) if self.os_a.shape[1] else 0
        self.v_os_mid = (self.os_a[:, mid_seg] + self.os_b[:, mid_seg] * 0.35 if self.os_a.shape[1]
                         else v_os[:, 0].astype(float))
        self._mac_cache = {}

    def _window(self, p: MacroParams, n_cols: int) -> None:
        m_cal, m_ramp = self.m_cal, self.m_ramp
        unit_cal = p.pulse_slope * p.t_cal_units + p.pulse_offset_units
        unit_ramp = p.pulse_slope * p.t_ramp_units + p.pulse_offset_units
        self.u_cal = m_cal[:, : p.n_cal].sum(axis=1) * unit_cal if p.t_cal_units > 0 else np.zeros(n_cols)
        # cumulative ramp units after step j (j = 0 … 32), per column
        self.u_ramp_cum = np.concatenate([np.zeros((n_cols, 1)), np.cumsum(m_ramp * unit_ramp, axis=1)], axis=1)
        self.u_ramp_flat = self.u_ramp_cum.reshape(-1)   # (column, cycle) → column·33 + cycle
        # what the ADC's crossing search needs per column, in one table (see _ColumnData)
        self.column_table = np.column_stack([self.u_cal, self.u_ramp_cum[:, -1], self.v_os_mid])

    def key_blocks(self, rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The MAC's key-side matrix of the first ``rows`` cell rows and ``n`` columns: what each
        read stack contributes per unit of its input block when it stores 0 and when it stores
        1, as two contiguous (rows, 4, 2, 2, n) arrays indexed (row, block type, sign of q,
        bitline: RBL_L, RBL_R, column), in the MAC's precision (:data:`MAC_DTYPE`), the last
        :data:`KEY_BLOCK_WIDTHS_CACHED` (rows, n) kept. Returned as (storing 0, storing 1 − storing 0), so that the MAC writes
        zero + step·[stores 1] with products by 0 and 1 only (exactly one of the two values).

        Block types (the input side's :meth:`_Engine._input_table`): full pulse, charge-share
        packet, its access- and storage-device slopes. With q > 0 RBL_L reads stack 0 and RBL_R
        stack 2; with q < 0 RBL_R reads stack 1 and RBL_L stack 3. The stack that stores 1
        takes m·full: [m, 0, 0, 0]; one that stores 0 takes share·(1 + α·Δa + β·Δs):
        [0, 1, Δa, Δs]."""
        widths = self._mac_cache.setdefault("key_block_widths", {})
        if (rows, n) in widths:
            return widths[rows, n]
        blocks = self._mac_cache.get("key_blocks")
        if blocks is None or blocks[0].shape[0] < rows:
            m, da, ds = self.m_stack[:rows], self.dvt_a[:rows], self.dvt_s[:rows]
            zero = np.zeros((rows, 4, 2, 2, self.n_cols))
            one = np.zeros_like(zero)
            for side, stacks in enumerate(((0, 3), (2, 1))):
                for sign, s in enumerate(stacks):   # sign 0: q > 0, 1: q < 0
                    one[:, 0, sign, side] = m[:, s]
                    zero[:, 1, sign, side] = 1.0
                    zero[:, 2, sign, side] = da[:, s]
                    zero[:, 3, sign, side] = ds[:, s]
            blocks = self._mac_cache["key_blocks"] = (zero.astype(MAC_DTYPE), (one - zero).astype(MAC_DTYPE))
        if len(widths) >= KEY_BLOCK_WIDTHS_CACHED:
            del widths[next(iter(widths))]       # the oldest: attention's size groups span many widths
        cut = widths[rows, n] = tuple(np.ascontiguousarray(x[:rows, ..., :n]) for x in blocks)
        return cut


# Batched key sets per MAC block: the (8·rows, 2n) operand of a chunk stays ~2–4 MB.
MAC_CHUNK_ELEMENTS = 500_000
#: contiguous key-side blocks kept per array (a full-width pair is 3 MB for 96 cell rows)
KEY_BLOCK_WIDTHS_CACHED = 16
#: Precision of the MAC products. float32 rounds a column's accumulated units (≲ 300) to
#: ~1e-5 units, ~1e-8 V on the bitline: 10⁻⁴ of the comparator noise and far below what the
#: model resolves against SPICE; it halves the cost of the attention's largest products. The
#: slow reference in the tests sums in float64; they agree except for decisions within ~1e-7 V
#: of the threshold.
MAC_DTYPE = np.float32


def _offset(tile: "_Tile", cm, cols):
    """Comparator offset at common mode ``cm`` for columns ``cols`` (end segments extrapolate)."""
    seg = np.searchsorted(tile.vcm_breaks, cm) if tile.vcm_breaks.size else np.zeros(np.shape(cm), np.int64)
    return tile.os_a[cols, seg] + tile.os_b[cols, seg] * cm


class _ColumnData:
    """A tile's per-column quantities for a set of (row, column) elements, gathered once so that
    the repeated evaluations of the crossing search do not gather them again.

    Either per element (``cols`` the column of each element of a flat list) or, from
    :meth:`first_columns`, the array's first n columns as (n,) vectors broadcast along the rows
    of a (rows, n) grid (no gather)."""

    def __init__(self, tile: "_Tile", cols: np.ndarray | None, n: int | None = None):
        self.tile = tile
        self.grid_n = n if cols is None else None      # the grid's width, or None (a flat list)
        self.cols = cols
        # one gather of the tile's per-column table: u_cal, ramp end, V_os at mid CM
        t = tile.column_table[:n] if cols is None else tile.column_table.take(cols, axis=0)
        self.u_cal, self.u_ramp_end, self.v_os_mid = t[:, 0], t[:, 1], t[:, 2]
        column = np.arange(n) if cols is None else cols
        self.ramp_base = column * tile.u_ramp_cum.shape[1]      # (column, cycle 0) in u_ramp_flat
        self.segment_base = column * tile.os_a.shape[1]         # (column, segment 0) in os_a, os_b
        self.breaks = tile.vcm_breaks

    @classmethod
    def first_columns(cls, tile: "_Tile", n: int) -> "_ColumnData":
        return cls(tile, None, n)

    def u_ramp_at(self, j) -> np.ndarray:
        """The ramp's cumulative units after cycle j (broadcast with the elements)."""
        return self.tile.u_ramp_flat.take(self.ramp_base + j)

    def subset(self, flat_index: np.ndarray) -> "_ColumnData":
        """The same quantities for some elements, by their index in the flat (row-major) list."""
        if self.grid_n is not None:
            return _ColumnData(self.tile, flat_index % self.grid_n)
        return _ColumnData(self.tile, self.cols[flat_index])

    def offset(self, cm: np.ndarray) -> np.ndarray:
        """As :func:`_offset`: the segment of each element's common mode, then a + b·CM (the
        segment's a and b gathered by index: a data-dependent np.where mispredicts)."""
        if self.breaks.size == 1:   # two segments (the artefact's three CM points): a comparison
            seg = cm > self.breaks[0]
        else:
            seg = np.searchsorted(self.breaks, cm)
        at = self.segment_base + seg
        return self.tile.os_a.reshape(-1).take(at) + self.tile.os_b.reshape(-1).take(at) * cm


class _Engine:
    """Shared vectorised arithmetic for instances (frozen mismatch) and the ideal macro."""

    def __init__(self, params: MacroParams, array: str, noise: bool, linear: bool,
                 insitu: "InsituCorrection | None" = None):
        if array not in ARRAYS:
            raise ValueError(f"unknown array {array!r}; choose one of {', '.join(ARRAYS)}")
        self.p, self.array, self.noise, self.linear = params, array, noise, linear
        self.n_cols, self.n_elements, self.scales = ARRAYS[array]
        p = params
        self.k_max = p.k_max if len(self.scales) == 3 else 1
        if linear:  # the ideal macro: the curve's initial slope, extended without saturation
            slope = (p.curve_v[0] - p.v_of_units(200.0)) / 200.0
            self._build_table(p.curve_units, p.curve_v[0] - slope * p.curve_units)
        else:
            self._build_table(p.curve_units, p.curve_v)
        # leak rates (units per PWM unit): the ideal macro has none
        self._leak = (0.0, 0.0) if linear else (p.leak1_units_per_unit, p.leak0_units_per_unit)
        self.insitu = None if linear else insitu
        self._a_table = None
        self._stores_one_table = None
        self._t_units = None

    def e_per_decision_j(self, v_cm: np.ndarray) -> np.ndarray:
        """Sense-amplifier energy per decision at the bitlines' common mode."""
        if self.insitu is None:
            return np.full(np.shape(v_cm), self.p.e_per_decision_j)
        return self.insitu.e_per_decision_j(v_cm)

    # --- bitline voltages at a sense instant -------------------------------------------------
    def bitlines(self, j, u_l: np.ndarray, u_r: np.ndarray):
        """(V_L, V_R) at the sense instant of ramp cycle j from the accumulated units.

        The discharge curve f, then the in-situ correction (:class:`InsituCorrection`) for what
        the attached sense amplifier does to the floating bitlines.
        """
        v_l, v_r = self.f(u_l), self.f(u_r)
        if self.insitu is None:
            return v_l, v_r
        return self.insitu.apply(j, v_l, v_r, self.p.curve_v[0])

    # --- the discharge curve, tabulated finely ---------------------------------------------
    #: table resolution (units): the curve is looked up, not interpolated, at 1/256 unit
    #: (≤ 2.5 µV at ~0.6 mV per unit, ≪ the 0.3 mV comparator noise); the reference uses the same f
    TABLE_STEP_UNITS = 1.0 / 256

    def _build_table(self, curve_units: np.ndarray, curve_v: np.ndarray) -> None:
        grid = np.arange(0.0, curve_units[-1] + self.TABLE_STEP_UNITS, self.TABLE_STEP_UNITS)
        self._table = np.interp(grid, curve_units, curve_v)
        self._table_scale = 1.0 / self.TABLE_STEP_UNITS
        self._table_last = self._table.size - 1
        v_grid = np.linspace(self._table[-1], self._table[0], 8193)
        self._inv_v0, self._inv_dv = float(v_grid[0]), float(v_grid[1] - v_grid[0])
        self._inv_table = np.interp(-v_grid, -curve_v, curve_units).astype(np.float32)

    def f(self, units: np.ndarray) -> np.ndarray:
        """V(RBL) after ``units`` accumulated units (table lookup; flat beyond the table)."""
        x = np.asarray(np.multiply(units, self._table_scale, dtype=np.float64))
        np.clip(x, 0, self._table_last, out=x)
        return self._table.take(x.astype(np.intp))

    def f_inv(self, v: np.ndarray) -> np.ndarray:
        """Approximate inverse of f (only used to start the crossing search)."""
        x = (np.asarray(v, dtype=np.float32) - self._inv_v0) / self._inv_dv
        idx = np.clip(x, 0, self._inv_table.size - 1).astype(np.int32)
        return self._inv_table[idx]

    # --- inputs ----------------------------------------------------------------------------
    def check_inputs(self, q_codes, k_levels, k: int | None, n_keys_needed: int | None = None):
        q = np.asarray(q_codes)
        kl = np.asarray(k_levels)
        for name, arr in (("q_codes", q), ("k_levels", kl)):
            if arr.dtype.kind == "f":
                if not np.all(np.isfinite(arr)):
                    raise ValueError(f"{name} contains NaN or inf")
                if not np.all(arr == np.round(arr)):
                    raise ValueError(f"{name} must hold integers (quantised codes)")
            elif arr.dtype.kind not in "iub":
                raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
        if kl.ndim < 2:
            raise ValueError(f"k_levels must be (d, n_keys) or batched (..., d, n_keys), got shape {kl.shape}")
        if q.ndim < 1 or q.shape[-1] != kl.shape[-2]:
            raise ValueError(f"q_codes (..., d) and k_levels (..., d, n_keys) disagree on d: {q.shape} vs {kl.shape}")
        if kl.ndim > 2:
            try:
                np.broadcast_shapes(q.shape[:-2], kl.shape[:-2])
            except ValueError:
                raise ValueError(f"batched k_levels {kl.shape} need leading dimensions that broadcast with those "
                                 f"of q_codes {q.shape} (all but the last two)") from None
            if q.ndim < 2:
                raise ValueError("batched k_levels need q_codes of shape (..., rows, d)")
        q, kl = q.astype(np.int64), kl.astype(np.int64)  # before abs(): int8(-128) has no positive abs
        d = kl.shape[-2]
        if d > self.n_elements:
            raise ValueError(f"d = {d} key elements do not fit one column of a {self.array} array "
                             f"({self.n_elements} elements)")
        if np.abs(q).max(initial=0) > self.p.q_max:
            raise ValueError(f"q_codes must lie in -{self.p.q_max}..{self.p.q_max} (sign + 5-bit PWM magnitude); "
                             f"got |q| up to {np.abs(q).max()}")
        if np.abs(kl).max(initial=0) > self.k_max:
            raise ValueError(f"k_levels must lie in -{self.k_max}..{self.k_max} for a {self.array} array; "
                             f"got |k| up to {np.abs(kl).max()}")
        if k is not None:
            if not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"k must be a positive integer, got {k!r}")
        return q, kl

    # --- MAC phase -------------------------------------------------------------------------
    def _input_table(self, dtype=np.float64) -> np.ndarray:
        """Per input code q (−q_max…q_max) and pulse scale: the units a pulsed stack storing 1
        takes (``full``), the charge-share packet of one storing 0 (``share``) and its mismatch
        slopes (share·α, share·β per V of access / storage threshold shift), split by the sign
        of q: (2·q_max + 1, n_scales, 8) = [full·pos, full·neg, share·pos, share·neg,
        share·α·pos, share·α·neg, share·β·pos, share·β·neg]."""
        if self._a_table is None:
            p = self.p
            codes = np.arange(-p.q_max, p.q_max + 1)
            width = (np.abs(codes)[:, None] * np.asarray(self.scales)[None, :]).astype(float)
            full = np.where(width > 0, p.pulse_slope * width + p.pulse_offset_units, 0.0)
            share = p.share(width) if not self.linear else np.zeros_like(width)
            alpha, beta = p.share_mismatch(width)
            pos, neg = (codes > 0)[:, None], (codes < 0)[:, None]
            self._a_table = np.stack([full * pos, full * neg, share * pos, share * neg, share * alpha * pos,
                                      share * alpha * neg, share * beta * pos, share * beta * neg], axis=-1)
            self._a_table_cast = {np.dtype(np.float64): self._a_table}
        dtype = np.dtype(dtype)
        if dtype not in self._a_table_cast:
            self._a_table_cast[dtype] = self._a_table.astype(dtype)
        return self._a_table_cast[dtype]

    def mac_units(self, q: np.ndarray, kl: np.ndarray, tile: _Tile):
        """Accumulated units (U_L, U_R) of each (row, column) at the end of the MAC phase.

        ``q`` (..., rows, d), ``kl`` (d, n) or (..., d, n) with broadcasting leading dimensions,
        both as :meth:`check_inputs` returns them (in range: the key side is tabulated per level).
        Batched key sets are processed a few at a time so that the 8-block operand stays a few
        MB: large fresh temporaries cost more in page faults than in arithmetic.
        """
        n = kl.shape[-1]
        if kl.ndim == 2:
            return self._mac_block(q, kl, tile)
        lead = np.broadcast_shapes(q.shape[:-2], kl.shape[:-2])
        qb = np.broadcast_to(q, (*lead, *q.shape[-2:])).reshape(-1, *q.shape[-2:])
        kb = np.broadcast_to(kl, (*lead, *kl.shape[-2:])).reshape(-1, *kl.shape[-2:])
        u_l = np.empty((qb.shape[0], q.shape[-2], n))
        u_r = np.empty_like(u_l)
        per_set = 8 * kl.shape[-2] * len(self.scales) * 2 * n
        step = max(1, MAC_CHUNK_ELEMENTS // per_set)
        for s0 in range(0, qb.shape[0], step):
            u_l[s0:s0 + step], u_r[s0:s0 + step] = self._mac_block(qb[s0:s0 + step], kb[s0:s0 + step], tile)
        return u_l.reshape(*lead, *u_l.shape[1:]), u_r.reshape(*lead, *u_r.shape[1:])

    def _mac_block(self, q: np.ndarray, kl: np.ndarray, tile: _Tile):
        d = kl.shape[-2]
        n_s = len(self.scales)
        n = kl.shape[-1]                                              # columns in use (≤ the array's)
        rows = d * n_s
        # the key side: per (cell row, block, sign of q, bitline, column) the stack's value
        # storing 1 or storing 0 (see _Tile.key_blocks); which stacks store 1 follows from the
        # key level's digits, tabulated per level (_Engine._stores_one)
        lead = kl.shape[:-2]
        stores_one = self._stores_one().take(kl + self.k_max, axis=0)      # (..., d, n, n_s, 2, 2)
        stores_one = np.moveaxis(stores_one, -4, -1).reshape(*lead, rows, 1, 4 * n)
        zero, step = (x.reshape(rows, 4, 4 * n) for x in tile.key_blocks(rows, n))
        b = np.multiply(step, stores_one)       # zero + (one − zero)·[stores 1]: products with 0 and 1
        b += zero
        b = b.reshape(*kl.shape[:-2], rows * 8, 2 * n)               # columns: RBL_L of each key, then RBL_R
        codes = None
        if kl.ndim == 2:   # the input codes in use (q is range-checked: a count per code is cheap)
            q_max = self.p.q_max
            codes = np.flatnonzero(np.bincount(q.ravel() + q_max, minlength=2 * q_max + 1)) - q_max
        if codes is not None and codes.size < n_s * 8:
            # few distinct input codes (one key set for all rows): first each element's column
            # contribution per code, C[i, code] = Σ_(pair, block) table·b, then one 0/1 product
            # that picks and sums them per row, d·U instead of 8·d·n_s inner terms
            c = np.matmul(self._input_table(MAC_DTYPE)[codes + self.p.q_max].reshape(1, codes.size, n_s * 8),
                          b.reshape(d, n_s * 8, 2 * n))                        # (d, U, 2n)
            q_flat = q.reshape(-1, d)
            pick = np.zeros((q_flat.shape[0], d * codes.size), dtype=MAC_DTYPE)
            slot = np.zeros(2 * self.p.q_max + 1, dtype=np.intp)
            slot[codes + self.p.q_max] = np.arange(codes.size)       # code → its place in `codes`
            pick[np.arange(q_flat.shape[0])[:, None], np.arange(d) * codes.size + slot.take(q_flat + self.p.q_max)] = 1.0
            u = (pick @ c.reshape(d * codes.size, 2 * n)).reshape(*q.shape[:-1], 2 * n)
        else:
            # a = the 8 blocks of _input_table of each (element, pair) row, looked up per input
            # code; the inner index of the product is (cell row, block)
            a = self._input_table(MAC_DTYPE).take(q + self.p.q_max, axis=0).reshape(*q.shape[:-1], rows * 8)
            u = a @ b   # (..., rows, 8·d·n_s) @ (..., 8·d·n_s, 2n)
        u = u.astype(np.float64)    # the ADC's arithmetic stays in float64
        return u[..., :n], u[..., n:]

    def _stores_one(self) -> np.ndarray:
        """Per key level (−k_max…k_max) and scale: whether the stack read by each (sign of q,
        bitline) stores 1, (2·k_max + 1, n_s, 2, 2). Level digits: sign(level)·bit_s(|level|);
        with q > 0 RBL_L reads digit +1 and RBL_R digit −1, with q < 0 the other way round."""
        if self._stores_one_table is None:
            levels = np.arange(-self.k_max, self.k_max + 1)
            bits = (np.abs(levels)[:, None] >> np.arange(len(self.scales))) & 1
            pos, neg = (bits == 1) & (levels[:, None] > 0), (bits == 1) & (levels[:, None] < 0)
            table = np.stack([np.stack([pos, neg], -1), np.stack([neg, pos], -1)], -2)
            self._stores_one_table = table
        return self._stores_one_table

    def leak_rates(self, kl: np.ndarray, tile: _Tile) -> np.ndarray:
        """Leakage (units per PWM unit) of each column's bitlines; both carry Σ|digit| stored 1s."""
        r1, r0 = self._leak
        n_s = len(self.scales)
        ones = self._stores_one().any(axis=(-2, -1)).sum(axis=-1)[self.k_max:]   # stored 1s of |level|
        n1 = ones.take(np.abs(kl)).sum(axis=-2).astype(float)
        n_total = 2 * self.n_elements * n_s + 64   # MAC stacks + one replica port per ADC row
        return r1 * n1 + r0 * (n_total - n1)

    # --- ADC -------------------------------------------------------------------------------
    def g(self, j, u_l0, u_r0, leak, tile: _Tile, cols):
        """V(RBL_R) − V(RBL_L) − V_os(CM) at the sense instant of ramp cycle j (fires when > 0).

        Arguments are matching arrays (``leak`` already per element); ``cols`` is the column of
        each element, or a :class:`_ColumnData` of them gathered once (the crossing search).
        """
        c = cols if isinstance(cols, _ColumnData) else _ColumnData(tile, cols)
        lk = leak * self._t_units_table().take(j)
        u_l = u_l0 + lk          # (u0 + leak) + ramp, in place: the same sums as written out
        u_l += c.u_ramp_at(j)
        u_r = u_r0 + lk
        u_r += c.u_cal
        v_l, v_r = self.bitlines(j, u_l, u_r)
        cm = v_r + v_l
        cm *= 0.5
        g = v_r - v_l
        g -= c.offset(cm)
        return g

    def _t_units_table(self) -> np.ndarray:
        """Time of ramp cycle j's sense instant from the start of the MAC phase, in PWM units."""
        if self._t_units is None:
            p = self.p
            j = np.arange(p.n_ramp_steps + 2)
            self._t_units = (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * j + p.t_sa_clk_in_cycle_s) / p.t_unit_s
        return self._t_units

    def noise_half_window(self) -> int:
        """Decisions j0−h … j0+h−1 around the noiseless crossing j0 get noise (h ≥ 1).

        h is chosen so that every other decision is more than 6 σ_n from the threshold:
        one ramp step (≥ 0.9 LSB) per cycle away from it.
        """
        p = self.p
        return max(1, int(np.ceil(6 * p.sa_noise_sigma_v / (0.9 * p.lsb_v))))

    def crossing_estimate(self, ul, ur, lk, cols: _ColumnData) -> np.ndarray:
        """First guess of the noiseless crossing cycle (1…33) of each element, from the units
        RBL_L must reach at mid-ramp and the column's mean step (arrays matching ``cols``)."""
        p = self.p
        n_steps = p.n_ramp_steps
        per_cycle = cols.u_ramp_end / n_steps + lk * (p.t_clk_ima_s / p.t_unit_s)
        mid = n_steps // 2
        t_mid = (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * mid + p.t_sa_clk_in_cycle_s) / p.t_unit_s
        target = self.f_inv(self.f(ur + lk * t_mid + cols.u_cal) - cols.v_os_mid)
        base = ul + lk * t_mid + cols.u_ramp_at(mid) - mid * per_cycle
        return np.clip(np.ceil((target - base) / per_cycle), 1, n_steps + 1).astype(np.int64)

    def firing_cycles(self, u_l0, u_r0, leak, tile: _Tile, z=None, cols: _ColumnData | None = None):
        """First firing cycle (1…32, 33 = never) of every (row, column).

        ``u_l0``, ``u_r0`` (..., n) over the array's first n columns, ``leak`` broadcasting with
        them; or flat (m,) lists of elements with ``cols`` their columns. The noiseless crossing
        j0 (g increases with j) is estimated (:meth:`crossing_estimate`) and corrected by stepping until g(j0−1) ≤ v_os < g(j0); the decisions of the noise window
        then use σ_n·z (z: (..., 2h) per element).
        """
        p = self.p
        n_steps = p.n_ramp_steps
        shape = u_l0.shape
        if cols is None:   # the whole grid as (rows, n) with the column quantities broadcast along the rows
            n = shape[-1]
            ul, ur = u_l0.reshape(-1, n), u_r0.reshape(-1, n)
            lk = np.ascontiguousarray(np.broadcast_to(leak, shape)).reshape(-1, n)
            cols = _ColumnData.first_columns(tile, n)
        else:
            ul, ur, lk = u_l0, u_r0, np.broadcast_to(leak, shape)
        j0 = self.crossing_estimate(ul, ur, lk, cols)
        g_hi, g_lo = self._g_pair(j0, ul, ur, lk, tile, cols)
        # from here on, flat views; the corrections gather their own columns
        j0, g_hi, g_lo = j0.reshape(-1), g_hi.reshape(-1), g_lo.reshape(-1)
        ul, ur, lk = ul.reshape(-1), ur.reshape(-1), np.ascontiguousarray(lk).reshape(-1)
        wrong = np.nonzero(((g_hi <= 0) & (j0 <= n_steps)) | ((g_lo > 0) & (j0 > 1)))[0]
        newton_steps = 3
        while wrong.size:  # mis-estimated crossings: a secant jump, then one cycle at a time
            up = (g_hi[wrong] <= 0) & (j0[wrong] <= n_steps)
            if newton_steps:
                # g grows by about (g_hi − g_lo) per cycle: jump to where that line crosses zero
                jw = j0[wrong]
                edge = (jw <= 1) | (jw > n_steps)   # there g_hi and g_lo are the same decision
                slope = np.where(edge, p.lsb_v, np.maximum(g_hi[wrong] - g_lo[wrong], 0.25 * p.lsb_v))
                jump = np.where(up, np.ceil(-g_hi[wrong] / slope), -np.ceil(g_lo[wrong] / slope))
                step = np.where(up, np.clip(jump, 1, n_steps), np.clip(jump, -n_steps, -1)).astype(np.int64)
                newton_steps -= 1
            else:
                step = np.where(up, 1, -1)
            j0[wrong] = np.clip(j0[wrong] + step, 1, n_steps + 1)
            g_hi[wrong], g_lo[wrong] = self._g_pair(j0[wrong], ul[wrong], ur[wrong], lk[wrong], tile,
                                                    cols.subset(wrong))
            keep = ((g_hi[wrong] <= 0) & (j0[wrong] <= n_steps)) | ((g_lo[wrong] > 0) & (j0[wrong] > 1))
            wrong = wrong[keep]
        if z is None:
            return j0.reshape(shape)
        h = z.shape[-1] // 2
        zz = z.reshape(-1, 2 * h)
        sigma = p.sa_noise_sigma_v
        result = np.minimum(j0 + h, n_steps + 1)
        grid = (lambda x: x.reshape(-1, cols.grid_n)) if cols.grid_n is not None else (lambda x: x)  # noqa: E731
        # the earliest firing decision wins: a minimum over the decisions, each moved past every
        # result when it does not fire (arithmetic: a data-dependent np.where mispredicts)
        beyond = n_steps + 1 + 2 * h
        for w in range(2 * h):
            j = j0 - h + w
            valid = (j >= 1) & (j <= n_steps)
            if w == h:
                g = g_hi
            elif w == h - 1:
                g = g_lo
            else:
                g = self.g(grid(np.clip(j, 1, n_steps)), grid(ul), grid(ur), grid(lk), tile, cols).reshape(-1)
            fires = valid & (g + sigma * zz[:, w].astype(np.float64) > 0)
            np.minimum(result, j + beyond * ~fires, out=result)
        return result.reshape(shape)

    def _g_pair(self, j0, ul, ur, lk, tile, cols):
        """g at cycles j0 and j0 − 1 (cycle 0 and 33 are clamped: only used where valid)."""
        n_steps = self.p.n_ramp_steps
        g_hi = self.g(np.minimum(j0, n_steps), ul, ur, lk, tile, cols)
        g_lo = self.g(np.maximum(j0 - 1, 1), ul, ur, lk, tile, cols)
        return g_hi, g_lo

    def bitline_voltages(self, u_l0, u_r0, leak, tile: _Tile, cycle, cols: _ColumnData | None = None):
        """(V_L, V_R) of every (row, column) at the sense instant of ``cycle`` (broadcast to them);
        ``cols`` as in :meth:`firing_cycles` (None: a grid over the array's first columns)."""
        c = _ColumnData.first_columns(tile, u_l0.shape[-1]) if cols is None else cols
        j = np.asarray(cycle)
        lk = leak * self._t_units_table()[j]
        return self.bitlines(j, u_l0 + lk + c.u_ramp_at(j), u_r0 + lk + c.u_cal)

    def bitline_end_voltages(self, u_l0, u_r0, leak, tile: _Tile, stop_cycle):
        """(V_L, V_R) when the ramp stops (the sense instant of the last cycle used)."""
        return self.bitline_voltages(u_l0, u_r0, leak, tile, np.maximum(stop_cycle, 1)[..., None])


def _used_length(any_used: np.ndarray) -> np.ndarray:
    """1 + the last True index along the last axis (0 where none)."""
    n = any_used.shape[-1]
    return np.where(any_used.any(axis=-1), n - np.argmax(any_used[..., ::-1], axis=-1), 0)


def _size_groups(n_rows: np.ndarray, n_keys: np.ndarray, slack: float = 1.25) -> list[np.ndarray]:
    """Batch elements grouped so that padding each group to its largest member costs at most
    ``slack`` × the group's own conversions (one batched MAC per group)."""
    order = np.argsort(-(n_rows.astype(np.int64) * n_keys), kind="stable")
    groups, current, area, r_max, k_max = [], [], 0, 0, 0
    for b in order:
        r, k = int(n_rows[b]), int(n_keys[b])
        if r == 0 or k == 0:
            continue
        r_new, k_new = max(r_max, r), max(k_max, k)
        if current and (len(current) + 1) * r_new * k_new > slack * (area + r * k):
            groups.append(np.array(current))
            current, area, r_new, k_new = [], 0, r, k
        current.append(b)
        area += r * k
        r_max, k_max = r_new, k_new
    if current:
        groups.append(np.array(current))
    return groups


class _Batch:
    """The query rows and key sets of one top-k call as B batch elements of R rows each (one
    shared key set: B = 1 with all query rows), with what each element uses: its rows up to
    the last one that may see a key, its key columns up to the last key any of its rows may see
    (later key columns are padding: not written to the array)."""

    def __init__(self, q: np.ndarray, kl: np.ndarray, enable: np.ndarray | None):
        d, n_keys = kl.shape[-2:]
        if kl.ndim == 2:
            self.q = q.reshape(1, -1, d)
            self.kl = kl[None]
        else:
            lead = np.broadcast_shapes(q.shape[:-2], kl.shape[:-2])
            self.q = np.broadcast_to(q, (*lead, *q.shape[-2:])).reshape(-1, *q.shape[-2:])
            self.kl = np.broadcast_to(kl, (*lead, d, n_keys)).reshape(-1, d, n_keys)
        self.shared_keys = kl.ndim == 2
        self.n_batch, self.n_rows = self.q.shape[:2]
        self.enable = None if enable is None else enable.reshape(self.n_batch, self.n_rows, n_keys)
        if enable is None:
            self.rows_used = np.full(self.n_batch, self.n_rows)
            self.keys_used = np.full(self.n_batch, n_keys)
        else:
            self.rows_used = _used_length(self.enable.any(axis=-1))
            self.keys_used = _used_length(self.enable.any(axis=-2))
        self.q_pulsed = np.count_nonzero(self.q, axis=-1)      # (B, R) elements with a pulse

    def elements(self, c0: int, c1: int) -> "_Elements":
        n_k = np.clip(self.keys_used - c0, 0, c1 - c0)
        n_r = np.where(n_k > 0, self.rows_used, 0)
        return _Elements(self, c0, c1, n_r, n_k)


class _Elements:
    """The (row, key column) elements one array converts in a call: the whole (B·R, n) grid when
    every batch element uses all its rows and the array's columns, else a flat list of each
    batch element's own rows × columns, batch elements of similar size grouped for the MAC
    (``canonical``: each element's place in (batch, row, column) order, which the comparator
    noise follows, so that a sequence draws alike alone or in any batch)."""

    def __init__(self, batch: _Batch, c0: int, c1: int, n_r: np.ndarray, n_k: np.ndarray):
        self.batch, self.c0, self.n = batch, c0, c1 - c0
        self.n_r, self.n_k = n_r, n_k
        n_rows = batch.n_rows
        self.is_grid = bool(np.all(n_r == n_rows) and np.all(n_k == self.n))
        if self.is_grid:
            return
        counts = n_r * n_k
        offset = np.cumsum(counts) - counts          # each batch element's first place in (b, r, c) order
        self.size = int(counts.sum())
        self.groups, valid_masks, parts = _size_groups(n_r, n_k), [], []
        for ids in self.groups:
            r_max, k_max = int(n_r[ids].max()), int(n_k[ids].max())
            valid = (np.arange(r_max)[:, None] < n_r[ids][:, None, None]) & (np.arange(k_max) < n_k[ids][:, None, None])
            gi, r, c = np.nonzero(valid)                # row-major: rows stay contiguous
            b = ids[gi]
            parts.append((b * n_rows + r, c, offset[b] + r * n_k[b] + c))
            valid_masks.append(valid)
        self.valid = valid_masks
        if parts:
            row, self.col, self.canonical = (np.concatenate(x) for x in zip(*parts))
        else:
            row = self.col = self.canonical = np.zeros(0, np.int64)
        self.row = row                                     # in the (B·R) rows
        self.grid_index = row * self.n + self.col          # in the (B·R·n) grid of this array
        starts = np.flatnonzero(np.diff(row, prepend=-1))
        self.row_starts, self.rows_present = starts, row[starts]

    def noise(self, rng: np.random.Generator, width: int) -> np.ndarray:
        """Standard normals (elements, width), drawn in the canonical order."""
        if self.is_grid:
            return rng.standard_normal((self.batch.n_batch * self.batch.n_rows, self.n, width), dtype=np.float32)
        return rng.standard_normal((self.size, width), dtype=np.float32).take(self.canonical, axis=0)

    def columns(self, tile: _Tile) -> _ColumnData:
        return _ColumnData.first_columns(tile, self.n) if self.is_grid else _ColumnData(tile, self.col)

    def mac(self, e: "_Engine", tile: _Tile):
        """(U_L, U_R, leak) of the elements: (B·R, n) each on a grid, else flat."""
        bt = self.batch
        kt = bt.kl[..., self.c0:self.c0 + self.n]
        if self.is_grid:
            if bt.shared_keys:
                u_l, u_r = e.mac_units(bt.q[0], kt[0], tile)
                leak = np.broadcast_to(e.leak_rates(kt[0], tile), u_l.shape)
            else:
                u_l, u_r = e.mac_units(bt.q, kt, tile)
                leak = np.broadcast_to(e.leak_rates(kt, tile)[:, None, :], u_l.shape)
            shape = (-1, self.n)
            return u_l.reshape(shape), u_r.reshape(shape), np.ascontiguousarray(leak).reshape(shape)
        parts = []
        for ids, valid in zip(self.groups, self.valid):
            r_max, k_max = valid.shape[1:]
            if bt.shared_keys:
                gl, gr = e.mac_units(bt.q[0, :r_max], kt[0, :, :k_max], tile)
                gl, gr = gl[None], gr[None]
                g_leak = e.leak_rates(kt[0, :, :k_max], tile)[None]
            else:
                gl, gr = e.mac_units(bt.q[ids, :r_max], kt[ids, :, :k_max], tile)
                g_leak = e.leak_rates(kt[ids, :, :k_max], tile)
            parts.append((gl[valid], gr[valid], np.broadcast_to(g_leak[:, None, :], valid.shape)[valid]))
        if not parts:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        return tuple(np.concatenate(x) for x in zip(*parts))

    def to_grid(self, x: np.ndarray, fill) -> np.ndarray:
        """Per-element values as the (B, R, n) grid, ``fill`` where no element."""
        if self.is_grid:
            return x.reshape(self.batch.n_batch, self.batch.n_rows, self.n)
        out = np.full(self.batch.n_batch * self.batch.n_rows * self.n, fill, dtype=x.dtype)
        out.put(self.grid_index, x)
        return out.reshape(self.batch.n_batch, self.batch.n_rows, self.n)

    def from_grid(self, x: np.ndarray) -> np.ndarray:
        """(B, R, n) values at the elements."""
        return x.reshape(-1, self.n) if self.is_grid else x.reshape(-1).take(self.grid_index)

    def per_row(self, x: np.ndarray) -> np.ndarray:
        """(B, R) values broadcast to the elements."""
        return x.reshape(-1, 1) if self.is_grid else x.reshape(-1).take(self.row)

    def row_sum(self, x: np.ndarray) -> np.ndarray:
        """Sum of per-element values over each row's columns, as (B, R)."""
        shape = (self.batch.n_batch, self.batch.n_rows)
        if self.is_grid:
            return x.sum(axis=-1).reshape(shape)
        out = np.zeros(shape[0] * shape[1])
        if self.size:
            out[self.rows_present] = np.add.reduceat(x, self.row_starts)
        return out.reshape(shape)

    def columns_in_use(self) -> np.ndarray:
        """(B, R): the key columns each row's conversion has on the array (0: not converted)."""
        if self.is_grid:
            return np.full((self.batch.n_batch, self.batch.n_rows), self.n)
        rows = np.arange(self.batch.n_rows)
        return np.where(rows < self.n_r[:, None], self.n_k[:, None], 0)


def select_topk(firing: np.ndarray, k: int, n_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arbiter: the k earliest firings, ties to lower addresses. Returns (indices, cycles_of_each, stop_cycle).

    ``indices`` are −1 where fewer than k columns fired; ``stop_cycle`` is the cycle of the k-th
    grant (the ramp stops there), or the full ramp when fewer than k fired.
    """
    n = firing.shape[-1]
    kk = min(k, n)
    key = firing.astype(np.int64) * n + np.arange(n)
    part = np.argpartition(key, kk - 1, axis=-1)[..., :kk] if kk < n else np.broadcast_to(np.arange(n), key.shape)
    sel_keys = np.take_along_axis(key, part, axis=-1)
    order = np.argsort(sel_keys, axis=-1)
    idx = np.take_along_axis(part, order, axis=-1)
    cyc = np.take_along_axis(firing, idx, axis=-1)
    fired = cyc <= n_steps
    idx = np.where(fired, idx, -1)
    stop = np.where(fired[..., -1] & (kk == k), cyc[..., -1], n_steps)
    if kk < k:
        pad = [(0, 0)] * (idx.ndim - 1) + [(0, k - kk)]
        idx = np.pad(idx, pad, constant_values=-1)
        cyc = np.pad(cyc, pad, constant_values=n_steps + 1)
    return idx, cyc, stop


def subtopk_indices(scores: np.ndarray, block_sizes, quotas) -> np.ndarray:
    """Digital reference of sub-top-k (SPEC §3): each block's own top-k_i, concatenated in block order.

    Ties go to lower indices; no re-ranking across blocks.
    """
    s = np.asarray(scores)
    out, c0 = [], 0
    for size, kq in zip(block_sizes, quotas):
        block = s[..., c0:c0 + size]
        order = np.argsort(-block, axis=-1, kind="stable")[..., :kq]
        out.append(np.sort(order, axis=-1) + c0)
        c0 += size
    return np.concatenate(out, axis=-1)


class _MacroView:
    """Common top-k driver for a chip instance or the ideal macro."""

    def __init__(self, engine: _Engine, tile_factory):
        self._e = engine
        self._tile_factory = tile_factory
        self._tiles: dict[int, _Tile] = {}

    def _tile(self, t: int) -> _Tile:
        if t not in self._tiles:
            self._tiles[t] = self._tile_factory(t)
        return self._tiles[t]

    def topk(self, q_codes, k_levels, k: int = 5, quotas=None, rng: np.random.Generator | None = None,
             mode: str = "topk", key_mask=None) -> TopkResult:
        """Top-k of q·K for every query row; see the module docstring for the model.

        ``k_levels`` is (d, n_keys), shared by all query rows, or batched (..., d, n_keys) with
        leading dimensions that broadcast with those of ``q_codes`` (..., rows, d): one key set
        per (batch, head). ``quotas``: None (one array per 256 keys, each with quota k when the
        keys fit one array, else global top-k over all arrays' firings), a preset name ("3+2",
        "2+2+1"), or a tuple of per-array quotas (Σ = k). ``mode="conventional"``: full ramp,
        every column converted (indices and codes of all keys, for baselines). ``key_mask``:
        booleans broadcastable to (..., rows, n_keys), False = the column is disabled at the
        arbiter for that row (padding, causal masks): it is never selected and its comparator
        is not clocked; fewer than k enabled keys leave −1 indices.
        """
        e = self._e
        q, kl = e.check_inputs(q_codes, k_levels, k)
        n_keys = kl.shape[-1]
        out_shape = q.shape[:-1] if kl.ndim == 2 else (*np.broadcast_shapes(q.shape[:-2], kl.shape[:-2]), q.shape[-2])
        enable = None
        if key_mask is not None:
            km = np.asarray(key_mask)
            if km.dtype != bool:
                raise ValueError(f"key_mask must be boolean (True = key present), got dtype {km.dtype}")
            try:
                enable = np.broadcast_to(km, (*out_shape, n_keys))
            except ValueError:
                raise ValueError(f"key_mask of shape {km.shape} does not broadcast to (..., rows, n_keys) = "
                                 f"{(*out_shape, n_keys)}") from None
        if mode not in ("topk", "conventional"):
            raise ValueError(f"mode must be 'topk' or 'conventional', got {mode!r}")
        if mode == "topk" and k > n_keys:
            raise ValueError(f"k = {k} is larger than the number of keys ({n_keys})")
        if e.noise and rng is None:
            raise ValueError("a chip instance with noise needs rng= (a numpy Generator) for the comparator noise")
        bounds, tile_quota = self._tiling(n_keys, k, quotas)
        n_steps = e.p.n_ramp_steps
        batch = _Batch(q, kl, enable)
        grid_shape = (batch.n_batch, batch.n_rows)
        firing = np.full((*grid_shape, n_keys), n_steps + 1, dtype=np.int64)
        sel_idx, sel_cyc, stops, energy = [], [], [], np.zeros(grid_shape)
        for t, (c0, c1) in enumerate(bounds):
            tile = self._tile(t)
            n = c1 - c0                 # keys in the array's first n columns; the others are not converted
            el = batch.elements(c0, c1)
            u_l, u_r, leak = el.mac(e, tile)
            cols = el.columns(tile)
            z = el.noise(rng, 2 * e.noise_half_window()) if e.noise else None
            fc = el.to_grid(e.firing_cycles(u_l, u_r, leak, tile, z, None if el.is_grid else cols), n_steps + 1)
            en = None if batch.enable is None else batch.enable[..., c0:c1]
            if en is not None:  # disabled columns (masked keys) never request the arbiter
                fc = np.where(en, fc, n_steps + 1)
            firing[..., c0:c1] = fc
            if mode == "conventional":
                stop = np.full(grid_shape, n_steps)
            else:
                kq = tile_quota[t] if tile_quota else min(k, n)
                idx, cyc, stop = select_topk(fc, kq, n_steps)
                if en is not None:
                    # the k-counter is set to min(k, enabled columns): a row with fewer enabled
                    # keys stops at its last grant; a row with none does not convert at all
                    k_row = np.minimum(kq, en.sum(axis=-1))
                    last = np.take_along_axis(cyc, np.maximum(k_row - 1, 0)[..., None], axis=-1)[..., 0]
                    stop = np.where(k_row == 0, 0, np.where(last <= n_steps, last, n_steps))
                sel_idx.append(np.where(idx >= 0, idx + c0, -1))
                sel_cyc.append(cyc)
            stops.append(stop)
            grants = (tile_quota[t] if tile_quota else min(k, n)) if mode == "topk" else n
            e_tile = self._energy(el, u_l, u_r, leak, tile, cols, fc, stop, batch.q_pulsed, grants, en)
            if en is not None:   # rows with no enabled key (padding) are not converted
                e_tile = np.where(en.any(axis=-1), e_tile, 0.0)
            energy += e_tile
        stop_all = np.max(np.stack(stops, axis=-1), axis=-1)
        if mode == "conventional":
            idx = np.broadcast_to(np.arange(n_keys), firing.shape).copy()
            codes = np.where(firing <= n_steps, n_steps - firing, 0)
        elif tile_quota is None and len(bounds) > 1:
            idx, _, _ = select_topk(firing, k, n_steps)
            cyc = np.take_along_axis(firing, np.maximum(idx, 0), axis=-1)
            codes = np.where(idx >= 0, n_steps - cyc, -1)
        else:
            idx = np.concatenate(sel_idx, axis=-1)
            cyc = np.concatenate(sel_cyc, axis=-1)
            codes = np.where(idx >= 0, n_steps - cyc, -1)
        back = lambda x: x.reshape((*out_shape, *x.shape[2:]))  # noqa: E731
        return TopkResult(indices=back(idx), codes=back(codes), cycles=back(stop_all), energy_j=back(energy),
                          latency_s=back(self._latency(stop_all)), n_ramp_steps=n_steps, firing_cycle=back(firing))

    def _tiling(self, n_keys: int, k: int, quotas):
        e = self._e
        if quotas is None:
            bounds = [(c0, min(c0 + e.n_cols, n_keys)) for c0 in range(0, n_keys, e.n_cols)]
            return bounds, None
        if isinstance(quotas, str):
            if quotas not in SUBTOPK_PRESETS:
                raise ValueError(f"unknown sub-top-k preset {quotas!r}; choose one of {', '.join(SUBTOPK_PRESETS)}")
            array, sizes, quota = SUBTOPK_PRESETS[quotas]
            if array != e.array:
                raise ValueError(f"preset {quotas!r} is defined on {array} arrays; this macro uses {e.array}")
        else:
            quota = tuple(int(x) for x in quotas)
            sizes = None
        if any(x < 1 for x in quota) or sum(quota) != k:
            raise ValueError(f"sub-top-k quotas {quota} must be positive and sum to k = {k}")
        if sizes is None:  # spread the keys evenly, the first arrays taking the remainder
            m = len(quota)
            sizes = tuple(n_keys // m + (i < n_keys % m) for i in range(m))
        c0, bounds = 0, []
        for size in sizes:
            if size > e.n_cols:
                raise ValueError(f"an array holds at most {e.n_cols} keys, got a block of {size}")
            bounds.append((c0, min(c0 + size, n_keys)))
            c0 += size
        if c0 < n_keys:
            raise ValueError(f"{n_keys} keys do not fit the arrays {sizes} of the quotas {quota}")
        bounds = [(a, b) for a, b in bounds if b > a]
        if len(bounds) != len(quota):
            raise ValueError(f"{n_keys} keys leave some of the {len(quota)} arrays of quotas {quota} empty")
        for (a, b), kq in zip(bounds, quota):
            if kq > b - a:
                raise ValueError(f"quota {kq} exceeds the {b - a} keys of its array")
        return bounds, quota

    def _energy(self, el: _Elements, u_l, u_r, leak, tile, cols, firing, stop, q_pulsed, n_grants, enable=None):
        """Energy (B, R) of each row's conversion on one array (see the module docstring);
        ``firing``, ``enable`` as (B, R, n) grids, ``stop`` and ``q_pulsed`` (B, R)."""
        e, p = self._e, self._e.p
        v_l, v_r = e.bitline_voltages(u_l, u_r, leak, tile, el.per_row(np.maximum(stop, 1)), cols)
        v0 = p.curve_v[0]
        n = el.columns_in_use()
        v_sum_end = v_l + v_r
        e_restore = p.v_precharge_v * p.c_bitline_eff_f * (2 * n * v0 - el.row_sum(v_sum_end))
        n_pulses = (q_pulsed * len(e.scales) + p.n_cal + stop) * n
        # each column is clocked until it fires or the ramp stops; a disabled one is not clocked
        last = np.minimum(firing, stop[..., None])
        if enable is not None:
            last = np.where(enable, last, 0)
        # its decisions' common mode: the mean of the first (cycle 1) and the ramp's end (the
        # bitlines fall ~linearly; a column that fires early is clocked few times, so the
        # difference to its own last decision weighs little)
        v_l1, v_r1 = e.bitline_voltages(u_l, u_r, leak, tile, 1, cols)
        v_l1 += v_r1
        v_l1 += v_sum_end
        v_l1 *= 0.25                                # the common mode, in place
        e_decisions = el.row_sum(el.from_grid(last) * e.e_per_decision_j(v_l1))
        dig = p.digital["corners"][p.digital.get("slow_corner", "ss")]
        e_digital = stop * dig["e_per_count_j"] + np.minimum(n_grants, n) * (
            dig["e_per_grant_tree_j"] + dig["e_per_grant_count_j"] + dig["e_per_encode_j"])
        return e_restore + n_pulses * p.e_wordline_pulse_j + e_decisions + e_digital

    def _latency(self, stop):
        p = self._e.p
        return p.t_pwm_s + p.t_clk_ima_s * (1 + stop) + float(p.digital["t_arb_total_s"])


class ChipInstance(_MacroView):
    """A macro with frozen mismatch (drawn once) and comparator noise per conversion."""

    def ramp_inl_dnl(self, array_index: int = 0) -> dict:
        """INL/DNL (LSB, endpoint fit) of every column's modelled ramp, as the ramp block
        measures it in SPICE: V(RBL_L) at each sense instant with no MAC input."""
        e, p = self._e, self._e.p
        tile = self._tile(array_index)
        n = tile.n_cols
        leak = e.leak_rates(np.zeros((1, n), dtype=np.int64), tile)
        j = np.arange(0, p.n_ramp_steps + 1)
        t_units = (p.t_cal_start_s - p.t_mac_start_s + p.t_clk_ima_s * j + p.t_sa_clk_in_cycle_s) / p.t_unit_s
        levels = e.f(leak[:, None] * t_units[None, :] + tile.u_ramp_cum)        # (n, 33)
        steps = levels[:, :-1] - levels[:, 1:]
        lsb = (levels[:, 0] - levels[:, -1]) / p.n_ramp_steps
        dnl = steps / lsb[:, None] - 1
        inl = (levels[:, :1] - levels) / lsb[:, None] - j[None, :]
        return {"lsb_v": lsb, "dnl_lsb": dnl, "inl_lsb": inl,
                "dnl_max_lsb": dnl.max(axis=1), "dnl_min_lsb": dnl.min(axis=1),
                "inl_max_lsb": inl.max(axis=1), "inl_min_lsb": inl.min(axis=1)}


@dataclass(frozen=True)
class AdcRange:
    """The ramp ADC's window in MAC units: top = n_cal·t_cal_units, LSB = t_ramp_units.

    Codes cover (top − 32·LSB, top]; larger scores saturate at code 31 (fire in cycle 1),
    smaller ones never fire. Limits: n_cal ≤ 32 calibration cells, a calibration pulse
    ≤ 6 units and a ramp pulse ≤ 4 units within the 4 ns clock (circuits/column.py).
    """

    n_cal: int = 32
    t_cal_units: int = 4
    t_ramp_units: int = 4

    def __post_init__(self):
        for name, lo, hi in (("n_cal", 0, 32), ("t_cal_units", 0, 6), ("t_ramp_units", 1, 4)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"AdcRange.{name} must be an integer in {lo}..{hi}, got {v!r}")

    @property
    def top_units(self) -> int:
        return self.n_cal * self.t_cal_units

    @property
    def lsb_units(self) -> int:
        return self.t_ramp_units


def choose_adc_range(scores_units: np.ndarray, k: int, n_steps: int = 32, top_quantile: float = 0.75,
                     bottom_quantile: float = 0.1) -> tuple[AdcRange, float]:
    """An ADC window from sample scores (MAC units, rows × keys) and the query scale to apply.

    The window top sits at the ``top_quantile`` of the rows' largest scores (rows above it
    saturate: their best keys fire together in cycle 1, still selected); its bottom at the
    ``bottom_quantile`` of the rows' k-th largest scores, so that in most rows k keys fire.
    The LSB is the smallest step (≤ 4 units: the ramp pulse fits the 4 ns clock) for which 32
    steps span the two. When even 4-unit steps do not span them, or the top exceeds what 32
    calibration cells can set (32 × 6 units), the second value is the factor (< 1) by which
    the query codes are scaled (folded into W_Q, as the scale-free trick does with 1/√d_k);
    otherwise it is 1. Rows given as −inf/NaN-free arrays; at least k keys per row.
    """
    s = np.asarray(scores_units, dtype=float)
    if s.ndim != 2 or s.shape[1] < k or k < 1:
        raise ValueError("scores_units must be (rows, keys) with at least k keys per row")
    if not 0 <= bottom_quantile <= top_quantile <= 1:
        raise ValueError("need 0 ≤ bottom_quantile ≤ top_quantile ≤ 1")
    ordered = -np.sort(-s, axis=1)
    top = float(np.quantile(ordered[:, 0], top_quantile))
    bottom = float(np.quantile(ordered[:, k - 1], bottom_quantile))
    top = max(top, 1.0)
    span = max(top - bottom, 1.0)
    max_top, max_span = 32 * 6, n_steps * 4
    scale = min(1.0, max_top / top, max_span / span)
    top, span = top * scale, span * scale
    lsb = int(np.clip(np.ceil(span / n_steps - 1e-9), 1, 4))
    best = min(((abs(n * t - top), n, t) for n in range(1, 33) for t in range(1, 7)))
    return AdcRange(best[1], best[2], lsb), scale


class TopkimaMacro:
    """The calibrated macro. ``instance(rng)`` freezes mismatch; ``ideal()`` is noiseless and linear.

    ``adc_range`` sets the ADC window (default: the artefact's characterised setting).
    ``sigma_scale`` multiplies every random spread the artefact gives (read-port and replica-cell
    Pelgrom σ, comparator device σ's and residual, comparator noise) for variation studies;
    1 is the characterised chip, 0 a chip with only systematic effects.
    """

    def __init__(self, calibration: Calibration, array: str = "256x256", adc_range: AdcRange | None = None,
                 sigma_scale: float = 1.0):
        self.calibration = calibration
        params = params_from_calibration(calibration)
        if array not in ARRAYS:
            raise ValueError(f"unknown array {array!r}; choose one of {', '.join(ARRAYS)}")
        sigma_scale = float(sigma_scale)
        if not (np.isfinite(sigma_scale) and sigma_scale >= 0):
            raise ValueError(f"sigma_scale must be a finite number ≥ 0, got {sigma_scale}")
        if sigma_scale != 1.0:
            params = replace(params, sigma_vth_read_v=params.sigma_vth_read_v * sigma_scale,
                             sa_offset_sigma_v=params.sa_offset_sigma_v * sigma_scale,
                             sa_noise_sigma_v=params.sa_noise_sigma_v * sigma_scale,
                             sa_residual_sigma_v=params.sa_residual_sigma_v * sigma_scale,
                             sa_device_sigma_vth_v=params.sa_device_sigma_vth_v * sigma_scale)
        self.sigma_scale = sigma_scale
        self._params_characterised = params
        self.params = self._windowed(params, adc_range)
        self.insitu = fit_insitu_correction(self.params)   # its runs carry their own ADC setting
        self.adc_range = AdcRange(self.params.n_cal, self.params.t_cal_units, self.params.t_ramp_units)
        self.array = array

    @staticmethod
    def _windowed(params: MacroParams, adc_range: AdcRange | None) -> MacroParams:
        if adc_range is None:
            return params
        if not isinstance(adc_range, AdcRange):
            raise ValueError("adc_range must be an AdcRange")
        unit = lambda t: params.pulse_slope * t + params.pulse_offset_units  # noqa: E731
        return replace(params, n_cal=adc_range.n_cal, t_cal_units=adc_range.t_cal_units,
                       t_ramp_units=adc_range.t_ramp_units,
                       lsb_v=params.lsb_v * unit(adc_range.t_ramp_units) / unit(params.t_ramp_units))

    def with_adc_range(self, adc_range: AdcRange) -> "TopkimaMacro":
        """The same macro (calibration, array, σ scale, in-situ fit) under another ADC window."""
        m = object.__new__(TopkimaMacro)
        m.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_engines"})
        m.params = self._windowed(self._params_characterised, adc_range)
        m.adc_range = AdcRange(m.params.n_cal, m.params.t_cal_units, m.params.t_ramp_units)
        return m

    def _engine(self, noise: bool) -> _Engine:
        """The shared arithmetic of this macro's chips (it holds only parameter-derived tables,
        so every instance can use the same one)."""
        cache = self.__dict__.setdefault("_engines", {})
        if noise not in cache:
            cache[noise] = _Engine(self.params, self.array, noise=noise, linear=False, insitu=self.insitu)
        return cache[noise]

    def instance(self, rng: np.random.Generator) -> ChipInstance:
        """A chip: every read port, replica cell and comparator offset drawn (Pelgrom, artefact σ's)."""
        if not isinstance(rng, np.random.Generator):
            raise ValueError("instance() needs a numpy.random.Generator")
        engine = self._engine(noise=True)
        root = int(rng.integers(2 ** 63))  # each array's draws come from (root, array index): order-free

        def tile_factory(t: int) -> _Tile:
            g = np.random.default_rng(np.random.SeedSequence(root, spawn_key=(t,)))
            return _Tile(self.params, engine.n_cols, engine.n_elements, engine.scales,
                         self.draw_tile(g, engine.n_cols, engine.n_elements * len(engine.scales)))

        return ChipInstance(engine, tile_factory)

    def instance_like(self, chip: "ChipInstance") -> ChipInstance:
        """A chip with the same devices as ``chip`` (drawn by a macro of the same calibration,
        array and σ scale) under this macro's ADC window: what the window does not change is shared."""
        if chip._e.array != self.array:
            raise ValueError(f"instance_like needs a chip of the same array ({self.array}), got {chip._e.array}")
        engine = self._engine(noise=chip._e.noise)

        def tile_factory(t: int) -> _Tile:
            return _Tile(self.params, engine.n_cols, engine.n_elements, engine.scales, None, like=chip._tile(t))

        return ChipInstance(engine, tile_factory)

    def instance_from_draws(self, draws: list[TileDraws], noise: bool = True) -> ChipInstance:
        """A chip whose arrays carry the given explicit draws (e.g. those of golden SPICE runs).

        ``noise=False`` leaves out the comparator noise (ngspice's transients are noiseless).
        """
        engine = self._engine(noise=noise)

        def tile_factory(t: int) -> _Tile:
            if t >= len(draws):
                raise ValueError(f"draws were given for {len(draws)} arrays; array {t} is needed")
            return _Tile(self.params, engine.n_cols, engine.n_elements, engine.scales, draws[t])

        return ChipInstance(engine, tile_factory)

    def nominal(self) -> ChipInstance:
        """Calibrated nonlinearity, leakage and charge sharing, nominal devices (the comparator's
        systematic offset only), no noise."""
        engine = self._engine(noise=False)
        rows = engine.n_elements * len(engine.scales)
        zero = TileDraws(np.zeros((engine.n_cols, rows, N_STACKS, 2)), np.zeros((engine.n_cols, 32, 2)),
                         np.zeros((engine.n_cols, 32, 2)),
                         self.sa_offsets(np.zeros((engine.n_cols, len(self.params.sa_devices)))))
        return ChipInstance(engine, lambda t: _Tile(self.params, engine.n_cols, engine.n_elements, engine.scales, zero))

    def ideal(self) -> ChipInstance:
        """No mismatch, no noise, no offset, a linear discharge, exact pulse widths, no leakage
        or charge sharing: the comparator fires at the first cycle where q·k > top − j·LSB."""
        p = replace(self.params, pulse_slope=1.0, pulse_offset_units=0.0)
        engine = _Engine(p, self.array, noise=False, linear=True)
        return ChipInstance(engine, lambda t: _Tile(p, engine.n_cols, engine.n_elements, engine.scales, None))

    def draw_tile(self, rng: np.random.Generator, n_cols: int, rows: int) -> TileDraws:
        p = self.params
        s = p.sigma_vth_read_v
        mac = rng.normal(0, s, (n_cols, rows, N_STACKS, 2))
        cal = rng.normal(0, s, (n_cols, 32, 2))
        ramp = rng.normal(0, s, (n_cols, 32, 2))
        sa = rng.normal(0, 1, (n_cols, p.sa_device_sigma_vth_v.size)) * p.sa_device_sigma_vth_v
        residual = rng.normal(0, 1, (n_cols, 1)) * p.sa_residual_sigma_v  # what the linear model misses
        return TileDraws(mac, cal, ramp, self.sa_offsets(sa) + residual)

    def sa_offsets(self, sa_dvt_v: np.ndarray) -> np.ndarray:
        """Comparator offsets (n_cols, n_vcm) from device threshold shifts (n_cols, n_devices)."""
        p = self.params
        return p.sa_intercept_v[None, :] + np.asarray(sa_dvt_v) @ p.sa_sensitivity.T

    def tile_draws_from_columns(self, columns: list[dict]) -> TileDraws:
        """TileDraws from per-column device draws as stored by ``topkima golden`` (see its file)."""
        n = len(columns)
        mac = np.array([c["mac_dvt_v"] for c in columns], float)
        cal = np.array([c["cal_dvt_v"] for c in columns], float)
        ramp = np.array([c["ramp_dvt_v"] for c in columns], float)
        sa = np.array([[c["sa_dvt_v"].get(name, 0.0) for name in self.params.sa_devices] for c in columns])
        cols = ARRAYS[self.array][0]
        if n < cols:  # unused columns of the array: nominal devices
            pad = cols - n
            mac = np.concatenate([mac, np.zeros((pad, *mac.shape[1:]))])
            cal = np.concatenate([cal, np.zeros((pad, *cal.shape[1:]))])
            ramp = np.concatenate([ramp, np.zeros((pad, *ramp.shape[1:]))])
            sa = np.concatenate([sa, np.zeros((pad, sa.shape[1]))])
        return TileDraws(mac, cal, ramp, self.sa_offsets(sa))
