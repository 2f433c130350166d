"""Input-referred noise of the comparator: an estimate from SPICE quantities.

ngspice has no BSIM4 device noise in transient analysis, so :func:`noise_estimate`
combines two SPICE results by linear time-varying noise theory (white noise through a
time-varying impulse sensitivity, as in P. Nuzzo, F. De Bernardinis, P. Terreni, G. Van
der Plas, "Noise analysis of regenerative comparators for reconfigurable ADC
architectures", IEEE TCAS-I 55(6):1441-1454, 2008, who integrate the input pair's noise
over the comparator's integration phase): (1) the comparator's sensitivity g(tau) to a
short voltage pulse on one input gate at time tau, by bisection in transients; (2) the
gate-referred white-noise density of the input transistor at its bias at tau, from
ngspice's own BSIM4 ``.noise`` analysis. sigma^2 = integral of S_v(tau) * g(tau)^2 dtau
over the evaluation, plus the kT/C noise frozen on the four reset nodes when the reset
opens. Flicker noise and the noise of the latch devices during regeneration are left
out (Nuzzo et al. find the input pair's integration-phase noise dominant).
"""
from __future__ import annotations

import math

import numpy as np

from topkima.circuits import spice
from topkima.circuits.comparator import BLOCK, DEVICE_BY_NAME, checked_delvto, checked_in_range
from topkima.circuits.comparator_bench import (C_LOAD_F, NOISE_PULSE_EDGE_S, T_DECIDE_S, T_DELAY_S, VCM_V, bisect_flip,
                                              checked_conditions, checked_vcm, decides_outp, ideal_source_testbench,
                                              offset_sample)
from topkima.circuits.netlist import mos, num
from topkima.circuits.technology import comparator_size, model_lines

BOLTZMANN_J_PER_K = 1.380649e-23  #: exact (SI 2019)


# --- noise -------------------------------------------------------------------------------
#: Noise sensitivity probe: trapezoidal pulse on inp (height V, flat width s, edges 2 ps).
#: 20 mV is small against the input pair's ≈ 0.2 V overdrive (linear), large enough that
#: its input-referred effect (≈ 1 mV) is 500× the bisection resolution NOISE_TOL_V.
NOISE_PULSE_V = 0.02
NOISE_PULSE_WIDTH_S = 8e-12
NOISE_TOL_V = 2e-6
#: Spacing of the probe times (s); the sensitivity varies on a ≈ 100 ps scale.
NOISE_TAU_STEP_S = 15e-12
NOISE_TAU_STEP_QUICK_S = 30e-12
#: Frequency band of the ``.noise`` runs (Hz): white channel noise, far above the
#: flicker corner, where the input transistor's gate admittance is still ≪ its gm.
NOISE_BAND_HZ = (1e9, 1.1e9)


def _gate_noise_psd(vcm_v: float, v_source_v: float, v_drain_v: float, v_bulk_v: float, delvto_v: float,
                    temperature_c: float) -> tuple[float, float]:
    """Gate-referred white noise density (V²/Hz, one-sided) and gm (S) of the input device.

    ngspice ``.noise`` of one PMOS of the input pair's size at the given terminal
    voltages (BSIM4 channel thermal noise, ``tnoimod = 0`` in the PTM card).
    """
    d = DEVICE_BY_NAME["mip"]
    f1, f2 = NOISE_BAND_HZ
    net = "\n".join([
        "* topkima comparator: input-device noise density",
        *model_lines(),
        f".temp {num(temperature_c, 'temperature')}",
        f"vsrc s 0 dc {num(v_source_v)}",
        f"vbulk b 0 dc {num(v_bulk_v)}",
        f"vgate g 0 dc {num(vcm_v)} ac 1",
        f"vdrain d 0 dc {num(v_drain_v)}",
        "hsense out 0 vdrain 1",
        mos("m1", "d", "g", "s", "b", d.model, *comparator_size(d.name), delvto_v),
        f".noise v(out) vgate lin 2 {num(f1)} {num(f2)}",
        ".end",
    ]) + "\n"
    res = spice.simulate(net, BLOCK)
    onoise, inoise = float(res.vectors["onoise_total"][0]), float(res.vectors["inoise_total"][0])
    band = f2 - f1
    return inoise ** 2 / band, (onoise / inoise if inoise > 0 else 0.0)


