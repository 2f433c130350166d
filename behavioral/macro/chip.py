"""The calibrated Topkima macro and its chips: top-k selection inside the ramp ADC.

:class:`TopkimaMacro` reads the calibration artefact (and nothing else from the SPICE world);
its chips are :class:`ChipInstance` s: ``instance(rng)`` freezes every device's mismatch,
``nominal()`` keeps the systematic effects only, ``ideal()`` is a linear, noiseless macro. The
physics is documented module by module: :mod:`.mac`, :mod:`.bitline`, :mod:`.adc`, :mod:`.noise`,
:mod:`.arbiter`, :mod:`.energy`; :mod:`.convert` runs them row by row.
"""
from __future__ import annotations

from dataclasses import replace

import numba
import numpy as np

from topkima.behavioral.macro import devices as dev
from topkima.behavioral.macro.adc import AdcRange, RampColumns, noise_half_window, ramp_columns
from topkima.behavioral.macro.ramp_limits import RampLimits
from topkima.behavioral.macro.arbiter import select_topk
from topkima.behavioral.macro.arrays import ARRAYS, SUBTOPK_PRESETS, Tiling, design_array
from topkima.behavioral.macro.bitline import (BitlineModel, bitline_model, fit_insitu_correction,
                                              leak_model, leak_units_array, leak_units_per_unit,
                                              v_of_units_array)
from topkima.behavioral.macro.convert import convert, windows_of
from topkima.behavioral.macro.devices import TileDraws
from topkima.behavioral.macro.energy import energy_model, latency_s
from topkima.behavioral.macro.mac import mac_units, pulse_terms
from topkima.behavioral.macro.noise import noise_key
from topkima.behavioral.macro.results import TopkResult
from topkima.behavioral.macro.runtime import JIT
from topkima.behavioral.params import MacroParams, params_from_calibration
from topkima.calibration import Calibration


def used_length(any_used: np.ndarray) -> np.ndarray:
    """1 + the last True index along the last axis (0 where none)."""
    n = any_used.shape[-1]
    return np.where(any_used.any(axis=-1), n - np.argmax(any_used[..., ::-1], axis=-1), 0)


