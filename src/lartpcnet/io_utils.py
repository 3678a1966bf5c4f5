"""Atomic file writes: a killed job never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are shared like any written file
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def open_output(path: str | Path, fmt: str, what: str):
    """An HDF5 file that lartpcnet wrote (``format`` attribute ``fmt``), open for reading; a
    one-line DataError for anything else."""
    import h5py

    from lartpcnet.errors import DataError

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"cannot be opened as HDF5 ({err})", file=str(path)) from err
    if f.attrs.get("format") != fmt:
        f.close()
        raise DataError(f"is not a {what}", file=str(path), field="format")
    return f
