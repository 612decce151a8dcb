"""The two real pre-DICOM Siemens files become valid DICOM (issue 6, "How it is checked").

Expected values come from independent readers of the source bytes (pydicom told the stream
is implicit VR little endian, DCMTK's dcmdump) or from the reasoning written next to them,
never from our own decoder.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.datadict import get_entry

from gateway import formats
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.formats.dicom.passthrough import Headerless
from gateway.formats.tagstream import geometry as acrgeometry
from gateway.pipeline import convert
from tests.support.peers import dciodvfy_errors, dcmtk

SPI = "siemens_spi_acrnema/mr.001"
ACR = "acr_nema/CT-MONO2-12-lomb-an2.acr"


def source(path) -> pydicom.Dataset:
    """pydicom's own reading of the raw stream (implicit VR little endian, forced)."""
    return pydicom.dcmread(path, force=True)


def converted(samples, name, tmp_path):
    raw = (samples / name).read_bytes()
    ds, fmt = convert(Capture(raw, Origin("test", name)))
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))
    return raw, fmt, pydicom.dcmread(out), out


def floats(values) -> list[float]:
    return [float(v) for v in values]


@pytest.fixture(scope="module")
def spi(samples, tmp_path_factory):
    return converted(samples, SPI, tmp_path_factory.mktemp("spi"))


@pytest.fixture(scope="module")
def acr(samples, tmp_path_factory):
    return converted(samples, ACR, tmp_path_factory.mktemp("acr"))


def test_identification_by_content(samples):
    spi_raw, acr_raw = (samples / SPI).read_bytes(), (samples / ACR).read_bytes()
    # The SPI file carries an SOP Class UID and no recognition code, as headerless DICOM
    # does; its SPI creators make it SPI's alone, whatever the priorities.
    assert not Headerless().identify(spi_raw)
    assert formats.identify(spi_raw).name == "siemens-spi"
    assert not Headerless().identify(acr_raw)
    assert formats.identify(acr_raw).name == "acr-nema"


def test_spi_mr_is_a_valid_mr_image(spi, samples):
    _, fmt, ds, out = spi
    src = source(samples / SPI)
    assert fmt == "siemens-spi"
    assert dciodvfy_errors(out) == []
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value == src[keyword].value  # valid vendor UIDs are kept
    np.testing.assert_array_equal(ds.pixel_array, np.frombuffer(src.PixelData, "<u2").reshape(256, 256))


def test_spi_mr_values_normalised(spi):
    _, _, ds, _ = spi
    assert ds.PatientSex == "F"  # written "f" by the scanner
    assert ds.Laterality == ""  # "NO" is not R or L
    assert ds.StudyDate == "19940613"
    # Private ACR-NEMA dates/times made DICOM, under their creator.
    cms = ds.private_block(0x0009, "SIEMENS CM VA0  CMS")
    assert cms[0x26].value == "19940613" and cms[0x26].VR == "DA"
    assert cms[0x27].value == "152053.000" and cms[0x27].VR == "TM"
    assert ds.private_block(0x0009, "SPI RELEASE 1")[0x15].value == "049SA1DC101995072609344099"
    # MR details the scanner kept only in its shadow groups (siemens-spi.md 3.3).
    assert float(ds.FlipAngle) == 180.0  # (0019,1260) "001.800000E+02"
    assert float(ds.MagneticFieldStrength) == pytest.approx(1.493806)  # (0019,1412)
    assert ds.MRAcquisitionType == "2D"  # 3D raw partitions (0021,1330) = 0
    assert ds.InPlanePhaseEncodingDirection == "ROW"  # (0019,14DA) minusX
    assert list(ds.AcquisitionMatrix) == [0, 256, 210, 0]  # image text says "210 *256"
    assert ds.SeriesNumber == 3  # Siemens MR: the Study ID "000003" (the file says 0)
    for elem in ds:
        if not elem.tag.is_private and elem.tag.group not in (0x0002,):
            assert not get_entry(elem.tag)[3], f"retired {elem.tag} written"


