"""Fast, vectorised behavioural model of the Topkima macro; reads only the calibration artefact."""
from topkima.behavioral.macro import ARRAYS, SUBTOPK_PRESETS, ChipInstance, TileDraws, TopkimaMacro, TopkResult

__all__ = ["ARRAYS", "SUBTOPK_PRESETS", "ChipInstance", "TileDraws", "TopkimaMacro", "TopkResult"]
