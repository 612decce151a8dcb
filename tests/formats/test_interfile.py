"""Interfile 3.3: the real STIR pairs and Siemens mMR headers, and nuclear-medicine headers written here.

Pixels are checked against a plain NumPy read of the data file, with the dimensions and byte
order written out in each test from the header text (not taken from our decoder); rescaled
floats must come back within one quantum (one Rescale Slope). Every output passes dciodvfy.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pydicom
import pytest

from gateway import cli, formats
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.errors import DecodeError
from gateway.files import read_capture
from gateway.formats.interfile.header import parse
from gateway.pipeline import convert
from tests.support.peers import dciodvfy_errors

STIR = "interfile/stir"

# (header, data file, numpy dtype, shape slowest first) as the header texts state them.
REAL_PAIRS = [
    ("examples/recon_demo/init.hv", "init.v", "<f4", (31, 60, 60)),  # z, y, x
    ("examples/recon_demo/smalllong.hs", "smalllong.s", "<f4", (1, 64, 27, 75)),  # segment, view, axial, tangential
    ("recon_test_pack/scatter_cylinder.hs", "scatter_cylinder.s", "<f4", (1, 32, 8, 35)),
]
HEADERS_WITHOUT_DATA = ["examples/samples/mMR_sinogram.s.hdr", "examples/samples/mMR_listmode.l.hdr",
                        "examples/samples/PET_Interfile_header.hs"]


def finished(capture: Capture, tmp_path):
    ds, fmt = convert(capture)
    assert fmt == "interfile"
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))
    return pydicom.dcmread(out), out


def frames_of(ds) -> np.ndarray:
    dtype = "<i2" if ds.PixelRepresentation else "<u2"
    return np.frombuffer(ds.PixelData, dtype=dtype).reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)


@pytest.mark.parametrize("header,data_file,dtype,shape", REAL_PAIRS, ids=[p[1] for p in REAL_PAIRS])
def test_real_stir_pairs_match_a_plain_numpy_read(samples, tmp_path, header, data_file, dtype, shape):
    path = samples / STIR / header
    expected = np.fromfile(path.parent / data_file, dtype=dtype).reshape(shape).astype(np.float64)
    expected = expected.reshape(-1, shape[-2], shape[-1])  # frames in file order
    ds, out = finished(read_capture(path, "test"), tmp_path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3"  # PET floats: multi-frame word SC (README)
    assert ds.Modality == "PT"
    stored = frames_of(ds)
    assert stored.shape == expected.shape
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    back = stored * slope + intercept
    assert np.abs(back - expected).max() <= slope  # within one quantum
    assert (back.min() == pytest.approx(expected.min(), abs=slope)
            and back.max() == pytest.approx(expected.max(), abs=slope))
    assert dciodvfy_errors(out) == []


def test_rescale_keeps_a_wide_float_range_within_one_quantum(tmp_path):
    rng = np.random.default_rng(7)
    values = (rng.standard_normal((3, 16, 20)) * 1e6 + 12345.678).astype(">f8")
    header = nm_header("Static", "long float", 8, "BIGENDIAN", 20, 16, "total number of images := 3\n")
    ds, out = finished(Capture(header, Origin("t", "x"), {"x.img": values.tobytes()}), tmp_path)
    slope = float(ds.RescaleSlope)
    back = frames_of(ds) * slope + float(ds.RescaleIntercept)
    assert np.abs(back - values.astype(np.float64)).max() <= slope
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7.3"  # NM has no rescale: floats are SC
    assert dciodvfy_errors(out) == []


@pytest.mark.parametrize("header", HEADERS_WITHOUT_DATA)
def test_headers_whose_data_file_is_absent_are_rejected_naming_the_key(samples, header):
    capture = read_capture(samples / STIR / header, "test")
    assert capture.parts == {}
    with pytest.raises(DecodeError) as err:
        convert(capture)
    assert err.value.field == "name of data file" and "name of data file" in str(err.value)


def test_a_data_file_of_the_wrong_size_is_rejected_naming_the_keys(samples, tmp_path):
    src = samples / STIR / "examples/recon_demo"
    shutil.copy(src / "init.hv", tmp_path / "init.hv")
    (tmp_path / "init.v").write_bytes((src / "init.v").read_bytes()[:-4])
    with pytest.raises(DecodeError) as err:
        convert(read_capture(tmp_path / "init.hv", "test"))
    text = str(err.value)
    assert "matrix size [1]" in text and "matrix size [3]" in text and "name of data file" in text
    assert "446396" in text and "446400" in text


def test_huge_matrix_sizes_are_refused_before_anything_is_allocated():
    header = nm_header("Static", "unsigned integer", 2, "BIGENDIAN", 2_000_000_000, 2_000_000_000,
                       "total number of images := 2000000000\n")
    with pytest.raises(DecodeError) as err:
        convert(Capture(header, Origin("t", "x"), {"x.img": b"\0" * 64}))
    assert "matrix size [1]" in str(err.value)


def test_a_header_naming_itself_reads_its_data_after_the_offset(tmp_path):
    pixels = np.arange(8 * 6, dtype="<u2").reshape(1, 6, 8)
    text = nm_header("Static", "unsigned integer", 2, "LITTLEENDIAN", 8, 6, "total number of images := 1\n",
                     data_file="self.h33", extra_top="data starting block := 1\n")
    blob = text.ljust(2048, b"\0") + pixels.tobytes()
    (tmp_path / "self.h33").write_bytes(blob)
    ds, out = finished(read_capture(tmp_path / "self.h33", "test"), tmp_path)
    assert np.array_equal(frames_of(ds), pixels)
    assert dciodvfy_errors(out) == []


# -- nuclear medicine headers written here --------------------------------------------------

def nm_header(kind: str, number_format: str, width: int, order: str, columns: int, rows: int, study: str,
              data_file: str = "x.img", extra_top: str = "") -> bytes:
    """An Interfile 3.3 NM header with the spec's own key spellings (and some of its freedoms:
    ``!`` marks, mixed case, tabs, comments)."""
    return f"""!INTERFILE :=
