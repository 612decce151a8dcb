"""GE Signa 3.x/4.x MR image files (Data General era) to DICOM.

Facts, sources and evidence: shared/formats/ge-signa-4x.md (cited as "notes 4.3" etc.). A file
is 28 blocks of 512 bytes (system configuration, site customisation, study, series and image
headers, raw header, pulse sequence, pixel map) followed by rows x cols big-endian 16-bit
pixels at 14336. Integers are big-endian, reals are Data General hex floats (never IEEE:
notes 3). Dates are day/month/year-1900 integers; years after 1999 are decoded with the
rule of notes 7 (the reference converter writes invalid dates for them). No UIDs exist in the
format: all four are derived from the vendor identity. A tape file holds the same bytes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from gateway.dicom.iods import MR_IMAGE_STORAGE
from gateway.dicom.limits import plausible
from gateway.dicom.pixels import Dimension, image_bytes, put_image_pixel
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.engine.fieldtable import F, Record, Table, To, Used, ds_number, finite, put, set_value
from gateway.formats.ge.geometry import plane_from_corners, put_plane
from gateway.formats.ge.recognise import SIGNA_IDENTIFIERS as _IDENTIFIERS
from gateway.formats.ge.recognise import SIGNA_IMAGE_BASE as IMAGE_BASE
from gateway.formats.ge.recognise import SIGNA_SERIES_BASE as SERIES_BASE
from gateway.formats.ge.recognise import SIGNA_STUDY_BASE as STUDY_BASE
from gateway.formats.ge.recognise import Signa4xFormat

HEADER_SIZE = 14336  # 28 blocks of 512 bytes
MANUFACTURER = "GE MEDICAL SYSTEMS"


def _int_text(text: str) -> int | None:
    """ASCII number fields (study/series/image numbers): digits, blanks allowed around."""
    text = text.strip()
    return int(text) if text.isdigit() else None


SYSTEM = Table("system configuration", size=2048, fields=[
    F(12,  "char[4]",  "system_id",  "StationName", note="the console's system id names the station"),
    F(32,  "char[32]", "hospital",   Used("InstitutionName if the study header has none")),
])

STUDY = Table("study header", size=1024, fields=[
    F(0,   "char[14]",  "identifier",   note="'STUDY HEADER  '"),
    F(14,  "char[8]",   "revision",     note="any revision is accepted (AFNI's 04-only rule would reject 3.x)"),
    F(22,  "int16_be",  "blocks",       note="2"),
    F(24,  "char[32]",  "creator"),
    F(56,  "int16_be",  "task_id"),
    F(58,  "char[5]",   "original_study"),
    F(64,  "char[5]",   "study_number", To("StudyID")),
    F(70,  "char[3]",   "raw_system_id"),
    F(74,  "char[3]",   "sysgen_id"),
    F(78,  "char[9]",   "date_text",    note="dd-mmm-yy; the integers below are used"),
    F(88,  "int16_be",  "day",          Used("StudyDate")),
    F(90,  "int16_be",  "month",        Used("StudyDate")),
    F(92,  "int16_be",  "year",         Used("StudyDate"), note="year - 1900, or wrapped after 1999: notes 7 rule"),
    F(94,  "char[8]",   "time_text"),
    F(102, "int16_be",  "hour",         Used("StudyTime")),
    F(104, "int16_be",  "minute",       Used("StudyTime")),
    F(106, "int16_be",  "second",       Used("StudyTime")),
    F(108, "char[32]",  "patient_name", "PatientName"),
    F(140, "char[12]",  "patient_id",   "PatientID"),
    F(156, "char[4]",   "age",          Used("PatientAge"), note="'nnn' years or number + D/W/M/Y"),
    F(160, "char[1]",   "sex",          Used("PatientSex")),
    F(162, "int32_be",  "weight_g",     Used("PatientWeight")),
    F(166, "char[32]",  "referring",    "ReferringPhysicianName"),
    F(198, "char[32]",  "diagnostician", "NameOfPhysiciansReadingStudy",
      note="the reading physician; dicom3tools' PerformingPhysicianName names another role"),
    F(230, "char[32]",  "operator",     "OperatorsName"),
    F(262, "char[60]",  "description",  "StudyDescription"),
    F(322, "char[120]", "history",      "AdditionalPatientHistory"),
    F(442, "int32_be",  "creation_seconds", note="epoch unknown: not used"),
    F(446, "char[32]",  "hospital",     "InstitutionName"),
    F(478, "int16_be",  "patient_status"),
    F(480, "char[12]",  "requisition"),
    F(1022, "int16_be", "checksum",     note="algorithm unknown: not validated"),
])

SERIES = Table("series header", size=1024, fields=[
    F(0,   "char[14]",  "identifier",   note="'SERIES HEADER '"),
    F(14,  "char[8]",   "revision",     Used("gates prep_flags (minor >= 7)")),
    F(22,  "int16_be",  "blocks"),
    F(58,  "char[3]",   "original_series"),
    F(62,  "char[3]",   "series_number", To("SeriesNumber", _int_text)),
    F(74,  "char[9]",   "date_text"),
    F(84,  "int16_be",  "day",          Used("SeriesDate")),
    F(86,  "int16_be",  "month",        Used("SeriesDate")),
    F(88,  "int16_be",  "year",         Used("SeriesDate")),
    F(90,  "char[8]",   "time_text"),
    F(98,  "int16_be",  "hour",         Used("SeriesTime")),
    F(100, "int16_be",  "minute",       Used("SeriesTime")),
    F(102, "int16_be",  "second",       Used("SeriesTime")),
    F(104, "char[120]", "description",  "SeriesDescription"),
    F(224, "int16_be",  "series_type",  Used("ImageType")),
    F(226, "int16_be",  "coil_type"),
    F(228, "char[16]",  "coil_name",    "ReceiveCoilName"),
    F(244, "char[32]",  "contrast",     "ContrastBolusAgent"),
    F(276, "int16_be",  "plane_type"),
    F(278, "char[16]",  "plane_name",   note="ITK's only identification; geometry comes from the corners"),
    F(294, "int16_be",  "image_mode",   Used("MRAcquisitionType")),
    F(296, "int16_be",  "gauss",        Used("MagneticFieldStrength")),
    F(298, "int16_be",  "pulse_sequence", Used("ScanningSequence, SequenceVariant")),
    F(300, "int16_be",  "pulse_subtype"),
    F(302, "dg_single", "fov_mm",       To("ReconstructionDiameter", lambda v: v if v > 0 else None),
      note="DG float: 42 F0 00 00 = 240.0 (AFNI/MIPAV misread it as IEEE 120.0)"),
    F(306, "dg_single", "center_r"),
    F(310, "dg_single", "center_a"),
    F(314, "dg_single", "center_s"),
    F(318, "int16_be",  "orientation",  Used("PatientPosition suffix")),
    F(320, "int16_be",  "position",     Used("PatientPosition prefix")),
    F(322, "char[32]",  "landmark_name", "PositionReferenceIndicator"),
    F(354, "char[32]",  "vertical_reference"),
    F(386, "dg_single", "vertical_landmark"),
    F(390, "dg_single", "horizontal_landmark"),
    F(394, "dg_single", "table_location"),
    F(398, "int16_be",  "scan_matrix_x", Used("AcquisitionMatrix")),
    F(400, "int16_be",  "scan_matrix_y", Used("AcquisitionMatrix, NumberOfPhaseEncodingSteps"),
      note="word 200 (ITK reads word 201, the image matrix: an ITK bug)"),
    F(402, "int16_be",  "image_matrix"),
    F(404, "int16_be",  "images_allocated"),
    F(406, "int16_be",  "gating",       Used("ScanOptions")),
    F(408, "int16_be",  "psd_mode"),
    F(410, "char[12]",  "psd_name",     "SequenceName"),
    F(422, "int32_be",  "landmark_counter", Used("frame of reference identity")),
    F(426, "char[20]",  "protocol",     "ProtocolName"),
    F(446, "int16_be",  "surface_coil_type"),
    F(448, "int16_be",  "suppression",  Used("ScanOptions FS")),
    F(450, "int16_be",  "sat_bits",     Used("ScanOptions SP")),
    F(452, "int16_be",  "scic"),
    F(454, "int16_be[9]", "sat_locations"),
    F(472, "int16_be",  "vascular_mode", Used("AngioFlag")),
    F(474, "int16_be",  "flow_axis",    note="bitmap (dicom3tools) vs values (MIPAV): not used"),
    F(478, "int16_be",  "prep_flags",   Used("SequenceVariant MP (revision minor >= 7)")),
    F(1022, "int16_be", "checksum"),
])

IMAGE = Table("image header", size=1024, fields=[
    F(0,   "char[14]",  "identifier",   note="'IMAGE HEADER  '"),
    F(14,  "char[8]",   "revision",     "SoftwareVersions"),
    F(22,  "int16_be",  "blocks"),
    F(58,  "char[9]",   "date_text"),
    F(68,  "int16_be",  "day",          Used("AcquisitionDate, ContentDate")),
    F(70,  "int16_be",  "month",        Used("AcquisitionDate, ContentDate")),
    F(72,  "int16_be",  "year",         Used("AcquisitionDate, ContentDate")),
    F(74,  "char[8]",   "time_text"),
    F(82,  "int16_be",  "hour",         Used("AcquisitionTime, ContentTime")),
    F(84,  "int16_be",  "minute",       Used("AcquisitionTime, ContentTime")),
    F(86,  "int16_be",  "second",       Used("AcquisitionTime, ContentTime")),
    F(88,  "char[3]",   "image_number", To("InstanceNumber", _int_text)),
    F(92,  "char[3]",   "series_of_image"),
    F(96,  "char[3]",   "raw_system_id"),
    F(100, "char[3]",   "sysgen_id"),
    F(104, "dg_single[6]", "scan_range_ras"),
    F(146, "dg_single", "location",     "SliceLocation"),
    F(150, "dg_single", "table_position"),
    F(154, "dg_single", "thickness",    To("SliceThickness", lambda v: v if v > 0 else None)),
    F(158, "dg_single", "spacing_gap",  Used("SpacingBetweenSlices = thickness + gap"),
      note="a gap like Genesis' (ITK adds it to the thickness); dicom3tools copies it raw"),
    F(162, "int16_be",  "round_flag"),
    F(164, "dg_single", "tr_us",        Used("RepetitionTime")),
    F(168, "dg_single", "scan_time_us", Used("AcquisitionDuration")),
    F(172, "dg_single", "te_us",        Used("EchoTime")),
    F(176, "dg_single", "ti_us",        Used("InversionTime")),
    F(180, "dg_single[4]", "other_times"),
    F(196, "int16_be",  "echoes",       Used("EchoTrainLength fallback")),
    F(198, "int16_be",  "echo_number",  To("EchoNumbers", lambda n: n if n > 0 else None)),
    F(200, "int16_be",  "slices_in_group", To("ImagesInAcquisition", lambda n: n if n > 0 else None)),
    F(202, "int16_be",  "averages_int"),
    F(204, "int16_be",  "research_mode"),
    F(206, "char[32]",  "psd_file"),
    F(238, "int16_be[6]", "psd_created"),
    F(250, "int16_be",  "graphically_prescribed"),
    F(252, "char[9]",   "prescribed_series"),
    F(262, "char[9]",   "prescribed_images"),
    F(272, "int16_be",  "image_shape"),
    F(274, "int16_be",  "dim_x",        Used("Columns"),
      note="width (ITK, MNI), not Rows (dicom3tools); the corner distances break ties (notes 13.2)"),
    F(276, "int16_be",  "dim_y",        Used("Rows")),
    F(278, "dg_single", "pixel_size",   Used("PixelSpacing"), note="DG: 40 F0 00 00 = 0.9375 (IEEE misread 7.5)"),
    F(282, "int16_be",  "compressed",   note="must be 0: no technique is documented"),
    F(284, "int16_be",  "bits",         note="often 0; 16 is assumed"),
    F(286, "int16_be",  "window",       Used("WindowWidth if > 0")),
    F(288, "int16_be",  "level",        Used("WindowCenter")),
    F(290, "int16_be",  "blocks_in_file", note="28 + pixel blocks; cross-checked against the size"),
    F(292, "dg_single", "nex",          To("NumberOfAverages", lambda v: v if v > 0 else None)),
    F(296, "dg_single", "sar_peak"),
    F(300, "dg_single", "sar_avg",      To("SAR", lambda v: v if v > 0 else None)),
    F(304, "int16_be",  "sar_monitored"),
    F(306, "int16_be",  "contiguous"),
    F(308, "int16_be",  "heart_rate",   To("HeartRate", lambda n: n if n > 0 else None)),
    F(310, "dg_single", "trigger_delay_ms", Used("TriggerTime")),
    F(314, "int16_be",  "arrhythmia_rejection", To("TriggerWindow", lambda n: n if n > 0 else None)),
    F(316, "int16_be",  "cardiac_rep"),
    F(318, "int16_be",  "images_per_cycle", To("CardiacNumberOfImages", lambda n: n if n > 0 else None)),
    F(320, "int32_be",  "rr_intervals", To("IntervalsAcquired", lambda n: n if n > 0 else None)),
    F(324, "int16_be",  "tx_attenuation"),
    F(326, "int16_be",  "rx_attenuation"),
    F(328, "int32_be",  "field_10ug",   Used("MagneticFieldStrength fallback")),
    F(332, "int16_be",  "image_offset"),
    F(334, "dg_single", "inter_image_delay_ms"),
    F(338, "char[12]",  "psd_name"),
    F(350, "int16_be",  "flip",         To("FlipAngle", lambda n: n if n > 0 else None)),
    F(364, "int16_be",  "extremity_coil"),
    F(394, "dg_single", "center_r"),
    F(398, "dg_single", "center_a"),
    F(402, "dg_single", "center_s"),
    F(406, "dg_single", "normal_r"),
    F(410, "dg_single", "normal_a"),
    F(414, "dg_single", "normal_s"),
    F(418, "dg_single", "tlhc_r",       Used("ImagePositionPatient")),
    F(422, "dg_single", "tlhc_a",       Used("ImagePositionPatient")),
    F(426, "dg_single", "tlhc_s",       Used("ImagePositionPatient")),
    F(430, "dg_single", "trhc_r",       Used("ImageOrientationPatient row")),
    F(434, "dg_single", "trhc_a",       Used("ImageOrientationPatient row")),
    F(438, "dg_single", "trhc_s",       Used("ImageOrientationPatient row")),
    F(442, "dg_single", "blhc_r",       Used("ImageOrientationPatient column"),
      note="bottom-LEFT (Genesis: bottom-right)"),
    F(446, "dg_single", "blhc_a",       Used("ImageOrientationPatient column")),
    F(450, "dg_single", "blhc_s",       Used("ImageOrientationPatient column")),
    F(454, "int16_be",  "disclaimer"),
    F(456, "int16_be",  "min_trigger_delay"),
    F(458, "int16_be",  "cardiac_phases"),
    F(460, "dg_single", "te2_us"),
    F(464, "int16_be",  "swap_requested"),
    F(466, "int16_be",  "pause_interval"),
    F(468, "dg_single", "pause_time"),
    F(472, "int16_be",  "user_cv_mask"),
    F(474, "bytes[40]", "user_cvs",     note="Int16 at a 4-byte stride (dicom3tools) or floats (MIPAV): kept raw"),
    F(514, "int16_be",  "most_like_plane", note="bitmap (dicom3tools) vs enum (MIPAV): not used"),
    F(516, "int16_be",  "contrast_used"),
    F(518, "char[10]",  "contrast_agent"),
    F(528, "dg_single", "contrast_amount"),
    F(532, "int16_be",  "file_format"),
    F(534, "int16_be",  "auto_center_frequency"),
    F(536, "int32_be",  "tx_frequency_hz", To("ImagingFrequency", lambda v: v / 1e6 if v > 0 else None)),
    F(540, "int32_be",  "rx_frequency_hz"),
    F(544, "int32_be[4]", "recommended"),
    F(560, "int16_be",  "histogram_present"),
    F(562, "int16_be",  "swapped",      Used("InPlanePhaseEncodingDirection, AcquisitionMatrix")),
    F(564, "int16_be",  "r1_auto"),
    F(566, "int16_be",  "r2_auto"),
    F(568, "int16_be",  "vbw",          Used("PixelBandwidth"), note="kHz (+/-) like Genesis: UNVERIFIED"),
    F(570, "int16_be",  "r1_manual"),
    F(572, "int16_be",  "r2_manual"),
    F(574, "int16_be",  "prescan_flag"),
    F(576, "int16_be",  "prescan_changed"),
    F(578, "int16_be",  "image_type",   Used("ImageType value 4; signed pixels unless magnitude")),
    F(580, "int16_be",  "vascular_collapse", Used("AngioFlag")),
    F(582, "int16_be",  "thickness_disclaimer"),
    F(584, "int16_be",  "venc"),
    F(586, "dg_single", "projection_angle"),
    F(590, "int16_be",  "concatenated_sat"),
    F(592, "int16_be",  "te_flags",     Used("ScanOptions PFF (revision minor >= 7)")),
    F(594, "int32_be",  "etl",          Used("EchoTrainLength (revision minor >= 7)")),
    F(598, "int16_be",  "phases_per_location"),
    F(600, "int16_be",  "cardiac_phase"),
    F(602, "int16_be",  "acquisitions"),
    F(604, "int16_be",  "vascular_flags"),
    F(606, "dg_single", "venc_scale"),
    F(1022, "int16_be", "checksum"),
])


# --------------------------------------------------------------------------- dates


def signa_year(value: int) -> int | None:
    """The calendar year of a Signa year field (notes 7): the field is year - 1900, and after
    1999 software either kept counting (100, 101 ...) or wrapped (0, 1 ...). Signa 3.x/4.x did
    not exist before the 1980s, so 0-49 can only be a wrapped 20xx. Others are invalid."""
    if value >= 1900:
        return value
    if 50 <= value <= 199:
        return 1900 + value
    if 0 <= value <= 49:
        return 2000 + value
    return None


def signa_datetime(rec: Record) -> tuple[str | None, str | None]:
    """(DA, TM) from a header's day/month/year and hour/minute/second integers."""
    year = signa_year(rec["year"])
    date = time = None
    if year is not None:
        try:
            date = dt.date(year, rec["month"], rec["day"]).strftime("%Y%m%d")
        except ValueError:
            date = None
    if 0 <= rec["hour"] <= 23 and 0 <= rec["minute"] <= 59 and 0 <= rec["second"] <= 59:
        time = f"{rec['hour']:02d}{rec['minute']:02d}{rec['second']:02d}"
    return date, time


