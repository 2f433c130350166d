"""The compiled used extent of a conversion mask (its rows and key columns in use) against
``used_length`` of its rows and columns."""
import numpy as np

from topkima.behavioral.macro import used_length
from topkima.behavioral.macro.chip import used_rows_and_keys


def test_used_rows_and_keys_equal_used_length_of_the_masks_rows_and_columns():
    rng = np.random.default_rng(5)
    enable = rng.random((40, 7, 11)) < 0.15       # some elements use nothing, some rows and keys unused
    enable[3] = False
    rows, keys = used_rows_and_keys(enable)
    np.testing.assert_array_equal(rows, used_length(enable.any(axis=-1)))
    np.testing.assert_array_equal(keys, used_length(enable.any(axis=-2)))
    assert rows[3] == 0 and keys[3] == 0 and len(set(rows.tolist())) > 2
