"""DICOM pass-through: Part-10 and headerless vendor files become Part-10 instances.

The checks compare with pydicom reading the source (an independent reader of the same bytes)
and with dciodvfy; nothing is compared with our own writer alone.
"""

import io
import shutil
import struct

import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.uid import ImplicitVRLittleEndian

from gateway import formats
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.errors import DecodeError, UnknownFormat
from gateway.pipeline import convert
from tests.support.instances import ct_instance
from tests.support.peers import dciodvfy_errors

HEADERLESS = ["prostate_Marconi_nopreamble.img", "OT-MONO2-8-a7_Philips_nopreamble.dcm"]
PART10 = ["DICOM_KNEE_GE_SignaHDxt.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"]


def capture(data: bytes, name: str = "x") -> Capture:
    return Capture(data, Origin("test", name))


@pytest.mark.parametrize("name", HEADERLESS)
def test_headerless_stream_gets_a_correct_meta_header(samples, tmp_path, name):
    raw = (samples / "dicom_vendor_nopreamble" / name).read_bytes()
    assert raw[128:132] != b"DICM"
    assert formats.identify(raw).name == "dicom-headerless"
    ds, fmt = convert(capture(raw, name))
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))

    written = pydicom.dcmread(out)
    source = pydicom.dcmread(io.BytesIO(raw), force=True)
    meta = written.file_meta
    assert meta.TransferSyntaxUID == ImplicitVRLittleEndian  # kept as it came, never re-encoded
    assert meta.MediaStorageSOPClassUID == source.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID
    assert written.PixelData == source.PixelData
    for elem in source:  # every source value survives (group lengths are retired in DICOM)
        if elem.tag != (0x0020, 0x0052) and elem.tag.element != 0x0000:
            assert written[elem.tag].value == elem.value, elem.tag
    assert dciodvfy_errors(out) == []


def test_frame_of_reference_reused_as_series_uid_is_separated_deterministically(samples):
    raw = (samples / "dicom_vendor_nopreamble" / "prostate_Marconi_nopreamble.img").read_bytes()
    source = pydicom.dcmread(io.BytesIO(raw), force=True)
    assert source.FrameOfReferenceUID == source.SeriesInstanceUID  # the vendor's mistake
    first, _ = convert(capture(raw))
    again, _ = convert(capture(raw))
    assert first.FrameOfReferenceUID != first.SeriesInstanceUID
    assert first.FrameOfReferenceUID == again.FrameOfReferenceUID


@pytest.mark.parametrize("name", PART10)
def test_part10_passes_through_with_its_values_and_adds_no_iod_errors(samples, tmp_path, name):
    src = samples / "dicom_vendor" / name
    raw = src.read_bytes()
    assert formats.identify(raw).name == "dicom"
    ds, _ = convert(capture(raw, name))
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))
    written, source = pydicom.dcmread(out), pydicom.dcmread(src)
    assert written.PixelData == source.PixelData
    for elem in source:
        assert written[elem.tag].value == elem.value, elem.tag
    # A vendor's own mistakes stay (pass-through changes no value); we add none.
    original = tmp_path / "original.dcm"
    shutil.copy(src, original)
    assert set(dciodvfy_errors(out)) <= set(dciodvfy_errors(original))


@pytest.mark.parametrize("data", [b"", b"garbage that is no image at all", b"\0" * 4096, bytes(range(256)) * 64])
def test_unrecognised_input_is_unknown_format(data):
    with pytest.raises(UnknownFormat, match="unknown format"):
        convert(capture(data))


@pytest.mark.parametrize("cut", [1999, 2000, 100000, -10, -1])
def test_truncated_part10_is_a_decode_error_with_offset(samples, cut):
    raw = (samples / "dicom_vendor" / "MR-SIEMENS-DICOM-WithOverlays.dcm").read_bytes()
    with pytest.raises(DecodeError) as info:
        convert(capture(raw[:cut]))
    assert info.value.offset is not None and info.value.offset < len(raw[:cut])


