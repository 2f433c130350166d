"""The study's fixed inputs and their reference conversions, built once per process.

A synthetic workload [ours] (:class:`StudyConfig`'s docstring) drawn from the root seed, its
ADC window chosen on the exact integer scores, and three references every instance is measured
against: the ideal macro (no mismatch, no noise, linear), the nominal macro (the artefact's
curves without mismatch) and the exact digital top-k.
"""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from topkima.studies.montecarlo.config import StudyConfig, sigma_label
from topkima.studies.montecarlo.metrics import codes_from_firing, exact_topk, recall_precision
from topkima.studies.montecarlo.seeds import PURPOSE_WORKLOAD, seed_sequence


class Workload:
    """The inputs (``q_codes``, ``k_levels``), the window, and the ideal / nominal / exact results."""

    def __init__(self, cfg: StudyConfig):
        from topkima.behavioral import TopkimaMacro, choose_adc_range
        from topkima.calibration import load_calibration
        self.cfg = cfg
        self.cal = load_calibration()
        rng = np.random.default_rng(seed_sequence(cfg.seed, PURPOSE_WORKLOAD))
        q = rng.integers(-cfg.q_max_code, cfg.q_max_code + 1, (cfg.n_queries, cfg.d))
        k_max = 7 if cfg.array == "256x256" else 1
        self.k_levels = rng.integers(-k_max, k_max + 1, (cfg.d, cfg.n_keys))
        self.window, self.query_scale = choose_adc_range(q @ self.k_levels, cfg.k)
        self.q_codes = np.clip(np.rint(q * self.query_scale), -31, 31).astype(np.int64)
        self.scores_units = self.q_codes @ self.k_levels
        base = TopkimaMacro(self.cal, cfg.array, adc_range=self.window)
        self.n_steps = base.params.n_ramp_steps
        self.ideal = base.ideal().topk(self.q_codes, self.k_levels, k=cfg.k)
        self.ideal_codes = codes_from_firing(self.ideal.firing_cycle, self.n_steps)
        self.nominal = base.nominal().topk(self.q_codes, self.k_levels, k=cfg.k)
        self.nominal_codes = codes_from_firing(self.nominal.firing_cycle, self.n_steps)
        self.exact = exact_topk(self.scores_units, cfg.k)
        self._macros: dict[str, object] = {}
        self._lock = threading.Lock()

    def macro(self, sigma: float):
        """The macro at σ multiplier ``sigma`` on this workload's window (built once)."""
        from topkima.behavioral import TopkimaMacro
        with self._lock:
            key = sigma_label(sigma)
            if key not in self._macros:
                self._macros[key] = TopkimaMacro(self.cal, self.cfg.array, adc_range=self.window, sigma_scale=sigma)
            return self._macros[key]

    def describe(self) -> dict:
        """The workload's entry of ``summary.json``."""
        w = self.window
        rec_nom, prec_nom = recall_precision(self.nominal.indices, self.ideal.indices)
        return {"kind": "synthetic: q uniform in ±q_max_code, keys uniform in −7…7, from the root seed",
                "n_queries": self.cfg.n_queries, "n_keys": self.cfg.n_keys, "d": self.cfg.d,
                "adc_window": {"n_cal": w.n_cal, "t_cal_units": w.t_cal_units, "t_ramp_units": w.t_ramp_units},
                "query_scale": float(self.query_scale),
                "q_codes_max_abs_after_scale": int(np.abs(self.q_codes).max()),
                "alpha_ideal": float(self.ideal.alpha.mean()), "alpha_nominal": float(self.nominal.alpha.mean()),
                "topk_recall_ideal_vs_exact_digital": recall_precision(self.ideal.indices, self.exact)[0],
                "topk_recall_nominal_vs_ideal": rec_nom, "topk_precision_nominal_vs_ideal": prec_nom}


_WORKLOADS: dict[StudyConfig, Workload] = {}
_WORKLOADS_LOCK = threading.Lock()


def workload(cfg: StudyConfig) -> Workload:
    """This process's :class:`Workload` of ``cfg`` (one study at a time per process)."""
    key = replace(cfg, instances=1, sigma_scales=(0.0,), accuracy_instances=0, spice_instances=0)
    with _WORKLOADS_LOCK:
        if key not in _WORKLOADS:
            _WORKLOADS.clear()
            _WORKLOADS[key] = Workload(key)
        return _WORKLOADS[key]
