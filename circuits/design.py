"""One typed design configuration: technology, supplies, geometry, device sizes, timing and ADC knobs.

A :class:`Design` is what ``topkima calibrate --design FILE|PRESET`` characterises. It is read
from a TOML file (``tomllib``, stdlib): a preset shipped in ``topkima/circuits/designs/``
(``topkima-65nm``, the design of the committed artefact) or a user file. Every field is
declared below with its unit and the source of its value in the preset; the preset file
repeats the sources beside the numbers.

Validation (:func:`design_from_dict`) names the dotted field at fault and says what to do:
unknown keys, wrong types, non-positive or implausible values (a length of 480 given in metres
instead of 480e-9), a model-card file that does not exist, a device model the card does not
define, a corner the technology does not define. Nothing a user writes reaches a netlist as
text: numbers go through :func:`topkima.circuits.netlist.num`, names must be known identifiers
(ngspice ``.control`` blocks can run shell commands).

What a design can change in this version (:data:`CONFIGURABLE`): the whole technology (model
card, corner method and sections, device model names, logic-cell length and width scale,
Pelgrom coefficients, corner temperatures; :mod:`topkima.circuits.technology` renders the
shipped subcircuits for it), the supplies, the read-port, precharge, wordline-driver and
comparator sizes, the bitline wire parasitics, the timing (PWM unit, ramp clock, sense instant
and the conversion's timeline: every testbench reads it through :mod:`topkima.circuits.timing`,
checked by :func:`_check_consistency`) and the ADC knobs (calibration cells and pulse widths).
Of the geometry, the replica-row counts (``n_ramp_rows``: the ramp's steps, ``n_cal_rows``), the
array's width (``n_columns``: the arbiter tree, encoder and ramp wordline load) and key elements per
column (``n_elements``: the column's MAC rows), and the bitline wire may change
(:mod:`topkima.circuits.design_rules` says which values); the rest (pair scales, input and key
magnitudes) is recorded (so an artefact states the whole design) and validated, but the column's
key encoding and the behavioural kernels still hard-wire it: a design that changes it is refused
with a message naming where it is wired (:data:`FIXED_WHERE`).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

DEFAULT_DESIGN = "topkima-65nm"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]{0,63}")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class DesignError(ValueError):
    """A design file or preset is missing, malformed or out of range; names the field and the fix."""


# --------------------------------------------------------------------------- the dataclasses

@dataclass(frozen=True)
class CornerSpec:
    """One process corner of the technology."""

    dvth_n_v: float       #: NMOS |V_th| increase (V) added to every NMOS delvto (emulated corners)
    dvth_p_v: float       #: PMOS |V_th| increase (V); a PMOS's delvto gets its negative
    temperature_c: float  #: simulation temperature at this corner (°C)
    description: str      #: what the corner is, in words
    section: str | None = None  #: corner_method "sections": the card's ``.lib`` section of this corner (foundry corners)


@dataclass(frozen=True)
class Technology:
    """Transistor models and mismatch of the process."""

    name: str             #: the process, in words
    model_card: str       #: BSIM4 model-card file: shipped in topkima/netlists, or a path (relative to the design file)
    nmos: str             #: NMOS model name defined in the card
    pmos: str             #: PMOS model name defined in the card
    corner_method: str    #: "vth_shift": global |V_th| shifts on one card; "sections": the card's ``.lib`` sections
    a_vt_n_v_m: float     #: NMOS Pelgrom coefficient A_VT (V·m; 3.5 mV·µm = 3.5e-9 V·m)
    a_vt_p_v_m: float     #: PMOS Pelgrom coefficient A_VT (V·m)
    corners: Mapping[str, CornerSpec]  #: corner name → its definition
    #: drawn length of the logic cells' devices (digital.sp, ramp_timing.sp; m); None: the shipped 65 nm
    l_logic_m: float | None = None
    #: width factor of the logic cells against the shipped 65 nm cells; None: 1
    w_logic_scale: float | None = None
    #: model of the ramp wordline driver's final PMOS (on the array supply); None: ``pmos``
    pmos_wordline: str | None = None
    #: drawn length of that PMOS (m); None: ``l_logic_m``
    l_wordline_m: float | None = None


@dataclass(frozen=True)
class SupplyVoltages:
    """Supply and bias voltages of the macro (V)."""

    v_array_v: float      #: SRAM array and read-wordline supply
    v_precharge_v: float  #: read-bitline precharge level
    v_sa_v: float         #: sense-amplifier supply
    v_digital_v: float    #: counters, arbiter and encoder supply


@dataclass(frozen=True)
class Geometry:
    """One column of the array and the array's width."""

    n_columns: int        #: columns of the array (one sense amplifier each): a power of two, 16 … 1024 (design_rules)
    n_ramp_rows: int      #: replica rows making the ramp: one step each, so also the ramp steps (5-bit ADC: 32)
    n_cal_rows: int       #: calibration replica rows (set the ramp's starting level)
    n_elements: int       #: key elements per column (MAC rows = n_elements × len(pair_scales)): 1 … 256
    pair_scales: tuple[int, ...]  #: input pulse-width scale of each ternary cell pair of a key element
    q_max: int            #: largest |input| in PWM units (5-bit magnitude)
    k_max: int            #: largest |key level|
    r_wire_row_ohm: float  #: bitline wire resistance per row (Ω)
    c_wire_row_f: float    #: bitline wire capacitance per row (F)

    @property
    def n_mac_rows(self) -> int:
        return self.n_elements * len(self.pair_scales)

    @property
    def n_rows(self) -> int:
        return self.n_ramp_rows + self.n_cal_rows + self.n_mac_rows


