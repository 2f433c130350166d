"""The `topkima` command line."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "topkima" / "spice"


def _int_at_least(minimum: int):
    """An argparse type: an integer ≥ ``minimum``, with a message saying so."""
    what = "positive" if minimum == 1 else "non-negative"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def cmd_calibrate(args) -> int:
    from topkima.calibration.calibrate import run_calibration
    from topkima.circuits.design import DesignError, load_design
    from topkima.circuits.jobs import JobError, print_progress
    from topkima.circuits.settings import CalSettings
    from topkima.circuits.spice import SpiceError
    if args.mc is not None and args.mc < 2:
        print("topkima calibrate: --mc must be at least 2 Monte Carlo samples", file=sys.stderr)
        return 2
    try:
        design = load_design(args.design)
        design.corner(args.corner)
    except DesignError as exc:
        print(f"topkima calibrate: {exc}", file=sys.stderr)
        return 2
    settings = CalSettings(quick=args.quick, corner_name=args.corner, mc=args.mc, seed=args.seed, design=design)
    print(f"topkima calibrate: design {design.name} (sha256 {design.sha256()[:12]}), "
          f"{'quick' if args.quick else 'full'} characterisation, corner {args.corner}, "
          f"{settings.mc_samples} Monte Carlo samples, seed {args.seed}, {args.workers} workers, "
          f"cache {args.cache}", file=sys.stderr)
    try:
        artefact = run_calibration(settings, args.out, workers=args.workers, cache_dir=args.cache,
                                   timeout_s=args.timeout, progress=print_progress())
    except (SpiceError, JobError) as exc:
        print(f"topkima calibrate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({artefact['provenance']['wall_time_s']} s, "
          f"{artefact['provenance']['n_simulation_jobs']} simulation jobs, "
          f"{artefact['provenance']['n_jobs_from_cache']} from cache)", file=sys.stderr)
    if not args.no_summary:
        from topkima.calibration.summary import format_summary
        print(format_summary(artefact))
    return 0


def cmd_calibrate_droop(args) -> int:
    import shlex
    from topkima.calibration.artefact import ArtefactError
    from topkima.calibration.bitline_droop import add_bitline_droop
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    try:
        section = add_bitline_droop(args.artefact, args.out, workers=args.workers, cache_dir=args.cache,
                                    timeout_s=args.timeout, command=" ".join(shlex.quote(a) for a in sys.argv))
    except (ArtefactError, SpiceError, JobError, ValueError, RuntimeError) as exc:
        print(f"topkima calibrate-droop: {exc}", file=sys.stderr)
        return 1
    v, rel = section["v_rbl_v"], section["rate_rel"]
    print(f"bitline droop: {section['rate_at_v_ref_units_per_unit']:.5f} units per PWM unit at {section['v_ref_v']} V; "
          f"relative {rel[0]:.3f} at {v[0]:.3f} V … {rel[-1]:.3f} at {v[-1]:.3f} V ({len(v)} levels); wrote "
          f"{args.out or args.artefact or 'the committed artefact'} ({section['provenance']['wall_time_s']} s)",
          file=sys.stderr)
    return 0


def cmd_calibrate_in_column(args) -> int:
    import shlex
    from topkima.calibration.artefact import ArtefactError
    from topkima.calibration.in_column import add_in_column_threshold
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    try:
        section = add_in_column_threshold(args.artefact, args.out, workers=args.workers, cache_dir=args.cache,
                                          timeout_s=args.timeout, command=" ".join(shlex.quote(a) for a in sys.argv))
    except (ArtefactError, SpiceError, JobError, ValueError, RuntimeError) as exc:
        print(f"topkima calibrate-in-column: {exc}", file=sys.stderr)
        return 1
    sens = ", ".join(f"{d} {1e3 * v:+.2f} mV/V" for d, v in section["sensitivity_v_per_v"].items())
    plane = section["nominal_shift"]
    print(f"in-column threshold at CM {section['vcm_v']:.3f} V, cycle {section['cycle']}: nominal "
          f"{1e3 * section['threshold_nominal_v']:+.3f} mV; shift beyond the ideal-source offset "
          f"{1e3 * plane['shift_v']:+.3f} mV at CM {plane['vcm0_v']:.3f} V, {1e3 * plane['per_v']:+.2f} mV/V of CM, "
          f"{1e6 * plane['per_cycle_v']:+.2f} µV per cycle (residual {1e6 * plane['residual_rms_v']:.1f} µV rms over "
          f"{plane['n_runs']} runs); sensitivities {sens}; wrote {args.out or args.artefact or 'the committed artefact'} "
          f"({section['provenance']['wall_time_s']} s)", file=sys.stderr)
    return 0


def cmd_calibrate_trim(args) -> int:
    import shlex
    from topkima.calibration.artefact import ArtefactError
    from topkima.calibration.offset_trim import add_offset_trim
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    try:
        section = add_offset_trim(args.artefact, args.out, workers=args.workers, cache_dir=args.cache,
                                  timeout_s=args.timeout, n_samples=args.mc,
                                  command=" ".join(shlex.quote(a) for a in sys.argv))
    except (ArtefactError, SpiceError, JobError, ValueError, RuntimeError) as exc:
        print(f"topkima calibrate-trim: {exc}", file=sys.stderr)
        return 1
    sig = ", ".join(f"{1e3 * b['sigma_v']:.2f} mV at {b['vcm_v']:.2f} V" for b in section["by_vcm"])
    print(f"trimmed comparator offset ({section['n_samples']} instances, {section['n_clipped']} beyond the DAC): "
          f"σ {sig}; wrote {args.out or args.artefact or 'the committed artefact'} "
          f"({section['provenance']['wall_time_s']} s)", file=sys.stderr)
    return 0


def cmd_summary(args) -> int:
    from topkima.calibration import ArtefactError, load_calibration
    from topkima.calibration.summary import format_side_by_side, format_summary
    if len(args.artefact) > 2:
        print("topkima summary: give at most two artefacts (one: its summary; two: side by side)", file=sys.stderr)
        return 2
    try:
        cals = [load_calibration(path) for path in (args.artefact or [None])]
    except ArtefactError as exc:
        print(f"topkima summary: {exc}", file=sys.stderr)
        return 1
    if len(cals) == 1:
        print(format_summary(cals[0].data))
    else:
        print(format_side_by_side(cals[0].data, cals[1].data, *args.artefact))
    return 0


def cmd_golden(args) -> int:
    """Generate golden end-to-end SPICE conversions (with their mismatch draws) for the tests."""
    from topkima.calibration.golden_runs import generate_golden
    from topkima.circuits import golden
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    gset = golden.golden_set(args.set)
    if args.corner is not None and args.corner != gset.corner_name:
        print(f"topkima golden: the {gset.name} set is made at corner {gset.corner_name}, not --corner {args.corner}; "
              f"drop --corner or choose the set of that corner ({', '.join(golden.SETS)})", file=sys.stderr)
        return 2
    try:
        out, n_jobs, n_groups, corner = generate_golden(args.set, groups=args.groups, columns=args.columns,
                                                        seed=args.seed, workers=args.workers, cache_dir=args.cache,
                                                        out=args.out, command=" ".join(sys.argv))
    except (SpiceError, JobError) as exc:
        print(f"topkima golden: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {n_jobs} SPICE conversions in {n_groups} groups at corner {corner}", file=sys.stderr)
    return 0


def cmd_stop_time(args) -> int:
    """Time to STOP in SPICE (sense amplifiers → arbiter → k-counter) on golden columns, vs the model's latency."""
    from topkima.behavioral.golden import load_golden, stop_time_lines
    from topkima.calibration import load_calibration
    from topkima.calibration.golden_runs import measure_stop_times
    from topkima.circuits.golden import golden_set
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    gset = golden_set(args.set)
    golden_file = args.golden or gset.path
    try:
        doc = load_golden(golden_file)
        stored = measure_stop_times(doc, golden_file, groups=args.groups, columns=args.columns, k=args.k,
                                    workers=args.workers, cache_dir=args.cache, out=args.out,
                                    command=" ".join(sys.argv))
    except (ValueError, OSError, SpiceError, JobError) as exc:
        print(f"topkima stop-time: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(stored['runs'])} runs", file=sys.stderr)
    print("\n".join(stop_time_lines(load_calibration(), stored)))
    return 0


