"""The whole-accelerator model (:mod:`.model`) and its configurations (:mod:`.config`, the
presets in ``presets/*.toml``)."""
from topkima.behavioral.accelerator.config import ConfigError, load_config, macro_params, preset_names
from topkima.behavioral.accelerator.model import (MODELS, PUBLISHED, RACE_IT, SCALING_METHODS, AcceleratorConfig,
                                                  Estimate, QKMacroParams, ModelSpec, OpResult, RramParams,
                                                  SramAVParams, SystemParams, av_sram, comparison_rows, digital_op,
                                                  estimate, group_latency, layer_ops, qk_topkima, ratio_ranges,
                                                  rram_matmul, scaling_comparison, scaling_row_time_s)

__all__ = ["MODELS", "PUBLISHED", "RACE_IT", "SCALING_METHODS", "AcceleratorConfig", "ConfigError", "Estimate",
           "QKMacroParams", "ModelSpec", "OpResult", "RramParams", "SramAVParams", "SystemParams", "av_sram",
           "comparison_rows", "digital_op", "estimate", "group_latency", "layer_ops", "load_config",
           "macro_params", "preset_names", "qk_topkima", "ratio_ranges", "rram_matmul", "scaling_comparison",
           "scaling_row_time_s"]
