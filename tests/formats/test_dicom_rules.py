"""Each DICOM rule is written once in gateway/dicom/ and every decoder gives the same answer
(issue 12). Expected values come from the standard's text, dciodvfy, or arithmetic written
next to them, never from our own output.
"""

from __future__ import annotations

import math
import struct
import tracemalloc

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from gateway import formats
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.dicom import geometry, limits, pixels, values
from gateway.errors import DecodeError
from gateway.formats.engine import fieldtable
from gateway.formats.ge import geometry as ge_geometry
from gateway.formats.tagstream import geometry as acrgeometry
from gateway.formats.tagstream.simulate import encode_stream
from gateway.formats.tagstream.stream import ByteOrder, read_stream
from gateway.pipeline import convert
from gateway.simulate import SimOptions, generate
from tests.support.peers import dciodvfy_errors

SPI = "siemens_spi_acrnema/mr.001"
HEART = "ge_genesis/heart.1"


# --------------------------------------------------------------------------- value rules


def test_one_table_of_maximum_lengths():
    """PS3.5 6.2 Table 6.2-1: the engine uses the tag-stream table, not one of its own."""
    assert fieldtable.MAX_LENGTH is values.MAX_LENGTH
    assert not hasattr(fieldtable, "_MAX_LEN") and not hasattr(fieldtable, "_CONTROL")
    assert (values.MAX_LENGTH["DS"], values.MAX_LENGTH["IS"], values.MAX_LENGTH["LO"],
            values.MAX_LENGTH["TM"]) == (16, 12, 64, 14)


@pytest.mark.parametrize("vr, text, valid", [
    ("LT", "one\r\ntwo\fthree", True),  # PS3.5 6.2 ST/LT/UT: CR, LF, FF and ESC allowed
    ("LT", "a\x1b(Bb", True),
    ("LT", "a\tb", False),  # TAB is none of them
    ("LT", "a\x0bb", False),
    ("LO", "a\x1b(Bb", True),  # LO/SH/PN: ESC only
    ("LO", "a\nb", False),
    ("LO", "a\tb", False),
    ("SH", "a\x7fb", False),  # DEL and C1 are no graphic characters of ISO_IR 100
    ("LO", "a\x85b", False),
    ("AE", "A\x1bB", False),  # AE: no control character at all
])
def test_control_characters_per_vr(vr, text, valid):
    """PS3.5 6.1.3 and 6.2: one rule, used by the tag-stream check and the engine's cleaning."""
    assert values.is_valid(vr, text) is valid
    assert values.is_valid(vr, fieldtable.clean_text(text, vr))


def test_cleaned_text_passes_dciodvfy(tmp_path):
    """dciodvfy rejects TAB in LT and LF in LO; after the one rule it finds nothing."""
    path = tmp_path / "ct.dcm"
    sample = next(generate("somatom-plus", 1, SimOptions(), seed=3)).data
    ds, _ = convert(Capture(sample, Origin("test", "somatom")))
    raw = {"ImageComments": ("LT", "line one\tTAB\r\nline two\x0b"), "SeriesDescription": ("LO", "two\nlines\tand tab")}
    for keyword, (_vr, text) in raw.items():
        setattr(ds, keyword, text)
    path.write_bytes(encode(ds))
    assert any("Character invalid for this VR" in e or "Value invalid" in e for e in dciodvfy_errors(path))
    for keyword, (vr, text) in raw.items():
        setattr(ds, keyword, fieldtable.clean_text(text, vr))
    path.write_bytes(encode(ds))
    assert dciodvfy_errors(path) == []


def test_tag_stream_text_follows_the_same_rule(tmp_path):
    """Standard text of an ACR-NEMA stream gets the same control rule as the engine's text:
    TAB and VT are no characters of LO or LT (PS3.5 6.2), CR LF stay in LT."""
    elements = [(0x00080010, "LO", "ACR-NEMA 2.0"), (0x00080060, "CS", "CT"), (0x0008103E, "LO", "two\tparts"),
                (0x00204000, "LT", "line\r\nnext\x0b"), (0x00280010, "US", 2), (0x00280011, "US", 2),
                (0x00280100, "US", 16), (0x7FE00010, "OB", bytes(8))]
    ds = formats.get("acr-nema").decode(encode_stream(elements, ByteOrder.LITTLE)).dataset
    assert ds.SeriesDescription == "two parts"
    assert ds.ImageComments == "line\r\nnext"
    assert values.is_valid("LT", ds.ImageComments) and values.is_valid("LO", ds.SeriesDescription)


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_decimal_string_fits_sixteen_bytes(x):
    """PS3.5 6.2: DS is at most 16 bytes; twelve significant digits kept when they fit
    (exponents of three digits leave room for fewer)."""
    text = values.decimal_string(x)
    assert len(text) <= 16 and values.is_valid("DS", text)
    assert float(text) == pytest.approx(x, rel=1e-7, abs=1e-300)  # 8+ digits even at the double limits
    assert str(values.ds_number(x)) == text == str(fieldtable.ds_number(x))


