"""Does a chip fire a row's keys in the order of their scores? A diagnostic of the ramp's resolution
against the column's analog errors (issue 14 item 6, the 256-step what-if).

A chip variant (:mod:`topkima.studies.circuit_whatif`) converts random signed queries against
random 15-level keys under one ADC window and runs every ramp to its end (k = every key), so each
key's firing cycle is known. Within each query row, a pair of keys is **misordered** when the key
with the larger integer score Q·K fires strictly later; a pair that fires in the same cycle is a
tie (the arbiter's address order decides it). A finer ramp turns ties into ordered or misordered
pairs: it helps only if the column's analog errors (the discharge curve's compression at each
bitline's level, the idle stacks' leakage over the conversion, mismatch) are smaller than its step.

``leakage_scale`` scales the artefact's idle-stack leakage currents in a copy (``0`` is taken as
1e-9: the schema wants positive currents), to separate the leakage of a longer conversion from
the rest. Random data, not a language model's: this says what limits the ordering, not by how much
perplexity moves.
"""
from __future__ import annotations

import copy

import numpy as np


def misordered_pairs(scores: np.ndarray, firing_cycle: np.ndarray, fired: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(misordered pairs, pairs with different scores, score gaps of the misordered ones) over rows:
    pairs of keys that both ``fired`` in a row, the larger score firing strictly later."""
    bad_total, pairs_total, gaps = 0, 0, []
    for s, fc, ok in zip(scores, firing_cycle, fired):
        s, fc = s[ok], fc[ok]
        higher = s[:, None] > s[None, :]
        bad = higher & (fc[:, None] > fc[None, :])
        bad_total += int(bad.sum())
        pairs_total += int(higher.sum())
        gaps.append((s[:, None] - s[None, :])[bad])
    return bad_total, pairs_total, np.concatenate(gaps) if gaps else np.zeros(0)


def crossing_order(variant: str, artefact: str | None = None, *, leakage_scale: float = 1.0,
                   window_top_units: float = 400.0, window_bottom_units: float = -100.0, n_rows: int = 24,
                   n_keys: int = 128, q_max: int = 6, seed: int = 5, chip_seed: int = 0) -> dict:
    """The firing order of ``variant``'s chip on ``artefact`` against the scores (module docstring)."""
    from topkima.behavioral import TopkimaHardware, TopkimaMacro
    from topkima.behavioral.macro.adc import adc_range_spanning
    from topkima.calibration import Calibration, load_calibration
    from topkima.studies.circuit_whatif import ZERO_SCALE, variant_calibration, variant_knobs, variant_ramp_limits
    if not (np.isfinite(leakage_scale) and leakage_scale >= 0):
        raise ValueError(f"leakage_scale must be a finite number ≥ 0, got {leakage_scale!r}")
    knobs = variant_knobs(variant)
    cal = variant_calibration(None if artefact is None else load_calibration(artefact), **knobs)
    data = copy.deepcopy(cal.data)
    leak = data["column"]["leakage"]
    for key in ("i_leak_stored1_a", "i_leak_stored0_a"):
        leak[key] = [x * max(float(leakage_scale), ZERO_SCALE) for x in leak[key]]
    macro = TopkimaMacro(Calibration(data, cal.path))
    window = adc_range_spanning(window_top_units, window_bottom_units, limits=variant_ramp_limits(knobs, artefact))[0]
    rng = np.random.default_rng(seed)
    q = rng.integers(-q_max, q_max + 1, size=(n_rows, 64))
    k = rng.integers(-7, 8, size=(64, n_keys))
    res = TopkimaHardware(macro, chip_seed=chip_seed).chip(window).topk(q, k, k=n_keys, rng=np.random.default_rng(0))
    fc = np.asarray(res.firing_cycle)
    fired = (fc > 1) & (fc <= res.n_ramp_steps)          # converted inside the window (not saturated, fired)
    scores = q @ k
    bad, pairs, gaps = misordered_pairs(scores, fc, fired)
    same_cycle = sum(int(((s[ok][:, None] > s[ok][None, :]) & (f[ok][:, None] == f[ok][None, :])).sum())
                     for s, f, ok in zip(scores, fc, fired))
    return {"variant": variant, "leakage_scale": leakage_scale, "n_ramp_steps": res.n_ramp_steps,
            "ramp_pulse_units": window.t_ramp_units, "keys_in_window": int(fired.sum()), "pairs": pairs,
            "misordered_fraction": bad / pairs, "tied_fraction": same_cycle / pairs,
            "misordered_gap_median_units": float(np.median(gaps)) if gaps.size else 0.0}
