"""Site coercions: attributes replaced to fit the receiving site, after normalisation.

A migration often needs what the source cannot give: today's institution name, an accession
number, or the patient's current MRN where the legacy archive used another identifier. Each
coercion is recorded in the instance's Original Attributes Sequence with reason ``COERCE``
(``gateway.dicom.provenance``), so the PACS keeps the previous value and ``convert --explain``
can show it. A mapped Patient ID is never logged: only line numbers and counts are reported.

Only a short list of keywords may be set by ``set``: descriptive attributes a site owns. UIDs,
pixel and geometry attributes, Modality and SOP class are never coercible: changing them would
change what the instance is, not how the site files it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from gateway.errors import DecodeError

if TYPE_CHECKING:  # pydicom is loaded when a coercion is applied, not to read a configuration
    from pydicom.dataset import Dataset

# keyword -> (VR, maximum length); the lengths are PS3.5 Table 6.2-1's.
SAFE_KEYWORDS: dict[str, tuple[str, int]] = {
    "InstitutionName": ("LO", 64),
    "InstitutionAddress": ("ST", 1024),
    "InstitutionalDepartmentName": ("LO", 64),
    "StationName": ("SH", 16),
    "AccessionNumber": ("SH", 16),
    "IssuerOfPatientID": ("LO", 64),
    "ReferringPhysicianName": ("PN", 64),
    "PerformingPhysicianName": ("PN", 64),
    "OperatorsName": ("PN", 64),
    "StudyDescription": ("LO", 64),
    "SeriesDescription": ("LO", 64),
    "ProtocolName": ("LO", 64),
    "BodyPartExamined": ("CS", 16),
    "StudyID": ("SH", 16),
}

# Characters a value of these VRs may not hold (PS3.5 6.2): control characters and the
# multi-value separator (a coerced value is one value).
_FORBIDDEN = set(chr(c) for c in range(32)) | {"\\", "\x7f"}


def value_problem(keyword: str, value: str) -> str | None:
    """Why ``value`` cannot be given to ``keyword`` by ``set``, or None if it can."""
    if keyword not in SAFE_KEYWORDS:
        return f"{keyword} cannot be set; settable: {', '.join(sorted(SAFE_KEYWORDS))}"
    vr, limit = SAFE_KEYWORDS[keyword]
    if len(value) > limit:
        return f"{keyword} ({vr}) holds at most {limit} characters, not {len(value)}"
    if set(value) & _FORBIDDEN:
        return f"{keyword}: control characters and backslashes are not allowed"
    if vr == "CS" and not all(c.isupper() or c.isdigit() or c in " _" for c in value):
        return f"{keyword} (CS) allows only capitals, digits, space and underscore"
    return None


@dataclass(frozen=True)
class PatientIdMap:
    """Legacy Patient ID -> today's, from a CSV file (read once per configuration load)."""

    file: str
    ids: Mapping[str, str]  # patient IDs: kept out of the repr below
    reject_unmapped: bool = False

    def __repr__(self) -> str:
        return f"PatientIdMap({self.file!r}, {len(self.ids)} IDs, reject_unmapped={self.reject_unmapped})"

    def lookup(self, legacy: str) -> str | None:
        return self.ids.get(legacy.strip())


def read_id_map(file: str, from_column: str, to_column: str, delimiter: str = ",") -> tuple[dict[str, str], list[str]]:
    """Read the map; returns (map, problems). Problems name CSV lines but never an ID, since
    they reach the log when a reload is refused."""
    try:
        handle = open(file, newline="", encoding="utf-8-sig")  # Excel writes a BOM
    except OSError as exc:
        return {}, [f"{file}: cannot read: {exc.strerror}"]
    ids: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    with handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
            missing = [c for c in (from_column, to_column) if c not in header]
            if missing:
                found = ", ".join(header) or "none"
                return {}, [f"{file}:1: no column named {', '.join(map(repr, missing))} (columns: {found})"]
            for row in reader:
                line = reader.line_num
                legacy, new = (row.get(from_column) or "").strip(), (row.get(to_column) or "").strip()
                if not legacy or not new:
                    problems.append(f"{file}:{line}: empty {from_column if not legacy else to_column}")
                elif len(new) > 64 or set(new) & _FORBIDDEN:
                    problems.append(f"{file}:{line}: {to_column} is not a valid Patient ID "
                                    "(LO: 64 characters, no backslash)")
                elif legacy in first_line:
                    problems.append(f"{file}:{line}: {from_column} repeats the one on line {first_line[legacy]}")
                else:
                    ids[legacy], first_line[legacy] = new, line
        except (csv.Error, UnicodeDecodeError) as exc:
            problems.append(f"{file}:{reader.line_num}: not a readable CSV file: {exc}")
    return ids, problems


@dataclass(frozen=True)
class Coercion:
    """What to replace in every instance of a source (or of every source)."""

    set: Mapping[str, str] = field(default_factory=dict)  # keyword -> value, keywords from SAFE_KEYWORDS
    patient_ids: PatientIdMap | None = None

    def __bool__(self) -> bool:
        return bool(self.set) or self.patient_ids is not None

    def merged(self, override: "Coercion | None") -> "Coercion":
        """This coercion with a more specific one on top: key by key, ``set`` keyword by keyword."""
        if override is None:
            return self
        return Coercion({**self.set, **override.set}, override.patient_ids or self.patient_ids)

    def apply(self, ds: Dataset, source: str) -> bool:
        """Replace the attributes in ``ds`` and record their previous values under ``source``.

        Raises ``DecodeError`` (the capture is rejected and kept) for a Patient ID the map
        does not know when unmapped IDs are to be rejected. Returns whether anything changed.
        """
        from gateway.dicom.provenance import COERCE, Changes  # pydicom: loaded here, not with the configuration

        changes = Changes()
        mapped = self._mapped_patient_id(ds) if self.patient_ids is not None else None
        if mapped is not None:
            changes.set(ds, "PatientID", mapped, COERCE)
        for keyword, value in self.set.items():
            if keyword not in ds or str(ds[keyword].value or "") != value:
                changes.set(ds, keyword, value, COERCE)
        changed = bool(changes)
        changes.write(ds, source)
        return changed

    def _mapped_patient_id(self, ds: Dataset) -> str | None:
        """The Patient ID the map gives, if it differs from the legacy one."""
        legacy = str(ds.get("PatientID", "") or "")
        new = self.patient_ids.lookup(legacy)
        if new is None:
            if self.patient_ids.reject_unmapped:
                # The ID itself stays out of the reason: reasons are logged.
                name = Path(self.patient_ids.file).name
                raise DecodeError(f"Patient ID not in {name} (patient_ids.unmapped: reject)", field="PatientID")
            return None
        return new if new != legacy else None
