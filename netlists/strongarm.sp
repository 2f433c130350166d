* sa_strongarm: PMOS-input StrongARM latch comparator (one per column), topkima.
*
* Pins:   inp inn clk outp outn vdd vss
* Clock:  clk high = evaluate, clk low = reset (an internal inverter makes clkb).
* Output: after evaluation outp = vdd iff V(inp) > V(inn), outn the complement.
*         During reset BOTH outputs are low (vss): return-to-zero, so "outp or outn
*         high" means "decided".
* Models: ptm65_nmos / ptm65_pmos from ptm65nm_bulk.lib, which the TESTBENCH
*         includes (this file does not). Supply: v_sa = 1.0 V (PTM nominal).
*
* Topology (flipped StrongARM, e.g. B. Razavi, "The StrongARM Latch", IEEE
* Solid-State Circuits Magazine 7(2):12-17, 2015, with all devices complemented):
*   clk -> inverter (mckp/mckn) -> clkb
*   mtail        PMOS tail switch vdd -> tail, gate clkb (on while clk high)
*   mip / min    PMOS input pair, sources on tail; mip (gate inp) feeds side N,
*                min (gate inn) feeds side P. A PMOS pair conducts with the read
*                bitlines at 0.1 ... 0.5 V, where an NMOS pair would be near cut-off
*                (TOOLCHAIN pitfall 10).
*   mlp / mln    PMOS cross-coupled pair, sources on xp / xn, drains lp / ln
*   mnp / mnn    NMOS cross-coupled pair, lp / ln to vss
*   mrxp mrxn mrlp mrln   NMOS reset switches to vss on xp xn lp ln, gate clkb
*   cnkp / cnkn  3.5 fF from inp / inn to clkb, and cxkp / cxkn 2.4 fF from inp to
*                xp / inn to xn (the other side's drain): kickback neutralisation (below)
*   lp -> inverter -> lpb -> inverter -> outp  (and ln -> lnb -> outn). The first
*         inverter is skewed (strong P, weak long N: switching point well above the
*         ~0.45 V the latch nodes share while undecided), so the outputs do not
*         glitch and the inverters draw little crowbar current while metastable.
* Evaluation: inp > inn -> min carries more current -> xp, then lp, rises first ->
*   lp regenerates to vdd, ln to vss -> outp = vdd.
*
* Kickback and the bitlines (the inputs are two FLOATING read bitlines, ~170 fF each).
*   When clk rises, the tail jumps from its reset level (~ V(in) + |Vth|) to near
*   vdd, the input devices' channels form and their drains rise: their gate charge
*   goes negative and each bitline is kicked UP. Without neutralisation: +79 / +38 mV
*   common mode at Vcm = 0.15 / 0.45 V during evaluation, given back in reset
*   (residue +1.2 ... +2.2 mV common mode after the first cycle only; differential
*   residue < 10 uV after a fired or a not-fired decision: no history effect).
*   Measured (circuits/comparator.py, floating-input bench) it matters in two ways:
*   (a) with unequal bitline capacitances the common-mode kick turns differential:
*       -0.33 / -0.19 mV of threshold per 1 % imbalance (Vcm 0.15 / 0.45 V);
*   (b) an instance decides on floating inputs at a threshold that differs from its
*       ideal-source offset: the common mode during integration is not the set one
*       (the offset depends on Vcm), the input devices carry unequal overdrives and
*       channel charge at the balance point when the offset is not theirs, and a
*       latch mismatch makes the drains xp/xn part early and couples back through
*       the input devices' Cgd. Worst of the 200-sample Monte Carlo: -0.48 ... +0.32
*       mV (instance with the largest latch-PMOS mismatch, Vcm 0.15 ... 0.45 V).
*   Remedy chosen: kickback NEUTRALISATION with linear capacitors (P. M. Figueiredo,
*   J. C. Vital, "Kickback noise reduction techniques for CMOS latched comparators",
*   IEEE TCAS-II 53(7):541-545, 2006): common mode, cnkp / cnkn 3.5 fF from each
*   input to clkb (clkb falls with the clk edge and pulls charge off each bitline
*   while the input pair pushes charge on); differential, cxkp / cxkn 2.4 fF from each
*   input to the OTHER input device's drain (~ the input device's Cgd: overlap
*   cgdo.W = 1.2 fF plus the LDD overlap), so a drain difference reaches both gates
*   alike. Metal capacitors: no threshold mismatch, no static current. Values from
*   a sweep over 2-sigma instances at Vcm 0.15 / 0.45 V (largest in-situ deviation,
*   mV): (cn, cx) = (0, 0) 0.65; (3.5, 0) 0.37 ... 0.47; (5.5, 0) 0.63; (3.5, 1.2)
*   0.36; (3.5, 2.4) 0.27; (3.5, 3.6) 0.26; (2, 3.6) 0.40; (5, 3.6) 0.30. The clkb
*   step is instant while the kick builds over ~0.3 ns, so more cn overshoots.
*   Result (full plan): in-situ deviation -0.26 ... +0.30 mV on the same worst
*   instances, (a) -0.19 / -0.06 mV per %. Cost: input load 16.6 fF in reset
*   (10.7 fF without), +11 fJ per cycle, clk-to-out +20 ... +50 ps.
*   Alternatives weighed: a source-follower buffer pair (bootstrapped, little kick)
*   needs a static current (~40 fJ per 4 ns cycle per follower at 10 uA) and shifts
*   0.15 ... 0.5 V up to ~0.55 ... 0.9 V, leaving no headroom for its current source
*   at the top; a double-tail latch keeps the same clocked PMOS input pair, hence the
*   same channel-charge kick; a smaller input pair trades kick for offset
*   (kick ~ W.L, sigma ~ 1/sqrt(W.L)); input dummies would cancel the channel charge
*   but add their own threshold mismatch (~0.4 mV rms of in-situ-only error).
*   NOTE on simulation: the decision of this latch needs a transient step <= ~20 ps
*   (or reltol <= 1e-4): with ngspice's default reltol and a 0.1 ns step cap the
*   threshold came out wrong by up to 12 mV, ideal sources or not.
*
* Sizes (W/L in um) and why. Offset shares below are input-referred sigma of each
* mirror pair at Vcm = 0.35 / 0.15 V, from circuits/comparator.py (1.0 V, 27 C):
*   mip, min   8 / 0.2   offset first: Pelgrom sigma_Vth = 3.5 mV.um/sqrt(W.L)
*              = 2.8 mV per device, 3.9 mV for the pair (A_VT: circuits/mismatch.py).
*              Share 4.6 / 4.9 mV: BSIM4 delvto also raises mobility (mobmod = 0), so
*              1 mV of delvto acts like ~1.17 mV on the gate. L = 0.2 um raises gm/Id,
*              i.e. the integration gain that divides the latch devices' mismatch.
*   mlp, mln   4 / 0.06  latch PMOS (share 1.7 / 3.9 mV). Their Vth decides when the
*              latch takes over from the integrating xp/xn nodes, so their mismatch
*              enters divided by that gain; at low Vcm the input pair leaves
*              saturation early and the gain drops. Wide and short (strong) more than
*              halved their share at Vcm = 0.15 V against 2 / 0.12 um (9.0 mV);
*              longer L was worse (slower latch, longer exposure).
*   mnp, mnn   1 / 0.12  latch NMOS (share 1.3 / 1.6 mV).
*   mtail      2 / 0.06  tail switch: a weaker tail lowers the input pair's overdrive
*              (more gain, less latch offset) at some delay (4 um: ~60 ps faster at
*              1 mV, total sigma +0.7 mV at Vcm = 0.15 V).
*   reset      0.5 / 0.06 (four switches); clock inverter 2 / 1 um (P / N), L = 0.06.
*   buffers    first P 1.2 / 0.06, N 0.3 / 0.12 (skewed, see above; cut ~20 % of the
*              energy per decision against a 2:1 inverter); second P 1.2 / 0.06,
*              N 0.6 / 0.06. Reset switches and buffers add < 0.1 mV of offset.
* Measured (tt, 27 C, 2 fF loads, full plan): total offset sigma 5.5 mV at
* Vcm = 0.35 V and 6.9 mV at 0.15 V (200-sample Monte Carlo, ideal sources);
* clk-to-out 0.45 ns at 1 mV, 0.40 ns at 10 mV (Vcm = 0.35 V; 0.97 / 0.88 ns at
* 0.5 V); 0.128 pJ per 4 ns clock cycle at 10 mV (no static current; the
* neutralisation capacitors included); input-referred noise ~0.31 mV rms. On 170 fF
* floating inputs: threshold within 0.30 mV of the ideal-source offset for the two
* most mismatched of the 200 instances (latch / input pair), Vcm 0.15 ... 0.45 V,
* first decision and after 3 not-fired ones; input load 16.6 fF in reset, 40 ... 45
* fF latched.
* Junction geometry follows circuits/netlist.py mos(): diffusion 0.15 um each side,
* AD = AS = W*0.15u, PD = PS = 2*(W+0.15u).
*
* Parameters: dvt_<device> (V) is added to that device's BSIM4 vth0 (delvto): its
* local mismatch plus the corner's global shift. Note the sign convention of
* circuits/corners.py: a PMOS has negative vth0, so a slower PMOS has negative
* delvto. Keep the device list in sync with DEVICES in circuits/comparator.py
* (tests/test_comparator.py checks it).

