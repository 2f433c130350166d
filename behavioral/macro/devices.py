"""One chip's frozen devices: per-cell read-stack currents, replica cells, comparator offsets.

Each read stack's current factor m = I/I₀ follows from the threshold shifts of its access and
storage devices through the artefact's log-ratio fit (:meth:`MacroParams.current_factor`); a
replica cell's, pulsed for a few units, through the pulsed charge's fit where the artefact has it
(:meth:`MacroParams.replica_factor`); a pulsed read stack storing 1 takes a little more per pulse
during its wordline's edges (:meth:`MacroParams.pulse_edge_units`); the shifts themselves are drawn
from Pelgrom's σ (``sigma_vth_read_v``). A comparator's offset is the
artefact's linear model of its device shifts at each characterised common mode, plus the
residual the linear model leaves; between those common modes it is piecewise linear. In the
column the latch decides at a threshold a little off that ideal-source offset (it senses floating,
kicked bitlines after a history of decisions): where the artefact holds the SPICE-measured
in-column threshold (``comparator.in_column``), its constant shift and the extra sensitivity of
each device are added (:func:`topkima.behavioral.params.in_column_threshold`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from topkima.behavioral.macro.arrays import N_STACKS
from topkima.behavioral.params import MacroParams


@dataclass(frozen=True)
class TileDraws:
    """Frozen mismatch of one array's columns (threshold shifts in V, and SA offsets)."""

    mac_dvt_v: np.ndarray    #: (n_cols, rows, 4, 2): access, storage device of each read stack
    cal_dvt_v: np.ndarray    #: (n_cols, 32, 2): replica cells of the calibration phase
    ramp_dvt_v: np.ndarray   #: (n_cols, 32, 2): replica cells of the ramp
    sa_offset_v: np.ndarray  #: (n_cols, n_vcm): each comparator's offset at the artefact's CM grid


#: the most inner common modes (segment boundaries) of a comparator's offset model: the kernels
#: pick a segment with this many compares, a constant count they unroll (the artefact's model has 1)
MAX_VCM_BREAKS = 6


class ArrayDevices(NamedTuple):
    """What the kernels read of one array's devices (an ADC window does not change them)."""

    m_stack: np.ndarray       #: (rows, 4, n_cols) current factor of each read stack (float32, as the MAC)
    dvt_access_v: np.ndarray  #: (rows, 4, n_cols) its access device's threshold shift (float32)
    dvt_storage_v: np.ndarray  #: (rows, 4, n_cols) its storage device's threshold shift (float32)
    m_cal: np.ndarray         #: (n_cols, 32) calibration replica cells
    m_ramp: np.ndarray        #: (n_cols, n_steps) ramp replica cells
    #: (MAX_VCM_BREAKS,) inner common modes of the offset model (segment boundaries), increasing, then
    #: +inf (never below a common mode: no segment beyond the model's)
    vcm_breaks_v: np.ndarray
    v_os_at_0_v: np.ndarray   #: (n_cols, n_seg) offset line per segment: V_os = a + b·CM …
    v_os_per_v: np.ndarray    #: (n_cols, n_seg) … its slope b
    v_os_mid_v: np.ndarray    #: (n_cols,) offset at CM = 0.35 V (the crossing search's first guess)
    #: (2,) units a read stack storing 1 takes per pulse beyond its DC factor, per V of its access and
    #: storage shifts (its wordline's edges: :meth:`MacroParams.pulse_edge_units`; float32, as the MAC,
    #: which multiplies them with the shifts it reads anyway)
    edge_units_per_v: np.ndarray
    #: (n_cols,) the largest |b| over each column's segments (0 for none): derived from ``v_os_per_v``
    #: by :func:`array_devices`; a copy that replaces ``v_os_per_v`` must derive it again
    v_os_slope_max_per_v: np.ndarray


