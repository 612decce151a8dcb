"""GE Genesis: real samples against VTK and SimpleITK, notes' vectors, variants, bad input.

Expected values come from independent readers (VTK's vtkGESignaReader, SimpleITK's
GE5ImageIO), from dicom3tools' output as recorded in shared/formats/ge-genesis.md 18, or
from the notes' test vectors, never from our own decoder.
"""

from __future__ import annotations

import math
import shutil
import struct

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import formats
from gateway.formats.ge import pixels as ge_pixels
from gateway.formats.ge.genesis import GenesisDecoder, unpack_ge_uid
from gateway.simulate import SimOptions, generate
from tests.support.decoding import as_list as _multi
from tests.support.decoding import decode_error as _error
from tests.support.decoding import normalized as _convert
from tests.support.peers import dciodvfy_errors

HEART = "ge_genesis/heart.1"  # uncompressed, IMGF version 3, oblique cardiac MR, 1994
DPCM = "ge_genesis/E07733S002I009.MR"  # DPCM (code 3), IMGF version 2, sagittal FSE, 2001
DECODER = GenesisDecoder()


def _read(samples, name: str) -> bytes:
    return (samples / name).read_bytes()


def _pixels(ds: pydicom.Dataset) -> np.ndarray:
    return np.frombuffer(ds.PixelData, dtype="<i2").reshape(ds.Rows, ds.Columns)


def _words(ds: pydicom.Dataset) -> np.ndarray:
    return _pixels(ds).view(np.uint16)


def _vtk(path) -> tuple[np.ndarray, tuple[float, ...]]:
    """VTK's pixels in display order (VTK stores rows bottom-up) and its origin. VTK returns
    unsigned 16-bit words: compare them with our signed pixels' bit patterns (``_words``)."""
    vtk = pytest.importorskip("vtk", reason="VTK is the independent reference (test-only dependency)")
    from vtk.util.numpy_support import vtk_to_numpy

    reader = vtk.vtkGESignaReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    nx, ny, _ = image.GetDimensions()
    values = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(ny, nx)[::-1]
    return values.astype(np.uint16), image.GetOrigin()


def _sitk_ge5(path, tmp_path):
    """SimpleITK's GE5ImageIO on the file alone: it scans the folder for more Genesis files
    and fails on two with the same corner (notes 8), so the file goes into its own folder."""
    sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is the independent reference")
    alone = tmp_path / "alone"
    alone.mkdir(parents=True)
    target = alone / path.name
    shutil.copyfile(path, target)
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GE5ImageIO")
    reader.SetFileName(str(target))
    return reader.Execute()


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name", [HEART, DPCM])
def test_identifies_real_files(samples, name):
    assert formats.identify(_read(samples, name)).name == "ge-genesis"


@pytest.mark.parametrize("name", [HEART, DPCM])
def test_pixels_equal_vtk(samples, name):
    ds = _convert(_read(samples, name))
    expected, _ = _vtk(samples / name)
    assert _pixels(ds).shape == expected.shape == (256, 256)
    assert np.array_equal(_words(ds), expected)


