"""Source types to driver classes: the one place the gateway knows which drivers exist.

Each driver class is a ``drivers.driver.Driver`` (the protocol says what the service calls and
when); a class that is not one is refused when it is loaded.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from drivers.driver import Driver, driver_problems
from gateway import formats
from gateway.config import Source
from gateway.delivery import pynetdicom_internals

DRIVERS: dict[str, str] = {
    "dicom": "drivers.dicom_scp:DicomDriver",
    "folder": "drivers.folder:FolderDriver",
    "serial": "drivers.serial.source:SerialDriver",
    "tape": "drivers.tape.source:TapeDriver",
}


def driver_class(source_type: str) -> type[Driver]:
    """The driver class of ``source_type``; one that does not satisfy ``Driver`` is a
    programming error."""
    module, _, name = DRIVERS[source_type].partition(":")
    cls = getattr(importlib.import_module(module), name)
    problems = driver_problems(cls)
    if problems:
        raise TypeError(f"{DRIVERS[source_type]} is not a Driver: {'; '.join(problems)}")
    return cls


def make_driver(source: Source, state_dir: Path | None = None) -> Driver:
    """The driver of ``source``; drivers that keep state (tape journals) get ``state_dir``, and
    drivers that must find where objects end in a byte stream get the formats' length check
    (``wants_object_length``), drivers with a file system the formats' companion files
    (``wants_companions``: an Interfile header's data file), so they never guess at a format
    themselves; a Storage SCP (``receives_c_store``) gets pynetdicom's receiving into files."""
    driver = driver_class(source.type)
    options = dict(source.options)
    if driver.receives_c_store:
        pynetdicom_internals.receive_c_store_into_files()
    if driver.uses_state_dir and state_dir is not None:
        options["state_dir"] = state_dir
    extra = {}
    if driver.wants_object_length:
        extra["object_length"] = formats.object_length
    if driver.wants_companions:
        extra["companions"] = formats.companions
    return driver.from_options(source.name, options, **extra)
