"""Routing and coercion rules from the configuration: the rule table, and every mistake named with line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage

from gateway.config import parse_config
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

DESTINATIONS = """\
destinations:
  - {name: pacs, host: 127.0.0.1, port: 104, called_ae: PACS}
  - {name: research, host: 127.0.0.1, port: 105, called_ae: RESEARCH}
  - {name: cardio, host: 127.0.0.1, port: 106, called_ae: CARDIO}
  - {name: sc_archive, host: 127.0.0.1, port: 107, called_ae: SCARCH}
"""

TABLE_CONFIG = DESTINATIONS + """\
sources:
  - name: ctroom
    type: folder
    path: /tmp
    destinations: [pacs]
    routes:
      - match: {station_name: "ctscan*"}
        to: [cardio]
  - name: export
    type: folder
    path: /tmp
routes:
  - match: {modality: [CT], format: ge-genesis}
    to: [pacs, research]
  - match: {station_name: "MR1*"}
    to: [pacs]
  - match: {manufacturer: "*siemens*", modality: [MR, MRS]}
    to: [research]
  - match: {sop_class: Secondary Capture Image Storage}
    to: [sc_archive]
  - match: {sop_class: "1.2.840.10008.5.1.4.1.1.4", format: [acr-nema, "siemens-*"]}
    to: [cardio, research, cardio]
"""

ALL = ("pacs", "research", "cardio", "sc_archive")

# (source, Modality, StationName, Manufacturer, format, SOP class) -> destinations, from the rules
# above read by hand: the source's own routes first, then the global ones, first match decides,
# none: the source's destinations (export: every destination).
TABLE = [
    ("export", "CT", "CT01", "GE MEDICAL SYSTEMS", "ge-genesis", CTImageStorage, ("pacs", "research")),
    ("export", "MR", "mr1_east", "GE", "ge-genesis", MRImageStorage, ("pacs",)),  # case-insensitive
    ("export", "CT", "CT01", "GE", "ge-signa4x", CTImageStorage, ALL),          # format differs: no rule
    ("export", "MR", "MR1_WEST ", "GE", "ge-genesis", MRImageStorage, ("pacs",)),  # glob, trailing space
    ("export", "MR", "MR2", "GE", "ge-genesis", MRImageStorage, ALL),
    ("export", "MR", "MR1", "SIEMENS", "siemens-spi", MRImageStorage, ("pacs",)),  # station rule comes first
    ("export", "MR", "MR2", "Siemens AG", "dicom", MRImageStorage, ("research",)),
    ("export", "MR", "MR2", "Philips", "acr-nema", MRImageStorage, ("cardio", "research")),  # duplicate dropped
    ("export", "MR", "MR2", "Philips", "siemens-spi", MRImageStorage, ("cardio", "research")),
    ("export", "MR", "MR2", "Philips", "dicom", MRImageStorage, ALL),
    ("export", "OT", "", "", "dicom", SecondaryCaptureImageStorage, ("sc_archive",)),  # by SOP class name
    ("export", "OT", None, None, "dicom", SecondaryCaptureImageStorage, ("sc_archive",)),  # attributes absent
    ("ctroom", "CT", "CTSCAN2", "GE", "ge-genesis", CTImageStorage, ("cardio",)),  # the source's own rule first
    ("ctroom", "CT", "CT01", "GE", "ge-genesis", CTImageStorage, ("pacs", "research")),  # then the global ones
    ("ctroom", "CT", "CT01", "GE", "dicom", CTImageStorage, ("pacs",)),  # then the source's destinations
    ("convert", "CT", "CTSCAN2", "GE", "ge-genesis", CTImageStorage, ("pacs", "research")),  # not a source: global
]


def instance(modality, station, manufacturer, sop_class) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    if station is not None:
        ds.StationName = station
    if manufacturer is not None:
        ds.Manufacturer = manufacturer
    return ds


@pytest.mark.parametrize("source, modality, station, manufacturer, fmt, sop_class, expected", TABLE)
def test_rule_table(source, modality, station, manufacturer, fmt, sop_class, expected):
    config = parse_config(TABLE_CONFIG)
    default = {s.name: s.destinations for s in config.sources}.get(source, ALL)
    ds = instance(modality, station, manufacturer, sop_class)
    assert config.routing.destinations(ds, fmt, source, default) == expected


def test_without_rules_every_source_keeps_its_destinations():
    source = "sources:\n  - {name: a, type: folder, path: /tmp, destinations: [cardio]}\n"
    config = parse_config(DESTINATIONS + source)
    ds = instance("CT", "X", "Y", CTImageStorage)
    assert config.routing.destinations(ds, "dicom", "a", ("cardio",)) == ("cardio",)
    assert not config.routing.rules("a").coercion


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "broken.yaml")
    return info.value.problems


SOURCE = "sources:\n  - {name: export, type: folder, path: /tmp}\n"


def test_bad_routes_are_named_with_line_and_key():
    text = DESTINATIONS + SOURCE + """\
