"""The off-nominal corner end to end: the ss golden set's planner, and (stored) ss artefact vs tt artefact on it."""
import numpy as np
import pytest

from topkima.circuits import golden
from topkima.circuits.settings import CalSettings

SS = golden.SETS["ss"]


@pytest.fixture(scope="module")
def plan():
    return golden.plan_set(SS, CalSettings(corner_name="ss"), SS.default_groups)


def test_ss_set_is_planned_at_ss_inside_the_window(plan):
    jobs, groups = plan
    assert SS.held_out and SS.corner_name == "ss" and len(jobs) >= 64
    assert {j.kwargs["corner_name"] for j in jobs} == {"ss"}
    codes = []
    for group in groups:
        for c in group["columns"]:
            score = int(np.dot(group["inputs"], c["keys"]))
            codes.append(golden.ideal_code(score))
            assert codes[-1] == c["target_code"] and c["label"].startswith("s")
    counts = np.bincount(codes, minlength=32)
    assert counts[0] == counts[31] == 0 and counts[1:31].min() >= 3   # every code 1…30 planned


def test_ss_set_has_seeds_of_its_own(plan):
    jobs, groups = plan
    tt = CalSettings()
    _, heldout = golden.plan_set(golden.SETS["heldout"], tt, golden.SETS["heldout"].default_groups)
    _, development = golden.plan_set(golden.SETS["development"], tt, golden.SETS["development"].default_groups)
    queries = {tuple(g["inputs"]) for g in groups}
    assert not queries & {tuple(g["inputs"]) for g in heldout + development}
    draws = {tuple(g["columns"][0]["draws"]["sa_dvt_v"].values()) for g in groups}
    assert not draws & {tuple(g["columns"][0]["draws"]["sa_dvt_v"].values()) for g in heldout + development}
    # the same plan at tt would be other SPICE jobs (the corner is part of every job's key)
    at_tt, _ = golden.plan_heldout(tt, 1, 2, SS.stream, SS.label_prefix)
    assert [j.key() for j in at_tt] != [j.key() for j in jobs[:2]]


def test_a_set_refuses_settings_of_another_corner():
    with pytest.raises(ValueError, match="corner ss, not tt"):
        golden.plan_set(SS, CalSettings(), 1)
    with pytest.raises(ValueError, match="unknown golden set 'ff'"):
        golden.golden_set("ff")


def test_ss_document_says_it_is_held_out_at_ss():
    doc = golden.assemble(CalSettings(corner_name="ss"), [], {}, {"seed": 2024}, held_out=True, set_name="ss")
    assert doc["set"] == "ss" and doc["held_out"] is True and doc["corner"] == "ss"
    assert "never" in doc["note"].lower() and "golden-heldout-ss" in doc["note"] and "corner ss" in doc["note"]


def test_golden_command_refuses_a_corner_the_set_is_not_made_at(capsys):
    from topkima.cli import main
    assert main(["golden", "--set", "ss", "--corner", "tt"]) == 2
    assert "made at corner ss, not --corner tt" in capsys.readouterr().err
