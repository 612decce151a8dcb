"""GE CT 9800: an independent reading written here from the format notes, the notes' test
vectors in a file built byte by byte, dciodvfy, bad input, identification and length.

No real 9800 file exists in our reach and the notes are single-source (dicom3tools). The
expected values below come from the notes (shared/formats/ge-9800.md, cited "notes 4" etc.)
read with plain struct and Python loops in this file, never from our decoder's tables.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import formats
from gateway.dicom.iods import CT_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE
from gateway.dicom.normalize import normalize
from gateway.errors import DecodeError, UnknownFormat
from gateway.formats.ge import ct9800_pixels
from gateway.simulate import SimOptions, generate
from gateway.simulate import formats as sim_formats
from tests.support.peers import dciodvfy_errors

NAME = "ge-ct9800"
SAMPLES = next((p / "shared" / "samples" for p in Path(__file__).resolve().parents
                if (p / "shared" / "samples").is_dir()), None)


# --------------------------------------------------------------------------- the notes, read plainly


def _i16(data: bytes, at: int) -> int:
    return struct.unpack_from(">h", data, at)[0]


def _dg(data: bytes, at: int) -> float:
    """Notes 1: sign, excess-64 base-16 exponent, 24-bit fraction: frac/2^24 x 16^(exp-64)."""
    word = struct.unpack_from(">I", data, at)[0]
    value = (word & 0xFFFFFF) / 2**24 * 16.0 ** (((word >> 24) & 0x7F) - 64)
    return -value if word >> 31 else value


def _text(data: bytes, at: int, size: int) -> str:
    return data[at:at + size].split(b"\0")[0].decode("latin-1").strip()


def _pointer(data: bytes, at: int, default: int) -> int:
    """Notes 2: 1-based word pointer, byte offset (p - 1) x 2; 0 means the default."""
    p = _i16(data, at)
    return default if p == 0 else (p - 1) * 2


def read_per_notes(data: bytes) -> dict:
    """The file as the notes describe it, with nothing from gateway/."""
    exam = _pointer(data, 68, 512)
    image = _pointer(data, 70, 1024)
    arr = _i16(data, image + 24) == 5
    line_map = _pointer(data, 74, (9 if arr else 4) * 512)
    pixels = _pointer(data, 76, (11 if arr else 6) * 512)
    if _i16(data, image + 434) == 2:  # scout: views x detectors
        rows, cols = _i16(data, image + 272), _i16(data, image + 262)
    else:
        rows = cols = _i16(data, image + 246)
    use_map = _i16(data, image + 348) == 1
    raster = np.zeros((rows, cols), dtype=np.int64)
    pos, p = pixels, 0
    for r in range(rows):
        if use_map:
            h = _i16(data, line_map + 2 * r)
            start, end = cols // 2 - h, cols // 2 - h + 2 * h
        else:
            start, end = 0, cols
        for c in range(start, end):
            b0 = data[pos]
            pos += 1
            if b0 & 0x80:
                p += (b0 - 256) if b0 & 0x40 else (b0 & 0x3F)
            else:
                p = (b0 << 8) | data[pos]
                pos += 1
            raster[r, c] = p & 0x0FFF
    return {
        "exam": exam, "image": image, "rows": rows, "cols": cols, "use_map": use_map, "arr": arr,
        "hu": raster - 1024,  # notes 4: intercept -1024, slope 1
        "patient_id": _text(data, exam + 22, 12),
        "patient_name": _text(data, exam + 34, 30),
        "exam_number": _i16(data, exam + 6),
        "exam_mdy": (_i16(data, exam + 244), _i16(data, exam + 246), _i16(data, exam + 248)),
        "series": _i16(data, image + 26),
        "image_number": _i16(data, image + 94),
        "kvp": _i16(data, image + 180),
        "aperture": _dg(data, image + 176),
        "tilt": _dg(data, image + 184),
        "window": (_i16(data, image + 320), _i16(data, image + 322)),
        "pointers": [_i16(data, 68 + 2 * k) for k in range(5)],
    }


def codes_per_notes(stream: bytes, count: int) -> list[int] | None:
    """Notes 4, one byte at a time: the ``count`` pixel values, or None if the bytes run out."""
    out, pos, p = [], 0, 0
    for _ in range(count):
        if pos >= len(stream):
            return None
        b0 = stream[pos]
        pos += 1
        if b0 & 0x80:
            p += (b0 - 256) if b0 & 0x40 else (b0 & 0x3F)
        else:
            if pos >= len(stream):
                return None
            p = (b0 << 8) | stream[pos]
            pos += 1
        out.append(p & 0x0FFF)
    return out


def _year(field: int) -> int:
    """Notes 6 (unverified): 2-digit years or year - 1900; small values wrapped past 1999."""
    return 2000 + field if field < 50 else 1900 + field


def _convert(data: bytes) -> pydicom.Dataset:
    return normalize(formats.decode(bytes(data)), origin="test")


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.int64) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)


def _sims(count: int, seed: int):
    return list(generate("ge9800", count, SimOptions(), seed=seed))


# --------------------------------------------------------------------------- simulated files


def test_simulated_files_equal_the_notes_read_independently():
    seen = set()
    for sim in _sims(12, seed=80):
        theirs = read_per_notes(sim.data)
        ds = _convert(sim.data)
        assert (ds.Rows, ds.Columns) == (theirs["rows"], theirs["cols"]), sim.name
        assert np.array_equal(_hu(ds), theirs["hu"]), sim.name
        assert ds.RescaleType == "HU"
        assert ds.PatientID == theirs["patient_id"]
        assert str(ds.PatientName) == theirs["patient_name"]
        assert ds.StudyID == str(theirs["exam_number"])
        month, day, year = theirs["exam_mdy"]
        assert ds.StudyDate == f"{_year(year):04d}{month:02d}{day:02d}"
        assert (ds.SeriesNumber, ds.InstanceNumber) == (theirs["series"], theirs["image_number"])
        assert float(ds.KVP) == theirs["kvp"]
        assert float(ds.SliceThickness) == theirs["aperture"]
        width, level = theirs["window"]
        if width > 0:
            assert (float(ds.WindowWidth), float(ds.WindowCenter)) == (width, level)
        else:
            assert "WindowWidth" not in ds
        seen.add("map" if theirs["use_map"] else "full rows")
        seen.add("arr layout" if theirs["arr"] else "standard layout")
        seen.add("default pointers" if theirs["pointers"] == [0] * 5 else "pointers given")
        if theirs["pointers"] == [0] * 5 and theirs["use_map"]:  # both layouts' default map
            seen.add("arr defaults" if theirs["arr"] else "standard defaults")  # map at 9 / 4 blocks
        seen.add("moved" if theirs["exam"] != 512 else "exam at 512")
        seen.add("scout" if theirs["rows"] != theirs["cols"] else "square")
        seen.add(ds.SOPClassUID)
    assert seen >= {"map", "full rows", "arr layout", "standard layout", "default pointers", "pointers given",
                    "arr defaults", "standard defaults", "moved", "exam at 512", "scout", "square",
                    CT_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE}


def test_simulated_files_pass_dciodvfy(tmp_path):
    classes = set()
    for i, sim in enumerate(_sims(10, seed=99)):
        ds = _convert(sim.data)
        classes.add(ds.SOPClassUID)
        path = tmp_path / f"{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert dciodvfy_errors(path) == [], sim.name
    assert classes == {CT_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE}


def test_uids_are_deterministic_and_follow_the_exam():
    sims = _sims(3, seed=97)  # indices 0-2: the same exam number
    first = [_convert(s.data) for s in sims]
    again = _convert(sims[0].data)
    assert again.SOPInstanceUID == first[0].SOPInstanceUID
    assert again.StudyInstanceUID == first[0].StudyInstanceUID
    assert len({ds.StudyInstanceUID for ds in first}) == 1
    assert len({ds.SOPInstanceUID for ds in first}) == 3


def test_length_by_block_count_and_by_walking_the_codes():
    decoder = formats.get(NAME)
    for sim in _sims(4, seed=96):
        data = sim.data
        assert decoder.length(data) == len(data)
        assert decoder.length(data + b"\0" * 700) == len(data)
        assert decoder.length(data[:300]) == 512
        assert decoder.length(data[:len(data) // 2]) == len(data)
        no_count = bytearray(data)
        no_count[88:90] = b"\0\0"  # data blocks unknown: the codes are walked
        theirs = read_per_notes(data)
        end = decoder.length(bytes(no_count))
        assert len(data) - 512 < end <= len(data)
        assert decoder.length(bytes(no_count[:end - 1])) > end - 1  # a prefix asks for more
        assert np.array_equal(_hu(_convert(bytes(no_count[:end]))), theirs["hu"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=200), st.sampled_from([0x00, 0x40, 0x80, 0xC0]))
def test_byte_code_equals_the_notes_on_any_bytes(raw, count, bias):
    """The vectorised code-start search against the plain loop, on streams rich in the runs
    of bytes below 0x80 that make it hard (``bias`` sets the top two bits of half the bytes)."""
    stream = bytes(b | bias if i % 2 else b for i, b in enumerate(raw))
    expected = codes_per_notes(stream, count)
    if expected is None:
        with pytest.raises(DecodeError):
            ct9800_pixels.decode_stream(stream, 0, count, len(stream))
        assert ct9800_pixels.stream_length(stream, 0, count) is None
    else:
        assert ct9800_pixels.decode_stream(stream, 0, count, len(stream)).tolist() == expected
        size = ct9800_pixels.stream_length(stream, 0, count)
        assert codes_per_notes(stream[:size], count) == expected
        assert codes_per_notes(stream[:size - 1], count) is None


def test_byte_code_of_a_whole_image_equals_the_notes():
    """A stream of a 512 x 512 image's size, with absolute codes first, back to back and in
    runs of bytes below 0x80 of every length, against the plain loop; cut inside its last
    code, and one code short, it is refused at the byte where it ends."""
    rng = np.random.default_rng(14)
    count = 512 * 512
    codes = []
    for kind in rng.choice(4, size=count, p=[0.9, 0.04, 0.04, 0.02]):
        if kind == 0:
            codes.append(bytes([int(rng.integers(0x80, 0x100))]))
        elif kind == 1:  # an absolute code whose second byte is below 0x80 too (a run of lows)
            codes.append(bytes([int(rng.integers(0, 0x80)), int(rng.integers(0, 0x80))]))
        else:
            codes.append(bytes([int(rng.integers(0, 0x80)), int(rng.integers(0, 0x100))]))
    codes[0] = b"\x12\x34"
    codes[-3:] = [b"\x0f\xff", b"\xc1", b"\x85"]  # the last absolute code, then two deltas
    stream = b"".join(codes)
    expected = codes_per_notes(stream, count)
    assert ct9800_pixels.decode_stream(stream, 0, count, len(stream)).tolist() == expected
    assert ct9800_pixels.stream_length(stream + b"\x80" * 9, 0, count) == len(stream)
    ending = stream + b"\x0f\xff"  # one more pixel, an absolute code
    with pytest.raises(DecodeError) as cut:
        ct9800_pixels.decode_stream(ending, 0, count + 1, len(ending) - 1)
    assert (cut.value.field, cut.value.offset) == ("pixel data", len(stream))
    with pytest.raises(DecodeError) as short:
        ct9800_pixels.decode_stream(stream[:-1], 0, count, len(stream) - 1)
    assert (short.value.field, short.value.offset) == ("pixel data", len(stream) - 1)


# --------------------------------------------------------------------------- the notes' vectors


def vector_file(*, tilt: bytes = bytes.fromhex("C1500000"), pixels: bytes = bytes.fromhex("040085FEC0"),
                half: int = 2, size: int = 8) -> bytearray:
    """A 9800 file built from the notes alone: exam pointer `01 01` (C1), row 0 stored as the
    span h = 2 of 8 columns (C4) holding the bytes of C2 + C3, aperture C5, tilt C6,
    head first supine (C7); map at the default 4 blocks, pixels at 6 blocks."""
    b = bytearray(6 * 512 + 512)
    b[0:6] = b"9800  "
    b[68:70] = bytes.fromhex("0101")  # C1: (257 - 1) x 2 = 512
    b[88:90] = struct.pack(">h", 1)  # one block of pixel data
    b[192:196] = struct.pack(">hh", 1, 512)
    exam, image = 512, 1024
    b[exam + 6:exam + 8] = struct.pack(">h", 4711)
    b[exam + 22:exam + 34] = b"VECTOR01    "
    b[exam + 244:exam + 250] = struct.pack(">hhh", 6, 15, 88)
    b[image + 24:image + 28] = struct.pack(">hh", 3, 2)  # standard group 2
    b[image + 94:image + 96] = struct.pack(">h", 7)
    b[image + 98:image + 102] = bytes.fromhex("00010002")  # C7: HFS
    b[image + 176:image + 180] = bytes.fromhex("41A00000")  # C5: 10.0 mm
    b[image + 184:image + 188] = tilt  # C6: -5.0 degrees
    b[image + 192:image + 196] = bytes.fromhex("42640000")  # table location 100.0
    b[image + 246:image + 248] = struct.pack(">h", size)
    b[image + 348:image + 350] = struct.pack(">h", 1)  # use the map
    b[image + 430:image + 434] = bytes.fromhex("41100000")  # 1.0 mm pixels
    b[image + 434:image + 436] = struct.pack(">h", 1)  # prospective
    b[2048:2050] = struct.pack(">h", half)  # C4: row 0; the other rows store nothing
    b[3072:3072 + len(pixels)] = pixels
    return b


def test_vectors_c1_to_c8():
    ds = _convert(vector_file())
    assert ds.PatientID == "VECTOR01"  # C1: the exam header found at 512
    assert ds.StudyDate == "19880615"
    row = _hu(ds)[0]
    # C2 (1024, 1029, 1027), C3 (963 after 1027), C4 (span columns 2-5), C8 (1024 -> 0 HU)
    assert row.tolist() == [-1024, -1024, 0, 5, 3, -61, -1024, -1024]
    assert (_hu(ds)[1:] == -1024).all()
    assert float(ds.SliceThickness) == 10.0  # C5
    assert float(ds.GantryDetectorTilt) == -5.0  # C6
    assert ds.PatientPosition == "HFS"  # C7
    assert ds.SOPClassUID == SECONDARY_CAPTURE_STORAGE  # tilted: geometry conventions unknown


def test_a_predictor_beyond_12_bits_gives_its_low_12_bits_in_a_mapped_row():
    """Notes 4: each pixel is P & 0x0FFF, P a 15-bit absolute value plus deltas that may take
    it below 0. In a row stored as a span (the map), by hand from the notes: 0x1234 -> 0x234,
    -64 -> 0x1F4, absolute 0, then -1 -> 0xFFF; the columns outside the span are 0."""
    data = bytes(vector_file(pixels=bytes.fromhex("1234C00000FF")))
    ds = _convert(data)
    # The bytes as written (pixel_array would hide bits above Bits Stored).
    stored = np.frombuffer(ds.PixelData, dtype="<u2").reshape(8, 8)
    assert stored[0].tolist() == [0, 0, 0x234, 0x1F4, 0x000, 0xFFF, 0, 0]
    assert (stored[1:] == 0).all()
    assert np.array_equal(stored.astype(np.int64) - 1024, read_per_notes(data)["hu"])


def test_untilted_axial_is_ct_with_a_centred_plane(tmp_path):
    ds = _convert(vector_file(tilt=bytes(4)))
    assert ds.SOPClassUID == CT_IMAGE_STORAGE
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    # centre on the axis; head first: the table moving in by 100 mm puts the plane 100 mm feet-wards
    assert [float(v) for v in ds.ImagePositionPatient] == [-3.5, -3.5, -100.0]
    assert [float(v) for v in ds.PixelSpacing] == [1.0, 1.0]
    path = tmp_path / "v.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


def test_dump_rows():
    rows = {r.name: r for r in formats.get(NAME).dump(bytes(vector_file()))}
    assert rows["global header.exam_pointer"].offset == 68
    assert rows["global header.exam_pointer"].value == "257"
    assert rows["image header 1.aperture_mm"].offset == 1024 + 176
    assert rows["image header 1.aperture_mm"].value == "10.0"
    assert rows["image header 1.gantry_angle"].type == "dg_single"
    assert rows["image map.half_lengths"].offset == 2048


# --------------------------------------------------------------------------- bad input


def _error(data) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        formats.decode(bytes(data))
    assert not isinstance(info.value, UnknownFormat)
    return info.value


def test_truncated_pixels_named_by_the_block_count():
    data = _sims(1, seed=95)[0].data
    err = _error(data[:-600])
    assert (err.field, err.offset) == ("data_blocks", 88)


def test_truncated_stream_without_block_count():
    b = vector_file(pixels=bytes.fromhex("0400"), half=2)  # 1 of 4 pixels, then zero bytes...
    b[88:90] = b"\0\0"
    err = _error(b[:3072 + 2])  # ... cut off after the first code
    assert (err.field, err.offset) == ("pixel data", 3074)


def test_truncated_headers():
    err = _error(vector_file()[:700])
    assert (err.field, err.offset) == ("exam_pointer", 68)
    err = _error(vector_file()[:1300])
    assert (err.field, err.offset) == ("image1_pointer", 70)


@pytest.mark.parametrize("at, value, field", [
    (70, -1, "image1_pointer"),  # negative Int16
    (70, 100, "image1_pointer"),  # into the global header
    (74, 30000, "map_pointer"),  # beyond this small file
    (76, 30000, "data_pointer"),
    (86, 400, "map_blocks"),
    (88, -3, "data_blocks"),
])
def test_corrupted_pointers_and_counts(at, value, field):
    b = vector_file()
    b[at:at + 2] = struct.pack(">h", value)
    err = _error(b)
    assert (err.field, err.offset) == (field, at)


def test_map_wider_than_the_row():
    b = vector_file()
    b[2048 + 2 * 3:2048 + 2 * 3 + 2] = struct.pack(">h", 5)  # row 3: 2 x 5 > 8 columns
    err = _error(b)
    assert (err.field, err.offset) == ("half_lengths", 2048 + 6)


def test_absurd_image_size_is_refused_before_allocating():
    b = vector_file()
    b[1024 + 246:1024 + 248] = struct.pack(">h", 30000)
    err = _error(b)
    assert (err.field, err.offset) == ("image_size", 1024 + 246)


# --------------------------------------------------------------------------- identification


def test_identified_by_content():
    assert formats.identify(bytes(vector_file())).name == NAME
    for sim in _sims(3, seed=94):
        assert formats.identify(sim.data).name == NAME
        assert formats.object_length(sim.data + b"\0" * 100) == len(sim.data)  # serial lines cut by it
        for other in formats.decoders():
            if other.name != NAME:
                assert not other.identify(sim.data), other.name
                assert getattr(other, "length", lambda d: None)(sim.data) is None, other.name
    b = vector_file()
    b[194:196] = struct.pack(">h", 256)  # the constant 512 is not there
    assert not formats.get(NAME).identify(bytes(b))


def test_other_formats_and_real_samples_are_refused():
    decoder = formats.get(NAME)
    others = [f for f in sim_formats() if f != "ge9800"]
    assert len(others) >= 5
    for fmt in others:
        for sim in generate(fmt, 3, SimOptions(), seed=93):
            assert not decoder.identify(sim.data), (fmt, sim.name)
            assert decoder.length(sim.data) is None, (fmt, sim.name)
    if SAMPLES is None:
        pytest.skip("shared/samples is not present on this machine")  # the simulated half ran above
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert not decoder.identify(data), path
        assert decoder.length(data) is None, path
