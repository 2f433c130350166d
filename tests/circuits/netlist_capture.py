"""Capture the first netlist of every kind of calibration job without running ngspice.

Used by tests/circuits/test_netlist_identity.py: the 65 nm preset's netlists must stay
byte-identical while the technology becomes a design choice. Each job of the quick plan is run
with ``spice.simulate`` replaced by a function that records the netlist and stops the job; the
installed netlist folder is replaced by ``<netlists>`` so the record does not depend on where the
package lives. ``python tests/circuits/netlist_capture.py OUT.json`` writes the record.
"""
from __future__ import annotations

import hashlib
import json
import sys
from unittest import mock


class _Captured(Exception):
    def __init__(self, netlist: str):
        self.netlist = netlist


def _stop(netlist, *args, **kwargs):
    raise _Captured(netlist)


def capture(design_name: str = "topkima-65nm") -> dict[str, str]:
    """``{job label: sha256 of its first netlist}`` for one job of each measurement function
    (the first of each function in the quick plan) and each corner."""
    from topkima.calibration.calibrate import plan_all
    from topkima.circuits import digital_arbiter, digital_counters, spice
    from topkima.circuits.design import load_design
    from topkima.circuits.jobs import run_job
    from topkima.circuits.netlist import netlist_dir
    from topkima.circuits.settings import CalSettings

    settings = CalSettings(quick=True, design=load_design(design_name))
    seen, out = set(), {}
    folder = str(netlist_dir())
    with mock.patch.object(spice, "simulate", _stop), mock.patch.object(digital_arbiter, "simulate", _stop), \
            mock.patch.object(digital_counters, "simulate", _stop):
        for block_jobs in plan_all(settings).values():
            for job in block_jobs:
                kind = (job.fn, job.kwargs.get("corner_name"))
                if kind in seen:
                    continue
                seen.add(kind)
                try:
                    run_job(job)
                except _Captured as cap:
                    text = cap.netlist.replace(folder, "<netlists>")
                    out[job.label] = hashlib.sha256(text.encode()).hexdigest()
    return out


if __name__ == "__main__":
    record = capture()
    with open(sys.argv[1], "w") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(len(record), "netlists")
