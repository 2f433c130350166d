"""Accelerator configurations: the named presets beside this model (``presets/*.toml``) or a
TOML file, read into an :class:`AcceleratorConfig` whose every field carries its source.

A file may start from a preset with ``base = "NAME"`` and override single fields. Every value
needs a ``<name>_source`` saying where the number comes from; nothing is silently defaulted
(but ``sram_av.sparse_a``). The Topkima macro's timing and per-event energies come from the
calibration artefact (:func:`macro_params`), not from the file.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path

from topkima.behavioral import softmax_macro as sm
from topkima.behavioral.accelerator.model import (AcceleratorConfig, QKMacroParams, RramParams, SramAVParams,
                                                  SystemParams)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the field and what to do."""


SECTIONS = {"system": SystemParams, "rram": RramParams, "sram_av": SramAVParams}
MACRO_FIELDS = {"t_pwm_reading": str, "t_arb": str, "t_wr_s": float, "t_nl_s": float, "t_clk_sort_s": float,
                "include_calibration_clock": bool, "k": int, "e_nl_value_j": float, "e_nl_row_j": float,
                "input_activity": float}
SCALING_FIELDS = {"t_shift_s": float, "t_mul_s": float}
TOP_KEYS = {"base", "description", *SECTIONS, "macro", "scaling"}


def preset_names() -> list[str]:
    """The presets shipped beside this model (``presets/*.toml``), by name."""
    folder = resources.files(__package__).joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None


def _load_raw(name_or_path: str, seen: tuple = ()) -> dict:
    """The merged raw tables of a preset name or a TOML file (``base`` resolved)."""
    path = Path(name_or_path)
    if name_or_path in preset_names():
        where = f"preset '{name_or_path}'"
        text = resources.files(__package__).joinpath("presets", f"{name_or_path}.toml").read_text(encoding="utf-8")
    elif path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist; give a TOML file or one of the presets "
                              f"{', '.join(preset_names())}")
        where = str(path)
        text = path.read_text(encoding="utf-8")
    else:
        raise ConfigError(f"unknown preset {name_or_path!r}; choose one of {', '.join(preset_names())} "
                          "or give a .toml file")
    raw = _read_toml(text, where)
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))}; allowed: "
                          f"{', '.join(sorted(TOP_KEYS))}")
    base = raw.pop("base", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(f"{where}: 'base' must be a preset name")
        if base in seen:
            raise ConfigError(f"{where}: 'base' chain loops through {base!r}")
        merged = _load_raw(base, seen + (name_or_path,))
        for section, table in raw.items():
            if isinstance(table, dict) and isinstance(merged.get(section), dict):
                merged[section] = {**merged[section], **table}
            else:
                merged[section] = table
        raw = merged
    raw.setdefault("_where", where)
    return raw


def _field_types(section: str) -> dict:
    if section in SECTIONS:
        return {f.name: f.type for f in fields(SECTIONS[section])}
    return MACRO_FIELDS if section == "macro" else SCALING_FIELDS


def _typed(section: str, name: str, value, kind) -> object:
    label = f"{section}.{name}"
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind) if isinstance(kind, str) else kind
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"field '{label}' must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"field '{label}' must be a non-empty string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"field '{label}' must be a number, got {value!r}")
    if value <= 0:
        raise ConfigError(f"field '{label}' must be positive, got {value!r}; sizes, times and energies are > 0")
    if kind is int:
        if float(value) != int(value):
            raise ConfigError(f"field '{label}' must be an integer, got {value!r}")
        return int(value)
    return float(value)


def load_config(name_or_path: str = "paper", calibration=None) -> tuple[AcceleratorConfig, dict]:
    """The configuration and its provenance {section.field: source}; raises :class:`ConfigError`."""
    raw = _load_raw(name_or_path)
    where = raw.pop("_where")
    description = raw.pop("description", "")
    values, sources = {}, {}
    for section in (*SECTIONS, "macro", "scaling"):
        table = raw.get(section)
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: section [{section}] is missing; add it or start from a preset with "
                              f"base = \"paper\"")
        types = _field_types(section)
        allowed = set(types) | {f"{n}_source" for n in types}
        unknown = set(table) - allowed
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(f'{section}.{u}' for u in sorted(unknown))}; "
                              f"[{section}] takes {', '.join(sorted(types))} (each with <name>_source)")
        values[section] = {}
        for name, kind in types.items():
            if name not in table:
                if section == "sram_av" and name == "sparse_a":
                    values[section][name] = True
                    sources[f"{section}.{name}"] = "default"
                    continue
                raise ConfigError(f"{where}: field '{section}.{name}' is missing; add it with its "
                                  f"'{name}_source', or set base = \"paper\"")
            src = table.get(f"{name}_source")
            if not isinstance(src, str) or not src.strip():
                raise ConfigError(f"{where}: field '{section}.{name}' has no source; add '{name}_source = \"...\"' "
                                  "saying where the number comes from")
            values[section][name] = _typed(section, name, table[name], kind)
            sources[f"{section}.{name}"] = src
    mac = values["macro"]
    if mac["t_pwm_reading"] not in sm.T_PWM_READINGS_S:
        raise ConfigError(f"field 'macro.t_pwm_reading' must be one of {', '.join(sm.T_PWM_READINGS_S)}, "
                          f"got {mac['t_pwm_reading']!r}")
    if mac["t_arb"] not in ("spice", "paper"):
        raise ConfigError(f"field 'macro.t_arb' must be 'spice' or 'paper', got {mac['t_arb']!r}")
    if mac["input_activity"] > 1:
        raise ConfigError("field 'macro.input_activity' must lie in (0, 1]")
    if calibration is None:
        from topkima.calibration import load_calibration
        calibration = load_calibration()
    try:
        system = SystemParams(**values["system"])
        rram = RramParams(**values["rram"])
        sram = SramAVParams(**values["sram_av"])
        macro = macro_params(calibration, mac)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    cfg = AcceleratorConfig(name=Path(name_or_path).stem, system=system, rram=rram, sram_av=sram, macro=macro,
                                sources=sources)
    return cfg, {"description": description, "where": where, "values": values, "sources": sources}


def macro_params(calibration, mac: dict, input_activity: float | None = None) -> QKMacroParams:
    """The Topkima macro's timing and energy from the artefact plus the config's macro table."""
    timing = sm.timing_from_calibration(calibration, t_pwm_reading=mac["t_pwm_reading"], t_wr_s=mac["t_wr_s"],
                                        t_nl_s=mac["t_nl_s"], t_clk_sort_s=mac["t_clk_sort_s"],
                                        include_calibration_clock=mac["include_calibration_clock"],
                                        t_arb=mac["t_arb"])
    energy, _ = sm.energy_from_calibration(calibration, input_activity=input_activity or mac["input_activity"],
                                           e_nl_value_j=mac["e_nl_value_j"], e_nl_row_j=mac["e_nl_row_j"])
    return QKMacroParams(timing=timing, energy=energy, k=mac["k"])
