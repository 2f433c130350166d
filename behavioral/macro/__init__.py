"""Calibrated behavioural model of the Topkima macro: top-k selection inside the ramp ADC.

Every parameter comes from the calibration artefact (:mod:`topkima.behavioral.params`). One
module per part of the circuit, each documenting what it models:

* :mod:`.mac` — PWM query pulses on ternary key cells, per-cell current factors, charge sharing;
* :mod:`.bitline` — the discharge curve, leakage, sense instants, the sense amplifier's in-situ effect;
* :mod:`.adc` — ramp and calibration replica cells, the comparator's offset, the crossing search;
* :mod:`.noise` — comparator noise as a counter-based random stream;
* :mod:`.arbiter` — the first k firings granted, the ramp stopped;
* :mod:`.energy` — energy and latency per conversion;
* :mod:`.devices` — drawing and freezing a chip's devices;
* :mod:`.convert` — the compiled per-row kernel that runs them in order;
* :mod:`.chip` — :class:`TopkimaMacro` and :class:`ChipInstance`, the public face;
* :mod:`.runtime` — the kernels' cache directory and thread count.
"""
from topkima.behavioral.macro.adc import AdcRange, choose_adc_range
from topkima.behavioral.macro.arbiter import select_topk, subtopk_indices
from topkima.behavioral.macro.arrays import ARRAYS, SUBTOPK_PRESETS
from topkima.behavioral.macro.chip import ChipInstance, TopkimaMacro, used_length
from topkima.behavioral.macro.devices import TileDraws
from topkima.behavioral.macro.results import TopkResult
from topkima.behavioral.macro.runtime import set_threads, threads

__all__ = ["ARRAYS", "SUBTOPK_PRESETS", "AdcRange", "ChipInstance", "TileDraws", "TopkimaMacro", "TopkResult",
           "choose_adc_range", "select_topk", "subtopk_indices", "used_length", "set_threads", "threads"]
