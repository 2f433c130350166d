"""topkima: a simulator for analog in-memory transformer accelerators (Topkima-Former).

Subpackages: ``circuits`` (ngspice/PySpice characterisation), ``netlists`` (SPICE text),
``calibration`` (the artefact), ``behavioral`` (the fast numpy model). ``topkima.cli`` is
the command line.
"""
