"""A per-column offset trim of the StrongARM latch, simulated: a binary-weighted capacitor DAC on the
latch's integration nodes, set once at power-up from the comparator's own decisions.

What is modelled [ours, the design of this module]: the PMOS input pair charges the integration
nodes ``xp`` / ``xn`` from ground when the clock rises, and the latch takes over when one of them has
risen far enough; extra capacitance on one node slows that side, which shifts the input-referred
offset (measured here: +5.4 mV per fF on ``xp`` at a 0.35 V common mode, +8.2 mV at 0.15 V,
+4.0 mV at 0.45 V). The trim is a sign-magnitude DAC: ``|code|`` unit capacitors of
:data:`C_TRIM_STEP_F` on ``xp`` (code > 0) or ``xn`` (code < 0), ``code`` in ±:data:`TRIM_CODE_MAX`
(5 magnitude bits and a sign: ±3.1 fF, about ±17 mV at 0.35 V, 3σ of the full calibration's offset
Monte Carlo). A digitally switched capacitive load on a dynamic comparator's internal nodes is a
common kind of foreground offset calibration in SAR and flash ADCs [ours: no one published design is
copied here]; like the trim of Miyahara et al., IEEE A-SSCC 2008 (studies/circuit_whatif.py), it is
set from the comparator's own decisions at zero input.

The power-up procedure (:func:`trim_sample`): both inputs at the trim common mode
:data:`VCM_TRIM_V` (the offset bench's primary one), a successive approximation over the code that
finds the smallest code at which the comparator no longer decides ``outp`` at zero differential input:
6 decisions, as the hardware would make them. What is left is the **residual**: within one trim step
above zero at the trim common mode (a systematic half step, common to every column, plus a spread),
and at other common modes whatever the trim and the offset's own dependence on the common mode
do not share (the trim's weight per fF doubles from 0.45 V to 0.15 V). The residual offset is then
bisected at every common mode of the offset bench, as the untrimmed offset is.

What is not modelled: the DAC switches (ideal: a switched-out capacitor is absent; real switches
leave junction and overlap capacitance, i.e. a fixed part of the trim), the unit capacitors'
mismatch (metal-finger capacitors of 0.1 fF match to a few per cent: a fraction of a step), and the
comparator's noise during the power-up decisions (0.31 mV rms, more than half a step, 0.27 mV: a
Monte Carlo of the 6 noisy decisions leaves about 0.33 mV rms instead of the noiseless 0.16; a real
trim averages a few decisions per bit). The latch netlist is the characterised
``netlists/strongarm.sp`` unchanged: the trim capacitors are top-level elements on its flattened
internal nodes ``xsa.xp`` / ``xsa.xn`` (ngspice names a subcircuit's internal nodes so; a test checks
that they move the offset by the amount above).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from topkima.circuits.comparator import checked_delvto, checked_in_range
from topkima.circuits.comparator_bench import (C_LOAD_F, OFFSET_BRACKET_V, OFFSET_TOL_V, OFFSET_VCM_V, VCM_V,
                                              bisect_flip, checked_conditions, checked_vcm, decides_outp)
from topkima.circuits.netlist import num

#: Unit capacitor of the trim DAC (F) [ours]: 0.54 mV of offset at 0.35 V, a quarter of the 2.2 mV LSB
C_TRIM_STEP_F = 0.1e-15
#: Largest |code| (5 magnitude bits) [ours]: ±3.1 fF, about ±17 mV at 0.35 V
TRIM_CODE_MAX = 31
#: Common mode the power-up trim is made at (V): the offset bench's primary one, the middle of the bitline range
VCM_TRIM_V = VCM_V


def trim_lines(code: int, c_step_f: float = C_TRIM_STEP_F) -> list[str]:
    """The trim DAC at ``code`` as element lines on the latch instance ``xsa`` (none at code 0)."""
    if isinstance(code, bool) or not isinstance(code, (int, np.integer)) or abs(code) > TRIM_CODE_MAX:
        raise ValueError(f"trim code must be an integer in ±{TRIM_CODE_MAX}, got {code!r}")
    if code == 0:
        return []
    node = "xsa.xp" if code > 0 else "xsa.xn"
    return [f"ctrim {node} 0 {num(abs(int(code)) * c_step_f, 'trim capacitance')}"]


def trim_code(decide_at_zero) -> tuple[int, int]:
    """The power-up successive approximation: the smallest code at which ``decide_at_zero(code)``
    (outp wins at zero differential input, i.e. the offset is below zero) is False, clipped to the DAC's
    range; and the number of decisions made. The offset rises with the code (capacitance on ``xp``)."""
    lo, hi, n = -TRIM_CODE_MAX, TRIM_CODE_MAX, 0   # answer in [lo, hi]: decide False at hi (or clipped)
    while lo < hi:
        mid = (lo + hi) // 2
        n += 1
        if decide_at_zero(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo, n


def trim_sample(delvto_v: dict, vcm_v: Sequence[float] = OFFSET_VCM_V, vdd_v: float = 1.0,
                temperature_c: float = 27.0, c_load_f: float = C_LOAD_F, c_step_f: float = C_TRIM_STEP_F,
                vcm_trim_v: float = VCM_TRIM_V, tol_v: float = OFFSET_TOL_V) -> dict:
    """Trim one comparator instance at power-up and bisect its residual offset at each common mode.

    Returns ``code`` (the DAC's setting), ``clipped`` (the offset lies beyond the DAC's range),
    ``vcm_v``, ``residual_offset_v`` (one per common mode: the ``V(inp) - V(inn)`` above which outp
    wins, trim applied), ``n_decisions`` (the power-up search) and ``n_transients`` (all of them).
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    shifts = checked_delvto(delvto_v)
    cms = [checked_vcm(v, vdd_v) for v in vcm_v]
    if not cms:
        raise ValueError("vcm_v must list at least one common mode (V)")
    vcm_trim_v = checked_vcm(vcm_trim_v, vdd_v)
    c_step_f = checked_in_range(c_step_f, "c_step_f", 1e-18, 1e-14)

    def decide(cm, vdiff, code):
        return decides_outp(cm, vdiff, shifts, vdd_v, temperature_c, c_load_f, extra=trim_lines(code, c_step_f))

    code, n_decisions = trim_code(lambda c: decide(vcm_trim_v, 0.0, c))
    clipped = abs(code) == TRIM_CODE_MAX and decide(vcm_trim_v, 0.0, code) == (code > 0)
    residual, runs = [], n_decisions + 1
    for cm in cms:
        vos, n = bisect_flip(lambda vd: decide(cm, vd, code), OFFSET_BRACKET_V, tol_v)
        residual.append(vos)
        runs += n
    return {"code": int(code), "clipped": bool(clipped), "vcm_v": cms, "residual_offset_v": residual,
            "n_decisions": n_decisions, "n_transients": runs}
