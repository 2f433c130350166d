"""Commands that run real transformer models through the chip: `attention` (MiniLM on VADER),
`lm-eval` (SmolLM2 perplexity), `finetune` (TFCBP and hardware-aware training)."""
from __future__ import annotations

import sys

from topkima.commands.arguments import (add_executor_arguments, av_full_scale_policy, chip_variants, nonneg_int,
                                       positive_float, positive_int, window_quantiles)


def cmd_attention(args) -> int:
    """MiniLM with Topkima attention on the VADER movie-review probe (see topkima.studies.attention_eval)."""
    from topkima.behavioral.minilm import WeightsMissingError
    from topkima.calibration import ArtefactError
    from topkima.studies.attention_eval import EVAL_MODES, AttentionEvalConfig, run_evaluation
    modes = EVAL_MODES if args.mode == "all" else (args.mode,)
    try:
        top_q, bottom_q = window_quantiles(args.window)
        config = AttentionEvalConfig(k=args.k, modes=modes, limit=args.limit, seed=args.seed, sweep=not args.no_sweep,
                                     chips=args.chips, ranges=args.ranges, key_policy=args.key_policy,
                                     window_top_quantile=top_q, window_bottom_quantile=bottom_q,
                                     av_full_scale=args.av_full_scale)
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


def cmd_lm_eval(args) -> int:
    """SmolLM2 with Topkima attention: perplexity on real text (see topkima.studies.lm_eval)."""
    from topkima.behavioral.models.smollm2 import WeightsMissingError
    from topkima.studies.lm_eval import LM_MODES, LmEvalConfig, run_lm_eval
    try:
        ks = tuple(int(x) for x in args.k.split(","))
        modes = LM_MODES if args.modes == "all" else tuple(m.strip() for m in args.modes.split(","))
        top_q, bottom_q = window_quantiles(args.window)
        config = LmEvalConfig(tokens=args.tokens, windows=args.windows, ks=ks, modes=modes, chips=args.chips,
                              key_policy=args.key_policy, window_top_quantile=top_q, window_bottom_quantile=bottom_q,
                              text_set=args.set, key_order=args.key_order, readback=args.readback,
                              candidates=args.candidates, av_full_scale=args.av_full_scale,
                              av_adc_bits=args.av_adc_bits)
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