def test_truncated_headerless_stream_is_a_decode_error(samples):
    raw = (samples / "dicom_vendor_nopreamble" / "prostate_Marconi_nopreamble.img").read_bytes()
    with pytest.raises(DecodeError, match="truncated"):
        convert(capture(raw[:-100]))


@pytest.mark.parametrize("path", ["dicom_vendor/MR-SIEMENS-DICOM-WithOverlays.dcm",
                                  "dicom_vendor/DICOM_KNEE_GE_SignaHDxt.dcm",
                                  "dicom_vendor_nopreamble/prostate_Marconi_nopreamble.img"])
def test_dump_rows_sit_at_their_elements_tags(samples, path):
    """Each dump row's offset is where its element's tag is written, nested items included
    (pydicom counts those from their sequence's value; the dump must not)."""
    raw = (samples / path).read_bytes()
    rows = formats.identify(raw).dump(raw)
    for row in rows:
        tag = tag_for_keyword(row.name) or int(row.name.strip("()").replace(",", ""), 16)
        assert struct.unpack_from("<HH", raw, row.offset) == (tag >> 16, tag & 0xFFFF), row
    if path.startswith("dicom_vendor/"):  # both have Referenced Image Sequences
        assert any(r.name == "ReferencedSOPInstanceUID" for r in rows), "rows from inside the sequences"


def test_a_meta_header_naming_no_transfer_syntax_names_the_element_and_its_offset(samples):
    raw = (samples / "dicom_vendor" / "MR-SIEMENS-DICOM-WithOverlays.dcm").read_bytes()
    meta = pydicom.dcmread(io.BytesIO(raw), stop_before_pixels=True).file_meta
    syntax = str(meta.TransferSyntaxUID).encode()
    bogus = b"1.2.840.10008.9.9" + b"9" * (len(syntax) - len(b"1.2.840.10008.9.9"))
    at = raw.index(syntax)
    with pytest.raises(DecodeError) as info:
        convert(capture(raw[:at] + bogus + raw[at + len(bogus):]))
    assert (info.value.field, info.value.offset) == ("TransferSyntaxUID", at)


def test_a_value_of_the_wrong_size_names_its_element_and_offset():
    """pydicom's BytesLengthException (here: Rows written as FD in 2 bytes) is bad input of
    that element, named with the offset of its value, not an internal decoder error."""
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3.4"
    ds.Modality, ds.Rows, ds.Columns = "OT", 4, 4
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelData = 1, "MONOCHROME2", bytes(16)
    raw = encode_part10(ds)
    rows = struct.pack("<HH", 0x0028, 0x0010) + b"US" + struct.pack("<H", 2)
    at = raw.index(rows)
    with pytest.raises(DecodeError) as info:
        convert(capture(raw[:at + 4] + b"FD" + raw[at + 6:]))
    assert "internal" not in str(info.value)
    assert (info.value.field, info.value.offset) == ("Rows", at + 8)


def encode_part10(ds: pydicom.Dataset) -> bytes:
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("syntax", [pydicom.uid.ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_sequence_of_undefined_length_passes_through(tmp_path, syntax):
    """Many writers give sequences an undefined length (items up to a delimiter). pydicom's
    element walk hands such a sequence over parsed, not raw: the completeness check must take
    it as whole, not refuse the file as damaged."""
    ds = ct_instance(8, 16, transfer_syntax=syntax)
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ds.SOPClassUID, "1.2.3.4"
    ds.ReferencedImageSequence = [item]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    raw = buf.getvalue()
    header = 12 if syntax == pydicom.uid.ExplicitVRLittleEndian else 8
    at = raw.index(struct.pack("<HH", 0x0008, 0x1140))
    length = struct.unpack_from("<I", raw, at + header - 4)[0]
    body = raw[at + header:at + header + length]
    undefined = raw[:at + header - 4] + b"\xff\xff\xff\xff" + body + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    undefined += raw[at + header + length:]
    written, _ = convert(capture(undefined))
    assert written.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4"
    path = tmp_path / "out.dcm"
    path.write_bytes(encode(written))
    assert pydicom.dcmread(path).ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4"
    with pytest.raises(DecodeError):  # cut inside the sequence: still refused
        convert(capture(undefined[:at + header + 10]))
