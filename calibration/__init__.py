"""Calibration: turns SPICE measurements into the versioned artefact the behavioural model reads."""
from topkima.calibration.artefact import (SCHEMA_VERSION, ArtefactError, Calibration, load_calibration,
                                          validate, write_atomic)

__all__ = ["SCHEMA_VERSION", "ArtefactError", "Calibration", "load_calibration", "validate", "write_atomic"]
