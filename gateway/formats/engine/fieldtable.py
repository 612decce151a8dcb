"""The field-table engine: a vendor header declared as data, read by one generic engine.

How to declare a header (one field a line, like dicom3tools' .tpl templates)::

    from gateway.formats.engine.fieldtable import Table, F, To, Used

    IMAGE = Table("image header", size=1024, fields=[
        #  offset  type          name              DICOM target / converter          decision
        F(0,     "char[14]",    "identifier"),
        F(62,    "char[3]",     "series_number",  To("SeriesNumber", int)),  # any callable
        F(88,    "int16_be",    "study_day",      Used("StudyDate")),
        F(302,   "dg_single",   "fov_mm",         "ReconstructionDiameter",
          note="DG float, not IEEE: 42 F0 00 00 is 240.0 (ge-signa-4x.md 3)"),
        F(512,   "int32_be[3]", "study_date_ymd", Used("StudyDate")),
    ])

    record = IMAGE.read(data, base=5120)   # base: where the header starts in ``data``
    record["fov_mm"]                       # -> 240.0
    IMAGE.apply(record, dataset)           # sets every field whose target is a keyword / To
    IMAGE.dump(data, base=5120)            # -> [DumpRow(offset, name, type, value, target)]
    IMAGE.write({"fov_mm": 240.0}, into=buf, base=5120, pad=b" ")  # the inverse (simulators)

* ``offset`` is relative to the table's start; ``read(data, base)`` adds ``base`` (a header
  found through a pointer, or a fixed block such as Signa's 3072). Every read is bounds
  checked: a field beyond the data raises ``DecodeError`` naming the table, field and
  absolute offset. Nothing is allocated from a field's value here.
* ``type`` is a field type name (``TYPES``): every ``gateway.formats.engine.hostnum`` number type
  (``int8``, ``uint8``, ``int16_be``, ``uint16_be``, ``int32_be``, ``uint32_be``, the ``_le``
  twins, ``float32_be``, ``float64_be``, ``float32_le``, ``float64_le``, ``dg_single``,
  ``dg_double``, ``vax_f``, ``vax_d``, ``vax_g``), ``unix_time_be`` / ``unix_time_le``
  (Int32 seconds since 1970 -> aware UTC datetime), and the sized types ``char[n]`` (ASCII,
  cut at the first NUL, trailing blanks stripped) and ``bytes[n]`` (raw). ``T[k]`` with a
  fixed-size ``T`` is an array of ``k`` values (a tuple). A format that needs a type of its
  own registers it with ``register_type`` from its own module: adding a format never
  means editing this engine.
* The fourth column says where the value goes: a DICOM keyword (copied as is, text
  cleaned for its VR), ``To(keyword, convert)`` (``convert(value)`` gives the DICOM value,
  or None to leave it out), ``Used("...")`` (read by the decoder's own code, e.g. dates made
  of three fields or geometry; the text is shown by ``dump``), or nothing (dump only).
* ``note`` records decisions where sources disagree, next to the field; ``dump`` does not
  print it, the code review reads it.
* A VAX reserved operand has no value: the field reads as None (``dump`` shows it).
* ``write`` is ``read``'s inverse, for simulators and tests: each type's encoder sits next to
  its reader, and every value ``read`` can return writes back to bytes that read as that
  value (``char`` fields are padded with ``pad``; text that ``read`` could not return, such
  as trailing blanks or a NUL, is refused). Unknown names and values that do not fit raise
  ``ValueError`` naming the table, field and offset.
* In the decoder's own code: ``record.error(name, message)`` makes the DecodeError for a bad
  value (naming field and absolute offset); ``set_value(ds, keyword, value)`` applies the VR
  rules (text cleaning, DS formatting, None/"" left out) and ``put`` sets a value already
  valid for its VR (``None`` = present but empty, for type 2).
* Examples: gateway/formats/ge/signa4x.py (fixed blocks, DG floats, dump = the tables) and
  ge_genesis.py (headers found through pointers, two layouts from one list of lines).
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import numbers
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from pydicom import config as _pydicom_config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import DSfloat

from gateway.dicom.tags import shared_tag
from gateway.dicom.values import MAX_LENGTH, ds_number, forbidden_controls
from gateway.dicom.verbatim import read as _verbatim_read
from gateway.errors import DecodeError
from gateway.formats import DumpRow
from gateway.formats.engine.hostnum import NUMBER_TYPES, ReservedOperand, reserved_operand

__all__ = [
    "FieldType",
    "TYPES",
    "register_type",
    "F",
    "Field",
    "To",
    "Used",
    "Table",
    "Record",
    "clean_text",
    "ds_number",
    "set_value",
    "put",
    "element",
    "Elements",
]


# --------------------------------------------------------------------------- field types


@dataclass(frozen=True)
class FieldType:
    """How to read (and write) one kind of field.

    ``size`` is the byte size, or None for a sized type (``char[n]``), whose ``read`` then
    receives exactly ``n`` bytes. ``read`` gets the field's bytes and returns the value.
    ``show`` renders a value for ``dump``. ``write`` is ``read``'s inverse: ``write(value)``
    for a fixed size, ``write(value, n, pad)`` for a sized type (``pad``: the fill byte the
    format uses after text); ValueError when the value does not fit.
    """

    name: str
    size: int | None
    read: Callable[[bytes], Any]
    show: Callable[[Any], str] = repr
    fmt: str | None = None  # a ``struct`` format reading the value straight from the buffer
    write: Callable[..., bytes] | None = None


TYPES: dict[str, FieldType] = {}


def register_type(ftype: FieldType) -> FieldType:
    """Add a field type; a format module may add its own without touching the engine."""
    if ftype.name in TYPES and TYPES[ftype.name] is not ftype:
        raise ValueError(f"field type {ftype.name!r} registered twice")
    TYPES[ftype.name] = ftype
    return ftype


def _number_type(name: str) -> FieldType:
    t = NUMBER_TYPES[name]
    vax = name.startswith("vax_")

    def read(b: bytes) -> Any:
        try:
            return t.scalar(b)
        except ReservedOperand:
            return None

    def write(value: Any) -> bytes:
        if value is None and vax:
            return reserved_operand(t.size)  # what reads as None
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        return t.encode(value)

    return FieldType(name, t.size, read, lambda v: "reserved operand" if v is None else repr(v), t.fmt, write)


def _read_char(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("latin-1").rstrip(" ")


def _write_char(value: Any, size: int, pad: bytes) -> bytes:
    """Latin-1 text, then ``pad``; refused if ``_read_char`` would not give it back."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    if "\0" in value or value != value.rstrip(" "):
        raise ValueError(f"{value!r}: a NUL or trailing blanks do not survive reading")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{value!r} is not Latin-1 text") from None
    if len(raw) > size:
        raise ValueError(f"{value!r} is longer than {size} characters")
    return raw + pad * (size - len(raw))