def cmd_compare_golden(args) -> int:
    """Behavioural model vs the golden SPICE conversions: exact / ±1 LSB / top-k agreement, by code region."""
    import json
    from topkima.behavioral import TopkimaMacro
    from topkima.behavioral.golden import compare, load_golden
    from topkima.calibration import ArtefactError, load_calibration
    from topkima.circuits.golden import golden_set
    gset = golden_set(args.set)
    path = args.golden or gset.path
    try:
        macro = TopkimaMacro(load_calibration(args.artefact or _committed_artefact(gset.corner_name)))
        golden = load_golden(path)
    except (ArtefactError, ValueError, FileNotFoundError) as exc:
        print(f"topkima compare-golden: {exc}", file=sys.stderr)
        return 1
    if golden.get("set", "development") != args.set:
        print(f"topkima compare-golden: {path} holds the {golden.get('set', 'development')} set, not "
              f"--set {args.set}", file=sys.stderr)
        return 1
    agreement = compare(macro, golden, k_top=args.k)
    budget = None
    if args.set == "error-budget":   # where the error comes from, device group by device group
        from topkima.behavioral.golden_budget import error_budget, error_budget_lines
        budget = error_budget(macro, golden)
    if args.json:
        print(json.dumps({"golden": str(path), **agreement.to_json(),
                          **({"error_budget": budget} if budget else {})}))
        return 0
    from topkima.behavioral.golden import adc_linearity_lines
    print("\n".join(agreement.lines()))
    if budget:
        print("\n".join(error_budget_lines(budget)))
    print("\n".join(adc_linearity_lines(macro)))
    return 0


def _committed_artefact(corner_name: str) -> Path | None:
    """The committed artefact of a corner: tt is the default (None), others ``{corner}_calibration.json``."""
    if corner_name == "tt":
        return None
    from topkima.calibration.artefact import default_artefact_path
    return default_artefact_path().with_name(f"{corner_name}_calibration.json")


