"""What a Monte Carlo study computes: :class:`StudyConfig`, and the error for one that cannot run."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

#: σ multipliers of the default study
DEFAULT_SIGMA_SCALES = (0.0, 0.5, 1.0, 1.5, 2.0)


class StudyError(ValueError):
    """A study that cannot run as asked (bad parameters, unreachable scheduler, missing extra)."""


def sigma_label(sigma: float) -> str:
    """The key of a σ multiplier in ``summary.json`` ("1.0", "0.5")."""
    return repr(float(sigma))


@dataclass(frozen=True)
class StudyConfig:
    """What a Monte Carlo study computes. Every field is part of the results' identity.

    The workload is synthetic [ours]: ``n_queries`` query rows of signed codes uniform in
    −q_max_code … q_max_code (sign + 5-bit PWM magnitude, SPEC §2) and ``n_keys`` key columns of
    ``d`` levels uniform in −7 … 7, both from the root seed. Its ADC window and query scale are
    chosen with ``choose_adc_range`` on the exact integer scores (as a chip is set up before it
    converts), and the scaled query codes are what every instance and the references convert.
    """

    instances: int = 100                    #: chip instances per σ multiplier
    sigma_scales: tuple[float, ...] = DEFAULT_SIGMA_SCALES  #: σ multipliers (1 = the characterised chip)
    k: int = 5                              #: keys kept per query row
    seed: int = 0                           #: root seed of every random draw
    n_queries: int = 1024                   #: query rows of the synthetic workload
    n_keys: int = 256                       #: keys (columns in use of one 256 × 256 array)
    d: int = 64                             #: key elements per column
    q_max_code: int = 31                    #: |q| ≤ this in the synthetic queries (before the window's scale)
    array: str = "256x256"                  #: macro array preset
    accuracy_instances: int = 2             #: chips per σ for the MiniLM probe (0: no accuracy study)
    accuracy_test_sentences: int = 200      #: VADER test sentences re-embedded per accuracy instance
    accuracy_train_sentences: int = 1000    #: VADER training sentences for the probe (exact embeddings)
    spice_instances: int = 16               #: model instances drawn for the SPICE comparison (0: skip it)

    @classmethod
    def quick(cls, **overrides) -> "StudyConfig":
        """The small configuration (`topkima report --quick`, tests): 16 instances at σ × {0, 1, 2},
        256 query rows, one accuracy chip per σ on 100 test sentences."""
        base = dict(instances=16, sigma_scales=(0.0, 1.0, 2.0), n_queries=256, accuracy_instances=1,
                    accuracy_test_sentences=100, accuracy_train_sentences=500, spice_instances=8)
        base.update(overrides)
        return cls(**base)

    def validated(self) -> "StudyConfig":
        """This configuration with σ multipliers as floats, or :class:`StudyError` naming the problem."""
        def whole(name, lo, hi=None):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
                bound = f"an integer ≥ {lo}" if hi is None else f"an integer in {lo}..{hi}"
                raise StudyError(f"{name} must be {bound}, got {v!r}")
        whole("instances", 1)
        whole("k", 1)
        whole("seed", 0)
        whole("n_queries", 1)
        whole("n_keys", 1, 256 if self.array == "256x256" else 128)
        whole("d", 1, 64)
        whole("q_max_code", 1, 31)
        whole("accuracy_instances", 0)
        whole("accuracy_test_sentences", 10)
        whole("accuracy_train_sentences", 20)
        whole("spice_instances", 0)
        if self.array not in ("256x256", "128x128"):
            raise StudyError(f"array must be '256x256' or '128x128', got {self.array!r}")
        if self.k > self.n_keys:
            raise StudyError(f"k = {self.k} exceeds the {self.n_keys} keys")
        try:
            scales = tuple(float(s) for s in self.sigma_scales)
        except (TypeError, ValueError):
            raise StudyError(f"sigma_scales must be numbers, got {self.sigma_scales!r}") from None
        if not scales:
            raise StudyError("sigma_scales must name at least one σ multiplier")
        for s in scales:
            if not math.isfinite(s) or s < 0:
                raise StudyError(f"σ multipliers must be finite numbers ≥ 0, got {s}")
        if len({sigma_label(s) for s in scales}) != len(scales):
            raise StudyError(f"σ multipliers must be distinct, got {scales}")
        return replace(self, sigma_scales=scales)