def test_spi_mr_geometry(spi, samples):
    """Image Position (Patient) is the centre of the first pixel (PS3.3 C.7.6.2.1.1).

    Image Orientation (0,1,0 / 0,0,−1): rows run to posterior, columns to the feet, a sagittal
    slice, matching Patient Orientation P\\F. Siemens' private centre and row/column vectors
    (+L+A+F) converted to LPS with the (N−1)/2 rule give the scanner's retired ACR-NEMA Image
    Position (0020,0030) exactly; the file's own (0020,0032) is half a pixel further out along
    both in-plane axes (the image's outer corner, siemens-spi.md 6), so it is not kept.
    """
    _, _, ds, _ = spi
    src = source(samples / SPI)
    assert floats(ds.ImagePositionPatient) == pytest.approx(floats(src[0x0020, 0x0030].value), abs=1e-4)
    stored = floats(src[0x0020, 0x0032].value)
    half_pixel = 0.78125 / 2
    assert [a - b for a, b in zip(floats(ds.ImagePositionPatient), stored)] == pytest.approx(
        [0, half_pixel, -half_pixel])
    assert floats(ds.ImageOrientationPatient) == pytest.approx([0, 1, 0, 0, 0, -1])
    assert list(ds.PatientOrientation) == ["P", "F"]
    centre = floats(src[0x0021, 0x1160].value)
    row, col = floats(src[0x0021, 0x116A].value), floats(src[0x0021, 0x116B].value)
    position, orientation = acrgeometry.from_siemens(centre, row, col, 256, 256, [0.78125, 0.78125])
    assert position == pytest.approx(floats(src[0x0020, 0x0030].value), abs=1e-4)
    assert orientation == pytest.approx(floats(src[0x0020, 0x0037].value))
    assert float(ds.SliceLocation) == pytest.approx(-13.30335)  # Image Distance (0021,1163)


def test_acr_nema_ct_is_a_valid_ct_image(acr, samples):
    raw, fmt, ds, out = acr
    assert fmt == "acr-nema"
    assert dciodvfy_errors(out) == []
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    again, _ = convert(Capture(raw, Origin("again", "x")))
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value == again[keyword].value  # deterministic, none in the source
    assert ds.StudyDate == "19961202" and ds.StudyTime == "163239"  # "1996.12.02", "16:32:39"
    assert ds.AcquisitionTime == "163846.783000"  # "16:38:46.783000 "
    assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
    assert ds.GeneratorPower == 29  # IS written "002.880000E+01"
    assert ds.ConvolutionKernel == "AB40"  # from "59 convkernel.10.AB40" (too long for SH)
    assert ds.SeriesNumber == 9  # Siemens CT: the acquisition number
    assert ds.PatientPosition == "HFS"  # "SUPINE"; head first assumed


def test_acr_nema_ct_pixels_match_dcmtk(acr, samples, tmp_path):
    _, _, ds, _ = acr
    subprocess.run([dcmtk("dcmdump"), "-q", "+W", str(tmp_path), str(samples / ACR)], check=True, capture_output=True)
    (raw_file,) = tmp_path.glob("*.raw")
    expected = np.frombuffer(raw_file.read_bytes(), "<u2").reshape(512, 512)
    np.testing.assert_array_equal(ds.pixel_array, expected)
    assert ds.BitsAllocated == 16 and ds.BitsStored == 12 and ds.HighBit == 11


def test_acr_nema_ct_geometry(acr):
    """Retired (0020,0030) −80.30762\\−111.3076\\52 and (0020,0035) 1\\0\\0\\0\\1\\0 are gantry
    relative; for a supine, head-first patient gantry and patient axes coincide (antodc), so
    they are copied: rows run to the patient's left, columns to posterior, an axial slice
    matching Patient Orientation L\\P, at z = Location = 52 mm. The file says only SUPINE, so
    head first is the stated assumption (Patient Position HFS)."""
    _, _, ds, _ = acr
    assert floats(ds.ImagePositionPatient) == pytest.approx([-80.30762, -111.3076, 52.0])
    assert floats(ds.ImageOrientationPatient) == pytest.approx([1, 0, 0, 0, 1, 0])
    assert float(ds.SliceLocation) == 52.0
    assert floats(ds.PixelSpacing) == [0.384766, 0.384766]
