* topkima digital periphery: counters, AER arbiter cell, address encoder
* ======================================================================
* Transistor-level static CMOS on the PTM 65 nm bulk cards (ptm65_nmos / ptm65_pmos,
* include ptm65nm_bulk.lib first). Digital supply 0.8 V (SPEC §2: the paper characterises
* arbiter, encoder and counter at SS, 0.8 V).
*
* Conventions for every cell
*   - ports: inputs, outputs, then vdd vss; NMOS bulk to vss, PMOS bulk to vdd.
*   - params: dvn, dvp = global threshold shifts (BSIM4 delvto) of every NMOS / PMOS,
*     passed down the hierarchy unchanged. This is how process corners are applied
*     (topkima.circuits.corners: a slow PMOS needs a NEGATIVE dvp). Default 0 = tt.
*   - L = 65 nm drawn on every device (the node's drawn length; the PTM card's xl/lint
*     shrink it to the effective length). Diffusion geometry as in
*     topkima.circuits.netlist.mos(): AD = AS = W*0.15um, PD = PS = 2*(W + 0.15um).
*   - Unit sizing: Wn = 200 nm, Wp = 300 nm. Wp/Wn = 1.5 roughly balances rise and fall
*     at 0.8 V on these cards (FO16 chain: tphl 98 ps, tplh 114 ps at tt, measured while
*     choosing). Series stacks are doubled (NAND2 NMOS 400 nm, NOR2 PMOS 600 nm) so every
*     gate drives about like the unit inverter. The basic gates take wn/wp parameters so a
*     caller can size a particular instance (the arbiter outputs and the encoder tree do).
*
* Cells: inv, nand2, nor2, aoi22, tgate, dffr (flip-flop with reset), cnt5 (ramp-cycle
* counter), kcnt5 (grant counter with early stop), arb2 (2-input AER arbiter cell),
* enc8 (8-input one-hot -> 3-bit address encoder slice).

* ----------------------------------------------------------------------
* inv: y = not a
* ----------------------------------------------------------------------
.subckt inv a y vdd vss params: dvn=0 dvp=0 wn=200n wp=300n
mn y a vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp y a vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends inv

* ----------------------------------------------------------------------
* nand2: y = not (a and b). Series NMOS at 2x unit width.
* ----------------------------------------------------------------------
.subckt nand2 a b y vdd vss params: dvn=0 dvp=0 wn=400n wp=300n
mn1 y a n1 vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn2 n1 b vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp1 y a vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp2 y b vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends nand2

* ----------------------------------------------------------------------
* nor2: y = not (a or b). Series PMOS at 2x unit width.
* ----------------------------------------------------------------------
.subckt nor2 a b y vdd vss params: dvn=0 dvp=0 wn=200n wp=600n
mn1 y a vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn2 y b vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp1 p1 a vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp2 y b p1 vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends nor2

* ----------------------------------------------------------------------
* aoi22: y = not (a.b + c.d). One complex gate, 8 transistors.
* Used as a single-level XOR when both polarities are available:
*   xor(p, q) = aoi22(p, q, pb, qb)   (= not(p.q + pb.qb))
* Two-high stacks in both networks, so 2x unit widths everywhere.
* ----------------------------------------------------------------------
.subckt aoi22 a b c d y vdd vss params: dvn=0 dvp=0 wn=400n wp=600n
mn1 y a na vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn2 na b vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn3 y c nc vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn4 nc d vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp1 pm a vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp2 pm b vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp3 y c pm vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp4 y d pm vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends aoi22

* ----------------------------------------------------------------------
* tgate: transmission gate a <-> y, conducting when en = 1 (enb = 0). Unit sizes.
* ----------------------------------------------------------------------
.subckt tgate a y en enb vdd vss params: dvn=0 dvp=0 wn=200n wp=300n
mn a en y vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp a enb y vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends tgate

