"""Symmetric max-abs quantisation of attention operands (Q, K, V) to integer codes.

codes = clip(rint(x / s), −max_code, max_code), s = max|x| / max_code: one scale per leading
index over its (T, d) block, leaving out the tokens that are not ``valid`` (padding does not set
the scale), or ``per_row``: one scale per token over d (the query rows' digital scale ahead of
the PWM drivers). s is taken in float64 from max|x| in x's own precision (exact: float32 values
are float64 values), and x / s in float64, so float32 and float64 inputs of the same values give
the same codes.

The kernel is one pass over each block: the maximum, then the codes. Its test compares it with
the same formula in numpy (``tests/behavioral/test_attention.py``).
"""
from __future__ import annotations

import numba
import numpy as np

from topkima.behavioral.macro.runtime import JIT


@numba.njit(**JIT)
def _quantize_blocks(x, valid, max_code, per_row, codes, scale):
    """``x`` (N, T, d) float, ``valid`` (N, T) bool → ``codes`` (N, T, d) int64 and the scale of
    each token ``scale`` (N, T) (per block: the same for all its tokens)."""
    n_blocks, n_tokens, d = x.shape
    for b in range(n_blocks):
        block_max = 0.0
        if not per_row:
            for t in range(n_tokens):
                if valid[b, t]:
                    for e in range(d):
                        block_max = max(block_max, abs(x[b, t, e]))
        for t in range(n_tokens):
            m = block_max
            if per_row:
                m = 0.0
                if valid[b, t]:
                    for e in range(d):
                        m = max(m, abs(x[b, t, e]))
            s = np.float64(m) / max_code
            if not s > 0.0:
                s = 1.0
            scale[b, t] = s
            for e in range(d):
                y = min(max(np.float64(x[b, t, e]) / s, -max_code), max_code)
                codes[b, t, e] = np.int64(np.rint(y))


def quantize_symmetric(x: np.ndarray, max_code: int, valid: np.ndarray | None = None, per_row: bool = False):
    """Codes round(x/s) in −max_code…max_code for x of shape (..., T, d) (module docstring).

    ``valid`` (..., T): tokens that set the scale (None: all). Returns (codes int64, s of shape
    (..., 1, 1), or (..., T, 1) ``per_row``, where a row that is not valid has s = 1)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if x.ndim < 2:
        raise ValueError(f"quantize_symmetric needs (..., T, d), got shape {x.shape}")
    lead, (n_tokens, d) = x.shape[:-2], x.shape[-2:]
    if x.size == 0:                        # no tokens or no elements: no codes, unit scales
        return np.zeros(x.shape, dtype=np.int64), np.ones((*lead, n_tokens if per_row else 1, 1))
    blocks = np.ascontiguousarray(x).reshape(-1, n_tokens, d)
    ok = (np.ones((blocks.shape[0], n_tokens), dtype=bool) if valid is None
          else np.ascontiguousarray(np.broadcast_to(valid, (*lead, n_tokens))).reshape(-1, n_tokens))
    codes = np.empty(blocks.shape, dtype=np.int64)
    scale = np.empty(ok.shape)
    _quantize_blocks(blocks, ok, int(max_code), bool(per_row), codes, scale)
    s = scale.reshape(*lead, n_tokens, 1)
    return codes.reshape(x.shape), (s if per_row else s[..., :1, :])


def rint_codes(y: np.ndarray, max_code: int) -> np.ndarray:
    """clip(rint(y), −max_code, max_code) as int64 (y float64, overwritten; layout kept): clipped
    first, which is the same for an integer bound, then rounded straight into the integers."""
    np.clip(y, -max_code, max_code, out=y)
    codes = np.empty_like(y, dtype=np.int64)
    np.rint(y, out=codes, casting="unsafe")   # integral values: the cast is exact
    return codes


@numba.njit(**JIT)
def _scaled_codes_int8(codes, scale_of_head, max_code, out):
    for h in range(codes.shape[0]):
        s = scale_of_head[h]
        for i in range(codes.shape[1]):
            for t in range(codes.shape[2]):
                for e in range(codes.shape[3]):
                    y = min(max(codes[h, i, t, e] * s, -max_code), max_code)
                    out[h, i, t, e] = np.int8(np.rint(y))


def scaled_codes_int8(codes: np.ndarray, scale_of_head: np.ndarray, max_code: int) -> np.ndarray:
    """``rint_codes(codes · scale_of_head[h], max_code)`` of integer codes (heads, N, T, d), one
    scale per head, as int8 (the macro's input codes; ``max_code`` ≤ 127), in one pass."""
    if not 0 < max_code <= 127:
        raise ValueError(f"int8 codes need max_code in 1..127, got {max_code}")
    scale_of_head = np.asarray(scale_of_head, dtype=np.float64)
    if not np.all(np.isfinite(scale_of_head) & (scale_of_head > 0)):
        raise ValueError(f"query scales must be finite and positive, got {scale_of_head.tolist()}")
    out = np.empty(codes.shape, dtype=np.int8)
    _scaled_codes_int8(codes, np.ascontiguousarray(scale_of_head, dtype=np.float64), float(max_code), out)
    return out
