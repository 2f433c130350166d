"""Frozen attention ranges: every scale and ADC range of the Topkima pipeline, fitted once on
calibration tensors and then fixed, so that no output row depends on a statistic of the call.

With ranges taken from the call itself (``topkima_attention`` without ``ranges``), the key and
value scales (max |k|, max |v| per sequence and head), the Q·Kᵀ ADC window and the A·V ADC's full
scale all see every key of the sequence: under a causal mask a row's output then changes when a
future token changes. Frozen ranges remove that path. What stays per call is causal by itself:
a query row's own digital scale (max |q| over its d elements, known when the row is applied).

Per head (the axis −3 of (..., heads, T, d) tensors):

* ``k_scale``: K code = rint(k / k_scale), levels −7…7. Policy ``"sequence-head"``: one scale per
  head (the paper's max-abs quantisation, frozen). Policy ``"channel"``: one scale per head and
  key channel e. Its inverse cannot live in the array (a column stores one code per element), so
  it is folded into the query: q'_e = q_e · k_scale_e, and Σ_e q_e·k_e = Σ_e q'_e·(k_e / k_scale_e).
  That is legal in hardware because the query row already passes a per-row digital scale ahead
  of the PWM drivers; the per-channel factors join it as one multiply per element (a vector of d
  constants per head), before the row's own max-abs rounding to sign + 5 bits.
* ``v_scale``: V code = rint(v / v_scale), signed 5 bit.
* ``qk_windows``: the Q·Kᵀ ADC window and query scale for ``top_k`` (:func:`choose_adc_range` on
  the calibration rows' best scores), within the ramp limits of the macro they are fitted for
  (``ramp_limits``: default the paper's 32-step column, :mod:`topkima.behavioral.macro.ramp_limits`).
* ``av_full_scale``: the SRAM A·V ADC's full scale (code units) from the ideal |A·V| outputs of
  the calibration rows under ideal top-k. Policy ``"max"`` (the default): their largest value, so
  no calibration output clips. Policy a quantile q in (0, 1) (e.g. 0.999, 0.99): that quantile of
  the head's |outputs| over its real rows and every output column, so a finer LSB for most outputs;
  the ADC clips what lies beyond, at its end codes ±(2^(bits−1) − 1), as a real ADC saturates
  (:class:`~topkima.behavioral.sram_av.SramAVModel`). One full scale per head, shared by the head's
  output columns [our choice]: each column has its own ADC, so a per-column full scale is possible
  in hardware (each column's reference or LSB trimmed at calibration, as the Q·Kᵀ window sets its
  starting level per column), but it is not modelled here.

Ranges are plain numbers: :meth:`AttentionRanges.to_json` / :meth:`from_json` store them (no pickle).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from topkima.behavioral.attention import (K_MAX_LEVEL, Q_MAX_CODE, V_MAX_CODE, SoftmaxCore, _keep_best, _real_rows_keys,
                                          _sparse_softmax)
from topkima.behavioral.head_windows import head_windows
from topkima.behavioral.macro import AdcRange
from topkima.behavioral.macro.ramp_limits import RampLimits
from topkima.behavioral.quantize import quantize_symmetric, rint_codes

KEY_SCALE_POLICIES = ("sequence-head", "channel")
#: the A·V full-scale policy besides a quantile in (0, 1): the calibration outputs' largest |value|
AV_FULL_SCALE_MAX = "max"


def check_av_full_scale_policy(policy) -> str | float:
    """``policy`` as :meth:`AttentionRanges.fit` takes it ("max" or a float quantile in (0, 1)), or
    a ValueError saying what is allowed."""
    if policy == AV_FULL_SCALE_MAX:
        return AV_FULL_SCALE_MAX
    if isinstance(policy, (float, np.floating)) and not isinstance(policy, bool) and 0.0 < policy < 1.0:
        return float(policy)
    raise ValueError(f"av_full_scale must be {AV_FULL_SCALE_MAX!r} (the calibration outputs' largest |value|) or a "
                     f"quantile of them strictly between 0 and 1 (e.g. 0.999), got {policy!r}")


@dataclass(frozen=True, eq=False)
class AttentionRanges:
    """Frozen per-head ranges of one attention layer (module docstring)."""

    top_k: int
    key_policy: str
    k_scale: np.ndarray            #: (heads, 1, 1) or, policy "channel", (heads, 1, d)
    v_scale: np.ndarray            #: (heads, 1, 1)
    av_full_scale: np.ndarray      #: (heads,) A·V ADC full scale, code units
    qk_windows: tuple              #: per head (AdcRange, query scale)

    @property
    def n_heads(self) -> int:
        return self.k_scale.shape[0]

    @classmethod
    def fit(cls, q, k, v, *, top_k: int, mask=None, policy: str = "channel",
            softmax: SoftmaxCore = SoftmaxCore(), window_top_quantile: float = 0.75,
            window_bottom_quantile: float = 0.1, ramp_limits: RampLimits | None = None,
            av_full_scale: str | float = AV_FULL_SCALE_MAX) -> "AttentionRanges":
        """Ranges from calibration tensors q, k, v (..., heads, T, d) (q carries 1/√d_k) and
        their mask (broadcastable to (..., heads, T_q, T_k), True = visible): scales from the
        real tokens' largest magnitudes, the windows from their scores under these scales
        (the window top at ``window_top_quantile`` of the rows' best scores, its bottom at
        ``window_bottom_quantile`` of their k-th best: :func:`choose_adc_range`), within
        ``ramp_limits`` (those of the macro the ranges are for; None: the paper's column);
        ``av_full_scale``: the A·V ADC's full-scale policy, "max" or a quantile (module docstring)."""
        av_policy = check_av_full_scale_policy(av_full_scale)
        if policy not in KEY_SCALE_POLICIES:
            raise ValueError(f"policy must be one of {', '.join(KEY_SCALE_POLICIES)}; got {policy!r}")
        if ramp_limits is not None and not isinstance(ramp_limits, RampLimits):
            raise ValueError(f"ramp_limits must be a RampLimits (or None), got {ramp_limits!r}")
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
        if q.ndim < 3 or q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1] or q.shape[-1] != k.shape[-1]:
            raise ValueError(f"q {q.shape}, k {k.shape}, v {v.shape} are not (..., heads, T, d) attention inputs")
        if not all(np.all(np.isfinite(x)) for x in (q, k, v)):
            raise ValueError("calibration q, k, v must hold finite numbers")
        if q.shape[-2] == 0 or k.shape[-2] == 0 or q.shape[-1] == 0:
            raise ValueError(f"calibration tensors need tokens and elements to fit ranges on; got q {q.shape}, "
                             f"k {k.shape}")
        full = (*q.shape[:-2], q.shape[-2], k.shape[-2])
        visible = np.ones(full, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), full)
        row_real, key_real, n_visible = _real_rows_keys(visible)
        n_heads = q.shape[-3]
        per_head = lambda x, keep_last: np.moveaxis(x, -3, 0).reshape(n_heads, -1, x.shape[-1] if keep_last else 1)  # noqa: E731
        k_abs = np.where(key_real[..., None], np.abs(k), 0.0)
        v_abs = np.where(key_real[..., None], np.abs(v), 0.0)
        if policy == "sequence-head":
            k_max = per_head(k_abs, False).reshape(n_heads, -1).max(axis=1)[:, None, None]
        else:
            k_max = per_head(k_abs, True).max(axis=1)[:, None, :]
        v_max = per_head(v_abs, False).reshape(n_heads, -1).max(axis=1)[:, None, None]
        k_scale = np.where(k_max > 0, k_max / K_MAX_LEVEL, 1.0)
        v_scale = np.where(v_max > 0, v_max / V_MAX_CODE, 1.0)
        ranges = cls(int(top_k), policy, k_scale, v_scale, np.ones(n_heads), ())
        q_codes, k_codes, scores_units, score_scale, v_codes, _ = ranges.quantize(q, k, v, row_real)
        kk = min(int(top_k), k.shape[-2])
        windows = tuple(head_windows(scores_units, visible, n_visible >= kk, kk, n_heads, window_top_quantile,
                                     window_bottom_quantile, ramp_limits))
        # the A·V ADC's full scale: the ideal outputs of ideal top-k on the calibration rows
        kept = _keep_best(np.broadcast_to(scores_units, visible.shape), visible, np.full(visible.shape[:-1], top_k))
        a = _sparse_softmax(softmax, scores_units * score_scale, kept)
        ideal = np.rint(a * ((1 << softmax.a_bits) - 1)) @ v_codes.astype(np.float64)
        if av_policy == AV_FULL_SCALE_MAX:
            av_full = np.abs(np.moveaxis(ideal, -3, 0)).reshape(n_heads, -1).max(axis=1)
        else:   # the quantile of each head's |outputs| over its real rows (rows without keys output nothing)
            outputs, real = np.abs(np.moveaxis(ideal, -3, 0)), np.moveaxis(row_real, -2, 0)
            av_full = np.array([np.quantile(outputs[h][real[h]], av_policy) if real[h].any() else 0.0
                                for h in range(n_heads)])
        return replace(ranges, av_full_scale=av_full, qk_windows=windows)

    def check(self, n_heads: int, top_k: int, d: int) -> None:
        """A ValueError unless these ranges fit a call with ``n_heads`` heads, ``top_k`` and d."""
        if n_heads != self.n_heads:
            raise ValueError(f"ranges were fitted for {self.n_heads} heads; the call has {n_heads}")
        if top_k != self.top_k:
            raise ValueError(f"ranges were fitted for top_k = {self.top_k} (its ADC windows); the call asks "
                             f"top_k = {top_k}: fit ranges for it")
        if self.k_scale.shape[-1] not in (1, d):
            raise ValueError(f"ranges were fitted with d = {self.k_scale.shape[-1]} key channels; the call has {d}")

    def quantize(self, q, k, v, row_real):
        """Under these ranges: (Q codes, K codes, integer scores q·kᵀ in MAC units, the real score
        per unit of each row, V codes, the V scale) for (..., heads, T, d) inputs; ``row_real``
        (..., T_q): rows that see a key (only they set a row's digital scale)."""
        q = np.asarray(q, dtype=np.float64)
        if self.key_policy == "channel":   # per-channel key scales folded into the query's digital scale
            q = q * self.k_scale
        q_codes, s_q = quantize_symmetric(q, Q_MAX_CODE, row_real, per_row=True)
        k_codes = rint_codes(np.asarray(k, dtype=np.float64) / self.k_scale, K_MAX_LEVEL)
        v_codes = rint_codes(np.asarray(v, dtype=np.float64) / self.v_scale, V_MAX_CODE)
        mac = np.float32 if Q_MAX_CODE * K_MAX_LEVEL * q.shape[-1] < 2 ** 24 else np.float64   # exact integers
        scores_units = (np.ascontiguousarray(q_codes, dtype=mac)
                        @ np.ascontiguousarray(np.swapaxes(k_codes, -1, -2), dtype=mac)).astype(np.float64)
        score_scale = s_q * (self.k_scale if self.key_policy == "sequence-head" else 1.0)
        return q_codes, k_codes, scores_units, score_scale, v_codes, np.broadcast_to(self.v_scale, (*v.shape[:-2], 1, 1))

    def to_json(self) -> dict:
        """The ranges as plain numbers (JSON); windows for other than the paper's column carry their
        ramp limits (``ramp_limits``)."""
        stored = {"top_k": self.top_k, "key_policy": self.key_policy, "k_scale": self.k_scale.tolist(),
                "v_scale": self.v_scale.tolist(), "av_full_scale": self.av_full_scale.tolist(),
                "qk_windows": [{"n_cal": int(w.n_cal), "t_cal_units": int(w.t_cal_units),
                                "t_ramp_units": int(w.t_ramp_units), "query_scale": float(s)}
                               for w, s in self.qk_windows]}
        limits = {w.limits for w, _ in self.qk_windows}
        if limits != {RampLimits()} and limits:
            if len(limits) > 1:
                raise ValueError("the heads' windows were fitted for different ramp limits")
            stored["ramp_limits"] = limits.pop().to_json()
        return stored

    @classmethod
    def from_json(cls, data: dict) -> "AttentionRanges":
        """Ranges stored by :meth:`to_json` (validated: a ValueError names what is wrong)."""
        try:
            limits = RampLimits.from_json(data["ramp_limits"]) if "ramp_limits" in data else RampLimits()
            windows = tuple((AdcRange(int(w["n_cal"]), int(w["t_cal_units"]), int(w["t_ramp_units"]), limits=limits),
                             float(w["query_scale"])) for w in data["qk_windows"])
            r = cls(int(data["top_k"]), str(data["key_policy"]), np.asarray(data["k_scale"], float),
                    np.asarray(data["v_scale"], float), np.asarray(data["av_full_scale"], float), windows)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not stored attention ranges: {exc!r}") from None
        if r.key_policy not in KEY_SCALE_POLICIES:
            raise ValueError(f"unknown key policy {r.key_policy!r}")
        h = r.n_heads
        if (r.top_k < 1 or r.k_scale.ndim != 3 or r.k_scale.shape[1] != 1 or r.v_scale.shape != (h, 1, 1)
                or r.av_full_scale.shape != (h,) or len(r.qk_windows) != h
                or not all(np.all(np.isfinite(x)) and np.all(x > 0) for x in (r.k_scale, r.v_scale))
                # a head whose calibration outputs are all 0 has an A·V full scale of 0, as fit gives it
                or not (np.all(np.isfinite(r.av_full_scale)) and np.all(r.av_full_scale >= 0))
                or not all(np.isfinite(s) and s > 0 for _, s in r.qk_windows)):
            raise ValueError("stored attention ranges have inconsistent shapes, a top_k below 1, K or V scales that "
                             "are not finite and positive, or an A·V full scale below 0")
        return r
