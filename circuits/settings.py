"""What one calibration run is asked to do: the design, corner, Monte Carlo size and seed."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from topkima.circuits.corners import Corner, Supplies
from topkima.circuits.design import Design, default_design


@dataclass(frozen=True)
class CalSettings:
    """Settings shared by every block's characterisation plan.

    ``quick`` trades Monte Carlo size and sweep density for speed (``topkima
    calibrate --quick``, used by ``make demo`` and the tests); the physics is the same.
    ``design`` (default: the ``topkima-65nm`` preset) supplies the supplies, sizes and ADC knobs.
    """

    quick: bool = False
    corner_name: str = "tt"
    mc: int | None = None        #: Monte Carlo samples per block; None: 24 quick, 200 full
    seed: int = 2024
    design: Design = field(default_factory=default_design)

    def __post_init__(self):
        self.design.corner(self.corner_name)  # validates the name
        if self.mc is not None and (not isinstance(self.mc, int) or self.mc < 2):
            raise ValueError(f"--mc must be an integer ≥ 2 (Monte Carlo samples), got {self.mc!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"--seed must be a non-negative integer, got {self.seed!r}")

    @property
    def supplies(self) -> Supplies:
        return Supplies.from_design(self.design)

    @property
    def corner(self) -> Corner:
        """The run's corner in the design's technology."""
        c = self.design.corner(self.corner_name)
        return Corner(self.corner_name, c.dvth_n_v, c.dvth_p_v, c.temperature_c, c.description)

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
