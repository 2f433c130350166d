"""The study's random streams: one root ``SeedSequence(seed)`` and explicit spawn keys [ours].

The keys are what ``SeedSequence.spawn`` would produce, computed without the sequence's spawn
counter: ``(0,)`` the workload, ``(1, i, 0)`` / ``(1, i, 1)`` instance i's device draws /
comparator noise, ``(2, i, …)`` accuracy instance i, ``(3, …)`` the SPICE comparison, ``(4,)``
the sentence subset. A result depends only on (configuration, σ multiplier, instance index),
never on which worker ran it or when.
"""
from __future__ import annotations

import numpy as np

#: spawn-key purposes under the root SeedSequence
PURPOSE_WORKLOAD, PURPOSE_INSTANCE, PURPOSE_ACCURACY, PURPOSE_SPICE, PURPOSE_SENTENCES = 0, 1, 2, 3, 4


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The stream of ``key`` (purpose first) under the root seed."""
    return np.random.SeedSequence(seed, spawn_key=tuple(key))
