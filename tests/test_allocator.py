"""The allocator setting the command line applies (speed only; results never depend on it)."""
import sys

import numpy as np
import pytest

from topkima.allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keep_freed_memory_is_accepted_and_idempotent():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True
    x = np.ones(1 << 22)          # a 32 MB block still allocates and frees normally
    assert x.sum() == 1 << 22
