"""Errors about bad input: the CLI prints them as one line, with no traceback.

``UserError`` is a bad argument or setting; ``DataError`` a bad file, event or field, whose
message names them. Both are ``ValueError`` s, so library callers can catch them as such, but the
CLI treats only these as the user's: any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """A bad argument, setting or request (wrong flag value, unknown name, refused overwrite)."""


class DataError(UserError):
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


def one_line(err: BaseException) -> str:
    """The first line of an exception's message (its type where it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def validation_message(err, prefix: str = "") -> str:
    """A pydantic ValidationError as 'field.path: message' for its first error."""
    first = err.errors()[0]
    where = ".".join(str(x) for x in first["loc"])
    return f"{prefix}{where}: {first['msg']}" if where or prefix else first["msg"]
