"""A·V on an SRAM in-memory array: V stored bit by bit in read cells with frozen current
errors, A applied as PWM widths, each output column read by a signed ADC.

Two faces of one model: the dense product over every key (:meth:`SramAVModel.__call__`, the
obvious form, any A), and the kernel over the granted keys only (:meth:`SramAVModel.of_granted`:
a top-k row drives at most k wordlines), tested against each other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from topkima.behavioral.macro.runtime import JIT, parallel_for


@dataclass(frozen=True)
class SramAVModel:
    """A·V on an SRAM in-memory array [our model, parameters from the artefact where they exist].

    V codes (signed 5 bit) are stored as sign + 4 magnitude bits, one read cell per bit; A codes
    (0…31) drive the wordlines as PWM widths. Cell currents carry a frozen factor 1 + ε,
    ε ~ N(0, σ_cell) per cell (σ_cell: the artefact's read-cell current mismatch), so a column
    sums Σ_j A_j·sign(V_j)·Σ_b 2^b·bit_b(|V_j|)·(1 + ε_jb). The column result is read by a
    signed ``adc_bits``-bit ADC whose full scale is the largest ideal |output| of the call
    (per sequence and head) [our choice; docs/spec.md §5: 5-bit ADCs].

    Rows longer than one array (``keys_per_array`` keys, ``outputs_per_array`` output columns)
    are tiled: each array sums its own keys for its own outputs, its ADC reads that partial sum
    over the array's own full scale, and the partial results of a row's key tiles are added
    digitally [our choice; the paper's A·V array is 512 × 256].
    """

    sigma_cell_rel: float
    adc_bits: int = 5
    n_mag_bits: int = 4
    keys_per_array: int = 512
    outputs_per_array: int = 256

    def draw(self, rng: np.random.Generator, n_rows: int, n_cols: int) -> np.ndarray:
        """Frozen per-cell errors, tabulated: (n_rows keys, n_cols outputs, |V| = 0…15) →
        Σ_b 2^b·bit_b(|V|)·ε_b, the current error of the cells that store |V| (ε drawn per bit cell)."""
        eps = rng.normal(0.0, self.sigma_cell_rel, (n_rows, n_cols, self.n_mag_bits))
        bits = (np.arange(1 << self.n_mag_bits)[:, None] >> np.arange(self.n_mag_bits)) & 1   # (16, bits)
        return eps @ (bits * (2.0 ** np.arange(self.n_mag_bits))).T

    def __call__(self, a_codes: np.ndarray, v_codes: np.ndarray, err_table: np.ndarray | None,
                 full_scale: np.ndarray | None = None) -> np.ndarray:
        """Output in code units (A code × V code); ``err_table`` None = ideal cells.
        ``full_scale``: the ADCs' full scale (code units) per leading index, frozen ahead of the
        call (e.g. :class:`~topkima.behavioral.ranges.AttentionRanges`); None: the call's own
        largest ideal |output| per array."""
        t_k, d_v = v_codes.shape[-2:]
        self._check(t_k, d_v, v_codes, err_table)
        if err_table is None:
            v_eff = v_codes.astype(np.float64)
        else:
            # sign(V)·(|V| + err[key, output, |V|]), tabulated for every code of the array's
            # cells in use (keys × outputs × codes), then looked up per stored V
            m = err_table.shape[-1] - 1
            codes = np.arange(-m, m + 1)
            table = np.sign(codes) * (np.abs(codes) + err_table[:t_k, :d_v, np.abs(codes)])
            first = (np.arange(t_k)[:, None] * d_v + np.arange(d_v)) * codes.size + m   # entry of code 0
            v_eff = table.reshape(-1)[v_codes + first]
        half = (1 << (self.adc_bits - 1)) - 1
        out = np.zeros((*np.broadcast_shapes(a_codes.shape[:-1], v_codes.shape[:-2] + (1,)), d_v))
        for j0 in range(0, t_k, self.keys_per_array):          # the arrays a row's keys span …
            keys = slice(j0, j0 + self.keys_per_array)
            for o0 in range(0, d_v, self.outputs_per_array):   # … and its outputs
                outs = slice(o0, o0 + self.outputs_per_array)
                part = a_codes[..., keys] @ v_eff[..., keys, outs]
                ideal = a_codes[..., keys] @ v_codes[..., keys, outs].astype(np.float64)
                full = (np.abs(ideal).max(axis=(-2, -1), keepdims=True) if full_scale is None
                        else np.asarray(full_scale, float)[..., None, None])
                lsb = np.where(full > 0, full / half, 1.0)
                np.divide(part, lsb, out=part)   # in place: clip(rint(part / lsb), ±half) · lsb
                np.rint(part, out=part)
                np.clip(part, -half, half, out=part)
                part *= lsb
                out[..., outs] += part
        return out

    def of_granted(self, a_codes: np.ndarray, granted: np.ndarray, v_codes: np.ndarray,
                   err_table: np.ndarray | None, full_scale: np.ndarray | None = None) -> np.ndarray:
        """The same output as ``self(dense A, v_codes, err_table)`` when A is nonzero only at
        the granted keys: ``a_codes`` (..., T_q, slots) the A code of each slot, ``granted``
        (..., T_q, slots) its key (−1: empty slot). Only the granted keys' wordlines are summed
        (up to float64 rounding, the same sums as the dense product). ``full_scale``: as in
        :meth:`__call__`, per leading index of ``granted``."""
        t_k, d_v = v_codes.shape[-2:]
        self._check(t_k, d_v, v_codes, err_table)
        lead = granted.shape[:-2]
        v = np.ascontiguousarray(np.broadcast_to(v_codes, (*lead, t_k, d_v)), dtype=np.int64).reshape(-1, t_k, d_v)
        g = np.ascontiguousarray(granted, dtype=np.int64).reshape(-1, *granted.shape[-2:])
        a = np.ascontiguousarray(np.broadcast_to(a_codes, granted.shape), dtype=np.float64).reshape(g.shape)
        err = np.zeros((1, 1, 1)) if err_table is None else np.ascontiguousarray(err_table, dtype=np.float64)
        out = np.empty((g.shape[0], g.shape[1], d_v))     # each block zeroes its own (a large np.zeros maps fresh pages)
        given = full_scale is not None
        full = (np.ascontiguousarray(np.broadcast_to(full_scale, lead), dtype=np.float64).reshape(-1) if given
                else np.zeros(g.shape[0]))
        parallel_for(_av_of_granted, g.shape[0], a, g, v, err, err_table is not None, (1 << (self.adc_bits - 1)) - 1,
                     self.keys_per_array, self.outputs_per_array, given, full, out)
        return out.reshape(*lead, g.shape[1], d_v)

    def _check(self, t_k: int, d_v: int, v_codes: np.ndarray, err_table: np.ndarray | None) -> None:
        if err_table is not None and (t_k > err_table.shape[0] or d_v > err_table.shape[1]):
            raise ValueError(f"A·V of {t_k} keys × {d_v} outputs needs cell errors for that many; the table "
                             f"given covers {err_table.shape[0]} × {err_table.shape[1]} (draw one per array: "
                             "TopkimaHardware.av_errors)")
        if err_table is not None:
            m = err_table.shape[-1] - 1
            if not np.issubdtype(v_codes.dtype, np.integer) or v_codes.size and (v_codes.min() < -m or v_codes.max() > m):
                raise IndexError(f"V codes must be integers in −{m}…{m} (the SRAM cells' magnitude bits)")


@numba.njit(**JIT)
def _av_of_granted(start, stop, a_codes, granted, v_codes, err, with_err, half, keys_per_array, outputs_per_array,
                   full_given, full_scale, out):
    """Blocks ``start`` … ``stop`` − 1 (a sequence and head each) of :meth:`SramAVModel.of_granted`,
    array by array (a tile of keys × outputs). Per query row, the A codes of its granted keys on
    the array drive their wordlines: each output column sums A code × the stored V (sign(V)·(|V| +
    err[key, column, |V|]) with cell errors), beside the ideal sum Σ A·V. The array's signed ADC
    of ±``half`` steps then reads every row's column sums over the largest ideal |sum| of the
    block on that array (or ``full_scale[b]`` when ``full_given``), and the arrays' results add up
    in ``out`` (each block's zeroed here first). A block is computed by one thread, in the same order whatever the count.
    (The loops over an array's columns run over views from 0: numba then knows the indices are
    not negative and vectorises them.)"""
    n_rows, n_slots = granted.shape[1:]
    t_k, d_v = v_codes.shape[1:]
    stored = np.empty((t_k, d_v))       # what the block's cells hold: V with their errors, …
    ideal_v = np.empty((t_k, d_v))      # … V itself, …
    stored_for = np.full(t_k, -1)       # … written for the block's granted keys only, on first use
    ideal = np.empty(d_v)               # a row's ideal column sums on one array
    column = np.empty((n_rows, d_v))    # every row's column sums on one array, ahead of its ADC
    for b in range(start, stop):
        out[b] = 0.0
        for j0 in range(0, t_k, keys_per_array):
            j1 = min(j0 + keys_per_array, t_k)
            for o0 in range(0, d_v, outputs_per_array):
                o1 = min(o0 + outputs_per_array, d_v)
                n_out = o1 - o0
                full = full_scale[b]
                ideal_t = ideal[o0:o1]
                for r in range(n_rows):
                    ideal_t[:] = 0.0
                    column_t = column[r, o0:o1]
                    column_t[:] = 0.0
                    for s in range(n_slots):        # the granted keys on this array, in slot order
                        j = granted[b, r, s]
                        if not j0 <= j < j1:
                            continue
                        if stored_for[j] != b:
                            stored_for[j] = b
                            for o in range(d_v):
                                v = v_codes[b, j, o]
                                ideal_v[j, o] = v
                                stored[j, o] = v
                                if with_err and v != 0:
                                    stored[j, o] = (abs(v) + err[j, o, abs(v)]) * (1.0 if v > 0 else -1.0)
                        a = a_codes[b, r, s]
                        ideal_v_t, stored_t = ideal_v[j, o0:o1], stored[j, o0:o1]
                        for o in range(n_out):
                            ideal_t[o] += a * ideal_v_t[o]
                            column_t[o] += a * stored_t[o]
                    if not full_given:
                        for o in range(n_out):
                            full = max(full, abs(ideal_t[o]))
                lsb = full / half if full > 0.0 else 1.0
                for r in range(n_rows):
                    column_t, out_t = column[r, o0:o1], out[b, r, o0:o1]
                    for o in range(n_out):
                        out_t[o] += min(max(np.rint(column_t[o] / lsb), -half), half) * lsb
