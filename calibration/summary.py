"""A human-readable summary of a calibration artefact (what `topkima summary` prints), or of two
artefacts side by side (`topkima summary A B`)."""
from __future__ import annotations

#: Width of a summary line's label (the value starts at this column).
LABEL_WIDTH = 34


def _si(value, unit: str) -> str:
    if value is None:
        return "n/a"
    for scale, prefix in ((1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if abs(value) < scale * 1000:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def format_summary(art: dict) -> str:
    prov, col, ramp, comp, dig = (art.get(k, {}) for k in ("provenance", "column", "ramp", "comparator", "digital"))
    curve = col.get("discharge_curve", {})
    step = col.get("unit_step_vs_v_rbl", {})
    mm = col.get("mismatch", {})
    lines = [
        f"Topkima calibration (schema {art.get('schema_version')}), ngspice {prov.get('ngspice_version')}, "
        f"PySpice {prov.get('pyspice_version')}, corner {art.get('corner')} {prov.get('temperature_c')} °C, "
        f"seed {prov.get('seed')}, {'quick' if prov.get('quick') else 'full'}, created {prov.get('created')}",
        f"supplies: {prov.get('supplies')}",
        f"design: {_design_line(prov)}",
        "",
        "Column (dual-10T read ports, 256 rows, differential RBL_L/RBL_R)",
        f"  precharged bitline level        {_si(col.get('v_rbl_precharged_v'), 'V')}",
        f"  bitline step per 0.5 ns unit    {_si(step.get('dv_per_unit_v', [None, None])[1], 'V')} at "
        f"{_si(step.get('v_rbl_v', [None, None])[1], 'V')}, {_si(step.get('dv_per_unit_v', [None] * 17)[16], 'V')} at "
        f"{_si(step.get('v_rbl_v', [None] * 17)[16], 'V')}",
        f"  discharge curve                 {len(curve.get('units', []))} points to "
        f"{curve.get('units', [0])[-1]:.0f} units",
        f"  pulse width fit                 slope {col.get('pulse_units_fit', {}).get('slope', float('nan')):.4f}, "
        f"offset {col.get('pulse_units_fit', {}).get('offset_units', float('nan')):+.3f} units",
        f"  charge share (stored-0 pulse)   {', '.join(f'{u:.2f}' for u in col.get('charge_share_units', {}).get('units', []))} units",
        f"  cell current mismatch σ         {100 * mm.get('i_on_sigma_rel', [float('nan')])[2]:.1f} % "
        f"({mm.get('n_samples')} MC samples, at {mm.get('v_rbl_v', [0, 0, 0])[2]} V)",
        f"  MAC sweep: V_diff slope         {_si(col.get('mac_sweep', {}).get('linear_fit_v_per_unit'), 'V')}/unit, "
        f"max deviation from line {_si(col.get('mac_sweep', {}).get('max_dev_from_line_v'), 'V')}",
        f"  settling (1 %)                  {_si(col.get('settling_1pct_s'), 's')}",
        "  energy per conversion (no SA)   " + ", ".join(
            f"{_si(e, 'J')} @ activity {a:.2f}" for a, e in zip(col.get('energy', {}).get('activity', []),
                                                                col.get('energy', {}).get('e_conversion_j', []))),
        "",
        "Ramp (32 replica-cell steps, calibration phase on RBL_R)",
        f"  LSB                             {_si(ramp.get('lsb_v'), 'V')}",
        f"  calibration step                {_si(ramp.get('v_cal_step_v'), 'V')}",
        f"  INL / DNL (nominal)             {ramp.get('inl_max_lsb', float('nan')):+.3f}/{ramp.get('inl_min_lsb', float('nan')):+.3f}"
        f" / {ramp.get('dnl_max_lsb', float('nan')):+.3f}/{ramp.get('dnl_min_lsb', float('nan')):+.3f} LSB",
        f"  step mismatch σ                 {100 * (ramp.get('step_mismatch', {}).get('step_sigma_rel') or float('nan')):.1f} % "
        f"({ramp.get('step_mismatch', {}).get('n_instances')} instances)",
        "  reference (Yu et al. 2022)      INL +0.27/-0.116, DNL +0.314/-0.256 LSB",
        "",
        "Comparator (StrongARM sense amplifier)",
        f"  offset σ                        {_si(comp.get('offset_sigma_v'), 'V')} "
        f"(95 % CI {', '.join(_si(x, 'V') for x in comp.get('offset_sigma_ci95_v', []))})",
        f"  energy per decision             {_si(comp.get('e_per_decision_j'), 'J')}",
        f"  input-referred noise σ          {_si(comp.get('noise_sigma_v'), 'V')}",
        "",
        "Counters / arbiter / encoder",
        f"  T_arb (arbiter+encoder+counter) {_si(dig.get('t_arb_total_s'), 's')} (paper: 2.08 ns at SS 0.8 V)",
    ]
    if dig.get("t_arb_arbiter_encoder_s") is not None:
        lines.append(f"  arbiter + encoder               {_si(dig.get('t_arb_arbiter_encoder_s'), 's')} (paper: 1.51 + 0.57 ns)")
    keys = (("t_arb_tree_grant_s", "s", "256-input arbiter grant"), ("t_encoder_s", "s", "encoder"),
            ("t_counter_clk_q_s", "s", "ramp counter clk→q"), ("t_kcounter_count_stop_s", "s", "k-counter count→STOP"),
            ("e_per_count_j", "J", "energy per count"), ("e_per_grant_tree_j", "J", "energy per grant (tree)"),
            ("e_per_encode_j", "J", "energy per encode"))
    for name, c in (dig.get("corners") or {}).items():
        lines.append(f"  corner {name} ({dig.get('vdd_digital_v')} V): " + ", ".join(
            f"{label} {_si(c.get(key), unit)}" for key, unit, label in keys if key in c))
    return "\n".join(lines)


def _design_line(prov: dict) -> str:
    if "design" not in prov:
        return "topkima-65nm (the artefact predates design files: no design block, the 65 nm preset)"
    return f"{prov.get('design_name')} (sha256 {str(prov.get('design_sha256'))[:12]})"


def format_side_by_side(a: dict, b: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Two artefacts' summaries line by line: a line both share is printed once, a figure that differs
    as its label, then A's value and B's value in two columns; header lines that differ as two lines."""
    lines_a, lines_b = format_summary(a).splitlines(), format_summary(b).splitlines()
    width = max((len(x[LABEL_WIDTH:]) for x in lines_a if x.startswith("  ")), default=20)
    width = min(width, 48)
    out = [f"A = {name_a}", f"B = {name_b}", "",
           f"{'':{LABEL_WIDTH}}{'A':{width}}  B"]
    for la, lb in zip(lines_a, lines_b):
        if la == lb:
            out.append(la)
        elif la.startswith("  ") and lb.startswith("  ") and la[:LABEL_WIDTH] == lb[:LABEL_WIDTH]:
            out.append(f"{la[:LABEL_WIDTH]}{la[LABEL_WIDTH:]:{width}}  {lb[LABEL_WIDTH:]}")
        else:
            out += [f"A: {la}", f"B: {lb}"]
    longer, tag = (lines_a, "A") if len(lines_a) > len(lines_b) else (lines_b, "B")
    out += [f"{tag}: {x}" for x in longer[min(len(lines_a), len(lines_b)):]]
    return "\n".join(out)
