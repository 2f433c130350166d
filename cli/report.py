"""`topkima report`: one command from SPICE calibration to the accelerator estimate, as a web page.

Stages, each in its own folder under ``--out`` and each resumable on its own (the SPICE result
cache, the attention run files, the Monte Carlo instance files):

1. **calibration**: the ngspice characterisation (``--quick``: the reduced plan) written to
   ``calibration/artefact.json``, its key figures printed beside the committed default
   artefact's. The later stages use the committed default artefact (the full characterisation),
   so the page shows how a fresh SPICE run compares with what the model is built on.
2. **golden**: the behavioural model against the golden end-to-end SPICE conversions.
3. **attention**: all-MiniLM-L6-v2 with Topkima attention on the VADER probe (``--quick``: 300
   sentences).
4. **montecarlo**: chip-instance variation study (``--quick``: few instances).
5. **accelerator**: the softmax-macro and whole-accelerator estimate (BERT-base, the paper's
   configuration).

A stage that fails is reported on the page with its message; the others still run, and the
command exits with status 1.
"""
from __future__ import annotations

import html
import json
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from topkima.circuits.files import write_text_atomic

STAGES = ("calibration", "golden", "attention", "montecarlo", "accelerator")


@dataclass
class StageResult:
    name: str
    title: str
    ok: bool = True
    seconds: float = 0.0
    text: str = ""                                   #: preformatted figures
    figures: dict = field(default_factory=dict)      #: headline name → value (a table on the page)
    images: list = field(default_factory=list)       #: paths relative to the report folder
    links: list = field(default_factory=list)        #: (label, relative path)
    error: str = ""


def _stage_calibration(out: Path, quick: bool, workers: int, log) -> StageResult:
    from topkima.calibration import load_calibration
    from topkima.calibration.calibrate import run_calibration
    from topkima.calibration.summary import format_summary
    from topkima.circuits.jobs import print_progress
    from topkima.circuits.settings import CalSettings
    res = StageResult("calibration", "SPICE calibration (ngspice, PTM 65 nm)")
    path = out / "calibration" / "artefact.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = out / "calibration" / "spice_cache"
    log(f"calibration: {'quick' if quick else 'full'} characterisation in ngspice, {workers} workers "
        f"(finished simulations are cached in {cache})")
    fresh = run_calibration(CalSettings(quick=quick), path, workers=workers, cache_dir=cache,
                            progress=print_progress(), command_line="topkima report")
    committed = load_calibration().data
    res.text = ("== this run (" + ("quick" if quick else "full") + ") ==\n" + format_summary(fresh)
                + "\n\n== committed default artefact (used by the stages below) ==\n" + format_summary(committed))
    for label, art in (("this run", fresh), ("committed", committed)):
        comp, dig = art["comparator"], art["digital"]
        res.figures[f"comparator offset σ, {label}"] = f"{1e3 * comp['offset_sigma_v']:.2f} mV"
        res.figures[f"energy per decision, {label}"] = f"{1e15 * comp['e_per_decision_j']:.1f} fJ"
        res.figures[f"T_arb, {label}"] = f"{1e9 * dig['t_arb_total_s']:.2f} ns (paper 2.08 ns)"
    prov = fresh["provenance"]
    res.figures["SPICE jobs (from cache)"] = f"{prov['n_simulation_jobs']} ({prov['n_jobs_from_cache']})"
    res.links.append(("artefact.json", "calibration/artefact.json"))
    return res


def _stage_golden(out: Path, quick: bool, workers: int, log) -> StageResult:
    from topkima.behavioral import TopkimaMacro
    from topkima.behavioral.golden import adc_linearity_lines, compare, load_golden
    from topkima.calibration import load_calibration
    res = StageResult("golden", "Behavioural model vs golden SPICE conversions")
    macro = TopkimaMacro(load_calibration())
    golden = Path(__file__).resolve().parent.parent / "tests" / "golden" / "column_conversions.json"
    if not golden.is_file():
        raise FileNotFoundError(f"the golden SPICE conversions are not at {golden}: run the report from a "
                                "clone of the repository (`make demo`)")
    cmp = compare(macro, load_golden(golden))
    res.text = "\n".join(cmp.lines()) + "\n" + "\n".join(adc_linearity_lines(macro))
    write_text_atomic(out / "golden" / "compare_golden.txt", res.text + "\n")
    res.links.append(("compare_golden.txt", "golden/compare_golden.txt"))
    return res


