"""The technology as the netlists see it: model-card lines per corner, device model names, the
drawn lengths and widths of the shipped cells, and the comparator's sizes.

The shipped SPICE text (``netlists/*.sp``) is written for the PTM 65 nm cards (``ptm65_nmos`` /
``ptm65_pmos``, 65 nm logic lengths, the 65 nm preset's StrongARM sizes). A design on another
technology (``circuits/designs/sky130.toml``) gets a *rendered* copy of each file: model names
replaced, the logic cells' lengths set to the design's ``technology.l_logic_m`` and their widths
scaled by ``technology.w_logic_scale``, the latch's sizes taken from ``sizes.comparator``. The
copies are written once per content (named by their SHA-256) into the model cache folder
(:func:`topkima.circuits.pdk.cache_dir`). For the 65 nm technology nothing is rendered: the
testbenches include the shipped files, so its netlists stay byte-identical (a test checks it).

Corners: ``corner_method = "vth_shift"`` adds the corner's global |V_th| shifts to every delvto
on one card; ``"sections"`` selects the card's ``.lib`` section of the corner (foundry corners)
and adds no shift. A section whose body is only ``.include`` lines is written as those includes:
ngspice 39 reads a large card through ``.lib FILE SECTION`` 10-25x slower than the same file
through ``.include`` (measured: sky130 inverter 2.9 s against 0.12 s).

Which technology a job's netlists use is the job's ``technology`` (:func:`payload`, part of its
cache key): :func:`topkima.circuits.jobs.run_job` makes it the *active* one (:func:`using`) for
the job's duration, the way ``decimal.localcontext`` scopes a precision. Outside a job the active
technology is the 65 nm preset's. Only numbers and identifiers validated by
:mod:`topkima.circuits.design` reach the rendered text.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from topkima.circuits import netlist as nl
from topkima.circuits.corners import Corner

REFERENCE_NMOS, REFERENCE_PMOS = "ptm65_nmos", "ptm65_pmos"
#: drawn length of every device of the shipped logic cells (netlists/digital.sp, ramp_timing.sp)
REFERENCE_L_LOGIC_M = 65e-9
#: diffusion length each side of a contacted source/drain (netlist.mos(); 2.5 L_min at 65 nm)
L_DIFF_M = 0.15e-6


@dataclass(frozen=True)
class Technology:
    """What a netlist needs of a design's technology (see the module docstring)."""

    card: str                      #: absolute path of the model card
    nmos: str
    pmos: str
    corner_method: str             #: "vth_shift" or "sections"
    sections: Mapping[str, str]    #: corner → .lib section ("sections" only)
    l_logic_m: float               #: drawn length of the logic cells' devices
    w_logic_scale: float           #: width factor of the logic cells against the shipped cells
    comparator: Mapping[str, tuple[float, float]]  #: latch device → (W, L) in m
    corners: Mapping[str, Corner]  #: corner name → global shifts, temperature, description
    pmos_wordline: str = REFERENCE_PMOS   #: the ramp wordline driver's final PMOS (ramp_timing.sp rtdrv)
    l_wordline_m: float = REFERENCE_L_LOGIC_M  #: its drawn length
    #: the calibration run's corner: the card section of benches that take only shifts (the comparator's)
    run_corner: str = "tt"

    @property
    def is_reference(self) -> bool:
        return replace(self, run_corner="tt") == reference()

    def to_json(self) -> dict:
        return {"card": self.card, "nmos": self.nmos, "pmos": self.pmos, "corner_method": self.corner_method,
                "sections": dict(self.sections), "l_logic_m": self.l_logic_m, "w_logic_scale": self.w_logic_scale,
                "comparator": {k: list(v) for k, v in self.comparator.items()},
                "corners": {k: [c.dvth_n_v, c.dvth_p_v, c.temperature_c, c.description] for k, c in self.corners.items()},
                "pmos_wordline": self.pmos_wordline, "l_wordline_m": self.l_wordline_m, "run_corner": self.run_corner}


def of_design(design, run_corner: str = "tt") -> Technology:
    """The netlist technology of a validated :class:`~topkima.circuits.design.Design` at a run's corner."""
    t = design.technology
    return Technology(str(design.model_card_path()), t.nmos, t.pmos, t.corner_method,
                      MappingProxyType({n: c.section for n, c in t.corners.items() if c.section}),
                      t.l_logic_m if t.l_logic_m is not None else REFERENCE_L_LOGIC_M,
                      t.w_logic_scale if t.w_logic_scale is not None else 1.0,
                      MappingProxyType({k: (v.w_m, v.l_m) for k, v in design.sizes.comparator.items()}),
                      MappingProxyType({n: Corner(n, c.dvth_n_v, c.dvth_p_v, c.temperature_c, c.description)
                                        for n, c in t.corners.items()}),
                      t.pmos_wordline or t.pmos,
                      t.l_wordline_m or (t.l_logic_m if t.l_logic_m is not None else REFERENCE_L_LOGIC_M), run_corner)