* ----------------------------------------------------------------------
* dffr: static master-slave transmission-gate D flip-flop, rising-edge, asynchronous
* active-high reset (q = 0). 30 transistors.
*   ckb = not clk, ck = not ckb            local two-phase clock
*   master (transparent while clk = 0):    d -tg(ckb)-> m1; m2 = nand2(m1, rstb);
*                                          m3 = inv(m2) -tg(ck)-> m1   (hold loop)
*   slave  (transparent while clk = 1):    m2 -tg(ck)-> s1; s2 = nor2(s1, rst);
*                                          s3 = inv(s2) -tg(ckb)-> s1  (hold loop)
*   q = inv(s3), qb = inv(s2)              output inverters keep the load off the loops
* Reset forces m2 = 1 ("a 0 was sampled") in the master and s2 = 0 in the slave, so the
* two halves agree and q does not glitch when reset is released while clk is high.
* ----------------------------------------------------------------------
.subckt dffr d clk rst q qb vdd vss params: dvn=0 dvp=0
xck1 clk ckb vdd vss inv dvn={dvn} dvp={dvp}
xck2 ckb ck vdd vss inv dvn={dvn} dvp={dvp}
xrb rst rstb vdd vss inv dvn={dvn} dvp={dvp}
xt1 d m1 ckb ck vdd vss tgate dvn={dvn} dvp={dvp}
xm2 m1 rstb m2 vdd vss nand2 dvn={dvn} dvp={dvp}
xm3 m2 m3 vdd vss inv dvn={dvn} dvp={dvp}
xt2 m3 m1 ck ckb vdd vss tgate dvn={dvn} dvp={dvp}
xt3 m2 s1 ck ckb vdd vss tgate dvn={dvn} dvp={dvp}
xs2 s1 rst s2 vdd vss nor2 dvn={dvn} dvp={dvp}
xs3 s2 s3 vdd vss inv dvn={dvn} dvp={dvp}
xt4 s3 s1 ckb ck vdd vss tgate dvn={dvn} dvp={dvp}
xq s3 q vdd vss inv dvn={dvn} dvp={dvp}
xqb s2 qb vdd vss inv dvn={dvn} dvp={dvp}
.ends dffr

* ----------------------------------------------------------------------
* cnt5: 5-bit SYNCHRONOUS binary up-counter with count enable and async reset (ramp-cycle
* counter: counts ramp clocks, 0..31, wraps to 0).
*   bit i toggles when en and all lower bits are 1:  d_i = xor(q_i, t_i),
*   t_0 = en, t_(i+1) = t_i . q_i  (nand2 + inv carry chain, both polarities kept),
*   xor = one aoi22 level using qb from the flip-flop.
* Why synchronous, not ripple: the ramp code is sampled by asynchronous grant events at any
* moment of the 4 ns cycle. All five bits of a synchronous counter change within one clk->q
* of the same edge, whereas a ripple counter passes through wrong intermediate codes for up
* to 5 clk->q (e.g. 01111 -> 01110 -> 01100 -> ... -> 10000), which a grant could latch.
* The price is clocking all 5 flip-flops every cycle (energy is measured, not assumed).
* Ports: clk en rst q0..q4 qb0..qb4 d0..d4 vdd vss (q0 = LSB; d = next state, i.e.
* q + 1 while en = 1 and q while en = 0, used by kcnt5).
* ----------------------------------------------------------------------
.subckt cnt5 clk en rst q0 q1 q2 q3 q4 qb0 qb1 qb2 qb3 qb4 d0 d1 d2 d3 d4 vdd vss params: dvn=0 dvp=0
xtb0 en tb0 vdd vss inv dvn={dvn} dvp={dvp}
xd0 q0 en qb0 tb0 d0 vdd vss aoi22 dvn={dvn} dvp={dvp}
xf0 d0 clk rst q0 qb0 vdd vss dffr dvn={dvn} dvp={dvp}
xc1 en q0 tb1 vdd vss nand2 dvn={dvn} dvp={dvp}
xt1 tb1 t1 vdd vss inv dvn={dvn} dvp={dvp}
xd1 q1 t1 qb1 tb1 d1 vdd vss aoi22 dvn={dvn} dvp={dvp}
xf1 d1 clk rst q1 qb1 vdd vss dffr dvn={dvn} dvp={dvp}
xc2 t1 q1 tb2 vdd vss nand2 dvn={dvn} dvp={dvp}
xt2 tb2 t2 vdd vss inv dvn={dvn} dvp={dvp}
xd2 q2 t2 qb2 tb2 d2 vdd vss aoi22 dvn={dvn} dvp={dvp}
xf2 d2 clk rst q2 qb2 vdd vss dffr dvn={dvn} dvp={dvp}
xc3 t2 q2 tb3 vdd vss nand2 dvn={dvn} dvp={dvp}
xt3 tb3 t3 vdd vss inv dvn={dvn} dvp={dvp}
xd3 q3 t3 qb3 tb3 d3 vdd vss aoi22 dvn={dvn} dvp={dvp}
xf3 d3 clk rst q3 qb3 vdd vss dffr dvn={dvn} dvp={dvp}
xc4 t3 q3 tb4 vdd vss nand2 dvn={dvn} dvp={dvp}
xt4 tb4 t4 vdd vss inv dvn={dvn} dvp={dvp}
xd4 q4 t4 qb4 tb4 d4 vdd vss aoi22 dvn={dvn} dvp={dvp}
xf4 d4 clk rst q4 qb4 vdd vss dffr dvn={dvn} dvp={dvp}
.ends cnt5

