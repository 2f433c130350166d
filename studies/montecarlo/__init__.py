"""The Monte Carlo variation study (`topkima montecarlo`); :mod:`.study` says what it computes.

One idea per module: :mod:`.config` (what a study computes), :mod:`.seeds` (its random streams),
:mod:`.identity` (what a cached result depends on), :mod:`.workload` (the fixed inputs and
references), :mod:`.instance` (one chip instance, what workers run), :mod:`.metrics`,
:mod:`.accuracy` (MiniLM probe accuracy), :mod:`.spice_comparison`, :mod:`.execution` (local
workers or Dask), :mod:`.summary`, :mod:`.plots` and :mod:`.study` (the run).
"""
from topkima.studies.montecarlo.config import DEFAULT_SIGMA_SCALES, StudyConfig, StudyError, sigma_label
from topkima.studies.montecarlo.instance import instance_metrics
from topkima.studies.montecarlo.metrics import band, codes_from_firing, exact_topk, recall_precision, set_overlap
from topkima.studies.montecarlo.spice_comparison import spice_vs_behavioural
from topkima.studies.montecarlo.study import NON_RESULT_KEYS, run_montecarlo

__all__ = ["DEFAULT_SIGMA_SCALES", "NON_RESULT_KEYS", "StudyConfig", "StudyError", "band", "codes_from_firing",
           "exact_topk", "instance_metrics", "recall_precision", "run_montecarlo", "set_overlap", "sigma_label",
           "spice_vs_behavioural"]
