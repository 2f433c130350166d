"""The project's one atomic file writer: a reader never sees half a file, and a crash or a
``kill -9`` in the middle of a write leaves the previous file in place.

Each write goes to a temporary file in the target's folder, which is flushed and fsynced, given
the permissions of an ordinary new file (``0o666`` less the umask; ``mkstemp`` would leave it
private, ``0o600``), and renamed over the target (``os.replace`` is atomic within one file
system); the folder is then fsynced so that the rename itself survives a power cut.

It lives at the bottom layer that writes files (the SPICE result cache, ``circuits/jobs.py``);
the calibration artefact, the studies and the command line's report all use it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def _ordinary_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:          # a platform or file system that cannot open folders: the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(binary file handle)`` on a temporary file beside ``path``, then move it there.

    The folder is created if missing. On any error (or an interruption) the temporary file is
    removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _ordinary_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_atomic(path, lambda fh: fh.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data, indent: int | None = 1) -> None:
    """Write ``data`` as JSON (keys in their order, no NaN or infinity, a final newline) atomically."""
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=False, allow_nan=False) + "\n")