@lru_cache(maxsize=1)
def reference() -> Technology:
    from topkima.circuits.design import reference_design
    return of_design(reference_design())


def payload(design, run_corner: str = "tt") -> dict | None:
    """A job's ``technology``: None for the 65 nm technology (its jobs keep their keys), else JSON."""
    tech = of_design(design, run_corner)
    return None if tech.is_reference else tech.to_json()


def from_json(data: Mapping) -> Technology:
    """A job's technology back from :func:`payload`, validated: names must be identifiers, the card
    an existing file, numbers finite and positive."""
    card = Path(str(data["card"]))
    if not card.is_file() or '"' in str(card) or "\n" in str(card):
        raise ValueError(f"technology model card {card} does not exist or cannot be written into a netlist")
    sections = {nl.ident(k, "corner"): nl.ident(v, "section") for k, v in dict(data["sections"]).items()}
    comparator = {nl.ident(k, "device"): (_positive(v[0], k), _positive(v[1], k)) for k, v in dict(data["comparator"]).items()}
    corners = {}
    for k, (dn, dp, temp, text) in dict(data["corners"]).items():
        corners[nl.ident(k, "corner")] = Corner(k, float(nl.num(dn, "dvth_n")), float(nl.num(dp, "dvth_p")),
                                                float(nl.num(temp, "temperature")), str(text))
    method = data["corner_method"]
    if method not in ("vth_shift", "sections"):
        raise ValueError(f"unknown corner method {method!r}")
    return Technology(str(card), nl.ident(data["nmos"], "nmos model"), nl.ident(data["pmos"], "pmos model"), method,
                      MappingProxyType(sections), _positive(data["l_logic_m"], "l_logic_m"),
                      _positive(data["w_logic_scale"], "w_logic_scale"), MappingProxyType(comparator),
                      MappingProxyType(corners), nl.ident(data["pmos_wordline"], "pmos model"),
                      _positive(data["l_wordline_m"], "l_wordline_m"), nl.ident(data.get("run_corner", "tt"), "corner"))


def _positive(value, what: str) -> float:
    nl.num(value, what)
    if float(value) <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return float(value)


_ACTIVE: contextvars.ContextVar[Technology | None] = contextvars.ContextVar("topkima_technology", default=None)


def active() -> Technology:
    """The technology the netlists being written use (the 65 nm preset's outside :func:`using`)."""
    tech = _ACTIVE.get()
    return tech if tech is not None else reference()


@contextlib.contextmanager
def using(tech: Technology | Mapping | None):
    """Make ``tech`` (a :class:`Technology`, a job's JSON payload, or None: the 65 nm one) active."""
    if tech is not None and not isinstance(tech, Technology):
        tech = from_json(tech)
    token = _ACTIVE.set(tech)
    try:
        yield active()
    finally:
        _ACTIVE.reset(token)


# --------------------------------------------------------------------------- netlist text

def nmos() -> str:
    return active().nmos


def pmos() -> str:
    return active().pmos


def model_lines(corner_name: str | None = None) -> list[str]:
    """The model-card lines of a netlist at ``corner_name`` (None: the run's corner): ``.include`` of
    the card ("vth_shift") or the card's section of the corner ("sections", resolved to its includes
    when it is only that)."""
    tech = active()
    corner_name = corner_name or tech.run_corner
    if tech.is_reference:
        return [nl.include(nl.MODEL_CARD)]
    if tech.corner_method == "vth_shift":
        return [_include_path(Path(tech.card))]
    try:
        section = tech.sections[corner_name]
    except KeyError:
        raise ValueError(f"corner {corner_name!r} has no .lib section in this technology "
                         f"(it has {', '.join(tech.sections)})") from None
    files = section_includes(tech.card, section)
    if files is None:
        return [f'.lib "{_quoted(Path(tech.card))}" {nl.ident(section, "section")}']
    return [_include_path(f) for f in files]


def _quoted(path: Path) -> str:
    text = str(path)
    if '"' in text or "\n" in text:
        raise ValueError(f"path {text!r} cannot be written into a netlist")
    return text


def _include_path(path: Path) -> str:
    return f'.include "{_quoted(path)}"'


