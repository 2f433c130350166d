"""Fast, vectorised behavioural model of the Topkima macro; reads only the calibration artefact."""
from topkima.behavioral.macro import (ARRAYS, SUBTOPK_PRESETS, AdcRange, ChipInstance, TileDraws, TopkimaMacro,
                                      TopkResult, choose_adc_range, select_topk, subtopk_indices)
from topkima.behavioral.attention import (MODES, SoftmaxCore, SramAVModel, TopkimaHardware, dense_softmax_attention,
                                          topkima_attention)
from topkima.behavioral.ranges import KEY_SCALE_POLICIES, AttentionRanges

__all__ = ["ARRAYS", "SUBTOPK_PRESETS", "AdcRange", "ChipInstance", "TileDraws", "TopkimaMacro", "TopkResult",
           "choose_adc_range", "select_topk", "subtopk_indices", "MODES", "SoftmaxCore", "SramAVModel",
           "TopkimaHardware", "dense_softmax_attention", "topkima_attention", "AttentionRanges",
           "KEY_SCALE_POLICIES"]
