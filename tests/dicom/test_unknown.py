"""An element in a standard (even) group that is no standard attribute leaves the instance,
its bytes kept in the Original Attributes Sequence (``gateway.dicom.unknown``).

Some early or broken writers made up elements such as (0018,9999); dciodvfy reports each as an
error. Passed through, the instance must gain no dciodvfy error, lose no byte of content (the
record holds the value's bytes, by tag), say what it did (``changes``), and keep everything
else as it was: private elements, and the bytes of a file without such elements.
"""

from __future__ import annotations

import io
import struct

import pydicom
from pydicom.uid import ImplicitVRLittleEndian

from gateway.capture import Capture, Origin
from gateway.dicom.normalize import normalize
from gateway.dicom.provenance import CORRECT, changes
from gateway.dicom.repair import explain
from gateway.formats.dicom.passthrough import decode_file
from gateway.pipeline import prepare
from tests.dicom.test_verbatim import _same_as_slow_path, _taken
from tests.support.instances import ct_instance
from tests.support.peers import dciodvfy_errors

KNEE = "dicom_vendor/DICOM_KNEE_GE_SignaHDxt.dcm"
# Made-up elements: text, numbers (bytes that are no text), one in a repeating group (60xx)
# whose element pydicom's masks do not define, and one private element that must stay.
UNKNOWN = {0x00189999: ("LO", "mystery"), 0x00289999: ("US", 0x0102), 0x60009999: ("LO", "overlay?")}
UNKNOWN_BYTES = {0x00189999: b"mystery ", 0x00289999: b"\x02\x01", 0x60009999: b"overlay?"}
PRIVATE = 0x00190010


def _with_unknown(path, **save) -> bytes:
    ds = pydicom.dcmread(path)
    for tag, (vr, value) in UNKNOWN.items():
        ds.add_new(tag, vr, value)
    ds.add_new(PRIVATE, "LO", "SOMEONE")  # a private creator: odd group, not ours to judge
    buf = io.BytesIO()
    ds.save_as(buf, **save)
    return buf.getvalue()


def _record(ds: pydicom.Dataset) -> dict[int, bytes]:
    """Selector Attribute -> Nonconforming Data Element Value over every record item."""
    return {int(n.SelectorAttribute): bytes(n.NonconformingDataElementValue)
            for item in ds.get("OriginalAttributesSequence", [])
            for n in item.get("NonconformingModifiedAttributesSequence", [])}


def test_unknown_elements_leave_the_knee_with_their_bytes_on_record(samples, tmp_path):
    source = samples / KNEE
    raw = _with_unknown(source)
    out = _same_as_slow_path(raw, "knee+unknown", tmp_path)  # spliced bytes read as pydicom's encoding
    assert _taken(raw)  # still the verbatim path: the other elements' bytes reused
    written = pydicom.dcmread(io.BytesIO(out))
    assert not any(tag in written for tag in UNKNOWN)
    assert written[PRIVATE].value == "SOMEONE"
    assert _record(written) == UNKNOWN_BYTES
    for item in written.OriginalAttributesSequence:  # none lists a tag that is no attribute
        assert not any(tag in item.ModifiedAttributesSequence[0] for tag in UNKNOWN)
    # No error beyond those of the sample converted without additions (its InversionTime).
    (tmp_path / "plain.dcm").write_bytes(prepare(Capture(source.read_bytes(), Origin("t", "knee"))).data)
    assert dciodvfy_errors(tmp_path / "fast.dcm") == dciodvfy_errors(tmp_path / "plain.dcm")
    assert sorted(changes(written)) == [(CORRECT, "(0018,9999)", "mystery", "(removed)"),
                                        (CORRECT, "(0028,9999)", "0x0201", "(removed)"),
                                        (CORRECT, "(6000,9999)", "overlay?", "(removed)")]
    assert "CORRECT (0018,9999): mystery -> (removed) (not a standard attribute; its bytes are kept in the record)" \
        in explain(written)


def test_a_file_without_unknown_elements_keeps_its_bytes(samples, tmp_path):
    raw = (samples / KNEE).read_bytes()
    out = _same_as_slow_path(raw, "knee", tmp_path)
    assert _taken(raw)
    assert "OriginalAttributesSequence" not in pydicom.dcmread(io.BytesIO(out))  # nothing to record
    start = struct.unpack_from("<I", raw, 140)[0] + 144  # the data set after the File Meta
    assert out.endswith(raw[start:])