def _write_bytes(value: Any, size: int, pad: bytes) -> bytes:
    """Raw bytes, exactly ``size`` of them (``read`` returns them all)."""
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(f"{value!r} is not {size} bytes")
    return bytes(value)


def _unix_time(fmt: str) -> Callable[[bytes], _dt.datetime]:
    unpack = struct.Struct(fmt).unpack

    def read(b: bytes) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(unpack(b)[0], _dt.timezone.utc)

    return read


def _unix_time_writer(number: str) -> Callable[[_dt.datetime], bytes]:
    encode = NUMBER_TYPES[number].encode

    def write(value: _dt.datetime) -> bytes:
        """An aware datetime on a whole second (naive ones say no time zone: refused)."""
        if not isinstance(value, _dt.datetime) or value.utcoffset() is None:
            raise ValueError(f"{value!r} is not a datetime with a time zone")
        seconds = value.timestamp()
        if seconds != int(seconds):
            raise ValueError(f"{value} is not on a whole second")
        return encode(int(seconds))

    return write


def _show_time(v: _dt.datetime) -> str:
    return f"{int(v.timestamp())} ({v:%Y-%m-%d %H:%M:%S} UTC)"


for _name in NUMBER_TYPES:
    register_type(_number_type(_name))
register_type(FieldType("char", None, _read_char, repr, write=_write_char))
register_type(FieldType("bytes", None, bytes, lambda v: v.hex(" ") if len(v) <= 32 else v[:32].hex(" ") + " ...",
                        write=_write_bytes))
