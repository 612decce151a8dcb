"""Inputs that decode but cannot be written as DICOM files: the poison the fuzzer found.

Before the fix they passed decoding and failed only in the spool's encoding step, so the
folder source retried them forever, ``ingest-tape`` stopped at them and ``convert`` aborted.
Each is rebuilt from a real sample by code (no binary files are kept).
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable

import pydicom

from gateway.formats.tagstream.stream import read_stream
from tests.support.samples import SAMPLES


def dicom_group_set(sample: str, tag: int, group: int) -> bytes:
    """The sample with the group number of its element ``tag`` (found by pydicom, an
    independent reader) changed to ``group``: pydicom still reads the file, and writes it no
    more (Command Set (0000) and File Meta (0002) elements are refused in a data set)."""
    data = (SAMPLES / sample).read_bytes()
    start = 132 if data[128:132] == b"DICM" else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    assert tag in ds
    at = data.index(struct.pack("<HH", tag >> 16, tag & 0xFFFF), start)
    return data[:at] + struct.pack("<H", group) + data[at + 2:]


def spi_with_matrix_over_65535() -> bytes:
    """The SPI sample with its Fourier lines (0019,1220, text "000210") set to "070000": the
    Acquisition Matrix (US) made of it cannot be written."""
    data = (SAMPLES / "siemens_spi_acrnema" / "mr.001").read_bytes()
    lines = read_stream(data).find(0x00191220)
    assert lines is not None and data[lines.value_offset:lines.end] == b"000210"
    return data[:lines.value_offset] + b"070000" + data[lines.end:]


POISON: dict[str, Callable[[], bytes]] = {
    "Command Set element in the data set": lambda: dicom_group_set(
        "dicom_vendor_nopreamble/prostate_Marconi_nopreamble.img", 0x00080020, 0x0000),
    "File Meta element in the data set": lambda: dicom_group_set(
        "dicom_vendor/MR-SIEMENS-DICOM-WithOverlays.dcm", 0x00080020, 0x0002),
    "SPI header giving a US value over 65535": spi_with_matrix_over_65535,
}