routes:
  - match: {modality: CT, colour: red}
    to: [pacs]
  - match: {station_name: "MR1*"}
    to: [pacs, nowhere]
  - match: {format: ge-genesys}
    to: [research]
  - match: {modality: MR}
    to: []
  - to: [pacs]
  - match: {modality: []}
    to: [pacs]
"""
    found = problems(text)
    assert found == ["broken.yaml:9: routes[0].match.colour: unknown key",
                     "broken.yaml:16: routes[3].to: needs at least 1 entry",
                     "broken.yaml:17: routes[4].match: is required",
                     "broken.yaml:18: routes[5].match.modality: needs at least one pattern"]
    # Destination and format names are checked once the file is well formed.
    text = DESTINATIONS + SOURCE + """\
routes:
  - match: {station_name: "MR1*"}
    to: [pacs,
         nowhere]
  - match: {format: [ge-genesys, "ge-*"]}
    to: [research]
"""
    found = problems(text)
    assert found[0] == ("broken.yaml:11: routes[0].to: no destination named 'nowhere'; "
                        "configured: cardio, pacs, research, sc_archive")
    assert found[1].startswith("broken.yaml:12: routes[1].match.format: 'ge-genesys' matches no format; known: ")
    assert len(found) == 2


def test_source_routes_are_checked_too():
    text = DESTINATIONS + """\
sources:
  - name: export
    type: folder
    path: /tmp
    routes:
      - match: {modality: CT}
        to: [pacs, elsewhere]
"""
    assert problems(text) == ["broken.yaml:12: sources[0].routes[0].to: no destination named 'elsewhere'; "
                              "configured: cardio, pacs, research, sc_archive"]


def test_bad_coercions_are_named_with_line_and_key(tmp_path):
    text = DESTINATIONS + SOURCE + f"""\
coerce:
  institution_name: {"x" * 65}
  set:
    PatientID: X
    SOPInstanceUID: 1.2.3
    StationName: A_STATION_NAME_TOO_LONG
    BodyPartExamined: knee
    StudyDescription: [a, b]
  patient_ids: {{file: {tmp_path / 'missing.csv'}, from_column: legacy}}
"""
    found = problems(text)
    assert "broken.yaml:9: coerce.institution_name: must be at most 64 characters, not 65" in found
    assert any(p.startswith("broken.yaml:11: coerce.set.PatientID: PatientID cannot be set; settable: ") for p in found)
    assert any(p.startswith("broken.yaml:12: coerce.set.SOPInstanceUID: SOPInstanceUID cannot be set") for p in found)
    assert "broken.yaml:13: coerce.set.StationName: StationName (SH) holds at most 16 characters, not 23" in found
    assert ("broken.yaml:14: coerce.set.BodyPartExamined: BodyPartExamined (CS) allows only capitals, digits, "
            "space and underscore") in found
    assert "broken.yaml:15: coerce.set.StudyDescription: must be a single value" in found
    assert "broken.yaml:16: coerce.patient_ids.to_column: is required" in found
    assert len(found) == 7


def write_map(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_patient_id_map_file_is_checked_line_by_line(tmp_path):
    base = DESTINATIONS + SOURCE + ("coerce:\n  patient_ids:\n    file: FILE\n"
                                    "    from_column: legacy\n    to_column: mrn\n")
    missing = tmp_path / "missing.csv"
    assert problems(base.replace('FILE', str(missing))) == [
        f"broken.yaml:10: coerce.patient_ids.file: {missing}: cannot read: No such file or directory"]
    columns = write_map(tmp_path / "columns.csv", "old,mrn\nA1,M1\n")
    assert problems(base.replace('FILE', str(columns))) == [
        f"broken.yaml:10: coerce.patient_ids.file: {columns}:1: no column named 'legacy' (columns: old, mrn)"]
    rows = write_map(tmp_path / "rows.csv", "legacy,mrn,name\nA1,M1,x\nA2,M2,y\n A1 ,M3,z\nA4,,w\n,M5,v\nA6,"
                     + "9" * 65 + ",u\nA7,M7\\8,t\n")
    found = problems(base.replace('FILE', str(rows)))
    # Lines and columns, never the IDs themselves: a refused reload logs these.
    assert found == [f"broken.yaml:10: coerce.patient_ids.file: {rows}:4: legacy repeats the one on line 2",
                     f"broken.yaml:10: coerce.patient_ids.file: {rows}:5: empty mrn",
                     f"broken.yaml:10: coerce.patient_ids.file: {rows}:6: empty legacy",
                     f"broken.yaml:10: coerce.patient_ids.file: {rows}:7: mrn is not a valid Patient ID "
                     "(LO: 64 characters, no backslash)",
                     f"broken.yaml:10: coerce.patient_ids.file: {rows}:8: mrn is not a valid Patient ID "
                     "(LO: 64 characters, no backslash)"]
    good = write_map(tmp_path / "good.csv", "\ufefflegacy;mrn\nA1;M1\n")  # Excel's BOM and semicolons
    config = parse_config(base.replace('FILE', str(good)) + "    delimiter: ';'\n")
    assert dict(config.routing.rules("export").coercion.patient_ids.ids) == {"A1": "M1"}
    assert "A1" not in repr(config) and "M1" not in repr(config)  # a logged configuration shows no ID


def test_a_source_coercion_overrides_the_global_one_key_by_key(tmp_path):
    ids = write_map(tmp_path / "ids.csv", "legacy,mrn\nA1,M1\n")
    text = DESTINATIONS + f"""\
