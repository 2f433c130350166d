"""`topkima montecarlo`: relations the study must satisfy, determinism across executors, resume."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from topkima.studies.montecarlo import (NON_RESULT_KEYS, StudyConfig, StudyError, band, codes_from_firing,
                                recall_precision, run_montecarlo, sigma_label)

SMALL = StudyConfig(instances=3, sigma_scales=(0.0, 1.0, 2.0), n_queries=64, accuracy_instances=0, spice_instances=2)


def figures(summary: dict) -> dict:
    """The summary without what legitimately differs between identical studies (times, paths)."""
    return {key: value for key, value in summary.items() if key not in NON_RESULT_KEYS}


def quiet(_text):
    pass


@pytest.fixture(scope="module")
def small_serial(tmp_path_factory):
    out = tmp_path_factory.mktemp("mc_serial")
    return out, run_montecarlo(out, SMALL, workers=0, log=quiet)


# --- pure metrics --------------------------------------------------------------------------
def test_recall_precision_handle_empty_slots():
    sel = np.array([[3, 1, -1], [0, 1, 2], [-1, -1, -1]])
    ref = np.array([[1, 2, 3], [0, 1, -1], [4, 5, 6]])
    rec, prec = recall_precision(sel, ref)
    # rows: 2/3 of R found, S fully right; 2/2 found, 2/3 of S right; 0/3 found, S empty (no precision)
    assert rec == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert prec == pytest.approx((1 + 2 / 3) / 2)


def test_band_contains_the_mean_and_orders_its_limits():
    x = np.random.default_rng(0).normal(size=50)
    b = band(x)
    assert b["ci95_mean"][0] < b["mean"] < b["ci95_mean"][1]
    assert b["spread95"][0] < b["ci95_mean"][0] and b["ci95_mean"][1] < b["spread95"][1]
    assert band([0.5])["ci95_mean"] == [0.5, 0.5]


def test_full_ramp_codes_from_the_topk_call_equal_conventional_mode():
    from topkima.behavioral import TopkimaMacro
    from topkima.calibration import load_calibration
    rng = np.random.default_rng(3)
    q, kl = rng.integers(-3, 4, (16, 64)), rng.integers(-7, 8, (64, 256))
    chip = TopkimaMacro(load_calibration()).instance(np.random.default_rng(1))
    top = chip.topk(q, kl, k=5, rng=np.random.default_rng(2))
    conv = chip.topk(q, kl, k=5, rng=np.random.default_rng(2), mode="conventional")
    np.testing.assert_array_equal(codes_from_firing(top.firing_cycle), conv.codes)


# --- the study's relations ---------------------------------------------------------------------
def test_summary_keys_and_figures(small_serial):
    out, s = small_serial
    labels = [sigma_label(x) for x in SMALL.sigma_scales]
    assert labels == ["0.0", "1.0", "2.0"]
    assert s["instances"] == SMALL.instances and s["seed"] == SMALL.seed
    for key in ("topk_recall", "topk_precision", "alpha_mean", "code_error", "accuracy", "flip_rate",
                "topk_recall_band", "inl_max_median_lsb"):
        assert set(s[key]) == set(labels), key
    assert all(v is None for v in s["accuracy"].values())        # accuracy study switched off
    for lab in labels:
        ce = s["code_error"][lab]
        assert len(ce["mean_lsb"]) == len(ce["sigma_lsb"]) == 32
        assert sum(ce["n"]) == SMALL.n_queries * SMALL.n_keys * SMALL.instances
        assert 0 < s["alpha_mean"][lab] <= 1
    for stem in ("code_error_histogram", "code_error_vs_code", "inl_dnl_spread", "recall_vs_sigma",
                 "alpha_histogram", "spice_vs_behavioural"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000
    assert json.loads((out / "summary.json").read_text())["topk_recall"] == s["topk_recall"]
    assert len(list((out / "instances").glob("*/sigma*_i*.json"))) == 9


def test_sigma_zero_is_the_nominal_chip_and_variation_grows_with_sigma(small_serial):
    _, s = small_serial
    # σ = 0: no mismatch and no noise, so each instance is the nominal chip
    assert s["topk_recall_vs_nominal"]["0.0"] == 1.0
    assert s["code_error_vs_nominal_rms_lsb"]["0.0"] == 0.0
    assert s["topk_recall_band"]["0.0"]["std"] == pytest.approx(0.0, abs=1e-12)   # identical instances
    rec = [s["topk_recall"][lab] for lab in ("0.0", "1.0", "2.0")]
    assert rec[0] > rec[1] > rec[2]
    inl = [s["inl_max_median_lsb"][lab] for lab in ("0.0", "1.0", "2.0")]
    assert inl[0] < inl[1] < inl[2]
    rms = [s["code_error_vs_nominal_rms_lsb"][lab] for lab in ("0.0", "1.0", "2.0")]
    assert rms[0] < rms[1] < rms[2]


def test_spice_vs_behavioural_reports_both_tests(small_serial):
    _, s = small_serial
    svb = s["spice_vs_behavioural"]
    assert len(svb["offset_by_vcm"]) == 3
    for entry in svb["offset_by_vcm"]:
        assert 0 <= entry["ks_pvalue"] <= 1 and 0 <= entry["ad_pvalue"] <= 1
        assert entry["n_spice"] == 200 and entry["n_model"] == 256 * SMALL.spice_instances
        # the model's offsets come from a linear model of the same SPICE Monte Carlo
        assert entry["std_model"] == pytest.approx(entry["std_spice"], rel=0.2)
    codes = svb["column_codes"]
    assert codes["n_golden_conversions"] == 128
    assert codes["deviation_from_nominal"]["n_model"] == 128 * SMALL.spice_instances


def test_same_seed_same_figures_and_another_seed_differs(small_serial, tmp_path):
    _, s = small_serial
    again = run_montecarlo(tmp_path / "again", SMALL, workers=0, log=quiet, figures=False)
    assert figures(again) == figures(s)
    other = run_montecarlo(tmp_path / "other", StudyConfig(**{**SMALL.__dict__, "seed": 1}), workers=0, log=quiet,
                          figures=False)
    assert other["topk_recall"] != s["topk_recall"]


def test_one_and_two_workers_and_a_dask_cluster_give_identical_figures(small_serial, tmp_path):
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed (pip install '.[mc]')")
    _, s = small_serial
    one = run_montecarlo(tmp_path / "w1", SMALL, workers=1, log=quiet, figures=False)
    two = run_montecarlo(tmp_path / "w2", SMALL, workers=2, log=quiet, figures=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        dask = run_montecarlo(tmp_path / "dask", SMALL, scheduler=cluster.scheduler_address, log=quiet,
                              figures=False)
    assert figures(one) == figures(s)
    assert figures(two) == figures(s)
    assert figures(dask) == figures(s)
    assert "Dask" in dask["execution"]["where"]


def test_a_larger_study_reuses_the_finished_instances(small_serial, tmp_path):
    out = tmp_path / "grow"
    first = run_montecarlo(out, StudyConfig(**{**SMALL.__dict__, "instances": 2}), workers=0, log=quiet,
                           figures=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("instances/*/sigma*.json")}
    lines = []
    grown = run_montecarlo(out, SMALL, workers=0, log=lines.append, figures=False)
    assert grown["execution"]["tasks_run"] == 3                          # only instance 2 at each σ
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert any("6 of 9 tasks already finished" in line for line in lines)
    assert figures(grown) == figures(small_serial[1])
    assert first["instances"] == 2


# --- interruption ---------------------------------------------------------------------------------
def test_a_killed_study_resumes_to_the_uninterrupted_result(tmp_path):
    args = ["--instances", "12", "--sigma-scale", "0,1.5", "--queries", "512", "--accuracy-instances", "0",
            "--spice-instances", "1", "--seed", "7"]
    cfg = StudyConfig(instances=12, sigma_scales=(0.0, 1.5), n_queries=512, accuracy_instances=0,
                      spice_instances=1, seed=7)
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "topkima", "montecarlo", *args, "--workers", "0",
                             "--out", str(out)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(out.glob("instances/*/sigma*.json"))) >= 4:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the study ended before it could be killed: " + proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    stored = list(out.glob("instances/*/sigma*.json"))
    assert 4 <= len(stored) < 24 and not (out / "summary.json").exists()
    for path in stored:                                   # atomic: every stored file is whole
        assert json.loads(path.read_text())["index"] >= 0
    lines = []
    resumed = run_montecarlo(out, cfg, workers=0, log=lines.append, figures=False)
    assert resumed["execution"]["tasks_run"] == 24 - len(stored)
    whole = run_montecarlo(tmp_path / "whole", cfg, workers=0, log=quiet, figures=False)
    assert figures(resumed) == figures(whole)


# --- bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    ({"sigma_scales": (1.0, -0.5)}, "≥ 0"), ({"sigma_scales": ()}, "at least one"),
    ({"sigma_scales": (1.0, float("nan"))}, "finite"), ({"instances": 0}, "instances"),
    ({"k": 300}, "k = 300"), ({"sigma_scales": ("x",)}, "numbers")])
def test_bad_configurations_are_refused(change, message, tmp_path):
    with pytest.raises(StudyError, match=message):
        run_montecarlo(tmp_path, StudyConfig(**{**SMALL.__dict__, **change}), workers=0, log=quiet)


@pytest.mark.parametrize("argv, message", [
    (["--sigma-scale", "-1"], "σ multipliers must be finite numbers ≥ 0"),
    (["--sigma-scale", "1,abc"], "expected comma-separated numbers"),
    (["--instances", "0"], "expected a positive integer")])
def test_bad_command_line_arguments_exit_2_without_traceback(argv, message, capsys, tmp_path):
    from topkima.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["montecarlo", *argv, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_unreachable_scheduler_is_named_within_seconds(tmp_path, capsys):
    pytest.importorskip("distributed", reason="needs dask.distributed (pip install '.[mc]')")
    from topkima.cli import main
    with socket.socket() as s:            # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.monotonic()
    assert main(["montecarlo", "--scheduler", address, "--scheduler-timeout", "1", "--out", str(tmp_path)]) == 2
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert f"cannot reach a Dask scheduler at '{address}'" in err and "Traceback" not in err
    assert not (tmp_path / "summary.json").exists()


def test_spice_offset_comparison_uses_ideal_source_offsets(tmp_path):
    """SPICE's offset samples are measured with ideal voltage sources, so the model's side of the
    comparison leaves out the in-column threshold term: the same figures with or without it in
    the artefact, although the chips' thresholds differ."""
    import copy

    import topkima.calibration as calibration
    from topkima.behavioral import TopkimaMacro
    from topkima.studies.montecarlo.spice_comparison import spice_vs_behavioural
    cal = calibration.load_calibration()
    assert cal.comparator.get("in_column"), "the committed artefact carries the in-column threshold"
    data = copy.deepcopy(cal.data)
    del data["comparator"]["in_column"], data["comparator"]["in_column_devices"]   # the devices extend it
    without = calibration.Calibration(data)
    none = tmp_path / "no_golden.json"
    with_term, _ = spice_vs_behavioural(cal, seed=3, n_instances=1, golden_path=none)
    without_term, _ = spice_vs_behavioural(without, seed=3, n_instances=1, golden_path=none)
    assert with_term["offset_by_vcm"] == without_term["offset_by_vcm"]
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    chip_with = TopkimaMacro(cal).draw_tile(rng(), 256, 192).sa_offset_v
    chip_without = TopkimaMacro(without).draw_tile(rng(), 256, 192).sa_offset_v
    assert not np.allclose(chip_with, chip_without)
