"""The decoder registry: every vendor format is a module here with one ``Decoder`` object.

Identification is by content only (never by a file name). Decoders are tried in the order of
``priority`` (lower first); the first whose ``identify`` says yes decodes the capture, but no
format may claim another's files, so the order never decides between two formats. A format
module registers itself when imported (``register`` refuses a decoder that is not a whole
``Decoder``); ``_FORMAT_MODULES`` lists the modules to import, so adding a format means adding
a module and one line there, and its files to ``tests/formats/test_contract.py``, which checks
the contract for every registered decoder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from pydicom.dataset import Dataset

from gateway.errors import DecodeError, UnknownFormat

__all__ = [
    "Decoded",
    "Decoder",
    "DumpRow",
    "DecodeError",
    "UnknownFormat",
    "register",
    "decoders",
    "identify",
    "decode",
    "object_length",
    "companions",
]

# Modules that define formats, in no particular order (priority decides).
_FORMAT_MODULES: list[str] = [
    "gateway.formats.dicom.passthrough",
    "gateway.formats.tagstream.acr_nema",
    "gateway.formats.tagstream.siemens_spi",
    "gateway.formats.siemens.somatom_plus",
    "gateway.formats.siemens.vision_ima",
    "gateway.formats.ge.genesis",
    "gateway.formats.ge.signa4x",
    "gateway.formats.ge.ct9800",
    "gateway.formats.interfile.decoder",
]


@dataclass
class Decoded:
    """What a decoder knew, before normalisation turns it into a complete IOD instance.

    ``dataset`` holds DICOM attributes by keyword (and pixel data). ``identity`` gives, per
    level ("study", "series", "instance", optionally "frame_of_reference"), the vendor's own
    identity of the object as a tuple of strings; normalisation derives deterministic UIDs from
    it where the dataset has none. ``vendor_header`` is the original header bytes, kept in our
    private block so nothing of the source is lost. ``notes`` are non-patient facts worth a
    log line at DEBUG (for example a field that disagreed with another).
    """

    dataset: Dataset
    format: str
    identity: dict[str, tuple[str, ...]] = field(default_factory=dict)
    vendor_header: bytes | None = None
    notes: list[str] = field(default_factory=list)
    # A DICOM decoder's data set bytes as they came (``gateway.dicom.verbatim.Original``), when
    # writing them again would give the same data set: the elements normalisation leaves
    # unchanged keep their bytes instead of being re-encoded.
    verbatim: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class DumpRow:
    """One vendor header field as ``legacy-gateway dump`` prints it."""

    offset: int
    name: str
    type: str
    value: Any
    target: str = ""


@runtime_checkable
class Decoder(Protocol):
    """The common signature of every format; ``register`` refuses a decoder that lacks a part.

    ``name`` is unique among formats (logs, ``dump``, the ``format`` of ``Decoded``);
    ``priority`` orders identification (lower first) and breaks no ties between formats that
    claim the same bytes: no format may claim another's files.

    One optional member, ``companions(data: bytes) -> list[str]``, for the formats whose object
    is several files (Interfile: a header and the data file it names): the names of the other
    files, relative to this one. Such a decoder's ``decode`` takes them as a second argument,
    ``parts: Mapping[str, bytes]`` keyed by those names; it never opens a file itself.
    """

    name: str
    description: str
    priority: int

    def identify(self, data: bytes) -> bool:
        """Whether this format claims ``data``. Cheap (normally the first few KiB and the total
        size) and never raises."""
        ...

    def decode(self, data: bytes) -> Decoded:
        """Pure: bytes in, ``Decoded`` out, or ``DecodeError`` naming field and offset."""
        ...

    def length(self, data: bytes) -> int | None:
        """Where the object of this format that begins ``data`` ends, by the format's own
        fields (header and pixel lengths, a fixed file size, data element lengths).

        ``data`` may be a prefix of the object, or the object followed by padding or by other
        objects (serial lines deliver both). Return ``n <= len(data)`` when the object is
        ``data[:n]`` and complete; ``n > len(data)`` when the bytes begin an object of this
        format that needs at least ``n`` bytes; None when this format does not claim the
        bytes. A format that has no way to tell its length returns None always (serial raw
        lines then cannot cut its objects out of a stream). Like ``identify``: cheap, never
        raises, never allocates by a header field. See ``object_length``.
        """
        ...

    def dump(self, data: bytes) -> list[DumpRow]:
        """Every header field of ``data`` with its offset, as ``legacy-gateway dump`` prints
        it: a vendor format's field-table rows, a tag stream's or DICOM file's elements.
        Raises ``DecodeError`` where the header cannot be read."""
        ...


_MEMBERS = ("name", "description", "priority", "identify", "decode", "length", "dump")
_METHODS = ("identify", "decode", "length", "dump")

_REGISTRY: dict[str, Decoder] = {}
_loaded = False


def register(decoder: Decoder) -> Decoder:
    """Add a decoder. A decoder that does not satisfy ``Decoder``, or a second decoder of the
    same name, is a programming error: it fails the import of its module, not a capture."""
    problems = protocol_problems(decoder)
    if problems:
        raise TypeError(f"{type(decoder).__name__} is not a Decoder: {'; '.join(problems)}")
    if decoder.name in _REGISTRY and _REGISTRY[decoder.name] is not decoder:
        raise ValueError(f"decoder {decoder.name!r} registered twice")
    _REGISTRY[decoder.name] = decoder
    return decoder


def protocol_problems(decoder: object) -> list[str]:
    """What ``decoder`` lacks of the ``Decoder`` protocol (empty when it satisfies it)."""
    problems = [f"no {member}" for member in _MEMBERS if not hasattr(decoder, member)]
    problems += [f"{method} is not callable" for method in _METHODS
                 if hasattr(decoder, method) and not callable(getattr(decoder, method))]
    for member, kind in (("name", str), ("description", str), ("priority", int)):
        if hasattr(decoder, member) and not isinstance(getattr(decoder, member), kind):
            problems.append(f"{member} is not a {kind.__name__}")
    return problems


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _FORMAT_MODULES:
            importlib.import_module(module)
        _loaded = True


def decoders() -> list[Decoder]:
    """All registered decoders, in the order identification tries them."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda d: (d.priority, d.name))


