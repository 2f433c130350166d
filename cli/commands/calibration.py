"""Commands that characterise a design in ngspice and read the artefact: `calibrate`,
`calibrate-in-column`, `calibrate-in-column-devices`, `calibrate-replica-pulse`, `calibrate-mac-pulses`, `calibrate-droop`,
`calibrate-trim`, `sweep`, `summary`."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from topkima.commands.arguments import default_cache, int_at_least, nonneg_int, positive_float, positive_int


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


def _wrote(args, section: dict) -> str:
    """The tail of an artefact extension's report: where it wrote the artefact, and how long it took."""
    return f"wrote {args.out or args.artefact or 'the committed artefact'} ({section['provenance']['wall_time_s']} s)"


def _extend_artefact(command: str, add, args, **options):
    """Run an artefact extension (``add``: e.g. :func:`topkima.calibration.in_column.add_in_column_threshold`)
    with the command's common options; returns its section, or None after printing why it failed."""
    import shlex
    from topkima.calibration.artefact import ArtefactError
    from topkima.circuits.jobs import JobError
    from topkima.circuits.spice import SpiceError
    try:
        return add(args.artefact, args.out, workers=args.workers, cache_dir=args.cache, timeout_s=args.timeout,
                   command=" ".join(shlex.quote(a) for a in sys.argv), **options)
    except (ArtefactError, SpiceError, JobError, ValueError, RuntimeError) as exc:
        print(f"topkima {command}: {exc}", file=sys.stderr)
        return None


def cmd_calibrate_in_column_devices(args) -> int:
    from topkima.calibration.in_column_devices import add_in_column_devices
    section = _extend_artefact("calibrate-in-column-devices", add_in_column_devices, args)
    if section is None:
        return 1
    sens = ", ".join(f"{d} {1e3 * v:+.2f}" for d, v in section["sensitivity_v_per_v"].items())
    print(f"in-column threshold at CM {section['vcm_v']:.3f} V, cycle {section['cycle']}: "
          f"sensitivities (mV/V) {sens}; {_wrote(args, section)}", file=sys.stderr)
    return 0


def cmd_calibrate_replica_pulse(args) -> int:
    from topkima.calibration.replica_pulse import add_replica_pulse
    section = _extend_artefact("calibrate-replica-pulse", add_replica_pulse, args)
    if section is None:
        return 1
    fit = ", ".join(f"{t} {c:+.2f}" for t, c in zip(section["terms"], section["log_ratio_fit"]))
    chk = section["mc_check"]
    print(f"replica pulse ({section['t_pulse_units']} units, {section['n_cells']} cells): ln(Q/Q0) fit {fit}; "
          f"on {chk['n']} independent Monte Carlo draws the calibration drop's model - SPICE is "
          f"{1e6 * chk['pulse_fit']['mean_error_v']:+.1f} uV mean, {1e6 * chk['pulse_fit']['rms_error_v']:.1f} uV rms "
          f"(DC current fit: {1e6 * chk['dc_current_fit']['mean_error_v']:+.1f}, "
          f"{1e6 * chk['dc_current_fit']['rms_error_v']:.1f}); {_wrote(args, section)}", file=sys.stderr)
    return 0


def cmd_calibrate_mac_pulses(args) -> int:
    from topkima.calibration.mac_pulses import add_mac_pulses
    section = _extend_artefact("calibrate-mac-pulses", add_mac_pulses, args)
    if section is None:
        return 1
    a1, b1, a0, b0 = section["excess_units"]
    print(f"MAC pulses in the MAC phase ({len(section['runs'])} nominal runs, {section['n_bitlines']} bitlines fitted): "
          f"a pulse takes {a1:+.4f} {b1:+.4f}*ln(w) units less than its single-pulse charge (stored 1), "
          f"{a0:+.4f} {b0:+.4f}*ln(w) (stored 0); residual {section['rms_residual_units']:.4f} units rms "
          f"({section['rms_residual_without_units']:.4f} without the per-pulse terms); {_wrote(args, section)}",
          file=sys.stderr)
    return 0


def cmd_add_insitu_runs(args) -> int:
    import shlex
    from topkima.calibration.artefact import ArtefactError
    from topkima.calibration.insitu_runs import add_insitu_runs
    try:
        section = add_insitu_runs(args.artefact, args.golden, args.out,
                                  command=" ".join(shlex.quote(a) for a in sys.argv))
    except (ArtefactError, ValueError, OSError) as exc:
        print(f"topkima add-insitu-runs: {exc}", file=sys.stderr)
        return 1
    print(f"added {len(section['runs'])} nominal conversions of {args.golden} to the in-situ correction's runs "
          f"(column.insitu_extra); wrote {args.out or args.artefact or 'the committed artefact'}", file=sys.stderr)
    return 0