def _revision_minor(text: str) -> int:
    m = re.match(r"\s*\d+\.(\d+)", text)
    return int(m.group(1)) if m else 0


# --------------------------------------------------------------------------- decoding


@dataclass
class Headers:
    system: Record
    study: Record
    series: Record
    image: Record


def read_headers(data: bytes) -> Headers:
    for base, ident in _IDENTIFIERS:
        if data[base:base + 14] != ident:
            raise DecodeError(f"missing {ident.decode().strip()!r} identifier", field="identifier", offset=base)
    return Headers(SYSTEM.read(data, 0), STUDY.read(data, STUDY_BASE), SERIES.read(data, SERIES_BASE),
                   IMAGE.read(data, IMAGE_BASE))


def _shape(data: bytes, h: Headers, notes: list[str]) -> tuple[int, int]:
    """(rows, cols): dim_y x dim_x, checked against the file size and, for non-square
    images, against the corner distances (the only evidence of which dimension is the width)."""
    image = h.image
    dim_x, dim_y = image["dim_x"], image["dim_y"]
    image_bytes(Dimension(dim_x, "dim_x", image.offset("dim_x")), Dimension(dim_y, "dim_y", image.offset("dim_y")), 16)
    need = HEADER_SIZE + 2 * dim_x * dim_y
    if len(data) != need:
        raise image.error("dim_x", f"{dim_x} x {dim_y} pixels need a {need}-byte file, this one has {len(data)} bytes")
    rows, cols = dim_y, dim_x
    size = image["pixel_size"]
    if dim_x != dim_y and finite(size) and size > 0:
        width = _distance(image, "trhc", "tlhc") / size
        height = _distance(image, "blhc", "tlhc") / size
        if abs(width - dim_y) + abs(height - dim_x) < abs(width - dim_x) + abs(height - dim_y):
            rows, cols = dim_x, dim_y
            notes.append(f"corners measure {width:.1f} x {height:.1f} pixels: X dimension taken as the height")
    return rows, cols


