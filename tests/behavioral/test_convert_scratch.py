"""The conversion kernel's working arrays (behavioral/macro/convert.py, ``Scratch``): the code-table
buffer is left uninitialised (``np.empty``), sized for every line a key set can have; a line must be
written, at the key set's own width, before any row reads it. Filled with NaN beforehand, it must give
the same results, bit for bit, on batched key sets whose used rows and keys differ (so the lines'
width changes between key sets inside one block), for any thread count."""
import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro import convert as convert_module
from topkima.behavioral.macro import runtime
from topkima.calibration import load_calibration

FIELDS = ("indices", "codes", "cycles", "energy_j", "firing_cycle")


@pytest.fixture(scope="module")
def chip():
    return TopkimaMacro(load_calibration(), sigma_scale=2.0).instance(np.random.default_rng(3))


def ragged_batch(chip, rng):
    """9 key sets of up to 40 keys and 12 rows: each uses its own number of rows and keys."""
    n_batch, n_rows, n_keys = 9, 12, 40
    q = rng.integers(-31, 32, (n_batch, n_rows, chip.n_elements))
    q[rng.random(q.shape) < 0.3] = 0
    k = rng.integers(-chip.k_max, chip.k_max + 1, (n_batch, chip.n_elements, n_keys))
    mask = np.zeros((n_batch, n_rows, n_keys), dtype=bool)
    for b in range(n_batch):
        mask[b, : rng.integers(1, n_rows + 1), : rng.integers(6, n_keys + 1)] = True
    return q, k, mask


def test_uninitialised_code_tables_are_never_read(chip, monkeypatch):
    q, k, mask = ragged_batch(chip, np.random.default_rng(11))
    before = runtime.threads()
    try:
        runtime.set_threads(1)
        want = chip.topk(q, k, k=5, rng=np.random.default_rng(2), key_mask=mask)
        real = convert_module.scratch_of_block

        def poisoned(*args):
            s = real(*args)
            s.table[:] = np.nan
            return s
        monkeypatch.setattr(convert_module, "scratch_of_block", poisoned)
        for n in (1, 3):
            runtime.set_threads(n)
            got = chip.topk(q, k, k=5, rng=np.random.default_rng(2), key_mask=mask)
            for f in FIELDS:
                np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f"{f}, {n} threads")
    finally:
        runtime.set_threads(before)
    assert np.isfinite(want.energy_j).all() and (want.indices >= 0).any()


def test_the_comparators_refuse_short_scratch(chip):
    """The kernels run without bounds checks: lists shorter than the comparators fill are refused
    (here the near list with the three rows it had before the four-decision noise window)."""
    from topkima.behavioral.macro.adc import margin_headroom_v
    n, rows = 8, 2
    p, bl, ramp = chip.params, chip.bitlines, chip.ramp(0)
    units = np.zeros((rows, 2 * n))
    leak = np.zeros(n)
    headroom = margin_headroom_v(bl, ramp.devices, p.n_ramp_steps, ramp.u_ramp_after_units)[:n]
    args = dict(near=np.zeros((4, rows * n), np.int64), near_g=np.zeros((4, rows * n)), flat=np.zeros((2, rows * n), np.int64),
                listed=np.zeros(rows * n, np.int64), listed_start=np.zeros(rows + 1, np.int64))
    for name, short in (("near", np.zeros((3, rows * n), np.int64)), ("near_g", np.zeros((4, rows * n - 1))),
                        ("flat", np.zeros((2, rows * n - 1), np.int64)), ("listed", np.zeros(rows * n - 1, np.int64)),
                        ("listed_start", np.zeros(rows, np.int64))):
        with pytest.raises(ValueError, match="scratch too small"):
            convert_module.fire_comparators(bl, ramp, units, n, n, leak, headroom, np.ones((1, n), np.bool_), True,
                                            p.n_ramp_steps, 8.0, 1, 0.0, np.uint64(0), 0, 0, 0,
                                            np.zeros((rows, n), np.int64), np.zeros(rows, np.int64),
                                            *{**args, name: short}.values())
