"""ANSI (X3.27 / ISO 1001) and IBM standard tape labels: recognised and described, never decoded as data.

Labelled tapes carry 80-byte label records in their own tape files around each data file:
``VOL1`` (and ``HDR1``, ``HDR2``) before the first data file, ``EOF1``/``EOF2`` after each
data file followed by the next file's ``HDR`` group; ``EOV`` at the end of a volume of a
multi-volume set; ``UHL``/``UTL``/``UVL`` are user labels. ANSI labels are in ASCII, IBM
standard labels in EBCDIC (code page 037).

The fields below are the common ANSI/IBM positions (0-based, end exclusive):

| label        | bytes   | field                                  |
|--------------|---------|----------------------------------------|
| VOL1         | 4-10    | volume serial                          |
| VOL1         | 37-51   | owner                                  |
| HDR1/EOF1/EOV1 | 4-21  | file identifier (data set name)        |
| HDR1/EOF1/EOV1 | 21-27 | file-set identifier (volume serial)    |
| HDR1/EOF1/EOV1 | 27-31 | file section number                    |
| HDR1/EOF1/EOV1 | 31-35 | file sequence number                   |
| HDR1/EOF1/EOV1 | 41-47 | creation date, cyyddd (c blank: 19yy)  |
| HDR1/EOF1/EOV1 | 54-60 | block count (EOF1/EOV1: blocks in the file) |
| HDR1/EOF1/EOV1 | 60-73 | implementation (system) identifier    |
| HDR2/EOF2    | 4       | record format (F, V, U, D, S)          |
| HDR2/EOF2    | 5-10    | block length                           |
| HDR2/EOF2    | 10-15   | record length                          |

File identifiers may name people (a study, a patient); they are logged at DEBUG only.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Iterable

LABEL_SIZE = 80
LABEL_IDS = ("VOL", "HDR", "EOF", "EOV", "UHL", "UTL", "UVL")
_ID_RE = re.compile(r"^(VOL|HDR|EOF|EOV|UHL|UTL|UVL)[1-9]$")

# (label kinds, start, end, name)
FIELDS: tuple[tuple[tuple[str, ...], int, int, str], ...] = (
    (("VOL1",), 4, 10, "volume_serial"),
    (("VOL1",), 37, 51, "owner"),
    (("HDR1", "EOF1", "EOV1"), 4, 21, "file_id"),
    (("HDR1", "EOF1", "EOV1"), 21, 27, "file_set"),
    (("HDR1", "EOF1", "EOV1"), 27, 31, "section"),
    (("HDR1", "EOF1", "EOV1"), 31, 35, "sequence"),
    (("HDR1", "EOF1", "EOV1"), 41, 47, "created"),
    (("HDR1", "EOF1", "EOV1"), 54, 60, "block_count"),
    (("HDR1", "EOF1", "EOV1"), 60, 73, "system"),
    (("HDR2", "EOF2", "EOV2"), 4, 5, "record_format"),
    (("HDR2", "EOF2", "EOV2"), 5, 10, "block_length"),
    (("HDR2", "EOF2", "EOV2"), 10, 15, "record_length"),
)
PRIVATE_FIELDS = ("file_id", "owner")  # may hold names: DEBUG only


@dataclass(frozen=True)
class Label:
    kind: str  # "VOL1", "HDR1", "EOF1", ...
    encoding: str  # "ascii" or "ebcdic"
    fields: dict[str, str] = field(default_factory=dict)

    def number(self, name: str) -> int | None:
        value = self.fields.get(name, "").strip()
        return int(value) if value.isdigit() else None

    def date(self, name: str = "created") -> str | None:
        """A cyyddd Julian date as YYYY-MM-DD (c blank or 0: 19yy/20yy per ANSI), or None."""
        return julian_date(self.fields.get(name, ""))

    def public(self) -> dict[str, str]:
        """The fields fit for an INFO log line (no file identifiers or owners)."""
        return {k: v for k, v in self.fields.items() if k not in PRIVATE_FIELDS and v}


def julian_date(value: str) -> str | None:
    if len(value) == 5:
        value = " " + value  # the blank century digit was stripped with the padding
    if len(value) != 6 or not value[1:].isdigit():
        return None
    century = {" ": 1900, "0": 2000, "1": 2100}.get(value[0])
    if century is None:
        return None
    year, day = century + int(value[1:3]), int(value[3:])
    if not 1 <= day <= 366:
        return None
    try:
        return (_dt.date(year, 1, 1) + _dt.timedelta(days=day - 1)).isoformat()
    except ValueError:
        return None


def parse_label(record: bytes | memoryview) -> Label | None:
    """The label in an 80-byte record, in ASCII or EBCDIC, or None if it is not one."""
    if len(record) != LABEL_SIZE:
        return None
    raw = bytes(record)
    for encoding, codec in (("ascii", "ascii"), ("ebcdic", "cp037")):
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError:
            continue
        if _ID_RE.match(text[:4]) and text.isprintable():
            kind = text[:4]
            values = {name: text[a:b].strip() for kinds, a, b, name in FIELDS if kind in kinds}
            return Label(kind, encoding, values)
    return None


def label_group(records: Iterable[bytes | memoryview]) -> list[Label] | None:
    """The labels of a tape file made only of label records, else None."""
    labels = []
    for record in records:
        label = parse_label(record)
        if label is None:
            return None
        labels.append(label)
    return labels or None


def _pad(text: str, width: int) -> str:
    return text[:width].ljust(width)


def make_label(kind: str, encoding: str = "ascii", **values: str | int) -> bytes:
    """An 80-byte label record (for the simulator and tests): fields by the table above."""
    if not _ID_RE.match(kind):
        raise ValueError(f"not a label identifier: {kind!r}")
    chars = list(kind + " " * (LABEL_SIZE - 4))
    for kinds, a, b, name in FIELDS:
        if kind in kinds and name in values:
            value = values.pop(name)
            text = str(value).rjust(b - a, "0") if isinstance(value, int) else _pad(str(value), b - a)
            chars[a:b] = text[: b - a]
    if values:
        raise ValueError(f"{kind} has no field(s) {', '.join(values)}")
    if kind == "VOL1":
        chars[79] = "3"  # label standard version
    return "".join(chars).encode("ascii" if encoding == "ascii" else "cp037")


def julian(date: _dt.date) -> str:
    """cyyddd for a date (the inverse of ``julian_date``)."""
    c = " " if date.year < 2000 else "0"
    return f"{c}{date.year % 100:02d}{date.timetuple().tm_yday:03d}"