@dataclass(frozen=True)
class DeviceSize:
    """Drawn width and length of one transistor (m)."""

    w_m: float
    l_m: float


@dataclass(frozen=True)
class DriverSize:
    """Final stage of a wordline driver (m): NMOS and PMOS widths (length: the process minimum)."""

    wn_m: float
    wp_m: float


@dataclass(frozen=True)
class Sizes:
    """Device sizes."""

    read_port: DeviceSize        #: both devices of a read-port stack (access and storage)
    precharge: DeviceSize        #: bitline precharge PMOS
    wordline_driver: DriverSize  #: ramp-wordline driver's final inverter
    comparator: Mapping[str, DeviceSize]  #: StrongARM devices by instance name (netlists/strongarm.sp)


@dataclass(frozen=True)
class Timing:
    """Clocks and the timeline of one conversion (s); the one definition every testbench reads."""

    t_unit_s: float            #: PWM unit (period of the PWM clock)
    t_clk_ramp_s: float        #: ramp ADC clock: the calibration clock and each ramp step
    t_sa_clk_in_cycle_s: float  #: sense instant: SA evaluate edge, from the start of each ramp clock
    t_pulse_delay_s: float     #: ramp/calibration wordline pulse start after its clock edge
    t_wl_edge_s: float         #: wordline rise/fall time (0–100 %)
    t_pre_end_s: float         #: precharge released at this time
    t_pre_edge_s: float        #: precharge gate edge
    t_mac_start_s: float       #: PWM pulses start
    t_sa_edge_s: float         #: sense-amplifier clock edge
    t_sa_eval_s: float         #: sense-amplifier evaluate phase
    t_sa_read_s: float         #: latched decision read this long after the SA clock edge
    max_ramp_units: int        #: longest ramp pulse (PWM units): it must end before the SA evaluates

    @property
    def max_cal_units(self) -> int:
        """Longest calibration pulse (PWM units): it must fit one ramp clock after the pulse delay."""
        return int((self.t_clk_ramp_s - self.t_pulse_delay_s) / self.t_unit_s + 1e-9)


@dataclass(frozen=True)
class AdcKnobs:
    """The ramp ADC's range settings used by the calibration (conversions, ramp and energy runs)."""

    n_cal: int                 #: enabled calibration cells
    t_cal_units: int           #: calibration pulse (PWM units)
    t_ramp_units: int          #: ramp-cell pulse per step (PWM units)


