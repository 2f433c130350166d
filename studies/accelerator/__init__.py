"""The whole-accelerator estimate (`topkima accelerator`): :mod:`.estimate` runs it, :mod:`.alpha`
supplies the early-stop fraction α, :mod:`.outputs` writes its tables and plots."""
from topkima.behavioral.accelerator import ConfigError
from topkima.studies.accelerator.alpha import measure_alpha
from topkima.studies.accelerator.estimate import PAPER, AcceleratorStudyConfig, run_accelerator

__all__ = ["PAPER", "AcceleratorStudyConfig", "ConfigError", "measure_alpha", "run_accelerator"]
