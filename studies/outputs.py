"""Figures and array files of the studies, written with the project's one atomic writer
(:func:`topkima.circuits.files.write_atomic`): a reader never sees half a file."""
from __future__ import annotations

import os
from pathlib import Path

from topkima.circuits.files import write_atomic


def save_figure_atomic(fig, path: str | os.PathLike, *, close: bool = False, **savefig_kwargs) -> None:
    """``fig.savefig`` to ``path`` atomically (the format from its suffix unless given);
    ``close``: then close the figure (also when saving fails)."""
    path = Path(path)
    savefig_kwargs.setdefault("format", path.suffix.lstrip("."))
    try:
        write_atomic(path, lambda fh: fig.savefig(fh, **savefig_kwargs))
    finally:
        if close:
            import matplotlib.pyplot as plt
            plt.close(fig)


def save_npz_atomic(path: str | os.PathLike, **arrays) -> None:
    """``numpy.savez`` of ``arrays`` to ``path`` atomically."""
    import numpy as np
    write_atomic(path, lambda fh: np.savez(fh, **arrays))
