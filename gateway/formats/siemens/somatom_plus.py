"""Siemens Somatom Plus fixed-format CT files (VAX host) to DICOM (siemens-spi.md 5.2).

A file is 8 blocks of 512 bytes of header — binary fields from offset 0, a text header at
3072 — followed by Rows × Columns unsigned 16-bit little-endian pixels at 4096. Integers are
VAX little endian, reals VAX F_floating (host-floats.md 2), strings fixed-length ASCII.
Layout and targets follow dicom3tools' ``somp`` templates; no real file was available, so
the layout rests on that source and on round trips through dicom3tools' own reader.

What the header does not say, the output does not invent: there is no pixel spacing and no
image position in the known fields, so the image cannot be a CT Image (whose Image Plane
module needs both) and is written as a Secondary Capture of modality CT, with the CT rescale
(dicom3tools' constants: intercept −1000, slope 1) and the Patient Orientation that the
edge labels state.
"""

from __future__ import annotations

import re

import numpy as np
from pydicom.dataset import Dataset

from gateway.dicom import values
from gateway.dicom.geometry import opposite
from gateway.dicom.iods import SECONDARY_CAPTURE_STORAGE
from gateway.dicom.pixels import Dimension, image_bytes, put_image_pixel
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.engine.fieldtable import F, Record, Table, To, Used
from gateway.formats.siemens.recognise import SOMATOM_HEADER_SIZE as HEADER_SIZE
from gateway.formats.siemens.recognise import SomatomPlusFormat

TEXT_BASE = 3072


def single(value: float | None) -> float | None:
    """A VAX F value as the shortest decimal that is the same binary32 number.

    F_floating holds 24 significant bits; printing the binary64 expansion (2.0125000476837…)
    would show digits the scanner never had.
    """
    if value is None:
        return None
    return float(str(np.float32(value)))


def _seconds_to_ms(value: float | None) -> int | None:
    """Acquisition time in seconds to Exposure Time in ms (dicom3tools kept whole seconds)."""
    v = single(value)
    return None if v is None or v <= 0 else int(round(v * 1000))


def _positive(value: int) -> int | None:
    return value if value > 0 else None


BINARY = Table("Somatom Plus binary header", size=TEXT_BASE, fields=[
    #  offset  type        name                    DICOM target / converter
    F(4,    "int16_le",  "block_size",          note="512"),
    F(6,    "int16_le",  "total_blocks"),
    F(54,   "int16_le",  "header_blocks",       note="8 (4096-byte header)"),
    F(76,   "int16_le",  "pixel_block",         note="9: first pixel block, counting from 1"),
    F(78,   "int16_le",  "pixel_blocks",        note="1024 for 512 x 512 x 2 bytes"),
    F(516,  "char[4]",   "software_version",    "SoftwareVersions"),
    F(520,  "char[12]",  "study_date",          Used("StudyDate"), note="day-month-year (somp.tpl String_Date_DMY)"),
    F(532,  "char[12]",  "study_time",          Used("StudyTime")),
    F(624,  "vax_f",     "unknown624"),
    F(628,  "vax_f",     "unknown628"),
    F(632,  "vax_f",     "unknown632"),
    F(664,  "char[14]",  "model",               "ManufacturerModelName"),
    F(696,  "char[12]",  "uid1",                note="meaning unknown (somp.tpl)"),
    F(708,  "char[64]",  "uid2",                note="meaning unknown (somp.tpl)"),
    F(1044, "int32_le",  "gantry_rotation",     note="360 full, 270 quick (dicom3tools marks it '?')"),
    F(1048, "char[20]",  "description",         "StudyDescription"),
    F(1072, "int32_le",  "kv",                  To("KVP", _positive)),
    F(1080, "int32_le",  "mas",                 To("Exposure", _positive)),
    F(1084, "vax_f",     "acquisition_time_s",  To("ExposureTime", _seconds_to_ms),
      note="seconds; DICOM wants ms (dicom3tools wrote the whole seconds into the ms field)"),
    F(1088, "int32_le",  "slice_thickness_mm",  To("SliceThickness", _positive)),
    F(1140, "vax_f",     "unknown1140"),
    F(1152, "vax_f",     "unknown1152"),
    F(1156, "char[4]",   "acquisition_time_text"),
    F(1184, "vax_f",     "unknown1184"),
    F(1196, "int32_le",  "ma",                  To("XRayTubeCurrent", _positive)),
    F(1304, "vax_f",     "unknown1304"),
    F(1308, "vax_f",     "unknown1308"),
    F(1312, "vax_f",     "unknown1312"),
    F(1316, "vax_f",     "unknown1316"),
    F(1320, "vax_f",     "unknown1320"),
    F(1324, "vax_f",     "unknown1324"),
    F(1328, "int32_le",  "matrix",              Used("Rows, Columns (square)")),
    F(1332, "vax_f",     "zoom",                To("ZoomFactor", single), note="dicom3tools marks it '?'"),
    F(1336, "vax_f",     "unknown1336"),
    F(1340, "vax_f",     "unknown1340"),
    F(1368, "vax_f",     "unknown1368"),
    F(1384, "vax_f",     "unknown1384"),
    F(1404, "vax_f",     "unknown1404"),
    F(1544, "int32_le",  "table_position_mm",   "SliceLocation"),
    F(1548, "int32_le",  "table_height_mm",     "TableHeight", note="dicom3tools marks it '?'"),
    F(1560, "int32_le",  "scan_number",         "InstanceNumber"),
    F(1564, "char[12]",  "scan_date",           Used("ContentDate"), note="day-month-year, as 520"),
    F(1576, "char[12]",  "scan_time",           Used("ContentTime")),
    F(1728, "vax_f",     "unknown1728"),
])

