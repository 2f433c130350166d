"""The crossing-order diagnostic (issue 14 item 6): its pair count against a loop, and a finer ramp ties fewer pairs."""
import numpy as np

from topkima.calibration.artefact import default_artefact_path
from topkima.studies.crossing_order import crossing_order, misordered_pairs


def test_misordered_pairs_against_a_loop_over_every_pair():
    rng = np.random.default_rng(1)
    scores = rng.integers(-5, 6, size=(4, 12))
    cycles = rng.integers(1, 9, size=(4, 12))
    fired = rng.random((4, 12)) < 0.8
    bad = pairs = 0
    gaps = []
    for r in range(4):
        for i in range(12):
            for j in range(12):
                if fired[r, i] and fired[r, j] and scores[r, i] > scores[r, j]:
                    pairs += 1
                    if cycles[r, i] > cycles[r, j]:
                        bad += 1
                        gaps.append(scores[r, i] - scores[r, j])
    got = misordered_pairs(scores, cycles, fired)
    assert got[:2] == (bad, pairs) and sorted(got[2].tolist()) == sorted(gaps)


def test_twice_the_steps_tie_fewer_pairs_of_the_same_keys():
    wideport = str(default_artefact_path().with_name("ramp128_wideport_quick_calibration.json"))
    coarse = crossing_order("nominal", wideport, n_rows=6, n_keys=64)
    fine = crossing_order("ramp256-nominal", wideport, n_rows=6, n_keys=64)
    assert (coarse["n_ramp_steps"], fine["n_ramp_steps"]) == (128, 256)
    assert (coarse["ramp_pulse_units"], fine["ramp_pulse_units"]) == (4, 2)
    # a 2-unit step splits pairs a 4-unit step puts in one cycle
    assert fine["tied_fraction"] < 0.75 * coarse["tied_fraction"]
