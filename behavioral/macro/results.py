"""What a top-k conversion returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TopkResult:
    """Per query row: selected key indices and codes (−1 where fewer than k fired), cycles, energy, latency."""

    indices: np.ndarray
    codes: np.ndarray
    cycles: np.ndarray      #: ramp cycles used (max over the arrays that worked in parallel)
    energy_j: np.ndarray    #: per row (J); NaN when the call skipped the energy pass (``energy=False``)
    latency_s: np.ndarray
    n_ramp_steps: int = 32
    #: (..., n_keys): the ramp cycle each key's comparator fired in, n_ramp_steps + 1 = never
    firing_cycle: np.ndarray | None = field(default=None, repr=False)

    @property
    def alpha(self) -> np.ndarray:
        """Early-stop fraction of the full ramp."""
        return self.cycles / self.n_ramp_steps