def cmd_calibrate_droop(args) -> int:
    from topkima.calibration.bitline_droop import add_bitline_droop
    section = _extend_artefact("calibrate-droop", add_bitline_droop, args)
    if section is None:
        return 1
    v, rel = section["v_rbl_v"], section["rate_rel"]
    print(f"bitline droop: {section['rate_at_v_ref_units_per_unit']:.5f} units per PWM unit at {section['v_ref_v']} V; "
          f"relative {rel[0]:.3f} at {v[0]:.3f} V … {rel[-1]:.3f} at {v[-1]:.3f} V ({len(v)} levels); "
          f"{_wrote(args, section)}", file=sys.stderr)
    return 0


def cmd_calibrate_in_column(args) -> int:
    from topkima.calibration.in_column import add_in_column_threshold
    section = _extend_artefact("calibrate-in-column", add_in_column_threshold, args)
    if section is None:
        return 1
    sens = ", ".join(f"{d} {1e3 * v:+.2f} mV/V" for d, v in section["sensitivity_v_per_v"].items())
    plane = section["nominal_shift"]
    print(f"in-column threshold at CM {section['vcm_v']:.3f} V, cycle {section['cycle']}: nominal "
          f"{1e3 * section['threshold_nominal_v']:+.3f} mV; shift beyond the ideal-source offset "
          f"{1e3 * plane['shift_v']:+.3f} mV at CM {plane['vcm0_v']:.3f} V, {1e3 * plane['per_v']:+.2f} mV/V of CM, "
          f"{1e6 * plane['per_cycle_v']:+.2f} µV per cycle (residual {1e6 * plane['residual_rms_v']:.1f} µV rms over "
          f"{plane['n_runs']} runs); sensitivities {sens}; {_wrote(args, section)}", file=sys.stderr)
    return 0


def cmd_calibrate_trim(args) -> int:
    from topkima.calibration.offset_trim import add_offset_trim
    section = _extend_artefact("calibrate-trim", add_offset_trim, args, n_samples=args.mc)
    if section is None:
        return 1
    sig = ", ".join(f"{1e3 * b['sigma_v']:.2f} mV at {b['vcm_v']:.2f} V" for b in section["by_vcm"])
    print(f"trimmed comparator offset ({section['n_samples']} instances, {section['n_clipped']} beyond the DAC): "
          f"σ {sig}; {_wrote(args, section)}", file=sys.stderr)
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


def _artefact_in_out(p) -> None:
    """The options of a command that extends an artefact: which one, and where the result goes."""
    p.add_argument("--artefact", type=Path, default=None, help="artefact to extend (default: the committed one)")
    p.add_argument("--out", type=Path, default=None, help="file to write (default: the artefact, in place)")


def _spice_jobs(p, timeout_s: float) -> None:
    """The options of a command that runs ngspice jobs through the resumable job cache."""
    p.add_argument("--workers", type=nonneg_int, default=1, help="worker processes (0: run in this process)")
    p.add_argument("--cache", type=Path, default=default_cache(), help="simulation cache folder (resumes interrupted runs)")
    p.add_argument("--timeout", type=positive_float, default=timeout_s, help="wall-clock limit per simulation job (s)")