def noise_estimate(vcm_v: float = VCM_V, delvto_v: dict | None = None, vdd_v: float = 1.0,
                   temperature_c: float = 27.0, c_load_f: float = C_LOAD_F,
                   tau_step_s: float = NOISE_TAU_STEP_S) -> dict:
    """Input-referred noise σ (V) of the comparator: an estimate from SPICE quantities.

    Not a transient noise simulation (ngspice has none for BSIM4 devices here). The
    comparator is treated as a linear time-varying system up to its decision:

    1. Sensitivity: a short pulse of area A (V·s) on inp at time τ shifts the
       balance point by ``-g(τ)·A``; g (1/s) is found by bisection in transients.
    2. Input-pair channel noise, referred to the gate: white, one-sided density
       S_v(τ) (V²/Hz) from ngspice ``.noise`` of the input device at its terminal
       voltages at τ (taken from a balanced transient).
    3. Two independent devices, each with two-sided density S_v/2 through the same
       |g|: ``σ_th² = ∫ S_v(τ)·g(τ)² dτ``.
    4. Reset noise: ``kT·C`` of charge left on each of xn, ln (and xp, lp) when the
       reset opens, referred through the charge sensitivity ``h = g/gm`` at the
       input device's peak gm: ``σ_rst² = 2·kT·(C_x + C_l)·h²``, with C_x, C_l from
       the node slopes of the balanced transient (C = I / dV/dt).

    Also returned: the first-order ``4kTγ/∫gm dt`` (γ from the same ``.noise``),
    integrated from the clock edge to the latch NMOS turn-on, for comparison.
    Left out: flicker noise and the latch devices' noise (the input pair's
    integration-phase noise dominates: Nuzzo et al., IEEE TCAS-I 55(6), 2008).
    """
    vdd_v, temperature_c, c_load_f = checked_conditions(vdd_v, temperature_c, c_load_f)
    vcm_v = checked_vcm(vcm_v, vdd_v)
    shifts = checked_delvto(delvto_v)
    tau_step_s = checked_in_range(tau_step_s, "tau_step_s", 2e-12, 100e-12)
    kt_j = BOLTZMANN_J_PER_K * (temperature_c + 273.15)

    # balanced transient: operating point along the evaluation
    vos = offset_sample(shifts, [vcm_v], vdd_v, temperature_c, c_load_f, tol_v=NOISE_TOL_V)["offset_v"][0]
    saves = [".save v(clk) v(xsa.tail) v(xsa.xn) v(xsa.ln) @m.xsa.mip[gm] @m.xsa.mip[id] @m.xsa.mln[id] "
             "@m.xsa.mnn[vth]"]
    net = ideal_source_testbench(vcm_v=vcm_v, vdiff_v=vos, delvto_v=shifts, vdd_v=vdd_v, temperature_c=temperature_c,
                     c_load_f=c_load_f, t_stop_s=T_DELAY_S + T_DECIDE_S, t_max_s=1e-12, saves=saves)
    op = spice.simulate(net, BLOCK)
    t = op.time
    tail, xn, ln = op.v("xsa.tail"), op.v("xsa.xn"), op.v("xsa.ln")
    gm = np.abs(op.vectors["@m.xsa.mip[gm]"])
    id_in = np.abs(op.vectors["@m.xsa.mip[id]"])
    id_latch = np.abs(op.vectors["@m.xsa.mln[id]"])
    vthn = float(np.median(op.vectors["@m.xsa.mnn[vth]"]))

    # node capacitances from slopes: C = I / (dV/dt)
    dxn, dln = np.gradient(xn, t), np.gradient(ln, t)
    win_x = (xn > 0.1 * vdd_v) & (xn < 0.3 * vdd_v) & (id_latch < 0.05 * id_in) & (dxn > 0)
    win_l = (ln > 0.05 * vdd_v) & (ln < 0.5 * vthn) & (dln > 0)
    if not win_x.any() or not win_l.any():
        raise spice.SpiceError(BLOCK, "noise estimate: the balanced transient has no clean integration phase")
    c_x_f = float(np.median(id_in[win_x] / dxn[win_x]))
    c_l_f = float(np.median(id_latch[win_l] / dln[win_l]))

    # first-order estimate window: clock edge to the latch NMOS turn-on
    t_on = float(t[np.flatnonzero(ln >= vthn)[0]]) if (ln >= vthn).any() else float(t[-1])
    sel = (t >= T_DELAY_S) & (t <= t_on)
    gm_integral_c_per_v = float(np.trapezoid(gm[sel], t[sel]))

    # sensitivity g(τ) and gate noise density S_v(τ)
    area_v_s = NOISE_PULSE_V * (NOISE_PULSE_WIDTH_S + NOISE_PULSE_EDGE_S)
    taus, g_per_s, s_v, gm_tau = [], [], [], []
    tau = T_DELAY_S
    g_max = 0.0
    while tau < T_DELAY_S + T_DECIDE_S - 0.2e-9:
        t0 = tau - NOISE_PULSE_WIDTH_S / 2 - NOISE_PULSE_EDGE_S
        pulse = (t0, NOISE_PULSE_V, NOISE_PULSE_WIDTH_S)
        bal, _ = bisect_flip(lambda vd: decides_outp(vcm_v, vd, shifts, vdd_v, temperature_c, c_load_f, pulse),
                              0.002, NOISE_TOL_V)
        g = -(bal - vos) / area_v_s
        k = min(int(np.searchsorted(t, tau)), len(t) - 1)
        psd, gm_n = _gate_noise_psd(vcm_v, float(tail[k]), float(xn[k]), vdd_v, shifts.get("mip", 0.0),
                                    temperature_c)
        taus.append(tau)
        g_per_s.append(g)
        s_v.append(psd)
        gm_tau.append(gm_n)
        g_max = max(g_max, abs(g))
        if g_max > 0 and abs(g) < 0.02 * g_max and len(taus) > 3:
            break  # the latch has taken over: later noise no longer matters
        tau += tau_step_s
    taus_a, g_a, s_a, gm_noise_a = map(np.asarray, (taus, g_per_s, s_v, gm_tau))
    gm_a = np.interp(taus_a, t, gm)  # the input device's gm in the transient at each τ
    # A device that is off has a huge gate-referred density but no g; skip it (its
    # product would only add bisection round-off).
    on = gm_a > 0.1 * gm_a.max()
    integrand = np.where(on, s_a * g_a ** 2, 0.0)
    var_th = float(np.sum(integrand) * tau_step_s)
    i_pk = int(np.argmax(gm_a))
    h_v_per_c = abs(g_a[i_pk]) / gm_a[i_pk]
    var_rst = 2 * kt_j * (c_x_f + c_l_f) * h_v_per_c ** 2
    gamma = float(s_a[i_pk] * gm_noise_a[i_pk] / (4 * kt_j))
    var_first = 4 * kt_j * gamma / gm_integral_c_per_v
    return {
        "vcm_v": vcm_v,
        "sigma_noise_v": math.sqrt(var_th + var_rst),
        "sigma_thermal_v": math.sqrt(var_th),
        "sigma_reset_v": math.sqrt(var_rst),
        "sigma_first_order_v": math.sqrt(var_first),
        "gamma_eff": gamma,
        "gm_integral_c_per_v": gm_integral_c_per_v,
        "c_x_f": c_x_f,
        "c_l_f": c_l_f,
        "tau_s": [float(x) for x in taus_a],
        "g_per_s": [float(x) for x in g_a],
        "s_v_v2_per_hz": [float(x) for x in s_a],
        "gm_a_per_v": [float(x) for x in gm_a],
        "offset_v": vos,
    }
