"""Source types to driver classes: the one place the gateway knows which drivers exist.

Each driver class offers ``from_options(name, options)``, ``start()``, ``stop()``,
``captures(stop_event)`` and the ``CaptureSink`` methods ``ack``/``reject``.
"""

from __future__ import annotations

import importlib

from gateway import decoders
from gateway.config import Source

DRIVERS: dict[str, str] = {
    "folder": "drivers.folder:FolderDriver",
    "serial": "drivers.serial:SerialDriver",
}


def make_driver(source: Source):
    module, _, name = DRIVERS[source.type].partition(":")
    cls = getattr(importlib.import_module(module), name)
    if getattr(cls, "wants_object_length", False):
        # Drivers that must find where objects end in a byte stream ask the formats, never guess.
        return cls.from_options(source.name, dict(source.options), object_length=decoders.object_length)
    return cls.from_options(source.name, dict(source.options))
