"""The exact read-back's cost in the accelerator estimate (issue 14 item 6)."""
from dataclasses import replace

import pytest

from topkima.behavioral import accelerator as acc
from topkima.behavioral import softmax_macro as sm
from topkima.behavioral.accelerator import load_config
from topkima.behavioral.accelerator.readback import exact_readback_row

BERT = acc.MODELS["bert-base"]


@pytest.fixture(scope="module")
def cfg():
    return load_config("paper")[0]


def test_row_cost_from_the_presets_figures(cfg):
    # paper preset: 1.8e-16 J per SRAM cell and clock, 0.1 pJ per shift-add, 0.156 pJ per buffer
    # bit access, 5 ns per row, 64 digital lanes at 200 MHz; k = 5 keys of 64 elements, 6 cells
    # and 4 bits each
    row = exact_readback_row(cfg, 5, 64)
    assert row["macs"] == 320
    assert row["energy_j"]["readback_sram"] == pytest.approx(5 * 64 * 6 * 1.8e-16)
    assert row["energy_j"]["readback_mac"] == pytest.approx(320 * 3 * 0.1e-12)
    assert row["energy_j"]["readback_transfer"] == pytest.approx(320 * 4 * 2 * 0.156e-12)
    assert row["latency_s"] == pytest.approx(5 * 5e-9 + 5 * 5e-9)
    with pytest.raises(ValueError, match="k and d_head"):
        exact_readback_row(cfg, 0, 64)


def test_exact_readback_adds_its_row_cost_to_qk_only(cfg):
    exact = replace(cfg, readback="exact")
    seq, heads = 384, 12
    row = exact_readback_row(cfg, 5, 64)
    base = acc.estimate(cfg, BERT, seq, 0.31, False, "attention")
    more = acc.estimate(exact, BERT, seq, 0.31, False, "attention")
    extra = seq * heads * sum(row["energy_j"].values())
    assert more.energy_j - base.energy_j == pytest.approx(extra)
    assert more.energy_by_op_j["av"] == base.energy_by_op_j["av"]
    # serial schedule: every row waits for its read-back (heads in parallel)
    assert more.latency_s - base.latency_s == pytest.approx(seq * row["latency_s"])
    # pipelined: the read-back joins the digital stage, which overlaps the next row's conversion
    t = cfg.macro.timing
    serial = sm.latency("topkima", seq, 5, t, 0.31)
    t_analog = (serial["total"] - serial["write"] - serial["softmax"]) / seq
    assert serial["softmax"] / seq + row["latency_s"] < t_analog          # the case this preset is in
    piped_base = acc.estimate(cfg, BERT, seq, 0.31, True, "attention")
    piped = acc.estimate(exact, BERT, seq, 0.31, True, "attention")
    assert 0 < piped.latency_s - piped_base.latency_s < row["latency_s"]
    with pytest.raises(ValueError, match="readback"):
        replace(cfg, readback="adc")


def test_candidates_read_back_k_c_rows_and_add_a_digital_topk(cfg):
    assert exact_readback_row(cfg, 5, 64, 5) == exact_readback_row(cfg, 5, 64)      # m = 0: the plain read-back
    row = exact_readback_row(cfg, 5, 64, 10)
    # 10 rows of 64 elements; the top-5 of 10 by the paper's sort model: ⌈min(10·log₂10, 10·5)⌉ = 34
    # compare-exchanges of a 15-bit score (|Σ| ≤ 31·7·64) + 8-bit address key, at the macro's e_cmpx
    # scaled from its 14-bit key by (2·23 + 5) / (2·14 + 5) flip-flop events
    assert row["macs"] == 640 and row["compare_exchanges"] == 34
    assert row["energy_j"]["readback_sram"] == pytest.approx(10 * 64 * 6 * 1.8e-16)
    assert row["energy_j"]["readback_mac"] == pytest.approx(640 * 3 * 0.1e-12)
    assert row["energy_j"]["readback_transfer"] == pytest.approx(640 * 4 * 2 * 0.156e-12)
    assert row["energy_j"]["readback_select"] == pytest.approx(34 * cfg.macro.energy.e_cmpx_j * 51 / 33)
    assert row["latency_s"] == pytest.approx(10 * 5e-9 + 10 * 5e-9 + 34 * cfg.macro.timing.t_clk_sort_s)
    with pytest.raises(ValueError, match="candidates must be an integer ≥ k"):
        exact_readback_row(cfg, 5, 64, 4)


def test_candidates_stop_the_counter_later_in_the_macro_and_the_estimate(cfg):
    t, seq, alpha = cfg.macro.timing, 384, 0.31
    # the arbiter serves k_c grants: T_ima,arb = max(α·T_ima + T_arb, T_clk + q·T_arb), q the largest
    # quota of k_c over the 256 + 128 columns (7 → 5 + 2); the softmax core still takes k = 5 values
    lat = sm.latency("topkima", seq, 5, t, alpha, grants=7)
    assert lat["ima_arb"] == pytest.approx(seq * max(alpha * t.t_ima_s + t.t_arb_s, t.t_clk_s + 5 * t.t_arb_s))
    assert lat["softmax"] == pytest.approx(seq * 5 * t.t_nl_s)
    assert sm.latency("topkima", seq, 5, t, alpha, grants=5) == sm.latency("topkima", seq, 5, t, alpha)
    e5 = sm.row_energy("topkima", seq, 5, cfg.macro.energy, alpha)
    e7 = sm.row_energy("topkima", seq, 5, cfg.macro.energy, alpha, grants=7)
    assert e7["readout"] - e5["readout"] == pytest.approx(2 * cfg.macro.energy.e_grant_j)
    for bad in (4, 385, 5.0):
        with pytest.raises(ValueError, match="grants"):
            sm.latency("topkima", seq, 5, t, alpha, grants=bad)
    exact = replace(cfg, readback="exact")
    m0 = acc.estimate(replace(exact, candidates=5), BERT, seq, alpha, False, "attention")
    assert m0.as_dict() == acc.estimate(exact, BERT, seq, alpha, False, "attention").as_dict()
    m5 = acc.estimate(replace(exact, candidates=10), BERT, seq, alpha, False, "attention")
    assert m5.energy_j > m0.energy_j and m5.latency_s > m0.latency_s
    assert m5.energy_by_op_j["av"] == m0.energy_by_op_j["av"]       # still k rows of A·V
    with pytest.raises(ValueError, match="candidates"):
        replace(cfg, candidates=7)                                   # needs the exact read-back
    with pytest.raises(ValueError, match="candidates"):
        replace(exact, candidates=4)
