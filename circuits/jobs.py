"""Characterisation jobs: worker processes, a per-job timeout, and a resumable cache.

A :class:`Job` names a measurement function (``"topkima.circuits.comparator:offset_sample"``)
and its JSON-able keyword arguments (every random draw is made in the parent and
passed in, so results do not depend on how many workers run them). The design reaches a job
through these arguments: each job receives the design values it reads (the column and ramp
jobs :data:`~topkima.circuits.design.COLUMN_FIELDS`, supplies and ADC knobs; the others supplies,
threshold draws made with the design's A_VT, driver and read-port sizes, the arbiter tree's and
encoder's depth and the ramp wordline's columns from the array's width), and its technology and
clocks as ``Job.technology`` / ``Job.timing`` (None for the 65 nm preset's), so two designs share
exactly the jobs that do not depend on where they differ. Its cache key is
the SHA-256 of the function, the arguments, the SHA-256 of the model card and of every
netlist file the job reads (change a netlist and exactly its jobs rerun), and of the
testbench-writing code in ``circuits/`` (change it and everything reruns).

Each finished job is written to ``<cache>/<key>.json`` atomically as soon as it
returns, so a killed calibration resumes by skipping what is already there.

Workers are separate spawned processes (one ngspice per process, TOOLCHAIN.md
pitfall 4); a job that exceeds its timeout stops the run: every worker is killed and the
job is reported with its block name (finished jobs stay cached, so a rerun resumes).
Workers die with their parent, even after a ``kill -9`` of it (:func:`die_with_parent`).

The pool (:func:`run_pool`) and the progress lines (:class:`Progress`) are the project's only
ones: the studies (``topkima.studies``) run their tasks through them too.
"""
from __future__ import annotations

import ctypes
import hashlib
import importlib
import json
import math
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

from topkima.circuits.files import write_text_atomic
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
    #: the technology its netlists use (:func:`topkima.circuits.technology.payload`); None: PTM 65 nm
    technology: dict | None = None
    #: the clocks its netlists use (:func:`topkima.circuits.timing.payload`); None: the 65 nm preset's
    timing: dict | None = None

    def key(self) -> str:
        files = sorted(set(self.netlists) | {MODEL_CARD})
        payload = {"fn": self.fn, "kwargs": self.kwargs,
                   "files": {f: file_sha256(f) for f in files}, "code": _code_sha256()}
        if self.technology is not None:
            from topkima.circuits.technology import card_sha256
            payload["technology"] = self.technology
            payload["card_sha256"] = card_sha256(self.technology["card"])
        if self.timing is not None:
            payload["timing"] = self.timing
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


