"""`topkima calibrate` end to end in real ngspice: a killed run resumes, redoing only unfinished jobs."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topkima.calibration import load_calibration

pytestmark = pytest.mark.slow
TOPKIMA = [sys.executable, "-m", "topkima"]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def test_killed_calibration_resumes_and_redoes_only_unfinished_jobs(tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "cal.json"
    args = TOPKIMA + ["calibrate", "--quick", "--mc", "8", "--seed", "5", "--cache", str(cache), "--out", str(out),
                      "--no-summary"]
    proc = subprocess.Popen(args, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(cache.glob("*.json"))) >= 6:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the calibration finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()                      # nothing half-written
    finished = {p: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert len(finished) >= 6

    done = subprocess.run(args, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if re.match(r"\[\s*\d+/\d+\]", line)]
    total = int(re.match(r"\[\s*\d+/(\d+)\]", lines[-1]).group(1))
    from_cache = sum(line.rstrip().endswith("cached") for line in lines)
    assert from_cache == len(finished)           # every finished job reused ...
    assert len(lines) == total                   # ... and every other job run exactly once
    for path, mtime in finished.items():         # ... without being redone
        assert path.stat().st_mtime_ns == mtime
    cal = load_calibration(out)
    assert cal.provenance["n_jobs_from_cache"] == len(finished)
    assert cal.provenance["seed"] == 5 and cal.provenance["quick"] is True
    from topkima.circuits.design import default_design
    assert cal.provenance["design_name"] == "topkima-65nm"
    assert cal.provenance["design_sha256"] == default_design().sha256() == cal.design_sha256
    assert cal.design == default_design().to_dict()

    again = subprocess.run(args, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0
    second = json.loads(out.read_text())
    for section in ("column", "ramp", "comparator", "digital"):
        assert second[section] == cal.data[section]  # same seed, same cache: identical figures
    assert second["provenance"]["n_jobs_from_cache"] == total


def test_bad_arguments_get_clear_errors(tmp_path):
    bad = subprocess.run(TOPKIMA + ["calibrate", "--corner", "xx", "--out", str(tmp_path / "c.json")],
                         env=_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown corner 'xx'" in bad.stderr
    bad = subprocess.run(TOPKIMA + ["calibrate", "--mc", "-3"], env=_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "positive integer" in bad.stderr
    bad = subprocess.run(TOPKIMA + ["summary", str(tmp_path / "missing.json")], env=_env(), capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "does not exist" in bad.stderr
