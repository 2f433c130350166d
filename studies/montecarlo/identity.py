"""The identity of a Monte Carlo result, which names its folder of resumable result files.

An identity holds what a result depends on: the study parameters that matter for it, the
calibration artefact's SHA-256 and the code's (:func:`topkima.studies.code_version.code_version`).
"""
from __future__ import annotations

import hashlib
import json

from topkima.studies.adc_windows import N_WINDOW_SENTENCES
from topkima.studies.montecarlo.config import StudyConfig


def artefact_sha256(cal) -> str:
    """SHA-256 of a loaded calibration artefact's content."""
    return hashlib.sha256(json.dumps(cal.data, sort_keys=True).encode()).hexdigest()


def short_hash(identity: dict) -> str:
    """16 hex digits naming an identity's folder."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def instance_identity(cfg: StudyConfig, artefact: str, code: str) -> dict:
    """What one (σ, instance) result depends on: not the instance count or the σ list, so that
    a larger study reuses a smaller one's finished instances."""
    keep = ("k", "seed", "n_queries", "n_keys", "d", "q_max_code", "array")
    return {"kind": "instance", **{f: getattr(cfg, f) for f in keep}, "artefact": artefact, "code": code}


def accuracy_identity(cfg: StudyConfig, artefact: str, code: str) -> dict:
    """What one (σ, accuracy instance) result depends on."""
    keep = ("k", "seed", "array", "accuracy_test_sentences", "accuracy_train_sentences")
    return {"kind": "accuracy", **{f: getattr(cfg, f) for f in keep}, "window_sentences": N_WINDOW_SENTENCES,
            "artefact": artefact, "code": code}
