"""What the service expects of a driver class: the ``Driver`` protocol.

A driver knows its medium and nothing of the formats. The service (``gateway.service.sources``)
builds one per configured source with ``from_options``, calls ``start``, takes captures from
``captures(stop_event)`` until the event is set, hands each capture's verdict back through
``ack``/``reject`` (the ``CaptureSink`` half) or ``defer``, and finally calls ``stop``. Driver
classes inherit from ``Driver`` so that they say so, and get the switches' defaults.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Iterator, Protocol

from gateway.capture import Capture

# Every member a driver class must have (the switches come with ``Driver`` itself).
_METHODS = ("from_options", "start", "stop", "captures", "ack", "reject", "defer")
_SWITCHES = ("uses_state_dir", "wants_object_length", "wants_companions", "receives_c_store", "yields_idle")


class Driver(Protocol):
    """One source's medium: captures out, verdicts back.

    A driver must not release its source (move a file to done/, advance a tape journal,
    answer a serial sender) before ``ack``: only then is the instance durable in the spool.
    """

    # The service passes ``state_dir`` (gateway.state_dir) among the options: for drivers
    # that keep state of their own, such as tape journals.
    uses_state_dir: ClassVar[bool] = False
    # The service passes ``object_length=`` (the decoder registry's length check) to
    # ``from_options``: for drivers that must find where objects end in a byte stream.
    wants_object_length: ClassVar[bool] = False
    # The service passes ``companions=`` (the registry's companion-file names): for drivers with
    # a file system, so an object of several files (an Interfile pair) is taken together.
    wants_companions: ClassVar[bool] = False
    # The service turns on pynetdicom's receiving of C-STORE data sets into files (process-wide,
    # a pynetdicom setting only ``gateway.delivery.pynetdicom_internals`` may touch) before
    # ``from_options``: for drivers that are a Storage SCP and must not hold objects in memory.
    receives_c_store: ClassVar[bool] = False
    # ``captures()`` yields None whenever nothing more is ready right now. The service then
    # spools the captures in between as one group (one commit, acks after it) and commits at
    # each None: for drivers whose sources can wait that long for their acks (a folder, a tape). Others
    # get one commit per capture (a Storage SCP answers each C-STORE once its instance is durable).
    # The verdicts of a grouped capture come on a copy without its bytes (the same origin), so
    # such a driver knows its captures by origin, not by identity.
    yields_idle: ClassVar[bool] = False

    name: str

    @classmethod
    def from_options(cls, name: str, options: dict[str, Any]) -> Driver:
        """The driver of source ``name`` from its configured ``options``."""
        ...

    def start(self) -> None:
        """Begin watching the medium (and log that the source started)."""
        ...

    def stop(self) -> None:
        """Release the medium; called once, after ``captures`` has ended."""
        ...

    def captures(self, stop: threading.Event) -> Iterator[Capture | None]:
        """Captures as the medium delimits them, until ``stop`` is set (and None whenever
        nothing more is ready, if ``yields_idle``)."""
        ...

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        """The instance is durable in the spool: the source may be released."""
        ...

    def reject(self, capture: Capture, reason: str) -> None:
        """The capture can never become an instance (bad input): set it aside with ``reason``."""
        ...

    def defer(self, capture: Capture) -> None:
        """The capture was not made durable (the spool failed): keep the source so that it is
        offered again."""
        ...


def driver_problems(cls: type) -> list[str]:
    """What driver class ``cls`` lacks of the ``Driver`` protocol (empty when it satisfies it)."""
    problems = [] if Driver in cls.__mro__ else ["does not inherit from drivers.driver.Driver"]
    own = [vars(k) for k in cls.__mro__ if k is not Driver]  # Driver's stubs do not count
    problems += [f"no {method}" for method in _METHODS if not any(method in names for names in own)]
    problems += [f"{switch} is not a bool" for switch in _SWITCHES if not isinstance(getattr(cls, switch, None), bool)]
    return problems
