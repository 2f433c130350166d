"""Comparator block (PMOS-input StrongARM, netlists/strongarm.sp): physics checks in ngspice."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy.stats import chi2

from topkima.circuits import comparator as cmp
from topkima.circuits import comparator_bench as bench
from topkima.circuits import comparator_fit as fit
from topkima.circuits import comparator_insitu as insitu
from topkima.circuits import comparator_noise as noise
from topkima.circuits.mismatch import sigma_vth_v
from topkima.circuits.netlist import mos, netlist_path
from topkima.circuits.settings import CalSettings

VDD_V = 1.0


# --- the subcircuit file and the device table agree (no simulation) ----------------------
def test_netlist_devices_match_table():
    text = netlist_path("strongarm.sp").read_text()
    joined = re.sub(r"\n\+", " ", text)  # SPICE continuation lines
    header = re.search(r"^\.subckt\s+sa_strongarm\s+(.*)$", joined, re.MULTILINE).group(1)
    pins = header.split("params:")[0].split()
    assert tuple(pins) == cmp.PINS
    params = dict(re.findall(r"(dvt_\w+)=(\S+)", header))
    assert list(params) == [d.param for d in cmp.DEVICES]
    assert all(float(v) == 0.0 for v in params.values())
    lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.startswith("m")}
    assert set(lines) == {d.name for d in cmp.DEVICES}
    for d in cmp.DEVICES:
        line = lines[d.name]
        expected = mos(d.name, "d", "g", "s", "b", d.model, d.w_m, d.l_m).split()[5:]  # model onwards
        got = line.split()
        assert got[5] == d.model
        for key_val in expected[1:]:
            key, val = key_val.split("=")
            found = re.search(rf"\b{key}=(\S+)", line).group(1)
            assert float(found) == pytest.approx(float(val), rel=1e-9), (d.name, key)
        assert got[-1] == f"delvto={{{d.param}}}"


# --- decisions, delay, energy ----------------------------------------------------------------
@pytest.mark.parametrize("vcm_v", [0.1, 0.5])
def test_decision_correct_at_low_and_high_common_mode(vcm_v):
    for vdiff_v, outp_wins in ((5e-3, True), (-5e-3, False)):
        r = bench.decide(vcm_v, vdiff_v)
        assert r["outp_high"] is outp_wins
        high, low = (r["v_outp_v"], r["v_outn_v"]) if outp_wins else (r["v_outn_v"], r["v_outp_v"])
        assert high > 0.95 * VDD_V and low < 0.05 * VDD_V  # rail-to-rail outputs
        assert r["v_outp_reset_v"] < 0.05 * VDD_V and r["v_outn_reset_v"] < 0.05 * VDD_V  # reset: both low
        assert 0 < r["t_clk_to_out_s"] < 1.9e-9  # decided within the 2 ns evaluate phase


def test_losing_output_does_not_glitch_near_metastability():
    # 10 µV: the latch nodes sit at their shared ~0.45 V level for a long time; the
    # skewed first inverters must keep the losing output (an arbiter request) low.
    r = bench.decide(bench.VCM_V, 10e-6)
    assert r["outp_high"] and r["v_loser_max_v"] < 0.1 * VDD_V


def test_delay_grows_logarithmically_as_overdrive_shrinks():
    ods = [1e-4, 1e-3, 1e-2, 1e-1]
    delays = np.array(bench.delay_sweep(bench.VCM_V, ods)["t_clk_to_out_s"])
    assert np.all(np.diff(delays) < 0), delays  # smaller overdrive, longer delay
    # Regeneration: t = t0 + τ·ln(ΔV_swing / (A·V_od)), so equal steps per decade of small overdrive.
    step_per_decade = -np.diff(delays)[:2]
    assert 10e-12 < step_per_decade.min() and step_per_decade.max() < 150e-12
    assert step_per_decade.max() / step_per_decade.min() < 1.5


def _latch_capacitance_f() -> tuple[float, float]:
    """(certain, all) capacitance (F) that one decision cycle charges from vdd, by hand from the
    netlist's device table, its explicit capacitors and the PTM 65 nm card (independent of SPICE).

    certain: the winning output's load and the two neutralisation capacitors on clkb, which
    swing rail to rail every cycle. all: every gate at Cox·W·L (toxe 1.85/1.95 nm), every
    source/drain junction at zero bias (cj 5e-4 F/m², cjsw 5e-10 F/m; diffusion 0.15 µm per
    circuits/netlist.mos), both loads and the four neutralisation capacitors, as if each were
    charged once per cycle: an upper bound for switched-capacitance energy.
    """
    eps_ox = 3.9 * 8.854e-12
    cox = {"n": eps_ox / 1.85e-9, "p": eps_ox / 1.95e-9}
    gates = sum(cox[d.kind] * d.w_m * d.l_m for d in cmp.DEVICES)
    junctions = sum(2 * (5e-4 * d.w_m * 0.15e-6 + 5e-10 * 2 * (d.w_m + 0.15e-6)) for d in cmp.DEVICES)
    certain = bench.C_LOAD_F + 2 * insitu.C_NEUTRALISE_F
    everything = gates + junctions + 2 * bench.C_LOAD_F + 2 * (insitu.C_NEUTRALISE_F + insitu.C_CROSS_NEUTRALISE_F)
    return certain, everything


def test_energy_per_decision_is_the_switched_capacitance_of_the_latch():
    """E per decision lies between C·VDD² of the capacitors certainly switched each cycle and C·VDD² of
    every capacitance of the latch (plus one period of reset leakage): no crowbar current at these
    overdrives (≥ 1 mV) to take it outside. At 1 V: ≈ 9 fJ and ≈ 200 fJ."""
    r = bench.energy_per_decision(bench.VCM_V, [1e-3, 1e-1])
    c_certain_f, c_all_f = _latch_capacitance_f()
    for e_j, p_leak_w in zip(r["e_per_decision_j"], r["p_leak_reset_w"]):
        assert 0 < p_leak_w < 1e-4
        assert c_certain_f * VDD_V ** 2 < e_j < c_all_f * VDD_V ** 2 + p_leak_w * r["t_cycle_s"]


# --- offset Monte Carlo -------------------------------------------------------------------
def test_input_pair_offset_matches_pelgrom_and_is_reproducible():
    """Mismatch on the input pair only, N = 40: the offset is the pair's ΔVth.

    BSIM4 ``delvto`` shifts vth0 exactly, but with mobmod = 0 the mobility depends on
    (Vgsteff + 2·Vth)/TOXE, so a device with lower |Vth| also gets more mobility: at
    this bias one volt of PMOS delvto moves the current like ≈ 1.17 V on the gate.
    The Pelgrom expectation √2·σ_Vth is therefore scaled by that measured gain k.
    """
    n = 40
    draws = cmp.draw_mismatch_v(np.random.default_rng(2024), n, devices=cmp.INPUT_PAIR)
    assert not any(draws[d.name].any() for d in cmp.DEVICES if d.name not in cmp.INPUT_PAIR)
    offsets = np.array([bench.offset_sample({"mip": draws["mip"][i], "min": draws["min"][i]}, [bench.VCM_V])["offset_v"][0]
                        for i in range(n)])

    d = cmp.DEVICE_BY_NAME["mip"]
    s_vth = float(sigma_vth_v(d.kind, d.w_m, d.l_m))
    k = bench.offset_sample({"mip": s_vth}, [bench.VCM_V])["offset_v"][0] / s_vth
    assert 1.0 <= k <= 1.35

    # per sample: V_os = k·(ΔVth_mip - ΔVth_min), within the bisection resolution
    predicted = k * (draws["mip"] - draws["min"])
    assert np.max(np.abs(offsets - predicted)) < 2 * bench.OFFSET_TOL_V + 0.02 * np.max(np.abs(predicted))

    # σ inside the chi-square 95 % acceptance interval around the (k-scaled) Pelgrom value
    sigma_expected = k * cmp.pelgrom_input_pair_sigma_v()
    lo, hi = np.sqrt(chi2.ppf([0.025, 0.975], n - 1) / (n - 1)) * sigma_expected
    assert lo < np.std(offsets, ddof=1) < hi

    # same seed, same draws, same offsets
    again = cmp.draw_mismatch_v(np.random.default_rng(2024), n, devices=cmp.INPUT_PAIR)
    assert all(np.array_equal(draws[k_], again[k_]) for k_ in draws)
    for i in range(2):
        r = bench.offset_sample({"mip": again["mip"][i], "min": again["min"][i]}, [bench.VCM_V])
        assert r["offset_v"][0] == offsets[i]


def test_plan_is_reproducible_and_json_able():
    settings = CalSettings(quick=True, corner_name="ss")
    jobs = fit.plan(settings)
    again = fit.plan(settings)
    assert [j.key() for j in jobs] == [j.key() for j in again]
    labels = [j.label for j in jobs]
    assert len(set(labels)) == len(labels) and all(lb.startswith("comparator/") for lb in labels)
    offset_jobs = [j for j in jobs if "/offset/" in j.label]
    assert len(offset_jobs) == settings.mc_samples == 24
    insitu_jobs = [j for j in jobs if "/insitu/" in j.label]
    instances = fit.insitu_instances(settings)
    assert len(insitu_jobs) == len(instances) * len(insitu.INSITU_VCM_QUICK_V)
    # the in-situ instances are Monte Carlo samples: the same delvto as their offset job
    for name, _, i in instances:
        job = next(j for j in insitu_jobs if j.label.startswith(f"comparator/insitu/{name}/"))
        assert job.kwargs["delvto_v"] == offset_jobs[i].kwargs["delvto_v"]
    json.dumps([j.kwargs for j in jobs])
    # the corner's global shift rides on every device, on top of the drawn mismatch
    draws = cmp.draw_mismatch_v(settings.rng("comparator.offset"), settings.mc_samples)
    first = offset_jobs[0].kwargs["delvto_v"]
    assert first["mip"] == pytest.approx(settings.corner.delvto_p() + draws["mip"][0])
    assert first["mnp"] == pytest.approx(settings.corner.delvto_n() + draws["mnp"][0])
    other_seed = fit.plan(CalSettings(quick=True, corner_name="ss", seed=7))
    assert other_seed[0].kwargs["delvto_v"] != first


def test_summary_statistics():
    """artefact_section() on hand-made job results: pure arithmetic, checked against numpy/scipy."""
    settings = CalSettings(quick=True, mc=30)
    rng = np.random.default_rng(3)
    results = {}
    for j in fit.plan(settings):
        kind = j.label.split("/")[1]
        if kind in ("offset", "budget"):
            results[j.label] = {"vcm_v": list(bench.OFFSET_VCM_V),
                                "offset_v": list(rng.normal(0, 4e-3, len(bench.OFFSET_VCM_V)))}
        elif kind == "delay":
            ods = j.kwargs["overdrive_v"]
            results[j.label] = {"vcm_v": j.kwargs["vcm_v"], "overdrive_v": ods,
                                "t_clk_to_out_s": [3e-10 - 2e-11 * math.log10(o) for o in ods]}
        elif kind == "energy":
            results[j.label] = {"overdrive_v": j.kwargs["overdrive_v"],
                                "e_per_decision_j": [1e-13] * len(j.kwargs["overdrive_v"])}
        elif kind == "insitu":
            vos = float(rng.normal(0, 4e-3))
            results[j.label] = {"offset_ideal_v": vos, "threshold_first_v": vos + 1e-4,
                                "threshold_after_history_v": vos - 2e-4,
                                "after_history": {"prior_fired_at_flip": False}}
        elif kind == "kick":
            results[j.label] = {"cm_excursion_max_v": 0.05, "cm_excursion_min_v": -0.01, "cm_at_read_v": 0.04,
                                "cm_residue_v": [2e-3, 1e-5], "diff_excursion_max_abs_v": 5e-3,
                                "diff_residue_fired_v": [1e-6, -3e-6], "diff_residue_not_fired_v": [-1e-6, 3e-6],
                                "threshold_shift_per_pct_imbalance_v": -1e-4,
                                "c_in_reset_f": 14e-15, "c_in_latched_f": 40e-15}
        else:
            results[j.label] = {"sigma_noise_v": 3e-4}
    s = fit.artefact_section(settings, results)
    json.dumps(s, allow_nan=False)
    col = np.array([results[f"comparator/offset/{i:04d}"]["offset_v"][0] for i in range(30)])
    main = s["offset"]["by_vcm"][0]
    assert main["sigma_v"] == pytest.approx(np.std(col, ddof=1))
    lo, hi = main["sigma_ci95_v"]
    assert lo == pytest.approx(main["sigma_v"] * math.sqrt(29 / chi2.ppf(0.975, 29)))
    assert hi == pytest.approx(main["sigma_v"] * math.sqrt(29 / chi2.ppf(0.025, 29)))
    assert s["t_clk_to_q_1mv_s"] == pytest.approx(3.6e-10)
    assert s["offset_sigma_v"] == main["sigma_v"] and s["offset_sigma_ci95_v"] == [lo, hi]
    assert s["e_per_decision_j"] == pytest.approx(1e-13) and s["noise_sigma_v"] == 3e-4
    ods = s["delay_vs_overdrive"]["overdrive_v"]
    assert ods == sorted(ods) and len(s["delay_vs_overdrive"]["t_clk_to_q_s"]) == len(ods)
    assert len(s["offset"]["draws_dvth_v"]["mip"]) == 30
    ins = s["insitu"]
    assert ins["v_cm_v"] == list(insitu.INSITU_VCM_QUICK_V) and len(ins["instances"]) in (1, 2)
    assert ins["max_abs_deviation_v"] == pytest.approx(2e-4)
    assert ins["instances"][0]["deviation_first_v"] == pytest.approx([1e-4] * 3)
    assert ins["kick"]["cm_residue_first_cycle_v"] == [2e-3] * 3
    assert ins["kick"]["diff_residue_fired_v"] == [-3e-6] * 3  # the largest in magnitude, sign kept
    # the section carries every field the calibration artefact's schema asks of it
    from topkima.calibration import artefact
    for dotted, kind in artefact.SCHEMA["comparator"].items():
        assert artefact._check(artefact._get(s, dotted), kind) is None, dotted
    with pytest.raises(ValueError, match="missing"):
        fit.artefact_section(settings, {})


# --- in-situ: floating bitline-like inputs ----------------------------------------------------
def test_neutralisation_capacitors_in_netlist_match_the_constant():
    text = netlist_path("strongarm.sp").read_text()
    caps = re.findall(r"^(cnk[pn]) (inp|inn) clkb (\S+)$", text, re.MULTILINE)
    assert [(name, pin) for name, pin, _ in caps] == [("cnkp", "inp"), ("cnkn", "inn")]
    assert all(float(value) == insitu.C_NEUTRALISE_F for _, _, value in caps)
    cross = re.findall(r"^(cxk[pn]) (inp|inn) (xp|xn) (\S+)$", text, re.MULTILINE)
    # each input to the drain of the OTHER input device (mip drives xn, min drives xp)
    assert [(name, pin, node) for name, pin, node, _ in cross] == [("cxkp", "inp", "xp"), ("cxkn", "inn", "xn")]
    assert all(float(value) == insitu.C_CROSS_NEUTRALISE_F for *_, value in cross)
    assert re.search(r"^mip xn inp ", text, re.MULTILINE) and re.search(r"^min xp inn ", text, re.MULTILINE)


def _mc_instance(index: int) -> dict:
    """Monte Carlo instance ``index`` of the quick plan's draws (all devices mismatched)."""
    draws = cmp.draw_mismatch_v(CalSettings(quick=True).rng(fit.RNG_PURPOSE), 24)
    return {d.name: float(draws[d.name][index]) for d in cmp.DEVICES}


