"""The MAC phase alone, every device nominal, on many inputs and keys: what the bitlines hold
when the MAC pulses end, for finding what the behavioural model's input-dependent bitline error
depends on (docs/behavioral-model.md, "What limits the agreement now").

Each job is the column testbench without calibration, ramp or sense amplifier
(:func:`topkima.circuits.column_measure.measure_mac`, ~4 s): V(RBL_L), V(RBL_R) 0.1 ns before
the calibration clock. The vectors come from a seed stream of their own ("mac-nominal"), not
from any golden set's: inputs |q| ≤ 12 as the golden sets draw them, but with the fraction of
non-zero inputs drawn per vector from 0.25 … 1 and keys from ±4 or ±7, so that the number of
pulses on a bitline and their total width vary apart. A smaller plan is a prefix of a larger.
"""
from __future__ import annotations

from topkima.circuits import column as col
from topkima.circuits.jobs import Job

BLOCK = "mac-nominal"
STREAM = "mac-nominal"             #: seed-stream purpose (CalSettings.rng)
ACTIVITIES = (0.25, 0.5, 0.75, 1.0)  #: fractions of non-zero inputs, one drawn per vector [ours]
KEY_MAXES = (4, 7)                 #: key magnitude bound, one drawn per vector [ours]
Q_MAX = 12                         #: input magnitudes as the golden sets' (circuits.golden.Q_MAX)


def plan(settings, n_vectors: int) -> list[Job]:
    """``n_vectors`` MAC-phase jobs with nominal devices at the settings' corner."""
    rng = settings.rng(STREAM)
    base = {"corner_name": settings.corner_name, "supplies": settings.supplies.as_dict()}
    jobs = []
    for i in range(n_vectors):
        activity = float(rng.choice(ACTIVITIES))
        k_max = int(rng.choice(KEY_MAXES))
        keys, inputs = col.random_vectors(rng, activity, q_max=Q_MAX, k_max=k_max)
        jobs.append(Job(BLOCK, f"m{i:03d}", "topkima.circuits.column_measure:measure_mac",
                        dict(base, keys=keys, inputs=inputs), col.NETLISTS))
    return jobs