def cmd_finetune(args) -> int:
    """Fine-tune MiniLM (dense, TFCBP + QAT) and evaluate it on the chip (see topkima.studies.finetune)."""
    from topkima.behavioral.minilm import WeightsMissingError
    from topkima.studies.finetune import QUICK, CheckpointError, FinetuneConfig
    from topkima.studies.finetune_eval import EvalConfig
    from topkima.studies.jax_backend import TrainExtraMissingError
    preset = QUICK if args.quick else {"train": {}, "eval": {}}

    def given(section: str, **values) -> dict:   # options left unset take the preset's value, else the default
        return {key: value if value is not None else preset[section].get(key)
                for key, value in values.items() if value is not None or key in preset[section]}

    train = {"trainings": tuple(t.strip() for t in args.training.split(",") if t.strip()), "train_k": args.k,
             "seed": args.seed, "epochs": args.epochs,
             **given("train", batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
                     train_limit=args.train_limit, noise_sentences=None, noise_chips=None)}
    evaluation = {"n_chips": args.chips, "workers": args.workers, "headline_k": args.k,
                  **given("eval", test_limit=args.test_limit)}
    if args.eval_k:
        evaluation["ks"] = tuple(args.eval_k)
    try:
        config, eval_config = FinetuneConfig(**train).validate(), EvalConfig(**evaluation).validate()
        from topkima.studies.finetune import run_finetune
        run_finetune(config, eval_config, args.out, evaluate=not args.no_eval,
                     log=lambda text: print(text, file=sys.stderr, flush=True))
    except (TrainExtraMissingError, CheckpointError, WeightsMissingError, ValueError, RuntimeError, OSError) as exc:
        print(f"topkima finetune: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_attention(args) -> int:
    """MiniLM with Topkima attention on the VADER movie-review probe (see topkima.studies.attention_eval)."""
    from topkima.behavioral.minilm import WeightsMissingError
    from topkima.calibration import ArtefactError
    from topkima.studies.attention_eval import EVAL_MODES, AttentionEvalConfig, run_evaluation
    modes = EVAL_MODES if args.mode == "all" else (args.mode,)
    try:
        top_q, bottom_q = _window_quantiles(args.window)
        config = AttentionEvalConfig(k=args.k, modes=modes, limit=args.limit, seed=args.seed, sweep=not args.no_sweep,
                                     chips=args.chips, ranges=args.ranges, key_policy=args.key_policy,
                                     window_top_quantile=top_q, window_bottom_quantile=bottom_q)
        from topkima.studies.circuit_whatif import variant_knobs
        variant = None if args.chip_variant == "as-characterised" else variant_knobs(args.chip_variant)
        run_evaluation(args.out, config, workers=args.workers, scheduler=args.scheduler,
                       scheduler_timeout_s=args.scheduler_timeout, macro_variant=variant, artefact=args.artefact,
                       log=lambda text: print(text, file=sys.stderr, flush=True))
    except (WeightsMissingError, ArtefactError, ValueError, RuntimeError, OSError) as exc:
        print(f"topkima attention: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"topkima attention: interrupted; finished shards are kept under {args.out}/runs: rerun the same "
              "command to resume", file=sys.stderr)
        return 130
    return 0


def _window_quantiles(text: str) -> tuple[float, float]:
    """--window TOP,BOTTOM as two numbers, or a ValueError naming the argument."""
    try:
        top_q, bottom_q = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--window takes two quantiles TOP,BOTTOM (e.g. 1.0,0.0), got {text!r}") from None
    return top_q, bottom_q


def cmd_lm_eval(args) -> int:
    """SmolLM2 with Topkima attention: perplexity on real text (see topkima.studies.lm_eval)."""
    from topkima.behavioral.models.smollm2 import WeightsMissingError
    from topkima.studies.lm_eval import LM_MODES, LmEvalConfig, run_lm_eval
    try:
        ks = tuple(int(x) for x in args.k.split(","))
        modes = LM_MODES if args.modes == "all" else tuple(m.strip() for m in args.modes.split(","))
        top_q, bottom_q = _window_quantiles(args.window)
        config = LmEvalConfig(tokens=args.tokens, windows=args.windows, ks=ks, modes=modes, chips=args.chips,
                              key_policy=args.key_policy, window_top_quantile=top_q, window_bottom_quantile=bottom_q,
                              text_set=args.set)
        from topkima.studies.circuit_whatif import variant_knobs
        variant = None if args.chip_variant == "as-characterised" else variant_knobs(args.chip_variant)
        run_lm_eval(args.out, config, workers=args.workers, scheduler=args.scheduler,
                    scheduler_timeout_s=args.scheduler_timeout, macro_variant=variant, artefact=args.artefact,
                    log=lambda text: print(text, file=sys.stderr, flush=True))
    except (WeightsMissingError, ValueError, RuntimeError, OSError) as exc:
        print(f"topkima lm-eval: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"topkima lm-eval: interrupted; finished windows are kept under {args.out}/runs: rerun the same "
              "command to resume", file=sys.stderr)
        return 130
    return 0


def cmd_report(args) -> int:
    """Calibration → golden check → attention → Monte Carlo → accelerator, as one web page."""
    from topkima.report import STAGES, build_report
    stages = STAGES if args.stages is None else tuple(s.strip() for s in args.stages.split(",") if s.strip())
    try:
        return build_report(args.out, quick=args.quick, stages=stages, workers=args.workers,
                            log=lambda text: print(text, file=sys.stderr, flush=True))
    except (ValueError, OSError) as exc:
        print(f"topkima report: {exc}", file=sys.stderr)
        return 2


def cmd_accelerator(args) -> int:
    """The whole-accelerator estimate and the softmax-macro comparisons (see topkima.studies.accelerator)."""
    from topkima.behavioral.minilm import WeightsMissingError
    from topkima.studies.accelerator import AcceleratorStudyConfig, ConfigError, run_accelerator
    from topkima.calibration import ArtefactError
    config = AcceleratorStudyConfig(model=args.model, seq_len=args.seq_len, preset=args.config, alpha=args.alpha,
                                    alpha_from=args.alpha_from, alpha_sequences=args.alpha_sequences, seed=args.seed,
                                    artefact=args.artefact)
    try:
        run_accelerator(args.out, config, log=lambda text: print(text, flush=True))
    except (ConfigError, ArtefactError) as exc:
        print(f"topkima accelerator: {exc}", file=sys.stderr)
        return 2
    except WeightsMissingError as exc:
        print(f"topkima accelerator: {exc} (or pass --alpha X / --alpha-from FILE)", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"topkima accelerator: {exc}", file=sys.stderr)
        return 1
    return 0


def _sigma_list(text: str) -> tuple[float, ...]:
    """An argparse type: comma-separated σ multipliers, each a finite number ≥ 0."""
    import math
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers ≥ 0, got {part.strip()!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"σ multipliers must be finite numbers ≥ 0, got {part.strip()}")
        values.append(value)
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"σ multipliers must be distinct, got {text!r}")
    return tuple(values)


