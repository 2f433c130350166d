"""Structure of the whole-accelerator model and its configuration (no weights, α given)."""
import json
from dataclasses import replace

import pytest

from topkima.behavioral.accelerator import ConfigError, load_config, preset_names
from topkima.behavioral import accelerator as acc


@pytest.fixture(scope="module")
def cfg():
    return load_config("paper")[0]


BERT = acc.MODELS["bert-base"]


def test_presets_load_with_a_source_for_every_field():
    assert {"paper", "paper-pwm62"} <= set(preset_names())
    for name in preset_names():
        cfg, info = load_config(name)
        for section, values in info["values"].items():
            for field in values:
                assert info["sources"][f"{section}.{field}"].strip()
    assert load_config("paper-pwm62")[0].macro.timing.t_pwm_s == pytest.approx(62e-9)
    assert load_config("paper")[0].macro.timing.t_pwm_s == pytest.approx(108.5e-9)


def test_ops_are_two_per_dense_mac(cfg):
    est = acc.estimate(cfg, BERT, 384, 0.31, scope="attention")
    d, s, h = 768, 384, 12
    assert est.ops == 2 * (s * d * 3 * d + 2 * h * s * s * (d // h))       # 1.81 GOP (SPEC §5)
    whole = acc.estimate(cfg, BERT, 384, 0.31, scope="model")
    per_layer = est.ops + 2 * s * (d * d + 2 * d * BERT.d_ffn)
    assert whole.ops == pytest.approx(BERT.n_layers * per_layer)


def test_energy_and_latency_are_sums_of_their_breakdowns(cfg):
    for scope in ("attention", "model"):
        for pipelined in (False, True):
            est = acc.estimate(cfg, BERT, 384, 0.5, pipelined, scope)
            assert est.energy_j == pytest.approx(sum(est.energy_by_op_j.values()))
            assert est.energy_j == pytest.approx(sum(est.energy_by_component_j.values()))
            assert est.latency_s == pytest.approx(sum(est.latency_by_op_s.values()))
            assert est.throughput_tops == pytest.approx(est.ops / est.latency_s / 1e12)
            assert est.efficiency_tops_per_w == pytest.approx(est.ops / est.energy_j / 1e12)


def test_whole_model_is_n_layers_of_one_layer(cfg):
    one = acc.estimate(cfg, replace(BERT, n_layers=1), 384, 0.4)
    twelve = acc.estimate(cfg, BERT, 384, 0.4)
    assert twelve.latency_s == pytest.approx(12 * one.latency_s)
    assert twelve.energy_j == pytest.approx(12 * one.energy_j)


def test_pipelining_keeps_energy_and_never_slows(cfg):
    for model in acc.MODELS.values():
        serial = acc.estimate(cfg, model, None, 0.5)
        piped = acc.estimate(cfg, model, None, 0.5, pipelined=True)
        assert piped.latency_s < serial.latency_s
        assert piped.energy_j == pytest.approx(serial.energy_j)


def test_latency_and_energy_grow_with_sequence_length(cfg):
    prev = None
    for seq in (128, 256, 384, 512, 1024):
        est = acc.estimate(cfg, BERT, seq, 0.5, scope="attention")
        if prev is not None:
            assert est.latency_s > prev.latency_s and est.energy_j > prev.energy_j
            # projections are linear in tokens
            assert est.energy_by_op_j["qkv_projection"] / prev.energy_by_op_j["qkv_projection"] == pytest.approx(
                seq / prev.seq_len, rel=1e-9)
        prev = est


def test_smaller_alpha_speeds_up_only_qk(cfg):
    lo = acc.estimate(cfg, BERT, 384, 0.2, scope="attention")
    hi = acc.estimate(cfg, BERT, 384, 0.9, scope="attention")
    assert lo.latency_by_op_s["qk_softmax"] < hi.latency_by_op_s["qk_softmax"]
    for op in ("qkv_projection", "av"):
        assert lo.latency_by_op_s[op] == pytest.approx(hi.latency_by_op_s[op])
        assert lo.energy_by_op_j[op] == pytest.approx(hi.energy_by_op_j[op])


def test_sparse_a_makes_av_cheaper(cfg):
    dense_cfg = replace(cfg, sram_av=replace(cfg.sram_av, sparse_a=False))
    sparse = acc.estimate(cfg, BERT, 384, 0.5, scope="attention")
    dense = acc.estimate(dense_cfg, BERT, 384, 0.5, scope="attention")
    assert sparse.energy_by_op_j["av"] < dense.energy_by_op_j["av"]
    assert sparse.energy_by_op_j["qkv_projection"] == dense.energy_by_op_j["qkv_projection"]


def test_adc_sharing_trades_time_for_nothing_else(cfg):
    fast = replace(cfg, rram=replace(cfg.rram, adc_mux=4))
    a = acc.rram_matmul("x", cfg, 384, 768, 768, False)
    b = acc.rram_matmul("x", fast, 384, 768, 768, False)
    assert b.latency_s < a.latency_s
    assert b.energy_j == a.energy_j     # the same conversions, fewer cycles per input bit


def test_rram_array_count_follows_the_mapping(cfg):
    op = acc.rram_matmul("qkv", cfg, 384, 768, 3 * 768, False)
    assert op.arrays == 3 * (3 * 768 * 4 // 256)      # 8-bit weights over 4 two-bit cells


def test_scaling_methods(cfg):
    t = cfg.macro.timing
    r = acc.scaling_comparison(384, 5, 64, t, 0.31, 0.5e-9, 1e-9)
    assert r["latency_s"]["scale-free"] < r["latency_s"]["tron"] < r["latency_s"]["left-shift"]
    assert acc.scaling_row_time_s("scale-free", 384, 64, t, 1e-9, 1e-9) == 0.0
    with pytest.raises(ValueError, match="scaling method"):
        acc.scaling_row_time_s("divide", 384, 64, t, 1e-9, 1e-9)


def test_comparison_ratios(cfg):
    rows = acc.comparison_rows(6.7, 16.84)
    hardsea = next(r for r in rows if r["name"] == "HARDSEA")
    assert hardsea["our_speedup"] == pytest.approx(6.7 / 3.64)
    ranges = acc.ratio_ranges(rows)
    assert ranges["speedup"][0] == pytest.approx(6.7 / 3.64) and ranges["speedup"][1] == pytest.approx(6.7 / 0.08)
    assert any(r["name"] == "RACE-IT" for r in rows)


# -- configuration errors ------------------------------------------------------------------------

def _write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def test_unknown_preset_names_the_presets():
    with pytest.raises(ConfigError, match="unknown preset 'fast'.*paper"):
        load_config("fast")


@pytest.mark.parametrize("body, message", [
    ('[rram]\nadc_mux = 0\nadc_mux_source = "x"\n', "rram.adc_mux' must be positive"),
    ('[system]\nf_clk_hz = -2e8\nf_clk_hz_source = "x"\n', "system.f_clk_hz' must be positive"),
    ('[rram]\nadc_mux = 2.5\nadc_mux_source = "x"\n', "rram.adc_mux' must be an integer"),
    ('[rram]\nadc_muxx = 4\n', "unknown key.*rram.adc_muxx"),
    ('[macro]\nt_pwm_reading = "70ns"\n', "macro.t_pwm_reading"),
    ('[sram_av]\nsparse_a = "yes"\n', "sram_av.sparse_a' must be true or false"),
    ('colour = 1\n', "unknown top-level key"),
    ('base = "nope"\n', "unknown preset 'nope'"),
])
def test_bad_values_name_the_field(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, 'base = "paper"\n' + body if not body.startswith("base") else body))


def test_missing_field_and_missing_source(tmp_path):
    with pytest.raises(ConfigError, match="section \\[system\\] is missing"):
        load_config(_write(tmp_path, '[rram]\nadc_mux = 4\nadc_mux_source = "x"\n'))
    text = (tmp_path / "full.toml")
    from importlib import resources
    paper = resources.files("topkima.behavioral.accelerator").joinpath("presets", "paper.toml").read_text()
    text.write_text(paper.replace("e_adc_j = 0.64e-12\n", "", 1))
    with pytest.raises(ConfigError, match="field 'rram.e_adc_j' is missing"):
        load_config(str(text))
    text.write_text(paper.replace('e_buffer_bit_j_source = "Horowitz', 'e_buffer_bit_j_sourc = "Horowitz', 1))
    with pytest.raises(ConfigError, match="e_buffer_bit_j_sourc"):
        load_config(str(text))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "absent.toml"))