def test_heart_pixels_equal_simpleitk(samples, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    image = _sitk_ge5(samples / HEART, tmp_path)
    assert np.array_equal(_pixels(_convert(_read(samples, HEART))), sitk.GetArrayFromImage(image)[0])


def test_heart_geometry_against_simpleitk_and_vtk(samples, tmp_path):
    """IOP and PixelSpacing equal SimpleITK's direction and spacing (1e-3).

    Image Position (Patient) is the centre of the first pixel. GE's corners are the outer
    edges of the image: SimpleITK's origin is GE's top-left corner (in LPS) and VTK's origin
    its bottom-left corner (in RAS), and those lie 256 x 0.9375 = 240.0 mm apart, not the
    255 x 0.9375 = 239.06 mm that pixel centres would give. So the first pixel's centre is
    half a pixel inside that corner along the row and along the column direction — where
    dicom3tools, ITK and VTK all leave it at the corner itself, half a pixel off.
    """
    image = _sitk_ge5(samples / HEART, tmp_path)
    ds = _convert(_read(samples, HEART))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    row, col = direction[:, 0], direction[:, 1]
    assert np.allclose([float(v) for v in ds.ImageOrientationPatient], [*row, *col], atol=1e-3)
    sx, sy = image.GetSpacing()[:2]
    assert np.allclose([float(v) for v in ds.PixelSpacing], [sy, sx], atol=1e-3)

    tl_lps = np.array(image.GetOrigin())
    _, vtk_origin = _vtk(samples / HEART)
    bl_lps = np.array([-vtk_origin[0], -vtk_origin[1], vtk_origin[2]])
    height = np.linalg.norm(bl_lps - tl_lps)
    assert abs(height - 256 * sy) < 0.01 and abs(height - 255 * sy) > 0.5  # edges, not centres
    expected = tl_lps + row * sx / 2 + col * sy / 2
    assert np.allclose([float(v) for v in ds.ImagePositionPatient], expected, atol=1e-3)


def test_dpcm_file_geometry(samples):
    """The DPCM file (SimpleITK rejects it: it assumes fixed offsets for IMGF version 2).
    dicom3tools and SimpleITK (notes 18) put IPP at the corner -2\\-120\\120 with IOP
    0\\1\\0\\0\\0\\-1; VTK's origin is the bottom-left corner in RAS. The corners lie 240 mm
    apart for 256 pixels of 0.9375 mm: edges, so the first pixel's centre is half a pixel in."""
    ds = _convert(_read(samples, DPCM))
    _, vtk_origin = _vtk(samples / DPCM)
    tl = np.array([-2.0, -120.0, 120.0])
    bl = np.array([-vtk_origin[0], -vtk_origin[1], vtk_origin[2]])
    assert abs(np.linalg.norm(bl - tl) - 256 * 0.9375) < 0.01
    row, col = np.array([0, 1, 0]), np.array([0, 0, -1])
    assert np.allclose([float(v) for v in ds.ImageOrientationPatient], [*row, *col], atol=1e-6)
    assert np.allclose([float(v) for v in ds.ImagePositionPatient], tl + (row + col) * 0.9375 / 2, atol=1e-4)
    assert _multi(ds.PatientOrientation) == ["P", "F"]


@pytest.mark.parametrize(
    "name, study, series, acquisition, content",
    [
        # dicom3tools' values (notes 18); Content is the image's "actual" time (pk 18), 22 s and
        # 2 s after the allocation time, not the database edit stamp dicom3tools uses (notes 10).
        (HEART, ("19941123", "143254"), ("19941123", "150532"), ("19941123", "152709"), ("19941123", "152731")),
        (DPCM, ("20010523", "140740"), ("20010523", "140955"), ("20010523", "140955"), ("20010523", "140957")),
    ],
)
def test_dates_and_times(samples, name, study, series, acquisition, content):
    ds = _convert(_read(samples, name))
    assert (ds.StudyDate, ds.StudyTime) == study
    assert (ds.SeriesDate, ds.SeriesTime) == series
    assert (ds.AcquisitionDate, ds.AcquisitionTime) == acquisition
    assert (ds.ContentDate, ds.ContentTime) == content
    assert "TimezoneOffsetFromUTC" not in ds


def test_header_fields_of_the_dpcm_file(samples):
    """Values dicom3tools gives (notes 18) or that the notes' rules give for this file."""
    ds = _convert(_read(samples, DPCM))
    assert ds.SeriesDescription == "SAG T2 FAST S.E."
    assert ds.InstitutionName == "DEACONESS HOSP."
    assert ds.PatientPosition == "HFS"
    assert (float(ds.RepetitionTime), float(ds.EchoTime)) == (4000.0, 85.0)
    assert _multi(ds.ScanningSequence) == ["SE"] and _multi(ds.SequenceVariant) == ["SK"]
    assert float(ds.SliceThickness) == 3.0
    assert float(ds.SpacingBetweenSlices) == 3.5  # thickness 3 + gap 0.5 (notes 5.4)
    assert list(ds.AcquisitionMatrix) == [0, 256, 256, 0]
    assert ds.InPlanePhaseEncodingDirection == "ROW"
    assert float(ds.PixelBandwidth) == 125.0  # +/-16 kHz over 256 samples
    assert "WindowWidth" not in ds  # dwindow 0: no window rather than a forbidden width 0
    assert "PatientAge" not in ds or ds.PatientAge in ("", None)  # age 0 = not entered


@pytest.mark.parametrize("name", [HEART, DPCM])
def test_ge_uids_are_kept(samples, name):
    ds = _convert(_read(samples, name))
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert str(ds[keyword].value).startswith("1.2.840.113619."), keyword  # GE's root (notes 11)
    assert ds.StudyInstanceUID != ds.SeriesInstanceUID != ds.SOPInstanceUID


def test_packed_uid_vector_u1():
    raw = bytes.fromhex("2B3B951B22472AB3B6B2") + bytes(22)
    assert unpack_ge_uid(raw) == "1.2.840.113619.2.5.1"


@pytest.mark.parametrize(
    "seconds, date, time",
    [(946684800, "20000101", "000000"), (946684799, "19991231", "235959"), (951782400, "20000229", "000000")],
)
def test_y2k_exam_times(samples, seconds, date, time):
    """Vector G9 and its neighbours patched into the real file's exam header (at 2418, the
    pointer PROVENANCE.md lists; the time stamp at exam pk 208)."""
    data = bytearray(_read(samples, HEART))
    struct.pack_into(">i", data, 2418 + 208, seconds)
    ds = _convert(bytes(data))
    assert (ds.StudyDate, ds.StudyTime) == (date, time)


@pytest.mark.parametrize("name", [HEART, DPCM])
def test_real_files_pass_dciodvfy(samples, tmp_path, name):
    ds = _convert(_read(samples, name))
    path = tmp_path / "out.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []
    block = ds.private_block(0x0029, "LEGACY-GATEWAY 1")
    assert block[0x10].value.startswith(b"IMGF")  # the vendor header kept


# --------------------------------------------------------------------------- notes' vectors


@pytest.mark.parametrize(
    "stream, rows, cols, expected",
    [
        ("C001F40A7E", 1, 3, [500, 510, 508]),  # D1
        ("C003E8057B81F4BF3840C0FF9C", 1, 7, [1000, 1005, 1000, 1500, 1300, 1236, -100]),  # D2
        ("C003E8057B81F4", 2, 2, [1000, 1005, 1000, 1500]),  # D3: predictor crosses the row end
    ],
)
def test_dpcm_vectors(stream, rows, cols, expected):
    data = bytes.fromhex(stream)
    assert ge_pixels.dpcm(data, 0, rows, cols).ravel().tolist() == expected


# P1 / P2 (notes 15): 3 rows x 4 columns, map (left, width) = (1,2), (0,4), (3,1).
_MAP = bytes.fromhex("000100020000000400030001")


def test_packed_vector_p1():
    left, width = ge_pixels.read_line_map(_MAP, 0, 12, 3, 4)
    pixels = bytes.fromhex("000A000B0014001500160017001E")
    assert ge_pixels.packed(pixels, 0, left, width, 3, 4).tolist() == [[0, 10, 11, 0], [20, 21, 22, 23], [0, 0, 0, 30]]


def test_dpcm_packed_vector_p2():
    left, width = ge_pixels.read_line_map(_MAP, 0, 12, 3, 4)
    stream = bytes.fromhex("C0000A010A01010108")
    assert ge_pixels.dpcm_packed(stream, 0, left, width, 3, 4).tolist() == [[0, 10, 11, 0], [21, 22, 23, 24],
                                                                          [0, 0, 0, 32]]


def test_dpcm_fallback_scan_agrees_with_the_walk(samples):
    """The O(n log n) fallback (for streams without sync points) finds the same code starts
    as the fast path on the real DPCM stream, and handles a stream of 3-byte codes only."""
    stream = np.frombuffer(_read(samples, DPCM), dtype=np.uint8, offset=8412)
    assert np.array_equal(ge_pixels._scan_starts(stream), ge_pixels.code_starts(stream))
    absolute = bytes.fromhex("C00102") * 5000  # no sync point anywhere: forces the fallback
    assert ge_pixels.dpcm(absolute, 0, 50, 100).ravel().tolist() == [0x0102] * 5000


def _dpcm_reference(data: bytes, count: int) -> list[int]:
    """The DPCM code read one byte at a time, as the notes (7.4) state it: the oracle for
    the vectorised decoder."""
    out, value, i = [], 0, 0
    while len(out) < count:
        b = data[i]
        if b < 0x80:
            value += b - 0x80 if b & 0x40 else b
            i += 1
        elif b < 0xC0:
            delta = ((b & 0x3F) << 8) | data[i + 1]
            value += delta - 0x4000 if delta & 0x2000 else delta
            i += 2
        else:
            value = (data[i + 1] << 8) | data[i + 2]
            i += 3
        value &= 0xFFFF
        out.append(value - 0x10000 if value & 0x8000 else value)
    return out


_CODES = st.one_of(
    st.integers(0, 0x7F).map(lambda b: bytes([b])),
    st.binary(min_size=1, max_size=1).map(lambda b: bytes([0x80 | b[0] & 0x3F]) + b),  # any second byte
    st.binary(min_size=2, max_size=2).map(lambda b: b"\xc0" + b),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CODES, min_size=1, max_size=400), st.binary(max_size=3))
