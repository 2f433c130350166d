"""The ngspice adapter and the netlist guards: real ngspice, and fakes only for error paths."""
import builtins

import numpy as np
import pytest

from topkima.circuits import netlist as nl
from topkima.circuits import spice
from topkima.circuits.column import ColumnConversion, column_netlist
from topkima.circuits.corners import Supplies, corner


def _rc_netlist(r_ohm="1k"):
    return "\n".join(["* rc", "v1 in 0 PULSE(0 1 0 1p 1p 1 2)", f"r1 in out {r_ohm}", "c1 out 0 1p",
                      ".meas tran vend FIND v(out) AT=1n", ".tran 10p 3n", ".end"]) + "\n"


def test_rc_step_matches_analytic_and_meas_is_parsed():
    res = spice.simulate(_rc_netlist(), "test-rc")
    # 1 kΩ · 1 pF = 1 ns: v(1 ns) = 1 − e^−1
    assert res.measures["vend"] == pytest.approx(1 - np.exp(-1), rel=2e-3)
    assert np.interp(3e-9, res.time, res.v("out")) == pytest.approx(1 - np.exp(-3), rel=2e-3)


def test_netlist_error_reports_ngspice_text_and_block():
    bad = "* bad\nv1 in 0 1\nq1 in out 0 nosuchmodel\n.tran 1p 1n\n.end\n"
    with pytest.raises(spice.SpiceError) as err:
        spice.simulate(bad, "my-block")
    text = str(err.value)
    assert "my-block" in text
    assert "ngspice said" in text and "nosuchmodel" in text.lower()


def test_adapter_recovers_after_an_error():
    with pytest.raises(spice.SpiceError):
        spice.simulate("* bad\nv1 a 0 1\nx1 a b nosuchsubckt\n.tran 1p 1n\n.end\n", "broken")
    assert spice.simulate(_rc_netlist(), "test-rc").measures["vend"] > 0.6


def test_missing_ngspice_names_the_debian_packages(monkeypatch):
    # A fake for the error path only: make PySpice's import fail as on a machine without libngspice.
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("PySpice.Spice.NgSpice"):
            raise OSError("cannot load library 'libngspice.so'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(spice, "_instance", None)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(spice.NgspiceMissingError) as err:
        spice.instance()
    assert "ngspice libngspice0 libngspice0-dev" in str(err.value)
    assert "committed calibration artefact" in str(err.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1; .control", None, True, "0.5"])
def test_numbers_reaching_netlists_are_validated(value):
    with pytest.raises(ValueError):
        nl.num(value)


@pytest.mark.parametrize("name", ["a b", "x\n.control", "shell rm", "", "1abc", "a;b", "{x}"])
def test_identifiers_reaching_netlists_are_validated(name):
    with pytest.raises(ValueError):
        nl.ident(name)


def test_conversion_inputs_are_validated_with_clear_messages():
    keys, inputs = [0] * 64, [0] * 64
    with pytest.raises(ValueError, match="key levels must lie in -7..7"):
        ColumnConversion([8] + keys[1:], inputs)
    with pytest.raises(ValueError, match="inputs must lie in -31..31"):
        ColumnConversion(keys, [40] + inputs[1:])
    with pytest.raises(ValueError, match="64 entries"):
        ColumnConversion(keys[:10], inputs)
    with pytest.raises(ValueError, match="integers"):
        ColumnConversion([0.5] + keys[1:], inputs)
    with pytest.raises(ValueError, match="n_cal"):
        ColumnConversion(keys, inputs, n_cal=33)


def test_generated_netlists_carry_no_control_blocks():
    conv = ColumnConversion([3, -2] + [0] * 62, [5, -7] + [0] * 62)
    text = column_netlist(conv, corner=corner("tt"), supplies=Supplies(), with_sa=False)
    lowered = text.lower()
    assert ".control" not in lowered and "shell" not in lowered