def _distance(image: Record, a: str, b: str) -> float:
    try:
        return math.dist([image[f"{a}_{c}"] for c in "ras"], [image[f"{b}_{c}"] for c in "ras"])
    except (TypeError, ValueError):
        return float("nan")


def decode_pixels(data: bytes, h: Headers, rows: int, cols: int) -> np.ndarray:
    if h.image["compressed"] != 0:
        raise h.image.error("compressed", f"compression technique {h.image['compressed']} is not documented")
    if h.image["bits"] not in (0, 16) and h.image["bits"] > 0:
        raise h.image.error("bits", f"{h.image['bits']} bits per pixel: only 16 is supported")
    return np.frombuffer(data, dtype=">u2", count=rows * cols, offset=HEADER_SIZE).reshape(rows, cols)


class Signa4xDecoder(Signa4xFormat):
    def length(self, data: bytes) -> int | None:
        """The 14336-byte header plus the pixels its image header counts (registry contract)."""
        if not self.identify(data):
            return None
        if len(data) < IMAGE_BASE + IMAGE.size:
            return IMAGE_BASE + IMAGE.size
        try:
            image = IMAGE.read(data, IMAGE_BASE)
        except DecodeError:
            return None
        dim_x, dim_y = image["dim_x"], image["dim_y"]
        if not plausible(dim_y, dim_x):
            return None
        return HEADER_SIZE + 2 * dim_x * dim_y

    def decode(self, data: bytes) -> Decoded:
        h = read_headers(data)
        notes: list[str] = []
        rows, cols = _shape(data, h, notes)
        words = decode_pixels(data, h, rows, cols)
        ds = Dataset()
        for rec in (h.system, h.study, h.series, h.image):
            rec.table.apply(rec, ds)
        _map(ds, h, words, notes)
        return Decoded(dataset=ds, format=self.name, identity=_identity(h),
                       vendor_header=bytes(data[:HEADER_SIZE]), notes=notes)

    def dump(self, data: bytes) -> list[DumpRow]:
        return (SYSTEM.dump(data, 0) + STUDY.dump(data, STUDY_BASE) + SERIES.dump(data, SERIES_BASE)
                + IMAGE.dump(data, IMAGE_BASE))


