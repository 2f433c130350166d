"""Safe netlist assembly: numbers and known identifiers only, never raw user text.

ngspice netlists can carry ``.control`` blocks that run shell commands, so every
value a block module writes into a netlist goes through :func:`num` (a finite
float, written in exponent form) or :func:`ident` (a name matching a strict
pattern). File paths come only from the installed package (:func:`netlist_path`).
"""
from __future__ import annotations

import hashlib
import math
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

MODEL_CARD = "ptm65nm_bulk.lib"
NMOS = "ptm65_nmos"
PMOS = "ptm65_pmos"

_IDENT = re.compile(r"0|[A-Za-z][A-Za-z0-9_]{0,63}")


def num(value: float, what: str = "value") -> str:
    """A finite real number as SPICE text, or ValueError naming ``what``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return f"{value:.9g}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.9e}"


def ident(name: str, what: str = "identifier") -> str:
    """A SPICE node/device name (letters, digits, underscore; starts with a letter) or ground "0"."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a known identifier (letters, digits, '_', starting with a letter)")
    return name


def netlist_dir() -> Path:
    """Folder of the shipped SPICE text (model card and subcircuits)."""
    return Path(str(resources.files("topkima.netlists")))


def netlist_path(filename: str) -> Path:
    path = netlist_dir() / filename
    if not path.is_file():
        raise FileNotFoundError(f"shipped netlist {filename!r} is missing from {netlist_dir()}; reinstall topkima")
    return path


def include(filename: str) -> str:
    """An ``.include`` line for a shipped netlist file (quoted absolute path)."""
    path = str(netlist_path(filename))
    if '"' in path or "\n" in path:
        raise ValueError(f"installation path {path!r} cannot be written into a netlist")
    return f'.include "{path}"'


@lru_cache(maxsize=None)
def file_sha256(filename: str) -> str:
    return hashlib.sha256(netlist_path(filename).read_bytes()).hexdigest()


def mos(name: str, drain: str, gate: str, source: str, bulk: str, model: str, w_m: float, l_m: float,
        delvto_v: float = 0.0, m: int = 1) -> str:
    """One BSIM4 MOSFET line with drain/source diffusion geometry (for junction load).

    Diffusion length 2.5·L_min = 0.15 µm each side, the usual layout estimate for a
    65 nm contacted source/drain (so AD = AS = W·0.15 µm, PD = PS = 2(W + 0.15 µm)).
    """
    from topkima.circuits import technology
    if model not in (NMOS, PMOS, technology.nmos(), technology.pmos()):
        raise ValueError(f"unknown transistor model {model!r}")
    ldiff = 0.15e-6
    area, perim = w_m * ldiff, 2 * (w_m + ldiff)
    nodes = " ".join(ident(n, "node") for n in (drain, gate, source, bulk))
    line = (f"{ident(name, 'device')} {nodes} {model} w={num(w_m, 'W')} l={num(l_m, 'L')} "
            f"ad={num(area)} as={num(area)} pd={num(perim)} ps={num(perim)}")
    if delvto_v:
        line += f" delvto={num(delvto_v, 'delvto')}"
    if m != 1:
        line += f" m={int(m)}"
    return line
