"""One compiled call for elements under different ADC windows (``topk_under_windows``, what
attention uses for all heads at once) equals one ``ChipInstance.topk`` call per element, under
that element's window, with its noise key and batch index."""
import numpy as np
import pytest

from topkima.behavioral import AdcRange, TopkimaMacro
from topkima.behavioral.macro.chip import topk_under_windows
from topkima.behavioral.macro.noise import noise_key
from topkima.calibration import load_calibration


@pytest.fixture(scope="module")
def chips():
    base = TopkimaMacro(load_calibration())
    first = base.instance(np.random.default_rng(0))
    windows = (AdcRange(20, 3, 2), AdcRange(8, 6, 1))
    return [first] + [base.with_adc_range(w).instance_like(first) for w in windows]


@pytest.mark.parametrize("n_keys, quotas", [(37, None), (300, None), (300, (3, 2))])
def test_each_element_converts_as_its_own_call_under_its_window(chips, n_keys, quotas):
    g = np.random.default_rng(1)
    n_batch, n_rows, d, k = 5, 6, 64, 5
    q = g.integers(-31, 32, size=(n_batch, n_rows, d))
    kl = g.integers(-7, 8, size=(n_batch, d, n_keys))
    mask = g.random((n_batch, n_rows, n_keys)) < 0.7
    mask[1, :, n_keys // 2:] = False    # a ragged element
    mask[2, 3:] = False                 # rows that see nothing
    window_of = np.array([0, 1, 2, 1, 0])
    seeds = [10 + b for b in range(n_batch)]
    keys = np.array([noise_key(np.random.default_rng(s)) for s in seeds], dtype=np.uint64)
    position = np.array([0, 2, 1, 0, 3])        # the element's place in its own call
    merged = topk_under_windows(chips, window_of, keys, position, q, kl, k=k, key_mask=mask, quotas=quotas)
    for b in range(n_batch):
        # the same element at `position[b]` of a call of its own (zeros before it), whose noise key
        # is drawn from the same seed
        m = position[b] + 1
        qq, kk, mm = np.zeros((m, n_rows, d), int), np.zeros((m, d, n_keys), int), np.zeros((m, n_rows, n_keys), bool)
        qq[-1], kk[-1], mm[-1] = q[b], kl[b], mask[b]
        alone = chips[window_of[b]].topk(qq, kk, k=k, quotas=quotas, rng=np.random.default_rng(seeds[b]), key_mask=mm)
        for field in ("indices", "codes", "cycles", "energy_j", "latency_s", "firing_cycle"):
            assert np.array_equal(getattr(merged, field)[b], getattr(alone, field)[-1]), (b, field)


def test_windows_of_one_chip_only_and_shapes_checked(chips):
    base = TopkimaMacro(load_calibration())
    other = base.instance(np.random.default_rng(5))
    q, kl = np.zeros((2, 3, 64), int), np.zeros((2, 64, 10), int)
    with pytest.raises(ValueError, match="one chip under several windows"):
        topk_under_windows([chips[0], other], [0, 1], [1, 1], [0, 1], q, kl, k=2)
    with pytest.raises(ValueError, match="noise_keys and noise_batch"):
        topk_under_windows(chips, [0, 1], [1], [0, 1], q, kl, k=2)
    with pytest.raises(ValueError, match="window_of must index"):
        topk_under_windows(chips, [0, 3], [1, 1], [0, 1], q, kl, k=2)


def test_the_driver_rejects_a_noise_sigma_or_scale_count_it_cannot_take(chips, monkeypatch):
    """The comparators take Z_MAX·σ as a distance below the threshold, so ``convert`` refuses σ < 0;
    the noise gate squares σ, so σ whose square is not a normal float (and NaN) too; the code tables
    take 1 to 3 pulse scales matching the pulse table (the chip's own checks come first on the public
    path; this guards direct callers)."""
    from topkima.behavioral.macro import chip as chip_module
    seen = []
    real = chip_module.convert
    monkeypatch.setattr(chip_module, "convert", lambda *a, **kw: seen.append((a, kw)) or real(*a, **kw))
    rng = np.random.default_rng(4)
    chips[0].topk(rng.integers(-31, 32, (4, 64)), rng.integers(-7, 8, (64, 16)), k=5, rng=rng)
    args, kwargs = seen[0]
    for bad in (-1e-3, 1e-170, 1e170, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="noise σ must be 0 or a number in"):
            real(*args, **{**kwargs, "sigma_noise_v": bad})
    real(*args, **{**kwargs, "sigma_noise_v": 0.0})        # no noise: allowed
    for n_scales in (0, 2, 4):
        with pytest.raises(ValueError, match="pulse scales|terms per width"):
            real(*args, **{**kwargs, "n_scales": n_scales})
