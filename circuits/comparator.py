"""The comparator: the per-column PMOS-input StrongARM latch (``netlists/strongarm.sp``), with
common-mode kickback neutralisation for its floating bitline inputs.

This module is the latch itself: its device table (kept in step with the netlist), its
instance line, its corner shifts and its Pelgrom draws. What is measured on it, each in
its own module (every function used as a job takes JSON-able keyword arguments and
returns a JSON-able dict):

* :mod:`.comparator_bench`: offset (bisection, Monte Carlo over the draws), delay against
  overdrive and energy per decision, on ideal input sources;
* :mod:`.comparator_noise`: input-referred noise, a linear time-varying estimate from
  SPICE quantities (ngspice has no transient noise for BSIM4);
* :mod:`.comparator_insitu`: the decision threshold on floating bitline-like inputs, the
  kick on them and the input capacitance;
* :mod:`.comparator_fit`: the calibration plan and the artefact's ``comparator`` section
  (the offset's linear model is fitted there).

Testbench text is assembled only from :func:`~topkima.circuits.netlist.num`,
:func:`~topkima.circuits.netlist.ident` and :func:`~topkima.circuits.netlist.include`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from topkima.circuits.corners import Corner
from topkima.circuits.design import reference_design
from topkima.circuits.mismatch import draw_dvth_v, sigma_vth_v
from topkima.circuits.netlist import ident, num

BLOCK = "comparator"
NETLISTS = ("strongarm.sp",)
SUBCKT = "sa_strongarm"
PINS = ("inp", "inn", "clk", "outp", "outn", "vdd", "vss")


@dataclass(frozen=True)
class Device:
    """One transistor of ``sa_strongarm`` (keep in sync with ``netlists/strongarm.sp``)."""

    name: str    #: instance name inside the subcircuit; its parameter is ``dvt_<name>``
    kind: str    #: 'n' or 'p'
    w_m: float   #: drawn width (m)
    l_m: float   #: drawn length (m)
    role: str    #: what it does

    @property
    def param(self) -> str:
        return f"dvt_{self.name}"

    @property
    def model(self) -> str:
        """Its model name in the active technology (:mod:`topkima.circuits.technology`)."""
        from topkima.circuits import technology
        return technology.nmos() if self.kind == "n" else technology.pmos()


#: Every transistor of the latch, in the order of the subcircuit's parameter list: (name, kind, role).
#: Their sizes are the design preset's ``[sizes.comparator]`` table (circuits/designs/topkima-65nm.toml),
#: which netlists/strongarm.sp holds too (a test keeps the two in step).
_ROLES: tuple[tuple[str, str, str], ...] = (
    ("mckp", "p", "clock inverter"),
    ("mckn", "n", "clock inverter"),
    ("mtail", "p", "tail switch"),
    ("mip", "p", "input (gate inp)"),
    ("min", "p", "input (gate inn)"),
    ("mlp", "p", "latch PMOS"),
    ("mln", "p", "latch PMOS"),
    ("mnp", "n", "latch NMOS"),
    ("mnn", "n", "latch NMOS"),
    ("mrxp", "n", "reset switch"),
    ("mrxn", "n", "reset switch"),
    ("mrlp", "n", "reset switch"),
    ("mrln", "n", "reset switch"),
    ("mb1pp", "p", "output buffer (skewed)"),
    ("mb1pn", "n", "output buffer (skewed)"),
    ("mb2pp", "p", "output buffer"),
    ("mb2pn", "n", "output buffer"),
    ("mb1np", "p", "output buffer (skewed)"),
    ("mb1nn", "n", "output buffer (skewed)"),
    ("mb2np", "p", "output buffer"),
    ("mb2nn", "n", "output buffer"),
)
_SIZES = reference_design().sizes.comparator
DEVICES: tuple[Device, ...] = tuple(Device(n, k, _SIZES[n].w_m, _SIZES[n].l_m, r) for n, k, r in _ROLES)
DEVICE_BY_NAME: dict[str, Device] = {d.name: d for d in DEVICES}
#: The input pair. V_os = k·(dvt_mip - dvt_min) with k ≈ 1.17 measured here, not 1: BSIM4
#: (mobmod = 0) lowers the vertical-field mobility degradation along with |Vth|, so a
#: delvto moves the drain current a little more than the same shift on the gate.
INPUT_PAIR = ("mip", "min")


# --- validation helpers ----------------------------------------------------------------
def _real(value, what: str) -> float:
    num(value, what)  # raises a clear ValueError for strings, bools, NaN, inf
    return float(value)


def checked_in_range(value, what: str, lo: float, hi: float) -> float:
    value = _real(value, what)
    if not lo <= value <= hi:
        raise ValueError(f"{what} must lie in [{lo:g}, {hi:g}], got {value!r}")
    return value


def checked_delvto(delvto_v: Mapping[str, float] | None) -> dict[str, float]:
    """Validated ``{device: delvto (V)}``; unknown devices and non-numbers are refused."""
    if delvto_v is None:
        return {}
    if not isinstance(delvto_v, Mapping):
        raise ValueError(f"delvto_v must be a mapping device -> volts, got {type(delvto_v).__name__}")
    out = {}
    for name, value in delvto_v.items():
        if name not in DEVICE_BY_NAME:
            raise ValueError(f"unknown comparator device {name!r}; known: {', '.join(DEVICE_BY_NAME)}")
        out[name] = checked_in_range(value, f"delvto of {name}", -0.5, 0.5)
    return out


def _node(name: str) -> str:
    return "0" if name == "0" else ident(name, "node")


# --- public helpers for other blocks ----------------------------------------------------
def subckt_instance(name: str, inp: str, inn: str, clk: str, outp: str, outn: str, vdd: str, vss: str,
                    delvto: Mapping[str, float] | None = None) -> str:
    """The instance line of one ``sa_strongarm`` (validated).

    ``name`` must start with 'x' (a subcircuit instance). Node names are identifiers
    or ``"0"``; ``delvto`` maps device names of :data:`DEVICES` to threshold shifts (V)
    (mismatch + corner; omitted devices get 0). The testbench must also contain
    ``include(MODEL_CARD)`` and ``include("strongarm.sp")``.
    """
    ident(name, "instance name")
    if name[0] not in "xX":
        raise ValueError(f"subcircuit instance name must start with 'x', got {name!r}")
    nodes = " ".join(_node(n) for n in (inp, inn, clk, outp, outn, vdd, vss))
    shifts = checked_delvto(delvto)
    params = " ".join(f"{DEVICE_BY_NAME[d.name].param}={num(shifts[d.name], 'delvto of ' + d.name)}"
                      for d in DEVICES if d.name in shifts)
    return f"{name} {nodes} {SUBCKT}" + (f" {params}" if params else "")


def corner_delvto_v(corner: Corner) -> dict[str, float]:
    """The corner's global threshold shift as ``{device: delvto (V)}`` for every device."""
    return {d.name: corner.delvto_n() if d.kind == "n" else corner.delvto_p() for d in DEVICES}