def _stage_attention(out: Path, quick: bool, workers: int, log) -> StageResult:
    from topkima.studies.attention_eval import AttentionEvalConfig, run_evaluation
    res = StageResult("attention", "all-MiniLM-L6-v2 with Topkima attention: VADER probe")
    folder = out / "attention"
    summary = run_evaluation(folder, AttentionEvalConfig(limit=300 if quick else None), workers=workers,
                             log=lambda t: log(f"attention: {t}"))
    for key in ("accuracy", "flip_rate", "mcnemar_p", "embedding_cosine"):
        for mode, value in summary.get(key, {}).items():
            if value is not None:
                res.figures[f"{key} [{mode}]"] = f"{value:.4g}"
    if summary.get("alpha_mean", {}).get("topkima") is not None:
        res.figures["α (early stop) [topkima]"] = f"{summary['alpha_mean']['topkima']:.3f}"
    res.images = sorted(str(p.relative_to(out)) for p in folder.glob("*.png"))
    res.links.append(("summary.json", "attention/summary.json"))
    return res


def _stage_montecarlo(out: Path, quick: bool, workers: int, log) -> StageResult:
    from topkima.studies.montecarlo import run_montecarlo
    res = StageResult("montecarlo", "Monte Carlo: chip instances across σ multipliers")
    folder = out / "montecarlo"
    summary = run_montecarlo(folder, quick=quick, workers=workers, log=log)   # its lines name the study
    res.figures["instances per σ, seed"] = f"{summary['instances']}, {summary['seed']}"
    for lab in summary["topk_recall"]:
        acc = summary["accuracy"].get(lab)
        res.figures[f"σ × {lab}"] = (f"top-{summary['k']} recall {summary['topk_recall'][lab]:.3f}, "
                                     f"precision {summary['topk_precision'][lab]:.3f}, "
                                     f"α {summary['alpha_mean'][lab]:.3f}, "
                                     f"code error rms {summary['code_error_rms_lsb'][lab]:.2f} LSB"
                                     + ("" if acc is None else f", probe accuracy {100 * acc:.1f} %"))
    res.text = _spice_vs_model_lines(summary.get("spice_vs_behavioural") or {})
    res.images = sorted(str(p.relative_to(out)) for p in folder.glob("*.png"))
    res.links.append(("summary.json", "montecarlo/summary.json"))
    return res


def _spice_vs_model_lines(sv: dict) -> str:
    """The two-sample tests of SPICE Monte Carlo against the behavioural model, one line each."""
    def line(label, t, scale, unit):
        return (f"{label:44s} mean {scale * t['mean_spice']:+8.3f} / {scale * t['mean_model']:+8.3f} {unit}, "
                f"σ {scale * t['std_spice']:7.3f} / {scale * t['std_model']:7.3f} {unit}, "
                f"KS D {t['ks_statistic']:.3f} (p {t['ks_pvalue']:.2g}), AD p {t['ad_pvalue']:.2g}")
    lines = ["SPICE / behavioural model (n SPICE vs n model samples in each test)"]
    for t in sv.get("offset_by_vcm", []):
        lines.append(line(f"comparator offset at CM {t['vcm_v']:.2f} V ({t['n_spice']} vs {t['n_model']})", t, 1e3, "mV"))
    if not sv:
        return "SPICE / behavioural comparison: not run in this study"
    codes = sv.get("column_codes") or {}
    if sv.get("column_codes_note"):
        lines.append(str(sv["column_codes_note"]))
    for key, label in (("codes", "column codes"), ("deviation_from_nominal", "code − nominal code")):
        if key in codes:
            t = codes[key]
            lines.append(line(f"{label} ({t['n_spice']} vs {t['n_model']})", t, 1.0, "LSB"))
    if codes.get("note"):
        lines.append(codes["note"])
    return "\n".join(lines)


