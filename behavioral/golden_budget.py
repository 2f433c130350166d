"""Where the model's error comes from: the error-budget golden set (``topkima golden --set
error-budget``, tests/golden/error_budget_conversions.json).

Each group of that set is one column instance (one query, one key vector, one draw of every
device) converted in SPICE once per device group of :data:`~topkima.circuits.golden.ERROR_BUDGET_VARIANTS`,
with only that group's mismatch draw kept: ``none`` (every device nominal), ``cal`` (the 32
calibration replica cells), ``ramp`` (the 32 ramp replica cells), ``mac`` (the 192 × 4 MAC read
stacks) and ``sa`` (the sense amplifier's devices).

What decides a code is the comparator's input V_R − V_L at the 32 sense instants (against its
offset). For each column the model gets the same draws and input, and its V_R − V_L is compared
with SPICE's at every instant; the **static error** of a column is the mean of that difference
over the instants (the part that moves every decision alike). A device group's **added error**
is the static error of the column with its draw minus that of the same instance with none.
The set is a diagnosis: it is never used to choose or fit anything.
"""
from __future__ import annotations

import numpy as np

from topkima.behavioral.macro import TopkimaMacro


def column_static_errors_v(macro: TopkimaMacro, doc: dict) -> dict[str, np.ndarray]:
    """Per variant, the static V_R − V_L error (model − SPICE, V) of each group's column, in group order."""
    n_steps = macro.params.n_ramp_steps
    cycles = np.arange(1, n_steps + 1)[:, None]
    errors: dict[str, list[float]] = {}
    for group in doc["groups"]:
        cols = group["columns"]
        chip = macro.instance_from_draws([macro.tile_draws_from_columns([c["draws"] for c in cols])], noise=False)
        kl = np.array([c["keys"] for c in cols]).T
        keys = np.concatenate([kl, np.zeros((kl.shape[0], chip.n_cols - kl.shape[1]), dtype=kl.dtype)], axis=1)
        u_l, u_r = chip.mac_units(np.asarray(group["inputs"])[None, :], keys)
        leak = chip.leak_units_per_unit(keys).reshape(1, -1)
        shape = (n_steps, u_l.shape[1])
        v_l, v_r = chip.bitline_voltages(np.broadcast_to(u_l, shape), np.broadcast_to(u_r, shape), leak, cycles)
        for i, c in enumerate(cols):
            spice = np.asarray(c["v_rbl_r_at_sa_clk_v"]) - np.asarray(c["v_rbl_l_at_sa_clk_v"])
            errors.setdefault(c["variant"], []).append(float(np.mean(v_r[:, i] - v_l[:, i] - spice)))
    return {variant: np.array(e) for variant, e in errors.items()}


def error_budget(macro: TopkimaMacro, doc: dict) -> dict:
    """The budget (mV): the static error with every device nominal (mean, rms about it), and
    the rms and mean of the error each device group's mismatch adds; the LSB in mV beside it."""
    if doc.get("set") != "error-budget":
        raise ValueError(f"an error budget needs the error-budget golden set, got the {doc.get('set')!r} set")
    static = column_static_errors_v(macro, doc)
    none = static.pop("none")
    mv = 1e3
    return {"n_instances": int(none.size), "lsb_mv": mv * float(macro.params.lsb_v),
            "nominal_devices": {"mean_mv": mv * float(none.mean()), "rms_about_mean_mv": mv * float(none.std())},
            "added_by": {variant: {"rms_mv": mv * float(np.sqrt(np.mean((e - none) ** 2))),
                                   "mean_mv": mv * float(np.mean(e - none))} for variant, e in static.items()}}


def error_budget_lines(budget: dict) -> list[str]:
    """The budget as the lines ``topkima compare-golden --set error-budget`` prints."""
    nominal = budget["nominal_devices"]
    out = [f"error budget of the model's V_R − V_L at the sense instants (static part, model − SPICE), "
           f"{budget['n_instances']} column instances, LSB {budget['lsb_mv']:.2f} mV:",
           f"  every device nominal:       mean {nominal['mean_mv']:+.3f} mV, rms about it {nominal['rms_about_mean_mv']:.3f} mV",
           "  added by one device group's mismatch alone:"]
    names = {"cal": "calibration cells", "ramp": "ramp cells", "mac": "MAC read stacks", "sa": "sense amplifier"}
    for variant, e in budget["added_by"].items():
        out.append(f"    {names.get(variant, variant):<22s} rms {e['rms_mv']:.3f} mV, mean {e['mean_mv']:+.3f} mV")
    return out
