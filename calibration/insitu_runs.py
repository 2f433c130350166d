"""`topkima add-insitu-runs`: more nominal end-to-end conversions for the in-situ correction, taken from
a fitting golden set with every device nominal (``topkima golden --set fit-nominal``) and added to an
artefact as ``column.insitu_extra`` (with its own provenance).

Why: the in-situ correction (:func:`topkima.behavioral.macro.bitline.fit_insitu_correction`: per
bitline a constant, a drift in the cycle, a first-cycle step and gains in both bitlines' drops, and
the decision energy's line in the common mode) is fitted to the artefact's 12 nominal column +
sense-amplifier conversions (``column.insitu_conversions``). Each of those runs' error is mostly
static, so 12 runs fix the correction's constants only to about 0.05 mV, the size of the errors that
decide the in-range codes. The fit-nominal set holds 48 more conversions of the same kind (nominal
devices, the real latch, the design's window), planned over the ADC window's codes from a seed stream
of their own; the model fits the correction to all of them. Only a set whose every device is nominal
and whose window is the in-situ runs' is accepted: the correction is the nominal column's.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from topkima.calibration.artefact import load_calibration, validate, write_atomic

#: the golden set whose conversions may be added: fitting data with every device nominal
SOURCE_SET = "fit-nominal"
#: what each added run keeps of a golden conversion (the in-situ runs' fields)
RUN_FIELDS = ("keys", "inputs", "p_units", "n_units", "firing_cycle", "v_rbl_l_at_sa_clk_v",
              "v_rbl_r_at_sa_clk_v", "e_sa_32_decisions_j", "e_bitline_j")


def _all_nominal(draws: dict) -> bool:
    flat = [draws["mac_dvt_v"], draws["cal_dvt_v"], draws["ramp_dvt_v"], list(draws["sa_dvt_v"].values())]

    def zero(x):
        return all(zero(y) for y in x) if isinstance(x, list) else x == 0.0
    return all(zero(x) for x in flat)


def insitu_extra_section(doc: dict, source: str | Path, insitu: dict) -> dict:
    """The ``column.insitu_extra`` field from a loaded golden document ``doc`` (read from ``source``),
    checked against the artefact's in-situ runs ``insitu`` (their window)."""
    if doc.get("set") != SOURCE_SET:
        raise ValueError(f"{source}: is the {doc.get('set')!r} golden set; add-insitu-runs takes the {SOURCE_SET!r} "
                         f"set only (every device nominal; make it with topkima golden --set {SOURCE_SET})")
    window = tuple(doc["range"][k] for k in ("n_cal", "t_cal_units", "t_ramp_units"))
    own = (insitu["n_cal"], insitu["t_cal_units"], insitu["t_ramp_units"])
    if window != own:
        raise ValueError(f"{source}: its ADC window (n_cal, t_cal_units, t_ramp_units) {window} is not the in-situ "
                         f"runs' {own}")
    runs = []
    for group in doc["groups"]:
        for c in group["columns"]:
            if not _all_nominal(c["draws"]):
                raise ValueError(f"{source}: conversion {c['label']} has device mismatch; the in-situ correction is "
                                 "fitted to nominal devices only")
            runs.append({"label": c["label"], **{k: (group["inputs"] if k == "inputs" else c[k]) for k in RUN_FIELDS}})
    return {"source_set": SOURCE_SET, "source_file": str(source), "n_cal": own[0], "t_cal_units": own[1],
            "t_ramp_units": own[2], "runs": runs,
            "note": "nominal column + sense-amplifier conversions of the fit-nominal golden set (fitting data, no "
                    "held-out set), fitted by the in-situ correction together with column.insitu_conversions"}


def add_insitu_runs(artefact: str | Path | None, golden_file: str | Path, out: str | Path | None,
                    command: str = "") -> dict:
    """Add the fit-nominal conversions of ``golden_file`` to ``artefact`` (None: the committed one) as
    ``column.insitu_extra`` and write it to ``out`` (None: in place); returns the section."""
    start = time.monotonic()
    cal = load_calibration(artefact)
    golden_file = Path(golden_file)
    doc = json.loads(golden_file.read_text())
    if doc.get("format_version") != 1 or "groups" not in doc:
        raise ValueError(f"{golden_file}: not a golden-conversion file of format 1 (topkima golden writes them)")
    corner = cal.data["corner"]
    supplies = cal.data["provenance"].get("supplies")
    if doc.get("corner") != corner or (supplies is not None and doc.get("supplies") != supplies):
        raise ValueError(f"{golden_file}: its conversions were made at corner {doc.get('corner')!r} with supplies "
                         f"{doc.get('supplies')}; the artefact is at {corner!r} with {supplies}: add runs made with "
                         "the artefact's own corner and supplies")
    section = insitu_extra_section(doc, golden_file, cal.column["insitu_conversions"])
    section["provenance"] = {"command": command, "source_sha256": hashlib.sha256(golden_file.read_bytes()).hexdigest(),
                             "source_provenance": doc.get("provenance", {}),
                             "wall_time_s": round(time.monotonic() - start, 1)}
    data = dict(cal.data)
    data["column"] = dict(data["column"], insitu_extra=section)
    validate(data, "artefact with column.insitu_extra")
    write_atomic(out if out is not None else cal.path, data)
    return section
