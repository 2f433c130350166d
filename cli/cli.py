"""The `topkima` command line: the parser (each command family registers its own commands, in
`topkima.commands`) and `main`."""
from __future__ import annotations

import argparse
import sys

from topkima.commands import calibration, golden, models, studies
from topkima.commands.arguments import thread_count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="topkima", description="Topkima-Former macro simulator: SPICE "
                                     "characterisation, calibrated behavioural model, accelerator estimates.")
    sub = parser.add_subparsers(dest="command", required=True)
    for family in (calibration, golden, models, studies):
        family.add_parsers(sub)
    threads_help = ("threads of the behavioural macro's kernels (default: $TOPKIMA_THREADS, else every core; "
                    "results do not depend on it)")
    parser.add_argument("--threads", type=thread_count, default=None, help=threads_help)
    for p in sub.choices.values():     # also accepted after the command
        p.add_argument("--threads", type=thread_count, default=argparse.SUPPRESS, help=threads_help)
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
