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
