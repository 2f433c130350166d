"""The one adapter between topkima and ngspice (PySpice 1.5, shared-library mode).

Everything that touches PySpice lives here, following the verified facts of
``shared/TOOLCHAIN.md``:

* one ``NgSpiceShared`` instance per process, created lazily, with
  ``set num_threads=1`` (Debian's BSIM4 OpenMP threads stall on a loaded machine);
* ``remove_circuit`` after every run so memory stays flat;
* success is decided from the plot and ngspice's own text, not from PySpice's
  exceptions (it raises for harmless notes and stays silent on some real errors);
* ``.meas`` results are parsed from ngspice's stdout;
* vectors are fetched once per plot and converted with ``np.asarray``.

Netlists reaching :func:`simulate` are built by the block modules from validated
numbers only (see :mod:`topkima.circuits.netlist`); no user text is ever
spliced in, and no ``.control`` block is ever sent.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

import numpy as np

#: Debian packages that provide ngspice, its code models and the shared library.
NGSPICE_PACKAGES = "ngspice libngspice0 libngspice0-dev"

#: Extra ``.options`` tried, in order, when a transient does not converge.
#: The first is ngspice's default (trapezoidal); then Gear integration, which
#: damps the trapezoidal ringing on stiff latch nodes; then Gear with relaxed
#: tolerances and a larger gmin (ngspice manual, ch. 11 "convergence").
CONVERGENCE_RETRIES: tuple[str, ...] = (
    "",
    ".options method=gear",
    ".options method=gear reltol=1e-3 abstol=1e-11 vntol=1e-5 gmin=1e-11 itl4=100",
)

_NONCONVERGENCE = re.compile(r"timestep too small|singular matrix|iteration limit|gmin stepping failed"
                             r"|source stepping failed|no convergence", re.IGNORECASE)
_MEAS_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")

_instance = None


class SpiceError(RuntimeError):
    """ngspice failed on a block's testbench; carries ngspice's own text."""

    def __init__(self, block: str, message: str, ngspice_output: str = ""):
        self.block = block
        self.ngspice_output = ngspice_output.strip()
        text = f"ngspice failed while simulating block '{block}': {message}"
        if self.ngspice_output:
            tail = "\n".join(self.ngspice_output.splitlines()[-25:])
            text += f"\n--- ngspice said ---\n{tail}"
        super().__init__(text)


class NgspiceMissingError(SpiceError):
    """ngspice's shared library cannot be loaded."""

    def __init__(self, detail: str):
        super().__init__(
            "setup",
            "the ngspice shared library could not be loaded. Install the Debian packages "
            f"'{NGSPICE_PACKAGES}' (e.g. `sudo apt-get install -y {NGSPICE_PACKAGES}`), or run "
            "`make test`/`make demo`, which install them. The behavioural model still works "
            f"from the committed calibration artefact. ({detail})",
        )


class NonConvergenceError(SpiceError):
    """A transient did not converge even with every option in CONVERGENCE_RETRIES."""


@dataclass
class SimResult:
    """What one ngspice run produced: vectors of the last plot and ``.meas`` values."""

    vectors: dict[str, np.ndarray]
    measures: dict[str, float] = field(default_factory=dict)
    stdout: str = ""

    def v(self, node: str) -> np.ndarray:
        """Voltage of ``node`` (case-insensitive) as a float array."""
        key = node.lower()
        for name in (key, f"v({key})"):
            if name in self.vectors:
                return self.vectors[name]
        raise KeyError(f"no vector for node '{node}'; have {sorted(self.vectors)[:20]}...")

    @property
    def time(self) -> np.ndarray:
        return self.vectors["time"]


def instance():
    """This process's ngspice instance (created on first use, single-threaded)."""
    global _instance
    if _instance is not None:
        return _instance
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared
        ns = NgSpiceShared.new_instance()
    except (OSError, ImportError) as exc:
        raise NgspiceMissingError(str(exc)) from exc
    ns.exec_command("set num_threads=1")
    _instance = ns
    return ns


def ngspice_version() -> str:
    """ngspice's version string as reported by the loaded library (e.g. '39')."""
    ns = instance()
    text = ns.exec_command("version -s")
    match = re.search(r"ngspice-(\S+)", text)
    return match.group(1) if match else text.strip().splitlines()[0]


def _output(ns) -> str:
    return "\n".join(list(ns._stdout) + list(ns._stderr))


