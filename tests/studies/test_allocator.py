"""The allocator setting (speed only; results never depend on it) does what it says: memory a
process frees is reused by its next, larger temporaries instead of being faulted in again."""
import resource
import subprocess
import sys

import pytest

PROBE = r"""
import resource
import numpy as np
from topkima.studies.allocator import keep_freed_memory
assert keep_freed_memory() and keep_freed_memory()        # accepted, and idempotent
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones((16 << 20) // 8); del a                        # a 16 MB temporary, freed
f0 = faults()
for mb in range(17, 31):                                   # then ever larger ones, each freed
    a = np.ones((mb << 20) // 8); del a
print(faults() - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_memory_is_reused_not_faulted_again():
    # A fresh process: the setting cannot be undone in this one. Each block of 17 … 30 MB is 1 MB
    # larger than the one freed before it: with freed memory kept, only that growth is new
    # memory, 14 MB. Glibc's defaults give back part of every freed block and fault it in again
    # (9,121 faults of 4 kB pages seen, of the 84,224 pages written, where 3,584 are growth).
    faults = int(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                                timeout=120).stdout)
    growth_pages = 14 * (1 << 20) // resource.getpagesize()
    assert faults <= 1.1 * growth_pages + 256