def get(name: str) -> Decoder:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no decoder named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def identify(data: bytes) -> Decoder | None:
    """The decoder that claims ``data``, or None."""
    for decoder in decoders():
        try:
            if decoder.identify(data):
                return decoder
        except Exception:  # an identify bug must never take a capture down with it
            continue
    return None


def decode(data: bytes, parts: Mapping[str, bytes] | None = None) -> Decoded:
    """Identify and decode; anything but a clean result becomes a ``DecodeError``.

    ``parts`` are the companion files' bytes (see ``companions``), for the decoders that take them."""
    decoder = identify(data)
    if decoder is None:
        raise UnknownFormat()
    if getattr(decoder, "companions", None) is not None:
        return safe_decode(lambda d: decoder.decode(d, parts or {}), data, decoder.name)
    return safe_decode(decoder.decode, data, decoder.name)


def companions(data: bytes) -> list[str] | None:
    """The other files the object beginning ``data`` needs, as names relative to it.

    For drivers that have a file system (the folder driver, ``convert``, ``send``): ``[]`` when
    the bytes are a complete object of a known format (or of one that needs nothing else);
    ``None`` when no format claims them at all, which a driver may read as "perhaps the data
    file of a header still to come". Cheap for single-file formats; never raises.
    """
    decoder = identify(data)
    if decoder is None:
        return None
    ask = getattr(decoder, "companions", None)
    if ask is None:
        return []
    try:
        return [str(name) for name in ask(data)]
    except Exception:  # a bad header still decodes (and is rejected with its reason) alone
        return []


def object_length(data: bytes) -> int | None:
    """The length of the object at the start of ``data`` by its own format (see ``Decoder``).

    Used by drivers that get objects without reliable boundaries: the serial driver trims
    XMODEM's padding with it and cuts raw byte streams into objects. The first decoder (by
    priority) with an answer decides.
    """
    for decoder in decoders():
        try:
            n = decoder.length(data)
        except Exception:  # a length bug must never take a line down with it
            continue
        if n is not None:
            return n
    return None


def safe_decode(fn: Callable[[bytes], Decoded], data: bytes, name: str) -> Decoded:
    """Run a decoder so that a bug in it reads as a ``DecodeError``, never a crash."""
    try:
        return fn(data)
    except DecodeError:
        raise
    except MemoryError:
        raise DecodeError(f"{name}: object too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - a decoder bug is still a rejected capture
        raise DecodeError(f"{name}: internal decoder error: {type(exc).__name__}: {exc}") from exc