def _stage_accelerator(out: Path, quick: bool, workers: int, log) -> StageResult:
    from topkima.studies.accelerator import AcceleratorStudyConfig, run_accelerator
    res = StageResult("accelerator", "Accelerator estimate: one BERT-base attention module (paper configuration)")
    folder = out / "accelerator"
    # α measured on all-MiniLM-L6-v2 over packed 384-token VADER sequences (cached in the folder)
    config = AcceleratorStudyConfig(model="bert-base", preset="paper", alpha_sequences=2 if quick else 4, seed=0)
    lines = []
    summary = run_accelerator(folder, config, log=lines.append)
    res.text = "\n".join(lines)
    paper = summary["paper"]
    res.figures["throughput"] = f"{summary['throughput_tops']:.2f} TOPS (paper {paper['throughput_tops']})"
    res.figures["efficiency"] = f"{summary['efficiency_tops_per_w']:.2f} TOPS/W (paper {paper['efficiency_tops_per_w']})"
    res.figures["latency"] = f"{1e6 * summary['latency_s']:.0f} µs"
    res.figures["energy"] = f"{1e6 * summary['energy_j']:.0f} µJ"
    res.figures["α"] = f"{summary['alpha']['value']:.3f} ({summary['alpha']['source']}); paper {summary['alpha']['paper']}"
    sm = summary["softmax_macro"]
    res.figures["softmax macro vs conventional"] = (f"{sm['speedup_vs_conventional']:.1f}× faster, "
                                                    f"{sm['energy_ratio_vs_conventional']:.2f}× less energy")
    res.figures["softmax macro vs digital top-k"] = (f"{sm['speedup_vs_dtopk']:.1f}× faster, "
                                                     f"{sm['energy_ratio_vs_dtopk']:.2f}× less energy")
    res.images = sorted(str(p.relative_to(out)) for p in folder.glob("*.png"))
    res.links += [(p.name, str(p.relative_to(out))) for p in sorted(folder.glob("*.md")) + sorted(folder.glob("*.csv"))]
    res.links.append(("summary.json", "accelerator/summary.json"))
    return res


_RUNNERS = {"calibration": _stage_calibration, "golden": _stage_golden, "attention": _stage_attention,
            "montecarlo": _stage_montecarlo, "accelerator": _stage_accelerator}


def _git_commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def render_html(results: list[StageResult], meta: dict) -> str:
    """The report page: one section per stage, figures as tables, plots inline."""
    esc = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>topkima report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:2px 8px;text-align:left}"
             "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}img{max-width:100%;margin:6px 0}"
             ".fail{color:#b00}</style></head><body>",
             "<h1>topkima report</h1>",
             "<p>" + " · ".join(f"{esc(k)}: <b>{esc(str(v))}</b>" for k, v in meta.items()) + "</p>",
             "<ul>" + "".join(f"<li><a href='#{r.name}'>{esc(r.title)}</a> — "
                              + (f"{r.seconds:.0f} s" if r.ok else "<span class='fail'>failed</span>") + "</li>"
                              for r in results) + "</ul>"]
    for r in results:
        parts.append(f"<h2 id='{r.name}'>{esc(r.title)}</h2>")
        if not r.ok:
            parts.append(f"<p class='fail'>This stage failed:</p><pre>{esc(r.error)}</pre>")
            continue
        if r.figures:
            parts.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
                                             for k, v in r.figures.items()) + "</table>")
        for img in r.images:
            parts.append(f"<figure><img src='{esc(img)}' alt='{esc(img)}'><figcaption>{esc(img)}</figcaption></figure>")
        if r.text:
            parts.append(f"<pre>{esc(r.text)}</pre>")
        if r.links:
            parts.append("<p>" + " · ".join(f"<a href='{esc(p)}'>{esc(label)}</a>" for label, p in r.links) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(out_dir: str | Path, *, quick: bool = False, stages=STAGES, workers: int = 2, log=print) -> int:
    """Run the stages and write ``index.html`` and ``report.json``; 0 if every stage succeeded."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [s for s in stages if s not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown report stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    results = []
    t_all = time.monotonic()
    for name in stages:
        log(f"== {name} ==")
        t0 = time.monotonic()
        try:
            res = _RUNNERS[name](out, quick, workers, log)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a failed stage is shown on the page; the others still run
            res = StageResult(name, name, ok=False, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}")
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
        res.seconds = time.monotonic() - t0
        results.append(res)
    meta = {"mode": "quick" if quick else "full", "commit": _git_commit(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "total time": f"{time.monotonic() - t_all:.0f} s",
            "python": sys.version.split()[0]}
    write_text_atomic(out / "index.html", render_html(results, meta))
    write_text_atomic(out / "report.json", json.dumps(
        {"meta": meta, "stages": [{"name": r.name, "ok": r.ok, "seconds": round(r.seconds, 1),
                                   "figures": r.figures, "error": r.error.splitlines()[0] if r.error else ""}
                                  for r in results]}, indent=1) + "\n")
    log(f"wrote {out / 'index.html'} ({meta['total time']})")
    return 0 if all(r.ok for r in results) else 1
