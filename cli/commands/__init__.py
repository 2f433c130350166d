"""The `topkima` command families: each module parses its commands' options and calls the engines
(in `topkima.studies`, `topkima.calibration`, …); `topkima.cli` builds the parser from them."""