.subckt sa_strongarm inp inn clk outp outn vdd vss
+ params: dvt_mckp=0 dvt_mckn=0 dvt_mtail=0 dvt_mip=0 dvt_min=0
+ dvt_mlp=0 dvt_mln=0 dvt_mnp=0 dvt_mnn=0
+ dvt_mrxp=0 dvt_mrxn=0 dvt_mrlp=0 dvt_mrln=0
+ dvt_mb1pp=0 dvt_mb1pn=0 dvt_mb2pp=0 dvt_mb2pn=0
+ dvt_mb1np=0 dvt_mb1nn=0 dvt_mb2np=0 dvt_mb2nn=0

* clock inverter
mckp clkb clk vdd vdd ptm65_pmos w=2e-6 l=6e-8 ad=3e-13 as=3e-13 pd=4.3e-6 ps=4.3e-6 delvto={dvt_mckp}
mckn clkb clk vss vss ptm65_nmos w=1e-6 l=6e-8 ad=1.5e-13 as=1.5e-13 pd=2.3e-6 ps=2.3e-6 delvto={dvt_mckn}

* tail switch and input pair
mtail tail clkb vdd vdd ptm65_pmos w=2e-6 l=6e-8 ad=3e-13 as=3e-13 pd=4.3e-6 ps=4.3e-6 delvto={dvt_mtail}
mip xn inp tail vdd ptm65_pmos w=8e-6 l=2e-7 ad=1.2e-12 as=1.2e-12 pd=1.63e-5 ps=1.63e-5 delvto={dvt_mip}
min xp inn tail vdd ptm65_pmos w=8e-6 l=2e-7 ad=1.2e-12 as=1.2e-12 pd=1.63e-5 ps=1.63e-5 delvto={dvt_min}

