"""Event data and file formats: ``open`` reads any supported file as a sequence of Events."""

from __future__ import annotations

from pathlib import Path

from lartpcnet.errors import DataError


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