register_type(FieldType("unix_time_be", 4, _unix_time(">i"), _show_time, write=_unix_time_writer("int32_be")))
register_type(FieldType("unix_time_le", 4, _unix_time("<i"), _show_time, write=_unix_time_writer("int32_le")))

_SPEC = re.compile(r"^([a-z_0-9]+)(?:\[(\d+)\])?$")


def _parse_type(spec: str) -> tuple[FieldType, int, int | None]:
    """``spec`` -> (field type, byte size of the field, array count or None)."""
    m = _SPEC.match(spec)
    if not m or m.group(1) not in TYPES:
        raise ValueError(f"unknown field type {spec!r}; known: {', '.join(sorted(TYPES))}")
    ftype, n = TYPES[m.group(1)], m.group(2)
    if ftype.size is None:
        if n is None or int(n) <= 0:
            raise ValueError(f"field type {spec!r} needs a length, e.g. {ftype.name}[8]")
        return ftype, int(n), None
    if n is None:
        return ftype, ftype.size, None
    return ftype, ftype.size * int(n), int(n)


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class To:
    """Copy the field to DICOM ``keyword`` through ``convert`` (None result: leave it out)."""

    keyword: str
    convert: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if tag_for_keyword(self.keyword) is None:
            raise ValueError(f"{self.keyword!r} is not a DICOM keyword")

    def __str__(self) -> str:
        if self.convert is None:
            return self.keyword
        name = getattr(self.convert, "__name__", type(self.convert).__name__)
        return f"{self.keyword} <- {name}()"


@dataclass(frozen=True)
class Used:
    """The decoder's own code reads this field (for ``what``); shown by ``dump``."""

    what: str

    def __str__(self) -> str:
        return f"({self.what})"


Target = To | Used | str | None


@dataclass(frozen=True)
class Field:
    offset: int
    type: str
    name: str
    target: To | Used | None = None
    note: str = ""
    ftype: FieldType = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)
    count: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ftype, size, count = _parse_type(self.type)
        object.__setattr__(self, "ftype", ftype)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "count", count)
        if self.offset < 0:
            raise ValueError(f"field {self.name}: negative offset")

    def reader(self) -> Callable[[bytes | bytearray | memoryview, int], Any]:
        """``read(data, position)`` -> the value: one precompiled ``struct`` call for the
        types ``struct`` reads (a table is read often, on every image), else ``decode``."""
        fmt = self.ftype.fmt
        if fmt is None:
            size, decode = self.size, self.decode
            return lambda data, pos: decode(bytes(data[pos:pos + size]))
        if self.count is None:
            unpack_from = struct.Struct(fmt).unpack_from
            return lambda data, pos: unpack_from(data, pos)[0]
        return struct.Struct(fmt[0] + str(self.count) + fmt[1:]).unpack_from

    def decode(self, raw: bytes) -> Any:
        if self.count is None:
            return self.ftype.read(raw)
        step = self.ftype.size
        return tuple(self.ftype.read(raw[i:i + step]) for i in range(0, self.size, step))

    def show(self, value: Any) -> str:
        if self.count is None:
            return self.ftype.show(value)
        return "[" + ", ".join(self.ftype.show(v) for v in value) + "]"

    def encode(self, value: Any, pad: bytes = b"\0") -> bytes:
        """``value`` as the field's ``size`` bytes (a sequence of ``count`` for an array);
        ValueError (the reason alone: the table adds where) when it does not fit."""
        write = self.ftype.write
        if write is None:
            raise ValueError(f"field type {self.ftype.name} has no encoder")
        if self.ftype.size is None:
            return write(value, self.size, pad)
        if self.count is None:
            return write(value)
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != self.count:
            raise ValueError(f"{value!r} is not a sequence of {self.count} values")
        return b"".join(write(v) for v in value)