def test_implicit_vr_keeps_the_bytes_no_conversion_could_read(tmp_path):
    """Without a VR in the file, an unknown element reads as UN; its bytes, whatever they are
    (a NUL, a byte over 0x7F: no text), go to the record as they were."""
    ds = ct_instance(4, 64, transfer_syntax=ImplicitVRLittleEndian)
    ds.Manufacturer = "ACME"
    path = tmp_path / "in.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    element = struct.pack("<HHI", 0x0018, 0x9999, 6) + b"\x00\x01AB\xff "
    at = data.index(struct.pack("<HH", 0x0018, 0x0050))  # before Slice Thickness, in tag order
    raw = data[:at] + element + data[at:]
    out = _same_as_slow_path(raw, "implicit", tmp_path)
    written = pydicom.dcmread(io.BytesIO(out))
    assert written.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert 0x00189999 not in written and _record(written) == {0x00189999: b"\x00\x01AB\xff "}
    (tmp_path / "plain.dcm").write_bytes(prepare(Capture(data, Origin("t", "plain"))).data)
    assert dciodvfy_errors(tmp_path / "fast.dcm") == dciodvfy_errors(tmp_path / "plain.dcm")


def test_a_value_left_in_its_file_is_kept_whole(tmp_path):
    """An object decoded with its large values in the file (``decode_file``): the unknown
    element's value is read from there as it is."""
    ds = ct_instance(5, 64)
    ds.add_new(0x00189999, "OB", bytes(range(256)) * 8)
    path = tmp_path / "large.dcm"
    ds.save_as(path, enforce_file_format=True)
    out = normalize(decode_file(path, defer_size=1024), origin="test")
    assert 0x00189999 not in out and _record(out) == {0x00189999: bytes(range(256)) * 8}


def test_which_tags_are_unknown():
    from gateway.dicom.unknown import is_unknown

    assert is_unknown(0x00189999) and is_unknown(0x60009999) and is_unknown(0x00040009)
    known = [0x00100010, 0x00280040,  # a standard attribute; a retired one
             0x60020010, 0x50043000,  # repeating groups, by pydicom's masks
             0x00190010, 0x00091001,  # private
             0x00180000,  # a group length (dropped elsewhere)
             0x00009999, 0x00029999]  # Command Set and File Meta: refused elsewhere
    assert not any(is_unknown(tag) for tag in known)


def _with_references(unknown: bool) -> bytes:
    """A CT with a Referenced Image Sequence whose item holds a code sequence, with (or without)
    a made-up element in the item and another one in the nested item."""
    ds = ct_instance(6, 64)
    code = pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121311", "DCM", "Localizer"
    item = pydicom.Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6"
    item.PurposeOfReferenceCodeSequence = [code]
    if unknown:
        item.add_new(0x00189999, "LO", "inside")
        code.add_new(0x60009999, "LO", "deeper")
    ds.ReferencedImageSequence = [item]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_nested_unknown_elements_leave_with_their_sequence_on_record(tmp_path):
    """Inside a sequence's items (at any depth) the made-up elements go too, and the record
    keeps the whole sequence as it was (C.12.1.1.9): no new dciodvfy error."""
    out = prepare(Capture(_with_references(True), Origin("t", "nested")))
    written = pydicom.dcmread(io.BytesIO(out.data))
    item = written.ReferencedImageSequence[0]
    assert 0x00189999 not in item and 0x60009999 not in item.PurposeOfReferenceCodeSequence[0]
    assert item.ReferencedSOPInstanceUID == "1.2.3.4.5.6"  # the rest of the item stays
    before = [m.ModifiedAttributesSequence[0] for m in written.OriginalAttributesSequence
              if "ReferencedImageSequence" in m.ModifiedAttributesSequence[0]]
    assert len(before) == 1
    kept = before[0].ReferencedImageSequence[0]
    assert kept[0x00189999].value == "inside"
    assert kept.PurposeOfReferenceCodeSequence[0][0x60009999].value == "deeper"
    (tmp_path / "nested.dcm").write_bytes(out.data)
    (tmp_path / "plain.dcm").write_bytes(prepare(Capture(_with_references(False), Origin("t", "plain"))).data)
    assert dciodvfy_errors(tmp_path / "nested.dcm") == dciodvfy_errors(tmp_path / "plain.dcm")