@pytest.mark.parametrize("x, text", [(1.0, "1"), (-0.0, "0"), (0.1 + 0.2, "0.3"), (240.0, "240"), (0.9375, "0.9375"),
                                     (1 / 3, "0.333333333333"), (1e20, "1e20")])
def test_one_decimal_string_for_both_families(x, text):
    """The GE engine (``ds_number``) and the tag-stream rules write the same DS text."""
    assert values.decimal_string(x) == text
    assert str(fieldtable.ds_number(x)) == text


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("direction, letters", [
    ((1, 0, 0), "L"), ((0, -1, 0), "A"), ((0, 0, -1), "F"),
    ((0.6, 0.8, 0), "PL"),  # PS3.3 C.7.6.1.1.1: principal letter first, then the refinement
    ((-0.8, 0.48, 0.36), "RPH"),
    ((1, 0.00005, 0), "L"),  # below OBLIQUE_COSINE: rounding, not tilt
    ((1, -0.0002, 0), "LA"),
])
def test_direction_letters(direction, letters):
    assert geometry.direction_letters(direction) == letters


@pytest.mark.parametrize("letter", list("LRPAHF"))
def test_letters_directions_and_opposites_agree(letter):
    """One table of letters (PS3.3 C.7.6.1.1.1: L/R, P/A, H/F along +x, +y, +z) serves the
    letters of a direction, the direction of a letter (tag-stream labels) and the opposite
    edge (Somatom's top-edge label)."""
    v = geometry.letter_direction(letter)
    assert geometry.direction_letters(v) == letter
    assert geometry.letter_direction(geometry.opposite(letter)) == tuple(-c + 0.0 for c in v)


def _oblique_plane():
    """An oblique plane in LPS: rows 3-4-5 between left and posterior, columns to the feet."""
    row, col = (0.6, 0.8, 0.0), (0.0, 0.0, -1.0)
    first = (-100.25, -80.0, 50.0)  # centre of the first pixel
    return row, col, first


def lps(*terms):
    return tuple(sum(t[i] for t in terms) for i in range(3))


def times(v, k):
    return tuple(k * c for c in v)


def ras(p):
    """LPS to GE's R/A/S."""
    return (-p[0], -p[1], p[2])


def siemens(p):
    """LPS to Siemens' +L+A+F."""
    return (p[0], -p[1], -p[2])


def test_oblique_plane_same_through_ge_and_siemens_paths():
    """One plane, given as GE R/A/S edge corners and as Siemens +L+A+F centre and vectors,
    gives one Image Position/Orientation text and one Patient Orientation (PS3.3
    C.7.6.1.1.1, C.7.6.2.1.1)."""
    row, col, first = _oblique_plane()
    n, s = 4, 2.0
    tlhc = lps(first, times(row, -s / 2), times(col, -s / 2))  # outer corner (GE stores edges)
    trhc = lps(tlhc, times(row, n * s))
    brhc = lps(trhc, times(col, n * s))
    plane = ge_geometry.plane_from_corners(ras(tlhc), ras(trhc), ras(brhc), "brhc", n, n, s, s)
    ge = Dataset()
    ge_geometry.put_plane(ge, plane, s, s)

    centre = lps(first, times(row, s * (n - 1) / 2), times(col, s * (n - 1) / 2))
    position, orientation = acrgeometry.from_siemens(list(siemens(centre)), list(siemens(row)), list(siemens(col)),
                                                     n, n, [s, s])
    tag_stream = Dataset()
    geometry.put_plane(tag_stream, position, orientation, [s, s], labels=True)

    assert list(ge.PatientOrientation) == list(tag_stream.PatientOrientation) == ["PL", "F"]
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        assert [str(v) for v in ge[keyword].value] == [str(v) for v in tag_stream[keyword].value]
    assert [float(v) for v in ge.ImagePositionPatient] == pytest.approx(first)


# --------------------------------------------------------------------------- SPI position


def _without(data: bytes, tags: set[int]) -> bytes:
    """``data`` with the elements ``tags`` cut out (the SPI sample has no group lengths)."""
    cut = bytearray(data)
    for elem in sorted(read_stream(data).elements, key=lambda e: -e.offset):
        if elem.tag in tags:
            del cut[elem.offset:elem.value_offset + elem.length]
    return bytes(cut)