* cross-coupled latch
mlp lp ln xp vdd ptm65_pmos w=4e-6 l=6e-8 ad=6e-13 as=6e-13 pd=8.3e-6 ps=8.3e-6 delvto={dvt_mlp}
mln ln lp xn vdd ptm65_pmos w=4e-6 l=6e-8 ad=6e-13 as=6e-13 pd=8.3e-6 ps=8.3e-6 delvto={dvt_mln}
mnp lp ln vss vss ptm65_nmos w=1e-6 l=1.2e-7 ad=1.5e-13 as=1.5e-13 pd=2.3e-6 ps=2.3e-6 delvto={dvt_mnp}
mnn ln lp vss vss ptm65_nmos w=1e-6 l=1.2e-7 ad=1.5e-13 as=1.5e-13 pd=2.3e-6 ps=2.3e-6 delvto={dvt_mnn}

* reset switches (on while clk low)
mrxp xp clkb vss vss ptm65_nmos w=5e-7 l=6e-8 ad=7.5e-14 as=7.5e-14 pd=1.3e-6 ps=1.3e-6 delvto={dvt_mrxp}
mrxn xn clkb vss vss ptm65_nmos w=5e-7 l=6e-8 ad=7.5e-14 as=7.5e-14 pd=1.3e-6 ps=1.3e-6 delvto={dvt_mrxn}
mrlp lp clkb vss vss ptm65_nmos w=5e-7 l=6e-8 ad=7.5e-14 as=7.5e-14 pd=1.3e-6 ps=1.3e-6 delvto={dvt_mrlp}
mrln ln clkb vss vss ptm65_nmos w=5e-7 l=6e-8 ad=7.5e-14 as=7.5e-14 pd=1.3e-6 ps=1.3e-6 delvto={dvt_mrln}

