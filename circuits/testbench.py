"""Netlist lines shared by the cell-level testbenches (``netlists/digital.sp`` cells and the
ramp timing generator of ``netlists/ramp_timing.sp``).

Every value goes through :func:`~topkima.circuits.netlist.num` or
:func:`~topkima.circuits.netlist.ident`, so nothing but numbers and known identifiers
reaches a netlist.
"""
from __future__ import annotations

from topkima.circuits.corners import Corner
from topkima.circuits.netlist import ident, num
from topkima.circuits.technology import model_lines, subckt_include


def corner_header(title: str, corner: Corner, netlists: tuple[str, ...]) -> list[str]:
    """Title line, model card and cell files, the corner's threshold shifts (``dvn``/``dvp``,
    passed to every cell instance by :func:`instance`) and its temperature."""
    return [title, *model_lines(corner.name), *(subckt_include(f) for f in netlists),
            f".param dvn={num(corner.delvto_n(), 'delvto_n')} dvp={num(corner.delvto_p(), 'delvto_p')}",
            f".options temp={num(corner.temperature_c, 'temperature')}"]


def instance(name: str, nodes: list[str], cell: str, **sizes: float) -> str:
    """A subcircuit instance ``x<name>`` with the corner parameters passed down."""
    line = " ".join([ident("x" + name, "instance")] + [ident(n, "node") for n in nodes] + [ident(cell, "cell")])
    line += " dvn={dvn} dvp={dvp}"
    for key, value in sizes.items():
        line += f" {ident(key, 'parameter')}={num(value, key)}"
    return line


def dc_source(name: str, node: str, value_v: float) -> str:
    """A DC voltage source from ``node`` to ground."""
    return f"{ident(name, 'source')} {ident(node, 'node')} 0 {num(value_v, name)}"


def pwl_source(name: str, node: str, v_high: float, initial: int, edges: list[tuple[float, int]],
               t_edge_s: float) -> str:
    """An ideal digital PWL source: ``initial`` level (0/1), then (time, new level) steps of ``t_edge_s``."""
    points = [(0.0, initial * v_high)]
    level = initial
    for t, new in sorted(edges):
        if t <= points[-1][0]:
            raise ValueError(f"edges of {name} are closer than the edge time")
        points.append((t, level * v_high))
        points.append((t + t_edge_s, new * v_high))
        level = new
    text = " ".join(f"{num(t, 'time')} {num(v, 'level')}" for t, v in points)
    return f"{ident(name, 'source')} {ident(node, 'node')} 0 pwl({text})"


def charge_meas(name: str, source: str, t_from: float, t_to: float) -> str:
    """``.meas`` of the charge through ``source`` between two times (``INTEG i(source)``)."""
    return f".meas tran {ident(name)} INTEG i({ident(source)}) FROM={num(t_from)} TO={num(t_to)}"


def energy_drawn_j(q_c: float, v: float) -> float:
    """Energy drawn from a supply of ``v`` whose ``INTEG i(v)`` is ``q_c`` (a source's current is negative)."""
    return -v * q_c