sources:
  - name: export
    type: folder
    path: /tmp
    coerce:
      institution_name: East Wing
      set: {{StudyDescription: Migrated}}
  - name: other
    type: folder
    path: /tmp
coerce:
  institution_name: General Hospital
  accession_number: MIG2026
  set: {{IssuerOfPatientID: GH, StudyDescription: Legacy}}
  patient_ids: {{file: {ids}, from_column: legacy, to_column: mrn, unmapped: reject}}
"""
    routing = parse_config(text).routing
    export, other = routing.rules("export").coercion, routing.rules("other").coercion
    assert dict(export.set) == {"IssuerOfPatientID": "GH", "StudyDescription": "Migrated",
                                "InstitutionName": "East Wing", "AccessionNumber": "MIG2026"}
    assert dict(other.set) == {"IssuerOfPatientID": "GH", "StudyDescription": "Legacy",
                               "InstitutionName": "General Hospital", "AccessionNumber": "MIG2026"}
    assert export.patient_ids is other.patient_ids and export.patient_ids.reject_unmapped  # read once


def test_check_config_command_reports_rule_problems(tmp_path):
    config = tmp_path / "gw.yaml"
    config.write_text(DESTINATIONS + SOURCE + "routes:\n  - match: {modality: CT}\n    to: [nowhere]\n"
                      "coerce:\n  patient_ids: {file: ids.csv, from_column: legacy, to_column: mrn}\n")
    (tmp_path / "ids.csv").write_text("legacy,mrn\nA,1\nA,2\n")
    run = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(config)], capture_output=True,
                         text=True, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"{config}:10: routes[0].to: no destination named 'nowhere'; configured: cardio, pacs, research, sc_archive",
        f"{config}:12: coerce.patient_ids.file: ids.csv:3: legacy repeats the one on line 2"]


def test_convert_explain_shows_each_coercion_and_the_route(samples, tmp_path, capsys):
    from gateway import cli

    mr_file = samples / "dicom_vendor" / "MR-SIEMENS-DICOM-WithOverlays.dcm"
    mr = pydicom.dcmread(mr_file)
    (tmp_path / "ids.csv").write_text(f"legacy,mrn\n{mr.PatientID},MRN2002\n")
    config = tmp_path / "gw.yaml"
    config.write_text(DESTINATIONS + """\
sources:
  - name: mrroom
    type: folder
    path: /tmp
    routes:
      - match: {manufacturer: "siemens*"}
        to: [cardio]
routes:
  - match: {modality: MR, format: dicom}
    to: [research]
coerce:
  institution_name: General Hospital
  patient_ids: {file: %s, from_column: legacy, to_column: mrn}
""" % (tmp_path / "ids.csv"))
    for source, route in ((None, "research"), ("mrroom", "cardio")):
        out = tmp_path / f"out-{source}"
        extra = ["--source", source] if source else []
        assert cli.main(["convert", "-c", str(config), "--explain", *extra, str(mr_file), "-o", str(out)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1:] == [f"  COERCE InstitutionName: {mr.InstitutionName} -> General Hospital",
                             f"  COERCE PatientID: {mr.PatientID} -> MRN2002",
                             f"  route: {route}"]
        (written,) = out.iterdir()
        assert pydicom.dcmread(written).PatientID == "MRN2002"
    assert cli.main(["convert", "-c", str(config), "--source", "nosuch", str(mr_file), "-o", str(tmp_path / "x")]) == 2
    assert "--source nosuch: no such source" in capsys.readouterr().err
