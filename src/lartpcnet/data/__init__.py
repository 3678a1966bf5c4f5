"""Event data and file formats: ``open`` reads any supported file as a sequence of Events.

Every reader refuses bad input with a one-line ``DataError`` naming the file, and the event and
field where they are known: a damaged file, a missing or mistyped dataset, NaN/inf values,
coordinates that are not integers or lie outside the image, label codes outside their range, and
duplicate coordinates. Duplicates are refused rather than merged: a site listed twice is a
damaged or mis-written file, and merging (larcv sums the charge) would have to invent a rule for
the labels of the two entries. An event with no active sites is valid and reads as empty images.

Each reader also says which truth labels its events carry (``truth_labels``: some of
``semantic``, ``instance``, ``interaction``, ``origin``), without reading the events.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lartpcnet.errors import DataError

# What h5py, uproot and numpy raise on a damaged file. They are turned into a DataError at the
# readers' boundaries (open, read one event), so that no damaged file gives a traceback.
CORRUPT_FILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError, AttributeError, ArithmeticError,
    EOFError, MemoryError, AssertionError, struct.error, zlib.error,
)


def first_line(err: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, short enough for a one-line error."""
    text = " ".join(str(err).split()) if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:limit]}" if text else type(err).__name__


@contextmanager
def reading(path: str, event: int | None = None, field: str | None = None,
            extra: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turns any error of reading a damaged file into a one-line DataError naming ``path``
    (and ``event``/``field``); a DataError passes as it is."""
    try:
        yield
    except DataError:
        raise
    except (*CORRUPT_FILE_ERRORS, *extra) as err:
        raise DataError(f"unreadable, the file is damaged or not written as expected ({first_line(err)})",
                        file=path, event=event, field=field) from err


def open(path: str | Path):
    """A reader for a data file: ``len(reader)`` events, ``reader[i]`` an Event, read lazily.

    Supported: lartpcnet's own HDF5 format, larcv3 HDF5 and larcv2 ROOT (image2d, particle).
    """
    from lartpcnet.data import h5format, larcv3

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a data file")
    with path.open("rb") as f:
        head = f.read(8)
    if head == larcv3.HDF5_SIGNATURE:
        if h5format.is_event_file(path):
            return h5format.EventFile(path)
        if larcv3.is_larcv3(path):
            return larcv3.Larcv3Events(path)
        raise DataError("HDF5 file in an unknown layout (neither lartpcnet nor larcv3)", file=str(path))
    if head[:4] == b"root":
        from lartpcnet.data import larcv2

        return larcv2.Larcv2Events(path)
    raise DataError("unrecognised format (supported: lartpcnet HDF5, larcv3 HDF5, larcv2 ROOT)", file=str(path))
