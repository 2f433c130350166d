"""The committed quick artefact of ``topkima-65nm-ramp128-wideport`` (issue 14 item 6): it is the
preset's, its ramp LSB is back near the 32-step preset's, and its SPICE offset trim leaves about a
uniform trim step at the trim's common mode, which the ``offset-trimmed`` chip reads."""
from __future__ import annotations

import math

import numpy as np
import pytest

from topkima.calibration import load_calibration
from topkima.circuits.design import load_design

ARTEFACT = "calibration/ramp128_wideport_quick_calibration.json"


@pytest.fixture(scope="module")
def cal():
    from pathlib import Path
    return load_calibration(Path(__file__).resolve().parents[2] / ARTEFACT)


def test_it_is_the_presets_artefact_with_its_lsb_restored(cal):
    assert cal.provenance["design_sha256"] == load_design("topkima-65nm-ramp128-wideport").sha256()
    cells4x = load_calibration(cal.path.replace("wideport", "cells4x"))
    preset = load_calibration()
    assert cal.data["ramp"]["lsb_v"] > 1.6 * cells4x.data["ramp"]["lsb_v"]
    assert cal.data["ramp"]["lsb_v"] == pytest.approx(preset.data["ramp"]["lsb_v"], rel=0.1)


def test_its_trim_leaves_a_uniform_step_at_the_trim_common_mode(cal):
    trim = cal.data["comparator"]["offset_trim"]
    i = trim["vcm_v"].index(trim["vcm_trim_v"])
    residual = np.asarray(trim["residual_offset_v"])[:, i]
    step_v = np.ptp(residual)                        # the residual fills one trim step, [0, step)
    assert residual.min() >= 0 and trim["n_clipped"] == 0
    assert trim["by_vcm"][i]["sigma_v"] == pytest.approx(step_v / math.sqrt(12), rel=0.25)
    untrimmed = {b["vcm_v"]: b["sigma_v"] for b in cal.data["comparator"]["offset"]["by_vcm"]}
    assert all(b["sigma_v"] < 0.6 * untrimmed[b["vcm_v"]] for b in trim["by_vcm"])


def _drawn_offsets_v(cal, n_tiles: int = 4) -> np.ndarray:
    """(comparators, common modes) offsets the chips of artefact ``cal`` draw."""
    from topkima.behavioral import TopkimaMacro
    macro = TopkimaMacro(cal)
    n_cols, rows = macro.geometry[0], macro.geometry[1] * len(macro.geometry[2])
    return np.concatenate([macro.draw_tile(np.random.default_rng(i), n_cols, rows).sa_offset_v for i in range(n_tiles)])


@pytest.mark.parametrize("with_in_column", [False, True])
def test_the_offset_trimmed_chip_draws_the_trims_residual(cal, with_in_column):
    """The trimmed chips' offsets spread as SPICE's trimmed instances at every common mode, also on
    an artefact that carries the comparator's in-column threshold (the committed 65 nm artefact's
    block, borrowed): a power-up trim made in the column nulls that static shift too, so it must not
    be added back on top of the trimmed offset."""
    import copy

    from topkima.calibration import Calibration
    from topkima.studies.circuit_whatif import variant_calibration, variant_knobs
    data = copy.deepcopy(cal.data)
    if with_in_column:
        data["comparator"]["in_column"] = copy.deepcopy(load_calibration().comparator["in_column"])
    base = Calibration(data, cal.path)
    trimmed = variant_calibration(base, **variant_knobs("offset-trimmed"))
    trim = cal.data["comparator"]["offset_trim"]
    drawn, untrimmed = _drawn_offsets_v(trimmed), _drawn_offsets_v(base)
    order = list(np.argsort(trim["vcm_v"]))
    for b in trim["by_vcm"]:
        j = order.index(trim["vcm_v"].index(b["vcm_v"]))
        assert drawn[:, j].std() == pytest.approx(b["sigma_v"], rel=0.35)      # SPICE's 72 trimmed instances
        assert drawn[:, j].std() < 0.6 * untrimmed[:, j].std()
