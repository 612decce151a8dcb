"""GE Signa 3.x/4.x: a file built byte by byte from the notes' test vectors, SimpleITK's
GE4ImageIO on simulated files, Y2K year fields, dciodvfy, bad input.

No real Signa 4.x file exists in the samples. Expected values are the notes' vectors
(shared/formats/ge-signa-4x.md 12, each checked there with dicom3tools or ITK) and
SimpleITK's reading of the same bytes, never our own decoder's output.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gateway import formats
from gateway.formats.engine.hostnum import encode_dg_single
from gateway.formats.ge.signa4x import signa_year
from gateway.simulate import SimOptions, generate
from tests.support.decoding import as_list as _multi
from tests.support.decoding import decode_error as _error
from tests.support.decoding import normalized as _convert
from tests.support.peers import dciodvfy_errors


def _dg(value: float) -> bytes:
    return encode_dg_single(value)  # checked against host-floats.md in test_hostnum


def vector_file(tlhc=(120.0, 120.0, 30.0), trhc=(-120.0, 120.0, 30.0), blhc=(120.0, -120.0, 30.0),
                year: int = 0x5B, rows: int = 256, cols: int = 256) -> bytearray:
    """A Signa file holding the notes' vectors S1-S17 at their absolute offsets, plus the
    corners of geometry vector G1 (axial) unless others are given."""
    b = bytearray(14336 + 2 * rows * cols)
    b[3072:3086] = b"STUDY HEADER  "  # S1
    b[4096:4110] = b"SERIES HEADER "
    b[5120:5134] = b"IMAGE HEADER  "
    for base in (3072, 4096, 5120):
        b[base + 14:base + 22] = b"04.00.00"
        b[base + 22:base + 24] = b"\x00\x02"  # S2 (at 5142 for the image header)
    b[3136:3141] = b"1234 "  # study number
    b[4158:4161] = b"  3"  # series number
    b[5208:5211] = b" 17"  # image number
    b[4398:4402] = bytes.fromhex("42F00000")  # S4: FOV 240.0
    b[5398:5402] = bytes.fromhex("40F00000")  # S5: pixel size 0.9375
    b[5284:5288] = bytes.fromhex("461E8480")  # S6: TR 2 000 000 us
    b[5292:5296] = bytes.fromhex("444E2000")  # S7: TE 20 000 us
    b[5274:5278] = bytes.fromhex("41500000")  # S9: thickness 5.0
    b[5278:5282] = bytes.fromhex("41180000")  # S9: spacing 1.5
    b[3160:3166] = bytes.fromhex("000F0003") + struct.pack(">h", year)  # S10: 15-03-(year)
    b[4180:4186] = bytes.fromhex("000F0003") + struct.pack(">h", year)
    b[5188:5194] = bytes.fromhex("000F0003") + struct.pack(">h", year)
    b[4392:4394] = bytes.fromhex("3A98")  # S12: 15000 G
    b[5656:5660] = bytes.fromhex("03CE6D20")  # S13: 63 860 000 Hz
    b[5470:5472] = bytes.fromhex("001E")  # S14: flip 30
    b[3228:3232] = bytes.fromhex("34322000")  # S15: age "42 "
    b[3234:3238] = bytes.fromhex("00011170")  # S16: 70 000 g
    b[3232:3233] = b"F"
    b[5394:5398] = struct.pack(">hh", cols, rows)  # S17: X (width), Y
    b[4414:4418] = struct.pack(">hh", 1, 1)  # prone, feet first
    for base, corner in ((5538, tlhc), (5550, trhc), (5562, blhc)):
        for i, v in enumerate(corner):
            b[base + 4 * i:base + 4 * i + 4] = _dg(v)
    b[14336:] = (np.arange(rows * cols, dtype=np.int64) % 4096).astype(">u2").tobytes()
    return b


def _floats(value) -> list[float]:
    return [float(v) for v in value]


def test_identified_and_vectors_decoded():
    ds = _convert(vector_file())
    assert formats.identify(bytes(vector_file())).name == "ge-signa4x"
    assert float(ds.ReconstructionDiameter) == 240.0  # S4 (an IEEE reader would say 120)
    assert _floats(ds.PixelSpacing) == [0.9375, 0.9375]  # S5
    assert (float(ds.RepetitionTime), float(ds.EchoTime)) == (2000.0, 20.0)  # S6, S7
    assert float(ds.SliceThickness) == 5.0  # S9
    assert float(ds.SpacingBetweenSlices) == 6.5  # thickness + gap, as ITK computes it
    assert ds.StudyDate == ds.SeriesDate == ds.ContentDate == "19910315"  # S10
    assert float(ds.MagneticFieldStrength) == 1.5  # S12
    assert float(ds.ImagingFrequency) == 63.86  # S13
    assert float(ds.FlipAngle) == 30  # S14
    assert ds.PatientAge == "042Y"  # S15
    assert float(ds.PatientWeight) == 70  # S16
    assert (ds.Rows, ds.Columns) == (256, 256)  # S17
    assert ds.PatientPosition == "FFP"
    assert (ds.StudyID, ds.SeriesNumber, ds.InstanceNumber) == ("1234", 3, 17)


def test_geometry_vector_g1_axial():
    """G1: corners 240 mm = 256 x 0.9375 apart: edges, so IPP is half a pixel inside TLHC
    (`-119.53125\\-119.53125\\30`; dicom3tools would write the corner, -120\\-120\\30)."""
    ds = _convert(vector_file())
    assert _floats(ds.ImageOrientationPatient) == [1, 0, 0, 0, 1, 0]
    assert _floats(ds.ImagePositionPatient) == [-119.53125, -119.53125, 30]
    assert _multi(ds.PatientOrientation) == ["L", "P"]


def test_geometry_vector_g2_sagittal():
    ds = _convert(vector_file(tlhc=(-10, 120, 120), trhc=(-10, -120, 120), blhc=(-10, 120, -120)))
    assert _floats(ds.ImageOrientationPatient) == [0, 1, 0, 0, 0, -1]
    assert np.allclose(_floats(ds.ImagePositionPatient), [10, -120 + 0.46875, 120 - 0.46875])
    assert _multi(ds.PatientOrientation) == ["P", "F"]


def test_geometry_vector_g3_double_oblique():
    """G3 (run through sgntodc in the notes): IOP 0.866025\\0.5\\0\\-0.469846\\0.813798\\0.342020,
    corner IPP -37.0415\\-177.906\\-6.04242; the corners are 240 mm apart (edges), so the
    first pixel centre is 0.46875 mm further along the row and the column."""
    b = vector_file(trhc=(-170.8046, 57.9057, -6.0424), blhc=(149.8046, -17.4057, 76.0424))
    b[5538:5550] = bytes.fromhex("42250A9F42B1E7DDC160ADBE")  # TLHC as the notes give the DG bytes
    ds = _convert(b)
    row = np.array([0.866025, 0.5, 0])
    col = np.array([-0.469846, 0.813798, 0.342020])
    assert np.allclose(_floats(ds.ImageOrientationPatient), [*row, *col], atol=2e-6)
    corner = np.array([-37.0415, -177.906, -6.04242])
    assert np.allclose(_floats(ds.ImagePositionPatient), corner + 0.46875 * (row + col), atol=1e-3)
    assert _multi(ds.PatientOrientation) == ["LP", "PRH"]


@pytest.mark.parametrize(
    "field, date",
    [(99, "19990315"), (100, "20000315"), (101, "20010315"), (0, "20000315"), (1, "20010315"), (95, "19950315")],
)
def test_year_fields_after_1999(tmp_path, field, date):
    """Notes 7: 100/101 (kept counting) and 0/1 (wrapped) both mean 20xx. dicom3tools writes
    the invalid `0100...`/`0101...` for the first and drops 0; ours must be valid DICOM dates."""
    ds = _convert(vector_file(year=field))
    assert ds.StudyDate == ds.SeriesDate == ds.AcquisitionDate == date
    path = tmp_path / "y.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize("field, year", [(1985, 1985), (-1, None), (250, None), (1899, None)])
def test_year_rule_edges(field, year):
    assert signa_year(field) == year


def test_invalid_year_leaves_dates_empty(tmp_path):
    ds = _convert(vector_file(year=-3))
    assert not ds.StudyDate
    path = tmp_path / "y.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


def test_non_square_x_is_the_width():
    """X (5394) is the width as ITK and MNI read it (dicom3tools says Rows); here the corners
    agree: 256 x 0.9375 = 240 mm across, 128 x 0.9375 = 120 mm down."""
    ds = _convert(vector_file(rows=128, cols=256, blhc=(120, 0, 30)))
    assert (ds.Rows, ds.Columns) == (128, 256)


def test_corners_break_the_tie_when_x_is_the_height():
    """If the corners say the image is X pixels high, they win (notes 13 item 2)."""
    ds = _convert(vector_file(rows=128, cols=256, trhc=(0, 120, 30), blhc=(120, -120, 30)))
    assert (ds.Rows, ds.Columns) == (256, 128)


# --------------------------------------------------------------------------- simulated files


def _sims(count: int, seed: int):
    return list(generate("signa4x", count, SimOptions(), seed=seed))


def test_simulated_files_equal_simpleitk_ge4(tmp_path):
    """ITK's GE4ImageIO reads the same words (as signed 16-bit) and the same in-plane pixel
    spacing; its z spacing is thickness + gap, our SpacingBetweenSlices."""
    sitk = pytest.importorskip("SimpleITK", reason="SimpleITK is the independent reference")
    for sim in _sims(6, seed=31):
        folder = tmp_path / sim.name
        folder.mkdir()
        path = folder / sim.name
        path.write_bytes(sim.data)
        reader = sitk.ImageFileReader()
        reader.SetImageIO("GE4ImageIO")
        reader.SetFileName(str(path))
        image = reader.Execute()
        ds = _convert(sim.data)
        words = np.frombuffer(ds.PixelData, "<u2").reshape(ds.Rows, ds.Columns)
        theirs = sitk.GetArrayFromImage(image)[0]
        assert theirs.shape == words.shape, sim.name
        assert np.array_equal(theirs.view(np.uint16), words), sim.name
        sx, sy, sz = image.GetSpacing()
        assert np.allclose(_floats(ds.PixelSpacing), [sy, sx], atol=1e-6)
        assert abs(float(ds.SpacingBetweenSlices) - sz) < 1e-4


def test_simulated_files_pass_dciodvfy(tmp_path):
    kinds = set()
    for i, sim in enumerate(_sims(8, seed=32)):
        ds = _convert(sim.data)
        kinds.add(ds.PixelRepresentation)
        path = tmp_path / f"{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        assert dciodvfy_errors(path) == [], sim.name
    assert kinds == {0, 1}  # magnitude (unsigned) and phase (signed) images both covered


def test_tape_variant_is_the_disk_file():
    disk = list(generate("signa4x", 2, SimOptions(variant="disk"), seed=33))
    tape = list(generate("signa4x", 2, SimOptions(variant="tape"), seed=33))
    assert [d.data for d in disk] == [t.data for t in tape]


# --------------------------------------------------------------------------- bad input


def test_wrong_size_for_the_matrix():
    err = _error(vector_file()[:-512])
    assert (err.field, err.offset) == ("dim_x", 5394)


def test_compressed_flag_refused():
    b = vector_file()
    b[5402:5404] = b"\x00\x01"
    err = _error(b)
    assert (err.field, err.offset) == ("compressed", 5402)


def test_degenerate_corners():
    err = _error(vector_file(tlhc=(0, 0, 0), trhc=(0, 0, 0), blhc=(0, 0, 0)))
    assert (err.field, err.offset) == ("tlhc_r", 5538)


def test_absurd_dimension():
    b = vector_file()
    b[5394:5396] = struct.pack(">h", -7)
    err = _error(b)
    assert (err.field, err.offset) == ("dim_x", 5394)


def test_dump_rows():
    rows = formats.get("ge-signa4x").dump(bytes(vector_file()))
    by_name = {r.name: r for r in rows}
    assert by_name["series header.fov_mm"].offset == 4398
    assert by_name["series header.fov_mm"].value == "240.0"
    assert by_name["image header.pixel_size"].type == "dg_single"