def add_parsers(sub) -> None:
    """Register `attention`, `lm-eval`, `finetune`."""
    p = sub.add_parser("attention", help="all-MiniLM-L6-v2 with Topkima attention on the VADER movie-review probe")
    p.add_argument("--k", type=positive_int, default=5, help="keys kept per query row (default 5)")
    p.add_argument("--mode", choices=["all", "quantized", "topk", "subtopk", "topkima"], default="all",
                   help="attention mode(s) compared with exact (default all)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only N sentences (70/30 of them for training/test; default all 10,072)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="split, chip mismatch and comparator-noise seed")
    p.add_argument("--out", default="out/attention", help="folder for summary.json, plots and resumable runs")
    p.add_argument("--no-sweep", action="store_true", help="skip the k sweep {1, 2, 5, 10, 20}")
    p.add_argument("--chips", type=positive_int, default=1,
                   help="chips in topkima mode, seeds SEED … SEED + N − 1 (default 1)")
    p.add_argument("--ranges", choices=["frozen", "per-call"], default="frozen",
                   help="frozen: every scale and ADC range fitted on 256 training sentences (default); per-call: "
                        "K and V scales from each sentence, only the ADC windows frozen")
    p.add_argument("--key-policy", choices=["sequence-head", "channel"], default="channel",
                   help="frozen key scales: per head and channel folded into the query (default), or one per head")
    p.add_argument("--window", default="0.75,0.1",
                   help="ADC window top and bottom quantiles of the calibration rows' best and k-th best scores "
                        "(default 0.75,0.1)")
    p.add_argument("--av-full-scale", type=av_full_scale_policy, default="max", metavar="POLICY",
                   help="frozen ranges: the A·V ADC's full scale per head, max (default) or a quantile of the "
                        "calibration outputs in (0, 1), e.g. 0.99 (as lm-eval's)")
    p.add_argument("--artefact", default=None, help="calibration artefact of the chips in topkima mode (default: the "
                   "committed one; e.g. calibration/sky130_calibration.json, the sky130 design's)")
    p.add_argument("--chip-variant", default="as-characterised", choices=list(chip_variants()),
                   help="a what-if chip in topkima mode (as lm-eval's; topkima.studies.circuit_whatif)")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_attention)
    p = sub.add_parser("lm-eval", help="SmolLM2-135M with Topkima attention: perplexity on real text, ranges frozen "
                       "from other windows")
    p.add_argument("--tokens", type=int, choices=[256, 512, 1024], default=256, help="tokens per window (default 256)")
    p.add_argument("--windows", type=positive_int, default=4, help="evaluated windows (as many others fit the ranges)")
    p.add_argument("--k", default="5", help="keys kept per row, a comma-separated list (default 5)")
    p.add_argument("--modes", default="all",
                   help="comma-separated subset of exact,float-topk,quantized,topk,subtopk,topkima (default all)")
    p.add_argument("--chips", type=positive_int, default=3, help="chips (mismatch draws) in topkima mode (default 3)")
    p.add_argument("--key-policy", choices=["sequence-head", "channel"], default="channel",
                   help="frozen key scales: per head and channel folded into the query (default), or one per head")
    p.add_argument("--window", default="1.0,0.0",
                   help="ADC window top and bottom quantiles of the calibration rows' best and k-th best scores "
                        "(default 1.0,0.0: every calibration row inside the window)")
    p.add_argument("--chip-variant", default="as-characterised",
                   choices=list(chip_variants()),
                   help="a what-if chip: the artefact's spreads scaled, or its ramp lengthened to 64 or 128 steps "
                        "(ramp256*: a 128-step artefact's steps doubled over the same swing), in memory "
                        "(topkima.studies.circuit_whatif; behavioural what-ifs, not SPICE-calibrated); "
                        "offset-trimmed: the comparators trimmed as topkima calibrate-trim characterised them")
    p.add_argument("--set", choices=["eval", "select"], default="eval",
                   help="eval (default): score windows 0…n-1, fit ranges on n…2n-1, chips 0…; select: the selection "
                        "set for choosing policies, never evidence: windows 2n…3n-1, ranges on 3n…4n-1, chips 10…")
    p.add_argument("--artefact", default=None,
                   help="calibration artefact of the chips in topkima mode (default: the committed one), e.g. another "
                        "design's from topkima calibrate --design; --chip-variant then scales its spreads")
    p.add_argument("--key-order", choices=["token", "newest-first"], default="token",
                   help="topkima mode: keys written into the array in token order (default; ties at the arbiter go "
                        "to the oldest key) or newest first (ties go to the newest)")
    p.add_argument("--readback", choices=["ramp-code", "exact"], default="ramp-code",
                   help="topkima mode: kept keys' scores from their ADC code (default) or recomputed exactly from "
                        "the k kept key rows (digital Q·K, a design option with its own cost)")
    p.add_argument("--candidates", type=positive_int, default=None, metavar="K_C",
                   help="topkima mode with --readback exact: the k-counter stops after K_C = k + m grants (≥ k) and "
                        "the k best exact scores among them are kept (default: k)")
    p.add_argument("--av-full-scale", type=av_full_scale_policy, default="max", metavar="POLICY",
                   help="the A·V ADC's frozen full scale per head: max (default: the calibration windows' largest "
                        "ideal |A·V| output) or a quantile of those outputs in (0, 1), e.g. 0.999; beyond it the ADC "
                        "clips at its end codes")
    p.add_argument("--av-adc-bits", type=int, default=5, metavar="BITS",
                   help="topkima mode: the A·V column ADC's signed bits (default 5, the paper's; others a "
                        "behavioural what-if)")
    p.add_argument("--out", default="out/lm-eval", help="folder for summary.json, the plot and resumable runs")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_lm_eval)
    p = sub.add_parser("finetune", help="fine-tune MiniLM with TFCBP + QAT (and dense), then evaluate it on the chip "
                                        "(needs the [train] extra: pip install -e '.[train]')")
    p.add_argument("--training", default="dense,tfcbp,hwaware",
                   help="comma-separated trainings: dense, tfcbp (TFCBP + QAT), hwaware (TFCBP + QAT + the chip's "
                        "score errors) (default all three)")
    p.add_argument("--k", type=int, default=5, help="keys kept per query row in the TFCBP forward (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="split, head initialisation and data order")
    p.add_argument("--epochs", type=positive_float, default=1.0, help="passes over the training sentences")
    p.add_argument("--batch-size", type=positive_int, default=None, help="sentences per step (default 32)")
    p.add_argument("--checkpoint-every", type=positive_int, default=None, help="steps between checkpoints (default 25)")
    p.add_argument("--train-limit", type=positive_int, default=None, help="train on a seeded subset of N sentences")
    p.add_argument("--test-limit", type=positive_int, default=None, help="evaluate on a seeded subset of N sentences")
    p.add_argument("--chips", type=positive_int, default=3, help="chips in topkima mode (default 3)")
    p.add_argument("--eval-k", type=positive_int, action="append", default=None,
                   help="more k of the evaluation of dense and tfcbp, beyond --k (repeat, e.g. "
                        "--eval-k 1 --eval-k 2 --eval-k 10 --eval-k 20 for the k sweep; default none)")
    p.add_argument("--quick", action="store_true", help="a small subset: ≤ 5 min on 2 cores")
    p.add_argument("--no-eval", action="store_true", help="train (and save the weights) only")
    p.add_argument("--workers", type=nonneg_int, default=2, help="evaluation processes (default 2; 0: this process)")
    p.add_argument("--out", default="out/finetune", help="folder for checkpoints, models and summary.json")
    p.set_defaults(func=cmd_finetune)