* ----------------------------------------------------------------------
* kcnt5: grant counter with early stop. Counts rising edges of the grant strobe gnt (the
* root acknowledge of the arbiter tree, one edge per granted column) and raises STOP when
* count >= k, with k a 5-bit preset k4..k0, k = 1..31 (covers the paper's k sweep
* {1, 2, 5, 10, 20}, SPEC §3; a 3-bit k would stop at 7).
*   count:   cnt5 clocked by gnt with en = not stop, so the count freezes at k.
*   compare: the counter's NEXT state d (= count + 1) against k: mismatch per bit
*            x_i = xor(d_i, k_i) = aoi22(d_i, k_i, db_i, kb_i), all-equal
*            eq = nor2(nand2(nor2(x0, x1), nor2(x2, x3)), x4).
*   stop:    a dffr clocked by gnt samples eq. On the k-th grant edge the count becomes k and
*            STOP rises one clk->q later; once stopped, d = count = k keeps eq = 1, so STOP
*            holds until reset: "count >= k" is exactly "count == k".
* Why registered: decoding the count itself glitches. When several count bits change on one
*   edge their few-ps skew shows transient codes (measured: 01111 -> 10000 flashes 11111,
*   which raised a false STOP for k = 31). Decoding d instead settles during the strobe's
*   high phase, while the flip-flop's master is closed, so STOP is glitch-free and
*   count -> STOP is a single clk->q. Requirement: the strobe's high phase must outlast the
*   decode (~0.3 ns at ss); the root acknowledge stays high for a whole grant, far longer.
* The grants are serialised by the arbiter, so the count passes through every value.
* (k = 0 is not a valid preset: STOP would rise only when the count wraps, after 32 grants.)
* Ports: gnt rst k0..k4 stop eq c0..c4 vdd vss (c = count, c0 = LSB; eq = "the next grant
* reaches k", the decoded input of the STOP flip-flop, brought out to time the decode).
* ----------------------------------------------------------------------
.subckt kcnt5 gnt rst k0 k1 k2 k3 k4 stop eq c0 c1 c2 c3 c4 vdd vss params: dvn=0 dvp=0
xcnt gnt run rst c0 c1 c2 c3 c4 cb0 cb1 cb2 cb3 cb4 d0 d1 d2 d3 d4 vdd vss cnt5 dvn={dvn} dvp={dvp}
xkb0 k0 kb0 vdd vss inv dvn={dvn} dvp={dvp}
xkb1 k1 kb1 vdd vss inv dvn={dvn} dvp={dvp}
xkb2 k2 kb2 vdd vss inv dvn={dvn} dvp={dvp}
xkb3 k3 kb3 vdd vss inv dvn={dvn} dvp={dvp}
xkb4 k4 kb4 vdd vss inv dvn={dvn} dvp={dvp}
xdb0 d0 db0 vdd vss inv dvn={dvn} dvp={dvp}
xdb1 d1 db1 vdd vss inv dvn={dvn} dvp={dvp}
xdb2 d2 db2 vdd vss inv dvn={dvn} dvp={dvp}
xdb3 d3 db3 vdd vss inv dvn={dvn} dvp={dvp}
xdb4 d4 db4 vdd vss inv dvn={dvn} dvp={dvp}
xx0 d0 k0 db0 kb0 x0 vdd vss aoi22 dvn={dvn} dvp={dvp}
xx1 d1 k1 db1 kb1 x1 vdd vss aoi22 dvn={dvn} dvp={dvp}
xx2 d2 k2 db2 kb2 x2 vdd vss aoi22 dvn={dvn} dvp={dvp}
xx3 d3 k3 db3 kb3 x3 vdd vss aoi22 dvn={dvn} dvp={dvp}
xx4 d4 k4 db4 kb4 x4 vdd vss aoi22 dvn={dvn} dvp={dvp}
xe01 x0 x1 e01 vdd vss nor2 dvn={dvn} dvp={dvp}
xe23 x2 x3 e23 vdd vss nor2 dvn={dvn} dvp={dvp}
xe03 e01 e23 ne03 vdd vss nand2 dvn={dvn} dvp={dvp}
xeq ne03 x4 eq vdd vss nor2 dvn={dvn} dvp={dvp}
xst eq gnt rst stop stopb vdd vss dffr dvn={dvn} dvp={dvp}
xrun stop run vdd vss inv dvn={dvn} dvp={dvp}
.ends kcnt5

* ----------------------------------------------------------------------
* arb2: 2-input AER arbiter cell, FIXED PRIORITY to the lower address (input 0),
* non-preemptive, four-phase handshake (req up, ack down, req down, ack down).
*   r0, r1 : requests from the children (child 0 = lower addresses)
*   ru     : request to the parent       ad : acknowledge from the parent
*   g0, g1 : grants (acknowledges) to the children
* Logic:
*   x = latch(r0), transparent while ad = 0, frozen while ad = 1 (tgate latch);
*   x = 1 selects child 0, xb = not x selects child 1;
*   g0 = ad.x, g1 = ad.xb  (nand2 h0/h1 + inv);
*   ru = r0.(not g1) + r1.xb  (nand2-nand2; not g1 = h1 is already there). While ad = 0 this
*   is r0 + r1 with r0 reaching ru in two gates (no wait for the latch); while a grant is out
*   it is the selected child's request only.
* While no grant is out (ad = 0) the choice is combinational with child 0 winning, so two
* requests arriving in the same ramp cycle (the SAs fire on the same clock edge) are
* granted lower address first, deterministically, as the paper requires (SPEC §2).
* Boahen's mutual-exclusion cell would pick a random winner for near-simultaneous
* requests, so it is not used. Once ad is high the choice is frozen: a late request on
* input 0 cannot steal a grant already given to input 1. ru follows only the SELECTED
* child, so when it withdraws, ru falls, the parent releases ad and the cell re-decides:
* every grant is one full round trip to the root (no greedy local hand-over). This makes
* the root acknowledge a clean one-edge-per-grant strobe for the k-counter.
* Limitation: a request on input 0 that changes exactly while ad rises can leave the latch
* deciding slowly (metastability); that window is not characterised here.
* Sizing: unit gates, except the two outputs that drive inter-level wires (ru nand2 and
* the grant inverters) at 2x, because wire load at the upper tree levels dominates.
* 34 transistors.
* ----------------------------------------------------------------------
.subckt arb2 r0 r1 ru ad g0 g1 vdd vss params: dvn=0 dvp=0
xadb ad adb vdd vss inv dvn={dvn} dvp={dvp}
xti r0 x adb ad vdd vss tgate dvn={dvn} dvp={dvp}
xxb x xb vdd vss inv dvn={dvn} dvp={dvp}
xxf xb xf vdd vss inv dvn={dvn} dvp={dvp}
xtf xf x ad adb vdd vss tgate dvn={dvn} dvp={dvp}
xp0 r0 h1 p0 vdd vss nand2 dvn={dvn} dvp={dvp}
xp1 xb r1 p1 vdd vss nand2 dvn={dvn} dvp={dvp}
xru p0 p1 ru vdd vss nand2 dvn={dvn} dvp={dvp} wn=800n wp=600n
xh0 ad x h0 vdd vss nand2 dvn={dvn} dvp={dvp}
xg0 h0 g0 vdd vss inv dvn={dvn} dvp={dvp} wn=400n wp=600n
xh1 ad xb h1 vdd vss nand2 dvn={dvn} dvp={dvp}
xg1 h1 g1 vdd vss inv dvn={dvn} dvp={dvp} wn=400n wp=600n
.ends arb2

* ----------------------------------------------------------------------
* enc8: encoder slice, 8 one-hot grants g0..g7 -> 3-bit address a2 a1 a0.
*   a_b = OR of the grants whose index has bit b set = nand2(nor2(.,.), nor2(.,.)).
* The 256-column encoder is the same thing one level of scale up: address bit b is the OR
* of 128 grants, a 7-level alternating nor2/nand2 tree plus an output inverter; its
* critical path is built from these cells by circuits/digital.py.
* ----------------------------------------------------------------------
.subckt enc8 g0 g1 g2 g3 g4 g5 g6 g7 a0 a1 a2 vdd vss params: dvn=0 dvp=0
xa0l g1 g3 a0l vdd vss nor2 dvn={dvn} dvp={dvp}
xa0h g5 g7 a0h vdd vss nor2 dvn={dvn} dvp={dvp}
xa0 a0l a0h a0 vdd vss nand2 dvn={dvn} dvp={dvp}
xa1l g2 g3 a1l vdd vss nor2 dvn={dvn} dvp={dvp}
xa1h g6 g7 a1h vdd vss nor2 dvn={dvn} dvp={dvp}
xa1 a1l a1h a1 vdd vss nand2 dvn={dvn} dvp={dvp}
xa2l g4 g5 a2l vdd vss nor2 dvn={dvn} dvp={dvp}
xa2h g6 g7 a2h vdd vss nor2 dvn={dvn} dvp={dvp}
xa2 a2l a2h a2 vdd vss nand2 dvn={dvn} dvp={dvp}
.ends enc8
