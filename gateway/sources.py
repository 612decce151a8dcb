"""Source types to driver classes: the one place the gateway knows which drivers exist.

Each driver class offers ``from_options(name, options)``, ``start()``, ``stop()``,
``captures(stop_event)`` and the ``CaptureSink`` methods ``ack``/``reject``.
"""

from __future__ import annotations

import importlib

from gateway.config import Source

DRIVERS: dict[str, str] = {
    "folder": "drivers.folder:FolderDriver",
}


def make_driver(source: Source):
    module, _, cls = DRIVERS[source.type].partition(":")
    return getattr(importlib.import_module(module), cls).from_options(source.name, dict(source.options))