TEXT = Table("Somatom Plus text header", size=HEADER_SIZE - TEXT_BASE, fields=[
    F(4,    "char[21]",  "product"),
    F(25,   "char[5]",   "version"),
    F(30,   "char[30]",  "hospital",            "InstitutionName"),
    F(60,   "char[8]",   "time_text"),
    F(72,   "char[12]",  "slice_text"),
    F(86,   "char[10]",  "table_position_text", note="after the label 'TP' at 84"),
    F(96,   "char[24]",  "patient_name",        "PatientName"),
    F(120,  "char[13]",  "patient_id",          "PatientID"),
    F(133,  "char[12]",  "date_text"),
    F(147,  "char[10]",  "acquisition_time_text", note="after 'TI' at 145"),
    F(160,  "char[9]",   "mas_text",            note="after 'mAs' at 157"),
    F(171,  "char[10]",  "kv_text",             note="after 'kV' at 169"),
    F(183,  "char[10]",  "slice_thickness_text", note="after 'SL' at 181"),
    F(193,  "char[2]",   "gantry_tilt_label",   note="'GT'; not read by the decoder (the simulator writes it)"),
    F(195,  "char[10]",  "gantry_tilt",         To("GantryDetectorTilt", values.ds), note="after 'GT' at 193"),
    F(207,  "char[10]",  "zoom_text",           note="after 'ZO' at 205"),
    F(219,  "char[12]",  "zoom_centre_x",       note="after 'CE' at 217"),
    F(231,  "char[10]",  "zoom_centre_y"),
    F(243,  "char[10]",  "ma_text",             note="flag text at 241 unverified (somp.tpl says 'CE')"),
    F(253,  "char[10]",  "right_edge",          Used("PatientOrientation (row direction)")),
    F(263,  "char[10]",  "top_edge",            Used("PatientOrientation (column direction, opposite)")),
    F(273,  "char[40]",  "comment",             "ImageComments"),
])

_MONTHS = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_LABEL = {"LEFT": "L", "RIGHT": "R", "ANTERIOR": "A", "POSTERIOR": "P", "HEAD": "H", "FEET": "F"}


