"""The identity of the code a study's cached results depend on."""
from __future__ import annotations

import hashlib
from pathlib import Path


def code_version() -> str:
    """SHA-256 of the behavioural model's and the studies' Python sources (``behavioral/`` and
    ``studies/``, every subfolder): a change there makes every cached study result stale."""
    from topkima import behavioral, studies
    h = hashlib.sha256()
    for package in (behavioral, studies):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()
