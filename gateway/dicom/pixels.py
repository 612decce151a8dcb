"""The Image Pixel module (PS3.3 C.7.6.3), built one way for every decoder, with one size check.

A decoder reads the image size from a header it cannot trust. Before it allocates anything
for the pixels it asks ``image_bytes`` how many bytes that size means; one limit for every
format, and a DecodeError naming the header field and its offset when the size is absurd.
Then ``put_image_pixel`` writes the module from the decoded little-endian bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.dicom.limits import MAX_DIMENSION, MAX_PIXELS
from gateway.errors import DecodeError
from gateway.formats.engine.fieldtable import Elements, put


@dataclass(frozen=True)
class Dimension:
    """One image dimension as a header states it: the value, the field and its byte offset."""

    value: int
    field: str
    offset: int | None = None


def image_bytes(rows: Dimension, columns: Dimension, bits_allocated: int, frames: Dimension | None = None) -> int:
    """The byte count of rows x columns (x frames) pixels of ``bits_allocated`` bits, or a
    DecodeError naming the first dimension out of range, or the rows field when the whole
    image exceeds ``MAX_PIXELS``. Call it before allocating anything from these values."""
    dims = [rows, columns] + ([frames] if frames is not None else [])
    for d in dims:
        if not isinstance(d.value, int) or not 0 < d.value <= MAX_DIMENSION:
            raise DecodeError(f"{d.field} {d.value!r} is not an image dimension (1-{MAX_DIMENSION})",
                              field=d.field, offset=d.offset)
    count = rows.value * columns.value * (frames.value if frames is not None else 1)
    if count > MAX_PIXELS:
        size = " x ".join(str(d.value) for d in dims)
        raise DecodeError(f"{size} pixels exceed the {MAX_PIXELS} an image may have here",
                          field=rows.field, offset=rows.offset)
    return (count * bits_allocated + 7) // 8


def put_image_pixel(ds: Elements, rows: int, columns: int, pixel_data: bytes, *, bits_allocated: int = 16,
                    bits_stored: int = 16, high_bit: int | None = None, signed: bool = False,
                    photometric: str = "MONOCHROME2") -> None:
    """The Image Pixel module of a single-sample image from little-endian ``pixel_data``.

    Pixel Data is OW for 16-bit cells and OB for 8-bit ones (PS3.5 8.2, Explicit VR Little
    Endian); an odd byte count is padded to even length (PS3.5 7.1)."""
    put(ds, "Rows", rows)
    put(ds, "Columns", columns)
    put(ds, "SamplesPerPixel", 1)
    put(ds, "PhotometricInterpretation", photometric)
    put(ds, "BitsAllocated", bits_allocated)
    put(ds, "BitsStored", bits_stored)
    put(ds, "HighBit", bits_stored - 1 if high_bit is None else high_bit)
    put(ds, "PixelRepresentation", 1 if signed else 0)
    if len(pixel_data) & 1:
        pixel_data += b"\0"
    put(ds, "PixelData", pixel_data, vr="OW" if bits_allocated == 16 else "OB")