def draw_mismatch_v(rng: np.random.Generator, n: int, devices: Sequence[str] | None = None,
                    design=None) -> dict[str, np.ndarray]:
    """Pelgrom threshold draws (V), ``n`` per device, devices in :data:`DEVICES` order.

    ``devices`` restricts the draw (others get zeros and consume no random numbers); ``design``
    gives the Pelgrom coefficients (None: the 65 nm preset's).
    """
    from topkima.circuits.mismatch import a_vt_of
    names = [d.name for d in DEVICES] if devices is None else list(devices)
    for name in names:
        if name not in DEVICE_BY_NAME:
            raise ValueError(f"unknown comparator device {name!r}")
    out = {}
    for d in DEVICES:
        a_vt = a_vt_of(design, d.kind) if design is not None else None
        w_m, l_m = _size(d, design)
        out[d.name] = draw_dvth_v(rng, d.kind, w_m, l_m, n, a_vt) if d.name in names else np.zeros(n)
    return out


def _size(d: Device, design) -> tuple[float, float]:
    """(W, L) of a latch device in ``design`` (None: the 65 nm preset's, :data:`DEVICES`)."""
    if design is None:
        return d.w_m, d.l_m
    size = design.sizes.comparator[d.name]
    return size.w_m, size.l_m


def device_sigma_vth_v(d: Device, design=None) -> float:
    """Pelgrom σ of one latch device's threshold (V) with the design's A_VT (None: the 65 nm preset's)."""
    from topkima.circuits.mismatch import a_vt_of
    return float(sigma_vth_v(d.kind, *_size(d, design), a_vt_of(design, d.kind) if design is not None else None))


def pelgrom_input_pair_sigma_v(design=None) -> float:
    """Expected offset σ (V) from the input pair alone: √2·σ_Vth(input device)."""
    return math.sqrt(2.0) * device_sigma_vth_v(DEVICE_BY_NAME["mip"], design)