def test_spi_position_with_and_without_a_stored_one(samples):
    """The Vision SPI sample stores (0020,0032) half a pixel off the first pixel's centre
    (siemens-spi.md 6); with and without it the output has the same Image Position (Patient),
    the centre of the first pixel (PS3.3 C.7.6.2.1.1), which the scanner's own retired
    (0020,0030) states."""
    raw = (samples / SPI).read_bytes()
    stripped = _without(raw, {0x00200032, 0x00200037})
    assert len(stripped) < len(raw)
    kept, _ = convert(Capture(raw, Origin("test", "with")))
    derived, _ = convert(Capture(stripped, Origin("test", "without")))
    assert [str(v) for v in kept.ImagePositionPatient] == [str(v) for v in derived.ImagePositionPatient]
    assert [str(v) for v in kept.ImageOrientationPatient] == [str(v) for v in derived.ImageOrientationPatient]
    retired = pydicom.dcmread(samples / SPI, force=True)[0x0020, 0x0030].value
    assert [float(v) for v in kept.ImagePositionPatient] == pytest.approx([float(v) for v in retired], abs=1e-4)


# --------------------------------------------------------------------------- Image Pixel


def _patched(data: bytes, offset: int, fmt: str, *values_: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values_)
    return bytes(out)


def _oversized(samples) -> list[tuple[str, bytes, str, int]]:
    """One file of each decoder whose header claims 8193 x 8193 pixels (decoder, bytes, the
    field named, its offset)."""
    heart = (samples / HEART).read_bytes()
    signa = next(generate("signa4x", 1, SimOptions(), seed=4)).data
    somatom = next(generate("somatom-plus", 1, SimOptions(), seed=4)).data
    vision = next(generate("vision-ima", 1, SimOptions(), seed=4)).data
    acr = encode_stream([(0x00080010, "LO", "ACR-NEMA 2.0"), (0x00080060, "CS", "CT"), (0x00280010, "US", 8193),
                         (0x00280011, "US", 8193), (0x00280100, "US", 16), (0x7FE00010, "OB", bytes(8))],
                        ByteOrder.LITTLE)
    rows_offset = next(e.offset for e in read_stream(acr).elements if e.tag == 0x00280010)
    return [
        ("ge-genesis", _patched(heart, 8, ">ii", 8193, 8193), "height", 12),
        ("ge-signa4x", _patched(signa, 5394, ">hh", 8193, 8193), "dim_x", 5394),
        ("somatom-plus", _patched(somatom, 1328, "<i", 8193), "matrix", 1328),
        ("vision-ima", _patched(vision, 4994, ">hh", 8193, 8193), "rows", 4994),
        ("acr-nema", acr, "Rows", rows_offset),
    ]


def test_one_size_limit_for_every_decoder(samples):
    """Every decoder refuses the same too-large image through the one check, naming its own
    header field and offset, before allocating anything for the pixels."""
    for name, data, field, offset in _oversized(samples):
        tracemalloc.start()
        try:
            with pytest.raises(DecodeError) as err:
                formats.get(name).decode(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert f"exceed the {pixels.MAX_PIXELS}" in str(err.value), name
        assert (err.value.field, err.value.offset) == (field, offset), name
        assert peak < 8 * 2**20, name  # 8193² 16-bit pixels would be 128 MiB


def test_size_check_bounds():
    side = pixels.Dimension(8192, "Rows", 10)
    assert pixels.image_bytes(side, pixels.Dimension(8192, "Columns", 20), 16) == 2 * 8192 * 8192
    with pytest.raises(DecodeError) as err:
        pixels.image_bytes(side, pixels.Dimension(0, "Columns", 20), 16)
    assert (err.value.field, err.value.offset) == ("Columns", 20)
    with pytest.raises(DecodeError) as err:
        pixels.image_bytes(side, pixels.Dimension(8192, "Columns", 20), 16, pixels.Dimension(2, "Frames", 30))
    assert (err.value.field, err.value.offset) == ("Rows", 10)
    assert not limits.plausible(65536, 1) and limits.plausible(8192, 8192) and not limits.plausible(8192, 8193)


def test_image_pixel_module():
    """PS3.3 C.7.6.3: the module's attributes; Pixel Data OW for 16-bit, OB for 8-bit cells,
    padded to even length (PS3.5 7.1)."""
    ds = Dataset()
    pixels.put_image_pixel(ds, 1, 3, bytes(3), bits_allocated=8, bits_stored=8)
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, 3, 1, "MONOCHROME2")
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (8, 8, 7, 0)
    assert ds["PixelData"].VR == "OB" and len(ds.PixelData) == 4
    pixels.put_image_pixel(ds, 2, 2, bytes(8), bits_stored=12, signed=True)
    assert (ds.BitsAllocated, ds.HighBit, ds.PixelRepresentation, ds["PixelData"].VR) == (16, 11, 1, "OW")
    assert math.prod((ds.Rows, ds.Columns, ds.BitsAllocated // 8)) == len(ds.PixelData)
