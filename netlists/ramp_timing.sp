* topkima ramp timing: wordline pulse generation for the 32 ramp rows
* ======================================================================
* Transistor-level static CMOS on the PTM 65 nm bulk cards. Include ptm65nm_bulk.lib and
* digital.sp (cells inv, nand2, nor2, aoi22, dffr) first. Conventions as in digital.sp:
* ports = inputs, outputs, supplies; NMOS bulk to vss, PMOS bulk to its own supply;
* params dvn/dvp = corner threshold shifts (BSIM4 delvto, a slow PMOS has dvp < 0).
* Digital supply vdd = 0.8 V; wordline supply vdda = 0.5 V (the SRAM array supply).
*
* Architecture [ours]; topkima.circuits.ramp_timing documents the reasons.
*   rtpgen   ONE pulse-width generator for the whole ramp: a 4-tap shift register clocked
*            on the FALLING edge of the 2 GHz PWM clock samples the 4 ns ramp clock (whose
*            edges coincide with PWM rising edges, so every sample is taken 0.25 ns away
*            from any ramp-clock transition), and a window flop W on the same clock is
*            loaded from the taps. W rises at the first PWM falling edge after the ramp
*            clock edge and falls exactly N PWM periods later (N = 1..6, static one-hot
*            selects). Both edges of W are one clk->q of the same flop, so the width is
*            N x 0.5 ns up to the flop's rise/fall clk->q difference; the select logic sits
*            in W's D path and has half a PWM period to settle.
*            Tap k (after PWM falling edge e_j, j = 0..7 counted from the ramp clock edge)
*            holds rclk sampled k edges earlier; with a 50 % ramp clock, rg = 1 for j = 0..3:
*              N <= 4:  D_W = rg . not t(N-1)      (t0 = 1 for j = 1..4, t1 for 2..5, ...)
*              N >= 5:  D_W = rg + t(N-5)
*            selects: sa0..sa3 one-hot (sa(N-1) = 1) for N <= 4, sb0/sb1 (sb(N-5) = 1) for
*            N >= 5, all others 0.
*            STOP: stopq (synchronised STOP, a flop clocked on the ramp clock's falling edge,
*            outside this cell) gates the ramp clock into the generator (rg = rclk . not
*            stopq). It changes only while rclk is low, so a window is never cut short: the
*            cycle running when STOP is taken completes, no later cycle opens a window.
*   rtrow    one ramp row's token stage: dffr of the one-hot token shift register (clocked by
*            the ramp clock) and the nand2 that ANDs the token with the window W (wlb = 0
*            while this row's wordline is to be high).
*   rtdrv    wordline driver: two 0.8 V pre-driver inverters (3x, 12x unit) and a final
*            inverter on the 0.5 V array supply. Going DOWN from 0.8 V to 0.5 V needs no
*            cross-coupled level shifter: a 0.8 V gate high gives the 0.5 V PMOS
*            Vgs = +0.3 V (off, no static current), a 0 V gate gives it Vgs = -0.5 V (on).
*            The PMOS sees only 0.5 V of drive against the NMOS's 0.8 V, so it is made ~5x
*            wider (wn/wp parameters; chosen so the wordline's rise and fall delays match,
*            see topkima.circuits.ramp_timing).

* ----------------------------------------------------------------------
* nand3: y = not (a and b and c). Series NMOS at 3x unit width (as digital.sp's nand2 at 2x).
* ----------------------------------------------------------------------
.subckt nand3 a b c y vdd vss params: dvn=0 dvp=0 wn=600n wp=300n
mn1 y a n1 vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn2 n1 b n2 vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mn3 n2 c vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp1 y a vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp2 y b vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
mp3 y c vdd vdd ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends nand3

* ----------------------------------------------------------------------
* rttaps: the tap register of the pulse-width generator (4 dffr + clock inverter + gate)
*   rclk   ramp clock (4 ns, 50 % duty, rising edges on PWM rising edges)
*   clkp   2 GHz PWM clock; the taps and the window flop sample on its FALLING edge
*   rst    asynchronous reset          stopq  synchronised STOP (high: no further windows)
*   clkpb  inverted PWM clock (to the window flop)    rg  gated ramp clock
*   t0..t3 taps: rg sampled 1..4 PWM falling edges ago
* ----------------------------------------------------------------------
.subckt rttaps rclk clkp rst stopq clkpb rg t0 t1 t2 t3 vdd vss params: dvn=0 dvp=0
xcb clkp clkpb vdd vss inv dvn={dvn} dvp={dvp} wn=800n wp=1200n
xsb stopq stopb vdd vss inv dvn={dvn} dvp={dvp}
xg1 rclk stopb rgb vdd vss nand2 dvn={dvn} dvp={dvp}
xg2 rgb rg vdd vss inv dvn={dvn} dvp={dvp}
xt0 rg clkpb rst t0 t0b vdd vss dffr dvn={dvn} dvp={dvp}
xt1 t0 clkpb rst t1 t1b vdd vss dffr dvn={dvn} dvp={dvp}
xt2 t1 clkpb rst t2 t2b vdd vss dffr dvn={dvn} dvp={dvp}
xt3 t2 clkpb rst t3 t3b vdd vss dffr dvn={dvn} dvp={dvp}
.ends rttaps

* ----------------------------------------------------------------------
* rtwin: width select logic, window flop and window-line buffer
*   sa0..sa3, sb0, sb1  static one-hot width selects (see header)
*   w      window, buffered to drive the row nand2 gates of all 32 rows
* ----------------------------------------------------------------------
.subckt rtwin clkpb rg t0 t1 t2 t3 rst sa0 sa1 sa2 sa3 sb0 sb1 w vdd vss params: dvn=0 dvp=0
* na = not A with A = t(N-1) for N <= 4 (A = 0 for N >= 5): na = a01 . a23
* bb = not B with B = t(N-5) for N >= 5 (B = 0 for N <= 4)
* D_W = rg . not A + B = nand2(nand3(rg, a01, a23), bb): three gate levels from a tap, so
* clk->q + logic + setup fits one PWM period (0.5 ns) at ss as well
xa01 sa0 t0 sa1 t1 a01 vdd vss aoi22 dvn={dvn} dvp={dvp}
xa23 sa2 t2 sa3 t3 a23 vdd vss aoi22 dvn={dvn} dvp={dvp}
xbb sb0 t0 sb1 t1 bb vdd vss aoi22 dvn={dvn} dvp={dvp}
xy rg a01 a23 yb vdd vss nand3 dvn={dvn} dvp={dvp}
xd yb bb dw vdd vss nand2 dvn={dvn} dvp={dvp}
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
.subckt rtdrv wlb wl vdd vdda vss params: dvn=0 dvp=0 wn=2u wp=10u
xp1 wlb p1 vdd vss inv dvn={dvn} dvp={dvp} wn=600n wp=900n
xp2 p1 p2 vdd vss inv dvn={dvn} dvp={dvp} wn=2.4u wp=3.6u
mn wl p2 vss vss ptm65_nmos w={wn} l=65n ad={wn*0.15u} as={wn*0.15u} pd={2*(wn+0.15u)} ps={2*(wn+0.15u)} delvto={dvn}
mp wl p2 vdda vdda ptm65_pmos w={wp} l=65n ad={wp*0.15u} as={wp*0.15u} pd={2*(wp+0.15u)} ps={2*(wp+0.15u)} delvto={dvp}
.ends rtdrv
