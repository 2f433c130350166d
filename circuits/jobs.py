"""Characterisation jobs: worker processes, a per-job timeout, and a resumable cache.

A :class:`Job` names a measurement function (``"topkima.circuits.comparator:offset_sample"``)
and its JSON-able keyword arguments (every random draw is made in the parent and
passed in, so results do not depend on how many workers run them). Its cache key is
the SHA-256 of the function, the arguments, the SHA-256 of the model card and of every
netlist file the job reads (change a netlist and exactly its jobs rerun), and of the
testbench-writing code in ``circuits/`` (change it and everything reruns).

Each finished job is written to ``<cache>/<key>.json`` atomically as soon as it
returns, so a killed calibration resumes by skipping what is already there.

Workers are separate spawned processes (one ngspice per process, TOOLCHAIN.md
pitfall 4); a job that exceeds its timeout stops the run: every worker is killed and the
job is reported with its block name (finished jobs stay cached, so a rerun resumes).
Workers die with their parent, even after a ``kill -9`` of it (:func:`die_with_parent`).
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib
import json
import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from topkima.circuits.netlist import MODEL_CARD, file_sha256

#: Default wall-clock limit of one job (s); generous against a loaded machine.
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Job:
    block: str
    label: str
    fn: str                      #: "module:function", the function returns a JSON-able dict
    kwargs: dict = field(default_factory=dict)
    netlists: tuple[str, ...] = ()

    def key(self) -> str:
        files = sorted(set(self.netlists) | {MODEL_CARD})
        payload = {"fn": self.fn, "kwargs": self.kwargs,
                   "files": {f: file_sha256(f) for f in files}, "code": _code_sha256()}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


@lru_cache(maxsize=1)
def _code_sha256() -> str:
    """SHA-256 of the testbench-writing code (circuits/*.py): a change there reruns every job."""
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class JobError(RuntimeError):
    """A characterisation job failed; names its block and label."""


class JobTimeout(JobError):
    pass


def resolve(fn: str) -> Callable:
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


def run_job(job: Job) -> dict:
    """Run one job in this process."""
    return resolve(job.fn)(**job.kwargs)


class ResultCache:
    """One JSON file per finished job, written atomically."""

    def __init__(self, folder: str | os.PathLike | None):
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, job: Job) -> dict | None:
        if self.folder is None:
            return None
        path = self._path(job.key())
        try:
            return json.loads(path.read_text())["result"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None  # absent or torn: simply redo it

    def put(self, job: Job, result: dict, elapsed_s: float | None = None) -> None:
        """Store ``result``; ``elapsed_s`` (the job's wall time) is kept beside it for reports."""
        if self.folder is None:
            return
        path = self._path(job.key())
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        entry = {"block": job.block, "label": job.label, "fn": job.fn, "result": result}
        if elapsed_s is not None:
            entry["elapsed_s"] = round(float(elapsed_s), 3)
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)

    def elapsed_s(self, job: Job) -> float | None:
        """The wall time the cached run of ``job`` took (s), if it was recorded."""
        if self.folder is None:
            return None
        try:
            return json.loads(self._path(job.key()).read_text()).get("elapsed_s")
        except (FileNotFoundError, json.JSONDecodeError):
            return None


#: prctl option: the signal a process receives when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this worker when the process that started it dies, however it
    dies (Linux; elsewhere a worker notices when its pipe closes). Call first in a worker."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:     # the parent died before the request was in place
        os._exit(1)


def _worker_main(conn, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    os.environ["OMP_NUM_THREADS"] = "1"
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(("ok", run_job(job)))
        except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.job: Job | None = None
        self.started = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def run_jobs(jobs: list[Job], *, workers: int = 2, cache: ResultCache | None = None,
             timeout_s: float = DEFAULT_TIMEOUT_S,
             progress: Callable[[int, int, Job, bool], None] | None = None) -> dict[str, dict]:
    """Run ``jobs`` (cached ones are not rerun) and return ``{label: result}``.

    ``workers=0`` runs in this process (no timeout; for debugging). ``progress`` is
    called as ``progress(done, total, job, from_cache)`` after each job.
    """
    cache = cache or ResultCache(None)
    labels = [j.label for j in jobs]
    if len(set(labels)) != len(labels):
        raise ValueError("job labels must be unique")
    results: dict[str, dict] = {}
    pending: list[Job] = []
    for job in jobs:
        hit = cache.get(job)
        if hit is not None:
            results[job.label] = hit
            if progress:
                progress(len(results), len(jobs), job, True)
        else:
            pending.append(job)
    if not pending:
        return results
    if workers <= 0:
        for job in pending:
            started = time.monotonic()
            try:
                results[job.label] = run_job(job)
            except Exception as exc:
                raise JobError(f"block '{job.block}', job '{job.label}' failed: {exc}") from exc
            cache.put(job, results[job.label], time.monotonic() - started)
            if progress:
                progress(len(results), len(jobs), job, False)
        return results

    ctx = mp.get_context("spawn")
    pool = [_Worker(ctx) for _ in range(min(workers, len(pending)))]
    queue = list(reversed(pending))
    try:
        while queue or any(w.job for w in pool):
            for w in pool:
                if w.job is None and queue:
                    w.job, w.started = queue.pop(), time.monotonic()
                    w.conn.send(w.job)
            busy = [w for w in pool if w.job is not None]
            ready = wait([w.conn for w in busy], timeout=1.0)
            now = time.monotonic()
            for w in busy:
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        message = ("error", "worker process died (exit code "
                                   f"{w.proc.exitcode}); see its output above", "")
                    job, w.job = w.job, None
                    if message[0] != "ok":
                        raise JobError(f"block '{job.block}', job '{job.label}' failed: {message[1]}")
                    results[job.label] = message[1]
                    cache.put(job, message[1], time.monotonic() - w.started)
                    if progress:
                        progress(len(results), len(jobs), job, False)
                elif now - w.started > timeout_s:
                    job = w.job
                    raise JobTimeout(f"block '{job.block}', job '{job.label}' exceeded its {timeout_s:.0f} s "
                                     "timeout (hung simulation); its worker was killed. Rerun to resume; "
                                     "finished jobs are cached.")
    finally:
        for w in pool:
            try:
                if w.proc.is_alive() and w.job is None:
                    w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in pool:
            w.proc.join(0.5 if w.job is None else 0)
            w.kill()
    return results


def print_progress(stream=sys.stderr) -> Callable[[int, int, Job, bool], None]:
    """A progress callback printing one line per finished job."""
    start = time.monotonic()

    def report(done: int, total: int, job: Job, from_cache: bool) -> None:
        tag = "cached" if from_cache else f"{time.monotonic() - start:6.1f} s"
        print(f"[{done:4d}/{total}] {job.block:<10s} {job.label:<40s} {tag}", file=stream, flush=True)

    return report
