"""Topkima attention for one transformer layer: Q·Kᵀ inside the macro, top-k, softmax core, A·V.

Data flow per head (Topkima-Former, Dong et al., arXiv 2411.13050, §III; SPEC §3):

1. **Scale-free.** 1/√d_k is folded into the query projection offline (Q_s = X·W_Q/√d_k), so
   the inputs ``q`` here are already scaled and no scaling hardware exists: ``mode="exact"``
   is softmax(q·kᵀ + mask)·v.
2. **Quantisation** (paper: Q 5 bit, Kᵀ 15 levels, V and A 5 bit). Q → sign + 5-bit PWM
   magnitude (codes −31…31) with one max-abs scale per query row (a digital scale ahead of the
   PWM drivers: every row uses the full pulse range, and the softmax core knows its scale);
   K → levels −7…7 and V → signed 5 bit (−15…15) with one max-abs scale per (sequence, head)
   over its real (unmasked) tokens [our choices: the paper does not state its scale granularity].
3. **Q·Kᵀ and top-k.** ``topk``: the k largest integer scores (ties to lower key index).
   ``subtopk``: fixed quotas over key blocks (see :func:`subtopk_plan`). ``topkima``: the
   calibrated behavioural macro (:class:`~topkima.behavioral.TopkimaMacro`) with frozen mismatch
   and comparator noise; a row longer than one array spreads over as many as it needs, with the
   fixed quotas of :func:`~topkima.behavioral.macro.arrays.array_quotas` ("3+2" up to 384 keys).
   The ADC window is set per head from the call's own score statistics (:func:`choose_adc_range`)
   unless ``adc_range`` is given. Keys are written into the array in token order or newest first
   (``key_order``, :mod:`~topkima.behavioral.key_order`: which key wins a tie at the arbiter).
   The macro returns codes; a kept key's score is read back as the middle of its code's LSB bin
   (saturated codes as the bin below the window top), or recomputed exactly from the k kept key
   rows (``readback="exact"``, :mod:`~topkima.behavioral.readback`). With the exact read-back the
   k-counter may stop after ``candidates`` = k + m grants; the digital side then keeps the k best
   exact scores among them (:func:`~topkima.behavioral.readback.best_of_candidates`).
4. **Softmax core** on the k kept values only: fixed-point base-2 exponentials and a
   reciprocal (:class:`SoftmaxCore`), A quantised to 5 bits.
5. **A·V** on an SRAM array (:class:`SramAVModel`): each V bit stored in its own cell with a
   frozen current factor (the artefact's read-cell mismatch σ), A applied as PWM widths, the
   column output read by a signed 5-bit ADC over the call's output range.

``mask`` (broadcastable to (..., heads, T_q, T_k), True = visible) covers padding and causal
masks; a masked key is never selected (its column is disabled at the arbiter).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from topkima.behavioral.macro import AdcRange, TopkimaMacro, used_length as _used_length
from topkima.behavioral.macro.chip import topk_under_windows
from topkima.behavioral.macro.noise import noise_key
from topkima.behavioral.head_windows import head_windows as _head_windows
from topkima.behavioral.key_order import KEY_ORDERS, column_keys, kth_grant_ties_by_array
from topkima.behavioral.readback import READBACKS, best_of_candidates, exact_scores
from topkima.behavioral.softmax_core import NEG_INF, SoftmaxCore
from topkima.behavioral.macro.arrays import candidate_tiling
from topkima.behavioral.quantize import quantize_symmetric, scaled_codes_int8
from topkima.behavioral.sram_av import SramAVModel

MODES = ("exact", "quantized", "topk", "subtopk", "topkima")
Q_MAX_CODE = 31   #: sign + 5-bit PWM magnitude (SPEC §2)
K_MAX_LEVEL = 7   #: 15 key levels (SPEC §2)
V_MAX_CODE = 15   #: signed 5 bit (SPEC §3: V 5 bit)
#: the largest A·V ADC bit count the what-if takes (TopkimaHardware av_adc_bits): a row's A codes sum to
#: about 31, so |A·V| ≤ ~31 × 15 = 465 code units, which 16 bits read in steps of ~0.015 code units
AV_ADC_BITS_MAX = 16
#: (row, key) conversions per macro call, padded [ours: bounds the call's temporaries to ~100 MB]
CALL_CONVERSIONS = 500_000


def dense_softmax_attention(q, k, v, mask=None):
    """softmax(q·kᵀ + mask)·v in float64 (q already carries 1/√d_k)."""
    s = np.einsum("...td,...sd->...ts", np.asarray(q, np.float64), np.asarray(k, np.float64))
    if mask is not None:
        s = np.where(mask, s, NEG_INF)
    s_max = np.max(s, axis=-1, keepdims=True)
    s_max = np.where(np.isfinite(s_max), s_max, 0.0)
    e = np.exp(s - s_max)
    den = e.sum(axis=-1, keepdims=True)
    a = np.divide(e, den, out=np.zeros_like(e), where=den > 0)
    return a @ np.asarray(v, np.float64)


def _subtopk_split(n_keys, k: int):
    """SPEC §3's "3+2" pattern scaled to rows of ``n_keys`` keys (int or array): whether the row
    is split in two, the first block's size ⌈2n/3⌉ and its quota ⌈3k/5⌉."""
    k1 = -(-3 * k // 5)
    n1 = -(-2 * np.asarray(n_keys) // 3)
    two = (k >= 2) & (n1 >= k1) & (np.asarray(n_keys) - n1 >= k - k1)
    return two, n1, k1


def subtopk_plan(n_keys: int, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Key blocks and fixed quotas of ``mode="subtopk"``: SPEC §3's "3+2" pattern scaled to the row.

    Two blocks of ⌈2n/3⌉ and the rest of the keys (as 256 + 128 of 384), quotas ⌈3k/5⌉ and
    the rest (3 + 2 for k = 5). Rows too short for two blocks, or k = 1, use one block.
    """
    two, n1, k1 = _subtopk_split(n_keys, k)
    if not two:
        return (n_keys,), (k,)
    return (int(n1), n_keys - int(n1)), (k1, k - k1)


def quantized_scores(q, k, visible):
    """Q and K codes, the integer MAC scores q_code·k_code (float64, exact) and the real score
    per unit of each row: Q per query row, K per (sequence, head) over its real keys.

    A key is real if any query row sees it; a query row is real if it sees any key (fully
    masked rows are padding and do not set scales).
    """
    q_codes, k_codes, scores_units, score_scale = _quantized_scores(q, k, *_real_rows_keys(visible)[:2])
    return q_codes, k_codes, scores_units.astype(np.float64), score_scale


def _quantized_scores(q, k, row_real, key_real):
    """:func:`quantized_scores` from the real query rows (..., T_q) and keys (..., T_k), the
    scores in float32 where that is exact (integers below 2²⁴: the same values, order and ties)."""
    q_codes, s_q = quantize_symmetric(q, Q_MAX_CODE, row_real, per_row=True)
    k_codes, s_k = quantize_symmetric(k, K_MAX_LEVEL, key_real)
    # integer products and sums, |Σ| ≤ 31·7·d: exact in float32 below 2²⁴ (any summation order)
    mac = np.float32 if Q_MAX_CODE * K_MAX_LEVEL * q.shape[-1] < 2 ** 24 else np.float64
    scores_units = np.ascontiguousarray(q_codes, dtype=mac) @ np.ascontiguousarray(np.swapaxes(k_codes, -1, -2), dtype=mac)
    return q_codes, k_codes, scores_units, s_q * s_k


def _real_rows_keys(visible: np.ndarray):
    """Real query rows (..., T_q), real keys (..., T_k) and visible keys per row (..., T_q) of
    ``visible``, each reduced once per distinct mask (broadcast leading axes, e.g. one mask for
    all heads, cut to length 1) and expanded back to a C-contiguous array."""
    once = visible[tuple(slice(0, 1) if st == 0 else slice(None) for st in visible.strides[:-2])]
    lead = visible.shape[:-2]
    expand = lambda x: np.ascontiguousarray(np.broadcast_to(x, (*lead, x.shape[-1])))  # noqa: E731
    return expand(once.any(axis=-1)), expand(once.any(axis=-2)), expand(once.sum(axis=-1))


def row_top_scores(scores_units: np.ndarray, visible: np.ndarray, n_best: int) -> np.ndarray:
    """Each real row's ``n_best`` largest visible scores, best first: a list over heads of
    (rows, n_best) arrays, −1e30 where a row has fewer keys — the sample from which
    :func:`choose_adc_range` sets a frozen window per head."""
    lead = visible.shape[:-2]
    n_heads = lead[-1] if lead else 1
    s = np.where(visible, np.broadcast_to(scores_units, visible.shape), -1e30)
    s = -np.sort(-s, axis=-1)[..., :n_best]
    if s.shape[-1] < n_best:
        s = np.concatenate([s, np.full((*s.shape[:-1], n_best - s.shape[-1]), -1e30)], axis=-1)
    real = visible.any(axis=-1)
    s = np.moveaxis(s.reshape(-1, n_heads, *s.shape[-2:]), 1, 0)        # (heads, seqs, rows, n_best)
    real = np.moveaxis(np.broadcast_to(real, visible.shape[:-1]).reshape(-1, n_heads, visible.shape[-2]), 1, 0)
    return [s[h][real[h]] for h in range(n_heads)]


def _keep_best(scores: np.ndarray, allowed: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """Per row, the ``quota`` (per-row array) largest allowed scores, ties to lower index."""
    order = np.argsort(-np.where(allowed, scores, NEG_INF), axis=-1, kind="stable")
    rank = np.empty(order.shape, dtype=np.int64)
    np.put_along_axis(rank, order, np.arange(order.shape[-1]), axis=-1)
    return allowed & (rank < quota[..., None])


def _subtopk_mask(scores: np.ndarray, visible: np.ndarray, k: int) -> np.ndarray:
    """``mode="subtopk"``: :func:`subtopk_plan` applied to each row's own visible keys (padding
    is not part of any block), quotas per block, results concatenated (no re-ranking)."""
    n_vis = visible.sum(axis=-1)
    rank = np.cumsum(visible, axis=-1) - 1            # position among the row's visible keys
    two, n1, k1 = _subtopk_split(n_vis, k)
    first = visible & (rank < np.where(two, n1, n_vis)[..., None])
    second = visible & ~first
    scores = np.broadcast_to(scores, visible.shape)
    return (_keep_best(scores, first, np.where(two, k1, k))
            | _keep_best(scores, second, np.where(two, k - k1, 0)))


@dataclass
class AttentionStats:
    """Per-call statistics (``return_stats=True``)."""

    mode: str
    top_k: int
    alpha: np.ndarray | None = None          #: early-stop fraction per query row (topkima)
    energy_j: float = 0.0                    #: macro energy of the Q·Kᵀ conversions (topkima)
    adc_range: AdcRange | None = None
    query_scale: float = 1.0
    n_rows: int = 0
    n_rows_short: int = 0                    #: real rows where fewer than k keys were kept
    #: converted rows (topkima) whose last grant the arbiter's address order decided: another
    #: column fired in that cycle and was not granted (:func:`~topkima.behavioral.key_order.kth_grant_ties`)
    n_rows_kth_tie: int = 0
    #: kept keys (topkima) whose integer score lies below their row's k-th best visible integer
    #: score: keys the quantised top-k would not keep under any tie rule (of ``n_kept`` kept keys)
    n_kept_below_kth: int = 0
    n_kept: int = 0
    kept: np.ndarray | None = None           #: (..., T_q, T_k) the keys the softmax used
    extra: dict = field(default_factory=dict)


class TopkimaHardware:
    """Calibrated chips for ``mode="topkima"``, one per ADC window, all with the same frozen
    mismatch (the same physical chip: its draws come from ``chip_seed`` alone).

    ``chip_seed``: an int, or a ``numpy.random.SeedSequence`` (e.g. one child of a study's root
    seed); the Q·Kᵀ macro and the A·V array draw from two fixed children of it. The macro's
    ``sigma_scale`` multiplies the A·V cells' current spread too.

    ``av_adc_bits``: the A·V column ADC's bits, signed (default 5: docs/spec.md §5, "5-bit ADC"). Other
    values are a behavioural what-if of a finer or coarser A·V read-out (same full scale, LSB =
    full scale / (2^(bits−1) − 1)); no SPICE characterisation stands behind them.
    """

    def __init__(self, macro: TopkimaMacro | None = None, chip_seed: int | np.random.SeedSequence = 0,
                 av_adc_bits: int = 5):
        if isinstance(av_adc_bits, bool) or not isinstance(av_adc_bits, (int, np.integer)) \
                or not 2 <= av_adc_bits <= AV_ADC_BITS_MAX:
            raise ValueError(f"av_adc_bits (the A·V column ADC's signed bits) must be an integer in 2…{AV_ADC_BITS_MAX}, "
                             f"got {av_adc_bits!r}")
        if macro is None:
            from topkima.calibration import load_calibration
            macro = TopkimaMacro(load_calibration())
        self.macro = macro
        if isinstance(chip_seed, np.random.SeedSequence):
            self.chip_seed = chip_seed
            self._seeds = tuple(np.random.SeedSequence(chip_seed.entropy, spawn_key=(*chip_seed.spawn_key, i))
                                for i in (0, 1))
        else:
            self.chip_seed = int(chip_seed)
            self._seeds = ([self.chip_seed, 0], [self.chip_seed, 1])
        self._chips: dict[AdcRange, object] = {}
        sigma = float(np.median(macro.calibration.column["mismatch"]["i_on_sigma_rel"])) * macro.sigma_scale
        self.av_model = SramAVModel(sigma_cell_rel=sigma, adc_bits=int(av_adc_bits))
        #: the cell errors of the first A·V array (keys_per_array × outputs_per_array)
        self.av_err_table = self.av_model.draw(np.random.default_rng(self._seeds[1]), self.av_model.keys_per_array,
                                               self.av_model.outputs_per_array)
        self._av_errors = self.av_err_table

    def av_errors(self, n_keys: int, n_outputs: int) -> np.ndarray:
        """Cell errors of the A·V arrays that ``n_keys`` keys × ``n_outputs`` outputs span (arrays
        tiled as :class:`SramAVModel` says), each array drawn on first use from its own child of
        the chip seed: the same errors however long the rows that first needed them."""
        m = self.av_model
        rows, cols = m.keys_per_array, m.outputs_per_array
        have = self._av_errors
        need_r, need_c = -(-max(n_keys, 1) // rows) * rows, -(-max(n_outputs, 1) // cols) * cols
        if need_r <= have.shape[0] and need_c <= have.shape[1]:
            return have
        need_r, need_c = max(need_r, have.shape[0]), max(need_c, have.shape[1])
        table = np.empty((need_r, need_c, have.shape[2]))
        for i in range(need_r // rows):
            for j in range(need_c // cols):
                if (i + 1) * rows <= have.shape[0] and (j + 1) * cols <= have.shape[1]:
                    tile = have[i * rows:(i + 1) * rows, j * cols:(j + 1) * cols]
                else:
                    tile = m.draw(np.random.default_rng(self._array_seed(i, j)), rows, cols)
                table[i * rows:(i + 1) * rows, j * cols:(j + 1) * cols] = tile
        self._av_errors = table
        return table

    def _array_seed(self, i: int, j: int):
        """The seed of A·V array (i, j) ≠ (0, 0): a child of the A·V seed."""
        seed = self._seeds[1]
        if isinstance(seed, np.random.SeedSequence):
            return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i, j))
        return [*seed, i, j]

    def chip(self, adc_range: AdcRange):
        """The chip under ADC window ``adc_range``: the same devices for every window."""
        if adc_range not in self._chips:
            m = self.macro.with_adc_range(adc_range)
            if self._chips:
                self._chips[adc_range] = m.instance_like(next(iter(self._chips.values())))
            else:
                self._chips[adc_range] = m.instance(np.random.default_rng(self._seeds[0]))
        return self._chips[adc_range]


def topkima_attention(q, k, v, *, top_k: int, mask=None, mode: str = "topkima", macro=None, rng=None,
                      return_stats: bool = False, adc_range: tuple[AdcRange, float] | None = None,
                      softmax: SoftmaxCore = SoftmaxCore(), ranges=None, key_order: str = "token",
                      readback: str = "ramp-code", candidates: int | None = None):
    """One layer's attention heads through the Topkima pipeline (see the module docstring).

    Parameters
    ----------
    q, k, v : arrays (..., heads, T, d); ``q`` already carries 1/√d_k (scale-free).
    top_k : keys kept per query row (1 ≤ top_k; rows with fewer visible keys keep them all).
    mask : booleans broadcastable to (..., heads, T_q, T_k), True = visible; None = all.
    mode : "exact", "quantized" (all quantisation, full softmax), "topk" (ideal top-k),
        "subtopk" (ideal, fixed quotas, :func:`subtopk_plan`), "topkima" (calibrated chip).
    macro : :class:`TopkimaHardware` (or a :class:`TopkimaMacro`, wrapped with chip seed 0) for
        ``mode="topkima"``; default: the committed artefact's macro, chip seed 0.
    rng : numpy Generator for the comparator noise (``mode="topkima"``, required there).
    adc_range : (AdcRange, query scale) to freeze the ADC window, or a list of them, one per
        head (e.g. chosen offline from training sentences, see ``topkima attention``); default:
        chosen per head from this call's own scores.
    ranges : :class:`~topkima.behavioral.ranges.AttentionRanges` fitted on other data: every
        scale and ADC range frozen, so that no output row depends on keys or values its mask
        hides. Without it, the ranges come from this call's own tensors (a warning says so when
        the mask hides from some row a key another row sees, e.g. a causal mask).
    key_order : ``mode="topkima"``: the order the keys are written into the array's columns,
        "token" (key j in column j) or "newest-first" (each sequence's keys reversed, so newer
        keys win ties at the arbiter; :mod:`~topkima.behavioral.key_order`). Other modes' ties
        go to the lower key index.
    readback : ``mode="topkima"``: a kept key's score for the softmax core, "ramp-code" (the
        middle of its ADC code's bin) or "exact" (its integer Q·K recomputed digitally from
        the kept key rows; :mod:`~topkima.behavioral.readback`).
    candidates : ``mode="topkima"`` with ``readback="exact"``: the grants k_c = top_k + m (m ≥ 0)
        after which the k-counter stops the ramp; the k_c granted key rows are read back exactly
        and the ``top_k`` best exact scores among them kept (ties to the earlier grant). None:
        top_k (the paper's counter). A row longer than one array keeps top_k's layout and quotas,
        the extra grants split over its arrays (:func:`~topkima.behavioral.macro.arrays.candidate_tiling`),
        and the digital top-k ranks the candidates of all arrays together.
    return_stats : also return :class:`AttentionStats`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if key_order not in KEY_ORDERS:
        raise ValueError(f"key_order must be one of {', '.join(KEY_ORDERS)}; got {key_order!r}")
    if readback not in READBACKS:
        raise ValueError(f"readback must be one of {', '.join(READBACKS)}; got {readback!r}")
    q, k, v = (np.asarray(x) for x in (q, k, v))
    largest = {}        # max |x| (NaN if x holds one): the finiteness check and the overflow bound
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim < 3:
            raise ValueError(f"{name} must be (..., heads, T, d), got shape {x.shape}")
        if x.dtype.kind not in "fiu":
            raise ValueError(f"{name} must hold real numbers (a float or integer array), got dtype {x.dtype}")
        largest[name] = max(float(x.max(initial=0)), -float(x.min(initial=0)))   # NaN stays NaN
        if not np.isfinite(largest[name]):
            raise ValueError(f"{name} must hold finite numbers")
    if q.shape[-1] != k.shape[-1] or k.shape[:-1] != v.shape[:-1] or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"q {q.shape}, k {k.shape}, v {v.shape} do not form (..., heads, T, d) attention inputs "
                         "(q and k share d; k and v share T; all share the leading dimensions)")
    if not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if candidates is None:
        candidates = int(top_k)
    elif isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < top_k:
        raise ValueError(f"candidates (the grants after which the k-counter stops, k + m with m ≥ 0) must be an "
                         f"integer ≥ top_k = {top_k}, got {candidates!r}")
    elif candidates > top_k and (mode != "topkima" or readback != "exact"):
        raise ValueError(f"candidates = {candidates} > top_k = {top_k} needs mode='topkima' with readback='exact' "
                         f"(the digital side ranks the candidates by their exact scores); got mode={mode!r}, "
                         f"readback={readback!r}")
    candidates = int(candidates)
    t_q, t_k = q.shape[-2], k.shape[-2]
    full = (*q.shape[:-2], t_q, t_k)
    if q.shape[-1] == 0:
        raise ValueError("q and k need at least one element per row (d ≥ 1), got d = 0")
    if q.size == 0 or k.size == 0 or v.shape[-1] == 0:   # no rows, no keys or no outputs: nothing attends
        out = np.zeros((*q.shape[:-1], v.shape[-1]))
        stats = AttentionStats(mode=mode, top_k=int(top_k), n_rows=int(np.prod(full[:-1])))
        return (out, stats) if return_stats else out
    magnitude = largest["q"] * largest["k"] * q.shape[-1]
    if not magnitude < 1e300:
        raise ValueError(f"q·k scores would overflow float64 (max|q|·max|k|·d = {magnitude:.3g}); rescale q or k")
    if mask is None:
        visible = np.ones(full, dtype=bool)
    else:
        m = np.asarray(mask)
        if m.dtype != bool:
            raise ValueError(f"mask must be boolean (True = visible), got dtype {m.dtype}")
        try:
            visible = np.broadcast_to(m, full)
        except ValueError:
            raise ValueError(f"mask of shape {m.shape} does not broadcast to (..., heads, T_q, T_k) = {full}") from None
    stats = AttentionStats(mode=mode, top_k=int(top_k), n_rows=int(np.prod(full[:-1])))
    if mode == "exact":
        out = dense_softmax_attention(q, k, v, visible)
        return (out, stats) if return_stats else out

    row_real, key_real, n_visible = _real_rows_keys(visible)
    if ranges is not None:
        if adc_range is not None:
            raise ValueError("give ranges= (frozen ranges, their ADC windows included) or adc_range=, not both")
        ranges.check(q.shape[-3], int(top_k), q.shape[-1])
        q_codes, k_codes, scores_units, score_scale, v_codes, s_v = ranges.quantize(q, k, v, row_real)
        adc_range = list(ranges.qk_windows)
    else:
        if np.any(row_real & (n_visible < key_real.sum(axis=-1)[..., None])):
            warnings.warn("the mask hides from some rows keys that other rows see (e.g. a causal mask), but the "
                          "scales and ADC ranges come from this call's whole sequence, so rows see statistics of "
                          "keys hidden from them: fit AttentionRanges on other data and pass ranges=",
                          stacklevel=2)
        q_codes, k_codes, scores_units, score_scale = _quantized_scores(q, k, row_real, key_real)
        v_codes, s_v = quantize_symmetric(v, V_MAX_CODE, key_real)
    hw = None
    if mode == "quantized":
        kept = visible
        scores = scores_units * score_scale
    elif mode == "topk":
        kept = _keep_best(np.broadcast_to(scores_units, visible.shape), visible,
                          np.full(visible.shape[:-1], top_k))
        scores = scores_units * score_scale
    elif mode == "subtopk":
        kept = _subtopk_mask(scores_units, visible, top_k)
        stats.extra["plan_longest_row"] = subtopk_plan(int(n_visible.max(initial=0)), top_k)
        scores = scores_units * score_scale
    else:
        if rng is None or not isinstance(rng, np.random.Generator):
            raise ValueError("mode='topkima' needs rng= (a numpy Generator) for the comparator noise")
        hw = macro if isinstance(macro, TopkimaHardware) else TopkimaHardware(macro)
        # per row: the granted keys (slots, −1 = empty) and their read-back scores
        kept, granted, scores, stats = _through_macro(hw, q_codes, k_codes, scores_units, score_scale, visible,
                                                      n_visible, key_real, top_k, rng, adc_range, stats, key_order,
                                                      count_ties=return_stats, candidates=candidates)
        if readback == "exact":
            # the chip's candidates, the digital side's exact integer scores of them, with the row's
            # query codes before the head's window scale (which the digital scale ahead of the PWM
            # drivers then applies instead of W_Q), and its top-k among them
            stats.extra["candidates"] = granted
            granted = best_of_candidates(scores_units, granted, int(top_k))
            if kept is not None:        # the kept grid: only for the statistics (count_ties)
                kept = np.zeros(visible.shape, dtype=bool)
                kept.reshape(-1)[_grid_positions(granted, t_k)] = True
            scores = exact_scores(scores_units, granted, score_scale)
        stats.extra["granted"], stats.extra["granted_scores"] = granted, scores   # the softmax core's inputs
    if return_stats:        # the statistics: only when the caller takes them
        k_possible = np.minimum(top_k, n_visible)
        n_kept = kept.sum(-1) if hw is None else (granted >= 0).sum(-1)
        stats.n_rows_short = int(((n_kept < k_possible) & row_real).sum()) if mode != "quantized" else 0
    if hw is not None and return_stats:      # diagnostics: only when the caller takes the statistics
        stats.n_kept, stats.n_kept_below_kth = _kept_below_kth(scores_units, visible, kept, top_k)
    stats.kept = kept
    if hw is None:   # ideal digital A·V on the quantised operands
        a = softmax(scores, kept) if mode == "quantized" else _sparse_softmax(softmax, scores, kept)
        a_codes = np.rint(a * ((1 << softmax.a_bits) - 1))
        av = a_codes @ v_codes.astype(np.float64)
    else:
        # each row drives only its granted keys' wordlines, with the softmax core's A codes
        filled = granted >= 0
        if type(softmax) is SoftmaxCore:    # its compiled form (a subclass keeps its own __call__)
            a_codes = softmax.codes(scores, filled)
        else:
            a_codes = np.where(filled, np.rint(softmax(scores, filled) * ((1 << softmax.a_bits) - 1)), 0.0)
        full_scale = None if ranges is None else np.broadcast_to(ranges.av_full_scale, granted.shape[:-2])
        av = hw.av_model.of_granted(a_codes, granted, v_codes, hw.av_errors(*v_codes.shape[-2:]), full_scale)
    av *= s_v   # in place: av · s_v / (2^a_bits − 1)
    av /= (1 << softmax.a_bits) - 1
    return (av, stats) if return_stats else av


