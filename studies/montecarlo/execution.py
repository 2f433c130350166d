"""Where a study's tasks run: local worker processes (the project's one pool,
:func:`topkima.circuits.jobs.run_pool`), this process, or a Dask distributed cluster.

Each task's result is handed to ``store`` as it completes; results are aggregated by instance
index later, never in completion order, so any executor gives identical figures.
"""
from __future__ import annotations

import uuid

from topkima.circuits.jobs import Progress, run_pool
from topkima.studies.montecarlo.config import StudyError

#: environment of every local worker: one BLAS thread and one kernel thread each (the workers
#: are the parallelism; two cores, more threads would oversubscribe them)
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOPKIMA_THREADS": "1"}


def connect(address: str, timeout_s: float):
    """A Dask client for ``address``, or :class:`StudyError` within about ``timeout_s``.

    The address is first probed with one comm handshake in a private event loop: a failed
    ``Client(...)`` leaves a half-built client whose finaliser prints a traceback at exit.
    """
    try:
        import asyncio

        from distributed import Client
        from distributed.comm import connect as comm_connect
    except ImportError:
        raise StudyError("--scheduler needs dask.distributed: pip install 'topkima[mc]'") from None

    async def probe():
        comm = await comm_connect(address, timeout=timeout_s)
        await comm.close()

    try:
        asyncio.run(probe())
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except Exception as exc:   # OSError, TimeoutError, ValueError (malformed), junk from a non-Dask peer
        raise StudyError(f"cannot reach a Dask scheduler at {address!r} within {timeout_s:g} s "
                         f"({type(exc).__name__}: {exc})") from None


def run_tasks(tasks: list, store, *, workers: int, client, progress: Progress) -> None:
    """Run ``tasks`` [(key, fn, args)] and ``store(key, result)`` each as it completes.

    On an error or an interruption the results stored so far stay stored (they are the resume
    files); unstarted tasks are cancelled.
    """
    if not tasks:
        return
    if client is None:
        def on_result(key, result, _elapsed_s):
            store(key, result)
            progress.step()
        run_pool(tasks, on_result, workers=workers, worker_env=WORKER_ENV)
        return
    from distributed import as_completed
    # a unique Dask key per submission: another study on the same scheduler must never
    # share (and so receive) this one's results
    run_id = uuid.uuid4().hex[:12]
    futures = {client.submit(fn, *args, key=f"topkima-mc-{run_id}-{key}", pure=False): key
               for key, fn, args in tasks}
    stored = set()
    try:
        for fut in as_completed(list(futures), loop=client.loop):
            store(futures[fut], fut.result())
            stored.add(fut)
            progress.step()
    except BaseException:
        for fut in futures:   # keep what has finished, then stop the rest
            if fut not in stored and fut.status == "finished":
                store(futures[fut], fut.result())
        raise
    finally:
        for fut in futures:
            if not fut.done():
                fut.cancel()
