* Dual-10T SRAM read port: one decoupled read stack of the Topkima bitcell.
*
* Each dual-10T cell (a 6T core plus a 4-transistor decoupled read port) exposes
* two such stacks: (RWL+, Q) and (RWL-, Q). The column testbench wires them as in
* SPEC §2 [ours]: L cell (RWL+,Q_L)->RBL_L and (RWL-,Q_L)->RBL_R; R cell
* (RWL+,Q_R)->RBL_R and (RWL-,Q_R)->RBL_L, so a +1 product discharges RBL_L and a
* -1 product discharges RBL_R.
*
* The 6T storage core is not simulated: its storage node Q is an ideal source at
* the array supply (1) or ground (0). The read stack is what sets the discharge.
*
* Sizing [ours]: W = 120 nm, L = 960 nm for both devices. At a 0.5 V wordline and
* 0.5 V precharge the stack sinks ~0.2 uA, nearly flat for V(RBL) > 0.15 V, which
* gives ~0.5 mV of bitline swing per 0.5 ns PWM unit on ~0.2 pF: small enough that
* typical 64-element MAC sums stay inside the bitline headroom. The long channel also
* keeps Pelgrom mismatch moderate (sigma_Vth = 10 mV per device at A_VT = 3.5 mV.um).
* The drain/source diffusion (AD/PD) gives each stack its junction load on the bitline.
*
* Pins: rbl (read bitline), rwl (read wordline), q (storage node), vss
* Params: w, l (m); dvt_a, dvt_s: delvto (V) of the access (RWL-gated) and storage
* (Q-gated) devices: corner shift plus local mismatch.
.subckt readport rbl rwl q vss w=120n l=960n dvt_a=0 dvt_s=0
ma rbl rwl x vss ptm65_nmos w={w} l={l} ad={w*0.15u} as={w*0.15u} pd={2*(w+0.15u)} ps={2*(w+0.15u)} delvto={dvt_a}
ms x q vss vss ptm65_nmos w={w} l={l} ad={w*0.15u} as={w*0.15u} pd={2*(w+0.15u)} ps={2*(w+0.15u)} delvto={dvt_s}
.ends readport
