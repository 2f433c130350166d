"""The optional training backend: JAX and optax, installed by the ``[train]`` extra.

Inference and the chip path are numpy; only fine-tuning needs automatic differentiation. This
module is the one place that imports JAX, so a missing extra gives one clear message.
"""
from __future__ import annotations

import os

INSTALL_HINT = "pip install -e '.[train]'  (JAX and optax, CPU wheels from PyPI)"


class TrainExtraMissingError(RuntimeError):
    """JAX or optax (the ``[train]`` extra) is not installed."""


def require_jax():
    """``(jax, jax.numpy, optax)``, or :class:`TrainExtraMissingError` saying how to install them.

    With ``TOPKIMA_THREADS=1`` XLA's CPU backend is asked for one thread (set before the first
    import of jax; the machines here are shared 2-core ones)."""
    if os.environ.get("TOPKIMA_THREADS") == "1" and "jax" not in __import__("sys").modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                       "intra_op_parallelism_threads=1").strip()
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError as exc:
        raise TrainExtraMissingError(
            f"fine-tuning needs the optional [train] extra ({exc.name} is not installed); "
            f"install it with: {INSTALL_HINT}") from exc
    return jax, jnp, optax


def to_jax(params):
    """A nested dict/list/tuple of numpy arrays as the same structure of float32 JAX arrays."""
    jax, jnp, _ = require_jax()
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jnp.float32), params)


def to_numpy(params):
    """A pytree of JAX arrays as numpy float32 arrays (same structure)."""
    import numpy as np
    jax, _, _ = require_jax()
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), params)
