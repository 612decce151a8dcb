"""Early DICOM is repaired, not refused: the real headerless samples, mutated here to show one
habit of the first DICOM years each, pass through as valid instances with every repair listed
(``convert --explain``) and the original values kept in the Original Attributes Sequence.

The mutated streams are written by a small implicit-VR little-endian encoder of this test's own
(with group lengths, no preamble, no meta header, like the samples), from the sample's raw
elements; the checks use pydicom reading the written file and dciodvfy, never our writer alone.
"""

from __future__ import annotations

import contextlib
import io
import struct

import pydicom
import pytest

from gateway import cli
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.pipeline import convert
from tests.support.peers import dciodvfy_errors

MARCONI_CT = "prostate_Marconi_nopreamble.img"
PHILIPS_SC = "OT-MONO2-8-a7_Philips_nopreamble.dcm"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def elements(raw: bytes) -> dict[int, bytes]:
    """The top-level elements of an implicit-VR LE stream, tag -> value bytes (a group length
    is kept as a marker: ``stream`` computes its value anew)."""
    out, pos = {}, 0
    while pos < len(raw):
        group, elem, length = struct.unpack_from("<HHI", raw, pos)
        assert length != 0xFFFFFFFF, "the samples hold no undefined lengths"
        out[group << 16 | elem] = raw[pos + 8:pos + 8 + length]
        pos += 8 + length
    assert pos == len(raw)
    return out


def stream(elems: dict[int, bytes]) -> bytes:
    """An early-DICOM stream: implicit VR LE, a group length before each group that had one
    (the Marconi sample's curve groups have none), values padded to even length (text with a
    space, UIDs with NUL)."""
    groups: dict[int, bytes] = {}
    for tag in sorted(elems):
        if tag & 0xFFFF == 0:
            continue
        value = elems[tag]
        if len(value) % 2:
            value += b"\0" if tag in UID_TAGS else b" "
        groups.setdefault(tag >> 16, b"")
        groups[tag >> 16] += struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value
    return b"".join((struct.pack("<HHII", g, 0, 4, len(body)) if g << 16 in elems else b"") + body
                    for g, body in sorted(groups.items()))


UID_TAGS = {0x00080016, 0x00080018, 0x0020000D, 0x0020000E, 0x00200052}


def sample(samples, name: str) -> dict[int, bytes]:
    return elements((samples / "dicom_vendor_nopreamble" / name).read_bytes())


def text(elems: dict[int, bytes], tag: int) -> str:
    return elems[tag].decode("latin-1").rstrip(" \0")


def pass_through(raw: bytes, tmp_path, name: str = "early.dcm"):
    """Convert through the pipeline, require dciodvfy's zero errors, and return the written
    instance (read back by pydicom) and the ``convert --explain`` lines for the same input."""
    ds, fmt = convert(Capture(raw, Origin("test", name)))
    assert fmt == "dicom-headerless"
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))
    assert dciodvfy_errors(out) == []
    source = tmp_path / name
    source.write_bytes(raw)
    return pydicom.dcmread(out), explain_lines(source, tmp_path / "explained")


