"""Siemens fixed-header formats: Somatom Plus (VAX) and Magnetom Vision .IMA (SPARC).

No real file of either layout exists in our samples (PROVENANCE.md 4), so the checks are:
VAX F values from host-floats.md 2.5 written byte for byte into a Somatom header decode to
the notes' values; offsets and conventions stated in siemens-spi.md 5.2/7.3 (with the
reasoning in each test); dciodvfy on every output.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gateway import formats
from gateway.capture import Capture, Origin
from gateway.delivery.spool import encode
from gateway.formats.engine.fieldtable import F, Table
from gateway.formats.siemens import somatom_plus, vision_ima
from gateway.formats.siemens.somatom_plus import BINARY, dmy_date, patient_orientation
from gateway.pipeline import convert
from gateway.simulate import SimOptions, generate
from tests.support.peers import dciodvfy_errors

# host-floats.md 2.5: (bytes as stored, nearest binary64). Reserved operand has no value.
VAX_F = {
    1084: ("60 41 00 00", 3.5),  # acquisition time, s
    1332: ("00 41 CD CC", 2.012500047683716),  # zoom factor
    624: ("00 80 00 00", None),  # reserved operand
    628: ("01 00 00 00", 0.0),  # dirty zero
    632: ("9E 40 52 06", 1.2345678806304932),
    1140: ("80 C0 00 00", -1.0),
    1152: ("49 41 D0 0F", 3.141590118408203),
    1184: ("F0 7D C2 BD", 9.999999933815813e36),
    1304: ("08 03 EA 1C", 9.99999991097579e-38),
    1308: ("FF 7F FF FF", 1.7014117331926443e38),
    1312: ("80 00 00 00", 2.938735877055719e-39),
    1316: ("C8 43 00 00", 100.0),
    1320: ("2B 40 D7 15", 0.6683019995689392),
    1324: ("00 40 00 00", 0.5),
}
VAX_NAMES = {f.offset: f.name for f in BINARY.fields if f.type == "vax_f"}


def sample(fmt: str, index: int = 0, **extra) -> bytes:
    files = list(generate(fmt, index + 1, SimOptions(extra=extra), seed=3))
    return files[index].data


def finished(data: bytes, tmp_path):
    ds, _ = convert(Capture(data, Origin("test", "x")))
    out = tmp_path / "out.dcm"
    out.write_bytes(encode(ds))
    return ds, out


def test_somatom_header_with_known_vax_values(tmp_path):
    data = bytearray(sample("somatom-plus"))
    for offset, (hexbytes, _) in VAX_F.items():
        data[offset : offset + 4] = bytes.fromhex(hexbytes)
    record = BINARY.read(bytes(data))
    for offset, (_, value) in VAX_F.items():
        assert record[VAX_NAMES[offset]] == value, offset
    dump = {row.offset: row.value for row in formats.get("somatom-plus").dump(bytes(data))}
    assert dump[624] == "reserved operand"
    ds, out = finished(bytes(data), tmp_path)
    assert ds.ExposureTime == 3500  # 3.5 s in ms (DICOM's unit)
    assert float(ds.ZoomFactor) == 2.0125  # the binary32 value, printed as the scanner had it
    assert dciodvfy_errors(out) == []


def _moved(table: Table, name: str, offset: int) -> Table:
    """``table`` with field ``name`` declared at ``offset`` instead (a free stretch)."""
    return Table(table.name, [F(offset, f.type, f.name, f.target, note=f.note) if f.name == name else f
                              for f in table.fields], size=table.size)


@pytest.mark.parametrize("module,table,name,offset,keyword", [
    (somatom_plus, "BINARY", "kv", 1100, "KVP"),  # 1092-1139: no declared field
    (somatom_plus, "BINARY", "acquisition_time_s", 1104, "ExposureTime"),
    (somatom_plus, "TEXT", "patient_id", 320, "PatientID"),  # after the comment (273-312)
    (vision_ima, "HEADER", "weight_kg", 868, "PatientWeight"),  # 868-1051: no declared field
    (vision_ima, "HEADER", "tr_ms", 1648, "RepetitionTime"),  # 1647-1711: no declared field
])
def test_one_table_change_moves_simulator_and_decoder(monkeypatch, tmp_path, module, table, name, offset, keyword):
    """The simulators write every header field through the decoders' tables: moving a field
    in the table moves it in the simulated file too, and the decoder still finds the value."""
    original = getattr(module, table)
    before = sample(module.__name__.rsplit(".", 1)[1].replace("_", "-"))
    ds_before, _ = finished(before, tmp_path)
    monkeypatch.setattr(module, table, _moved(original, name, offset))
    after = sample(module.__name__.rsplit(".", 1)[1].replace("_", "-"))
    base = module.TEXT_BASE if table == "TEXT" else 0
    old_at, new_at = base + original.by_name[name].offset, base + offset
    size = original.by_name[name].size
    assert after[new_at:new_at + size] == before[old_at:old_at + size] != bytes(size)
    assert after[old_at:old_at + size] != before[old_at:old_at + size]
    ds_after, _ = finished(after, tmp_path)
    assert ds_after[keyword].value == ds_before[keyword].value


def test_somatom_plus_output(tmp_path):
    data = sample("somatom-plus")
    assert formats.identify(data).name == "somatom-plus"
    ds, out = finished(data, tmp_path)
    assert dciodvfy_errors(out) == []
    # No pixel spacing or position in the known fields: a CT-modality Secondary Capture.
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.Modality == "CT"
    assert float(ds.RescaleIntercept) == -1000 and float(ds.RescaleSlope) == 1
    matrix = struct.unpack_from("<i", data, 1328)[0]
    expected = np.frombuffer(data, "<u2", count=matrix * matrix, offset=4096).reshape(matrix, matrix)
    np.testing.assert_array_equal(ds.pixel_array, expected)
    assert list(ds.PatientOrientation) == ["L", "P"]  # right edge LEFT, top edge ANTERIOR
    assert ds.KVP == 120 and ds.InstanceNumber == 1


@pytest.mark.parametrize("text,expected", [
    ("02-DEC-1996", "19961202"), ("2-DEC-1996", "19961202"),
    ("02.12.1996", "19961202"),  # day first: dicom3tools' default guess made this 19960212
    ("02/12/96", "19961202"), ("31.12.1995", "19951231"), ("13-FOO-1996", None), ("1996", None),
])
def test_somatom_dates_are_day_month_year(text, expected):
    assert dmy_date(text) == expected


@pytest.mark.parametrize("right,top,expected", [
    ("LEFT", "ANTERIOR", ["L", "P"]), ("HEAD", "LEFT", ["H", "R"]), ("RIGHT", "POSTERIOR", ["R", "A"]),
    ("LEFT", "?", None),
])
def test_somatom_orientation_from_edge_labels(right, top, expected):
    """siemens-spi.md 5.2, checked against dicom3tools' converter (notes 10 row 4)."""
    assert patient_orientation(right, top) == expected


