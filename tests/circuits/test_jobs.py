"""Worker pool error paths: a hung job is killed by its timeout, a failing one names its block."""
import time

import pytest

from topkima.circuits.jobs import Job, JobError, JobTimeout, ResultCache, run_jobs


def test_hung_job_is_killed_at_its_timeout_and_reported_with_its_block(tmp_path):
    # a stand-in for a hung simulation (fakes are fine for error paths): the worker itself
    # blocks for 60 s (waiting on nothing), as an ngspice run inside it would
    hang = Job("ramp", "hung-job", "multiprocessing.connection:wait", {"object_list": [], "timeout": 60})
    start = time.monotonic()
    with pytest.raises(JobTimeout, match="block 'ramp', job 'hung-job' exceeded its 2 s timeout"):
        run_jobs([hang], workers=1, timeout_s=2, cache=ResultCache(tmp_path))
    assert time.monotonic() - start < 30
    assert not list(tmp_path.glob("*.json"))  # nothing cached for it


def test_failing_simulation_job_carries_ngspice_text_and_block(tmp_path):
    bad = Job("comparator", "bad-netlist", "topkima.circuits.spice:simulate",
              {"netlist": "* bad\nv1 a 0 1\nx1 a b nosuchsubckt\n.tran 1p 1n\n.end\n", "block": "comparator"})
    with pytest.raises(JobError) as err:
        run_jobs([bad], workers=1, cache=ResultCache(tmp_path))
    text = str(err.value)
    assert "block 'comparator'" in text and "nosuchsubckt" in text.lower()


@pytest.mark.parametrize("workers", [0, 2])
def test_run_pool_hands_every_result_to_its_key_and_names_a_failed_task(workers):
    import math
    from topkima.circuits.jobs import TaskError, run_pool
    got = {}
    run_pool([(f"t{i}", math.sqrt, (float(i * i),)) for i in range(7)],
             lambda key, result, elapsed_s: got.__setitem__(key, (result, elapsed_s >= 0)), workers=workers)
    assert got == {f"t{i}": (float(i), True) for i in range(7)}
    with pytest.raises(TaskError, match="'bad' failed: ValueError: math domain error"):
        run_pool([("fine", math.sqrt, (1.0,)), ("bad", math.sqrt, (-1.0,))], lambda *_: None, workers=workers)