!imaging modality := nucmed ; the only modality 3.3 defines
!version of keys := 3.3
!GENERAL DATA :=
{extra_top}!name of data file := {data_file}
patient name := Phantom^Test
Patient_ID := PH-001
patient dob := 1950:01:02
patient sex := F
study ID := 17
!GENERAL IMAGE DATA :=
!type of data := {kind}
imagedata byte order := {order}
study date := 1994:06:13
study time := 10:20:30
number of energy windows := 1
energy window lower level [1] := 126
energy window upper level [1] := 154
{study}!number format := {number_format}
!number of bytes per pixel := {width}
!Matrix Size [1] :=\t{columns}
!matrix size [2] := {rows}
scaling factor (mm/pixel) [1] := 4.5
scaling factor (mm/pixel) [2] := 4.5
image duration (sec) := 30
!END OF INTERFILE :=
""".encode()


KINDS = {
    "static": ("Static", "!STATIC STUDY (General) :=\nnumber of images/energy window := 2\n", 2, "STATIC"),
    "dynamic": ("Dynamic", "number of frame groups := 2\n!frame group number := 1\n"
                "!number of images this frame group := 3\n"
                "!frame group number := 2\n!number of images this frame group := 2\n", 5, "DYNAMIC"),
    "gated": ("Gated", "number of time windows := 1\n!number of images in window := 8\n", 8, "GATED"),
    "tomo": ("Tomographic", "process status := Acquired\n!number of projections := 12\n!extent of rotation := 360\n"
             "!direction of rotation := CCW\nstart angle := 180\nradius := 200\n", 12, "TOMO"),
    "recon": ("Tomographic", "process status := Reconstructed\n!number of slices := 10\n"
              "slice thickness (pixels) := 1\n", 10,
              "RECON TOMO"),
}


@pytest.mark.parametrize("name", KINDS)
def test_nm_kinds_become_nm_images_with_their_frame_vectors(tmp_path, name):
    kind, study, frames, image_type = KINDS[name]
    values = (np.arange(frames * 12 * 16) % 977).astype(">u2").reshape(frames, 12, 16)
    ds, out = finished(Capture(nm_header(kind, "unsigned integer", 2, "BIGENDIAN", 16, 12, study), Origin("t", name),
                               {"x.img": values.tobytes()}), tmp_path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.20" and ds.Modality == "NM"
    assert ds.ImageType[2] == image_type
    assert np.array_equal(frames_of(ds), values)
    assert int(ds.NumberOfFrames) == frames
    for pointer in ds.FrameIncrementPointer if ds["FrameIncrementPointer"].VM > 1 else [ds.FrameIncrementPointer]:
        assert len(ds[pointer].value) == frames
    assert ds.PatientSex == "F" and ds.StudyDate == "19940613" and ds.PatientBirthDate == "19500102"
    assert [float(v) for v in ds.PixelSpacing] == [4.5, 4.5]
    assert dciodvfy_errors(out) == []


NUMBER_FORMATS = [
    ("unsigned integer", 1, "BIGENDIAN", "u1"),
    ("unsigned integer", 2, "LITTLEENDIAN", "<u2"),
    ("signed integer", 2, "BIGENDIAN", ">i2"),
    ("signed integer", 2, "LITTLEENDIAN", "<i2"),
    ("unsigned integer", 4, "BIGENDIAN", ">u4"),
    ("signed integer", 4, "LITTLEENDIAN", "<i4"),
    ("short float", 4, "BIGENDIAN", ">f4"),
    ("short float", 4, "LITTLEENDIAN", "<f4"),
    ("long float", 8, "LITTLEENDIAN", "<f8"),
]


@pytest.mark.parametrize("number_format,width,order,dtype", NUMBER_FORMATS, ids=[f[3] for f in NUMBER_FORMATS])
def test_number_formats_and_byte_orders_match_numpy(tmp_path, number_format, width, order, dtype):
    rng = np.random.default_rng(width)
    if dtype[-2] == "f":
        raw = (rng.random((4, 10, 12)) * 500 - 100).astype(dtype)
    elif dtype.endswith("i4"):
        raw = rng.integers(-3_000_000, 3_000_000, (4, 10, 12)).astype(dtype)  # wider than 16 bits
    elif "i" in dtype:
        raw = rng.integers(-30000, 30000, (4, 10, 12)).astype(dtype)
    else:
        raw = rng.integers(0, 250, (4, 10, 12)).astype(dtype)
    header = nm_header("Static", number_format, width, order, 12, 10, "total number of images := 4\n")
    ds, out = finished(Capture(header, Origin("t", "x"), {"x.img": raw.tobytes()}), tmp_path)
    expected = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(4, 10, 12).astype(np.float64)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    back = frames_of(ds) * slope + intercept
    if "RescaleSlope" in ds and slope != 1:
        assert np.abs(back - expected).max() <= slope
    else:
        assert np.array_equal(back, expected)  # integers that fit 16 bits are kept exactly
    assert dciodvfy_errors(out) == []


# -- the header itself --------------------------------------------------------------------

def test_keys_ignore_case_spaces_underscores_marks_percent_and_comments():
    header = parse(b"  \n!interfile:=\n!Matrix_Size[1] := 12 ; columns\n%Study Date (yyyy:mm:dd):=2017:03:27\n"
                   b"NAME OF DATA FILE:=a.v\n!END OF INTERFILE :=\nbinary after the end: ignored := 1\n")
    assert header.integer("matrix size", index=1) == 12
    assert header.text("study date (yyyy:mm:dd)") == "2017:03:27"
    assert header.text("name of data file") == "a.v"
    assert header.find("binary after the end: ignored") is None
    assert formats.identify(b"  \r\n\t!Interfile  :=\r\n").name == "interfile"
    assert formats.identify(b"INTERFILE :=\n") is None  # the ! is part of the magic


def test_dump_lists_every_key_and_length_is_the_header(samples):
    data = (samples / STIR / "examples/samples/mMR_sinogram.s.hdr").read_bytes()
    decoder = formats.get("interfile")
    rows = decoder.dump(data)
    names = [r.name for r in rows]
    assert "%SMS-MI header name space" in names and "!name of data file" in names and "matrix size [3]" in names
    assert decoder.length(data) == len(data)  # the whole file is header (it ends with END OF INTERFILE)
    assert formats.companions(data) == ["mMR_sinogram.s"]


def test_uids_are_deterministic_and_follow_the_header(samples, tmp_path):
    path = samples / STIR / "examples/recon_demo/init.hv"
    a, _ = convert(read_capture(path, "a"))
    b, _ = convert(read_capture(path, "b"))
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.StudyInstanceUID == b.StudyInstanceUID
    copy = tmp_path / "init.hv"
    copy.write_bytes(path.read_bytes().replace(b"quantification units := 1", b"quantification units := 2"))
    shutil.copy(path.parent / "init.v", tmp_path / "init.v")
    c, _ = convert(read_capture(copy, "c"))
    assert c.SOPInstanceUID != a.SOPInstanceUID
    nm1, _ = convert(Capture(nm_header("Static", "unsigned integer", 2, "BIGENDIAN", 4, 4,
                                       "total number of images := 1\n"),
                             Origin("t", "x"), {"x.img": bytes(32)}))
    nm2, _ = convert(Capture(nm_header("Static", "unsigned integer", 2, "BIGENDIAN", 4, 4,
                                       "total number of images := 1\n"
                                       "data description := second\n"), Origin("t", "x"), {"x.img": bytes(32)}))
    assert nm1.StudyInstanceUID == nm2.StudyInstanceUID  # same patient, study ID, date and time
    assert nm1.SOPInstanceUID != nm2.SOPInstanceUID


def test_cli_convert_of_a_header_reads_its_data_file(samples, tmp_path, capsys):
    src = samples / STIR / "examples/recon_demo"
    for name in ("init.hv", "init.v"):
        shutil.copy(src / name, tmp_path / name)
    out = tmp_path / "out"
    assert cli.main(["convert", str(tmp_path / "init.hv"), "-o", str(out)]) == 0
    written, = out.glob("*.dcm")
    assert dciodvfy_errors(written) == []
    # init.v is its data file, no failure
    assert cli.main(["convert", str(tmp_path), "-o", str(tmp_path / "out2")]) == 0
    assert "init.v: data file of" in capsys.readouterr().out


@pytest.mark.parametrize("written,taken", [("init.v", "init.v"), ("sub/init.v", "sub/init.v"),
                                           ("C:\\scans\\init.v", "init.v"),
                                           ("/data/pet/init.v", "init.v"), ("../../etc/passwd", "passwd")])
def test_the_data_file_is_looked_for_beside_the_header_only(written, taken):
    header = f"!INTERFILE :=\nname of data file := {written}\n!END OF INTERFILE :=\n".encode()
    assert formats.companions(header) == [taken]


def test_a_file_read_with_its_companions_is_identified_once(samples, monkeypatch):
    """``read_capture`` asks for the companions (an identification) and ``decode`` needs the
    format again: the registry answers both with one identification, then lets the bytes go."""
    calls = []
    identify = formats._identify
    monkeypatch.setattr(formats, "_identify", lambda data: calls.append(len(data)) or identify(data))
    capture = read_capture(samples / STIR / "examples/recon_demo/init.hv", "test")
    assert formats.decode(capture.data, capture.parts).format == "interfile"
    assert len(calls) == 1
    formats.decode(capture.data, capture.parts)  # decoded once: not remembered any longer
    assert len(calls) == 2


def test_bytes_no_format_claims_are_not_kept_by_the_registry():
    """A file no format claims may wait a long time in a folder as a possible data file (and
    may be large): the registry's remembered identification must not hold it meanwhile."""
    data = bytes(range(256)) * 4096
    before = sys.getrefcount(data)
    assert formats.companions(data) is None
    assert sys.getrefcount(data) == before
