"""The accelerator estimate's outputs: the printed report, ``tables.md``, CSV tables and the
breakdown plots, from its summary (each file written atomically)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from topkima.behavioral import softmax_macro as sm
from topkima.circuits.files import write_json_atomic, write_text_atomic
from topkima.studies.outputs import save_figure_atomic


def _fmt(x, unit="", digits=3):
    if x is None:
        return "n/a"
    for scale, prefix in ((1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, "")):
        if unit and abs(x) < scale * 1000:
            return f"{x / scale:.{digits}g} {prefix}{unit}"
    return f"{x:.{digits}g}{(' ' + unit) if unit else ''}"


def _breakdown(scope: dict, arrays_label: str) -> str:
    """Latency/energy per operation and energy per component of one scope (module or model)."""
    return "\n".join([
        _table(["operation", "latency", "energy", arrays_label],
               [[op, _fmt(lat, "s"), _fmt(scope["energy_by_op_j"][op], "J"), scope["arrays_by_op"][op]]
                for op, lat in scope["latency_by_op_s"].items()]), "",
        _table(["component", "energy", "share"],
               [[c, _fmt(v, "J"), f"{100 * v / scope['energy_j']:.1f} %"] for c, v in
                sorted(scope["energy_by_component_j"].items(), key=lambda kv: -kv[1])])])


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_rows(s: dict) -> list[list]:
    rows = []
    for scope in ("attention", "model"):
        for sched in ("serial", "pipelined"):
            for label in ("ours", "paper_alpha"):
                r = s["runs"][f"{scope}/{sched}/{label}"]
                rows.append([("one attention module" if scope == "attention" else f"whole model ({r['n_layers']} layers)"),
                             sched, f"{r['alpha']:.3f}" + (" (paper)" if label == "paper_alpha" else " (ours)"),
                             f"{r['ops'] / 1e9:.3f}", f"{r['throughput_tops']:.2f}", f"{r['efficiency_tops_per_w']:.2f}",
                             _fmt(r["latency_s"], "s"), _fmt(r["energy_j"], "J")])
    rows.append(["paper (Table I)", "serial", "0.31", "1.81", "6.70", "16.84", "≈ 270 µs", "≈ 108 µJ"])
    return rows


def macro_rows(s: dict) -> list[list]:
    rows = []
    for reading, entry in s["softmax_macro"]["report"]["readings"].items():
        for label in ("ours", "paper_alpha"):
            c = entry[label]
            rows.append([reading, f"{c['alpha']:.3f}" + (" (paper)" if label == "paper_alpha" else " (ours)"),
                         _fmt(entry["t_arb_s"], "s"),
                         f"{c['speedup_vs_conventional']:.1f}×", f"{c['speedup_vs_dtopk']:.1f}×",
                         f"{c['energy_ratio_vs_conventional']:.2f}×", f"{c['energy_ratio_vs_dtopk']:.2f}×",
                         f"{100 * c['sort_share_of_dtopk_latency']:.0f} %",
                         f"{c['pipelined']['speedup_vs_conventional']:.1f}× / {c['pipelined']['speedup_vs_dtopk']:.1f}×"])
        p = entry["paper_inputs"]
        rows.append([reading, "0.31, T_arb 2.08 ns (SPEC §4 inputs)", "2.08 ns", f"{p['speedup_vs_conventional']:.1f}×",
                     f"{p['speedup_vs_dtopk']:.1f}×", "—", "—", f"{100 * p['sort_share_of_dtopk_latency']:.0f} %", "—"])
    rows.append(["paper", "0.31", "2.08 ns", "≈ 15×", "≈ 8×", "≈ 30×", "≈ 3×", "≥ 75 %", "—"])
    return rows


def format_report(s: dict) -> str:
    sm_ = s["softmax_macro"]
    rep = sm_["report"]
    lines = [f"Topkima accelerator estimate: {s['model']}, sequence {s['seq_len']}, k = {s['k']}, "
             f"preset {s['config']['name']} ({s['config']['description']}), artefact corner "
             f"{s.get('calibration_corner', 'n/a')}",
             f"α = {s['alpha']['value']:.3f} ({s['alpha']['source']}); paper α = {s['alpha']['paper']}",
             "",
             _table(["workload", "schedule", "α", "GOP", "TOPS", "TOPS/W", "latency", "energy"], headline_rows(s)),
             "",
             f"Softmax macro, d = {rep['d']}, k = {rep['k']}, sort clock {_fmt(rep['t_clk_sort_s'], 's')}, "
             f"T_arb from {rep['t_arb']}:",
             _table(["T_pwm", "α", "T_arb", "speed-up vs conv.", "vs digital top-k", "energy vs conv.",
                     "vs digital top-k", "sort share (dtopk)", "pipelined speed-ups"], macro_rows(s)),
             "",
             "Scaling 1/√d_k, scale-free speed-up: " + ", ".join(
                 f"{r}: {v['speedup_vs_left_shift']:.2f}× vs left-shift, {v['speedup_vs_tron']:.2f}× vs Tron "
                 f"(at α 0.31: {v['paper_alpha']['speedup_vs_left_shift']:.2f}×, {v['paper_alpha']['speedup_vs_tron']:.2f}×)"
                 for r, v in s["scaling"].items()) + " (paper: 2.4×, 1.5×)",
             "",
             "Comparison (one attention module, serial, our α):",
             _table(["accelerator", "node (nm)", "MAC", "TOPS", "TOPS/W", "our speed-up", "our efficiency ratio"],
                    comparison_table_rows(s)),
             f"ranges over the others: speed-up {s['comparison']['ranges']['speedup'][0]:.1f}×–"
             f"{s['comparison']['ranges']['speedup'][1]:.0f}×, efficiency {s['comparison']['ranges']['efficiency'][0]:.1f}×–"
             f"{s['comparison']['ranges']['efficiency'][1]:.0f}× (paper: 1.8×–84×, 1.2×–36×)"]
    return "\n".join(lines)


def comparison_table_rows(s: dict) -> list[list]:
    rows = [["ours (preset " + s["config"]["name"] + ")", 32, "SRAM/RRAM IMC", f"{s['throughput_tops']:.2f}",
             f"{s['efficiency_tops_per_w']:.2f}", "—", "—"]]
    for r in s["comparison"]["rows"]:
        rows.append([r["name"], r["node_nm"] or "—", r["mac"], r["throughput_tops"] if r["throughput_tops"] else "n/a",
                     r["efficiency_tops_per_w"] if r["efficiency_tops_per_w"] else "n/a",
                     f"{r['our_speedup']:.1f}×" if r["our_speedup"] else "n/a",
                     f"{r['our_efficiency_ratio']:.1f}×" if r["our_efficiency_ratio"] else "n/a"])
    return rows


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_outputs(out: Path, s: dict) -> None:
    """summary.json, tables.md, CSVs and plots, each written atomically."""
    write_json_atomic(out / "summary.json", s, indent=1)
    breakdown = []
    for key, r in s["runs"].items():
        scope, sched, label = key.split("/")
        for op, lat in r["latency_by_op_s"].items():
            breakdown.append({"scope": scope, "schedule": sched, "alpha": label, "operation": op,
                              "latency_s": lat, "energy_j": r["energy_by_op_j"][op], "arrays": r["arrays_by_op"][op]})
    components = [{"scope": key.split("/")[0], "schedule": key.split("/")[1], "alpha": key.split("/")[2],
                   "component": c, "energy_j": v} for key, r in s["runs"].items()
                  for c, v in r["energy_by_component_j"].items()]
    write_text_atomic(out / "breakdown_by_operation.csv", _csv(breakdown))
    write_text_atomic(out / "breakdown_by_component.csv", _csv(components))
    write_text_atomic(out / "softmax_macro_seq_scaling.csv", _csv(s["softmax_macro"]["report"]["seq_scaling"]))
    write_text_atomic(out / "comparison.csv", _csv([{k: v for k, v in r.items()} for r in s["comparison"]["rows"]]))
    head = s["runs"]["attention/serial/ours"]
    model = s["runs"]["model/serial/ours"]
    md = [f"# Topkima accelerator estimate: {s['model']}, sequence {s['seq_len']}", "",
          f"Preset `{s['config']['name']}`: {s['config']['description']}. Calibration artefact at corner "
          f"{s.get('calibration_corner', 'n/a')}. α = {s['alpha']['value']:.3f} ({s['alpha']['source']}).", "", "## Headline", "",
          _table(["workload", "schedule", "α", "GOP", "TOPS", "TOPS/W", "latency", "energy"], headline_rows(s)), "",
          "## Softmax macro (paper eqs. 3–4)", "",
          _table(["T_pwm", "α", "T_arb", "speed-up vs conv.", "vs digital top-k", "energy vs conv.", "vs digital top-k",
                  "sort share (dtopk)", "pipelined speed-ups"], macro_rows(s)), "",
          "### Sequence-length scaling (our α, preset T_pwm)", "",
          _table(["d", "conventional", "digital top-k", "Topkima", "speed-up vs conv.", "vs dtopk", "energy vs conv.",
                  "vs dtopk", "sort share"],
                 [[r["d"], _fmt(r["latency_conventional_s"], "s"), _fmt(r["latency_dtopk_s"], "s"),
                   _fmt(r["latency_topkima_s"], "s"), f"{r['speedup_vs_conventional']:.1f}×",
                   f"{r['speedup_vs_dtopk']:.1f}×", f"{r['energy_ratio_vs_conventional']:.2f}×",
                   f"{r['energy_ratio_vs_dtopk']:.2f}×", f"{100 * r['sort_share_of_dtopk_latency']:.0f} %"]
                  for r in s["softmax_macro"]["report"]["seq_scaling"]]), "",
          "### Sort clock sweep", "",
          _table(["T_clk,sort", "speed-up vs conv.", "vs dtopk", "sort share"],
                 [[_fmt(r["t_clk_sort_s"], "s"), f"{r['speedup_vs_conventional']:.1f}×", f"{r['speedup_vs_dtopk']:.1f}×",
                   f"{100 * r['sort_share_of_dtopk_latency']:.0f} %"] for r in s["softmax_macro"]["report"]["sort_clock_sweep"]]),
          "", "### Per-event energies of the macro", "",
          _table(["event", "energy", "source"], [[k, _fmt(v, "J"), s["softmax_macro"]["report"]["energy_sources"].get(k, "count")]
                                                 for k, v in s["softmax_macro"]["report"]["per_event_energy_j"].items()]),
          "", "## Scaling by 1/√d_k", "",
          _table(["T_pwm", "α", "scale-free", "left-shift", "Tron", "vs left-shift", "vs Tron"],
                 [[r, label, _fmt(w["latency_s"]["scale-free"], "s"), _fmt(w["latency_s"]["left-shift"], "s"),
                   _fmt(w["latency_s"]["tron"], "s"), f"{w['speedup_vs_left_shift']:.2f}×", f"{w['speedup_vs_tron']:.2f}×"]
                  for r, v in s["scaling"].items() for label, w in (("ours", v), ("0.31 (paper)", v["paper_alpha"]))]
                 + [["paper", "0.31", "", "", "", "2.4×", "1.5×"]]),
          "", "## Breakdown: one attention module (serial, our α)", "", _breakdown(head, "arrays"),
          "", f"## Breakdown: whole model ({model['n_layers']} layers, serial, our α)", "",
          _breakdown(model, "arrays per layer"),
          "", "## Comparison", "",
          _table(["accelerator", "node (nm)", "MAC", "TOPS", "TOPS/W", "our speed-up", "our efficiency ratio"],
                 comparison_table_rows(s)), "",
          "Sources: " + "; ".join(f"{r['name']}: {r['source']}" for r in s["comparison"]["rows"]), "",
          "## Configuration and sources", "",
          _table(["field", "value", "source"], [[k, s["config"]["values"][k.split(".")[0]][k.split(".")[1]], v]
                                                for k, v in s["config"]["sources"].items()]), ""]
    write_text_atomic(out / "tables.md", "\n".join(md))
    _plots(out, s)


def _plots(out: Path, s: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        save_figure_atomic(fig, out / name, dpi=120, close=True)

    for scope, title in (("attention", "one attention module"), ("model", "whole model")):
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        colours, palette = {}, plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for sched, x in (("serial", 0), ("pipelined", 1)):
            r = s["runs"][f"{scope}/{sched}/ours"]
            bottom = 0.0
            for op, v in r["latency_by_op_s"].items():   # one colour per operation, in both bars
                first = op not in colours
                colours.setdefault(op, palette[len(colours) % len(palette)])
                axes[0].bar(x, v * 1e6, bottom=bottom, color=colours[op], label=op if first else None)
                bottom += v * 1e6
        axes[0].set_xticks([0, 1], ["serial", "pipelined"])
        axes[0].set_ylabel("latency (µs)")
        axes[0].legend(fontsize=7)
        r = s["runs"][f"{scope}/serial/ours"]
        ops = list(r["energy_by_op_j"])
        axes[1].bar(ops, [r["energy_by_op_j"][o] * 1e6 for o in ops])
        axes[1].set_ylabel("energy (µJ)")
        axes[1].tick_params(axis="x", rotation=45, labelsize=7)
        comps = sorted(r["energy_by_component_j"], key=lambda c: -r["energy_by_component_j"][c])
        axes[2].bar(comps, [r["energy_by_component_j"][c] * 1e6 for c in comps])
        axes[2].set_ylabel("energy (µJ)")
        axes[2].tick_params(axis="x", rotation=45, labelsize=7)
        fig.suptitle(f"{s['model']}, sequence {s['seq_len']}: {title} (α = {s['alpha']['value']:.2f})")
        fig.tight_layout()
        save(fig, f"breakdown_{scope}.png")
    rows = s["softmax_macro"]["report"]["seq_scaling"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for kind in sm.KINDS:
        ax.plot([r["d"] for r in rows], [r[f"latency_{kind}_s"] * 1e6 for r in rows], "o-", label=kind)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length d")
    ax.set_ylabel("softmax macro latency (µs)")
    ax.legend()
    fig.tight_layout()
    save(fig, "softmax_macro_seq_scaling.png")
