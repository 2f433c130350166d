"""Worker processes die with their parent: after a ``kill -9`` of ``topkima calibrate`` or
``topkima montecarlo``, none of their workers outlives it by more than 10 s (real runs)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOPKIMA = [sys.executable, "-m", "topkima"]


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_parent_and_watch(cmd: list[str], workers: int, cwd: Path) -> list[int]:
    """Start ``cmd``, wait for its worker processes, SIGKILL it; the workers still alive 10 s later."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        kids: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            if len(kids) >= workers:
                break
            time.sleep(0.2)
        assert proc.poll() is None and len(kids) >= workers, "the command never started its workers"
        time.sleep(2)                           # the workers are busy now
        kids = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(10)
        return [k for k in kids if _alive(k)]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
@pytest.mark.slow
def test_calibrate_workers_die_with_it(tmp_path):
    cmd = TOPKIMA + ["calibrate", "--quick", "--workers", "2", "--cache", str(tmp_path / "cache"),
                     "--out", str(tmp_path / "cal.json"), "--no-summary"]
    assert _kill_parent_and_watch(cmd, 2, tmp_path) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
@pytest.mark.slow
def test_montecarlo_workers_die_with_it(tmp_path):
    cmd = TOPKIMA + ["montecarlo", "--instances", "400", "--sigma-scale", "1", "--queries", "512",
                     "--accuracy-instances", "0", "--spice-instances", "0", "--workers", "2", "--out", str(tmp_path / "mc")]
    assert _kill_parent_and_watch(cmd, 2, tmp_path) == []