def F(offset: int, type: str, name: str, target: Target = None, *, note: str = "") -> Field:  # noqa: A002
    """One line of a table: offset, field type, name, target (keyword / To / Used), note."""
    if isinstance(target, str):
        target = To(target)
    return Field(offset, type, name, target, note)


# --------------------------------------------------------------------------- tables


class Record(Mapping[str, Any]):
    """The values of one table read from bytes, by field name; remembers where it was read.

    A field is decoded when it is first asked for: a decoder uses a third of the fields it
    declares (the rest are there for ``dump``), and the bounds of all were checked by
    ``Table.read``."""

    __slots__ = ("table", "base", "_data", "_values")

    def __init__(self, table: "Table", base: int, data: bytes | bytearray | memoryview):
        self.table = table
        self.base = base
        self._data = data
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            pass
        read, offset = self.table.readers[name]
        value = self._values[name] = read(self._data, self.base + offset)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.by_name)

    def __len__(self) -> int:
        return len(self.table.by_name)

    def offset(self, name: str) -> int:
        """The absolute byte offset of field ``name`` (for error messages)."""
        return self.base + self.table.by_name[name].offset

    def error(self, name: str, message: str) -> DecodeError:
        """A DecodeError about field ``name``, naming it and its absolute offset."""
        return DecodeError(f"{self.table.name}: {message}", field=name, offset=self.offset(name))


class Table:
    """A vendor header as a list of fields; ``size`` is the header's declared length.

    Field offsets must lie inside ``size`` (checked when the table is built, so a typo in a
    table fails at import, not on a patient's file). Fields may overlap (two readings of the
    same bytes, as when sources disagree); names must be unique.
    """

    def __init__(self, name: str, fields: list[Field], size: int | None = None):
        self.name = name
        self.fields = list(fields)
        self.by_name: dict[str, Field] = {}
        for f in self.fields:
            if f.name in self.by_name:
                raise ValueError(f"{name}: field {f.name!r} declared twice")
            self.by_name[f.name] = f
        end = max((f.offset + f.size for f in self.fields), default=0)
        if size is not None and end > size:
            worst = max(self.fields, key=lambda f: f.offset + f.size)
            raise ValueError(f"{name}: field {worst.name} ends at {end}, beyond the table size {size}")
        self.size = size if size is not None else end
        self._extent = end
        self.readers = {f.name: (f.reader(), f.offset) for f in self.fields}
        self._copied = [(f.name, f.target) for f in self.fields if isinstance(f.target, To)]

    def read(self, data: bytes | bytearray | memoryview, base: int = 0) -> Record:
        """Read every field at ``base``; DecodeError naming the first field that is not there."""
        n = len(data)
        if base < 0 or base > n:
            raise DecodeError(f"{self.name} would start at {base}, outside the {n} bytes", field=self.name, offset=base)
        if base + self._extent > n:
            for f in self.fields:
                if base + f.offset + f.size > n:
                    raise DecodeError(
                        f"{self.name}: field {f.name} ({f.size} bytes) lies beyond the end of the data ({n} bytes)",
                        field=f.name,
                        offset=base + f.offset,
                    )
        return Record(self, base, data)

    def read_field(self, name: str, data: bytes | bytearray | memoryview, base: int = 0) -> Any:
        """One field alone (for identification, where the whole header may not be there)."""
        f = self.by_name[name]
        start = base + f.offset
        if base < 0 or start + f.size > len(data):
            raise DecodeError(f"{self.name}: field {name} lies beyond the end of the data", field=name, offset=start)
        return f.decode(bytes(memoryview(data)[start:start + f.size]))

    def apply(self, record: Record, ds: "Elements") -> None:
        """Set every keyword / ``To`` target of the table in ``ds`` (empty values left out)."""
        for name, target in self._copied:
            value = record[name]
            if target.convert is not None and value is not None:
                value = target.convert(value)
            set_value(ds, target.keyword, value)

    def write(self, values: Mapping[str, Any], into: bytearray | None = None, base: int = 0,
              pad: bytes = b"\0") -> bytearray:
        """Write each named value at its field's offset (+ ``base``) with its type's encoder:
        the inverse of ``read``, for simulators and tests. ``into`` defaults to a new zeroed
        header of ``size`` bytes; ``pad`` fills ``char`` fields after the text (b" " or b"\0",
        as the format's host did). Fields not named keep their bytes. Returns the buffer.

        ValueError for a name the table lacks, a value that does not fit its type (naming the
        field and absolute offset) or a field beyond the end of ``into``."""
        buf = bytearray(base + self.size) if into is None else into
        if len(pad) != 1:
            raise ValueError(f"pad must be one byte, not {pad!r}")
        for name, value in values.items():
            f = self.by_name.get(name)
            if f is None:
                raise ValueError(f"{self.name} has no field {name!r}")
            start = base + f.offset
            if base < 0 or start + f.size > len(buf):
                raise ValueError(f"{self.name}: field {name} ({f.size} bytes at {start}) lies beyond the "
                                 f"end of the {len(buf)}-byte buffer")
            try:
                raw = f.encode(value, pad)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{self.name}: field {name} ({f.type}) at offset {start}: {exc}") from None
            if len(raw) != f.size:  # a registered type's encoder gave the wrong size
                raise ValueError(f"{self.name}: field {name}: encoder of {f.type} gave {len(raw)} bytes, not {f.size}")
            buf[start:start + f.size] = raw
        return buf

    def dump(self, data: bytes | bytearray | memoryview, base: int = 0) -> list[DumpRow]:
        """Every field as a ``DumpRow`` (absolute offset); fields beyond the data say so."""
        rows = []
        for f in self.fields:
            start = base + f.offset
            if start + f.size > len(data):
                shown = "(beyond end of data)"
            else:
                shown = f.show(f.decode(bytes(memoryview(data)[start:start + f.size])))
            rows.append(DumpRow(offset=start, name=f"{self.name}.{f.name}", type=f.type, value=shown,
                                target="" if f.target is None else str(f.target)))
        return rows


