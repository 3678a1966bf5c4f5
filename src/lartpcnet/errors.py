"""Errors about bad input. Their message names the file, event and field concerned."""

from __future__ import annotations


class DataError(ValueError):
    """A data file, event or field is unreadable or invalid."""

    def __init__(self, message: str, *, file: str | None = None, event: int | None = None,
                 field: str | None = None) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if event is not None:
            where.append(f"event {event}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)
        self.file, self.event, self.field = file, event, field
