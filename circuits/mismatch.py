"""Local threshold mismatch (Pelgrom) drawn in numpy from an explicit generator.

σ(ΔVth) = A_VT / √(W·L)  (M. Pelgrom et al., IEEE JSSC 24(5):1433, 1989).
A_VT = 3.5 mV·µm for both NMOS and PMOS: a representative 65 nm bulk value, inside
the 2.5–4.5 mV·µm range published for 65 nm-class processes (e.g. K. Kuhn et al.,
IEEE T-ED 58(8):2197, 2011). PTM cards carry no mismatch data; the value is a
configurable project choice, recorded in the artefact's provenance.

Draws are written into netlists as per-device ``delvto`` (reproducible: ngspice's
own ``agauss`` is not, see TOOLCHAIN.md).
"""
from __future__ import annotations

import numpy as np

A_VT_N_V_M = 3.5e-3 * 1e-6  #: NMOS Pelgrom coefficient, V·m (3.5 mV·µm)
A_VT_P_V_M = 3.5e-3 * 1e-6  #: PMOS Pelgrom coefficient, V·m (3.5 mV·µm)


def sigma_vth_v(kind: str, w_m: float, l_m: float) -> float:
    """Pelgrom σ of a device's threshold (V) for ``kind`` 'n' or 'p'."""
    a_vt = {"n": A_VT_N_V_M, "p": A_VT_P_V_M}[kind]
    return a_vt / np.sqrt(w_m * l_m)


def draw_dvth_v(rng: np.random.Generator, kind: str, w_m: float, l_m: float, size) -> np.ndarray:
    """Independent threshold shifts (V), zero mean, Pelgrom σ."""
    return rng.normal(0.0, sigma_vth_v(kind, w_m, l_m), size=size)