# --------------------------------------------------------------------------- DICOM mapping

# Signa pulse sequence -> (ScanningSequence, SequenceVariant), notes 8 (dicom3tools), except
# 2 "PS" (partial saturation), which is no DICOM term: a short-TR spin echo, so SE.
_SEQUENCES: dict[int, tuple[list[str], list[str]]] = {
    0: (["SE"], []), 1: (["IR"], []), 2: (["SE"], []), 3: (["RM"], []), 4: (["RM"], []),
    5: (["GR"], []), 7: (["GR"], []), 8: (["GR"], []), 11: (["GR"], []), 12: (["GR"], []),
    6: (["SE"], []), 9: (["IR"], []), 10: (["IR"], []),
    13: (["GR"], ["SP"]), 15: (["GR"], ["SP"]), 16: (["GR"], ["SP"]),
    14: (["GR"], ["TRSS"]),
    17: (["SE"], ["SK"]), 18: (["SE"], ["SK"]),
    19: (["GR"], ["SP", "SK"]), 21: (["GR"], ["SP", "SK"]),
    20: (["GR"], ["SK"]), 22: (["GR"], ["SK"]),
    23: (["IR"], ["SK"]),
}


def _map(ds: Dataset, h: Headers, words: np.ndarray, notes: list[str]) -> None:
    study, series, image = h.study, h.series, h.image
    put(ds, "Modality", "MR")
    put(ds, "SOPClassUID", MR_IMAGE_STORAGE)
    put(ds, "Manufacturer", MANUFACTURER)
    # Laterality is 2C (paired body parts); GE headers name no side and no body part, so
    # the side is unknown: present and empty, as dciodvfy then requires.
    put(ds, "Laterality", None)
    put(ds, "ManufacturerModelName", "Signa")
    if not ds.get("InstitutionName") and h.system["hospital"]:
        set_value(ds, "InstitutionName", h.system["hospital"])

    for prefixes, rec in ((("Study",), study), (("Series",), series), (("Acquisition", "Content"), image)):
        date, time = signa_datetime(rec)
        if date is None and rec["year"] not in (0,) and not (80 <= rec["year"] <= 130):
            notes.append(f"{rec.table.name}: year field {rec['year']} gives no valid date")
        for prefix in prefixes:
            set_value(ds, f"{prefix}Date", date)
            set_value(ds, f"{prefix}Time", time)

    _map_patient(ds, study)
    entry = {0: "HF", 1: "FF"}.get(series["position"])
    lying = {0: "S", 1: "P", 2: "DL", 3: "DR"}.get(series["orientation"])
    if entry and lying:
        put(ds, "PatientPosition", entry + lying)
    _map_geometry(ds, image, words.shape, notes)
    _map_pixels(ds, image, words)
    _map_mr(ds, series, image)


