"""Exceptions that cross module boundaries."""

from __future__ import annotations

import errno


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


class UsageError(GatewayError):
    """What a command was given cannot work (an option, a path, a port); the message says what
    is wrong and what to do, in one line for the operator."""


class ListenError(GatewayError):
    """A listening socket (archive, metrics, commitment) could not be opened: the address, and why."""


def listen_error(what: str, host: str, port: int, exc: BaseException) -> ListenError:
    """One sentence for a failed bind, with the usual cause named."""
    reason = getattr(exc, "strerror", None) or str(exc)
    hints = {
        errno.EADDRINUSE: "another program (or another legacy-gateway) already listens there; stop it or choose "
                          "another port",
        errno.EADDRNOTAVAIL: f"{host} is not an address of this machine; use 127.0.0.1, 0.0.0.0 or one of its own",
        errno.EACCES: "ports below 1024 need privileges; choose a port above 1023",
    }
    hint = hints.get(getattr(exc, "errno", None), "")
    return ListenError(f"cannot listen for {what} on {host}:{port}: {reason}" + (f" ({hint})" if hint else ""))


class IntakePaused(StorageError):
    """The spool takes no new instance for now: its file system is at the free-space floor
    (``gateway.min_free_mb``/``min_free_percent``) or full. ``reason`` says which and how much
    is free; intake resumes by itself once delivery or the operator frees space."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