@lru_cache(maxsize=1)
def _code_sha256() -> str:
    """SHA-256 of the testbench-writing code (circuits/*.py) and of the shipped design presets
    (circuits/designs/*.toml, whose fixed fields the code reads): a change there reruns every job."""
    folder = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")) + sorted(folder.glob("designs/*.toml")):
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
    """Run one job in this process, with its technology and clocks active (:func:`topkima.circuits.technology.using`,
    :func:`topkima.circuits.timing.using`)."""
    from topkima.circuits import timing
    from topkima.circuits.technology import using
    with using(job.technology), timing.using(job.timing):
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
        entry = {"block": job.block, "label": job.label, "fn": job.fn, "result": result}
        if elapsed_s is not None:
            entry["elapsed_s"] = round(float(elapsed_s), 3)
        write_text_atomic(self._path(job.key()), json.dumps(entry))

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


class TaskError(RuntimeError):
    """A task of :func:`run_pool` failed (or its worker died); names the task."""

    def __init__(self, key: str, reason: str, traceback_text: str = ""):
        super().__init__(f"task {key!r} failed: {reason}")
        self.key, self.reason, self.traceback_text = key, reason, traceback_text


class TaskTimeout(TaskError):
    """A task of :func:`run_pool` ran past its wall-clock limit; every worker was killed."""


def _worker_main(conn, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    os.environ["OMP_NUM_THREADS"] = "1"
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        fn, args = task
        try:
            conn.send(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class _Worker:
    def __init__(self, ctx):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.key: str | None = None
        self.started = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _start_workers(n: int, worker_env: dict[str, str]) -> list[_Worker]:
    """``n`` spawned workers whose environment adds ``worker_env`` (set while they start, so it is
    in place before they import numpy; this process keeps its own environment)."""
    saved = {name: os.environ.get(name) for name in worker_env}
    os.environ.update(worker_env)
    try:
        ctx = mp.get_context("spawn")
        return [_Worker(ctx) for _ in range(n)]
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def run_pool(tasks: list[tuple[str, Callable, tuple]], on_result: Callable[[str, object, float], None], *,
             workers: int = 2, timeout_s: float | None = None, worker_env: dict[str, str] | None = None) -> None:
    """Run ``tasks`` [(key, fn, args)]; call ``on_result(key, fn(*args), wall time of the call in s)``
    here as each finishes.

    The project's one worker pool, shared by the SPICE jobs and the studies. ``workers`` spawned
    processes (one ngspice or one numba runtime each; ``0``: run in this process, for debugging),
    each dying with this process (:func:`die_with_parent`), take the tasks in order. ``fn`` must be
    importable by name (a module-level function) and its result picklable. A task that fails
    raises :class:`TaskError`, one running longer than ``timeout_s`` :class:`TaskTimeout`; then,
    or on an interruption, the workers are killed and the tasks not yet reported are dropped:
    what was reported stays reported (store results in ``on_result`` to resume a run).
    """
    if not tasks:
        return
    if workers <= 0:
        for key, fn, args in tasks:
            started = time.monotonic()
            try:
                result = fn(*args)
            except Exception as exc:
                raise TaskError(key, f"{type(exc).__name__}: {exc}") from exc
            on_result(key, result, time.monotonic() - started)
        return
    pool = _start_workers(min(workers, len(tasks)), {"OMP_NUM_THREADS": "1", **(worker_env or {})})
    queue = list(reversed(tasks))
    try:
        while queue or any(w.key is not None for w in pool):
            for w in pool:
                if w.key is None and queue:
                    key, fn, args = queue.pop()
                    w.key, w.started = key, time.monotonic()
                    w.conn.send((fn, args))
            busy = [w for w in pool if w.key is not None]
            ready = wait([w.conn for w in busy], timeout=1.0)
            now = time.monotonic()
            for w in busy:
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        message = ("error", f"worker process died (exit code {w.proc.exitcode}); see its "
                                   "output above", "")
                    key, w.key = w.key, None
                    if message[0] != "ok":
                        raise TaskError(key, message[1], message[2])
                    on_result(key, message[1], now - w.started)
                elif timeout_s is not None and now - w.started > timeout_s:
                    raise TaskTimeout(w.key, f"exceeded its {timeout_s:.0f} s timeout; its worker was killed")
    finally:
        for w in pool:
            try:
                if w.proc.is_alive() and w.key is None:
                    w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in pool:
            w.proc.join(0.5 if w.key is None else 0)
            w.kill()


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
    pending: dict[str, Job] = {}
    for job in jobs:
        hit = cache.get(job)
        if hit is not None:
            results[job.label] = hit
            if progress:
                progress(len(results), len(jobs), job, True)
        else:
            pending[job.label] = job
    def store(label: str, result: dict, elapsed_s: float) -> None:
        job = pending[label]
        results[label] = result
        cache.put(job, result, elapsed_s)
        if progress:
            progress(len(results), len(jobs), job, False)

    try:
        run_pool([(job.label, run_job, (job,)) for job in pending.values()], store, workers=workers,
                 timeout_s=timeout_s if workers > 0 else None)
    except TaskTimeout as exc:
        job = pending[exc.key]
        raise JobTimeout(f"block '{job.block}', job '{job.label}' exceeded its {timeout_s:.0f} s "
                         "timeout (hung simulation); its worker was killed. Rerun to resume; "
                         "finished jobs are cached.") from None
    except TaskError as exc:
        job = pending[exc.key]
        raise JobError(f"block '{job.block}', job '{job.label}' failed: {exc.reason}") from exc.__cause__
    return results


class Progress:
    """Items done out of a total, their rate and the time left, as one line to ``log`` at most every
    ``every_s`` seconds (and always for the last item). The project's one progress report, shared
    by the SPICE jobs and the studies.

    ``already``: items finished before this run (resumed from a cache); the rate counts only
    the items done now, since ``started`` (a ``time.monotonic()`` instant; default: now).
    """

    def __init__(self, total: int, log: Callable[[str], None], *, what: str = "tasks", prefix: str = "",
                 already: int = 0, every_s: float = 1.0, started: float | None = None):
        self.total, self.done, self.started_with = total, already, already
        self.log, self.what, self.prefix, self.every_s = log, what, prefix, every_s
        self.last = time.monotonic()
        self.t0 = self.last if started is None else started
        if already:
            log(f"{prefix}{already} of {total} {what} already finished (resumed)")

    def step(self, label: str = "", from_cache: bool = False) -> None:
        """One more item done (``from_cache``: found finished, not run now)."""
        self.done += 1
        if from_cache:
            self.started_with += 1
        now = time.monotonic()
        if now - self.last < self.every_s and self.done != self.total:
            return
        self.last = now
        rate = (self.done - self.started_with) / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        pace = "cached" if from_cache else f"({rate:.2f}/s, {'ETA %.0f s' % eta if math.isfinite(eta) else 'ETA ?'})"
        self.log(f"{self.prefix}[{self.done:4d}/{self.total}] {label or self.what} {pace}")


def print_progress(stream=sys.stderr) -> Callable[[int, int, Job, bool], None]:
    """A :func:`run_jobs` progress callback: one :class:`Progress` line per finished job on ``stream``."""
    state: dict[str, Progress] = {}
    started = time.monotonic()

    def report(done: int, total: int, job: Job, from_cache: bool) -> None:
        if "progress" not in state:
            state["progress"] = Progress(total, lambda line: print(line, file=stream, flush=True), what="jobs",
                                         already=done - 1, every_s=0.0, started=started)
        state["progress"].step(f"{job.block} {job.label}", from_cache)

    return report


def counting_progress():
    """(a :func:`print_progress` callback, a one-item list counting the jobs that came from the cache)."""
    report, n_cached = print_progress(), [0]

    def progress(done, total, job, from_cache):
        n_cached[0] += from_cache
        report(done, total, job, from_cache)
    return progress, n_cached


def spice_times_s(cache: ResultCache, jobs) -> list[float]:
    """SPICE wall times of ``jobs`` from the cache (so a run resumed after a kill still reports them)."""
    return [t for t in (cache.elapsed_s(j) for j in jobs) if t is not None]