def _map_patient(ds: Dataset, study: Record) -> None:
    m = re.match(r"\s*(\d{1,3})\s*([DWMYdwmy]?)", study["age"])
    if m and int(m.group(1)) > 0:
        put(ds, "PatientAge", f"{int(m.group(1)):03d}{(m.group(2) or 'Y').upper()}")
    set_value(ds, "PatientSex", study["sex"].upper() if study["sex"].upper() in ("M", "F") else None)
    if study["weight_g"] > 0:
        put(ds, "PatientWeight", ds_number(study["weight_g"] / 1000))


def _map_geometry(ds: Dataset, image: Record, shape: tuple[int, int], notes: list[str]) -> None:
    rows, cols = shape
    size = image["pixel_size"]
    if not (finite(size) and 0 < size < 1e4):
        raise image.error("pixel_size", f"pixel size {size} mm is not plausible")
    corner = {c: (image[f"{c}_r"], image[f"{c}_a"], image[f"{c}_s"]) for c in ("tlhc", "trhc", "blhc")}
    plane = plane_from_corners(corner["tlhc"], corner["trhc"], corner["blhc"], "blhc", rows, cols,
                               row_spacing=size, column_spacing=size, field="tlhc_r", offset=image.offset("tlhc_r"))
    notes.append(f"corners {'are image edges' if plane.corners_are_edges else 'are pixel centres'}: "
                 f"extents {plane.row_extent_mm:.3f} x {plane.column_extent_mm:.3f} mm for "
                 f"{cols} x {rows} pixels of {size} mm")
    put_plane(ds, plane, size, size)
    thickness, gap = image["thickness"], image["spacing_gap"]
    if finite(thickness, gap) and thickness > 0 and thickness + gap > 0:
        put(ds, "SpacingBetweenSlices", ds_number(thickness + gap))