def explain_lines(path, outdir) -> list[str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(["convert", "--explain", "-o", str(outdir), str(path)]) == 0
    return [line.strip() for line in buf.getvalue().splitlines()[1:]]


def correct_items(ds) -> list[pydicom.Dataset]:
    """Our CORRECT items of the Original Attributes Sequence (PS3.3 C.12.1.1.9)."""
    items = [i for i in ds.OriginalAttributesSequence if i.ReasonForTheAttributeModification == "CORRECT"]
    assert items and all(i.ModifyingSystem.startswith("legacy-gateway") for i in items)
    return items


def listed(ds) -> set[str]:
    """The attributes the record lists as modified (or added: listed empty)."""
    return {e.keyword for i in correct_items(ds) for e in i.ModifiedAttributesSequence[0]}


def previous(ds, keyword: str):
    """The value ``keyword`` had before, read from the record: a value that did not conform
    to its VR is listed empty, its bytes kept in the item's Nonconforming Modified Attributes
    Sequence (C.12.1.1.9.2); any other straight from the Modified Attributes Sequence."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    for item in correct_items(ds):
        modified = item.ModifiedAttributesSequence[0]
        if tag not in modified:
            continue
        for odd in item.get("NonconformingModifiedAttributesSequence", []):
            if odd.SelectorAttribute == tag:
                assert modified[tag].value in (None, "")
                return odd.NonconformingDataElementValue.decode("latin-1").rstrip(" ")
        return modified[tag].value
    raise AssertionError(f"{keyword} is not in the record")


def test_equal_study_and_series_uids_get_a_distinct_deterministic_series_uid(samples, tmp_path):
    elems = sample(samples, MARCONI_CT)
    study = text(elems, 0x0020000D)
    elems[0x0020000E] = elems[0x0020000D]  # the early writer's habit: one UID for both
    ds, lines = pass_through(stream(elems), tmp_path)
    assert ds.StudyInstanceUID == study
    assert ds.SeriesInstanceUID != study
    assert previous(ds, "SeriesInstanceUID") == study  # the original is recoverable
    assert any(line.startswith(f"CORRECT SeriesInstanceUID: {study} -> {ds.SeriesInstanceUID}") for line in lines)
    # Another image of the same series (its own SOP Instance UID) lands in the same new series.
    elems[0x00080018] = (text(elems, 0x00080018) + "1").encode()
    elems[0x00200013] = b"23"
    other, _ = convert(Capture(stream(elems), Origin("test", "next")))
    assert other.SeriesInstanceUID == ds.SeriesInstanceUID and other.SOPInstanceUID != ds.SOPInstanceUID


def test_dotted_dates_and_colon_times_become_dicom_da_and_tm(samples, tmp_path):
    elems = sample(samples, MARCONI_CT)
    elems[0x00080020] = b"1998.09.22"
    elems[0x00080021] = b"1998.09.22"
    elems[0x00080030] = b"17:43:33"
    elems[0x00080032] = b"17:43:33.50"
    ds, lines = pass_through(stream(elems), tmp_path)
    assert (ds.StudyDate, ds.SeriesDate, ds.StudyTime, ds.AcquisitionTime) == (
        "19980922", "19980922", "174333", "174333.50")
    assert [previous(ds, k) for k in ("StudyDate", "SeriesDate", "StudyTime", "AcquisitionTime")] == [
        "1998.09.22", "1998.09.22", "17:43:33", "17:43:33.50"]
    assert "CORRECT StudyDate: 1998.09.22 -> 19980922" in lines
    assert "CORRECT AcquisitionTime: 17:43:33.50 -> 174333.50" in lines


def test_cr_without_geometry_needs_no_frame_of_reference(samples, tmp_path):
    """Today's refusal: "no FrameOfReferenceUID" for an IOD that has no Frame of Reference."""
    elems = sample(samples, PHILIPS_SC)
    assert 0x00200052 not in elems and 0x00200032 not in elems  # no geometry at all
    elems[0x00080016] = CR_IMAGE_STORAGE.encode()
    elems[0x00080060] = b"CR"
    del elems[0x00080064]  # Conversion Type belongs to Secondary Capture
    ds, lines = pass_through(stream(elems), tmp_path)
    assert ds.SOPClassUID == CR_IMAGE_STORAGE and "FrameOfReferenceUID" not in ds
    # The CR Series module's type 2 attributes were added empty, and said so.
    assert {"BodyPartExamined", "ViewPosition"} <= listed(ds)
    assert "CORRECT BodyPartExamined: (absent) -> (empty)" in lines
    assert not any("FrameOfReferenceUID" in line for line in lines)


def test_over_long_lo_is_cut_and_kept_whole_in_the_record(samples, tmp_path):
    elems = sample(samples, MARCONI_CT)
    long_name = "MEMORIAL SLOAN-KETTERING CANCER CENTER, DEPARTMENT OF MEDICAL PHYSICS, NEW YORK"
    assert len(long_name) > 64
    elems[0x00080080] = long_name.encode()
    ds, lines = pass_through(stream(elems), tmp_path)
    assert ds.InstitutionName == long_name[:64].rstrip()
    assert previous(ds, "InstitutionName") == long_name
    assert f"CORRECT InstitutionName: {long_name} -> {long_name[:64].rstrip()}" in lines


def test_retired_elements_are_kept_and_their_values_conformed(samples, tmp_path):
    elems = sample(samples, MARCONI_CT)
    elems[0x00280040] = b"RECT"  # Image Format (retired, ACR-NEMA): kept as it is
    elems[0x00200030] = b"0\\0\\-839"  # Image Position (retired): kept as it is
    elems[0x00080024] = b"1998.09.22"  # Overlay Date (retired), written the ACR-NEMA way
    ds, lines = pass_through(stream(elems), tmp_path)
    assert ds[0x00280040].value == "RECT"
    assert list(ds[0x00200030].value) == [0, 0, -839]
    assert ds.OverlayDate == "19980922" and previous(ds, "OverlayDate") == "1998.09.22"
    assert "CORRECT OverlayDate: 1998.09.22 -> 19980922" in lines
    assert not any("ImageFormat" in line or "ImagePosition:" in line for line in lines)
    # The curves (retired repeating groups 5000-501E) of the sample are kept too.
    assert ds[0x50003000].value == elems[0x50003000]


def test_missing_derivable_type1_values_are_derived_and_said_from_what(samples, tmp_path):
    elems = sample(samples, MARCONI_CT)
    del elems[0x00280102]  # High Bit
    del elems[0x00080060]  # Modality
    ds, lines = pass_through(stream(elems), tmp_path)
    assert ds.HighBit == 11 and ds.BitsStored == 12
    assert ds.Modality == "CT"
    assert previous(ds, "HighBit") in (None, "") and previous(ds, "Modality") in (None, "")  # absent: empty
    assert "CORRECT HighBit: (absent) -> 11 (derived from BitsStored (HighBit = BitsStored - 1))" in lines
    assert "CORRECT Modality: (absent) -> CT (derived from SOPClassUID)" in lines


def test_the_same_early_file_converts_to_the_same_bytes(samples):
    """The record's modification date and time comes from the instance (here its Series Date
    and Time), not the clock: a re-ingested file must give the same bytes, which the spool's
    SHA-256 comparison and the PACS rely on to see it as the same instance."""
    elems = sample(samples, MARCONI_CT)
    elems[0x0020000E] = elems[0x0020000D]
    elems[0x00080020] = b"1998.09.22"
    raw = stream(elems)
    first, again = (encode(convert(Capture(raw, Origin("test", "same")))[0]) for _ in range(2))
    assert first == again
    written = pydicom.dcmread(pydicom.filebase.DicomBytesIO(first))
    assert written.OriginalAttributesSequence[0].AttributeModificationDateTime.startswith("19980922174333")


def test_dump_lists_the_repairs_of_a_dicom_input(samples, tmp_path, capsys):
    elems = sample(samples, MARCONI_CT)
    elems[0x00080020] = b"1998.09.22"
    path = tmp_path / "early.dcm"
    path.write_bytes(stream(elems))
    assert cli.main(["dump", str(path)]) == 0
    out = capsys.readouterr().out
    assert "# repairs on pass-through:" in out and "CORRECT StudyDate: 1998.09.22 -> 19980922" in out


@pytest.mark.parametrize("name", [MARCONI_CT, PHILIPS_SC])
def test_the_encoder_here_reproduces_the_samples(samples, name):
    """This test's own encoder writes the real samples back byte for byte, so the mutated
    streams above differ from real early files only by the mutation."""
    raw = (samples / "dicom_vendor_nopreamble" / name).read_bytes()
    assert stream(elements(raw)) == raw


def test_an_invalid_uid_is_derived_from_its_old_text(samples, tmp_path):
    elems = sample(samples, MARCONI_CT)
    bad = "2.16.840.1.113662.02.2397298814474523980922174333949802268764"  # leading zero: not a UID
    elems[0x00080018] = bad.encode()
    ds, lines = pass_through(stream(elems), tmp_path)
    assert ds.SOPInstanceUID != bad and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert previous(ds, "SOPInstanceUID") == bad
    assert any(line.startswith(f"CORRECT SOPInstanceUID: {bad} -> {ds.SOPInstanceUID}") for line in lines)