@dataclass(frozen=True)
class Design:
    """A whole design: what one calibration characterises."""

    name: str
    description: str
    technology: Technology
    supplies: SupplyVoltages
    geometry: Geometry
    sizes: Sizes
    timing: Timing
    adc: AdcKnobs
    source: str = ""           #: where it was read from (not part of the design's hash)

    def to_dict(self) -> dict:
        """The design as plain JSON-able data (what the artefact records and the job cache hashes)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "source"}

    def sha256(self) -> str:
        """SHA-256 of the design's canonical JSON (sorted keys, no whitespace)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def model_card_path(self) -> Path:
        base = Path(self.source).parent if self.source.endswith(".toml") else None
        return resolve_model_card(self.technology.model_card, base)

    def values(self, paths) -> dict:
        """``{dotted path: value}`` of the given fields (``sizes.read_port.l_m``)."""
        flat = _flatten(self.to_dict())
        return {p: flat[p] for p in paths}

    def corner(self, name: str) -> CornerSpec:
        try:
            return self.technology.corners[name]
        except KeyError:
            raise DesignError(f"design {self.name!r}: unknown corner {name!r}; the technology "
                              f"{self.technology.name!r} defines {', '.join(self.technology.corners)}") from None

    def changed(self, dotted: str, value) -> "Design":
        """A copy with one field replaced (``read_port.l_m`` is ``sizes.read_port.l_m``), validated."""
        data = self.to_dict()
        path = _expand(dotted)
        node = data
        for part in path[:-1]:
            if not isinstance(node, dict) or part not in node:
                raise DesignError(f"unknown design field {dotted!r}")
            node = node[part]
        if not isinstance(node, dict) or path[-1] not in node:
            raise DesignError(f"unknown design field {dotted!r}")
        node[path[-1]] = value
        data["name"] = self.name
        return design_from_dict(data, source=f"{self.source or self.name} with {dotted}={value!r}")


def _plain(value):
    """Plain JSON-able data; an optional field left at None is left out (so adding an optional field
    keeps the hash of every design that does not use it)."""
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if getattr(value, f.name) is not None}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


#: Short names accepted by :meth:`Design.changed` and ``topkima sweep --vary``.
SHORT_PREFIXES = {"read_port": "sizes.read_port", "precharge": "sizes.precharge",
                  "wordline_driver": "sizes.wordline_driver"}


def _expand(dotted: str) -> list[str]:
    head, _, rest = dotted.partition(".")
    if head in SHORT_PREFIXES:
        dotted = SHORT_PREFIXES[head] + ("." + rest if rest else "")
    return dotted.split(".")


# --------------------------------------------------------------------------- validation

#: Plausible ranges (SI units) by field, the hint a value outside gets, and the unit people often write
#: instead (its prefix and scale): a value that fits once scaled is named as that mistake.
_LENGTH = (10e-9, 100e-6, "m", "lengths are in metres: 480 nm is 480e-9", ("nm", 1e-9))
_TIME = (1e-12, 1e-6, "s", "times are in seconds: 4 ns is 4e-9", ("ns", 1e-9))
_VOLT = (0.05, 5.0, "V", "voltages are in volts: 500 mV is 0.5", ("mV", 1e-3))
_AVT = (0.1e-9, 50e-9, "V·m", "A_VT is in V·m: 3.5 mV·µm is 3.5e-9", ("mV·µm", 1e-9))
_DVTH = (-0.5, 0.5, "V", "threshold shifts are in volts: 60 mV is 0.06", ("mV", 1e-3))
_TEMP = (-55.0, 175.0, "°C", "temperatures are in °C", None)
_RES = (1e-3, 1e4, "Ω", "the per-row wire resistance is in ohms", None)
_SCALE = (0.1, 20.0, "", "a width factor against the shipped 65 nm logic cells", None)
_CAP = (1e-18, 1e-12, "F", "the per-row wire capacitance is in farads: 0.15 fF is 0.15e-15", ("fF", 1e-15))


def _fail(where: str, message: str):
    raise DesignError(f"{where}: {message}")