def test_dpcm_agrees_with_a_byte_by_byte_reading(codes, tail):
    """Any mix of codes (runs of two-byte codes whose second byte looks like a code start
    make the walk long) decodes as the sequential reading does; trailing bytes are ignored."""
    data = b"".join(codes) + tail
    assert ge_pixels.dpcm(data, 0, 1, len(codes)).ravel().tolist() == _dpcm_reference(data, len(codes))


# --------------------------------------------------------------------------- variants


def test_dat_tape_variant_built_from_the_real_file(samples):
    """Vector L1: a DAT file = first tape record (the four packed DB headers, 3180 bytes, which
    heart.1 holds contiguously at 2304, notes 4 p_dbHdr) + IMGF record with hdr_length 5204
    and garbage DB pointers + a 4-byte byte count at 8384 + the pixels at 8388."""
    real = _read(samples, HEART)
    record2 = bytearray(real[:5204])
    struct.pack_into(">i", record2, 4, 5204)
    struct.pack_into(">8i", record2, 124, *([0x7FFF0000] * 8))
    data = real[2304:2304 + 3180] + bytes(record2) + struct.pack(">i", 131072) + real[7904:]
    assert len(data) == 8388 + 131072
    tape, disk = _convert(data), _convert(real)
    assert np.array_equal(_words(tape), _vtk(samples / HEART)[0])
    for keyword in ("PatientName", "StudyDate", "StudyTime", "SeriesDescription", "ImagePositionPatient",
                    "StudyInstanceUID", "SOPInstanceUID", "RepetitionTime"):
        assert tape[keyword].value == disk[keyword].value, keyword


