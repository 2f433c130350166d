"""Local threshold mismatch (Pelgrom) drawn in numpy from an explicit generator.

σ(ΔVth) = A_VT / √(W·L)  (M. Pelgrom et al., IEEE JSSC 24(5):1433, 1989).
A_VT (a design's ``technology.a_vt_*``) = 3.5 mV·µm for both NMOS and PMOS in the 65 nm preset: a representative 65 nm bulk value, inside
the 2.5–4.5 mV·µm range published for 65 nm-class processes (e.g. K. Kuhn et al.,
IEEE T-ED 58(8):2197, 2011). PTM cards carry no mismatch data; the value is a
configurable project choice, recorded in the artefact's provenance.

Draws are written into netlists as per-device ``delvto`` (reproducible: ngspice's
own ``agauss`` is not, see TOOLCHAIN.md).
"""
from __future__ import annotations

import numpy as np

from topkima.circuits.design import reference_design

#: The 65 nm preset's coefficients (circuits/designs/topkima-65nm.toml); a design passes its own as ``a_vt_v_m``.
A_VT_N_V_M = reference_design().technology.a_vt_n_v_m  #: NMOS Pelgrom coefficient, V·m (3.5 mV·µm)
A_VT_P_V_M = reference_design().technology.a_vt_p_v_m  #: PMOS Pelgrom coefficient, V·m (3.5 mV·µm)


def a_vt_of(design, kind: str) -> float:
    """A design's Pelgrom coefficient (V·m) for ``kind`` 'n' or 'p'."""
    return {"n": design.technology.a_vt_n_v_m, "p": design.technology.a_vt_p_v_m}[kind]


def sigma_vth_v(kind: str, w_m: float, l_m: float, a_vt_v_m: float | None = None) -> float:
    """Pelgrom σ of a device's threshold (V) for ``kind`` 'n' or 'p'; ``a_vt_v_m`` None: the 65 nm preset's."""
    a_vt = a_vt_v_m if a_vt_v_m is not None else {"n": A_VT_N_V_M, "p": A_VT_P_V_M}[kind]
    return a_vt / np.sqrt(w_m * l_m)


def draw_dvth_v(rng: np.random.Generator, kind: str, w_m: float, l_m: float, size,
                a_vt_v_m: float | None = None) -> np.ndarray:
    """Independent threshold shifts (V), zero mean, Pelgrom σ."""
    return rng.normal(0.0, sigma_vth_v(kind, w_m, l_m, a_vt_v_m), size=size)