* output buffers, P side: lp -> lpb -> outp
mb1pp lpb lp vdd vdd ptm65_pmos w=1.2e-6 l=6e-8 ad=1.8e-13 as=1.8e-13 pd=2.7e-6 ps=2.7e-6 delvto={dvt_mb1pp}
mb1pn lpb lp vss vss ptm65_nmos w=3e-7 l=1.2e-7 ad=4.5e-14 as=4.5e-14 pd=9e-7 ps=9e-7 delvto={dvt_mb1pn}
mb2pp outp lpb vdd vdd ptm65_pmos w=1.2e-6 l=6e-8 ad=1.8e-13 as=1.8e-13 pd=2.7e-6 ps=2.7e-6 delvto={dvt_mb2pp}
mb2pn outp lpb vss vss ptm65_nmos w=6e-7 l=6e-8 ad=9e-14 as=9e-14 pd=1.5e-6 ps=1.5e-6 delvto={dvt_mb2pn}

* output buffers, N side: ln -> lnb -> outn
mb1np lnb ln vdd vdd ptm65_pmos w=1.2e-6 l=6e-8 ad=1.8e-13 as=1.8e-13 pd=2.7e-6 ps=2.7e-6 delvto={dvt_mb1np}
mb1nn lnb ln vss vss ptm65_nmos w=3e-7 l=1.2e-7 ad=4.5e-14 as=4.5e-14 pd=9e-7 ps=9e-7 delvto={dvt_mb1nn}
mb2np outn lnb vdd vdd ptm65_pmos w=1.2e-6 l=6e-8 ad=1.8e-13 as=1.8e-13 pd=2.7e-6 ps=2.7e-6 delvto={dvt_mb2np}
mb2nn outn lnb vss vss ptm65_nmos w=6e-7 l=6e-8 ad=9e-14 as=9e-14 pd=1.5e-6 ps=1.5e-6 delvto={dvt_mb2nn}

* kickback neutralisation (see the header). Metal-finger capacitors: no threshold,
* so nothing here mismatches at the threshold-voltage level.
* common mode: clkb falls as the tail switch turns on and pulls charge out of each
* input while the input pair's forming channel and rising drains push charge in.
cnkp inp clkb 3.5e-15
cnkn inn clkb 3.5e-15
* differential: each input also sees the OTHER input device's drain, so a drain
* difference (xp - xn) couples to both gates alike (cancels the input devices' Cgd).
cxkp inp xp 2.4e-15
cxkn inn xn 2.4e-15

.ends sa_strongarm
