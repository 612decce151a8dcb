"""Source types to driver classes: the one place the gateway knows which drivers exist.

Each driver class offers ``from_options(name, options)``, ``start()``, ``stop()``,
``captures(stop_event)`` and the ``CaptureSink`` methods ``ack``/``reject``. A driver class
with ``uses_state_dir = True`` also receives ``state_dir`` (gateway.state_dir) among its options.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from gateway import formats
from gateway.config import Source

DRIVERS: dict[str, str] = {
    "folder": "drivers.folder:FolderDriver",
    "serial": "drivers.serial.source:SerialDriver",
    "tape": "drivers.tape.source:TapeDriver",
}


def make_driver(source: Source, state_dir: Path | None = None):
    """The driver of ``source``; drivers that keep state (tape journals) get ``state_dir``, and
    drivers that must find where objects end in a byte stream get the formats' length check
    (``wants_object_length``), and drivers with a file system the formats' companion files
    (``wants_companions``: an Interfile header's data file), so they never guess at a format
    themselves."""
    module, _, cls = DRIVERS[source.type].partition(":")
    driver = getattr(importlib.import_module(module), cls)
    options = dict(source.options)
    if getattr(driver, "uses_state_dir", False) and state_dir is not None:
        options["state_dir"] = state_dir
    extra = {}
    if getattr(driver, "wants_object_length", False):
        extra["object_length"] = formats.object_length
    if getattr(driver, "wants_companions", False):
        extra["companions"] = formats.companions
    return driver.from_options(source.name, options, **extra)
