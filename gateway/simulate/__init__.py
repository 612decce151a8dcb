"""Simulated vendor files for tests, practice runs and site acceptance.

Each format module registers a ``FormatWriter``: given a seeded random generator, an index and
the options, it returns one file's bytes and a suggested name. Media writers (tape images,
serial senders) take objects from any registered format, so a new format needs no change there.
Tests may use these files, but never only these: independent readers and real samples are the
check (a round trip through our own simulator alone proves nothing).
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

_FORMAT_MODULES: list[str] = [
    "gateway.formats.tagstream.simulate",
    "gateway.formats.siemens.simulate",
    "gateway.formats.ge.simulate",
    "gateway.formats.ge.simulate_9800",
]


@dataclass
class SimOptions:
    """Options every format may read; a format ignores what does not apply to it."""

    compression: int | None = None
    variant: str | None = None
    byte_order: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimFile:
    name: str
    data: bytes


FormatWriter = Callable[[random.Random, int, SimOptions], SimFile]

_WRITERS: dict[str, FormatWriter] = {}


def register_format(name: str, writer: FormatWriter) -> FormatWriter:
    if name in _WRITERS and _WRITERS[name] is not writer:
        raise ValueError(f"simulated format {name!r} registered twice")
    _WRITERS[name] = writer
    return writer


def formats() -> list[str]:
    for module in _FORMAT_MODULES:
        importlib.import_module(module)
    return sorted(_WRITERS)


def generate(fmt: str, count: int, options: SimOptions | None = None, seed: int = 1) -> Iterator[SimFile]:
    """``count`` files of format ``fmt``; the same seed gives the same bytes."""
    if fmt not in formats():
        raise ValueError(f"unknown simulated format {fmt!r}; known: {', '.join(formats()) or 'none'}")
    rng = random.Random(seed)
    opts = options or SimOptions()
    for index in range(count):
        yield _WRITERS[fmt](rng, index, opts)
