"""The in-column threshold's sensitivity to every sense-amplifier device (not only the three pairs).

Why: :mod:`topkima.circuits.comparator_column` measured the threshold's in-column sensitivity to
the first device of the three offset-dominant mirror pairs (``mip``, ``mlp``, ``mnp``); every
other device of the StrongARM (clock inverter, tail switch, the four reset switches, the output
buffers) entered the model only through the ideal-source linear offset model. In the column the
latch is reset and kicked once per ramp cycle, after j − 1 "not fired" decisions, so devices that
barely move the ideal-source offset (the reset switches set the internal nodes' starting charge)
may move the in-column threshold more.

What is simulated: the same full-column bisection as the in-column threshold
(:func:`~topkima.circuits.comparator_column.measure_column_threshold`, the base pattern deciding in
cycle :data:`~topkima.circuits.comparator_column.BASE_CYCLE`), with one device at a time shifted by
±:data:`N_SIGMA` of its Pelgrom σ: the first device of each pair that moves the ideal-source
offset by more than 10 µV per σ (:data:`DEVICES`), and the mirror device of the largest
(:data:`MIRROR_CHECK`) to test that a
mirror device acts with the opposite sign in the column as it does on ideal sources. The nominal
base run is the in-column section's own (same bench, pattern and cycle).
"""
from __future__ import annotations

from topkima.circuits import comparator_column as cc
from topkima.circuits.jobs import Job

BLOCK = "comparator_column_devices"
#: Devices measured here: those whose ideal-source offset contribution exceeds 10 µV per σ at the
#: base run's common mode (artefact comparator.offset.linear_model: reset switches mrlp/mrln ≈ 50 µV,
#: output buffer mb1pn/mb1nn ≈ 30 µV, reset switches mrxp/mrxn ≈ 16 µV), and one mirror device
#: (MIRROR_CHECK). The others (clock inverter, tail, the rest of the buffers: ≤ 7 µV per σ) keep their
#: ideal-source sensitivity: each bisection takes ~10 column transients (minutes on a shared core).
DEVICES = ("mrlp", "mrln", "mb1pn", "mrxp")
#: The mirror device measured as well: the reset switch pair has the largest new sensitivity on
#: ideal sources (≈ 50 µV per σ at CM 0.3 V, artefact comparator.offset.linear_model)
MIRROR_CHECK = "mrln"
N_SIGMA = cc.N_SIGMA


def cases(design=None) -> list[tuple[str, dict, dict]]:
    """(label, local shifts, where) of the measured instances: each of :data:`DEVICES` at ±N_SIGMA·σ
    (its Pelgrom σ in ``design``, None: the 65 nm preset), all in the base pattern's cycle. The bisection's first bracket is centred on the nominal threshold: these
    devices move it by less than its half-width (0.4 mV) at 2 σ."""
    from topkima.circuits.comparator import DEVICE_BY_NAME, device_sigma_vth_v
    from topkima.circuits.design import default_design
    base = {"n_units": cc.BASE_N_UNITS, "cycle": cc.BASE_CYCLE}
    out = []
    for dev in DEVICES:
        dvt = round(N_SIGMA * device_sigma_vth_v(DEVICE_BY_NAME[dev], design or default_design()), 6)
        out += [(f"{dev}{s}", {dev: sign * dvt}, dict(base)) for s, sign in (("+", 1), ("-", -1))]
    return out


def plan(settings) -> list[Job]:
    """One job per instance of :func:`cases`, measured by the in-column threshold's bisection."""
    return cc.threshold_jobs(BLOCK, settings, cases(settings.design))