@pytest.mark.parametrize("vcm_v", [0.15, 0.45])
def test_insitu_threshold_equals_ideal_source_offset(vcm_v):
    """A comparator on two floating 170 fF bitlines decides where its characterised offset says.

    Instance: quick-plan Monte Carlo sample 9, offset ≈ +11 / +6.4 mV at Vcm = 0.15 /
    0.45 V (≈ 2σ, latch and input pair both mismatched): the in-situ error grows with
    the offset (the input devices' channel charge differs at the balance point), so a
    large-offset instance is the hard case. X = 0.5 mV: the behavioural model takes
    the characterised offset as the threshold, and 0.5 mV is ≈ 1/4 of the ≈ 2.1 mV ramp
    step (tt, t_ramp_units = 4) and < 0.1 of the offset σ, so it moves a code only when
    the crossing lies within 0.5 mV of a step anyway. Measured here: +0.16 / +0.26 mV
    (+0.30 / +0.37 mV with the common-mode neutraliser alone, +0.23 ... +0.25 mV at 0.45 V
    without any neutralisation).
    """
    r = insitu.insitu_threshold(vcm_v, _mc_instance(9), n_history=3)
    assert abs(r["offset_ideal_v"]) > 4e-3  # a real offset, not the symmetric nominal case
    assert abs(r["threshold_first_v"] - r["offset_ideal_v"]) < 0.5e-3
    assert abs(r["threshold_after_history_v"] - r["offset_ideal_v"]) < 0.5e-3
    hist = r["after_history"]
    assert not hist["prior_fired_at_flip"]
    # the earlier decisions sat one ramp step apart below the threshold (not fired)
    gaps = np.diff(hist["vdiff_at_prior_edges_v"] + [r["threshold_after_history_v"]])
    assert np.all((0.7 * insitu.INSITU_STEP_V < gaps) & (gaps < 1.05 * insitu.INSITU_STEP_V))


