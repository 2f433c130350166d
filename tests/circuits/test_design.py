"""The typed design configuration: the preset loads and is the one definition of the constants the
blocks read; bad design files get clear errors naming the field; a design reaches the netlists and the
job cache keys; in real ngspice, a shorter read port discharges the bitline faster per PWM unit."""
import copy
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from topkima.circuits import column as col
from topkima.circuits import comparator, timing as tm
from topkima.circuits.design import (COLUMN_FIELDS, DEFAULT_DESIGN, DesignError, default_design, design_from_dict, designs_dir,
                                     load_design)
from topkima.circuits.netlist import netlist_path


def _preset_data() -> dict:
    with open(designs_dir() / f"{DEFAULT_DESIGN}.toml", "rb") as fh:
        return tomllib.load(fh)


def _write(tmp_path, data: dict, name="d.toml"):
    """A TOML file from plain data (tables, inline tables for comparator devices)."""
    def value(v):
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = []

    def table(prefix, d):
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) or prefix.endswith("comparator")}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if isinstance(v, dict) and not prefix.endswith("comparator"):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_preset_loads_round_trips_and_hashes_stably(tmp_path):
    d = load_design(DEFAULT_DESIGN)
    assert d.name == DEFAULT_DESIGN and d.geometry.n_rows == 256 and d.geometry.n_mac_rows == 192
    again = design_from_dict(d.to_dict())
    assert again.to_dict() == d.to_dict() and again.sha256() == d.sha256()
    # a user copy of the preset in another folder is the same design (the model card is a shipped name)
    assert load_design(_write(tmp_path, _preset_data())).sha256() == d.sha256()
    assert d.changed("read_port.l_m", 480e-9).sha256() != d.sha256()


def test_the_preset_is_the_one_definition_of_the_fixed_constants():
    d = default_design()
    t = d.timing
    assert (tm.T_UNIT_S, tm.T_CLK_RAMP_S, tm.T_SA_CLK_S, tm.T_PULSE_DELAY_S) == \
        (t.t_unit_s, t.t_clk_ramp_s, t.t_sa_clk_in_cycle_s, t.t_pulse_delay_s)
    assert tm.T_PWM_S == 62e-9 and tm.N_RAMP_STEPS == d.geometry.n_ramp_rows == 32
    assert (col.N_RAMP_ROWS, col.N_CAL_ROWS, col.N_MAC_ROWS, col.PAIR_SCALES) == (32, 32, 192, (1, 2, 4))
    # the comparator's sizes: the preset's table, and netlists/strongarm.sp holds the same ones
    text = netlist_path("strongarm.sp").read_text()
    for dev in comparator.DEVICES:
        line = re.search(rf"^{dev.name} .* w=(\S+) l=(\S+) ", text, re.M)
        assert line, dev.name
        assert (float(line.group(1)), float(line.group(2))) == pytest.approx((dev.w_m, dev.l_m), rel=1e-12)
        assert d.sizes.comparator[dev.name].w_m == dev.w_m


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(colour="red"), r"colour: unknown field"),
    (lambda d: d["sizes"]["read_port"].update(length=1e-6), r"sizes\.read_port\.length: unknown field"),
    (lambda d: d["supplies"].update(v_array_v="0.5"), r"supplies\.v_array_v: must be a number"),
    (lambda d: d["sizes"]["read_port"].update(l_m=480), r"sizes\.read_port\.l_m: 480\.0 m .*unit mistake\? 480 nm is 4\.8e-07 m"),
    (lambda d: d["sizes"]["precharge"].update(w_m=0.0), r"sizes\.precharge\.w_m: 0\.0 m is outside"),
    (lambda d: d["sizes"]["read_port"].update(w_m=-120e-9), r"sizes\.read_port\.w_m: .* is outside"),
    (lambda d: d["technology"].update(a_vt_n_v_m=3.5), r"a_vt_n_v_m: .*3\.5 mV·µm is 3\.5e-09 V·m"),
    (lambda d: d["supplies"].pop("v_sa_v"), r"supplies\.v_sa_v: missing"),
    (lambda d: d["adc"].update(n_cal=40), r"adc\.n_cal: must lie in 0 … 32"),
    (lambda d: d["adc"].update(t_ramp_units=2.5), r"adc\.t_ramp_units: must be an integer"),
    (lambda d: d["technology"].update(model_card="no_such_card.lib"), r"model_card: file 'no_such_card\.lib' not found"),
    (lambda d: d["technology"].update(nmos="nfet_01v8"), r"technology\.nmos: device model 'nfet_01v8' is not defined"),
    (lambda d: d["technology"].update(pmos="p; .control"), r"technology\.pmos: .* not a known identifier"),
    (lambda d: d["technology"]["corners"].pop("tt"), r"corners\.tt: missing"),
    (lambda d: d["technology"]["corners"].update(XX=d["technology"]["corners"]["ss"]), r"corners\.XX: a corner name"),
    (lambda d: d["technology"].update(corner_method="magic"), r"corner_method: unknown method .magic."),
    # the timing is a design field now; its rules are what the testbenches need
    (lambda d: d["timing"].update(t_clk_ramp_s=4.2e-9), r"timing\.t_clk_ramp_s: the ramp clock must be a whole number"),
    (lambda d: d["timing"].update(t_wl_edge_s=0.6e-9), r"timing\.t_wl_edge_s: the wordline edge .* shorter than one PWM"),
    (lambda d: d["timing"].update(t_mac_start_s=1.0e-9), r"timing\.t_mac_start_s: the PWM pulses must start after"),
    (lambda d: d["timing"].update(t_sa_clk_in_cycle_s=2.5e-9), r"timing\.max_ramp_units: the longest ramp pulse"),
    (lambda d: d["timing"].update(t_unit_s=0.5), r"timing\.t_unit_s: .*a unit mistake\? 0\.5 ns is 5e-10 s"),
    # the array's width and key elements are design fields; their rules are what the benches need
    (lambda d: d["geometry"].update(n_columns=100), r"geometry\.n_columns: .*choose a power of two, one of 16, 32"),
    (lambda d: d["geometry"].update(n_columns=8), r"geometry\.n_columns: .*choose a power of two"),
    (lambda d: d["geometry"].update(n_elements=300), r"geometry\.n_elements: key elements per column must lie in 1 … 256"),
    (lambda d: d["geometry"].update(n_elements=16.5), r"geometry\.n_elements: must be an integer"),
    # the pair scales, input and key magnitudes stay fixed; the message names where they are wired
    (lambda d: d["geometry"].update(pair_scales=[1, 2]), r"geometry\.pair_scales: .*cannot change it yet .*key_digits"),
    (lambda d: d["geometry"].update(k_max=3), r"geometry\.k_max: .*cannot change it yet"),
    (lambda d: d["adc"].update(t_cal_units=8), r"adc\.t_cal_units: the calibration pulse must fit"),
])
def test_bad_design_files_are_refused_naming_the_field(tmp_path, mutate, message):
    data = _preset_data()
    mutate(data)
    with pytest.raises(DesignError, match=message):
        load_design(_write(tmp_path, data))