def dmy_date(text: str) -> str | None:
    """``yyyymmdd`` from a day-month-year date: ``02-DEC-1996``, ``2.12.1996``, ``02/12/96``.

    Day first, as the field type says; never month first (dicom3tools' default guess, which
    the notes found wrong for days up to 12).
    """
    m = re.match(r"^\s*(\d{1,2})[-./ ]([A-Za-z]{3}|\d{1,2})[-./ ](\d{2}|\d{4})\s*$", text)
    if not m:
        return None
    day, month_text, year_text = m.groups()
    month = _MONTHS.get(month_text.upper()) if month_text.isalpha() else int(month_text)
    year = int(year_text) + (1900 if len(year_text) == 2 else 0)
    if month is None:
        return None
    return values.date(f"{year:04d}{month:02d}{int(day):02d}")


def patient_orientation(right_edge: str, top_edge: str) -> list[str] | None:
    """Row direction = the right-edge label; column direction = opposite of the top label."""
    row = _LABEL.get(right_edge.strip().upper())
    top = _LABEL.get(top_edge.strip().upper())
    if row is None or top is None:
        return None
    return [row, opposite(top)]


def _header(data: bytes) -> tuple[Record, Record]:
    return BINARY.read(data), TEXT.read(data, base=TEXT_BASE)


class SomatomPlus(SomatomPlusFormat):
    def decode(self, data: bytes) -> Decoded:
        binary, text = _header(data)
        matrix = binary["matrix"]
        side = Dimension(matrix, "matrix", binary.offset("matrix"))
        need = HEADER_SIZE + image_bytes(side, side, 16)
        if len(data) < need:
            raise DecodeError(
                f"pixel data truncated: {len(data) - HEADER_SIZE} bytes after the header, "
                f"{matrix}x{matrix} needs {need - HEADER_SIZE}",
                field="PixelData",
                offset=HEADER_SIZE,
            )
        ds = Dataset()
        BINARY.apply(binary, ds)
        TEXT.apply(text, ds)
        notes = self._dates_and_labels(ds, binary, text)
        ds.Manufacturer = "SIEMENS"
        ds.Modality = "CT"
        ds.SOPClassUID = SECONDARY_CAPTURE_STORAGE  # no pixel spacing, no position: no CT Image
        ds.ConversionType = "DI"  # digital interface: converted from the vendor file
        ds.SeriesNumber = 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        put_image_pixel(ds, matrix, matrix, data[HEADER_SIZE:need])  # little endian already, as DICOM wants
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1000", "1", "HU"
        notes.append("rescale −1000/1 is dicom3tools' constant, not read from the file")
        values.ready_to_write(ds)
        return Decoded(ds, self.name, identity=self._identity(ds, binary), vendor_header=data[:HEADER_SIZE],
                       notes=notes)

    def _dates_and_labels(self, ds: Dataset, binary: Record, text: Record) -> list[str]:
        notes = []
        for field_name, keyword, parse in (
            ("study_date", "StudyDate", dmy_date),
            ("scan_date", "ContentDate", dmy_date),
            ("study_time", "StudyTime", values.time),
            ("scan_time", "ContentTime", values.time),
        ):
            raw = binary[field_name]
            value = parse(raw) if raw.strip() else None
            if value:
                setattr(ds, keyword, value)
            elif raw.strip():
                notes.append(f"{field_name} not readable as a date/time: left empty")
        orientation = patient_orientation(text["right_edge"], text["top_edge"])
        if orientation:
            ds.PatientOrientation = orientation
        return notes

    def _identity(self, ds: Dataset, binary: Record) -> dict[str, tuple[str, ...]]:
        def get(*keywords: str) -> tuple[str, ...]:
            return tuple(str(ds.get(k) or "") for k in keywords)

        study = (self.name,) + get("ManufacturerModelName", "InstitutionName", "PatientID", "PatientName",
                                   "StudyDate", "StudyTime")
        study += (binary["uid1"], binary["uid2"])
        series = study + get("StudyDescription")
        # The table position as the header's integer, written as the release before issue 12
        # wrote its DS text ("-40.0"): the SOP Instance UID must not change with DS formatting.
        instance = series + get("InstanceNumber", "ContentDate", "ContentTime") + (
            str(float(binary["table_position_mm"])),)
        return {"study": study, "series": series, "instance": instance}

    def dump(self, data: bytes) -> list[DumpRow]:
        return BINARY.dump(data) + TEXT.dump(data, base=TEXT_BASE)
