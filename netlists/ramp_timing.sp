* topkima ramp timing: wordline pulse generation for the 32 ramp rows
* ======================================================================
* Transistor-level static CMOS on the PTM 65 nm bulk cards. Include ptm65nm_bulk.lib and
* digital.sp (cells inv, nand2, nor2, aoi22, dffr) first. Conventions as in digital.sp:
* ports = inputs, outputs, supplies; NMOS bulk to vss, PMOS bulk to its own supply;
* params dvn/dvp = corner threshold shifts (BSIM4 delvto, a slow PMOS has dvp < 0).
* Digital supply vdd = 0.8 V; wordline supply vdda = 0.5 V (the SRAM array supply).
*
* Architecture [ours]; topkima.circuits.ramp_timing documents the reasons and the numbers.
*   rttaps + rtwin   ONE pulse-width generator for the whole ramp. Four taps clocked on the
*            FALLING edge of the 2 GHz PWM clock sample the 4 ns ramp clock (whose edges
*            coincide with PWM rising edges, so every sample is taken 0.25 ns away from any
*            ramp-clock transition); a window flop W on the same clock is loaded from them.
*            W rises at the first PWM falling edge after the ramp clock edge and falls
*            exactly N PWM periods later (N = 1..6, static one-hot selects). Both edges of W
*            are one clk->q of the same flop, so W is N x 0.5 ns wide up to that flop's
*            rise/fall clk->q difference; the select logic sits in W's D path.
*            Counting the PWM falling edges e_j from the ramp clock edge (j = 0..7), the
*            taps as seen at e_j (set at e_(j-1)) are, with a 50 % ramp clock (rg = 1 at
*            e_0..e_3): t0 = 1 at j = 1..4, t1 at 2..5, t2 at 3..6, t3 at 4..7, so
*              N <= 4:  D_W = rg . not t(N-1)   (high at e_0 .. e_(N-1))
*              N >= 5:  D_W = rg + t(N-5)       (high at e_0 .. e_(N-1))
*   rtctl    STOP synchroniser, token-register clock buffer and token clear. STOP is sampled
*            on the ramp clock's FALLING edge (stopq) and gates the ramp clock into the taps
*            (rg = rclk . not stopq). stopq changes only while rclk is low, so a window is
*            never cut short: the step running when STOP is taken completes and no later
*            window opens. One clock later (stopq2) the token register is cleared as well.
*   rtrow    one ramp row's token stage: the dffr of the one-hot token shift register
*            (clocked by the ramp clock) and the nand2 that ANDs its token with W
*            (wlb = 0 while this row's wordline is to be high).
*   rtdrv    wordline driver: two 0.8 V pre-driver inverters (3x, 12x unit) and a final
*            inverter on the 0.5 V array supply. Going DOWN from 0.8 V to 0.5 V needs no
*            cross-coupled level shifter: a 0.8 V gate gives the 0.5 V PMOS Vgs = +0.3 V
*            (off, no static current), a 0 V gate gives it Vgs = -0.5 V (on). With only
*            0.5 V of PMOS gate drive against 0.8 V on the NMOS the PMOS is made 15x wider
*            (wn/wp parameters, default 4 um / 60 um: rise and fall delays matched at tt).

* ----------------------------------------------------------------------
* rttaps: the tap register of the pulse-width generator (4 dffr + clock inverter + gate)
*   rclk   ramp clock (4 ns, 50 % duty, rising edges on PWM rising edges)
*   clkp   2 GHz PWM clock; the taps and the window flop sample on its FALLING edge
*   rst    asynchronous reset          stopq  synchronised STOP (high: no further windows)
*   clkpb  inverted PWM clock (to the window flop)    rg  gated ramp clock
*   tb0..tb3  inverted taps (the flops' qb: one inverter earlier than q): tap k = rg sampled
*          k + 1 PWM falling edges ago
* ----------------------------------------------------------------------
.subckt rttaps rclk clkp rst stopq clkpb rg tb0 tb1 tb2 tb3 vdd vss params: dvn=0 dvp=0
xcb clkp clkpb vdd vss inv dvn={dvn} dvp={dvp} wn=800n wp=1200n
xsb stopq stopb vdd vss inv dvn={dvn} dvp={dvp}
xg1 rclk stopb rgb vdd vss nand2 dvn={dvn} dvp={dvp}
xg2 rgb rg vdd vss inv dvn={dvn} dvp={dvp}
xt0 rg clkpb rst t0 tb0 vdd vss dffr dvn={dvn} dvp={dvp}
xt1 t0 clkpb rst t1 tb1 vdd vss dffr dvn={dvn} dvp={dvp}
xt2 t1 clkpb rst t2 tb2 vdd vss dffr dvn={dvn} dvp={dvp}
xt3 t2 clkpb rst t3 tb3 vdd vss dffr dvn={dvn} dvp={dvp}
.ends rttaps

* ----------------------------------------------------------------------
* rtwin: width select, window flop and window-line buffer
*   sa0..sa3, saz  one-hot: na = tb(N-1) for N <= 4 (sa(N-1) = 1), na = 1 for N >= 5 (saz = 1)
*   sb0, sb1, sbz  one-hot: nb = tb(N-5) for N >= 5 (sb(N-5) = 1), nb = 1 for N <= 4 (sbz = 1)
*   The selects are static configuration bits, so each mux is a set of transmission gates of
*   which exactly one conducts (the tie-off inputs keep na/nb driven for every N).
*   D_W = rg . na + not nb = nand2(nand2(rg, na), nb): from a tap's qb one transmission gate
*   and two gate levels, so clk->q + logic + setup fits one PWM period at ss with margin.
*   dw     the window flop's D (brought out to measure the setup slack)
*   w      window, buffered to drive the row nand2 gates of all 32 rows
* ----------------------------------------------------------------------
.subckt rtwin clkpb rg tb0 tb1 tb2 tb3 rst sa0 sa1 sa2 sa3 saz sb0 sb1 sbz dw w vdd vss params: dvn=0 dvp=0
xia0 sa0 sa0b vdd vss inv dvn={dvn} dvp={dvp}
xia1 sa1 sa1b vdd vss inv dvn={dvn} dvp={dvp}
xia2 sa2 sa2b vdd vss inv dvn={dvn} dvp={dvp}
xia3 sa3 sa3b vdd vss inv dvn={dvn} dvp={dvp}
xiaz saz sazb vdd vss inv dvn={dvn} dvp={dvp}
xib0 sb0 sb0b vdd vss inv dvn={dvn} dvp={dvp}
xib1 sb1 sb1b vdd vss inv dvn={dvn} dvp={dvp}
xibz sbz sbzb vdd vss inv dvn={dvn} dvp={dvp}
xma0 tb0 na sa0 sa0b vdd vss tgate dvn={dvn} dvp={dvp}
xma1 tb1 na sa1 sa1b vdd vss tgate dvn={dvn} dvp={dvp}
xma2 tb2 na sa2 sa2b vdd vss tgate dvn={dvn} dvp={dvp}
xma3 tb3 na sa3 sa3b vdd vss tgate dvn={dvn} dvp={dvp}
xmaz vdd na saz sazb vdd vss tgate dvn={dvn} dvp={dvp}
xmb0 tb0 nb sb0 sb0b vdd vss tgate dvn={dvn} dvp={dvp}
xmb1 tb1 nb sb1 sb1b vdd vss tgate dvn={dvn} dvp={dvp}
xmbz vdd nb sbz sbzb vdd vss tgate dvn={dvn} dvp={dvp}
xy rg na yb vdd vss nand2 dvn={dvn} dvp={dvp}
xd yb nb dw vdd vss nand2 dvn={dvn} dvp={dvp}
xw dw clkpb rst wq wqb vdd vss dffr dvn={dvn} dvp={dvp}
* window-line buffer: 3x then 12x unit inverter (the line carries 32 nand2 inputs + wire)
xwb1 wq wqn vdd vss inv dvn={dvn} dvp={dvp} wn=600n wp=900n
xwb2 wqn w vdd vss inv dvn={dvn} dvp={dvp} wn=2.4u wp=3.6u
.ends rtwin

* ----------------------------------------------------------------------
* rtctl: ramp control: STOP synchroniser, token-register clock buffer and reset
*   stop   STOP from the k-counter (asynchronous to the ramp clock)
*   rck    ramp clock buffered for the 32 token flops (2x then 8x unit inverter)
*   rstk   token-register clear = rst + stopq2 (4x unit driver)
*   stopq  STOP sampled on the ramp clock's FALLING edge (to rttaps): it changes only while
*          rclk is low, so it never cuts a window short; the ramp step in progress completes.
*   stopq2 stopq sampled on the next rising edge: clears the token register, one cycle after
*          the windows stopped, so the wordlines are held low by two independent means.
*   A STOP arriving within a flop's setup/hold window of the falling edge can leave stopq
*   metastable for a while (not characterised; a second synchroniser stage would cost one
*   more ramp step of latency).
* ----------------------------------------------------------------------
.subckt rtctl rclk rst stop rck rstk stopq vdd vss params: dvn=0 dvp=0
xrn rclk rclkn vdd vss inv dvn={dvn} dvp={dvp}
xsq stop rclkn rst stopq stopqb vdd vss dffr dvn={dvn} dvp={dvp}
xc1 rclk rck1 vdd vss inv dvn={dvn} dvp={dvp} wn=400n wp=600n
xc2 rck1 rck vdd vss inv dvn={dvn} dvp={dvp} wn=1.6u wp=2.4u
xs2 stopq rck rst stopq2 stopq2b vdd vss dffr dvn={dvn} dvp={dvp}
xo1 rst stopq2 rsto vdd vss nor2 dvn={dvn} dvp={dvp}
xo2 rsto rstk vdd vss inv dvn={dvn} dvp={dvp} wn=800n wp=1200n
.ends rtctl

* ----------------------------------------------------------------------
* rtrow: token stage of one ramp row (34 transistors)
*   tin   token from the previous row (row 0: the start input)
*   clk   ramp clock (after the register's clock buffer)
*   rst   asynchronous token clear
*   w     window line
*   tout  token of this row (to the next row)
*   wlb   active-low wordline request to this row's driver
* ----------------------------------------------------------------------
.subckt rtrow tin clk rst w tout wlb vdd vss params: dvn=0 dvp=0
xtk tin clk rst tout toutb vdd vss dffr dvn={dvn} dvp={dvp}
xnd tout w wlb vdd vss nand2 dvn={dvn} dvp={dvp}
.ends rtrow

* ----------------------------------------------------------------------
* rtdrv: wordline driver, 0.8 V pre-drivers and 0.5 V final inverter (6 transistors)
*   wlb   active-low request (0.8 V logic)      wl   wordline (0.5 V)
*   wn, wp  final inverter widths
* ----------------------------------------------------------------------
.subckt rtdrv wlb wl vdd vdda vss params: dvn=0 dvp=0 wn=4u wp=60u
xp1 wlb p1 vdd vss inv dvn={dvn} dvp={dvp} wn=600n wp=900n
xp2 p1 p2 vdd vss inv dvn={dvn} dvp={dvp} wn=2.4u wp=3.6u
mn wl p2 vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp wl p2 vdda vdda ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends rtdrv