def test_unknown_preset_missing_file_and_broken_toml(tmp_path):
    with pytest.raises(DesignError, match="unknown design preset 'topkima-7nm'.*topkima-65nm"):
        load_design("topkima-7nm")
    with pytest.raises(DesignError, match="does not exist"):
        load_design(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(DesignError, match="not valid TOML"):
        load_design(bad)


def test_a_user_model_card_path_is_found_beside_the_design_file(tmp_path):
    card = tmp_path / "cards" / "my.lib"
    card.parent.mkdir()
    card.write_text("* only an NMOS\n.model ptm65_nmos nmos level=54\n")
    data = _preset_data()
    data["technology"]["model_card"] = "cards/my.lib"
    with pytest.raises(DesignError, match="technology.pmos: device model 'ptm65_pmos' is not defined in the model "
                                          "card my.lib"):
        load_design(_write(tmp_path, data))


def test_a_model_card_with_an_ngspice_control_block_is_refused(tmp_path):
    # a user's card reaches every netlist through .include: control statements could run commands
    card = tmp_path / "evil.lib"
    card.write_text(".model ptm65_nmos nmos level=54\n.model ptm65_pmos pmos level=54\n.control\nshell touch x\n.endc\n")
    data = _preset_data()
    data["technology"]["model_card"] = "evil.lib"
    with pytest.raises(DesignError, match="control statement '.control'"):
        load_design(_write(tmp_path, data))
    # also in a file the card pulls in with ``.lib FILE SECTION``
    (tmp_path / "inner.lib").write_text(".lib tt\n.control\nshell touch x\n.endc\n.endl tt\n")
    card.write_text(".model ptm65_nmos nmos level=54\n.model ptm65_pmos pmos level=54\n.lib inner.lib tt\n")
    with pytest.raises(DesignError, match="inner.lib holds the ngspice control statement"):
        load_design(_write(tmp_path, data))


def test_calibrate_refuses_a_bad_design_before_simulating(tmp_path):
    data = _preset_data()
    data["sizes"]["read_port"]["l_m"] = 960      # nm written as metres
    path = _write(tmp_path, data)
    out = subprocess.run([sys.executable, "-m", "topkima", "calibrate", "--design", str(path), "--out",
                          str(tmp_path / "c.json")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "sizes.read_port.l_m" in out.stderr and "960 nm is 9.6e-07 m" in out.stderr
    assert not (tmp_path / "c.json").exists()


def test_the_design_reaches_the_netlist_and_the_job_keys():
    from topkima.calibration.calibrate import plan_all
    from topkima.circuits.corners import Supplies, corner
    from topkima.circuits.settings import CalSettings
    base = default_design()
    long_ = base.changed("read_port.l_m", 480e-9).changed("supplies.v_array_v", 0.6)
    conv = col.ColumnConversion(tuple([1] * 64), tuple([2] * 64))
    text = col.column_netlist(conv, corner=corner("tt"), supplies=Supplies.from_design(long_), design=long_)
    from topkima.circuits.netlist import num
    assert f"readport w={num(120e-9)} l={num(480e-9)}" in text and f"l={num(960e-9)}" not in text
    assert "vdda vdda 0 0.6" in text
    a = plan_all(CalSettings(quick=True))
    b = plan_all(CalSettings(quick=True, design=base.changed("read_port.l_m", 480e-9)))
    keys = {blk: [j.key() for j in jobs] for blk, jobs in a.items()}
    keys_b = {blk: [j.key() for j in jobs] for blk, jobs in b.items()}
    assert not set(keys["column"]) & set(keys_b["column"])     # every column job depends on the read port
    assert not set(keys["ramp"]) & set(keys_b["ramp"])
    assert keys["comparator"] == keys_b["comparator"]          # the latch does not: its jobs are shared
    assert keys["digital"] == keys_b["digital"]
    # the wordline driver reaches only the ramp timing generator's jobs: every other job is shared
    d = plan_all(CalSettings(quick=True, design=base.changed("wordline_driver.wn_m", 5e-6)))
    changed = {j.label for blk, jobs in d.items() for j in jobs if j.key() not in set(keys[blk])}
    assert changed and all(label.startswith("timing_") for label in changed)
    # A_VT changes the comparator's Monte Carlo draws, hence its job keys
    c = plan_all(CalSettings(quick=True, design=base.changed("technology.a_vt_p_v_m", 4e-9)))
    assert [j.key() for j in c["comparator"]] != keys["comparator"]


def _unit_step_v(design) -> float:
    """Mean bitline drop per PWM unit over the first 40 units of 16 cells on (real ngspice)."""
    from topkima.circuits.column_measure import measure_discharge
    from topkima.circuits.corners import Supplies
    r = measure_discharge("tt", Supplies.from_design(design).as_dict(), n_on_l=16, pulses_r_units=[],
                          tstop_s=5e-9, n_points=400, design_fields=design.values(COLUMN_FIELDS))
    units, v = np.asarray(r["units"]), np.asarray(r["v_rbl_v"])
    window = (units > 8) & (units < 40)
    return -float(np.polyfit(units[window], v[window], 1)[0])


def test_a_shorter_read_port_discharges_faster_per_unit_in_ngspice():
    base = default_design()
    step_960 = _unit_step_v(base)
    step_480 = _unit_step_v(base.changed("read_port.l_m", 480e-9))
    assert 300e-6 < step_960 < 900e-6           # ~0.5 mV per unit at 0.5 V (readport.sp docstring)
    # half the length: about twice the on-current (long channel, I ∝ W/L), so a larger step
    assert 1.5 < step_480 / step_960 < 2.5


def _sectioned_card(tmp_path, sections=("tt", "ff")):
    """A foundry-style card: .lib sections, each including binned models (name.0, name.1)."""
    for s in sections:
        (tmp_path / f"models_{s}.spice").write_text(
            "".join(f".model {n}.{i} {k}mos level=54\n" for n, k in (("nfet_x", "n"), ("pfet_x", "p")) for i in (0, 1)))
    body = "".join(f".lib {s}\n.include \"models_{s}.spice\"\n.endl {s}\n" for s in sections)
    (tmp_path / "card.lib").write_text("* foundry card\n" + body)
    data = _preset_data()
    data["technology"].update(model_card="card.lib", nmos="nfet_x", pmos="pfet_x", corner_method="sections")
    for name, c in data["technology"]["corners"].items():
        c.update(dvth_n_v=0.0, dvth_p_v=0.0, section=name)
    return data


def test_foundry_corner_sections_are_checked_against_the_card(tmp_path):
    data = _sectioned_card(tmp_path)
    # the card has tt and ff only: ss (the first corner it lacks) is named
    with pytest.raises(DesignError, match=r"technology\.corners\.ss\.section: the model card card\.lib has no \.lib "
                                          r"section 'ss' \(it has ff, tt\)"):
        load_design(_write(tmp_path, data))
    data["technology"]["corners"] = {k: v for k, v in data["technology"]["corners"].items() if k in ("tt", "ff")}
    # binned models (nfet_x.0, nfet_x.1) define nfet_x; names and sections pass: the design loads and its
    # netlists take the section's includes of the run's corner and the card's model names
    from topkima.circuits import technology
    design = load_design(_write(tmp_path, data))
    assert design.technology.corners["ff"].section == "ff"
    with technology.using(technology.payload(design, "ff")):
        assert technology.model_lines() == [f'.include "{tmp_path / "models_ff.spice"}"']
        assert technology.nmos() == "nfet_x" and technology.pmos() == "pfet_x"
        with pytest.raises(ValueError, match=r"corner 'ss' has no \.lib section"):
            technology.model_lines("ss")
    del data["technology"]["corners"]["ff"]["section"]
    with pytest.raises(DesignError, match=r"corners\.ff\.section: missing"):
        load_design(_write(tmp_path, data))