def _table(data, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        _fail(where, f"must be a table with keys {', '.join(keys)}, got {type(data).__name__}")
    unknown = [k for k in data if k not in keys and k not in optional]
    if unknown:
        _fail(f"{where}.{unknown[0]}" if where else unknown[0],
              f"unknown field; {where or 'the top level'} takes {', '.join(keys + optional)}")
    missing = [k for k in keys if k not in data]
    if missing:
        _fail(f"{where}.{missing[0]}" if where else missing[0], "missing")
    return data


def _real(value, where: str, bounds) -> float:
    lo, hi, unit, hint, usual = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, f"must be a number in {unit}, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        _fail(where, f"must be finite, got {value!r}")
    if not lo <= value <= hi:
        if usual is not None and lo <= value * usual[1] <= hi:
            hint = f"a unit mistake? {value:g} {usual[0]} is {value * usual[1]:g} {unit}"
        _fail(where, f"{value!r} {unit} is outside the plausible range {lo:g} … {hi:g} {unit} ({hint})")
    return value


def _count(value, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, f"must be an integer, got {type(value).__name__} {value!r}")
    if not lo <= value <= hi:
        _fail(where, f"must lie in {lo} … {hi}, got {value}")
    return value


def _text(value, where: str, pattern: re.Pattern | None = None) -> str:
    if not isinstance(value, str) or not value:
        _fail(where, f"must be a non-empty string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        _fail(where, f"{value!r} is not a known identifier (letters, digits, '_', starting with a letter)")
    return value


def resolve_model_card(model_card: str, base: Path | None) -> Path:
    """The model-card file: the generated sky130 card (:data:`topkima.circuits.pdk.CARD_NAME`), a file
    shipped in topkima/netlists, else a path (relative to ``base``)."""
    from topkima.circuits import pdk
    if model_card == pdk.CARD_NAME:
        try:
            return pdk.generated_card()
        except pdk.PdkError as exc:
            raise DesignError(f"technology.model_card: {exc}") from None
    shipped = Path(str(resources.files("topkima.netlists"))) / model_card
    if "/" not in model_card and shipped.is_file():
        return shipped
    path = Path(model_card)
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise DesignError(f"technology.model_card: file {model_card!r} not found (looked in "
                          f"{shipped.parent} and at {path}); give a file shipped in topkima/netlists or a path")
    if '"' in str(path) or "\n" in str(path):
        raise DesignError(f"technology.model_card: path {str(path)!r} cannot be written into a netlist")
    return path


#: statements that make ngspice run commands (control blocks, shell escapes): never in a model card
_CONTROL_STATEMENTS = frozenset({".control", ".endc", ".exec", ".shell", "shell"})


@lru_cache(maxsize=16)
def _card_scan(path: str, size: int, mtime_ns: int) -> tuple[frozenset[str], frozenset[str]]:
    """Lower-case model names and ``.lib`` section names of a card and of the files it includes
    (``.include`` and ``.lib FILE SECTION``; cached per file version). A binned model ``name.N`` also
    defines ``name`` (ngspice picks the bin). A file holding an ngspice control statement, or
    included more than 4 files deep, is refused (DesignError)."""
    names, sections, seen = set(), set(), set()

    def scan(file: Path, depth: int) -> None:
        if file in seen or not file.is_file():
            return
        if depth > 4:
            raise DesignError(f"technology.model_card: {file} is included more than 4 files deep; flatten the card")
        seen.add(file)
        with open(file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[0].lower() in _CONTROL_STATEMENTS:
                    raise DesignError(f"technology.model_card: {file} holds the ngspice control statement "
                                      f"{parts[0]!r}, which can run commands; a model card holds models only")
                if len(parts) < 2:
                    continue
                head = parts[0].lower()
                if head == ".model":
                    names.add(parts[1].lower())
                    names.add(re.sub(r"\.\d+$", "", parts[1].lower()))
                elif head == ".lib" and len(parts) == 2:
                    sections.add(parts[1].lower())
                elif head in (".include", ".inc") or (head == ".lib" and len(parts) >= 3):   # .lib FILE SECTION
                    scan(file.parent / parts[1].strip("'\""), depth + 1)

    scan(Path(path), 0)
    return frozenset(names), frozenset(sections)


def card_models(path: Path) -> frozenset[str]:
    """Lower-case names of the models a card defines (with the files it includes)."""
    st = path.stat()
    return _card_scan(str(path), st.st_size, st.st_mtime_ns)[0]


def card_sections(path: Path) -> frozenset[str]:
    """Lower-case names of a card's ``.lib`` sections (foundry corners: tt, ss, ff, ...)."""
    st = path.stat()
    return _card_scan(str(path), st.st_size, st.st_mtime_ns)[1]


def _technology(data, base: Path | None) -> Technology:
    w = "technology"
    t = _table(data, w, ("name", "model_card", "nmos", "pmos", "corner_method", "a_vt_n_v_m", "a_vt_p_v_m", "corners"),
               ("l_logic_m", "w_logic_scale", "pmos_wordline", "l_wordline_m"))
    method = t["corner_method"]
    if method not in ("vth_shift", "sections"):
        _fail(f"{w}.corner_method", f"unknown method {method!r}; choose 'vth_shift' (global threshold shifts on one "
                                    "card) or 'sections' (the card's .lib corner sections)")
    card = resolve_model_card(_text(t["model_card"], f"{w}.model_card"), base)
    models, sections = card_models(card), card_sections(card)
    for kind in ("nmos", "pmos", "pmos_wordline"):
        if kind not in t:
            continue
        name = _text(t[kind], f"{w}.{kind}", _IDENT)
        if name.lower() not in models:
            _fail(f"{w}.{kind}", f"device model {name!r} is not defined in the model card {card.name} "
                                 f"(it defines {', '.join(sorted(models)) or 'no .model statement'})")
    corners = t["corners"]
    if not isinstance(corners, dict) or not corners:
        _fail(f"{w}.corners", "must be a table of corners (tt, ss, ...)")
    if "tt" not in corners:
        _fail(f"{w}.corners.tt", "missing: every technology needs its typical corner 'tt'")
    specs = {}
    for name, c in corners.items():
        cw = f"{w}.corners.{name}"
        if not re.fullmatch(r"[a-z]{2,3}", name):
            _fail(cw, "a corner name is two or three lower-case letters (tt, ss, ff, sf, fs)")
        c = _table(c, cw, ("dvth_n_v", "dvth_p_v", "temperature_c", "description"), ("section",))
        section = None
        if method == "sections":
            if "section" not in c:
                _fail(f"{cw}.section", f"missing: with corner_method 'sections' each corner names its .lib section "
                                       f"of {card.name} (it has {', '.join(sorted(sections)) or 'none'})")
            section = _text(c["section"], f"{cw}.section", _IDENT)
            if section.lower() not in sections:
                _fail(f"{cw}.section", f"the model card {card.name} has no .lib section {section!r} "
                                       f"(it has {', '.join(sorted(sections)) or 'none'})")
        elif "section" in c:
            _fail(f"{cw}.section", "only with corner_method 'sections'")
        specs[name] = CornerSpec(_real(c["dvth_n_v"], f"{cw}.dvth_n_v", _DVTH), _real(c["dvth_p_v"], f"{cw}.dvth_p_v", _DVTH),
                                 _real(c["temperature_c"], f"{cw}.temperature_c", _TEMP),
                                 _text(c["description"], f"{cw}.description"), section)
    return Technology(_text(t["name"], f"{w}.name"), t["model_card"], t["nmos"], t["pmos"], t["corner_method"],
                      _real(t["a_vt_n_v_m"], f"{w}.a_vt_n_v_m", _AVT), _real(t["a_vt_p_v_m"], f"{w}.a_vt_p_v_m", _AVT),
                      MappingProxyType(specs),
                      _real(t["l_logic_m"], f"{w}.l_logic_m", _LENGTH) if "l_logic_m" in t else None,
                      _real(t["w_logic_scale"], f"{w}.w_logic_scale", _SCALE) if "w_logic_scale" in t else None,
                      t.get("pmos_wordline"),
                      _real(t["l_wordline_m"], f"{w}.l_wordline_m", _LENGTH) if "l_wordline_m" in t else None)


def _device(data, where: str) -> DeviceSize:
    d = _table(data, where, ("w_m", "l_m"))
    return DeviceSize(_real(d["w_m"], f"{where}.w_m", _LENGTH), _real(d["l_m"], f"{where}.l_m", _LENGTH))


def design_from_dict(data: Any, source: str = "design") -> Design:
    """Validate plain data (a parsed TOML file) into a :class:`Design`; :class:`DesignError` names the field."""
    base = Path(source).parent if source and Path(source).suffix == ".toml" else None
    try:
        return _design_from_dict(data, base, source)
    except DesignError as exc:
        raise DesignError(f"design {source}: {exc}") from None


def _design_from_dict(data, base: Path | None, source: str) -> Design:
    top = _table(data, "", ("name", "technology", "supplies", "geometry", "sizes", "timing", "adc"), ("description",))
    name = _text(top["name"], "name", _NAME)
    tech = _technology(top["technology"], base)
    s = _table(top["supplies"], "supplies", ("v_array_v", "v_precharge_v", "v_sa_v", "v_digital_v"))
    supplies = SupplyVoltages(**{k: _real(s[k], f"supplies.{k}", _VOLT) for k in s})
    g = _table(top["geometry"], "geometry", ("n_columns", "n_ramp_rows", "n_cal_rows", "n_elements", "pair_scales",
                                             "q_max", "k_max", "r_wire_row_ohm", "c_wire_row_f"))
    scales = g["pair_scales"]
    if not isinstance(scales, list) or not scales or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1
                                                                for x in scales):
        _fail("geometry.pair_scales", f"must be a list of positive integers, got {scales!r}")
    geometry = Geometry(_count(g["n_columns"], "geometry.n_columns", 1, 4096),
                        _count(g["n_ramp_rows"], "geometry.n_ramp_rows", 1, 256),
                        _count(g["n_cal_rows"], "geometry.n_cal_rows", 0, 256),
                        _count(g["n_elements"], "geometry.n_elements", 1, 1024), tuple(scales),
                        _count(g["q_max"], "geometry.q_max", 1, 1023), _count(g["k_max"], "geometry.k_max", 1, 1023),
                        _real(g["r_wire_row_ohm"], "geometry.r_wire_row_ohm", _RES),
                        _real(g["c_wire_row_f"], "geometry.c_wire_row_f", _CAP))
    z = _table(top["sizes"], "sizes", ("read_port", "precharge", "wordline_driver", "comparator"))
    drv = _table(z["wordline_driver"], "sizes.wordline_driver", ("wn_m", "wp_m"))
    comp = z["comparator"]
    if not isinstance(comp, dict) or not comp:
        _fail("sizes.comparator", "must be a table of devices {name = {w_m = …, l_m = …}}")
    sizes = Sizes(_device(z["read_port"], "sizes.read_port"), _device(z["precharge"], "sizes.precharge"),
                  DriverSize(_real(drv["wn_m"], "sizes.wordline_driver.wn_m", _LENGTH),
                             _real(drv["wp_m"], "sizes.wordline_driver.wp_m", _LENGTH)),
                  MappingProxyType({_text(k, "sizes.comparator", _IDENT): _device(v, f"sizes.comparator.{k}")
                                    for k, v in comp.items()}))
    tnames = tuple(f.name for f in fields(Timing))
    t = _table(top["timing"], "timing", tnames)
    timing = Timing(**{k: _real(t[k], f"timing.{k}", _TIME) for k in tnames if k != "max_ramp_units"},
                    max_ramp_units=_count(t["max_ramp_units"], "timing.max_ramp_units", 1, 64))
    a = _table(top["adc"], "adc", ("n_cal", "t_cal_units", "t_ramp_units"))
    adc = AdcKnobs(_count(a["n_cal"], "adc.n_cal", 0, geometry.n_cal_rows),
                   _count(a["t_cal_units"], "adc.t_cal_units", 0, 64),
                   _count(a["t_ramp_units"], "adc.t_ramp_units", 1, timing.max_ramp_units))
    design = Design(name, str(top.get("description", "")), tech, supplies, geometry, sizes, timing, adc, source)
    _check_fixed(design)
    _check_consistency(design)
    return design


def _check_consistency(d: Design) -> None:
    from topkima.circuits.design_rules import check_consistency
    check_consistency(d, _fail)


#: Fields a design may change in this version (the others are fixed at the 65 nm preset's values).
CONFIGURABLE = ("supplies.*", "technology.*", "sizes.read_port.*", "sizes.comparator.*",
                "sizes.precharge.*", "sizes.wordline_driver.*", "geometry.r_wire_row_ohm", "geometry.c_wire_row_f",
                "geometry.n_ramp_rows", "geometry.n_cal_rows", "geometry.n_columns", "geometry.n_elements", "timing.*",
                "adc.*", "name", "description")

#: Where each fixed group is still hard-wired (the message of a refused change).
FIXED_WHERE = {
    "geometry": "a key element is three ternary cell pairs with pulse scales 1, 2, 4 holding a sign-magnitude "
                "digit each (circuits/column.py key_digits: 15 key levels), the PWM inputs are 5-bit "
                "(circuits/timing.py's PWM phase, the golden sets' vectors) and the behavioural kernels "
                "(behavioral/macro/mac.py, bitline.py) read pair scales and levels as the 65 nm preset's",
}


def _configurable(dotted: str) -> bool:
    return any(dotted == p or (p.endswith(".*") and dotted.startswith(p[:-1])) for p in CONFIGURABLE)


def _flatten(data, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_fixed(design: Design) -> None:
    if design.source == _REFERENCE_SOURCE:
        return
    ref_devices, devices = set(reference_design().sizes.comparator), set(design.sizes.comparator)
    if devices != ref_devices:
        odd = sorted(devices ^ ref_devices)[0]
        _fail(f"sizes.comparator.{odd}", f"{'unknown' if odd in devices else 'missing'} StrongARM device; the latch "
                                         f"(netlists/strongarm.sp) has exactly {', '.join(sorted(ref_devices))}")
    ref = _flatten(reference_design().to_dict())
    mine = _flatten(design.to_dict())
    for key in sorted(set(ref) | set(mine)):
        if _configurable(key) or ref.get(key) == mine.get(key):
            continue
        where = next(v for k, v in FIXED_WHERE.items() if key.startswith(k))
        _fail(key, f"{mine.get(key, 'absent')!r} differs from the {DEFAULT_DESIGN} value {ref.get(key, 'absent')!r}; "
                   f"this version cannot change it yet ({where}). Fields a design can change: {', '.join(CONFIGURABLE)}")


# --------------------------------------------------------------------------- loading

def designs_dir() -> Path:
    return Path(str(resources.files("topkima.circuits").joinpath("designs")))


def preset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in designs_dir().glob("*.toml")))


_REFERENCE_SOURCE = "<reference>"


@lru_cache(maxsize=1)
def reference_design() -> Design:
    """The shipped 65 nm preset, whose values the fixed fields must keep."""
    path = designs_dir() / f"{DEFAULT_DESIGN}.toml"
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    return _design_from_dict(data, path.parent, _REFERENCE_SOURCE)


def load_design(name_or_path: str | Path = DEFAULT_DESIGN) -> Design:
    """A preset by name (``topkima-65nm``) or a TOML design file by path; validated."""
    text = str(name_or_path)
    path = Path(text)
    if not text.endswith(".toml") and "/" not in text:
        if text not in preset_names():
            raise DesignError(f"unknown design preset {text!r}; presets: {', '.join(preset_names())} "
                              "(or give a path to a .toml design file)")
        path = designs_dir() / f"{text}.toml"
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise DesignError(f"design file {path} does not exist; give a preset ({', '.join(preset_names())}) "
                          "or a path to a .toml design file") from None
    except tomllib.TOMLDecodeError as exc:
        raise DesignError(f"design file {path} is not valid TOML: {exc}") from None
    return design_from_dict(data, source=str(path))


@lru_cache(maxsize=None)
def default_design() -> Design:
    """The ``topkima-65nm`` preset (the design of the committed artefact)."""
    return load_design(DEFAULT_DESIGN)


def design_from_json(data: Mapping | None) -> Design:
    """A whole design passed as JSON (:meth:`Design.to_dict`); None: the 65 nm preset."""
    return default_design() if data is None else design_from_dict(dict(data), source="job argument")


#: The design values the column and ramp testbenches read (besides the supplies and ADC knobs, which
#: their jobs take as arguments of their own, and the fixed fields): what a column job receives.
COLUMN_FIELDS = ("sizes.read_port.w_m", "sizes.read_port.l_m", "sizes.precharge.w_m", "sizes.precharge.l_m",
                 "geometry.r_wire_row_ohm", "geometry.c_wire_row_f", "geometry.n_ramp_rows", "geometry.n_cal_rows",
                 "geometry.n_elements")


@lru_cache(maxsize=64)
def _design_with(items: tuple) -> Design:
    design = default_design()
    for path, value in items:
        design = design.changed(path, value)
    return design


def design_with(fields_: Mapping | None) -> Design:
    """The 65 nm preset with the given dotted fields changed (a job's ``design_fields``), validated.

    Exact for everything the column testbench reads: the fields a design may change outside
    :data:`COLUMN_FIELDS` reach that job through its other arguments, and the others are fixed.
    """
    return default_design() if not fields_ else _design_with(tuple(sorted(dict(fields_).items())))
