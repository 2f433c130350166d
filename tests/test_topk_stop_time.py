"""Top-k latency measured in SPICE: sense amplifiers → request latches → arbiter cell chain → k-counter → STOP."""
import pytest

from topkima.circuits import column as col
from topkima.circuits import topk_chain as tc


def _column(v_l0: float, step_v: float, v_r: float = 0.45, n: int = 4) -> dict:
    """A bitline pair whose RBL_L falls by ``step_v`` per ramp cycle below a flat RBL_R."""
    return {"v_rbl_l_at_sa_clk_v": [v_l0 - step_v * j for j in range(1, n + 1)], "v_rbl_r_at_sa_clk_v": [v_r] * n}


def test_the_bench_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="power of two"):
        tc.chain_netlist([_column(0.5, 0.02)] * 3, 1, "tt", "ss", 1.0, 0.8, 3)
    with pytest.raises(ValueError, match="k must be"):
        tc.chain_netlist([_column(0.5, 0.02)] * 2, 3, "tt", "ss", 1.0, 0.8, 3)
    with pytest.raises(ValueError, match="bitline voltages"):
        tc.chain_netlist([_column(0.5, 0.02), _column(5.0, 0.02)], 1, "tt", "ss", 1.0, 0.8, 3)
    with pytest.raises(ValueError, match="unknown corner"):
        tc.chain_netlist([_column(0.5, 0.02)] * 2, 1, "tt", "xx", 1.0, 0.8, 3)


@pytest.mark.slow
def test_simultaneous_firings_go_lower_address_first_and_stop_follows_the_kth_grant():
    # both columns cross in ramp cycle 3 (RBL_L 0.44 V < RBL_R 0.45 V, 0.46 V before)
    r = tc.measure_stop([_column(0.50, 0.02), _column(0.50, 0.02)], 1, "tt", "ss", 1.0, 0.8, 4)
    assert r["sa_first_fire_cycle"] == [3, 3]
    assert r["grant_order"][0] == 0                       # the lower address wins the tie
    t_fire, t_grant0, t_stop = r["t_first_fire_from_ramp_start_s"][0], r["t_grant_from_ramp_start_s"][0], \
        r["t_stop_from_ramp_start_s"]
    assert t_stop is not None and t_fire < t_stop                   # STOP comes after the SA decision
    assert 2 * col.T_CLK_IMA_S + col.T_SA_CLK_S < t_fire < 3 * col.T_CLK_IMA_S   # cycle 3, after its SA edge
    assert r["n_root_grants"] >= 1 and t_grant0 is not None