def test_kick_on_floating_bitlines_recovers_and_is_neutralised():
    k = insitu.kickback(0.15)
    # the common-mode kick is real but bounded, and given back in reset
    assert 0 < k["cm_excursion_max_v"] < 0.1 and k["cm_excursion_min_v"] > -0.05
    assert abs(k["cm_residue_v"][0]) < 5e-3 and abs(k["cm_residue_v"][-1]) < 0.2e-3
    # no differential residue after a fired or a not-fired decision: no history effect
    assert max(map(abs, k["diff_residue_fired_v"] + k["diff_residue_not_fired_v"])) < 50e-6
    # neutralised: -0.19 mV per % here, against -0.33 mV per % for the same latch without
    # cnk*/cxk* (measured when they were added)
    assert abs(k["threshold_shift_per_pct_imbalance_v"]) < 0.25e-3
    # input load: in reset overlap + junction-free gate + neutraliser; latched ≈ the
    # input device's inverted channel Cox·W·L (PMOS toxe = 1.95 nm, PTM card)
    d = cmp.DEVICE_BY_NAME["mip"]
    c_ox_wl_f = 3.9 * 8.854e-12 / 1.95e-9 * d.w_m * d.l_m
    assert insitu.C_NEUTRALISE_F < k["c_in_reset_f"] < 0.7 * c_ox_wl_f
    assert 0.7 * c_ox_wl_f < k["c_in_latched_f"] < 2 * c_ox_wl_f
    assert k["c_in_reset_f"] < 0.15 * insitu.C_BITLINE_F


