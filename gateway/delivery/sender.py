"""What a lane sends through: one interface, one implementation per destination type.

The forwarder's lanes claim, settle, back off and probe the same way whatever the wire is; only
the sender differs. ``Link`` (``gateway.delivery.association``) sends over a reused DICOM
association, one C-STORE per instance; ``StowSender`` (``gateway.delivery.stow``) over reused
HTTP connections, one STOW-RS request per batch. Both answer a batch with a ``Batch``: what
came back per instance, what was not sent (back to the queue unpenalised) and, when the
destination itself failed, why (the lane then stops and the supervisor probes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, Protocol

if TYPE_CHECKING:
    from gateway.config import Destination
    from gateway.delivery.association import Sent
    from gateway.delivery.spool import Item

Pair = tuple[str, str]  # (SOP class UID, transfer syntax UID)


@dataclass
class Batch:
    """The outcome of sending a batch."""

    answered: list[tuple["Item", "Sent"]] = field(default_factory=list)  # each counts an attempt
    released: list[tuple["Item", str]] = field(default_factory=list)     # not sent: why
    lost: str | None = None  # the destination failed (unreachable, lost, no answer, server error)


class Sender(Protocol):
    """A lane's connection to its destination, kept open across batches."""

    sent: int          # instances sent since opened (renewed after max_per_association)
    last_used: float   # time.monotonic() of the last exchange

    @property
    def is_open(self) -> bool: ...

    def covers(self, pairs: Iterable[Pair], commitment: bool = False) -> bool:
        """Can these (SOP class, transfer syntax) pairs be sent as it is open now?"""

    def open(self, first: Iterable[Pair], waiting: Iterable[Pair] = (), commitment: bool = False) -> None:
        """(Re)open; raises ``LinkError`` if the destination cannot be reached."""

    def send_batch(self, items: list["Item"], stopping: threading.Event,
                   meanwhile: Callable[[], None] | None = None) -> Batch:
        """Send ``items``; ``meanwhile`` (which must not raise) runs once, while the peer works
        on the last of them or right after, so the lane can claim its next batch."""

    def close(self) -> None: ...

    def abort(self) -> None:
        """Cut the connection (from another thread, to stop)."""

    def idling(self) -> ContextManager[None]:
        """Around a lane's wait for more work while open: the connection costs as little as
        it can meanwhile."""


def new_sender(dest: "Destination", ae_title: str, on_report: Callable | None = None) -> Sender:
    """The sender for ``dest``'s type."""
    if dest.type == "dicomweb":
        from gateway.delivery.stow import StowSender

        return StowSender(dest)
    from gateway.delivery.association import Link

    return Link(dest, ae_title, on_report=on_report)


def probe(dest: "Destination", ae_title: str) -> tuple[bool, str, float]:
    """Is the destination up: (answers, what happened, seconds). DIMSE: a C-ECHO; DICOMweb: a
    GET of ``{url}/studies?limit=1`` (any HTTP answer below 500 means the server is up)."""
    if dest.type == "dicomweb":
        from gateway.delivery.stow import probe as http_probe

        return http_probe(dest)
    from gateway.delivery.association import echo

    return echo(dest, ae_title)