def test_vision_ima_output(tmp_path):
    """Simulated coronal slice: Siemens centre (0, 10, 20) +L+A+F, row (1,0,0), column
    (0,0,1), 64 × 64 pixels of 250/64 = 3.90625 mm. LPS: row to the left (1,0,0), column to
    the feet (0,0,−1); the first pixel lies 31.5 pixels (123.046875 mm) back along row and
    column: Siemens (−123.046875, 10, −103.046875) = LPS (−123.046875, −10, 103.046875),
    10 mm anterior of the isocentre. Patient Orientation L\\F follows."""
    data = sample("vision-ima")
    assert formats.identify(data).name == "vision-ima"
    ds, out = finished(data, tmp_path)
    assert dciodvfy_errors(out) == []
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
    assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([-123.046875, -10.0, 103.046875])
    assert [float(v) for v in ds.ImageOrientationPatient] == pytest.approx([1, 0, 0, 0, 0, -1])
    assert list(ds.PatientOrientation) == ["L", "F"]
    assert ds.PatientPosition == "HFS" and ds.PatientSex == "F"  # codes 4 (supine) + rest 2 (head); sex 1
    assert ds.StudyDate == "%04d%02d%02d" % struct.unpack_from(">3i", data, 0)
    expected = np.frombuffer(data, ">u2", count=64 * 64, offset=6144).reshape(64, 64)
    np.testing.assert_array_equal(ds.pixel_array, expected)


def test_vision_identification_needs_the_exact_size():
    data = sample("vision-ima")
    assert formats.get("vision-ima").identify(data)
    assert not formats.get("vision-ima").identify(data + b"\0\0")
    assert not formats.get("vision-ima").identify(data[:6144])


def test_vision_mosaic_is_not_given_a_false_geometry(tmp_path):
    data = bytearray(sample("vision-ima"))
    struct.pack_into(">i", data, 4004, 16)  # 16 slices nominal
    struct.pack_into(">i", data, 2100, 16)  # of 16 acquisition columns: a 4 x 4 mosaic
    ds, out = finished(bytes(data), tmp_path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and "ImagePositionPatient" not in ds
    assert dciodvfy_errors(out) == []


@pytest.mark.parametrize("fmt,name", [
    ("acrnema", "acr-nema"), ("spi", "siemens-spi"), ("somatom-plus", "somatom-plus"), ("vision-ima", "vision-ima"),
])
def test_each_simulated_format_is_identified_as_itself(fmt, name):
    for sim in generate(fmt, 3, SimOptions(), seed=11):
        assert formats.identify(sim.data).name == name


@pytest.mark.parametrize("fmt,tables", [
    ("somatom-plus", [somatom_plus.BINARY, somatom_plus.TEXT]), ("vision-ima", [vision_ima.HEADER]),
])
def test_dump_shows_every_table_field(fmt, tables):
    """Fields added for the simulator (the 'GT' label) are dumped like the decoder's own."""
    rows = formats.get(fmt).dump(sample(fmt))
    assert [row.name for row in rows] == [f"{t.name}.{f.name}" for t in tables for f in t.fields]
    if fmt == "somatom-plus":
        assert {row.name: row.value for row in rows}["Somatom Plus text header.gantry_tilt_label"] == "'GT'"
