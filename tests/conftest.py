"""Shared test settings: single-threaded BLAS and ngspice; no hidden global state."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