def test_cli_exit_codes_and_outputs(tmp_path, capsys):
    from topkima.cli import main
    assert main(["accelerator", "--config", "nope", "--alpha", "0.5", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert main(["accelerator", "--model", "gpt", "--alpha", "0.5", "--out", str(tmp_path)]) == 2
    assert "unknown model 'gpt'" in capsys.readouterr().err
    bad = _write(tmp_path, 'base = "paper"\n[rram]\nadc_mux = -1\nadc_mux_source = "x"\n')
    assert main(["accelerator", "--config", bad, "--alpha", "0.5", "--out", str(tmp_path)]) == 2
    assert "rram.adc_mux" in capsys.readouterr().err
    assert main(["accelerator", "--alpha", "1.5", "--out", str(tmp_path)]) == 2
    attention = tmp_path / "att.json"
    attention.write_text(json.dumps({"k": 5, "alpha_mean": {"topkima": 0.6}}))
    out = tmp_path / "acc"
    assert main(["accelerator", "--model", "minilm", "--alpha-from", str(attention), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "TOPS/W" in printed and "HARDSEA" in printed
    s = json.loads((out / "summary.json").read_text())
    for key in ("throughput_tops", "efficiency_tops_per_w", "latency_s", "energy_j"):
        assert s[key] > 0
    for key in ("speedup_vs_conventional", "speedup_vs_dtopk", "energy_ratio_vs_conventional", "energy_ratio_vs_dtopk"):
        assert s["softmax_macro"][key] > 0
    assert s["alpha"]["value"] == 0.6 and str(attention) in s["alpha"]["source"]
    assert set(s["softmax_macro"]["report"]["readings"]) == {"62ns", "108.5ns"}
    for name in ("tables.md", "breakdown_by_operation.csv", "breakdown_by_component.csv", "comparison.csv",
                 "softmax_macro_seq_scaling.csv", "breakdown_attention.png", "breakdown_model.png",
                 "softmax_macro_seq_scaling.png"):
        assert (out / name).stat().st_size > 0
    assert not list(out.glob("*.tmp*"))
