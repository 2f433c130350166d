"""The committed calibration artefact validates; corrupted, partial or foreign copies are refused."""
import copy
import json
import math
import os

import numpy as np
import pytest

from topkima.calibration import ArtefactError, load_calibration, validate, write_atomic
from topkima.calibration.artefact import PROVENANCE_KEYS, SCHEMA_VERSION, default_artefact_path
from topkima.circuits import netlist as nl


@pytest.fixture(scope="module")
def default():
    return load_calibration()


def test_default_artefact_validates_and_carries_provenance(default):
    assert default.schema_version == SCHEMA_VERSION
    for key in PROVENANCE_KEYS:
        assert key in default.provenance
    assert default.provenance["ngspice_version"]
    for section in ("column", "ramp", "comparator", "digital"):
        assert isinstance(getattr(default, section), dict)


def test_default_artefact_matches_the_shipped_netlists(default):
    # A stale artefact (netlists changed since it was made) must be regenerated.
    assert default.provenance["model_card_sha256"] == nl.file_sha256(nl.MODEL_CARD)
    for name, sha in default.provenance["netlist_sha256"].items():
        assert sha == nl.file_sha256(name), f"{name} changed since the default artefact was made"


def _write(tmp_path, data, name="a.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_truncated_file_is_refused(tmp_path):
    text = default_artefact_path().read_text()
    path = tmp_path / "partial.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ArtefactError, match="not valid JSON"):
        load_calibration(path)


def test_missing_file_is_refused_with_the_way_out(tmp_path):
    with pytest.raises(ArtefactError, match="topkima calibrate"):
        load_calibration(tmp_path / "nope.json")


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema_version"),
    (lambda d: d.pop("schema_version"), "schema_version"),
    (lambda d: d["provenance"].pop("seed"), "provenance.seed"),
    (lambda d: d.pop("comparator"), "comparator"),
    (lambda d: d["column"]["discharge_curve"]["v_rbl_v"].reverse(), "column.discharge_curve.v_rbl_v"),
    (lambda d: d["ramp"].update(lsb_v="3 mV"), "ramp.lsb_v"),
    (lambda d: d["ramp"].update(lsb_v=-0.003), "ramp.lsb_v"),
    (lambda d: d["comparator"].update(offset_sigma_v=math.nan), "comparator.offset_sigma_v"),
    (lambda d: d["column"]["timing"].pop("t_unit_s"), "column.timing.t_unit_s"),
    (lambda d: d["ramp"]["steps_v"].pop(), "ramp.steps_v"),
    (lambda d: d["column"]["bitline_droop"]["v_rbl_v"].reverse(), "column.bitline_droop.v_rbl_v"),
    (lambda d: d["column"]["bitline_droop"]["rate_rel"].pop(), "column.bitline_droop.rate_rel"),
    (lambda d: d["column"]["bitline_droop"].update(v_ref_v=None), "column.bitline_droop.v_ref_v"),
])
def test_corrupted_copies_are_refused_naming_the_field(tmp_path, default, mutate, field):
    data = copy.deepcopy(default.data)
    mutate(data)
    with pytest.raises(ArtefactError) as err:
        load_calibration(_write(tmp_path, data))
    assert f"'{field}'" in str(err.value)


def test_ramp_lsb_is_the_column_benchs_cell_pulses_plus_leakage(default):
    """Two separate SPICE benches agree: the ramp bench's LSB (``ramp.lsb_v``, 32 replica-cell steps)
    is rebuilt from the column bench alone: each 4 ns ramp clock takes one replica pulse of
    4 units (the pulse-width fit's effective units) plus the leakage of RBL_L's 416 idle stacks
    storing 0 (192 MAC rows x 2 stacks + 32 calibration rows) over 8 PWM units, stepped along the
    discharge curve from the ramp's starting level. Tolerance 1 %: below the nominal ramp's own
    step-to-step spread (DNL ±1.6 %) and a fifth of the leakage term (≈ 5 %), so dropping it fails."""
    col, ramp = default.column, default.ramp
    validate(copy.deepcopy(default.data))
    units, v = np.asarray(col["discharge_curve"]["units"]), np.asarray(col["discharge_curve"]["v_rbl_v"])
    leak = col["leakage"]
    v_tab = np.asarray(leak["v_rbl_v"])[::-1]
    leak0 = np.asarray(leak["i_leak_stored0_a"])[::-1] / np.asarray(leak["i_on_nominal_a"])[::-1]
    fit = col["pulse_units_fit"]
    t_ramp = ramp["settings"]["t_ramp_units"]
    pulse_units = fit["slope"] * t_ramp + fit["offset_units"]
    clock_units = col["timing"]["t_clk_ima_s"] / col["timing"]["t_unit_s"]
    n_idle0 = 2 * col["geometry"]["n_mac_rows"] + col["geometry"]["n_cal_rows"]
    v_start = ramp["v_rbl_l_start_v"]
    u = float(np.interp(-v_start, -v, units))
    n_steps = col["timing"]["n_ramp_steps"]
    for _ in range(n_steps):
        u += pulse_units + clock_units * n_idle0 * float(np.interp(np.interp(u, units, v), v_tab, leak0))
    lsb_from_column_v = (v_start - float(np.interp(u, units, v))) / n_steps
    assert lsb_from_column_v == pytest.approx(ramp["lsb_v"], rel=0.01)


def test_atomic_write_leaves_the_old_file_when_serialisation_fails(tmp_path, default):
    path = tmp_path / "cal.json"
    write_atomic(path, default.data)
    before = path.read_text()
    bad = copy.deepcopy(default.data)
    bad["ramp"]["lsb_v"] = math.nan  # not representable in strict JSON
    with pytest.raises(ValueError):
        write_atomic(path, bad)
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["cal.json"]


def test_column_testbench_sa_load_matches_the_measured_comparator_input(default):
    from topkima.circuits import column
    measured = default.comparator["insitu"]["c_in_reset_f"]
    for c in measured:
        assert c == pytest.approx(column.C_SA_IN_RESET_F, rel=0.05)


def test_the_artefact_names_its_corner_as_a_field_of_its_own(default):
    assert default.corner == default.data["corner"] == default.provenance["corner"] == "tt"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("corner"), r"'corner' is missing .*add \"corner\": \"tt\""),
    (lambda d: d.update(corner="ss"), r"'corner' is 'ss', but provenance.corner says 'tt'"),
    (lambda d: d.update(corner="t t"), r"'corner'"),
    (lambda d: d.update(corner=None), r"'corner'"),
])
def test_a_missing_or_contradicting_corner_is_refused_with_the_way_out(tmp_path, default, mutate, message):
    data = copy.deepcopy(default.data)
    mutate(data)
    with pytest.raises(ArtefactError, match=message):
        load_calibration(_write(tmp_path, data))