# --------------------------------------------------------------------------- DICOM values

# Where values are put: a Dataset, or a dict of its elements by tag, made a Dataset at once
# with ``Dataset(elements)`` (a decoder building ~80 elements saves Dataset's per-element
# bookkeeping, which it does not need: no private blocks, no pixel array cached yet).
Elements = Dataset | dict

_PLAIN = re.compile(r"[ -\[\]-~]*")  # printable ASCII but backslash: nothing to replace
_CS_PLAIN = re.compile(r"[A-Z0-9 _]*")
_SHORT_TEXT = frozenset(("AE", "AS", "CS", "DA", "DT", "LO", "PN", "SH", "TM", "UC"))


def clean_text(value: str, vr: str) -> str:
    """Text a DICOM validator accepts for ``vr``: no control characters, no backslash in a
    single value, CS upper case, trimmed to the VR's maximum length."""
    if vr in _SHORT_TEXT and _PLAIN.fullmatch(value):  # the usual case, without the rewriting below
        text = value.upper() if vr == "CS" else value
        if vr == "CS" and not _CS_PLAIN.fullmatch(text):
            text = re.sub(r"[^A-Z0-9 _]", "_", text)
        elif vr == "PN":
            text = text.replace("=", " ")
        return text.strip(" ")[: MAX_LENGTH.get(vr, 64)].rstrip(" ")
    text = value if vr not in ("ST", "LT", "UT") else value.replace("\r\n", "\n")
    text = forbidden_controls(vr).sub(" ", text)
    if vr not in ("ST", "LT", "UT"):
        text = text.replace("\\", "/")
    if vr == "CS":
        text = re.sub(r"[^A-Z0-9 _]", "_", text.upper())
    if vr == "PN":
        text = text.replace("=", " ")
    text = text.strip(" ")
    return text[: MAX_LENGTH.get(vr, 64)].rstrip(" ")