def cmd_montecarlo(args) -> int:
    """Monte Carlo variation study (see topkima.studies.montecarlo)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")   # before numpy is imported here and in the workers
    from topkima.behavioral.minilm import WeightsMissingError
    from topkima.studies.montecarlo import StudyConfig, StudyError, run_montecarlo
    given = {name: getattr(args, attr) for name, attr in (
        ("instances", "instances"), ("sigma_scales", "sigma_scale"), ("k", "k"), ("seed", "seed"),
        ("n_queries", "queries"), ("accuracy_instances", "accuracy_instances"),
        ("accuracy_test_sentences", "accuracy_sentences"), ("spice_instances", "spice_instances"))
        if getattr(args, attr) is not None}
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    try:
        config = StudyConfig.quick(**given) if args.quick else StudyConfig(**given)
        summary = run_montecarlo(args.out, config, workers=args.workers, scheduler=args.scheduler,
                                 scheduler_timeout_s=args.scheduler_timeout, log=log)
    except StudyError as exc:
        print(f"topkima montecarlo: {exc}", file=sys.stderr)
        return 2
    except WeightsMissingError as exc:
        print(f"topkima montecarlo: {exc} (or run with --accuracy-instances 0)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"topkima montecarlo: interrupted; finished instances are kept under {args.out}/instances: "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as exc:
        print(f"topkima montecarlo: {exc}", file=sys.stderr)
        return 1
    labels = list(summary["topk_recall"])
    print(f"{'σ ×':>6} {'recall':>8} {'precision':>9} {'α':>7} {'code err rms':>12} {'INL max':>8} {'accuracy':>9} "
          f"{'flips':>7}")
    for lab in labels:
        acc, flip = summary["accuracy"].get(lab), summary["flip_rate"].get(lab)
        print(f"{lab:>6} {summary['topk_recall'][lab]:8.4f} {summary['topk_precision'][lab]:9.4f} "
              f"{summary['alpha_mean'][lab]:7.4f} {summary['code_error_rms_lsb'][lab]:12.3f} "
              f"{summary['inl_max_median_lsb'][lab]:8.3f} "
              f"{'—' if acc is None else f'{100 * acc:8.2f}%'} {'—' if flip is None else f'{100 * flip:6.2f}%'}")
    return 0


def cmd_sweep(args) -> int:
    """Design sweep: calibrate every point of a grid of design changes (see topkima.studies.sweep)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    from topkima.studies.sweep import FIGURES, SweepConfig, SweepError, parse_vary, run_sweep
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    try:
        config = SweepConfig(design=args.design, varies=tuple(parse_vary(v) for v in args.vary), quick=args.quick,
                             corner=args.corner, mc=args.mc, seed=args.seed, workers=args.workers)
        summary = run_sweep(args.out, config, scheduler=args.scheduler, scheduler_timeout_s=args.scheduler_timeout,
                            log=log)
    except SweepError as exc:
        print(f"topkima sweep: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"topkima sweep: interrupted; finished points are kept under {args.out}/points and the SPICE jobs "
              f"in {args.out}/cache: rerun the same command to resume", file=sys.stderr)
        return 130
    except (SpiceError, JobError, RuntimeError, OSError) as exc:
        print(f"topkima sweep: {exc}", file=sys.stderr)
        return 1
    names = summary["varied"]
    print(" ".join(f"{n:>16}" for n in names) + " " + " ".join(f"{f:>17}" for f in FIGURES))
    for row in summary["points"]:
        print(" ".join(f"{row['value:' + n]:16.4g}" for n in names) + " "
              + " ".join(f"{row[f]:17.4g}" for f in FIGURES))
    print(f"wrote {args.out}/summary.json and {len(summary['plots'])} plots in {args.out}/plots", file=sys.stderr)
    return 0


