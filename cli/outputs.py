"""Atomic output files for the command line's reports: text (Markdown, CSV, HTML, JSON text)
and matplotlib figures. Each goes to a temporary file in the target folder, is flushed and
fsynced, made world-readable (mkstemp creates 0600) and renamed over the target, so a reader
never sees half a file and an interruption leaves the previous one in place."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _replace_atomically(path: Path, write) -> None:
    """Call ``write(binary file handle)`` on a temporary file next to ``path``, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _replace_atomically(Path(path), lambda fh: fh.write(text.encode("utf-8")))


def save_figure_atomic(fig, path: str | os.PathLike, *, close: bool = False, **savefig_kwargs) -> None:
    """``fig.savefig`` to ``path`` atomically (the format from its suffix unless given);
    ``close``: then close the figure (also when saving fails)."""
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip("."))
    try:
        _replace_atomically(path, lambda fh: fig.savefig(fh, **savefig_kwargs))
    finally:
        if close:
            import matplotlib.pyplot as plt
            plt.close(fig)


def save_npz_atomic(path: str | os.PathLike, **arrays) -> None:
    """``numpy.savez`` of ``arrays`` to ``path`` atomically."""
    import numpy as np
    _replace_atomically(Path(path), lambda fh: np.savez(fh, **arrays))
