"""`topkima sweep`: bad sweeps are refused naming the option; the figures are read from the artefact's
fields; a sweep killed with SIGKILL resumes, redoing no finished point (real ngspice)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from topkima.calibration import load_calibration
from topkima.studies.sweep import FIGURES, SweepConfig, SweepError, parse_vary, point_figures, topk_recall

TOPKIMA = [sys.executable, "-m", "topkima"]


@pytest.mark.parametrize("text, message", [
    ("read_port.l_m", "write FIELD=V1,V2"),
    ("read_port.l_m=", "write FIELD=V1,V2"),
    ("read_port.l_m=240e-9,abc", "'abc' is not a number"),
    ("read_port.l_m=inf", "not finite"),
])
def test_bad_vary_syntax(text, message):
    with pytest.raises(SweepError, match=message):
        parse_vary(text)


def test_vary_values_keep_integers_for_count_fields():
    assert parse_vary("adc.n_cal=16,32") == ("adc.n_cal", (16, 32))
    assert parse_vary("read_port.l_m=240e-9, 4.8e-7") == ("read_port.l_m", (240e-9, 4.8e-7))


@pytest.mark.parametrize("varies, message", [
    ((), "at least one --vary"),
    ((("read_port.colour", (1.0,)),), "unknown design field 'read_port.colour'"),
    ((("geometry.pair_scales", ([1, 2],)),), "cannot change it yet"),
    ((("geometry.n_columns", (100,)),), "choose a power of two"),
    ((("timing.t_unit_s", (1e-9,)),), "the longest ramp pulse must end before the sense instant"),
    ((("read_port.l_m", (480.0,)),), "a unit mistake\\? 480 nm"),
    ((("read_port.l_m", (1e-6,)), ("read_port.l_m", (2e-6,))), "names a field twice"),
])
def test_bad_sweeps_are_refused_before_simulating(varies, message):
    with pytest.raises(SweepError, match=message):
        SweepConfig(varies=varies).validated()


def test_points_are_the_product_of_the_varied_values():
    base, designs, combos = SweepConfig(varies=(("read_port.l_m", (480e-9, 960e-9)),
                                                ("supplies.v_array_v", (0.5, 0.6, 0.7)))).validated()
    assert len(designs) == 6 and combos[1] == (480e-9, 0.6)
    assert designs[1].sizes.read_port.l_m == 480e-9 and designs[1].supplies.v_array_v == 0.6
    assert designs[3].sha256() == base.sha256()       # 960 nm and 0.5 V: the preset itself
    assert len({d.sha256() for d in designs}) == 6


def test_point_figures_come_from_the_artefact_fields():
    cal = load_calibration()
    f = point_figures(cal, SweepConfig(varies=(("read_port.l_m", (960e-9,)),), recall_queries=32, recall_chips=2))
    assert set(FIGURES) <= set(f)
    assert f["lsb_v"] == cal.ramp["lsb_v"] and f["t_arb_s"] == cal.digital["t_arb_total_s"]
    assert f["unit_step_v"] == cal.column["unit_step_vs_v_rbl"]["dv_per_unit_v"][1]
    assert 0.4 in cal.column["mismatch"]["v_rbl_v"]
    assert f["cell_sigma_rel"] == pytest.approx(
        cal.column["mismatch"]["i_on_sigma_rel"][cal.column["mismatch"]["v_rbl_v"].index(0.4)])
    energies = dict(zip(cal.column["energy"]["activity"], cal.column["energy"]["e_conversion_j"]))
    lo, hi = max(a for a in energies if a <= 0.5), min(a for a in energies if a >= 0.5)
    assert min(energies[lo], energies[hi]) < f["e_conversion_j"] - 32 * cal.comparator["e_per_decision_j"] \
        <= max(energies[lo], energies[hi]) + 1e-30
    assert 0.5 < f["topk_recall"] <= 1.0


def test_recall_is_reproducible_and_falls_with_a_noisier_chip():
    cal = load_calibration()
    cfg = SweepConfig(varies=(("read_port.l_m", (960e-9,)),), recall_queries=32, recall_chips=2)
    assert topk_recall(cal, cfg) == topk_recall(cal, cfg)
    # a chip whose comparators are 20x noisier loses keys: the recall sees the artefact
    data = json.loads(json.dumps(cal.data))
    data["comparator"]["noise_sigma_v"] *= 20
    from topkima.calibration import Calibration
    assert topk_recall(Calibration(data), cfg) < topk_recall(cal, cfg)


@pytest.mark.slow
def test_killed_sweep_resumes_and_redoes_no_finished_point(tmp_path):
    # the wordline driver reaches only the ramp timing generator's jobs: the second point reuses the rest
    out = tmp_path / "sweep"
    args = TOPKIMA + ["sweep", "--vary", "wordline_driver.wn_m=4e-6,5e-6", "--quick", "--mc", "4",
                      "--seed", "3", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 900
    first = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = sorted(out.glob("points/p000-*/result.json"))
        if found:
            first = found[0]
            break
        time.sleep(0.5)
    assert first is not None and proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.poll() else ""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.json").exists()
    stamp = first.stat().st_mtime_ns
    done = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 of 2 points already finished (resumed)" in done.stderr
    assert first.stat().st_mtime_ns == stamp                     # the finished point was not redone
    summary = json.loads((out / "summary.json").read_text())
    assert [p["value:wordline_driver.wn_m"] for p in summary["points"]] == [4e-6, 5e-6]
    assert summary["execution"]["points_resumed"] == 1
    for name in FIGURES:
        assert (out / "plots" / f"{name}.png").stat().st_size > 0
        assert all(np.isfinite(p[name]) for p in summary["points"])
    # only the driver changed: the column and comparator figures are the same jobs, so identical
    a, b = summary["points"]
    assert a["unit_step_v"] == b["unit_step_v"] and a["sa_offset_sigma_v"] == b["sa_offset_sigma_v"]