def used_rows_and_keys(enable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per batch element of ``enable`` (B, R, n) bool: its rows up to the last one with an enabled
    column, and its columns up to the last one enabled in any row (``used_length`` of the mask's
    rows and columns, in one compiled pass)."""
    rows, keys = np.zeros(enable.shape[0], dtype=np.int64), np.zeros(enable.shape[0], dtype=np.int64)
    _used_rows_and_keys(enable, rows, keys)
    return rows, keys


@numba.njit(**JIT)
def _used_rows_and_keys(enable, rows, keys):
    for b in range(enable.shape[0]):
        for r in range(enable.shape[1]):
            any_in_row = False
            last = 0
            for c in range(enable.shape[2]):       # without branches: runs as vector instructions
                any_in_row |= enable[b, r, c]
                last = max(last, (c + 1) * enable[b, r, c])
            if any_in_row:
                rows[b] = r + 1
            keys[b] = max(keys[b], last)


class ChipInstance:
    """One chip of a macro: its arrays' devices (drawn on first use) under the macro's ADC window."""

    def __init__(self, params: MacroParams, array: str, noise: bool, linear: bool, bitlines: BitlineModel,
                 devices_of_array, corner: str = "tt", geometry: tuple | None = None):
        self.params = params
        self.array = array
        self.noise = noise
        self.linear = linear
        self.corner = corner
        #: (columns, key elements per column, pulse scales): the macro's (None: the named array of ARRAYS)
        self.geometry = tuple(geometry) if geometry is not None else ARRAYS[array]
        self.n_cols, self.n_elements, self.scales = self.geometry
        self.k_max = params.k_max if len(self.scales) == 3 else 1
        self.bitlines = bitlines
        self.pulse = pulse_terms(params, self.scales, linear)
        self.energy = energy_model(params, len(self.scales))
        self._devices_of_array = devices_of_array     #: array index → ArrayDevices (memoised here)
        self._devices: dict[int, dev.ArrayDevices] = {}
        self._ramps: dict[int, RampColumns] = {}

    # --- the arrays ----------------------------------------------------------------------------
    def devices(self, array_index: int = 0) -> dev.ArrayDevices:
        """The frozen devices of array ``array_index`` (drawn on first use)."""
        if array_index not in self._devices:
            self._devices[array_index] = self._devices_of_array(array_index)
        return self._devices[array_index]

    def ramp(self, array_index: int = 0) -> RampColumns:
        if array_index not in self._ramps:
            self._ramps[array_index] = ramp_columns(self.params, self.devices(array_index))
        return self._ramps[array_index]

    def without_noise(self) -> "ChipInstance":
        """The same devices without comparator noise (what the frozen mismatch alone does)."""
        return ChipInstance(self.params, self.array, False, self.linear, self.bitlines, self.devices, self.corner,
                            self.geometry)

    def noise_half_window(self) -> int:
        return noise_half_window(self.params)

    # --- input checks --------------------------------------------------------------------------
    def check_inputs(self, q_codes, k_levels, k: int | None):
        """Integer codes in range as int8 arrays (as the kernels take them), or a ValueError naming what is wrong."""
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
        d = kl.shape[-2]
        if d > self.n_elements:
            raise ValueError(f"d = {d} key elements do not fit one column of a {self.array} array "
                             f"({self.n_elements} elements)")
        # the largest magnitude as a Python number (−int8(−128) would wrap)
        q_abs = max(-float(q.min(initial=0)), float(q.max(initial=0)))
        k_abs = max(-float(kl.min(initial=0)), float(kl.max(initial=0)))
        if q_abs > self.params.q_max:
            raise ValueError(f"q_codes must lie in -{self.params.q_max}..{self.params.q_max} (sign + 5-bit PWM "
                             f"magnitude); got |q| up to {q_abs:g}")
        if k_abs > self.k_max:
            raise ValueError(f"k_levels must lie in -{self.k_max}..{self.k_max} for a {self.array} array; "
                             f"got |k| up to {k_abs:g}")
        q, kl = q.astype(np.int8), kl.astype(np.int8)    # in range: the kernels' codes
        if k is not None:
            if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
                raise ValueError(f"k must be a positive integer, got {k!r}")
        return q, kl

    # --- top-k ---------------------------------------------------------------------------------
    def topk(self, q_codes, k_levels, k: int = 5, quotas=None, rng: np.random.Generator | None = None,
             mode: str = "topk", key_mask=None, energy: bool = True) -> TopkResult:
        """Top-k of q·K for every query row.

        ``k_levels`` is (d, n_keys), shared by all query rows, or batched (..., d, n_keys) with
        leading dimensions that broadcast with those of ``q_codes`` (..., rows, d): one key set
        per (batch, head). ``quotas``: None (one array per ``n_cols`` keys, each with quota k when the
        keys fit one array, else global top-k over all arrays' firings), a preset name ("3+2",
        "2+2+1"), or a tuple of per-array quotas (Σ = k). ``mode="conventional"``: full ramp,
        every column converted (indices and codes of all keys, for baselines). ``key_mask``:
        booleans broadcastable to (..., rows, n_keys), False = the column is disabled at the
        arbiter for that row (padding, causal masks): it is never selected and its comparator
        is not clocked; fewer than k enabled keys leave −1 indices. A batch may be ragged: each
        key set is written only up to the last key any of its rows may see, and only its rows up
        to the last one that sees a key are applied. ``energy=False`` skips the energy pass (about a
        fifth of a conversion's time): ``energy_j`` is then NaN, everything else is unchanged.
        """
        q, kl = self.check_inputs(q_codes, k_levels, k)
        n_keys = kl.shape[-1]
        out_shape = q.shape[:-1] if kl.ndim == 2 else (*np.broadcast_shapes(q.shape[:-2], kl.shape[:-2]), q.shape[-2])
        if mode not in ("topk", "conventional"):
            raise ValueError(f"mode must be 'topk' or 'conventional', got {mode!r}")
        if mode == "topk" and k > n_keys:
            raise ValueError(f"k = {k} is larger than the number of keys ({n_keys})")
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
        if self.noise and rng is None:
            raise ValueError("a chip instance with noise needs rng= (a numpy Generator) for the comparator noise")
        self._tiling(n_keys, k, quotas)     # bad quotas are refused before the noise key is drawn
        d = kl.shape[-2]
        # the batch: B elements of R rows, one key set each (a shared key set: B = 1)
        if kl.ndim == 2:
            qb, kb = q.reshape(1, -1, d), kl[None]
        else:
            lead = np.broadcast_shapes(q.shape[:-2], kl.shape[:-2])
            qb = np.broadcast_to(q, (*lead, *q.shape[-2:])).reshape(-1, *q.shape[-2:])
            kb = np.broadcast_to(kl, (*lead, d, n_keys)).reshape(-1, d, n_keys)
        n_batch, n_rows = qb.shape[:2]
        if enable is not None:
            enable = enable.reshape(n_batch, n_rows, n_keys)
        key = noise_key(rng) if self.noise else np.uint64(0)
        res = _convert_batch([self], np.zeros(n_batch, np.int64), np.full(n_batch, key, np.uint64),
                             np.arange(n_batch), qb, kb, enable, k, quotas, mode, energy)
        back = lambda x: x.reshape((*out_shape, *x.shape[2:]))  # noqa: E731
        return TopkResult(indices=back(res.indices), codes=back(res.codes), cycles=back(res.cycles),
                          energy_j=back(res.energy_j), latency_s=back(res.latency_s), n_ramp_steps=res.n_ramp_steps,
                          firing_cycle=back(res.firing_cycle))

    def _tiling(self, n_keys: int, k: int, quotas):
        if quotas is None:
            bounds = [(c0, min(c0 + self.n_cols, n_keys)) for c0 in range(0, n_keys, self.n_cols)]
            return bounds, None
        if isinstance(quotas, str):
            if quotas not in SUBTOPK_PRESETS:
                raise ValueError(f"unknown sub-top-k preset {quotas!r}; choose one of {', '.join(SUBTOPK_PRESETS)}")
            array, sizes, quota = SUBTOPK_PRESETS[quotas]
            if array != self.array:
                raise ValueError(f"preset {quotas!r} is defined on {array} arrays; this macro uses {self.array}")
        elif isinstance(quotas, Tiling):
            sizes, quota = tuple(int(x) for x in quotas.sizes), tuple(int(x) for x in quotas.quotas)
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
            if size > self.n_cols:
                raise ValueError(f"an array holds at most {self.n_cols} keys, got a block of {size}")
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

    # --- the analog quantities, for fits, golden comparisons and studies -------------------------
    def mac_units(self, q_codes, k_levels, array_index: int = 0):
        """(U_L, U_R) (rows, n) float64 after the MAC phase, for q (rows, d) and keys (d, n)."""
        q, kl = self.check_inputs(q_codes, k_levels, None)
        return mac_units(self.devices(array_index), self.pulse, q.reshape(-1, q.shape[-1]), kl, len(self.scales))

    def leak_units_per_unit(self, k_levels) -> np.ndarray:
        """Leakage of each column's bitlines (units per PWM unit)."""
        return leak_units_per_unit(self.params, np.asarray(k_levels), self.n_elements, len(self.scales), self.linear)

    def bitline_voltages(self, u_l, u_r, leak, cycle, array_index: int = 0):
        """(V_L, V_R) the comparators see at the sense instant of ``cycle`` (broadcast), columns
        on the last axis (numpy; for studies)."""
        ramp, bl = self.ramp(array_index), self.bitlines
        u_l, u_r = np.asarray(u_l, float), np.asarray(u_r, float)
        j = np.broadcast_to(np.asarray(cycle), np.broadcast_shapes(u_l.shape, np.shape(cycle)))
        n = u_l.shape[-1]
        u_ramp, u_cal = ramp.u_ramp_after_units[np.arange(n), j], ramp.u_cal_units[:n]
        v_l = v_of_units_array(bl, u_l + leak_units_array(bl, j, leak, u_l, u_ramp, bl.ramp_age_frac[j]) + u_ramp)
        v_r = v_of_units_array(bl, u_r + leak_units_array(bl, j, leak, u_r, u_cal, bl.cal_age_frac[j]) + u_cal)
        return (bl.keep_l * v_l - bl.mix_l * v_r + bl.offset_l_v[j],
                bl.mix_r * v_l + bl.keep_r * v_r + bl.offset_r_v[j])

    def e_per_decision_j(self, v_cm, v_diff=None):
        """Sense-amplifier energy per decision at the bitlines' common mode and, given, their
        difference V_R − V_L (the overdrive term, :mod:`.bitline`; None: at the reference overdrive)."""
        bl = self.bitlines
        e = bl.e_decision_at_0_j + bl.e_decision_per_v * np.asarray(v_cm)
        if v_diff is None:
            return e
        od = np.clip(np.abs(np.asarray(v_diff, float)), bl.od_min_v, bl.od_max_v)
        return e + bl.e_decision_per_ln_od_j * np.log(bl.od_ref_v / od)

    def ramp_inl_dnl(self, array_index: int = 0) -> dict:
        """INL/DNL (LSB, endpoint fit) of every column's modelled ramp, as the ramp block
        measures it in SPICE: V(RBL_L) at each sense instant with no MAC input."""
        p, ramp = self.params, self.ramp(array_index)
        leak = self.leak_units_per_unit(np.zeros((1, self.n_cols), dtype=np.int64))
        j = np.arange(0, p.n_ramp_steps + 1)
        bl = self.bitlines
        leaked = leak_units_array(bl, j[None, :], leak[:, None], 0.0, ramp.u_ramp_after_units, bl.ramp_age_frac[j][None, :])
        levels = v_of_units_array(bl, leaked + ramp.u_ramp_after_units)
        steps = levels[:, :-1] - levels[:, 1:]
        lsb = (levels[:, 0] - levels[:, -1]) / p.n_ramp_steps
        dnl = steps / lsb[:, None] - 1
        inl = (levels[:, :1] - levels) / lsb[:, None] - j[None, :]
        return {"lsb_v": lsb, "dnl_lsb": dnl, "inl_lsb": inl,
                "dnl_max_lsb": dnl.max(axis=1), "dnl_min_lsb": dnl.min(axis=1),
                "inl_max_lsb": inl.max(axis=1), "inl_min_lsb": inl.min(axis=1)}


def topk_under_windows(chips: list[ChipInstance], window_of, noise_keys, noise_batch, q_codes, k_levels, *, k: int,
                       key_mask=None, quotas=None, energy: bool = True) -> TopkResult:
    """:meth:`ChipInstance.topk` for a batch whose elements convert under different ADC windows of
    one chip (``chips``: that chip under each window, e.g. one per attention head, from
    :meth:`TopkimaMacro.instance_like`), all in one compiled call.

    ``q_codes`` (B, R, d), ``k_levels`` (B, d, n), ``key_mask`` (B, R, n) or None; element b
    converts under ``chips[window_of[b]]`` and its comparator noise is that of batch element
    ``noise_batch[b]`` of a :meth:`ChipInstance.topk` call whose noise key was ``noise_keys[b]``:
    the results equal those calls', element for element (``energy``: as there)."""
    first = chips[0]
    for c in chips[1:]:
        if (c.array, c.noise, c.linear, c.params.n_ramp_steps) != (first.array, first.noise, first.linear,
                                                                    first.params.n_ramp_steps) \
                or c.devices(0) is not first.devices(0):
            raise ValueError("topk_under_windows needs one chip under several windows (TopkimaMacro.instance_like)")
    window_of = np.asarray(window_of, dtype=np.int64)
    noise_keys, noise_batch = np.asarray(noise_keys, np.uint64), np.asarray(noise_batch, np.int64)
    q, kl = first.check_inputs(q_codes, k_levels, k)
    if q.ndim != 3 or kl.ndim != 3 or q.shape[0] != kl.shape[0] \
            or not window_of.shape == noise_keys.shape == noise_batch.shape == (q.shape[0],):
        raise ValueError(f"q_codes (B, R, d), k_levels (B, d, n), and window_of, noise_keys and noise_batch (B,) "
                         f"expected; got {q.shape}, {kl.shape}, {window_of.shape}, {noise_keys.shape}, "
                         f"{noise_batch.shape}")
    if noise_batch.size and noise_batch.min() < 0:
        raise ValueError("noise_batch holds batch indices (≥ 0)")
    if window_of.size and (window_of.min() < 0 or window_of.max() >= len(chips)):
        raise ValueError(f"window_of must index the {len(chips)} chips")
    if k > kl.shape[-1]:
        raise ValueError(f"k = {k} is larger than the number of keys ({kl.shape[-1]})")
    enable = None
    if key_mask is not None:
        enable = np.asarray(key_mask)
        if enable.dtype != bool or enable.shape != (*q.shape[:2], kl.shape[-1]):
            raise ValueError(f"key_mask must be booleans of shape {(*q.shape[:2], kl.shape[-1])}")
    return _convert_batch(chips, window_of, noise_keys, noise_batch, np.ascontiguousarray(q), np.ascontiguousarray(kl),
                          enable, k, quotas, "topk", energy)


#: how many window combinations a chip keeps ready for the kernels (about 0.9 MB each)
WINDOW_SETS_KEPT = 8


def _windows(chips: list[ChipInstance], array_index: int):
    """The compiled kernels' view of ``chips``' windows on one array, memoised on the first chip
    for the last :data:`WINDOW_SETS_KEPT` combinations (a layer's heads reuse theirs call after call)."""
    memo = chips[0].__dict__.setdefault("_windows_memo", {})
    key = (tuple(chips), array_index)
    if key in memo:
        memo[key] = memo.pop(key)           # most recently used last
    else:
        if len(memo) >= WINDOW_SETS_KEPT:
            memo.pop(next(iter(memo)))
        memo[key] = windows_of(chips, array_index)
    return memo[key]


def _convert_batch(chips: list[ChipInstance], window_of, noise_keys, noise_batch, qb, kb, enable, k: int, quotas,
                   mode: str, energy: bool = True) -> TopkResult:
    """The conversions of B elements (``qb`` (B, R, d) int8, ``kb`` (B, d, n) int8, ``enable``
    (B, R, n) booleans or None), element b under ``chips[window_of[b]]`` (one chip's windows)
    with noise coordinates (``noise_keys[b]``, ``noise_batch[b]``); results (B, R, …), the energy NaN
    without ``energy``."""
    if not isinstance(energy, (bool, np.bool_)):
        raise TypeError(f"energy must be True or False, got {energy!r}")
    energy = bool(energy)
    chip = chips[0]
    n_keys = kb.shape[-1]
    bounds, tile_quota = chip._tiling(n_keys, k, quotas)
    p = chip.params
    n_steps = p.n_ramp_steps
    n_batch, n_rows = qb.shape[:2]
    qb = np.ascontiguousarray(qb, dtype=np.int8)
    kb = np.ascontiguousarray(kb, dtype=np.int8)
    if enable is not None:
        # writable, C-ordered: one compiled kernel for masked and unmasked calls alike
        enable = np.require(enable, dtype=np.bool_, requirements=["C", "W"])
        rows_used, keys_used = used_rows_and_keys(enable)
    else:
        rows_used, keys_used = np.full(n_batch, n_rows), np.full(n_batch, n_keys)
    sigma = p.sa_noise_sigma_v if chip.noise else 0.0
    t_clk_units = p.t_clk_ima_s / p.t_unit_s
    conventional = mode == "conventional"
    firing = None if len(bounds) == 1 else np.full((n_batch, n_rows, n_keys), n_steps + 1, dtype=np.int64)
    sel_idx, sel_cyc, stops = [], [], []
    energy_j = np.zeros((n_batch, n_rows)) if energy else np.full((n_batch, n_rows), np.nan)
    for t, (c0, c1) in enumerate(bounds):
        n = c1 - c0
        kq = tile_quota[t] if tile_quota else min(k, n)
        n_k = np.clip(keys_used - c0, 0, n).astype(np.int64)
        n_r = np.where(n_k > 0, rows_used, 0).astype(np.int64)
        levels = np.ascontiguousarray(kb[..., c0:c1])
        en = None if enable is None else np.require(enable[..., c0:c1], requirements=["C", "W"])
        fc, idx, cyc, stop, e_tile = convert(
            _windows(chips, t), window_of, noise_keys, noise_batch, chip.pulse, qb, levels, n_r, n_k, en,
            leak_model(p, chip.n_elements, len(chip.scales), chip.linear),
            k=kq, conventional=conventional, n_steps=n_steps, t_clk_units=t_clk_units, sigma_noise_v=sigma,
            key0=c0, n_scales=len(chip.scales), with_energy=energy)
        if firing is None:
            firing = fc
        else:
            firing[..., c0:c1] = fc
        if not conventional:
            sel_idx.append(np.where(idx >= 0, idx + c0, -1))
            sel_cyc.append(cyc)
        stops.append(stop)
        if energy:
            energy_j += e_tile
    stop_all = stops[0] if len(stops) == 1 else np.max(np.stack(stops, axis=-1), axis=-1)
    if conventional:
        idx = np.broadcast_to(np.arange(n_keys), firing.shape).copy()
        codes = np.where(firing <= n_steps, n_steps - firing, 0)
    elif tile_quota is None and len(bounds) > 1:
        idx, _, _ = select_topk(firing, k, n_steps)
        cyc = np.take_along_axis(firing, np.maximum(idx, 0), axis=-1)
        codes = np.where(idx >= 0, n_steps - cyc, -1)
    else:
        idx = sel_idx[0] if len(sel_idx) == 1 else np.concatenate(sel_idx, axis=-1)
        cyc = sel_cyc[0] if len(sel_cyc) == 1 else np.concatenate(sel_cyc, axis=-1)
        codes = np.where(idx >= 0, n_steps - cyc, -1)
    return TopkResult(indices=idx, codes=codes, cycles=stop_all, energy_j=energy_j, latency_s=latency_s(p, stop_all),
                      n_ramp_steps=n_steps, firing_cycle=firing)


class TopkimaMacro:
    """The calibrated macro. ``instance(rng)`` freezes mismatch; ``ideal()`` is noiseless and linear.

    ``adc_range`` sets the ADC window (default: the artefact's characterised setting).
    ``sigma_scale`` multiplies every random spread the artefact gives (read-port and replica-cell
    Pelgrom σ, comparator device σ's and residual, comparator noise) for variation studies;
    1 is the characterised chip, 0 a chip with only systematic effects.
    """

    def __init__(self, calibration: Calibration, array: str | None = None, adc_range: AdcRange | None = None,
                 sigma_scale: float = 1.0):
        self.calibration = calibration
        self.corner = calibration.corner   #: process corner of the artefact (tt, ss, …): named in errors, reports
        params = params_from_calibration(calibration)
        # the artefact's own array (its design's columns and key elements), or one of the paper's named ones
        own, own_geometry = design_array(params.n_columns, params.n_elements, params.pair_scales)
        array = own if array is None else array
        if array != own and array not in ARRAYS:
            raise ValueError(f"unknown array {array!r} for the macro calibrated at corner {self.corner}; "
                             f"choose its own {own!r} (the default) or one of {', '.join(ARRAYS)}")
        self._geometry = own_geometry if array == own else ARRAYS[array]
        sigma_scale = float(sigma_scale)
        if not (np.isfinite(sigma_scale) and sigma_scale >= 0):
            raise ValueError(f"sigma_scale must be a finite number ≥ 0, got {sigma_scale} (macro calibrated at "
                             f"corner {self.corner})")
        if sigma_scale != 1.0:
            params = replace(params, sigma_vth_read_v=params.sigma_vth_read_v * sigma_scale,
                             sa_offset_sigma_v=params.sa_offset_sigma_v * sigma_scale,
                             sa_noise_sigma_v=params.sa_noise_sigma_v * sigma_scale,
                             sa_residual_sigma_v=params.sa_residual_sigma_v * sigma_scale,
                             sa_device_sigma_vth_v=params.sa_device_sigma_vth_v * sigma_scale)
        self.sigma_scale = sigma_scale
        self.array = array
        self._params_characterised = params
        self.params = self._windowed(params, adc_range)
        self.insitu = fit_insitu_correction(self.params, self._insitu_units)   # runs carry their own window
        self.adc_range = AdcRange(self.params.n_cal, self.params.t_cal_units, self.params.t_ramp_units,
                                  limits=RampLimits.of_params(self.params))

    def __repr__(self) -> str:
        return (f"TopkimaMacro(corner={self.corner!r}, array={self.array!r}, sigma_scale={self.sigma_scale}, "
                f"artefact={self.calibration.path!r})")

    @property
    def geometry(self) -> tuple[int, int, tuple[int, ...]]:
        """(columns, key elements per column, pulse scales) of the macro's arrays."""
        return self._geometry

    def _insitu_units(self, p_runs: MacroParams):
        """The in-situ runs' modelled units on nominal devices (run r: its keys in column r)."""
        runs = p_runs.insitu[0]
        n_cols, n_el, scales = self.geometry
        if len(runs) > n_cols:
            raise ValueError("more in-situ runs than columns of one array")
        # replayed on a column as long as they were measured on (a what-if array may have fewer elements)
        n_el = max([n_el] + [run["keys"].size for run in runs])
        kl = np.zeros((n_el, len(runs)), dtype=np.int64)
        q = np.zeros((len(runs), n_el), dtype=np.int64)
        for r, run in enumerate(runs):
            kl[: run["keys"].size, r] = run["keys"]
            q[r, : run["inputs"].size] = run["inputs"]
        devices = dev.array_devices(p_runs, n_cols, n_el * len(scales), None)
        u_l, u_r = mac_units(devices, pulse_terms(p_runs, scales, False), q, kl, len(scales))
        diag = np.arange(len(runs))
        leak = leak_units_per_unit(p_runs, kl, n_el, len(scales), False)
        ramp = ramp_columns(p_runs, devices)
        return u_l[diag, diag], u_r[diag, diag], leak, ramp.u_cal_units[: len(runs)], ramp.u_ramp_after_units[: len(runs)]

    @staticmethod
    def _windowed(params: MacroParams, adc_range: AdcRange | None) -> MacroParams:
        if adc_range is None:
            return params
        if not isinstance(adc_range, AdcRange):
            raise ValueError("adc_range must be an AdcRange")
        RampLimits.of_params(params).check(adc_range.n_cal, adc_range.t_cal_units, adc_range.t_ramp_units)
        unit = lambda t: params.pulse_slope * t + params.pulse_offset_units  # noqa: E731
        return replace(params, n_cal=adc_range.n_cal, t_cal_units=adc_range.t_cal_units,
                       t_ramp_units=adc_range.t_ramp_units,
                       lsb_v=params.lsb_v * unit(adc_range.t_ramp_units) / unit(params.t_ramp_units))

    def with_adc_range(self, adc_range: AdcRange) -> "TopkimaMacro":
        """The same macro (calibration, array, σ scale, in-situ fit) under another ADC window."""
        m = object.__new__(TopkimaMacro)
        m.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_bitlines"})
        m.params = self._windowed(self._params_characterised, adc_range)
        m.adc_range = AdcRange(m.params.n_cal, m.params.t_cal_units, m.params.t_ramp_units,
                               limits=RampLimits.of_params(m.params))
        return m

    def _bitline_model(self) -> BitlineModel:
        """The calibrated curve with the in-situ correction (shared by this macro's chips)."""
        if "_bitlines" not in self.__dict__:
            self._bitlines = bitline_model(self.params, self.params.curve_v, self.insitu)
        return self._bitlines

    def _chip(self, noise: bool, devices_of_array) -> ChipInstance:
        return ChipInstance(self.params, self.array, noise, False, self._bitline_model(), devices_of_array,
                            self.corner, self.geometry)

    def _rows(self) -> int:
        n_cols, n_el, scales = self.geometry
        return n_el * len(scales)

    def instance(self, rng: np.random.Generator) -> ChipInstance:
        """A chip: every read port, replica cell and comparator offset drawn (Pelgrom, artefact σ's)."""
        if not isinstance(rng, np.random.Generator):
            raise ValueError("instance() needs a numpy.random.Generator")
        root = int(rng.integers(2 ** 63))  # each array's draws come from (root, array index): order-free
        n_cols = self.geometry[0]

        def devices_of_array(t: int) -> dev.ArrayDevices:
            g = np.random.default_rng(np.random.SeedSequence(root, spawn_key=(t,)))
            return dev.array_devices(self.params, n_cols, self._rows(), self.draw_tile(g, n_cols, self._rows()))

        return self._chip(True, devices_of_array)

    def instance_like(self, chip: ChipInstance) -> ChipInstance:
        """A chip with the same devices as ``chip`` (drawn by a macro of the same calibration,
        array and σ scale) under this macro's ADC window: what the window does not change is shared."""
        if chip.array != self.array:
            raise ValueError(f"instance_like needs a chip of the same array ({self.array}), got {chip.array}")
        return self._chip(chip.noise, chip.devices)

    def instance_from_draws(self, draws: list[TileDraws], noise: bool = True) -> ChipInstance:
        """A chip whose arrays carry the given explicit draws (e.g. those of golden SPICE runs).

        ``noise=False`` leaves out the comparator noise (ngspice's transients are noiseless).
        """
        n_cols = self.geometry[0]

        def devices_of_array(t: int) -> dev.ArrayDevices:
            if t >= len(draws):
                raise ValueError(f"draws were given for {len(draws)} arrays; array {t} is needed")
            return dev.array_devices(self.params, n_cols, self._rows(), draws[t])

        return self._chip(noise, devices_of_array)

    def nominal(self) -> ChipInstance:
        """Calibrated nonlinearity, leakage and charge sharing, nominal devices (the comparator's
        systematic offset only), no noise."""
        n_cols = self.geometry[0]
        zero = dev.nominal_draws(self.params, n_cols, self._rows())
        shared = dev.array_devices(self.params, n_cols, self._rows(), zero)
        return self._chip(False, lambda t: shared)

    def ideal(self) -> ChipInstance:
        """No mismatch, no noise, no offset, a linear discharge, exact pulse widths, no leakage
        or charge sharing: the comparator fires at the first cycle where q·k > top − j·LSB."""
        p = replace(self.params, pulse_slope=1.0, pulse_offset_units=0.0)
        slope = (p.curve_v[0] - p.v_of_units(200.0)) / 200.0   # the curve's initial slope, unsaturated
        bl = bitline_model(p, p.curve_v[0] - slope * p.curve_units, None)
        n_cols = self.geometry[0]
        shared = dev.array_devices(p, n_cols, self._rows(), None)
        return ChipInstance(p, self.array, False, True, bl, lambda t: shared, self.corner, self.geometry)

    def draw_tile(self, rng: np.random.Generator, n_cols: int, rows: int) -> TileDraws:
        """One array's device draws (see :func:`devices.draw_tile`)."""
        return dev.draw_tile(self.params, rng, n_cols, rows)

    def sa_offsets(self, sa_dvt_v: np.ndarray) -> np.ndarray:
        """Comparator offsets (n_cols, n_vcm) from device threshold shifts (n_cols, n_devices)."""
        return dev.sa_offsets(self.params, sa_dvt_v)

    def tile_draws_from_columns(self, columns: list[dict]) -> TileDraws:
        """TileDraws from per-column device draws as stored by ``topkima golden`` (see its file)."""
        return dev.tile_draws_from_columns(self.params, columns, self.geometry[0])


__all__ = ["ChipInstance", "TopkimaMacro", "topk_under_windows", "used_length"]