def _thread_count(text: str) -> int:
    n = _positive_int(text)
    if n > 64:
        raise argparse.ArgumentTypeError(f"expected a thread count in 1..64, got {text}")
    return n


def _chip_variants():
    from topkima.studies.circuit_whatif import VARIANTS   # numpy only: cheap at parser build
    return VARIANTS


def _add_executor_arguments(p) -> None:
    """--workers, --scheduler and --scheduler-timeout of a sharded study (figures do not depend on them)."""
    p.add_argument("--workers", type=_nonneg_int, default=2, help="local worker processes (0: run in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed scheduler (tcp://host:8786) instead of local workers "
                        "(pip install 'topkima[mc]')")
    p.add_argument("--scheduler-timeout", type=_positive_float, default=5.0,
                   help="seconds to try reaching the scheduler (default 5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="topkima", description="Topkima-Former macro simulator: SPICE "
                                     "characterisation, calibrated behavioural model, accelerator estimates.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("calibrate", help="characterise the macro's blocks in ngspice and write the calibration artefact")
    p.add_argument("--quick", action="store_true", help="fewer Monte Carlo samples and sweep points (≈2 min)")
    p.add_argument("--corner", default="tt", help="process corner for the analog blocks (tt, ss, ff, sf, fs)")
    p.add_argument("--design", default="topkima-65nm",
                   help="design preset name (topkima-65nm) or a TOML design file (docs/design.md)")
    p.add_argument("--mc", type=_positive_int, default=None, help="Monte Carlo samples per block (default 24 quick, 200 full)")
    p.add_argument("--seed", type=_nonneg_int, default=2024, help="root seed of every mismatch draw")
    p.add_argument("--out", default="calibration.json", help="artefact file to write (default ./calibration.json)")
    p.add_argument("--workers", type=_nonneg_int, default=2, help="worker processes (0: run in this process)")
    p.add_argument("--cache", type=Path, default=_default_cache(), help="simulation cache folder (resumes interrupted runs)")
    p.add_argument("--timeout", type=_positive_float, default=None, help="wall-clock limit per simulation job (s)")
    p.add_argument("--no-summary", action="store_true", help="do not print the summary")
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("calibrate-in-column", help="measure the comparator's threshold inside the column in ngspice "
                       "and add it to an artefact (comparator.in_column; the model then uses it)")
    p.add_argument("--artefact", type=Path, default=None, help="artefact to extend (default: the committed one)")
    p.add_argument("--out", type=Path, default=None, help="file to write (default: the artefact, in place)")
    p.add_argument("--workers", type=_nonneg_int, default=1, help="worker processes (0: run in this process)")
    p.add_argument("--cache", type=Path, default=_default_cache(), help="simulation cache folder (resumes interrupted runs)")
    p.add_argument("--timeout", type=_positive_float, default=3600.0, help="wall-clock limit per simulation job (s)")
    p.set_defaults(func=cmd_calibrate_in_column)
    p = sub.add_parser("calibrate-droop", help="measure the read bitlines' droop (idle-stack leakage) against their "
                       "level in ngspice and add it to an artefact (column.bitline_droop; the model then uses it)")
    p.add_argument("--artefact", type=Path, default=None, help="artefact to extend (default: the committed one)")
    p.add_argument("--out", type=Path, default=None, help="file to write (default: the artefact, in place)")
    p.add_argument("--workers", type=_nonneg_int, default=1, help="worker processes (0: run in this process)")
    p.add_argument("--cache", type=Path, default=_default_cache(), help="simulation cache folder (resumes interrupted runs)")
    p.add_argument("--timeout", type=_positive_float, default=600.0, help="wall-clock limit per simulation job (s)")
    p.set_defaults(func=cmd_calibrate_droop)
    p = sub.add_parser("calibrate-trim", help="trim the comparator's offset in ngspice (a capacitor DAC set at power-up) "
                       "and add the residual to an artefact (comparator.offset_trim; --chip-variant offset-trimmed uses it)")
    p.add_argument("--artefact", type=Path, default=None, help="artefact to extend (default: the committed one)")
    p.add_argument("--out", type=Path, default=None, help="file to write (default: the artefact, in place)")
    p.add_argument("--mc", type=_int_at_least(64), default=72,
                   help="latch instances trimmed (default 72; at least 64: the trimmed offset's 23-term linear model over-fits fewer)")
    p.add_argument("--workers", type=_nonneg_int, default=1, help="worker processes (0: run in this process)")
    p.add_argument("--cache", type=Path, default=_default_cache(), help="simulation cache folder (resumes interrupted runs)")
    p.add_argument("--timeout", type=_positive_float, default=600.0, help="wall-clock limit per simulation job (s)")
    p.set_defaults(func=cmd_calibrate_trim)
    p = sub.add_parser("golden", help="golden end-to-end SPICE conversions with their mismatch draws (for tests)")
    p.add_argument("--set", choices=["development", "heldout", "ss", "error-budget", "fit"], default="development",
                   help="development (random inputs, the set the model was developed on), heldout (codes spread "
                        "over 1…30, own seed stream; never used to choose or fit anything), ss (the held-out plan "
                        "at the ss corner, its own seed stream; never fitted to either), error-budget (one column "
                        "instance per group, converted with each device group's mismatch alone: a diagnosis) or fit "
                        "(the held-out plan from its own seed stream: data to fit model refinements to)")
    p.add_argument("--groups", type=_positive_int, default=None, help="column groups sharing one query "
                   "(default 4; heldout 17; ss 6; error-budget 12; fit 6)")
    p.add_argument("--columns", type=_positive_int, default=16, help="columns per group (error-budget: always 5, "
                   "one per device group)")
    p.add_argument("--corner", default=None, help="optional check: the set's corner (development and heldout: tt; "
                   "ss: ss)")
    p.add_argument("--seed", type=_nonneg_int, default=2024)
    p.add_argument("--workers", type=_nonneg_int, default=2)
    p.add_argument("--cache", type=Path, default=_default_cache())
    p.add_argument("--out", default=None, help="default tests/golden/column_conversions.json (heldout: "
                   "tests/golden/heldout_conversions.json; ss: tests/golden/ss_conversions.json; error-budget: "
                   "tests/golden/error_budget_conversions.json; fit: calibration/fit_conversions.json)")
    p.set_defaults(func=cmd_golden)
    p = sub.add_parser("stop-time", help="time to STOP in SPICE (sense amplifiers, arbiter chain, k-counter) "
                       "on golden columns, against the model's latency")
    p.add_argument("--set", choices=["development", "heldout", "ss", "error-budget"], default="heldout",
                   help="golden set whose columns are replayed (default heldout: all its columns fire)")
    p.add_argument("--golden", default=None, help="golden file (default: the --set's committed file)")
    p.add_argument("--groups", type=_positive_int, default=4, help="runs, one per golden group (default 4)")
    p.add_argument("--columns", type=_positive_int, default=8, help="columns per run, a power of two (default 8)")
    p.add_argument("--k", type=_positive_int, default=5)
    p.add_argument("--workers", type=_nonneg_int, default=1)
    p.add_argument("--cache", type=Path, default=_default_cache())
    p.add_argument("--out", default="tests/golden/topk_stop_times.json")
    p.set_defaults(func=cmd_stop_time)
    p = sub.add_parser("compare-golden", help="behavioural model against the golden SPICE conversions")
    p.add_argument("--set", choices=["development", "heldout", "ss", "error-budget", "fit"], default="development",
                   help="development (default; tests/golden/column_conversions.json), heldout "
                        "(tests/golden/heldout_conversions.json), ss (tests/golden/ss_conversions.json, at the ss "
                        "corner) or error-budget (tests/golden/error_budget_conversions.json; also prints the model's "
                        "error budget by device group); the held-out sets are never used to choose or fit anything")
    p.add_argument("--golden", default=None, help="golden file (default: the --set's committed file)")
    p.add_argument("--artefact", default=None, help="calibration artefact (default: the committed one of the set's "
                   "corner: calibration/default_calibration.json at tt, calibration/ss_calibration.json at ss)")
    p.add_argument("--k", type=_positive_int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object (overall and by code region)")
    p.set_defaults(func=cmd_compare_golden)
    p = sub.add_parser("attention", help="all-MiniLM-L6-v2 with Topkima attention on the VADER movie-review probe")
    p.add_argument("--k", type=_positive_int, default=5, help="keys kept per query row (default 5)")
    p.add_argument("--mode", choices=["all", "quantized", "topk", "subtopk", "topkima"], default="all",
                   help="attention mode(s) compared with exact (default all)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="use only N sentences (70/30 of them for training/test; default all 10,072)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="split, chip mismatch and comparator-noise seed")
    p.add_argument("--out", default="out/attention", help="folder for summary.json, plots and resumable runs")
    p.add_argument("--no-sweep", action="store_true", help="skip the k sweep {1, 2, 5, 10, 20}")
    p.add_argument("--chips", type=_positive_int, default=1,
                   help="chips in topkima mode, seeds SEED … SEED + N − 1 (default 1)")
    p.add_argument("--ranges", choices=["frozen", "per-call"], default="frozen",
                   help="frozen: every scale and ADC range fitted on 256 training sentences (default); per-call: "
                        "K and V scales from each sentence, only the ADC windows frozen")
    p.add_argument("--key-policy", choices=["sequence-head", "channel"], default="channel",
                   help="frozen key scales: per head and channel folded into the query (default), or one per head")
    p.add_argument("--window", default="0.75,0.1",
                   help="ADC window top and bottom quantiles of the calibration rows' best and k-th best scores "
                        "(default 0.75,0.1)")
    p.add_argument("--artefact", default=None, help="calibration artefact of the chips in topkima mode (default: the "
                   "committed one; e.g. calibration/sky130_calibration.json, the sky130 design's)")
    p.add_argument("--chip-variant", default="as-characterised", choices=list(_chip_variants()),
                   help="a what-if chip in topkima mode (as lm-eval's; topkima.studies.circuit_whatif)")
    _add_executor_arguments(p)
    p.set_defaults(func=cmd_attention)
    p = sub.add_parser("lm-eval", help="SmolLM2-135M with Topkima attention: perplexity on real text, ranges frozen "
                       "from other windows")
    p.add_argument("--tokens", type=int, choices=[256, 512, 1024], default=256, help="tokens per window (default 256)")
    p.add_argument("--windows", type=_positive_int, default=4, help="evaluated windows (as many others fit the ranges)")
    p.add_argument("--k", default="5", help="keys kept per row, a comma-separated list (default 5)")
    p.add_argument("--modes", default="all",
                   help="comma-separated subset of exact,float-topk,quantized,topk,subtopk,topkima (default all)")
    p.add_argument("--chips", type=_positive_int, default=3, help="chips (mismatch draws) in topkima mode (default 3)")
    p.add_argument("--key-policy", choices=["sequence-head", "channel"], default="channel",
                   help="frozen key scales: per head and channel folded into the query (default), or one per head")
    p.add_argument("--window", default="1.0,0.0",
                   help="ADC window top and bottom quantiles of the calibration rows' best and k-th best scores "
                        "(default 1.0,0.0: every calibration row inside the window)")
    p.add_argument("--chip-variant", default="as-characterised",
                   choices=list(_chip_variants()),
                   help="a what-if chip: the artefact's spreads scaled, or its ramp lengthened to 64 or 128 steps, "
                        "in memory (topkima.studies.circuit_whatif; behavioural what-ifs, not SPICE-calibrated); "
                        "offset-trimmed: the comparators trimmed as topkima calibrate-trim characterised them")
    p.add_argument("--set", choices=["eval", "select"], default="eval",
                   help="eval (default): score windows 0…n-1, fit ranges on n…2n-1, chips 0…; select: the selection "
                        "set for choosing policies, never evidence: windows 2n…3n-1, ranges on 3n…4n-1, chips 10…")
    p.add_argument("--artefact", default=None,
                   help="calibration artefact of the chips in topkima mode (default: the committed one), e.g. another "
                        "design's from topkima calibrate --design; --chip-variant then scales its spreads")
    p.add_argument("--out", default="out/lm-eval", help="folder for summary.json, the plot and resumable runs")
    _add_executor_arguments(p)
    p.set_defaults(func=cmd_lm_eval)


    p = sub.add_parser("finetune", help="fine-tune MiniLM with TFCBP + QAT (and dense), then evaluate it on the chip "
                                        "(needs the [train] extra: pip install -e '.[train]')")
    p.add_argument("--training", default="dense,tfcbp,hwaware",
                   help="comma-separated trainings: dense, tfcbp (TFCBP + QAT), hwaware (TFCBP + QAT + the chip's "
                        "score errors) (default all three)")
    p.add_argument("--k", type=int, default=5, help="keys kept per query row in the TFCBP forward (default 5)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="split, head initialisation and data order")
    p.add_argument("--epochs", type=_positive_float, default=1.0, help="passes over the training sentences")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="sentences per step (default 32)")
    p.add_argument("--checkpoint-every", type=_positive_int, default=None, help="steps between checkpoints (default 25)")
    p.add_argument("--train-limit", type=_positive_int, default=None, help="train on a seeded subset of N sentences")
    p.add_argument("--test-limit", type=_positive_int, default=None, help="evaluate on a seeded subset of N sentences")
    p.add_argument("--chips", type=_positive_int, default=3, help="chips in topkima mode (default 3)")
    p.add_argument("--eval-k", type=_positive_int, action="append", default=None,
                   help="more k of the evaluation of dense and tfcbp, beyond --k (repeat, e.g. "
                        "--eval-k 1 --eval-k 2 --eval-k 10 --eval-k 20 for the k sweep; default none)")
    p.add_argument("--quick", action="store_true", help="a small subset: ≤ 5 min on 2 cores")
    p.add_argument("--no-eval", action="store_true", help="train (and save the weights) only")
    p.add_argument("--workers", type=_nonneg_int, default=2, help="evaluation processes (default 2; 0: this process)")
    p.add_argument("--out", default="out/finetune", help="folder for checkpoints, models and summary.json")
    p.set_defaults(func=cmd_finetune)
    p = sub.add_parser("report", help="one command from SPICE calibration to the accelerator estimate: an HTML report")
    p.add_argument("--quick", action="store_true",
                   help="quick calibration, 300 sentences, few Monte Carlo instances (≈10 min on 2 cores)")
    p.add_argument("--out", default="out/report", help="folder for index.html and each stage's outputs")
    p.add_argument("--workers", type=_positive_int, default=2, help="parallel ngspice / Monte Carlo workers")
    p.add_argument("--stages", default=None,
                   help="comma-separated subset of calibration,golden,attention,montecarlo,accelerator")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("accelerator", help="whole-accelerator estimate (TOPS, TOPS/W, breakdowns) and the "
                       "softmax-macro and published-accelerator comparisons")
    p.add_argument("--model", default="bert-base", help="bert-base (default), distilbert, vit-b16 or minilm")
    p.add_argument("--seq-len", type=_positive_int, default=None, help="sequence length (default: the model's)")
    p.add_argument("--config", default="paper", help="a preset name (paper, paper-pwm62) or a TOML file")
    p.add_argument("--out", default="out/accelerator", help="folder for summary.json, tables, CSVs and plots")
    p.add_argument("--alpha", type=_positive_float, default=None, help="early-stop fraction α to use (skips measuring it)")
    p.add_argument("--alpha-from", default=None, help="read α from a `topkima attention` summary.json")
    p.add_argument("--alpha-sequences", type=_positive_int, default=4, help="packed sequences to measure α on (default 4)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="chip, noise and sentence-order seed of the α run")
    p.add_argument("--artefact", default=None, help="the macro's calibration artefact (default: the committed one; "
                   "e.g. calibration/sky130_calibration.json); needs --alpha or --alpha-from")
    p.set_defaults(func=cmd_accelerator)


    p = sub.add_parser("montecarlo", help="Monte Carlo variation study: chip instances over σ multipliers, "
                       "code error, top-k recall, α, INL/DNL, MiniLM probe accuracy, SPICE vs model")
    p.add_argument("--instances", type=_positive_int, default=None, help="chip instances per σ (default 100; quick 16)")
    p.add_argument("--sigma-scale", type=_sigma_list, default=None, metavar="LIST",
                   help="comma-separated σ multipliers of the artefact's spreads (default 0,0.5,1,1.5,2; quick 0,1,2)")
    p.add_argument("--k", type=_positive_int, default=None, help="keys kept per query row (default 5)")
    p.add_argument("--seed", type=_nonneg_int, default=None, help="root seed of every draw (default 0)")
    p.add_argument("--queries", type=_positive_int, default=None, help="query rows of the workload (default 1024; quick 256)")
    p.add_argument("--accuracy-instances", type=_nonneg_int, default=None,
                   help="chips per σ for the MiniLM probe accuracy (default 2; quick 1; 0 = no accuracy study; "
                        "each costs ~20 s per 200 sentences)")
    p.add_argument("--accuracy-sentences", type=_int_at_least(10), default=None,
                   help="VADER test sentences per accuracy run (default 200; quick 100)")
    p.add_argument("--spice-instances", type=_nonneg_int, default=None,
                   help="model instances for the SPICE comparison (default 16; quick 8; 0 = skip)")
    p.add_argument("--quick", action="store_true", help="the small configuration (16 instances, σ × 0, 1, 2, 256 rows)")
    p.add_argument("--workers", type=_nonneg_int, default=2, help="local worker processes (0: run in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed scheduler (tcp://host:8786) instead of local workers")
    p.add_argument("--scheduler-timeout", type=_positive_float, default=5.0,
                   help="seconds to try reaching the scheduler (default 5)")
    p.add_argument("--out", default="out/montecarlo", help="folder for summary.json, figures and instances/")
    p.set_defaults(func=cmd_montecarlo)
    p = sub.add_parser("sweep", help="design sweep: calibrate each point of a grid of design changes; unit step, "
                       "cell σ, LSB, INL/DNL, SA offset σ, energy, T_arb, top-k recall (docs/design.md)")
    p.add_argument("--design", default="topkima-65nm", help="base design: preset name or TOML design file")
    p.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2,…",
                   help="a varied design field and its values, e.g. read_port.l_m=240e-9,480e-9 (repeatable: "
                        "the points are the product)")
    p.add_argument("--quick", action="store_true", help="quick calibrations (fewer Monte Carlo samples and sweep points)")
    p.add_argument("--corner", default="tt", help="process corner of every calibration")
    p.add_argument("--mc", type=_int_at_least(2), default=None, help="Monte Carlo samples per block (default 24 quick, 200 full)")
    p.add_argument("--seed", type=_nonneg_int, default=2024, help="root seed of the calibrations and the recall workload")
    p.add_argument("--workers", type=_nonneg_int, default=2, help="local SPICE worker processes per calibration")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the points on a Dask distributed scheduler (tcp://host:8786; workers with --nthreads 1)")
    p.add_argument("--scheduler-timeout", type=_positive_float, default=5.0,
                   help="seconds to try reaching the scheduler (default 5)")
    p.add_argument("--out", default="out/sweep", help="folder for summary.json, plots/, points/ and the SPICE cache")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("summary", help="print the figures of a calibration artefact, or of two side by side")
    p.add_argument("artefact", nargs="*", default=[],
                   help="artefact file (default: the committed default); two files: side by side")
    p.set_defaults(func=cmd_summary)
    threads_help = ("threads of the behavioural macro's kernels (default: $TOPKIMA_THREADS, else every core; "
                    "results do not depend on it)")
    parser.add_argument("--threads", type=_thread_count, default=None, help=threads_help)
    for p in sub.choices.values():     # also accepted after the command
        p.add_argument("--threads", type=_thread_count, default=argparse.SUPPRESS, help=threads_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        from topkima.behavioral.macro import set_threads
        set_threads(args.threads)
    from topkima.studies.allocator import keep_freed_memory
    keep_freed_memory()   # long numerical runs: reuse freed temporaries instead of re-faulting them
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