def _map_pixels(ds: Dataset, image: Record, words: np.ndarray) -> None:
    """Magnitude images are unsigned (a magnitude cannot be negative); phase, real and
    imaginary images are signed two's complement, as ITK reads every Signa word. 16 bits are
    always stored: dicom3tools' 12 would silently drop bits 12-15 (notes 5)."""
    signed = image["image_type"] in (1, 2, 3)
    put_image_pixel(ds, *words.shape, words.astype("<u2").tobytes(), signed=signed)
    if image["window"] > 0:
        put(ds, "WindowCenter", ds_number(image["level"]))
        put(ds, "WindowWidth", ds_number(image["window"]))


def _map_mr(ds: Dataset, series: Record, image: Record) -> None:
    gauss = series["gauss"]
    if gauss > 0:
        put(ds, "MagneticFieldStrength", ds_number(gauss / 10000))
    elif image["field_10ug"] > 0:
        put(ds, "MagneticFieldStrength", ds_number(image["field_10ug"] / 1e9))
    scanning, variant = (list(v) for v in _SEQUENCES.get(series["pulse_sequence"], ([], [])))
    series_minor, image_minor = _revision_minor(series["revision"]), _revision_minor(image["revision"])
    if series_minor >= 7 and series["prep_flags"] & 3:
        variant.append("MP")
        if series["prep_flags"] & 1 and "IR" not in scanning:
            scanning.append("IR")
    gating = series["gating"]
    if gating & (1 << 7):
        variant.append("OSP")
    put(ds, "ScanningSequence", scanning or ["RM"])
    put(ds, "SequenceVariant", variant or ["NONE"])
    options = [name for bit, name in ((0, "CG"), (1, "RG"), (2, "PER"), (3, "FC"), (6, "PPG")) if gating & (1 << bit)]
    if gating & (1 << 5) or series["sat_bits"]:
        options.append("SP")
    if series["suppression"] == 1:
        options.append("FS")
    if image_minor >= 7 and image["te_flags"] & 1:
        options.append("PFF")
    put(ds, "ScanOptions", options or None)
    set_value(ds, "MRAcquisitionType", {0: "2D", 1: "2D", 2: "3D"}.get(series["image_mode"]))
    for keyword, name in (("RepetitionTime", "tr_us"), ("EchoTime", "te_us")):
        if finite(image[name]) and image[name] > 0:
            put(ds, keyword, ds_number(image[name] / 1000))
    if "IR" in ds.ScanningSequence:  # type 2C: present (empty if unknown) exactly for IR
        ti = image["ti_us"]
        put(ds, "InversionTime", ds_number(ti / 1000) if finite(ti) and ti > 0 else None)
    if finite(image["scan_time_us"]) and image["scan_time_us"] > 0:
        put(ds, "AcquisitionDuration", float(image["scan_time_us"]) / 1e6)
    etl = image["etl"] if image_minor >= 7 and image["etl"] > 0 else image["echoes"]
    if 0 < etl < 65536:
        put(ds, "EchoTrainLength", etl)
    if "CG" in options:
        delay = image["trigger_delay_ms"]
        put(ds, "TriggerTime", ds_number(delay if finite(delay) and delay >= 0 else 0))
    x, y = series["scan_matrix_x"], series["scan_matrix_y"]
    swapped = image["swapped"] != 0
    if 0 < x < 65536 and 0 < y < 65536:
        put(ds, "AcquisitionMatrix", [x, 0, 0, y] if swapped else [0, x, y, 0])
        put(ds, "NumberOfPhaseEncodingSteps", y)
        if image["vbw"] > 0:
            put(ds, "PixelBandwidth", ds_number(2000 * image["vbw"] / x))
    put(ds, "InPlanePhaseEncodingDirection", "COL" if swapped else "ROW")
    if series["vascular_mode"] != 0:
        put(ds, "AngioFlag", "Y" if image["vascular_collapse"] == 0 else "N")
    put(ds, "ImageType",
        ["ORIGINAL", "PRIMARY", "OTHER"] if series["series_type"] == 0 else ["DERIVED", "PRIMARY", "OTHER"])
    if image["image_type"] in (1, 2, 3):  # value 4 is implementation specific in the MR Image module
        put(ds, "ImageType", [*ds.ImageType, {1: "PHASE", 2: "REAL", 3: "IMAGINARY"}[image["image_type"]]])


def _identity(h: Headers) -> dict[str, tuple[str, ...]]:
    """Vendor identity (no UIDs exist in Signa 4.x): system id, study number and date/time;
    + series number and date/time; + image number and date/time; + landmark counter."""
    study, series, image = h.study, h.series, h.image
    stamp = lambda r: "/".join(str(r[k]) for k in ("year", "month", "day", "hour", "minute", "second"))  # noqa: E731
    study_id = ("ge-signa4x", h.system["system_id"], study["raw_system_id"], study["study_number"], stamp(study))
    series_id = study_id + (series["series_number"], stamp(series))
    return {
        "study": study_id,
        "series": series_id,
        "instance": series_id + (image["image_number"], stamp(image), str(image["location"])),
        "frame_of_reference": study_id + ("landmark", str(series["landmark_counter"])),
    }
