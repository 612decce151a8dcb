"""Exceptions that cross module boundaries."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""


class DecodeError(GatewayError):
    """Bad or unsupported input: says which field is wrong and where.

    ``field`` names the vendor header field or DICOM element; ``offset`` is the byte offset
    in the capture where the problem was found (``None`` when it has no single place).
    """

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None):
        self.reason = message
        self.field = field
        self.offset = offset
        parts = [message]
        if field is not None:
            parts.append(f"field {field}")
        if offset is not None:
            parts.append(f"offset {offset}")
        super().__init__(" at ".join(parts[:1]) + ("" if len(parts) == 1 else " (" + ", ".join(parts[1:]) + ")"))


class UnknownFormat(DecodeError):
    """No decoder recognises the bytes."""

    def __init__(self, message: str = "unknown format"):
        super().__init__(message)


class StorageError(GatewayError):
    """The spool could not make an instance durable (disk full, permissions, I/O): the capture
    stays unacknowledged at its source and is offered again later. Never bad input."""


class ConfigError(GatewayError):
    """An invalid configuration; ``problems`` lists every one found, each self-contained."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))
