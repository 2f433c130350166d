"""Studies: the questions asked of the calibrated model, each a typed configuration in and files
and figures out. The Monte Carlo variation study (:mod:`topkima.studies.montecarlo`), the MiniLM
attention evaluation on the VADER movie-review probe (:mod:`topkima.studies.attention_eval`) and
the whole-accelerator estimate (:mod:`topkima.studies.accelerator`). The data they read
(:mod:`topkima.studies.movie_reviews`) and the probe they score with (:mod:`topkima.studies.probe`)
live beside them, and so does fine-tuning MiniLM for the chip (:mod:`topkima.studies.finetune`,
TFCBP + QAT in :mod:`topkima.studies.tfcbp`). The command line (``topkima.cli``) only parses
arguments and calls them.
"""
