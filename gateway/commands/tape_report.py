"""What an ingest of a tape found and what failed, as the tables ``ingest-tape`` prints.

Only what identifies studies and series without identifying patients is shown: UIDs, dates,
modality, series number and counts. Patient names, IDs and birth dates are never printed.
Every failure names its place on the tape (tape file, byte offset, records) so the archivist
can go back to it (and to its extract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from pydicom.dataset import Dataset


@dataclass
class SeriesFound:
    study_uid: str
    series_uid: str
    modality: str = ""
    series_number: str = ""
    date: str = ""
    images: int = 0
    formats: set[str] = field(default_factory=set)
    tape_files: list[int] = field(default_factory=list)


@dataclass
class Failure:
    tape_file: int | None
    where: str  # "tape file 7, byte offset 123456"
    kind: str  # damaged, rejected, not an image, too large, read stopped, ...
    reason: str


@dataclass
class TapeReport:
    series: dict[str, SeriesFound] = field(default_factory=dict)
    studies: dict[str, str] = field(default_factory=dict)  # study UID -> study date
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    labels: int = 0
    images: int = 0

    def instance(self, tape_file: int, ds: Dataset, fmt: str) -> SeriesFound:
        study = str(ds.get("StudyInstanceUID", ""))
        series_uid = str(ds.get("SeriesInstanceUID", ""))
        date = str(ds.get("SeriesDate", "") or ds.get("StudyDate", "") or "")
        s = self.series.get(series_uid)
        if s is None:
            s = self.series[series_uid] = SeriesFound(
                study, series_uid, str(ds.get("Modality", "")), str(ds.get("SeriesNumber", "") or ""), date)
        s.images += 1
        s.formats.add(fmt)
        s.tape_files.append(tape_file)
        self.studies.setdefault(study, str(ds.get("StudyDate", "") or ""))
        self.images += 1
        return s

    def failure(self, tape_file: int | None, where: str, kind: str, reason: str) -> None:
        self.failures.append(Failure(tape_file, where, kind, reason))

    def render(self, out: TextIO) -> None:
        out.write(f"\nTape files read: {self.files} ({self.labels} label group(s)); images: {self.images}; "
                  f"studies: {len(self.studies)}; series: {len(self.series)}\n")
        if self.series:
            out.write("\nStudy / series found (no patient data is shown)\n")
            rows = [("study UID", "study date", "series UID", "no.", "mod", "images", "tape files", "format")]
            for s in sorted(self.series.values(), key=lambda s: (s.study_uid, _num(s.series_number), s.series_uid)):
                rows.append((s.study_uid, _date(self.studies.get(s.study_uid, "")), s.series_uid, s.series_number,
                             s.modality, str(s.images), _ranges(s.tape_files), ",".join(sorted(s.formats))))
            _table(out, rows)
        if self.failures:
            out.write(f"\nFailures ({len(self.failures)})\n")
            _table(out, [("position", "problem", "reason")] + [(f.where, f.kind, f.reason) for f in self.failures])
        else:
            out.write("\nNo failures.\n")
        for note in self.notes:
            out.write(f"note: {note}\n")


def _num(value: str) -> int:
    return int(value) if value.lstrip("-").isdigit() else 1 << 31


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value or "-"


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    out: list[str] = []
    for n in sorted(set(numbers)):
        if out and "-" not in out[-1].split(",")[-1] and int(out[-1]) == n - 1:
            out[-1] = f"{out[-1]}-{n}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


def _table(out: TextIO, rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[-1] = 0  # the last column runs free (long reasons)
    for n, row in enumerate(rows):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * max(w, len(row[i])) for i, w in enumerate(widths)) + "\n")
