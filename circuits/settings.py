"""What one calibration run is asked to do: corner, Monte Carlo size, seed, supplies."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from topkima.circuits.corners import Corner, Supplies, corner


@dataclass(frozen=True)
class CalSettings:
    """Settings shared by every block's characterisation plan.

    ``quick`` trades Monte Carlo size and sweep density for speed (``topkima
    calibrate --quick``, used by ``make demo`` and the tests); the physics is the same.
    """

    quick: bool = False
    corner_name: str = "tt"
    mc: int | None = None        #: Monte Carlo samples per block; None: 24 quick, 200 full
    seed: int = 2024
    supplies: Supplies = field(default_factory=Supplies)

    def __post_init__(self):
        corner(self.corner_name)  # validates the name
        if self.mc is not None and (not isinstance(self.mc, int) or self.mc < 2):
            raise ValueError(f"--mc must be an integer ≥ 2 (Monte Carlo samples), got {self.mc!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed!r}")

    @property
    def corner(self) -> Corner:
        return corner(self.corner_name)

    @property
    def temperature_c(self) -> float:
        return self.corner.temperature_c

    @property
    def mc_samples(self) -> int:
        return self.mc if self.mc is not None else (24 if self.quick else 200)

    def rng(self, purpose: str) -> np.random.Generator:
        """An independent generator for one named purpose, derived from the root seed.

        The same (seed, purpose) always gives the same stream, whatever the order in
        which blocks are planned or how many workers run them.
        """
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(purpose.encode()),)))