def _kept_below_kth(scores_units: np.ndarray, visible: np.ndarray, kept: np.ndarray, top_k: int) -> tuple[int, int]:
    """(kept keys, kept keys whose integer score is below their row's k-th best visible score)."""
    s = np.where(visible, np.broadcast_to(scores_units, visible.shape), -np.inf)
    kk = min(top_k, s.shape[-1])
    kth = -np.partition(-s, kk - 1, axis=-1)[..., kk - 1:kk]     # the k-th largest (−inf: fewer visible)
    return int(kept.sum()), int((kept & (s < kth)).sum())


def _sparse_softmax(core: SoftmaxCore, scores: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``core(scores, kept)`` computed on the kept entries only (≤ k per row), scattered back."""
    t = kept.shape[-1]
    rows = kept.reshape(-1, t)
    count = rows.sum(axis=1)
    k_max = int(count.max(initial=0))
    r, c = np.nonzero(rows)                       # row-major: grouped by row, ascending key
    slot = np.arange(r.size) - (np.cumsum(count) - count)[r]
    s_rows = np.broadcast_to(scores, kept.shape).reshape(-1, t)
    packed = np.zeros((rows.shape[0], max(k_max, 1)))
    valid = np.zeros(packed.shape, dtype=bool)
    packed[r, slot], valid[r, slot] = s_rows[r, c], True
    a_packed = core(packed, valid)
    a = np.zeros(rows.shape)
    a[r, c] = a_packed[r, slot]
    return a.reshape(kept.shape)


def _grid_positions(granted: np.ndarray, t_k: int) -> np.ndarray:
    """Flat positions in the C-ordered (..., T_q, T_k) grid of the granted keys (``granted``
    (..., T_q, slots), −1 = empty slot), in the order of ``granted[granted >= 0]``."""
    rows = np.arange(granted.size // granted.shape[-1]).reshape(granted.shape[:-1])[..., None]
    return (rows * t_k + granted)[granted >= 0]


def _through_macro(hw: TopkimaHardware, q_codes, k_codes, scores_units, score_scale, visible, n_visible, key_real,
                   top_k, rng, adc_range, stats, key_order: str = "token", count_ties: bool = True,
                   candidates: int | None = None):
    """Kept keys and their read-back scores from the calibrated chip, head by head: one macro
    call per head (per sub-top-k plan), a ragged batch in which each sequence converts only its
    own rows and key columns, written into the columns in ``key_order``; ``count_ties``: the
    statistics' diagnostics too (``stats.n_rows_kth_tie``: the rows whose last grant the address
    order decided; the kept grid) and the macro's energy (``stats.energy_j``; NaN without: the
    conversions then skip the energy pass). ``candidates``: the grants the k-counter waits for (default
    ``top_k``); the ADC windows chosen from the call's own scores are still those for ``top_k``.

    Returns the kept grid (..., T_q, T_k; None without ``count_ties``), and per row (..., T_q,
    min(candidates, T_k)) the granted keys (−1 = empty slot) and their read-back scores (the softmax
    core's inputs), and ``stats``."""
    t_q, t_k = visible.shape[-2:]
    k_layout = top_k                     # the k the keys are laid out over arrays for …
    k_window = min(top_k, t_k)           # … and the ADC window is chosen for
    top_k = top_k if candidates is None else candidates     # the k-counter's stop count from here on
    kk = min(top_k, t_k)
    # (sequence, head) pairs with the head axis first: each head gets its own ADC window
    lead = visible.shape[:-2]
    n_heads = lead[-1] if lead else 1
    to_heads = lambda x: np.moveaxis(np.broadcast_to(x, (*lead, *x.shape[-2:])).reshape(-1, n_heads, *x.shape[-2:]), 1, 0)  # noqa: E731
    q_h, k_h, vis_h = (to_heads(x) for x in (q_codes, np.swapaxes(k_codes, -1, -2), visible))
    # per row, the granted keys (−1: empty slot) and the cycles they fired in; rows no key
    # reaches: no grant, no conversion
    idx = np.full((*vis_h.shape[:-1], kk), -1, dtype=np.int64)
    cyc = np.full(idx.shape, hw.macro.params.n_ramp_steps + 1, dtype=np.int64)
    alpha = np.zeros(vis_h.shape[:-1])
    q_scale_h = np.ones(n_heads)
    windows, energy = [], 0.0
    # Each sequence uses only its own rows and key columns (padding keys are not written to
    # the array, padding rows not applied): the macro converts a ragged batch as such.
    n_keys_used = _used_length(to_heads(key_real[..., None, :])[..., 0, :])   # (heads, sequences)
    # the key each column holds (its own inverse): keys and their visibility move to their columns
    col_key = None if key_order == "token" else column_keys(n_keys_used, t_k, key_order)
    if col_key is not None:
        k_h = np.take_along_axis(k_h, np.broadcast_to(col_key[:, :, None, :], k_h.shape), axis=-1)
        vis_h = np.take_along_axis(vis_h, np.broadcast_to(col_key[:, :, None, :], vis_h.shape), axis=-1)
    ties = np.zeros(vis_h.shape[:-1], dtype=bool)
    # A row longer than one array: fixed quotas (array_quotas) when every row sees the same keys;
    # when the mask hides from some rows keys that others see (a causal mask), fixed quotas over
    # the sequence would hold an early row to its array's share, so its result would depend on
    # how many later tokens exist: the arrays then share one k-counter (global top-k); a real row
    # is one that sees a key (n_visible > 0: no second pass over the mask)
    rows_differ = bool(np.any((n_visible > 0) & (n_visible < key_real.sum(axis=-1)[..., None])))

    plans = {}      # one plan per row length, asked for by every head and call

    def plan(n_k: int):
        if n_k not in plans:
            # the keys' layout is k's; with candidates the counters wait for k_c grants over it
            plans[n_k] = None if rows_differ else candidate_tiling(n_k, min(k_layout, n_k), min(top_k, n_k),
                                                                   hw.macro.array, hw.macro.geometry[0])
        return plans[n_k]
    if adc_range is None:
        adc_range = _head_windows(scores_units, visible, n_visible >= k_window, k_window, n_heads)
    for h in range(n_heads):
        window, q_scale_h[h] = adc_range if isinstance(adc_range[0], AdcRange) else adc_range[h]
        windows.append(window)
    # each head's query scale, folded into its codes (as into W_Q)
    if np.any(q_scale_h != 1.0):
        q_h = scaled_codes_int8(q_h, q_scale_h, Q_MAX_CODE)
    # Every head's calls run as merged compiled calls, each element under its head's window; the
    # noise keys are drawn head by head, call by call, as one call per head would draw them
    chips = [hw.chip(w) for w in windows]
    calls = {}      # (plan, k, width class) → [(head, sequences, noise key, keys, order)]
    calls_of_lengths = {}       # the heads of one mask share their row lengths, hence their calls
    for h, chip in enumerate(chips):
        lengths = n_keys_used[h].tobytes()
        if lengths not in calls_of_lengths:
            calls_of_lengths[lengths] = _macro_calls(plan, n_keys_used[h], t_q)
        for seqs, n_k in calls_of_lengths[lengths]:
            group = (str(plan(n_k)), min(kk, n_k), n_k if n_k > chip.n_cols else 0)
            key = noise_key(rng) if chip.noise else np.uint64(0)
            calls.setdefault(group, []).append((h, seqs, key, n_k, sum(map(len, calls.values()))))
    energy_of_call = {}     # summed per (head, call) and added in that order, as one call per head did
    for (_, k_call, _), items in calls.items():
        for chunk in _merged_chunks(items, t_q):
            n_k = max(it[3] for it in chunk)
            heads = np.concatenate([np.full(seqs.size, h) for h, seqs, _, _, _ in chunk])
            seq_of = np.concatenate([seqs for _, seqs, _, _, _ in chunk])
            res = topk_under_windows(
                chips, heads, np.concatenate([np.full(seqs.size, key) for _, seqs, key, _, _ in chunk]),
                np.concatenate([np.arange(seqs.size) for _, seqs, _, _, _ in chunk]),   # the noise's batch index
                q_h[heads, seq_of], k_h[heads, seq_of, :, :n_k], k=k_call, quotas=plan(n_k),
                key_mask=vis_h[heads, seq_of, :, :n_k], energy=count_ties)   # energy: for the statistics only
            n_sel = res.indices.shape[-1]
            idx[heads, seq_of, :, :n_sel] = res.indices
            cyc[heads, seq_of, :, :n_sel] = res.n_ramp_steps - res.codes   # code c: fired in cycle n − c
            alpha[heads, seq_of] = res.alpha
            if count_ties:
                quotas = plan(n_k)
                bounds, quotas = chips[0]._tiling(n_k, k_call, quotas) if quotas is not None else (None, None)
                ties[heads, seq_of] = kth_grant_ties_by_array(res.firing_cycle, res.n_ramp_steps - res.codes,
                                                              res.n_ramp_steps, bounds, quotas)
            b0 = 0
            for _, seqs, _, _, order in chunk:
                energy_of_call[order] = float(res.energy_j[b0:b0 + seqs.size].sum())
                b0 += seqs.size
    for order in sorted(energy_of_call):
        energy += energy_of_call[order]
    if not count_ties:
        energy = float("nan")       # not converted: the caller does not take the statistics
    if col_key is not None:     # granted columns → the keys they hold
        h_i, s_i = np.ogrid[:idx.shape[0], :idx.shape[1]]
        idx = np.where(idx >= 0, col_key[h_i[..., None, None], s_i[..., None, None], np.maximum(idx, 0)], -1)
    back = lambda x: np.moveaxis(x, 0, 1).reshape(*lead, *x.shape[2:])  # noqa: E731
    idx, cyc, alpha, ties = back(idx), back(cyc), back(alpha), back(ties)
    # the granted keys: visible ones only (a row's columns of keys it does not see are disabled at the
    # arbiter: key_mask), and the kept grid when the caller takes the statistics
    granted = idx
    kept = None
    if count_ties:
        kept = np.zeros(visible.shape, dtype=bool)
        kept.reshape(-1)[_grid_positions(granted, t_k)] = True
    # read back: a key that fired in cycle j lies in (top − j·LSB, top − (j−1)·LSB] (scaled
    # units), top and LSB as the nominal replica pulses realise them (the artefact's pulse fit:
    # a 4-unit pulse moves 3.76 units), not as programmed; for the granted slots only
    p = hw.chip(windows[0]).params
    n_steps = p.n_ramp_steps
    unit = lambda t: p.pulse_slope * t + p.pulse_offset_units  # noqa: E731
    cycle = np.where(cyc <= n_steps, cyc, n_steps)
    top = np.array([w.n_cal * unit(w.t_cal_units) for w in windows], float)
    lsb = np.array([unit(w.t_ramp_units) for w in windows], float)
    head_shape = (n_heads, 1, 1)
    units = (top.reshape(head_shape) - (cycle - 0.5) * lsb.reshape(head_shape)) / q_scale_h.reshape(head_shape)
    scores = units * score_scale
    stats.alpha = alpha
    stats.energy_j = energy
    stats.n_rows_kth_tie = int(ties.sum())
    stats.adc_range, stats.query_scale = windows[0], float(q_scale_h[0])
    stats.extra["adc_range_per_head"] = windows
    stats.extra["query_scale_per_head"] = q_scale_h.tolist()
    return kept, granted, scores, stats


def _merged_chunks(items, t_q: int):
    """``items`` (head, sequences, noise key, keys, …) in order, in runs of at most CALL_CONVERSIONS
    padded conversions (every element of a run is padded to the run's most keys; at least one
    item per run)."""
    chunk, n_seqs, n_keys = [], 0, 0
    for it in items:
        if chunk and (n_seqs + it[1].size) * t_q * max(n_keys, it[3]) > CALL_CONVERSIONS:
            yield chunk
            chunk, n_seqs, n_keys = [], 0, 0
        chunk.append(it)
        n_seqs += it[1].size
        n_keys = max(n_keys, it[3])
    if chunk:
        yield chunk


def _macro_calls(plan, n_keys: np.ndarray, t_q: int) -> list[tuple[np.ndarray, int]]:
    """Sequences (indices, ascending) converted together, each with its longest row: those with
    keys and the same array plan (``plan(n_keys)``; plans in sorted order), at most
    CALL_CONVERSIONS padded conversions per call."""
    plan_of = {n: str(plan(n)) for n in set(n_keys.tolist()) if n > 0}     # one plan per row length
    calls = []
    for key in sorted(set(plan_of.values())):
        seqs = np.flatnonzero(np.isin(n_keys, [n for n, p in plan_of.items() if p == key]))
        per_call = max(1, CALL_CONVERSIONS // (t_q * int(n_keys[seqs].max())))
        calls += [(c, int(n_keys[c].max())) for c in (seqs[i:i + per_call] for i in range(0, seqs.size, per_call))]
    return calls