@lru_cache(maxsize=32)
def section_includes(card: str, section: str) -> tuple[Path, ...] | None:
    """The files a ``.lib`` section of ``card`` includes, when its body is only ``.include`` lines
    (comments and blank lines aside); None otherwise (then the section is used as it is)."""
    path = Path(card)
    inside, files = False, []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("*"):
            continue
        head = parts[0].lower()
        if not inside:
            inside = head == ".lib" and len(parts) == 2 and parts[1].lower() == section.lower()
            continue
        if head == ".endl":
            return tuple(files)
        if head in (".include", ".inc") and len(parts) == 2:
            files.append(path.parent / parts[1].strip("'\""))
        else:
            return None
    return None


@lru_cache(maxsize=8)
def card_sha256(card: str) -> str:
    """SHA-256 of a model card and of the files its ``.lib`` sections include (a job's cache key)."""
    path = Path(card)
    digest = hashlib.sha256(path.read_bytes())
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].lower() in (".include", ".inc"):
            digest.update(hashlib.sha256((path.parent / parts[1].strip("'\"")).read_bytes()).digest())
    return digest.hexdigest()


def subckt_include(filename: str) -> str:
    """The ``.include`` of a shipped subcircuit file, rendered for the active technology."""
    tech = active()
    if tech.is_reference:
        return nl.include(filename)
    text = render(nl.netlist_path(filename).read_text(), filename, tech)
    from topkima.circuits.pdk import cache_dir
    from topkima.circuits.files import write_text_atomic
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    target = cache_dir() / "rendered" / f"{Path(filename).stem}-{digest}.sp"
    if not target.is_file() or target.read_text() != text:
        write_text_atomic(target, text)
    return _include_path(target)


_DEVICE_LINE = re.compile(r"^(m\w+)(\s+\S+\s+\S+\s+\S+\s+\S+\s+)(ptm65_nmos|ptm65_pmos)\b(.*)$", re.I)


def render(text: str, filename: str, tech: Technology) -> str:
    """The shipped SPICE ``text`` of ``filename`` for ``tech``: model names; the latch's sizes
    (strongarm.sp); the logic cells' length and width scale (digital.sp, ramp_timing.sp)."""
    out = [f"* rendered by topkima.circuits.technology from {filename} for {tech.nmos} / {tech.pmos}: the device "
           "lines are this technology's, the comments describe the 65 nm original"]
    for line in text.splitlines():
        m = _DEVICE_LINE.match(line)
        if m:
            name, nodes, model, rest = m.groups()
            model = tech.nmos if model.lower() == REFERENCE_NMOS else tech.pmos
            if filename == "ramp_timing.sp" and name == "mp":   # rtdrv's final PMOS, on the array supply
                model = tech.pmos_wordline
                rest = re.sub(r"\bl=65n\b", f"l={nl.num(tech.l_wordline_m)}", rest)
            if filename == "strongarm.sp":
                rest = _sized(rest, *tech.comparator[name.lower()])
            elif filename in ("digital.sp", "ramp_timing.sp"):
                # the wordline driver's final stage (ramp_timing.sp) takes the design's own widths
                rest = _logic(rest, tech, scale_widths=filename == "digital.sp")
            line = f"{name}{nodes}{model}{rest}"
        out.append(line)
    return "\n".join(out) + "\n"


def _sized(rest: str, w_m: float, l_m: float) -> str:
    area, perim = w_m * L_DIFF_M, 2 * (w_m + L_DIFF_M)
    geometry = (f" w={nl.num(w_m)} l={nl.num(l_m)} ad={nl.num(area)} as={nl.num(area)} "
                f"pd={nl.num(perim)} ps={nl.num(perim)}")
    kept = [p for p in rest.split() if p.split("=")[0].lower() not in ("w", "l", "ad", "as", "pd", "ps")]
    return geometry + "".join(" " + p for p in kept)


def _logic(rest: str, tech: Technology, scale_widths: bool) -> str:
    rest = re.sub(r"\bl=65n\b", f"l={nl.num(tech.l_logic_m)}", rest)
    if scale_widths:   # every logic cell's width is a {wn}/{wp} expression (netlists/digital.sp)
        scale = nl.num(tech.w_logic_scale)
        rest = re.sub(r"\{([^}]*)\}", lambda g: "{" + re.sub(r"\b(w[np])\b", rf"({scale}*\1)", g.group(1)) + "}", rest)
    return rest


def logic_size(w_m: float, l_m: float = REFERENCE_L_LOGIC_M) -> tuple[float, float]:
    """A logic device of the shipped 65 nm cells (W, L = 65 nm) in the active technology."""
    tech = active()
    if tech.is_reference:
        return w_m, l_m
    return w_m * tech.w_logic_scale, tech.l_logic_m


def comparator_size(name: str) -> tuple[float, float]:
    """(W, L) of a latch device in the active technology."""
    return active().comparator[name]
