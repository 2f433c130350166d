"""Studies: the questions asked of the calibrated model, each a typed configuration in and files
and figures out. Here: fine-tuning MiniLM for the chip (:mod:`topkima.studies.finetune`, TFCBP +
QAT in :mod:`topkima.studies.tfcbp`). The command line (``topkima.cli``) only parses and calls.
"""
