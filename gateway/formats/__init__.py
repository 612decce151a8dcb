"""The decoder registry: every vendor format is a ``Decoder`` object registered here.

Identification is by content only (never by a file name). Decoders are tried in the order of
``priority`` (lower first); the first whose ``identify`` says yes decodes the capture, but no
format may claim another's files, so the order never decides between two formats.

Each format comes in two halves, like pydicom's pixel-data plugins: its ``Format`` (name,
description, priority, ``identify``, ``companions`` and, where the format's own fields
suffice, ``length``) in its family's ``recognise`` module, which imports neither pydicom nor
numpy; and its decoder class (``decode``, ``dump``, the rest), a subclass named by the
format's ``implementation`` and imported on first use. So ``legacy-gateway identify`` and the
folder driver's companion look-ups never load a decoder (about 0.4 s of imports).

A ``recognise`` module registers its formats when imported (``register`` refuses a decoder
that is not a whole ``Decoder``); ``_FORMAT_MODULES`` lists the modules to import, so adding a
format means its ``Format`` and decoder class, one line there (for a new family's module), and
its files in ``tests/formats/test_contract.py``, which checks the contract for every
registered decoder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

from gateway.errors import DecodeError, UnknownFormat

if TYPE_CHECKING:  # pydicom is the decoders' to import, not identification's
    from pydicom.dataset import Dataset

__all__ = [
    "Decoded",
    "Decoder",
    "Format",
    "DumpRow",
    "DecodeError",
    "UnknownFormat",
    "register",
    "decoders",
    "load_decoders",
    "identify",
    "decode",
    "object_length",
    "companions",
]

# Modules that register formats (their cheap halves), in no particular order (priority decides).
_FORMAT_MODULES: list[str] = [
    "gateway.formats.dicom.recognise",
    "gateway.formats.tagstream.recognise",
    "gateway.formats.siemens.recognise",
    "gateway.formats.ge.recognise",
    "gateway.formats.interfile.recognise",
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
_LOADED_ON_USE = ("decode", "length", "dump")


class Format:
    """The cheap half of a format, registered in its decoder's stead.

    A subclass sets ``name``, ``description``, ``priority``, ``identify`` (and ``companions``,
    ``length`` when they need nothing heavy) in a module that imports neither pydicom nor
    numpy. ``implementation`` (``"module:Class"``) names the decoder class, a subclass of this
    one that adds ``decode`` and ``dump`` (and ``length`` when the format did not): it is
    imported and made once, on the first call that needs it. The decoder class is a whole
    ``Decoder`` by itself (tests and simulators use it directly).
    """

    name: str
    description: str
    priority: int
    implementation: str

    def decode(self, data: bytes, *parts: Mapping[str, bytes]) -> Decoded:
        return self.decoder().decode(data, *parts)

    def length(self, data: bytes) -> int | None:
        return self.decoder().length(data)

    def dump(self, data: bytes) -> list[DumpRow]:
        return self.decoder().dump(data)

    def decoder(self) -> Decoder:
        """The decoder class's instance (imported on first use; a programming error in it, such
        as a member it forgot to define, fails here with a ``TypeError``)."""
        made = self.__dict__.get("_decoder")
        if made is None:
            made = self.__dict__["_decoder"] = _implementation(self)
        return made


def _implementation(fmt: Format) -> Decoder:
    """Import and make ``fmt``'s decoder class, refusing one that is not its subclass or that
    would hand a member back to ``Format`` (which would ask the decoder again, for ever)."""
    module, _, cls_name = fmt.implementation.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    whole = isinstance(cls, type) and issubclass(cls, type(fmt))
    problems = [] if whole else [f"{cls_name} is not a {type(fmt).__name__}"]
    problems += [f"{cls_name} defines no {m}" for m in _LOADED_ON_USE if getattr(cls, m, None) is getattr(Format, m)]
    if problems:
        raise TypeError(f"{fmt.implementation} cannot decode {fmt.name!r}: {'; '.join(problems)}")
    return cls()


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
    if isinstance(decoder, Format) and ":" not in str(getattr(decoder, "implementation", "")):
        problems.append("implementation is not 'module:Class'")
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


def load_decoders() -> None:
    """Import every format's decoder class now, for a process that would rather pay those
    imports before its work than during it (a benchmark timing transfers)."""
    for decoder in decoders():
        if isinstance(decoder, Format):
            decoder.decoder()


def get(name: str) -> Decoder:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no decoder named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


# The last bytes object identified and its decoder: whoever reads a file asks for its
# companions (an identification) and then decodes it (another). Keyed by identity, never by
# content, and only for immutable ``bytes`` some format claims (those are decoded next, and
# ``decode`` lets the reference go; unclaimed ones may wait long as a header's data file).
_last: tuple[bytes, Decoder | None] | None = None


def identify(data: bytes) -> Decoder | None:
    """The decoder that claims ``data``, or None."""
    global _last
    last = _last
    if last is not None and last[0] is data:
        return last[1]
    found = _identify(data)
    if type(data) is bytes and found is not None:  # bytes no format claims are never decoded
        _last = (data, found)
    return found


def _identify(data: bytes) -> Decoder | None:
    for decoder in decoders():
        try:
            if decoder.identify(data):
                return decoder
        except Exception:  # an identify bug must never take a capture down with it
            continue
    return None


def _forget(data: bytes) -> None:
    """Drop the remembered identification of ``data`` (decoded: it will not be asked again)."""
    global _last
    last = _last
    if last is not None and last[0] is data:
        _last = None


def decode(data: bytes, parts: Mapping[str, bytes] | None = None) -> Decoded:
    """Identify and decode; anything but a clean result becomes a ``DecodeError``.

    ``parts`` are the companion files' bytes (see ``companions``), for the decoders that take them."""
    decoder = identify(data)
    _forget(data)
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