def array_devices(p: MacroParams, n_cols: int, rows: int, draws: TileDraws | None) -> ArrayDevices:
    """The device tables of one array; ``draws=None``: nominal devices and no offset."""
    if draws is None:
        m_stack = np.ones((rows, N_STACKS, n_cols))
        dvt_a = dvt_s = np.zeros((rows, N_STACKS, n_cols))
        m_cal, m_ramp = np.ones((n_cols, p.n_cal_rows)), np.ones((n_cols, p.n_ramp_steps))
        v_os = np.zeros((n_cols, p.sa_vcm_v.size))
    else:
        d = np.asarray(draws.mac_dvt_v, float)
        m_stack = np.transpose(p.current_factor(d[..., 0], d[..., 1]), (1, 2, 0))
        dvt_a = np.transpose(d[..., 0], (1, 2, 0))
        dvt_s = np.transpose(d[..., 1], (1, 2, 0))
        m_cal = p.replica_factor(draws.cal_dvt_v[..., 0], draws.cal_dvt_v[..., 1])
        m_ramp = p.replica_factor(draws.ramp_dvt_v[..., 0], draws.ramp_dvt_v[..., 1])[:, : p.n_ramp_steps]
        v_os = np.asarray(draws.sa_offset_v, float).reshape(n_cols, p.sa_vcm_v.size)
    g = p.sa_vcm_v
    if g.size > MAX_VCM_BREAKS + 2 or not np.all(np.diff(g) > 0.0):      # (NaN fails too)
        raise ValueError(f"the comparator offset model's common modes ({g.tolist()} V) must increase and number at most "
                         f"{MAX_VCM_BREAKS + 2}: the kernels take at most {MAX_VCM_BREAKS} segment boundaries "
                         "(behavioral.macro.devices.MAX_VCM_BREAKS)")
    if g.size >= 2:
        slope = (v_os[:, 1:] - v_os[:, :-1]) / (g[1:] - g[:-1])
        at0 = v_os[:, :-1] - slope * g[:-1]
    else:   # one characterised common mode: a constant offset
        slope, at0 = np.zeros((n_cols, 1)), v_os[:, :1].copy()
    breaks = g[1:-1].copy()
    mid_seg = min(int(np.searchsorted(breaks, 0.35)), at0.shape[1] - 1)
    v_os_mid = at0[:, mid_seg] + slope[:, mid_seg] * 0.35
    # the MAC's cell terms are float32 (see .mac): its device factors are kept as it reads them
    cells = (np.ascontiguousarray(x, dtype=np.float32) for x in (m_stack, dvt_a, dvt_s))
    return ArrayDevices(*cells, *(np.ascontiguousarray(x, dtype=np.float64) for x in
                                  (m_cal, m_ramp, np.concatenate([breaks, np.full(MAX_VCM_BREAKS - breaks.size, np.inf)]),
                                   at0, slope, v_os_mid)),
                        np.asarray(p.pulse_edge_units_per_v, dtype=np.float32),
                        np.ascontiguousarray(np.fmax.reduce(np.abs(slope), axis=1, initial=0.0), dtype=np.float64))


def draw_tile(p: MacroParams, rng: np.random.Generator, n_cols: int, rows: int) -> TileDraws:
    """Every read port, replica cell and comparator device of one array, drawn (Pelgrom σ's)."""
    s = p.sigma_vth_read_v
    mac = rng.normal(0, s, (n_cols, rows, N_STACKS, 2))
    cal = rng.normal(0, s, (n_cols, p.n_cal_rows, 2))
    ramp = rng.normal(0, s, (n_cols, p.n_ramp_rows, 2))
    sa = rng.normal(0, 1, (n_cols, p.sa_device_sigma_vth_v.size)) * p.sa_device_sigma_vth_v
    residual = rng.normal(0, 1, (n_cols, 1)) * p.sa_residual_sigma_v  # what the linear model misses
    return TileDraws(mac, cal, ramp, sa_offsets(p, sa) + residual)


def sa_offsets(p: MacroParams, sa_dvt_v: np.ndarray) -> np.ndarray:
    """Comparator thresholds (n_cols, n_vcm) from device threshold shifts (n_cols, n_devices): the
    ideal-source offset's linear model at each common mode, plus the in-column shift (linear in the
    common mode, so exact between the grid's common modes) and extra sensitivities where the
    artefact has them."""
    dvt = np.asarray(sa_dvt_v, dtype=float)
    v_os = p.sa_intercept_v[None, :] + dvt @ p.sa_sensitivity.T
    if p.sa_in_column_extra_per_v is None:
        return v_os
    shift = p.sa_in_column_shift_v + p.sa_in_column_shift_per_v * (p.sa_vcm_v - p.sa_in_column_shift_vcm0_v)
    return v_os + shift[None, :] + (dvt @ p.sa_in_column_extra_per_v)[:, None]


def nominal_draws(p: MacroParams, n_cols: int, rows: int) -> TileDraws:
    """Nominal devices: no threshold shift, each comparator at the model's systematic offset."""
    return TileDraws(np.zeros((n_cols, rows, N_STACKS, 2)), np.zeros((n_cols, p.n_cal_rows, 2)),
                     np.zeros((n_cols, p.n_ramp_rows, 2)), sa_offsets(p, np.zeros((n_cols, len(p.sa_devices)))))


def tile_draws_from_columns(p: MacroParams, columns: list[dict], n_cols: int) -> TileDraws:
    """TileDraws from per-column device draws as stored by ``topkima golden`` (see its file);
    the array's columns beyond those given keep nominal devices."""
    mac = np.array([c["mac_dvt_v"] for c in columns], float)
    cal = np.array([c["cal_dvt_v"] for c in columns], float)
    ramp = np.array([c["ramp_dvt_v"] for c in columns], float)
    sa = np.array([[c["sa_dvt_v"].get(name, 0.0) for name in p.sa_devices] for c in columns])
    pad = n_cols - len(columns)
    if pad > 0:
        mac = np.concatenate([mac, np.zeros((pad, *mac.shape[1:]))])
        cal = np.concatenate([cal, np.zeros((pad, *cal.shape[1:]))])
        ramp = np.concatenate([ramp, np.zeros((pad, *ramp.shape[1:]))])
        sa = np.concatenate([sa, np.zeros((pad, sa.shape[1]))])
    return TileDraws(mac, cal, ramp, sa_offsets(p, sa))
