"""The behavioural model reads the array's columns and key elements from the artefact's design.

The artefact here is the committed one with its recorded design changed to 128 columns of 32 key
elements by :func:`topkima.studies.circuit_whatif.variant_array` (a documented what-if, not a
hand edit). Its macro's chips spread 300 keys over ⌈300/128⌉ = 3 arrays, each with its own frozen
devices; the compiled path is checked against the slow cycle-by-cycle reference of
test_behavioral_reference.py run array by array, with the arbiter written out again here
(global top-k, and fixed per-array quotas). Attention with 200 keys runs on two arrays with the
quotas 3 + 2; the accelerator estimate reads 128 keys per array.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from topkima.behavioral import TopkimaMacro
from topkima.behavioral.macro.arrays import array_quotas
from topkima.calibration import load_calibration
from topkima.circuits.design import DesignError
from topkima.studies.circuit_whatif import variant_array

_spec = importlib.util.spec_from_file_location("behavioral_reference",
                                               Path(__file__).with_name("test_behavioral_reference.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

N_COLS, N_EL = 128, 32


@pytest.fixture(scope="module")
def macro():
    return TopkimaMacro(variant_array(n_columns=N_COLS, n_elements=N_EL))


def test_the_macro_takes_its_array_from_the_artefacts_design(macro):
    assert (macro.array, macro.geometry, macro.params.n_columns) == ("design:128c32e1-2-4", (128, 32, (1, 2, 4)), 128)
    assert "what-if" in macro.calibration.provenance["what_if"]
    committed = TopkimaMacro(load_calibration())
    assert (committed.array, committed.geometry, committed.params.n_columns) == ("256x256", (256, 64, (1, 2, 4)), 256)
    assert TopkimaMacro(macro.calibration, "256x256").geometry == (256, 64, (1, 2, 4))     # a named what-if array
    with pytest.raises(ValueError, match=r"unknown array '64x64' .*its own 'design:128c32e1-2-4' \(the default\)"):
        TopkimaMacro(macro.calibration, "64x64")
    # a 128-step design keeps the paper's 256 x 256 key geometry, hence its name and the "3+2" tiling
    wideport = TopkimaMacro(load_calibration(Path(__file__).parents[2] / "calibration" / "ramp128_wideport_quick_calibration.json"))
    assert wideport.array == "256x256"
    assert array_quotas(300, 5, wideport.array, wideport.geometry[0]) == "3+2"
    with pytest.raises(ValueError, match=r"d = 64 key elements do not fit one column of a design:128c32e1-2-4 array \(32"):
        macro.ideal().topk(np.zeros((2, 64), int), np.zeros((64, 10), int), k=3)
    with pytest.raises(DesignError, match=r"geometry\.n_columns: .*power of two"):
        variant_array(n_columns=100, n_elements=32)


class _OneArray:
    """Array ``a`` of a chip seen as its array 0 (what the single-array reference reads)."""

    def __init__(self, chip, a):
        self._chip, self._a = chip, a

    def __getattr__(self, name):
        return getattr(self._chip, name)

    def devices(self, index=0):
        return self._chip.devices(self._a)

    def ramp(self, index=0):
        return self._chip.ramp(self._a)


def _reference(chip, macro, q, kl, k, blocks, quotas):
    """Firing cycles array by array (block t of keys on array t's first columns), then the arbiter:
    cycle by cycle, lower addresses first, k grants over all arrays (quotas None) or each array's own."""
    n = chip.params.n_ramp_steps
    firing, margin = [], []
    for t, (c0, c1) in enumerate(blocks):
        details = {}
        _, _, f = ref.reference_topk(_OneArray(chip, t), q, kl[:, c0:c1], min(k, c1 - c0), insitu=macro.insitu,
                                     details=details)
        firing.append(f)
        margin.append(details["margin"])
    firing, margin = np.concatenate(firing, axis=1), np.concatenate(margin, axis=1)
    out = []
    for r in range(q.shape[0]):
        granted = []
        for t, (c0, c1) in enumerate(blocks if quotas else [(0, kl.shape[1])]):
            kept = []
            for j in range(1, n + 1):
                kept += [c for c in range(c0, c1) if firing[r, c] == j][: (quotas[t] if quotas else k) - len(kept)]
            granted += kept
        out.append(granted)
    return firing, margin, out


@pytest.mark.parametrize("quotas", [None, (2, 2, 1)])
def test_300_keys_on_three_128_column_arrays_equal_the_slow_reference(macro, quotas):
    chip = macro.instance(np.random.default_rng(5)).without_noise()
    rng = np.random.default_rng(8)
    q = rng.integers(-12, 13, (4, N_EL)) * (rng.random((4, N_EL)) < 0.6)
    kl = rng.integers(-4, 5, (N_EL, 300))
    fast = chip.topk(q, kl, k=5, quotas=quotas)
    # None: 128 + 128 + 44 keys, one k-counter; quotas: 100 keys on each of the three arrays
    blocks = [(0, 128), (128, 256), (256, 300)] if quotas is None else [(0, 100), (100, 200), (200, 300)]
    firing, margin, granted = _reference(chip, macro, q, kl, 5, blocks, quotas)
    differ = fast.firing_cycle != firing
    assert np.all(margin[differ] < ref.THRESHOLD_TIE_V) and differ.mean() < 0.01
    assert (~differ.any(axis=1)).sum() >= 3                  # most rows compared grant by grant
    for r in range(q.shape[0]):
        if not differ[r].any():
            assert sorted(fast.indices[r][fast.indices[r] >= 0].tolist()) == sorted(granted[r])
    assert len(np.unique(firing)) >= 6                       # the crossings spread over the ramp
    # each array has its own devices: the same keys on array 0 and array 1 fire differently somewhere
    assert not np.array_equal(chip.devices(0).m_stack, chip.devices(1).m_stack)
    assert chip.devices(2).m_stack.shape == (N_EL * 3, 4, N_COLS)


def test_attention_spreads_200_keys_over_two_128_column_arrays(macro):
    from topkima.behavioral.attention import TopkimaHardware, topkima_attention
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=(1, 200, N_EL)) for _ in range(3))
    assert array_quotas(200, 5, macro.array, macro.geometry[0]) == (3, 2)
    _, st = topkima_attention(q, k, v, top_k=5, mode="topkima", macro=TopkimaHardware(macro, 1),
                              rng=np.random.default_rng(4), return_stats=True)
    kept = st.kept.reshape(200, 200)
    # quotas 3 + 2 over keys 0-99 and 100-199 (the keys spread evenly over the two arrays)
    assert np.all(kept[:, :100].sum(axis=1) <= 3) and np.all(kept[:, 100:].sum(axis=1) <= 2)
    assert kept.sum(axis=1).mean() > 4


def test_the_accelerator_estimate_reads_the_keys_per_array():
    from topkima.behavioral import softmax_macro as sm
    cal = variant_array(n_columns=N_COLS, n_elements=N_EL)
    t = sm.timing_from_calibration(cal)
    assert t.n_cols == 128 and sm.n_arrays(384, t.n_cols) == 3
    assert sm.timing_from_calibration(load_calibration()).n_cols == 256