def _run_once(ns, netlist: str, block: str) -> SimResult:
    from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError

    ns.exec_command("destroy all")
    try:
        ns.load_circuit(netlist)
    except NgSpiceCircuitError:
        raise SpiceError(block, "the netlist did not load", _output(ns)) from None
    loaded_text = _output(ns)
    if re.search(r"error|unknown|could not find|can't find", loaded_text, re.IGNORECASE) and \
            "circuit not parsed" in loaded_text.lower():
        raise SpiceError(block, "the netlist did not parse", loaded_text)
    try:
        ns.exec_command("run")
    except (NgSpiceCommandError, NameError):
        pass  # decided below from the plot and the text (TOOLCHAIN pitfall 3)
    text = _output(ns)
    try:
        plot_name = ns.last_plot
    except Exception:  # noqa: BLE001 - PySpice raises bare errors when no plot exists
        plot_name = None
    if not plot_name or plot_name == "const":
        if _NONCONVERGENCE.search(text):
            raise NonConvergenceError(block, "the simulation did not converge", text)
        raise SpiceError(block, "the simulation produced no results", loaded_text + "\n" + text)
    plot = ns.plot(None, plot_name)
    vectors = {name.lower(): np.array(np.asarray(vec._data).real, dtype=float) for name, vec in plot.items()}
    if "time" in vectors:
        tstop = _tran_stop(netlist)
        if tstop is not None and vectors["time"][-1] < tstop * (1 - 1e-6):
            if _NONCONVERGENCE.search(text):
                raise NonConvergenceError(block, "the transient stopped early (no convergence)", text)
            raise SpiceError(block, f"the transient stopped at {vectors['time'][-1]:.4g} s of {tstop:.4g} s", text)
    measures = _parse_measures(netlist, ns.stdout)
    return SimResult(vectors=vectors, measures=measures, stdout=text)


def _tran_stop(netlist: str) -> float | None:
    match = re.search(r"^\s*\.tran\s+(\S+)\s+(\S+)", netlist, re.IGNORECASE | re.MULTILINE)
    return spice_number(match.group(2)) if match else None


_SUFFIX = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "meg": 1e6, "g": 1e9, "t": 1e12}


def spice_number(text: str) -> float:
    """Parse a SPICE number with an engineering suffix ('4n', '1.5meg', '2e-9')."""
    match = re.fullmatch(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(meg|[fpnumkgt])?[a-z]*", text.strip().lower())
    if not match:
        raise ValueError(f"not a SPICE number: {text!r}")
    return float(match.group(1)) * _SUFFIX.get(match.group(2) or "", 1.0)


def _parse_measures(netlist: str, stdout: str) -> dict[str, float]:
    names = {m.lower() for m in re.findall(r"^\s*\.meas(?:ure)?\s+\w+\s+(\w+)", netlist, re.IGNORECASE | re.MULTILINE)}
    found = {}
    for line in stdout.splitlines():
        match = _MEAS_LINE.match(line)
        if match and match.group(1).lower() in names:
            found[match.group(1).lower()] = float(match.group(2))
    return found


def simulate(netlist: str, block: str) -> SimResult:
    """Run one netlist in this process's ngspice and return its vectors and measures.

    Non-convergence is retried with each entry of :data:`CONVERGENCE_RETRIES`
    (inserted before ``.end``); a netlist error raises :class:`SpiceError` with
    ngspice's own message and ``block`` named.
    """
    ns = instance()
    last_error: SpiceError | None = None
    try:
        for options in CONVERGENCE_RETRIES:
            text = netlist if not options else _with_options(netlist, options)
            try:
                result = _run_once(ns, text, block)
            except NonConvergenceError as exc:
                last_error = exc
                try:
                    ns.remove_circuit()  # each retry loads a new circuit: drop the failed one
                except Exception:  # noqa: BLE001 - nothing to remove is fine
                    pass
                continue
            if "measure" in netlist.lower() or ".meas" in netlist.lower():
                missing = _parse_missing(netlist, result)
                if missing:
                    raise SpiceError(block, f"measurement(s) {', '.join(missing)} failed", result.stdout)
            return result
    finally:
        try:
            ns.remove_circuit()
        except Exception:  # noqa: BLE001 - nothing loaded is fine
            pass
        ns.exec_command("destroy all")
    raise NonConvergenceError(block, "no convergence after retries with "
                              + "; ".join(o or "defaults" for o in CONVERGENCE_RETRIES), last_error.ngspice_output)


def _parse_missing(netlist: str, result: SimResult) -> list[str]:
    names = [m.lower() for m in re.findall(r"^\s*\.meas(?:ure)?\s+\w+\s+(\w+)", netlist, re.IGNORECASE | re.MULTILINE)]
    return [n for n in names if n not in result.measures]


def _with_options(netlist: str, options: str) -> str:
    lines = netlist.rstrip().splitlines()
    if lines and lines[-1].strip().lower() == ".end":
        return "\n".join(lines[:-1] + [options, ".end"]) + "\n"
    return netlist.rstrip() + "\n" + options + "\n.end\n"
