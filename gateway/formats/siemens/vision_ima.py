"""Siemens Magnetom Vision (Numaris 3) native ``.IMA`` files to DICOM (siemens-spi.md 7.3).

A 6144-byte header written by a SPARC host — big-endian integers, IEEE doubles, dates as
three int32 (year, month, day), times as four (hour, minute, second, ms) — followed by Rows ×
Columns big-endian 16-bit pixels. The header mirrors the SPI groups block by block; its
geometry is Siemens' (+Left, +Anterior, +Feet; image centre, row and column vectors), turned
into LPS as for SPI files (``acrgeometry.from_siemens``). Offsets are ITK's explicit
constants and MINC's structure (no real file was available; see the notes' caveats).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from gateway.dicom import values
from gateway.dicom.geometry import put_plane
from gateway.dicom.iods import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE
from gateway.dicom.pixels import Dimension, image_bytes, put_image_pixel
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.engine.fieldtable import F, Record, Table, To, Used
from gateway.formats.siemens.recognise import VISION_HEADER_SIZE as HEADER_SIZE
from gateway.formats.siemens.recognise import VISION_MAGIC as MAGIC
from gateway.formats.siemens.recognise import VisionImaFormat
from gateway.formats.tagstream import geometry as acrgeometry


def _text_number(value: int) -> str | None:
    return str(value) if value > 0 else None


def _positive(value: float) -> float | None:
    return value if value > 0 else None


HEADER = Table("Vision IMA header", size=HEADER_SIZE, fields=[
    #  offset  type            name                   DICOM target / converter
    F(0,    "int32_be[3]",  "study_date",          Used("StudyDate")),
    F(12,   "int32_be[3]",  "acquisition_date",    Used("AcquisitionDate")),
    F(24,   "int32_be[3]",  "image_date",          Used("ContentDate")),
    F(36,   "int32_be[4]",  "study_time",          Used("StudyTime")),
    F(52,   "int32_be[4]",  "acquisition_time",    Used("AcquisitionTime")),
    F(68,   "int32_be[4]",  "image_time",          Used("ContentTime")),
    F(92,   "int32_be",     "modality",            Used("Modality: 1 CT, 2 MR")),
    F(96,   "char[8]",      "manufacturer",        "Manufacturer", note="'SIEMENS' + NUL: the magic"),
    F(105,  "char[26]",     "institution",         "InstitutionName", note="ITK reads 25"),
    F(132,  "char[26]",     "referring",           "ReferringPhysicianName"),
    F(159,  "char[26]",     "station",             "StationName"),
    F(186,  "char[26]",     "study_description",   "StudyDescription"),
    F(240,  "char[40]",     "admitting_diagnoses", "AdmittingDiagnosesDescription"),
    F(281,  "char[26]",     "model",               "ManufacturerModelName", note="ITK reads 12"),
    F(412,  "int32_be[6]",  "last_move",           note="date and time of last image move"),
    F(768,  "char[26]",     "patient_name",        "PatientName"),
    F(795,  "char[12]",     "patient_id",          "PatientID"),
    F(808,  "int32_be[3]",  "birth_date",          Used("PatientBirthDate")),
    F(820,  "int32_be",     "sex",                 Used("PatientSex: 1 F, 2 M, 3 O")),
    F(824,  "char[26]",     "birth_name",          "PatientBirthName"),
    F(851,  "char[4]",      "age",                 To("PatientAge", values.age_string)),
    F(856,  "float64_be",   "patient_size",        note="unit not documented: not mapped (MINC neither)"),
    F(864,  "int32_be",     "weight_kg",           To("PatientWeight", _positive)),
    F(1052, "int32_be[6]",  "registration",        note="registration date and time"),
    F(1544, "float64_be",   "slice_thickness",     To("SliceThickness", _positive)),
    F(1560, "float64_be",   "tr_ms",               To("RepetitionTime", _positive)),
    F(1568, "float64_be",   "te_ms",               To("EchoTime", _positive)),
    F(1576, "float64_be",   "ti_ms",               note="written only for IR sequences, which this header cannot tell"),
    F(1584, "int32_be",     "averages",            To("NumberOfAverages", _positive)),
    F(1592, "float64_be",   "frequency",           To("ImagingFrequency", _positive),
      note="MHz assumed, as in the SPI export; MINC copies it unscaled"),
    F(1604, "int32_be",     "echo_number",         To("EchoNumbers", _positive)),
    F(1608, "int32_be",     "collection_diameter", To("DataCollectionDiameter", _positive)),
    F(1612, "char[26]",     "device_serial",       "DeviceSerialNumber"),
    F(1639, "char[8]",      "software_or_station",
      note="[CONFLICT] MINC: software version; ITK: station name: not mapped"),
    F(1712, "int32_be[3]",  "calibration_date",    Used("DateOfLastCalibration")),
    F(1724, "int32_be[4]",  "calibration_time",    Used("TimeOfLastCalibration")),
    F(1767, "char[26]",     "receive_coil",        "ReceiveCoilName"),
    F(1824, "int32_be",     "patient_position",    Used("PatientPosition: 1 left, 2 prone, 3 right, 4 supine")),
    F(1828, "char[8]",      "nucleus",             "ImagedNucleus"),
    F(1940, "int32_be",     "data_bytes"),
    F(2084, "int32_be",     "fourier_lines",       Used("AcquisitionMatrix (phase)")),
    F(2100, "int32_be",     "acquisition_columns", Used("mosaic test")),
    F(2104, "int32_be",     "reconstruction_columns"),
    F(2112, "float64_be",   "flip_angle",          To("FlipAngle", _positive)),
    F(2560, "float64_be",   "field_strength",      To("MagneticFieldStrength", _positive)),
    F(2864, "int32_be",     "display_matrix",      Used("identification: file size 6144 + 2·N²")),
    F(2944, "char[65]",     "sequence_program"),
    F(3009, "char[65]",     "sequence_name",       "SequenceName"),
    F(3200, "int32_be",     "study_number",        Used("StudyID, SeriesNumber (Siemens MR)")),
    F(3208, "int32_be",     "acquisition_number",  "AcquisitionNumber"),
    F(3212, "int32_be",     "image_number",        "InstanceNumber"),
    F(3744, "float64_be[2]", "field_of_view"),
    F(3760, "int32_be",     "view_direction",      note="1 feet, 2 head, 3 AtoP, 4 LtoR, 5 PtoA, 6 RtoL"),
    F(3764, "int32_be",     "rest_direction",      Used("PatientPosition head/feet: 1 feet, 2 head")),
    F(3768, "float64_be[3]", "centre",             Used("ImagePositionPatient (centre, +L+A+F)")),
    F(3792, "float64_be[3]", "normal"),
    F(3816, "float64_be",   "distance",            "SliceLocation"),
    F(3832, "float64_be[3]", "row",                Used("ImageOrientationPatient")),
    F(3856, "float64_be[3]", "column",             Used("ImageOrientationPatient")),
    F(3904, "char[26]",     "study_name"),
    F(3984, "int32_be",     "partitions_3d",       Used("MRAcquisitionType")),
    F(4004, "int32_be",     "slices_nominal",      Used("mosaic test")),
    F(4992, "int16_be",     "image_dimension"),
    F(4994, "int16_be",     "rows",                Used("Rows")),
    F(4996, "int16_be",     "columns",             Used("Columns")),
    F(5000, "float64_be[2]", "pixel_spacing",      Used("PixelSpacing (row, column)")),
    F(5024, "int16_be",     "bits_allocated",      Used("BitsAllocated")),
    F(5026, "int16_be",     "bits_stored",         Used("BitsStored")),
    F(5028, "int16_be",     "high_bit",            Used("HighBit")),
    F(5030, "int16_be",     "pixel_representation", Used("PixelRepresentation")),
    F(5032, "int32_be[2]",  "window_center",       "WindowCenter"),
    F(5040, "int32_be[2]",  "window_width",        "WindowWidth"),
    F(5048, "int32_be",     "rescale_intercept",   Used("RescaleIntercept (CT)")),
    F(5052, "int32_be",     "rescale_slope",       Used("RescaleSlope (CT)")),
    F(5504, "char[12]",     "text_patient_id"),
    F(5541, "char[5]",      "text_image_label"),
    F(5999, "char[2]",      "text_study_number",   note="ITK's Series Number source"),
])

_SEX = {1: "F", 2: "M", 3: "O"}
_POSTURE = {1: "LEFT", 2: "PRONE", 3: "RIGHT", 4: "SUPINE"}


def _date(parts: tuple[int, ...]) -> str | None:
    year, month, day = parts
    valid = 0 < year < 10000 and 0 < month < 100 and 0 < day < 100
    return values.date(f"{year:04d}{month:02d}{day:02d}") if valid else None


def _time(parts: tuple[int, ...]) -> str | None:
    hour, minute, second, ms = parts
    if not (0 <= hour < 24 and 0 <= minute < 60 and 0 <= second < 61 and 0 <= ms < 1000):
        return None
    return f"{hour:02d}{minute:02d}{second:02d}.{ms:03d}"


class VisionIma(VisionImaFormat):
    def decode(self, data: bytes) -> Decoded:
        if data[96:104] != MAGIC:
            raise DecodeError("no 'SIEMENS' at offset 96: not a Vision IMA file", field="manufacturer", offset=96)
        rec = HEADER.read(data)
        rows, cols = rec["rows"], rec["columns"]
        need = HEADER_SIZE + image_bytes(Dimension(rows, "rows", rec.offset("rows")),
                                         Dimension(cols, "columns", rec.offset("columns")), 16)
        if len(data) < need:
            raise DecodeError(f"pixel data truncated: {rows}x{cols} needs {need} bytes, file has {len(data)}",
                              field="PixelData", offset=HEADER_SIZE)
        ds = Dataset()
        HEADER.apply(rec, ds)
        notes: list[str] = []
        self._dates(ds, rec)
        self._patient(ds, rec, notes)
        self._pixels(ds, rec, data[HEADER_SIZE:need])
        self._kind(ds, rec, notes)
        values.ready_to_write(ds)
        return Decoded(ds, self.name, identity=self._identity(ds), vendor_header=data[:HEADER_SIZE], notes=notes)

    def _dates(self, ds: Dataset, rec: Record) -> None:
        for name, keyword, parse in (
            ("study_date", "StudyDate", _date), ("acquisition_date", "AcquisitionDate", _date),
            ("image_date", "ContentDate", _date), ("birth_date", "PatientBirthDate", _date),
            ("calibration_date", "DateOfLastCalibration", _date), ("study_time", "StudyTime", _time),
            ("acquisition_time", "AcquisitionTime", _time), ("image_time", "ContentTime", _time),
            ("calibration_time", "TimeOfLastCalibration", _time),
        ):
            value = parse(rec[name])
            if value:
                setattr(ds, keyword, value)

    def _patient(self, ds: Dataset, rec: Record, notes: list[str]) -> None:
        ds.PatientSex = _SEX.get(rec["sex"], "")
        posture = _POSTURE.get(rec["patient_position"])
        if posture:
            head_first = {1: False, 2: True}.get(rec["rest_direction"])
            position, assumed = values.patient_position(posture, head_first)
            ds.PatientPosition = position
            if assumed:
                notes.append("Patient Position: head first assumed (rest direction unknown)")
        if rec["study_number"] > 0:
            ds.StudyID = str(rec["study_number"])
            ds.SeriesNumber = rec["study_number"]  # Siemens numbers series by the study (antodc)

    def _pixels(self, ds: Dataset, rec: Record, raw: bytes) -> None:
        stored = rec["bits_stored"]
        if not (0 < stored <= 16 and rec["high_bit"] == stored - 1):
            stored = 12  # dicom3tools' vsntopgm uses maxval 4095
        put_image_pixel(ds, rec["rows"], rec["columns"], np.frombuffer(raw, dtype=">u2").astype("<u2").tobytes(),
                        bits_stored=stored, signed=rec["pixel_representation"] == 1)

    def _kind(self, ds: Dataset, rec: Record, notes: list[str]) -> None:
        """SOP class, modality details and geometry; SC when geometry cannot be stated."""
        modality = {1: "CT", 2: "MR"}.get(rec["modality"], "OT")
        ds.Modality = modality
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if modality == "CT" else "OTHER"]
        if modality == "CT":
            ds.RescaleIntercept = str(rec["rescale_intercept"])
            ds.RescaleSlope = str(rec["rescale_slope"] or 1)
        if modality == "MR":
            ds.MRAcquisitionType = "3D" if rec["partitions_3d"] > 0 else "2D"
        spacing = list(rec["pixel_spacing"])
        mosaic = rec["slices_nominal"] > 1 and 0 < rec["acquisition_columns"] < rec["columns"]
        geometry = None
        if mosaic:
            notes.append("mosaic image (several slices tiled): not split; written without geometry")
        elif all(s > 0 for s in spacing):
            try:
                geometry = acrgeometry.from_siemens(list(rec["centre"]), list(rec["row"]), list(rec["column"]),
                                                    ds.Rows, ds.Columns, spacing)
            except ValueError as exc:
                notes.append(f"Siemens geometry unusable: {exc}")
        if geometry is None or modality == "OT":
            ds.SOPClassUID = SECONDARY_CAPTURE_STORAGE
            ds.ConversionType = "DI"
            return
        ds.SOPClassUID = MR_IMAGE_STORAGE if modality == "MR" else CT_IMAGE_STORAGE
        ds.Laterality = None  # type 2C: the header does not say (empty = unknown)
        put_plane(ds, *geometry, spacing, labels=True)

    def _identity(self, ds: Dataset) -> dict[str, tuple[str, ...]]:
        def get(*keywords: str) -> tuple[str, ...]:
            return tuple(str(ds.get(k) or "") for k in keywords)

        study = (self.name,) + get(
            "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "StationName", "InstitutionName",
            "PatientID", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime",
        )
        series = study + get("StudyID", "Modality")
        instance = series + get("AcquisitionNumber", "InstanceNumber", "ContentDate", "ContentTime",
                                "ImagePositionPatient")
        return {"study": study, "series": series, "instance": instance}

    def dump(self, data: bytes) -> list[DumpRow]:
        return HEADER.dump(data)
