"""Commands of the studies: `report` (the one-page HTML report), `accelerator` (the whole-accelerator
estimate), `montecarlo` (the variation study)."""
from __future__ import annotations

import os
import sys

from topkima.commands.arguments import int_at_least, nonneg_int, positive_float, positive_int, sigma_list


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
                                    artefact=args.artefact, readback=args.readback,
                                    candidates=args.candidates)
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


def add_parsers(sub) -> None:
    """Register `report`, `accelerator`, `montecarlo`."""
    p = sub.add_parser("report", help="one command from SPICE calibration to the accelerator estimate: an HTML report")
    p.add_argument("--quick", action="store_true",
                   help="quick calibration, 300 sentences, few Monte Carlo instances (≈10 min on 2 cores)")
    p.add_argument("--out", default="out/report", help="folder for index.html and each stage's outputs")
    p.add_argument("--workers", type=positive_int, default=2, help="parallel ngspice / Monte Carlo workers")
    p.add_argument("--stages", default=None,
                   help="comma-separated subset of calibration,golden,attention,montecarlo,accelerator")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("accelerator", help="whole-accelerator estimate (TOPS, TOPS/W, breakdowns) and the "
                       "softmax-macro and published-accelerator comparisons")
    p.add_argument("--model", default="bert-base", help="bert-base (default), distilbert, vit-b16 or minilm")
    p.add_argument("--seq-len", type=positive_int, default=None, help="sequence length (default: the model's)")
    p.add_argument("--config", default="paper", help="a preset name (paper, paper-pwm62) or a TOML file")
    p.add_argument("--out", default="out/accelerator", help="folder for summary.json, tables, CSVs and plots")
    p.add_argument("--alpha", type=positive_float, default=None, help="early-stop fraction α to use (skips measuring it)")
    p.add_argument("--alpha-from", default=None, help="read α from a `topkima attention` summary.json")
    p.add_argument("--alpha-sequences", type=positive_int, default=4, help="packed sequences to measure α on (default 4)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="chip, noise and sentence-order seed of the α run")
    p.add_argument("--artefact", default=None, help="the macro's calibration artefact (default: the committed one; "
                   "e.g. calibration/sky130_calibration.json); needs --alpha or --alpha-from")
    p.add_argument("--readback", choices=["ramp-code", "exact"], default="ramp-code",
                   help="kept keys' scores from their ADC codes (default) or re-scored digitally from the k kept key "
                        "rows, with its cost per row (topkima.behavioral.accelerator.readback)")
    p.add_argument("--candidates", type=positive_int, default=None, metavar="K_C",
                   help="with --readback exact: the k-counter stops after K_C = k + m grants, K_C rows are re-scored "
                        "and a digital top-k keeps k (default: k); give the α measured with K_C (--alpha)")
    p.set_defaults(func=cmd_accelerator)
    p = sub.add_parser("montecarlo", help="Monte Carlo variation study: chip instances over σ multipliers, "
                       "code error, top-k recall, α, INL/DNL, MiniLM probe accuracy, SPICE vs model")
    p.add_argument("--instances", type=positive_int, default=None, help="chip instances per σ (default 100; quick 16)")
    p.add_argument("--sigma-scale", type=sigma_list, default=None, metavar="LIST",
                   help="comma-separated σ multipliers of the artefact's spreads (default 0,0.5,1,1.5,2; quick 0,1,2)")
    p.add_argument("--k", type=positive_int, default=None, help="keys kept per query row (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=None, help="root seed of every draw (default 0)")
    p.add_argument("--queries", type=positive_int, default=None, help="query rows of the workload (default 1024; quick 256)")
    p.add_argument("--accuracy-instances", type=nonneg_int, default=None,
                   help="chips per σ for the MiniLM probe accuracy (default 2; quick 1; 0 = no accuracy study; "
                        "each costs ~20 s per 200 sentences)")
    p.add_argument("--accuracy-sentences", type=int_at_least(10), default=None,
                   help="VADER test sentences per accuracy run (default 200; quick 100)")
    p.add_argument("--spice-instances", type=nonneg_int, default=None,
                   help="model instances for the SPICE comparison (default 16; quick 8; 0 = skip)")
    p.add_argument("--quick", action="store_true", help="the small configuration (16 instances, σ × 0, 1, 2, 256 rows)")
    p.add_argument("--workers", type=nonneg_int, default=2, help="local worker processes (0: run in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed scheduler (tcp://host:8786) instead of local workers")
    p.add_argument("--scheduler-timeout", type=positive_float, default=5.0,
                   help="seconds to try reaching the scheduler (default 5)")
    p.add_argument("--out", default="out/montecarlo", help="folder for summary.json, figures and instances/")
    p.set_defaults(func=cmd_montecarlo)
