"""Large values left in their file: the spool file is the same, byte for byte, as when the whole
object is read into memory, and a truncated object is still refused with the element named."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from gateway.capture import Capture, Origin
from gateway.delivery.spool import Spool, encode
from gateway.dicom.deferred import has_deferred, is_deferred, write_part10
from gateway.dicom.normalize import normalize
from gateway.errors import DecodeError
from gateway.formats.dicom.passthrough import decode_file
from gateway.pipeline import convert
from tests.support.instances import ct_instance

REAL = ["dicom_vendor/MR-SIEMENS-DICOM-WithOverlays.dcm", "dicom_vendor/DICOM_KNEE_GE_SignaHDxt.dcm"]


def _in_memory(path: Path) -> bytes:
    ds, _ = convert(Capture(path.read_bytes(), Origin("test", path.name)))
    return encode(ds)


def _kept_in_file(path: Path, defer_size: int) -> tuple[bytes, object]:
    ds = normalize(decode_file(path, defer_size), origin=f"test:{path.name}")
    out = io.BytesIO()
    write_part10(ds, path, out)
    return out.getvalue(), ds


def _synthetic(tmp_path: Path, name: str, **kw) -> Path:
    ds = ct_instance(3, size=1024, **kw)  # 2 MB of pixels: over the default defer size
    ds.InstitutionName = ""  # an empty value, written like any other
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("kind", ["explicit", "implicit"])
def test_a_synthetic_large_object_writes_the_same_bytes(tmp_path, kind):
    kw = {"transfer_syntax": ImplicitVRLittleEndian} if kind == "implicit" else {}
    path = _synthetic(tmp_path, f"{kind}.dcm", **kw)
    written, ds = _kept_in_file(path, defer_size=1 << 20)
    assert is_deferred(ds, "PixelData")  # the copy path was taken
    assert written == _in_memory(path)


@pytest.mark.parametrize("name", REAL)
def test_real_files_write_the_same_bytes_with_every_large_value_left_in_the_file(samples, name):
    path = samples / name
    written, ds = _kept_in_file(path, defer_size=256)  # overlays, private blocks, pixels all deferred
    assert has_deferred(ds)
    assert written == _in_memory(path)
    assert pydicom.dcmread(io.BytesIO(written)).PixelData == pydicom.dcmread(path).PixelData


def test_a_truncated_large_object_is_refused_naming_the_pixel_data(tmp_path):
    path = _synthetic(tmp_path, "cut.dcm")
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    with pytest.raises(DecodeError, match=r"\(7FE0,0010\) is truncated") as info:
        decode_file(path)
    assert info.value.offset is not None and info.value.offset > 0


def test_add_stream_stores_once_and_leaves_no_temporary_file(tmp_path):
    path = _synthetic(tmp_path, "big.dcm")
    spool = Spool(tmp_path / "spool")
    try:
        for expected in (("pacs",), ()):  # the second time, the spool has it already
            ds = normalize(decode_file(path), origin="test")
            added = spool.add_stream(ds, lambda out, ds=ds: write_part10(ds, path, out), path.stat().st_size, ["pacs"])
            assert added.queued == expected
        files = list((tmp_path / "spool" / "files").rglob("*.dcm"))
        assert len(files) == 1 and files[0].read_bytes() == _in_memory(path)
        assert list((tmp_path / "spool" / "tmp").iterdir()) == []
    finally:
        spool.close()
