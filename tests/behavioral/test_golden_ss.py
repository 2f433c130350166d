"""The off-nominal corner end to end: the ss golden set's planner, and (stored) ss artefact vs tt artefact on it."""
from pathlib import Path

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


# --- the stored ss set and ss artefact (`topkima golden --set ss`, `topkima calibrate --corner ss`; read, never
# regenerated). Nothing below chooses or fits anything from the ss set: the figures are reported and one ordering
# (the ss artefact beats the tt artefact on ss conversions) is asserted.

SS_FILE = Path(__file__).parents[1] / "golden" / "ss_conversions.json"
SS_ARTEFACT = Path(__file__).parents[2] / "calibration" / "ss_calibration.json"


@pytest.fixture(scope="module")
def ss_set():
    from topkima.behavioral.golden import load_golden
    return load_golden(SS_FILE)


@pytest.fixture(scope="module")
def ss_cal():
    from topkima.calibration import load_calibration
    return load_calibration(SS_ARTEFACT)


def test_stored_ss_set_is_marked_held_out_at_ss_and_large_enough(ss_set):
    assert ss_set["set"] == "ss" and ss_set["held_out"] is True and ss_set["corner"] == "ss"
    assert ss_set["provenance"]["corner"] == "ss" and ss_set["purpose"] == golden.HELDOUT_PURPOSE
    assert "--set ss" in ss_set["provenance"]["command_line"]
    codes = np.array([c["code"] for g in ss_set["groups"] for c in g["columns"]])
    assert np.count_nonzero((codes >= 1) & (codes <= 30)) >= 64      # ≥ 64 in-range SPICE conversions


def test_stored_ss_set_is_exactly_what_its_seed_plans(ss_set):
    n_groups, n_cols = len(ss_set["groups"]), len(ss_set["groups"][0]["columns"])
    _, planned = golden.plan_set(SS, CalSettings(corner_name="ss", seed=ss_set["seed"]), n_groups, n_cols)
    for stored, plan_group in zip(ss_set["groups"], planned):
        assert stored["inputs"] == plan_group["inputs"]
        for c, p in zip(stored["columns"], plan_group["columns"]):
            assert (c["label"], c["keys"], c["target_code"], c["draws"]) == (p["label"], p["keys"], p["target_code"],
                                                                            p["draws"])


def test_ss_artefact_names_its_corner_and_so_does_its_macro(ss_cal):
    from topkima.behavioral import TopkimaMacro
    assert ss_cal.corner == ss_cal.provenance["corner"] == "ss"
    assert "ss" in ss_cal.provenance["command_line"]
    with pytest.raises(ValueError, match="corner ss"):
        TopkimaMacro(ss_cal, array="3x3")


def test_ss_artefact_beats_the_tt_artefact_on_ss_conversions_in_range(ss_set, ss_cal):
    from topkima.behavioral import TopkimaMacro
    from topkima.behavioral.golden import compare
    from topkima.calibration import load_calibration
    at_ss = compare(TopkimaMacro(ss_cal), ss_set, k_top=5)
    tt_at_ss = compare(TopkimaMacro(load_calibration()), ss_set, k_top=5)
    print("\n".join(at_ss.lines() + [""] + tt_at_ss.lines()))
    assert (at_ss.artefact_corner, tt_at_ss.artefact_corner, at_ss.golden_corner) == ("ss", "tt", "ss")
    ss_in, tt_in = at_ss.regions()["in_range"], tt_at_ss.regions()["in_range"]
    assert ss_in["n"] == tt_in["n"] >= 64
    assert ss_in["exact_pct"] > tt_in["exact_pct"]


def test_compare_golden_takes_the_artefact_of_the_sets_corner(capsys):
    import json
    from topkima.cli import main
    assert main(["compare-golden", "--set", "ss", "--json", "--golden", str(SS_FILE)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["set"], out["held_out"], out["golden_corner"], out["artefact_corner"]) == ("ss", True, "ss", "ss")
    assert out["regions"]["in_range"]["n"] >= 64


def test_ss_artefact_matches_the_shipped_netlists(ss_cal):
    from topkima.circuits import netlist as nl
    assert ss_cal.provenance["model_card_sha256"] == nl.file_sha256(nl.MODEL_CARD)
    for name, sha in ss_cal.provenance["netlist_sha256"].items():
        assert sha == nl.file_sha256(name), f"{name} changed since the ss artefact was made"


def test_fit_set_is_the_heldout_plan_with_seeds_of_its_own():
    """The fitting set (issue 17: model refinements are fitted to it, so the held-out sets stay
    held out) plans codes over the window like the held-out set, but from its own seed stream:
    no query or device draw is shared with the held-out, ss or development sets."""
    tt = CalSettings()
    fit = golden.SETS["fit"]
    assert not fit.held_out and fit.path.startswith("calibration/")
    _, groups = golden.plan_set(fit, tt, fit.default_groups)
    others = []
    for name in ("heldout", "development"):
        others += golden.plan_set(golden.SETS[name], tt, golden.SETS[name].default_groups)[1]
    others += golden.plan_set(SS, CalSettings(corner_name="ss"), SS.default_groups)[1]
    assert not {tuple(g["inputs"]) for g in groups} & {tuple(g["inputs"]) for g in others}
    draws = lambda gs: {tuple(c["draws"]["sa_dvt_v"].values()) for g in gs for c in g["columns"]}  # noqa: E731
    assert not draws(groups) & draws(others)
    codes = [c["target_code"] for g in groups for c in g["columns"]]
    assert min(codes) >= 1 and max(codes) <= 30 and all(c["label"].startswith("f") for g in groups for c in g["columns"])