# --- noise ------------------------------------------------------------------------------------
def test_noise_estimate_is_consistent():
    r = noise.noise_estimate(bench.VCM_V, tau_step_s=30e-12)
    assert 0.05e-3 < r["sigma_noise_v"] < 2e-3
    assert 0.4 < r["gamma_eff"] < 1.5  # BSIM4 channel thermal noise, 2/3 long-channel
    # the time-varying estimate and the first-order 4kTγ/∫gm dt agree to a factor 1.5
    assert 1 / 1.5 < r["sigma_thermal_v"] / r["sigma_first_order_v"] < 1.5
    assert 1e-15 < r["c_x_f"] < 1e-13 and 1e-15 < r["c_l_f"] < 1e-13


# --- bad input is refused ---------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda: bench.decide(float("nan"), 1e-3), "vcm_v must be finite"),
    (lambda: bench.decide("0.35", 1e-3), "vcm_v must be a number"),
    (lambda: bench.decide(0.35, 1e-3, delvto_v={"mip": "1m"}), "delvto of mip must be a number"),
    (lambda: bench.decide(0.35, 1e-3, delvto_v={"m1; .control": 0.0}), "unknown comparator device"),
    (lambda: bench.offset_sample({}, [0.35, math.inf]), "vcm_v must be finite"),
    (lambda: bench.delay_sweep(2.0, [1e-3]), r"vcm_v must lie in"),
    (lambda: cmp.subckt_instance("sa1", "a", "b", "c", "d", "e", "f", "0"), "must start with 'x'"),
    (lambda: cmp.subckt_instance("xsa", "a b", "b", "c", "d", "e", "f", "0"), "not a known identifier"),
    (lambda: cmp.subckt_instance("xsa", "a", "b", "c", "d", "e", "f", "0", {"mip": math.nan}), "must be finite"),
    (lambda: insitu.insitu_threshold(0.3, timing={"t_clk_s": 4e-9}), "timing must map exactly"),
    (lambda: insitu.insitu_threshold(0.3, n_history=0), "n_history must be an integer"),
    (lambda: insitu.kickback(0.3, c_bitline_f=-1e-15), r"c_bitline_f must lie in"),
])
def test_bad_parameters_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_subckt_instance_line():
    line = cmp.subckt_instance("xsa3", "rbl_l", "rbl_r", "clk", "fire_p", "fire_n", "vsa", "0",
                               {"min": -1e-3, "mip": 2e-3})
    assert line.startswith("xsa3 rbl_l rbl_r clk fire_p fire_n vsa 0 sa_strongarm ")
    assert line.endswith("dvt_mip=0.002 dvt_min=-0.001")  # in device-table order


def test_linear_offset_model_recovers_known_sensitivities():
    """offset_sensitivity() on synthetic samples with known coefficients (pure arithmetic)."""
    rng = np.random.default_rng(4)
    n = 60
    draws = {d.name: rng.normal(0, 5e-3, n) for d in cmp.DEVICES}
    true = np.zeros((len(cmp.DEVICES), len(bench.OFFSET_VCM_V)))
    true[[i for i, d in enumerate(cmp.DEVICES) if d.name == "mip"][0]] = 1.17
    true[[i for i, d in enumerate(cmp.DEVICES) if d.name == "min"][0]] = -1.17
    x = np.column_stack([draws[d.name] for d in cmp.DEVICES])
    samples = 1e-4 + x @ true
    model = fit.fit_offset_linear_model(draws, samples)
    np.testing.assert_allclose(np.asarray(model["sensitivity_v_per_v"]).T, true, atol=1e-9)
    np.testing.assert_allclose(model["intercept_v"], 1e-4, atol=1e-12)
    assert max(model["residual_sigma_v"]) < 1e-12