def add_parsers(sub) -> None:
    """Register `calibrate`, `calibrate-in-column`, `calibrate-in-column-devices`, `calibrate-replica-pulse`,
    `calibrate-droop`, `calibrate-trim`, `sweep`, `summary`."""
    p = sub.add_parser("calibrate", help="characterise the macro's blocks in ngspice and write the calibration artefact")
    p.add_argument("--quick", action="store_true", help="fewer Monte Carlo samples and sweep points (≈2 min)")
    p.add_argument("--corner", default="tt", help="process corner for the analog blocks (tt, ss, ff, sf, fs)")
    p.add_argument("--design", default="topkima-65nm",
                   help="design preset name (topkima-65nm) or a TOML design file (docs/design.md)")
    p.add_argument("--mc", type=positive_int, default=None, help="Monte Carlo samples per block (default 24 quick, 200 full)")
    p.add_argument("--seed", type=nonneg_int, default=2024, help="root seed of every mismatch draw")
    p.add_argument("--out", default="calibration.json", help="artefact file to write (default ./calibration.json)")
    p.add_argument("--workers", type=nonneg_int, default=2, help="worker processes (0: run in this process)")
    p.add_argument("--cache", type=Path, default=default_cache(), help="simulation cache folder (resumes interrupted runs)")
    p.add_argument("--timeout", type=positive_float, default=None, help="wall-clock limit per simulation job (s)")
    p.add_argument("--no-summary", action="store_true", help="do not print the summary")
    p.set_defaults(func=cmd_calibrate)
    p = sub.add_parser("calibrate-in-column", help="measure the comparator's threshold inside the column in ngspice "
                       "and add it to an artefact (comparator.in_column; the model then uses it)")
    _artefact_in_out(p)
    _spice_jobs(p, timeout_s=3600.0)
    p.set_defaults(func=cmd_calibrate_in_column)
    p = sub.add_parser("calibrate-in-column-devices", help="measure the in-column threshold's sensitivity to every "
                       "other sense-amplifier device in ngspice and add it to an artefact (comparator.in_column_devices; "
                       "needs comparator.in_column)")
    _artefact_in_out(p)
    _spice_jobs(p, timeout_s=3600.0)
    p.set_defaults(func=cmd_calibrate_in_column_devices)
    p = sub.add_parser("calibrate-replica-pulse", help="measure the replica cells' pulsed charge against their devices' "
                       "threshold shifts in ngspice and add the fit to an artefact (column.replica_pulse; the model then "
                       "scales calibration and ramp cells by it)")
    _artefact_in_out(p)
    _spice_jobs(p, timeout_s=600.0)
    p.set_defaults(func=cmd_calibrate_replica_pulse)
    p = sub.add_parser("calibrate-mac-pulses", help="measure in ngspice what a MAC pulse takes in the MAC phase "
                       "itself (nominal devices, 120 runs) and add it to an artefact (column.mac_pulses; the model "
                       "then corrects its per-pulse charge by it)")
    _artefact_in_out(p)
    _spice_jobs(p, timeout_s=600.0)
    p.set_defaults(func=cmd_calibrate_mac_pulses)
    p = sub.add_parser("add-insitu-runs", help="add the fit-nominal golden set's nominal conversions to the runs the "
                       "in-situ correction is fitted to (column.insitu_extra)")
    p.add_argument("--golden", type=Path, default=Path("calibration/fit_nominal_conversions.json"),
                   help="the fit-nominal golden file (default calibration/fit_nominal_conversions.json)")
    _artefact_in_out(p)
    p.set_defaults(func=cmd_add_insitu_runs)
    p = sub.add_parser("calibrate-droop", help="measure the read bitlines' droop (idle-stack leakage) against their "
                       "level in ngspice and add it to an artefact (column.bitline_droop; the model then uses it)")
    _artefact_in_out(p)
    _spice_jobs(p, timeout_s=600.0)
    p.set_defaults(func=cmd_calibrate_droop)
    p = sub.add_parser("calibrate-trim", help="trim the comparator's offset in ngspice (a capacitor DAC set at power-up) "
                       "and add the residual to an artefact (comparator.offset_trim; --chip-variant offset-trimmed uses it)")
    _artefact_in_out(p)
    p.add_argument("--mc", type=int_at_least(64), default=72,
                   help="latch instances trimmed (default 72; at least 64: the trimmed offset's 23-term linear model over-fits fewer)")
    _spice_jobs(p, timeout_s=600.0)
    p.set_defaults(func=cmd_calibrate_trim)
    p = sub.add_parser("sweep", help="design sweep: calibrate each point of a grid of design changes; unit step, "
                       "cell σ, LSB, INL/DNL, SA offset σ, energy, T_arb, top-k recall (docs/design.md)")
    p.add_argument("--design", default="topkima-65nm", help="base design: preset name or TOML design file")
    p.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2,…",
                   help="a varied design field and its values, e.g. read_port.l_m=240e-9,480e-9 (repeatable: "
                        "the points are the product)")
    p.add_argument("--quick", action="store_true", help="quick calibrations (fewer Monte Carlo samples and sweep points)")
    p.add_argument("--corner", default="tt", help="process corner of every calibration")
    p.add_argument("--mc", type=int_at_least(2), default=None, help="Monte Carlo samples per block (default 24 quick, 200 full)")
    p.add_argument("--seed", type=nonneg_int, default=2024, help="root seed of the calibrations and the recall workload")
    p.add_argument("--workers", type=nonneg_int, default=2, help="local SPICE worker processes per calibration")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the points on a Dask distributed scheduler (tcp://host:8786; workers with --nthreads 1)")
    p.add_argument("--scheduler-timeout", type=positive_float, default=5.0,
                   help="seconds to try reaching the scheduler (default 5)")
    p.add_argument("--out", default="out/sweep", help="folder for summary.json, plots/, points/ and the SPICE cache")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("summary", help="print the figures of a calibration artefact, or of two side by side")
    p.add_argument("artefact", nargs="*", default=[],
                   help="artefact file (default: the committed default); two files: side by side")
    p.set_defaults(func=cmd_summary)