def _sim(fmt: str, count: int, seed: int, **options):
    return list(generate(fmt, count, SimOptions(**options), seed=seed))


@pytest.mark.parametrize("code", [0, 1, 3])
def test_synthetic_codes_0_1_3_equal_vtk(tmp_path, code):
    """VTK decodes codes 0, 1 and 3 of synthetic ximg files like the real ones."""
    for sim in _sim("genesis", 3, seed=21, compression=code):
        path = tmp_path / sim.name
        path.write_bytes(sim.data)
        assert np.array_equal(_words(_convert(sim.data)), _vtk(path)[0]), sim.name


def test_synthetic_uncompressed_equal_simpleitk(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    for sim in _sim("genesis", 2, seed=22, compression=1):
        path = tmp_path / sim.name
        path.write_bytes(sim.data)
        image = _sitk_ge5(path, tmp_path / sim.name.replace(".", "_"))
        assert np.array_equal(_pixels(_convert(sim.data)), sitk.GetArrayFromImage(image)[0])


@pytest.mark.parametrize("variant", ["disk", "tape", "aw"])
@pytest.mark.parametrize("code", [2, 4])
def test_packed_codes_equal_the_vtk_checked_raster(tmp_path, variant, code):
    """VTK is no reference for codes 2/4 (notes 7.2) and the line map algorithm is checked by
    vectors P1/P2; here the same simulated image as code 2/4 in each layout must decode to the
    raster VTK reads from its code-3 ximg twin (same seed, same scene)."""
    twins = _sim("genesis", 2, seed=23, compression=3)
    for twin, sim in zip(twins, _sim("genesis", 2, seed=23, compression=code, variant=variant)):
        path = tmp_path / twin.name
        path.write_bytes(twin.data)
        assert np.array_equal(_words(_convert(sim.data)), _vtk(path)[0])


def test_aw_variant_pixels_at_imgf_plus_hdr_length():
    """Vector L2: Advantage Windows MR has IMGF at 3228 and the pixels at 3228 + hdr_length."""
    sims = [s for s in _sim("genesis", 6, seed=24, compression=1, variant="aw") if s.name.endswith(".MR")]
    assert sims
    for sim in sims:
        assert sim.data[3228:3232] == b"IMGF"
        hdr_length = struct.unpack_from(">i", sim.data, 3232)[0]
        raw = np.frombuffer(sim.data, ">i2", offset=3228 + hdr_length).astype(np.int16)
        assert np.array_equal(_pixels(_convert(sim.data)).ravel(), raw)


@pytest.mark.parametrize("variant", ["disk", "tape", "aw"])
def test_synthetic_mr_and_ct_pass_dciodvfy(tmp_path, variant):
    seen = set()
    for i, sim in enumerate(_sim("genesis", 6, seed=25, variant=variant)):
        ds = _convert(sim.data)
        seen.add(ds.Modality)
        path = tmp_path / f"{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert dciodvfy_errors(path) == [], sim.name
        if ds.Modality == "CT":
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2" and ds.RescaleType == "HU"
    assert seen == {"MR", "CT"}


# --------------------------------------------------------------------------- bad input


def test_truncated_pixels(samples):
    err = _error(_read(samples, HEART)[:-100])
    assert err.field == "pixel data" and err.offset == 7904


def test_truncated_dpcm_stream(samples):
    err = _error(_read(samples, DPCM)[:-500])
    assert err.field == "pixel data" and "DPCM stream ends" in str(err)


def test_pointer_outside_the_file(samples):
    data = bytearray(_read(samples, HEART))
    struct.pack_into(">i", data, 132, 10_000_000)
    err = _error(bytes(data))
    assert (err.field, err.offset) == ("p_exam", 132)


@pytest.mark.parametrize("offset, value, field", [(8, 100_000, "width"), (12, -5, "height"), (20, 7, "compress"),
                                                  (16, 8, "depth"), (136, 999, "l_exam")])
def test_absurd_imgf_fields(samples, offset, value, field):
    data = bytearray(_read(samples, HEART))
    struct.pack_into(">i", data, offset, value)
    err = _error(bytes(data))
    assert err.field == field and err.offset == offset


def test_unknown_exam_type(samples):
    data = bytearray(_read(samples, HEART))
    data[2418 + 305:2418 + 307] = b"XX"
    err = _error(bytes(data))
    assert (err.field, err.offset) == ("exam_type", 2418 + 305)


def test_line_map_outside_the_raster():
    sim = _sim("genesis", 1, seed=26, compression=2)[0]
    data = bytearray(sim.data)
    p_unpack = struct.unpack_from(">i", data, 64)[0]
    struct.pack_into(">HH", data, p_unpack + 4 * 5, 200, 400)  # row 5: left 200 + width 400
    err = _error(bytes(data))
    assert (err.field, err.offset) == ("line map", p_unpack + 20)


def test_degenerate_corners(samples):
    data = bytearray(_read(samples, HEART))
    data[4462 + 154:4462 + 190] = bytes(36)  # all three corners at the origin
    err = _error(bytes(data))
    assert (err.field, err.offset) == ("tlhc_r", 4462 + 154)


# --------------------------------------------------------------------------- dump


def test_dump_names_every_field_with_its_absolute_offset(samples):
    rows = DECODER.dump(_read(samples, HEART))
    by_name = {r.name: r for r in rows}
    assert by_name["IMGF.hdr_length"].value == "7904"
    assert by_name["exam (packed).patient_name"].offset == 2418 + 97
    assert by_name["exam (packed).patient_name"].target == "PatientName"
    assert by_name["series (packed).description"].value == repr("CARDIAC,Obl,2D,SPGR,FC, Gat,")
    assert by_name["MR image (packed).tr_us"].offset == 4462 + 194
    assert math.isclose(float(by_name["MR image (packed).pixsize_x"].value), 0.9375)


def test_pointerless_version2_layout():
    """Notes 2 variant B (ITK/SIVIC): a 124-byte IMGF header, then padded headers at 124, 240,
    1280 and 2308. Built from a simulated Advantage Windows MR file (the same padded headers),
    it must decode to the same pixels and header values."""
    aw = next(s for s in _sim("genesis", 6, seed=27, compression=1, variant="aw") if s.name.endswith(".MR"))
    imgf = bytearray(aw.data[3228:3228 + 124])
    struct.pack_into(">i", imgf, 4, 124 + 3228)  # hdr_length: pixels right after the headers
    hdr_length = struct.unpack_from(">i", aw.data, 3232)[0]
    data = bytes(imgf) + aw.data[:3228] + aw.data[3228 + hdr_length:]
    fixed, reference = _convert(data), _convert(aw.data)
    assert np.array_equal(_pixels(fixed), _pixels(reference))
    for keyword in ("PatientName", "StudyDate", "SeriesDescription", "ImagePositionPatient", "EchoTime"):
        assert fixed[keyword].value == reference[keyword].value, keyword


def test_gems_prefix_variant(samples):
    """Notes 2 variant E (AFNI): a leading "GEMS" block, IMGF further in, every pointer
    relative to the IMGF position."""
    real = _read(samples, HEART)
    data = b"GEMS" + bytes(60) + real
    assert formats.identify(data).name == "ge-genesis"
    assert np.array_equal(_words(_convert(data)), _vtk(samples / HEART)[0])


def test_dump_of_a_damaged_file_shows_what_it_can(samples):
    data = bytearray(_read(samples, HEART))
    struct.pack_into(">i", data, 132, 10_000_000)
    rows = DECODER.dump(bytes(data))
    assert rows[0].name == "IMGF.magic"
    assert rows[-1].name == "(error)" and rows[-1].offset == 132 and "exam header pointer" in rows[-1].value