@functools.lru_cache(maxsize=None)
def tag_and_vr(keyword: str) -> tuple[BaseTag, str]:
    """The tag and dictionary VR of a DICOM keyword (cached: looked up once per process)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"{keyword!r} is not a DICOM keyword")
    return shared_tag(tag), dictionary_VR(tag)


# The VRs whose values pydicom keeps as the Python type given (no PersonName, no IS/DS objects
# built), with that type: an element of these is built as already converted.
_NATIVE: dict[str, type] = {
    **{vr: str for vr in ("AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UR", "UT")},
    "UI": UID, "DS": DSfloat, "IS": int, "US": int, "SS": int, "UL": int, "SL": int, "FL": float, "FD": float,
    "OB": bytes, "OW": bytes,
}


def element(tag: BaseTag, vr: str, value: Any) -> DataElement:
    """A data element holding ``value`` as given when it already has the Python type pydicom
    would convert it to (a list of such values for several); otherwise pydicom converts it.

    pydicom's conversion is most of the cost of building a dataset (a converted instance
    has ~80 elements); values reaching here went through our own VR rules, and the tests
    run dciodvfy on what we write. Validation is skipped either way."""
    if vr == "UI" and type(value) is str:
        value = UID(value, validation_mode=_pydicom_config.IGNORE)
    native = _NATIVE.get(vr)
    if native is not None and (value is None or isinstance(value, native) or (
            isinstance(value, list) and all(isinstance(v, native) for v in value))):
        return DataElement(tag, vr, value, already_converted=True, validation_mode=_pydicom_config.IGNORE)
    return DataElement(tag, vr, value, validation_mode=_pydicom_config.IGNORE)


def put(ds: Elements, keyword: str, value: Any, vr: str | None = None) -> None:
    """Set ``keyword`` to a value the caller has already made valid for its VR (cleaned text,
    ``ds_number``, ints, UIDs checked with ``is_valid_uid``), or None for an empty type 2.

    The element replaces any of the same tag; ``vr`` chooses among the VRs the dictionary
    allows (e.g. "OW" for Pixel Data's "OB or OW"). See ``element`` for why it is cheap.
    """
    tag, dictionary_vr = tag_and_vr(keyword)
    ds[tag] = element(tag, vr or dictionary_vr, value)


def value_of(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` by the tag: pydicom's keyword lookup costs three times as
    much, and a decoder asks a few dozen times per image."""
    tag = tag_and_vr(keyword)[0]
    if isinstance(ds, Dataset):  # as ``ds[tag]``, with a note for ``verbatim.part10`` (which then need not look again)
        elem = _verbatim_read(ds, tag)
    else:
        elem = ds.get(tag)
    return default if elem is None else elem.value


def set_value(ds: Elements, keyword: str, value: Any) -> None:
    """Set ``keyword`` to ``value`` with its VR's rules; None / "" / NaN leave it unset."""
    if value is None or value == "" or value == ():
        return
    vr = tag_and_vr(keyword)[1]
    if isinstance(value, (list, tuple)):
        values = [_one(vr, v) for v in value]
        if any(v is None for v in values):
            return
        put(ds, keyword, values)
        return
    one = _one(vr, value)
    if one is not None and one != "":
        put(ds, keyword, one)


def _one(vr: str, value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN
        return None
    if vr == "DS":
        return ds_number(value)
    if vr == "IS":
        return int(value)
    if vr in ("US", "SS", "UL", "SL"):
        return int(value)
    if vr in ("FL", "FD"):
        return float(value)
    if vr in MAX_LENGTH and vr not in ("DS", "IS", "UI"):
        return clean_text(value if isinstance(value, str) else str(value), vr)
    return value


def finite(*values: Any) -> bool:
    """Every value is a real number (host floats may decode to NaN or infinity)."""
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
