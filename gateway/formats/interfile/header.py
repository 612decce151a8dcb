"""The Interfile administrative header: ``key := value`` lines, read the way the 1992 (3.3) rules say.

Keys and values are ASCII; keys are not case-sensitive and space, tab, underscore and ``!``
(the "required key" mark) are ignored when keys are compared, so ``!matrix size [1]``,
``Matrix_Size[1]`` and ``matrixsize [1]`` are one key. A leading ``%`` (the private keys of
later writers, e.g. Siemens' ``%study date (yyyy:mm:dd)``) is ignored too. Text after ``;`` is a
comment. A trailing ``[n]`` is an index (``energy window lower level [1]``). The header ends at
``END OF INTERFILE :=``, a Ctrl-Z or a NUL (data may follow in the same file); lines without
``:=`` are kept for ``dump`` but mean nothing.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from gateway.errors import DecodeError

DATA_FILE = "name of data file"  # the key that names the binary file
MAX_HEADER = 1 << 20  # an administrative header is text of a few KiB; never scan more than this
_MAGIC_RE = re.compile(rb"^(?:\xef\xbb\xbf)?\s*!\s*INTERFILE\s*:=", re.IGNORECASE)
_INDEX_RE = re.compile(r"\[\s*(\d+)\s*\]\s*$")
_IGNORED_IN_KEYS = str.maketrans("", "", " \t_!")


def is_interfile(data: bytes) -> bool:
    """``!INTERFILE :=`` at the start (case-insensitive, leading white space allowed)."""
    return bool(_MAGIC_RE.match(data[:256]))


def normalise_key(key: str) -> str:
    """The form keys are compared in: lower case, without white space, ``_``, ``!`` or a leading ``%``."""
    return key.strip().lstrip("%!").translate(_IGNORED_IN_KEYS).lower().lstrip("%")


@dataclass(frozen=True)
class Entry:
    """One ``key := value`` line: where it is, the key as written, and its normalised name and index."""

    offset: int
    key: str
    name: str
    index: int | None
    value: str


@dataclass
class Header:
    """The parsed header: its entries in order and where it ends in the file."""

    entries: list[Entry]
    length: int
    _by_name: dict[tuple[str, int | None], Entry] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._by_name.setdefault((entry.name, entry.index), entry)  # the first wins

    def find(self, *names: str, index: int | None = None) -> Entry | None:
        """The first entry with one of ``names`` (normalised spellings) and ``index``."""
        for name in names:
            entry = self._by_name.get((normalise_key(name), index))
            if entry is not None:
                return entry
        return None

    def every(self, name: str) -> list[Entry]:
        """Every entry of a key that 3.3 repeats per section (per frame group, per time window)."""
        wanted = normalise_key(name)
        return [e for e in self.entries if e.name == wanted]

    def text(self, *names: str, index: int | None = None) -> str:
        """The value (``""`` when absent; a ``{ 8}`` list of one is unwrapped)."""
        entry = self.find(*names, index=index)
        if entry is None:
            return ""
        value = entry.value.strip()
        if value.startswith("{") and value.endswith("}") and "," not in value:
            value = value[1:-1].strip()
        return value

    def number(self, *names: str, index: int | None = None) -> float | None:
        text = self.text(*names, index=index)
        try:
            x = float(text)
        except ValueError:
            return None
        return x if x == x and abs(x) != float("inf") else None

    def integer(self, *names: str, index: int | None = None) -> int | None:
        """An integer value; None when absent; ``DecodeError`` naming the key when not an integer."""
        text = self.text(*names, index=index)
        if text == "":
            return None
        try:
            return int(text)
        except ValueError:
            x = self.number(*names, index=index)
            if x is not None and x == int(x):
                return int(x)
        entry = self.find(*names, index=index)
        raise DecodeError(f"{key_label(names[0], index)} := {text!r} is not an integer",
                          field=key_label(names[0], index), offset=entry.offset if entry else None)

    def offset_of(self, *names: str, index: int | None = None) -> int | None:
        entry = self.find(*names, index=index)
        return entry.offset if entry else None


def key_label(name: str, index: int | None = None) -> str:
    """How a key is named in messages: ``matrix size [1]``."""
    return name if index is None else f"{name} [{index}]"


def parse(data: bytes) -> Header:
    """Parse the header at the start of ``data``; ``DecodeError`` if it is not Interfile."""
    if not is_interfile(data):
        raise DecodeError("no '!INTERFILE :=' at the start: not an Interfile header", field="!INTERFILE", offset=0)
    return _parse_text(data[:_text_end(data)])


@functools.lru_cache(maxsize=8)
def _parse_text(text: bytes) -> Header:
    """Cached by the header text alone (never the data after it): a driver asks for the
    companions and the decoder then reads the same header; nobody changes the result."""
    entries: list[Entry] = []
    offset = 0
    length = len(text)
    for raw in text.splitlines(keepends=True):
        line_offset, offset = offset, offset + len(raw)
        line = raw.decode("latin-1").split(";", 1)[0].strip()
        if ":=" not in line:
            continue
        key, value = (part.strip() for part in line.split(":=", 1))
        m = _INDEX_RE.search(key)
        index = int(m.group(1)) if m else None
        bare = key[: m.start()] if m else key
        entry = Entry(line_offset, key, normalise_key(bare), index, value)
        entries.append(entry)
        if entry.name == "endofinterfile":
            length = offset
            break
    return Header(entries, length)


def _text_end(data: bytes) -> int:
    """Where the header text stops at the latest: a Ctrl-Z, a NUL, or ``MAX_HEADER``."""
    window = data[:MAX_HEADER]
    stops = [i for i in (window.find(b"\x1a"), window.find(b"\0")) if i >= 0]
    return min(stops) if stops else len(window)
