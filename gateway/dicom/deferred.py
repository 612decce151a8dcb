"""Datasets whose large values stay in their file: a 1 GB object never has to sit in memory.

pydicom reads a file with ``defer_size`` leaving every value larger than that in the file
(a "deferred" raw element: its offset and length, no value) and loads it at the first touch.
Pass-through DICOM needs none of those values: normalisation reads and adds small attributes,
and the transfer syntax never changes, so each deferred element can be copied into the new
Part-10 file byte for byte from its source, a megabyte at a time (``write_part10``). Whoever
holds such a dataset must look at it with ``is_deferred`` first, never ``ds[tag]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

DEFER_SIZE = 1 << 20   # values larger than this stay in the file
COPY_CHUNK = 1 << 20   # bytes copied at a time
# Explicit VRs with a 4-byte length after two reserved bytes: their element header is 12 bytes.


def is_deferred(ds: Dataset, tag: int | str | BaseTag) -> bool:
    """Whether ``ds`` holds ``tag`` as a value still in the file (looking does not load it)."""
    tag = Tag(tag)
    if tag not in ds:
        return False
    raw = ds.get_item(tag, keep_deferred=True)
    return isinstance(raw, RawDataElement) and raw.value is None and raw.length not in (0, 0xFFFFFFFF)


def has_deferred(ds: Dataset) -> bool:
    return any(is_deferred(ds, tag) for tag in ds.keys())


def write_part10(ds: Dataset, source: Path, out: BinaryIO) -> None:
    """Write ``ds`` (read from ``source`` with deferred values) as a Part-10 file to ``out``:
    preamble, its file meta, then its elements in tag order, deferred ones copied from
    ``source``. The transfer syntax must be the one ``source`` was read in."""
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if syntax.is_deflated and has_deferred(ds):
        raise ValueError("a deflated data set cannot keep values in its file")
    fp = DicomFileLike(out)
    fp.write(b"\0" * 128 + b"DICM")
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    fp.is_little_endian, fp.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
    encoding = ds.get("SpecificCharacterSet", "iso8859")
    with open(source, "rb") as src:
        for tag in sorted(ds.keys()):
            if tag.element == 0 and tag.group > 6:
                continue  # retired group lengths are not written (PS3.5 7.2), as pydicom does
            if is_deferred(ds, tag):
                _copy_element(src, ds.get_item(tag, keep_deferred=True), out)
            else:
                write_data_element(fp, ds.get_item(tag), encoding)


def _copy_element(src: BinaryIO, raw: RawDataElement, out: BinaryIO) -> None:
    """The element's header and value, as they are in the source file."""
    header = 8 if raw.is_implicit_VR or raw.VR not in EXPLICIT_VR_LENGTH_32 else 12
    start = raw.value_tell - header
    src.seek(start)
    tag = src.read(4)
    group, element = (int.from_bytes(tag[i:i + 2], "little" if raw.is_little_endian else "big") for i in (0, 2))
    if (group << 16 | element) != raw.tag:
        raise ValueError(f"element {Tag(raw.tag)} is not where its file offset says")
    src.seek(start)
    remaining = header + raw.length
    while remaining:
        chunk = src.read(min(COPY_CHUNK, remaining))
        if not chunk:
            raise ValueError(f"element {Tag(raw.tag)} ends {remaining} bytes after the end of its file")
        out.write(chunk)
        remaining -= len(chunk)
