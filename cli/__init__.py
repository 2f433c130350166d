"""topkima: a simulator for analog in-memory transformer accelerators (Topkima-Former).

Subpackages: ``circuits`` (ngspice/PySpice characterisation), ``netlists`` (SPICE text),
``calibration`` (the artefact), ``behavioral`` (the fast numba model), ``studies`` (Monte
Carlo, attention evaluation, accelerator estimate). ``topkima.cli`` is the command line and
``topkima.report`` its HTML report.
"""
