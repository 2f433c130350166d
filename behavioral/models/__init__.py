"""Real transformer models in numpy with a pluggable attention step (decoder LMs)."""
