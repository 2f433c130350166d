"""The pretrained models a study process works with, loaded once per process (the parent and
each worker) and shared by its threads."""
from __future__ import annotations

import threading

_LOADED: dict = {}
_LOCK = threading.Lock()


def _once(name: str, load):
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = load()
        return _LOADED[name]


def minilm():
    """This process's all-MiniLM-L6-v2."""
    from topkima.behavioral.minilm import MiniLM
    return _once("minilm", MiniLM.load)


def smollm2():
    """This process's SmolLM2-135M-Instruct."""
    from topkima.behavioral.models.smollm2 import SmolLM2
    return _once("smollm2", SmolLM2.load)
