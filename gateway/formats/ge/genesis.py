"""GE Genesis image files (Signa 5.x MR, HiSpeed/Advantage CT, Advantage Windows) to DICOM.

Format facts, sources and the evidence for every decision: shared/formats/ge-genesis.md
(cited as "notes 5.4" etc.). A Genesis file is an IMGF pixel header plus four database
headers (suite, exam, series, MR or CT image), then the pixels, in one of these layouts
(notes 2): ximg export (IMGF at 0, headers found through its pointer table), the DAT/tape
file (headers first, IMGF at 3180, a 4-byte length before the pixels), Advantage Windows
(IMGF at 3228 for MR / 3240 for CT, padded headers first), a "GEMS" prefix, and IMGF
headers without pointers (fixed padded offsets). Headers come in a packed (byte-aligned)
and a padded (C-aligned) layout; the header lengths decide which, never the IMGF version.
Not supported: headerless files (notes 2 variant F), which no content rule identifies safely.

Every header is a field table below (pk and pd offsets on one line); the decoder follows
pointers, checks them against the data, decodes the pixels (gateway.formats.ge.pixels) and
maps the fields to an MR or CT instance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from gateway.dicom.iods import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE
from gateway.dicom.limits import plausible
from gateway.dicom.pixels import Dimension, image_bytes, put_image_pixel
from gateway.dicom.uids import is_valid_uid
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.engine.fieldtable import (
    Elements,
    F,
    FieldType,
    Record,
    Table,
    To,
    Used,
    ds_number,
    finite,
    put,
    register_type,
    set_value,
)
from gateway.formats.ge import pixels as ge_pixels
from gateway.formats.ge.geometry import plane_from_corners, put_plane
from gateway.formats.ge.recognise import GenesisFormat
from gateway.formats.ge.recognise import find_imgf as _find_imgf

MANUFACTURER = "GE MEDICAL SYSTEMS"  # as GE's own DICOM writes it


# --------------------------------------------------------------------------- a GE field type


def unpack_ge_uid(raw: bytes) -> str | None:
    """GE's packed UID (notes 11): two characters a byte, high nibble first; nibble 1-10 is
    a digit (value - 1), 11 is '.', 0 ends the string. Text UIDs (digits, dots, NULs) are
    taken as they are. Returns None for anything else; validity is checked by the caller."""
    if not raw.translate(None, _TEXT_UID_BYTES):
        return raw.split(b"\0", 1)[0].decode("ascii")
    nibbles = raw.hex().split("0", 1)[0]  # hex digits are the nibbles; "0" ends the string
    if any(c in nibbles for c in "cdef"):  # nibbles 12-15 mean nothing
        return None
    return nibbles.translate(_UID_NIBBLES)


_TEXT_UID_BYTES = b"0123456789.\0"
_UID_NIBBLES = str.maketrans("123456789ab", "012345678" + "9.")


def pack_ge_uid(uid: str, size: int, pad: bytes = b"\0") -> bytes:
    """``unpack_ge_uid``'s inverse (simulators): digit d -> nibble d + 1, '.' -> 11, zero
    nibbles after the end, in ``size`` bytes. ValueError for anything it would not read back
    (not digits and dots, too long, or packed bytes that all look like text)."""
    if not isinstance(uid, str) or uid.strip("0123456789."):
        raise ValueError(f"{uid!r} is not a UID of digits and dots")
    if len(uid) > 2 * size:
        raise ValueError(f"UID of {len(uid)} characters does not pack into {size} bytes")
    raw = bytes.fromhex(uid.translate(_UID_PACK).ljust(2 * size, "0"))
    if uid and not raw.translate(None, _TEXT_UID_BYTES):
        raise ValueError(f"packed {uid!r} would read as text")
    return raw


_UID_PACK = str.maketrans("0123456789.", "123456789ab")


register_type(FieldType("ge_uid", None, unpack_ge_uid, repr, write=pack_ge_uid))


# --------------------------------------------------------------------------- field tables
# Each line: packed offset, padded offset (None: not in the padded layout), type, name,
# DICOM target, decision note. Offsets are relative to the header start (notes 4-5).

@dataclass(frozen=True)
class R:
    """One header field in both layouts: packed and padded offset, type, name, target, note."""

    pk: int
    pd: int | None
    type: str
    name: str
    target: Any = None
    note: str = ""


def _tables(name: str, rows: list[R], pk_size: int, pd_size: int) -> tuple[Table, Table]:
    """The packed and the padded table of one header, from the same lines."""
    packed = Table(f"{name} (packed)", [F(r.pk, r.type, r.name, r.target, note=r.note) for r in rows], size=pk_size)
    padded = Table(f"{name} (padded)", [F(r.pd, r.type, r.name, r.target, note=r.note) for r in rows
                                        if r.pd is not None], size=pd_size)
    return packed, padded


IMGF = Table("IMGF", size=156, fields=[
    F(0,   "char[4]",  "magic"),
    F(4,   "int32_be", "hdr_length",  note="offset of the pixels from the IMGF start"),
    F(8,   "int32_be", "width",       note="Columns; preferred over the image-header matrix (notes 7.1)"),
    F(12,  "int32_be", "height",      note="Rows"),
    F(16,  "int32_be", "depth"),
    F(20,  "int32_be", "compress",    note="0/1 raster, 2 packed, 3 DPCM, 4 DPCM+packed (notes 7.2)"),
    F(24,  "int32_be", "dwindow",     Used("WindowWidth if > 0"), note="0 in both real files: then no window"),
    F(28,  "int32_be", "dlevel",      Used("WindowCenter")),
    F(32,  "int32_be", "bgshade"),
    F(36,  "int32_be", "ovrflow"),
    F(40,  "int32_be", "undflow"),
    F(44,  "int32_be", "top_offset"),
    F(48,  "int32_be", "bot_offset"),
    F(52,  "int16_be", "version",     note="does NOT select the layout: a real version-2 file has pointers (notes 2)"),
    F(54,  "uint16_be", "checksum",   note="algorithm unknown, 0 in real files: not validated"),
    F(56,  "int32_be", "p_id"),
    F(60,  "int32_be", "l_id"),
    F(64,  "int32_be", "p_unpack",    note="line map for codes 2/4, relative to the IMGF start"),
    F(68,  "int32_be", "l_unpack"),
    F(72,  "int32_be", "p_compress",  note="strip offsets; not needed to decode"),
    F(76,  "int32_be", "l_compress"),
    F(80,  "int32_be", "p_histo",     note="histogram min/max can be stale (notes 4): not used"),
    F(84,  "int32_be", "l_histo"),
    F(88,  "int32_be", "p_text"),
    F(92,  "int32_be", "l_text"),
    F(96,  "int32_be", "p_graphics"),
    F(100, "int32_be", "l_graphics"),
    F(104, "int32_be", "p_dbhdr"),
    F(108, "int32_be", "l_dbhdr"),
    F(112, "int32_be", "level_offset", Used("RescaleIntercept (CT)")),
    F(116, "int32_be", "p_user"),
    F(120, "int32_be", "l_user"),
    F(124, "int32_be", "p_suite",     note="DB-header pointers: only in ximg/GEMS files; garbage in DAT files"),
    F(128, "int32_be", "l_suite"),
    F(132, "int32_be", "p_exam"),
    F(136, "int32_be", "l_exam",      note="1024 packed / 1040 padded: selects the layout (notes 2 step 6)"),
    F(140, "int32_be", "p_series"),
    F(144, "int32_be", "l_series"),
    F(148, "int32_be", "p_image"),
    F(152, "int32_be", "l_image"),
])

SUITE_PK, SUITE_PD = _tables("suite", [
    R(0,  0,  "char[4]",  "suite_id"),
    R(4,  4,  "int16_be", "make_unique"),
    R(6,  6,  "char[1]",  "disk_id"),
    R(7,  7,  "char[13]", "product_id", "ManufacturerModelName"),
    R(20, 20, "char[2]",  "version_created"),
    R(22, 22, "char[2]",  "version_current"),
    R(24, 24, "uint32_be", "checksum"),
], 114, 116)

EXAM_PK, EXAM_PD = _tables("exam", [
    R(0,   0,   "char[4]",   "suite_id",        "StationName", "dicom3tools' choice: the suite names the console"),
    R(8,   8,   "uint16_be", "exam_number",     "StudyID"),
    R(10,  10,  "char[33]",  "hospital",        "InstitutionName"),
    R(44,  44,  "int16_be",  "detector_type"),
    R(46,  48,  "int32_be",  "detector_cells"),
    R(50,  52,  "float32_be", "cell_theta"),
    R(54,  56,  "float32_be", "cell_spacing"),
    R(58,  60,  "float32_be", "source_detector_mm", Used("DistanceSourceToDetector (CT)")),
    R(62,  64,  "float32_be", "source_iso_mm",  Used("DistanceSourceToPatient (CT)")),
    R(66,  68,  "int16_be",  "tube_type"),
    R(80,  84,  "int32_be",  "magnet_gauss",    Used("MagneticFieldStrength (MR)")),
    R(84,  88,  "char[13]",  "patient_id",      "PatientID"),
    R(97,  101, "char[25]",  "patient_name",    "PatientName"),
    R(122, 126, "int16_be",  "age",             Used("PatientAge"),
      "0 = not entered (both real files): empty, not 000Y"),
    R(124, 128, "int16_be",  "age_units",       Used("PatientAge")),
    R(126, 130, "int16_be",  "sex",             Used("PatientSex")),
    R(128, 132, "int32_be",  "weight_g",        Used("PatientWeight")),
    R(132, 136, "int16_be",  "trauma"),
    R(134, 138, "char[61]",  "history",         "AdditionalPatientHistory"),
    R(195, 199, "char[13]",  "requisition"),
    R(208, 212, "unix_time_be", "exam_time",    Used("StudyDate, StudyTime"),
      "seconds broken down as UTC, no zone (notes 10)"),
    R(212, 216, "char[33]",  "referring",       "ReferringPhysicianName"),
    R(245, 249, "char[33]",  "radiologist",     "NameOfPhysiciansReadingStudy",
     "the reading radiologist; dicom3tools' PerformingPhysicianName would name the wrong role"),
    R(278, 282, "char[4]",   "operator",        "OperatorsName"),
    R(282, 286, "char[23]",  "description",     "StudyDescription"),
    R(305, 309, "char[3]",   "exam_type",       Used("Modality; selects the MR or CT image header")),
    R(308, 312, "int16_be",  "exam_format"),
    R(310, 320, "float64_be", "first_axial_time"),
    R(318, 328, "char[9]",   "creator"),
    R(328, 340, "unix_time_be", "last_change"),
    R(352, 364, "char[2]",   "genesis_created"),
    R(354, 366, "char[2]",   "genesis_current"),
    R(436, 448, "int16_be",  "patient_status"),
    R(438, 450, "char[16]",  "system_id",       "DeviceSerialNumber"),
    R(454, 466, "char[16]",  "service_id"),
    R(470, 482, "char[4]",   "mobile_location"),
    R(474, 486, "ge_uid[32]", "study_uid",      Used("StudyInstanceUID if valid"),
      "packed nibbles, confirmed on real files (notes 11)"),
], 1024, 1040)

SERIES_PK, SERIES_PD = _tables("series", [
    R(8,   8,   "uint16_be", "exam_number"),
    R(10,  10,  "int16_be",  "series_number",   "SeriesNumber"),
    R(12,  12,  "unix_time_be", "alloc_time",   Used("SeriesDate, SeriesTime")),
    R(16,  16,  "unix_time_be", "actual_time"),
    R(20,  20,  "char[30]",  "description",     "SeriesDescription"),
    R(68,  68,  "int16_be",  "series_type",     Used("ImageType")),
    R(72,  72,  "int16_be",  "plane"),
    R(74,  74,  "int16_be",  "ct_scan_type"),
    R(76,  76,  "int32_be",  "position",        Used("PatientPosition")),
    R(80,  80,  "int32_be",  "entry",           Used("PatientPosition")),
    R(84,  84,  "char[3]",   "anatomical_ref",  "PositionReferenceIndicator"),
    R(88,  88,  "float32_be", "horizontal_landmark"),
    R(92,  92,  "char[25]",  "protocol",        "ProtocolName"),
    R(118, 118, "int16_be",  "contrast"),
    R(120, 120, "char[1]",   "start_ras"),
    R(122, 124, "float32_be", "start_loc",      note="signed RAS; the letter only names the side"),
    R(126, 128, "char[1]",   "end_ras"),
    R(128, 132, "float32_be", "end_loc"),
    R(136, 140, "int32_be",  "landmark_counter", Used("frame of reference identity")),
    R(140, 144, "int16_be",  "acquisitions",    To("ImagesInAcquisition", lambda n: n if n > 0 else None)),
    R(150, 156, "unix_time_be", "last_change"),
    R(336, 344, "ge_uid[32]", "series_uid",     Used("SeriesInstanceUID if valid")),
    R(368, 376, "ge_uid[32]", "landmark_uid",   Used("FrameOfReferenceUID if valid")),
    R(400, 408, "ge_uid[32]", "equipment_uid"),
], 1020, 1028)

# Bytes 0-189 are the same in the MR and the CT image header (notes 5.6).
_IMAGE_COMMON = [
    R(8,   8,   "uint16_be", "exam_number"),
    R(10,  10,  "int16_be",  "series_number"),
    R(12,  12,  "int16_be",  "image_number",    "InstanceNumber"),
    R(14,  16,  "unix_time_be", "alloc_time",   Used("AcquisitionDate, AcquisitionTime")),
    R(18,  20,  "unix_time_be", "actual_time",  Used("ContentDate, ContentTime"),
     "not the last-change stamp dicom3tools uses: that is a database edit time (notes 10)"),
    R(22,  24,  "float32_be", "scan_duration_us", Used("AcquisitionDuration"),
      "microseconds despite the 'secs' label (notes 5.4)"),
    R(26,  28,  "float32_be", "thickness",      "SliceThickness"),
    R(30,  32,  "int16_be",  "matrix_x"),
    R(32,  34,  "int16_be",  "matrix_y"),
    R(34,  36,  "float32_be", "dfov_x",         Used("ReconstructionDiameter = max(x, y)")),
    R(38,  40,  "float32_be", "dfov_y"),
    R(42,  44,  "float32_be", "dim_x",          Used("AcquisitionMatrix (MR)")),
    R(46,  48,  "float32_be", "dim_y",          Used("AcquisitionMatrix, NumberOfPhaseEncodingSteps (MR)")),
    R(50,  52,  "float32_be", "pixsize_x",      Used("PixelSpacing[1]"),
      "DICOM order is row spacing (Y) first (notes 8)"),
    R(54,  56,  "float32_be", "pixsize_y",      Used("PixelSpacing[0]")),
    R(72,  74,  "char[17]",  "iv_contrast",     Used("ContrastBolusAgent")),
    R(89,  91,  "char[17]",  "oral_contrast",   Used("ContrastBolusAgent")),
    R(106, 108, "int16_be",  "contrast_mode",   Used("ContrastBolusRoute")),
    R(114, 116, "int16_be",  "plane"),
    R(116, 120, "float32_be", "spacing_gap",    Used("SpacingBetweenSlices = thickness + gap"),
     "the gap, not the pitch: real slice locations step by thickness + gap (notes 5.4)"),
    R(120, 124, "int16_be",  "db_compression",  note="scanner storage; never used for the pixels"),
    R(124, 128, "char[1]",   "loc_ras"),
    R(126, 132, "float32_be", "location",       "SliceLocation"),
    R(130, 136, "float32_be", "ctr_r"),
    R(134, 140, "float32_be", "ctr_a"),
    R(138, 144, "float32_be", "ctr_s"),
    R(142, 148, "float32_be", "norm_r"),
    R(146, 152, "float32_be", "norm_a"),
    R(150, 156, "float32_be", "norm_s"),
    R(154, 160, "float32_be", "tlhc_r",         Used("ImagePositionPatient")),
    R(158, 164, "float32_be", "tlhc_a",         Used("ImagePositionPatient")),
    R(162, 168, "float32_be", "tlhc_s",         Used("ImagePositionPatient")),
    R(166, 172, "float32_be", "trhc_r",         Used("ImageOrientationPatient")),
    R(170, 176, "float32_be", "trhc_a",         Used("ImageOrientationPatient")),
    R(174, 180, "float32_be", "trhc_s",         Used("ImageOrientationPatient")),
    R(178, 184, "float32_be", "brhc_r",         Used("ImageOrientationPatient")),
    R(182, 188, "float32_be", "brhc_a",         Used("ImageOrientationPatient")),
    R(186, 192, "float32_be", "brhc_s",         Used("ImageOrientationPatient")),
]

MR_PK, MR_PD = _tables("MR image", _IMAGE_COMMON + [
    R(194, 200, "int32_be",  "tr_us",           Used("RepetitionTime")),
    R(198, 204, "int32_be",  "ti_us",           Used("InversionTime")),
    R(202, 208, "int32_be",  "te_us",           Used("EchoTime")),
    R(206, 212, "int32_be",  "te2_us"),
    R(210, 216, "int16_be",  "echoes",          Used("EchoTrainLength fallback")),
    R(212, 218, "int16_be",  "echo_number",     To("EchoNumbers", lambda n: n if n > 0 else None)),
    R(218, 224, "float32_be", "nex",            To("NumberOfAverages", lambda v: v if v > 0 else None)),
    R(224, 230, "int16_be",  "heart_rate",      To("HeartRate", lambda n: n if n > 0 else None)),
    R(226, 232, "int32_be",  "trigger_delay",   Used("TriggerTime")),
    R(230, 236, "float32_be", "sar_avg",        To("SAR", lambda v: v if v > 0 else None)),
    R(234, 240, "float32_be", "sar_peak"),
    R(240, 246, "int16_be",  "trigger_window",  To("TriggerWindow", lambda n: n if n > 0 else None)),
    R(246, 252, "int16_be",  "cardiac_images",  To("CardiacNumberOfImages", lambda n: n if n > 0 else None)),
    R(254, 260, "int16_be",  "flip",            To("FlipAngle", lambda n: n if n > 0 else None)),
    R(262, 270, "int16_be",  "swap"),
    R(278, 288, "int32_be",  "xmtfreq",         To("ImagingFrequency", lambda v: v / 1e7 if v > 0 else None),
      "0.1 Hz units"),
    R(298, 310, "int16_be",  "imode",           Used("MRAcquisitionType"),
      "1-based enum (1 = 2D), confirmed by real files"),
    R(300, 312, "int32_be",  "iopt",            Used("ScanOptions")),
    R(304, 316, "int16_be",  "pseq",            Used("ScanningSequence, SequenceVariant")),
    R(306, 318, "int16_be",  "psd_mode"),
    R(308, 320, "char[33]",  "psd_name",        "SequenceName"),
    R(342, 356, "unix_time_be", "psd_time"),
    R(360, 374, "int16_be",  "coil_type"),
    R(362, 376, "char[17]",  "coil_name",       "ReceiveCoilName"),
    R(384, 400, "int32_be",  "run_number",      "AcquisitionNumber",
      "pd 400 (gaw.tpl, MIPAV) not SIVIC's 402 (notes 14.2)"),
    R(388, 404, "uint32_be", "cal_field"),
    R(392, 408, "int16_be",  "suppression",     Used("ScanOptions FS/WS")),
    R(394, 412, "float32_be", "vbw_khz",        Used("PixelBandwidth"), "half bandwidth in kHz (notes 5.4)"),
    R(398, 416, "int16_be",  "slquant"),
    R(520, 540, "unix_time_be", "last_change"),
    R(552, 572, "int16_be",  "sat_bits",        Used("ScanOptions SP")),
    R(554, 574, "int16_be",  "scic"),
    R(574, 594, "int16_be",  "flow_axis"),
    R(584, 604, "int16_be",  "image_type",      Used("ImageType value 4 (phase, real, imaginary)")),
    R(586, 606, "int16_be",  "vascular_collapse", Used("AngioFlag")),
    R(596, 616, "int16_be",  "projection_alg",  Used("AngioFlag")),
    R(640, 660, "int16_be",  "etl",             Used("EchoTrainLength")),
    R(642, 662, "int16_be",  "frac_echo",       Used("ScanOptions PFF")),
    R(644, 664, "int16_be",  "prep_pulse",      Used("SequenceVariant MP")),
    R(646, 666, "int16_be",  "cardiac_phase"),
    R(652, 672, "uint16_be", "window"),
    R(654, 674, "int16_be",  "level"),
    R(736, 756, "int16_be",  "integrity"),
    R(742, 764, "int16_be",  "freq_dir",        Used("InPlanePhaseEncodingDirection"),
      "pd 764 (gaw.tpl, MIPAV) not SIVIC's 750"),
    R(744, 766, "int16_be",  "vascular_mode"),
    R(746, 768, "ge_uid[32]", "image_uid",      Used("SOPInstanceUID if valid")),
    R(778, 800, "ge_uid[32]", "sop_class_uid",  note="all zero in real files; the SOP class follows the exam type"),
], 1022, 1044)

CT_PK, CT_PD = _tables("CT image", _IMAGE_COMMON + [
    R(194, None, "float32_be", "table_start"),
    R(198, None, "float32_be", "table_end"),
    R(202, None, "float32_be", "table_speed"),
    R(206, None, "float32_be", "table_height",  "TableHeight"),
    R(216, 224,  "int32_be",  "kv",             To("KVP", lambda v: v if v > 0 else None)),
    R(220, 228,  "int32_be",  "ma",             To("XRayTubeCurrent", lambda v: v if v > 0 else None)),
    R(224, 232,  "float32_be", "tilt",          "GantryDetectorTilt"),
    R(312, None, "int16_be",  "filter",         Used("FilterType")),
    R(314, None, "int16_be",  "algorithm",      Used("ConvolutionKernel")),
    R(332, 344,  "float32_be", "sfov",          To("DataCollectionDiameter", lambda v: v if v > 0 else None)),
    R(336, None, "int16_be",  "scan_number",    "AcquisitionNumber"),
    R(498, None, "int16_be",  "rotation",       Used("RotationDirection")),
    R(554, 580,  "unix_time_be", "last_change"),
    R(724, 756,  "ge_uid[32]", "image_uid",     Used("SOPInstanceUID if valid")),
    R(756, 788,  "ge_uid[32]", "sop_class_uid"),
], 1020, 1056)

_LAYOUTS = {  # (exam, series, MR image, CT image) lengths -> packed?
    (1024, 1020): True,
    (1040, 1028): False,
}
_IMAGE_LENGTHS = {(True, "MR"): 1022, (True, "CT"): 1020, (False, "MR"): 1044, (False, "CT"): 1056}


# --------------------------------------------------------------------------- layout


@dataclass
class Layout:
    """Where everything is in one file (absolute offsets)."""

    variant: str
    imgf: int
    suite: int
    exam: int
    series: int
    image: int
    packed: bool
    pixels: int
    stream_limit: int  # end of the pixel area
    notes: list[str] = field(default_factory=list)


def _resolve(data: bytes, imgf: Record) -> Layout:
    """Follow the IMGF header to the four DB headers and the pixels (notes 2)."""
    variant, base = _find_imgf(data)  # type: ignore[misc]
    n = len(data)
    hdr_length = imgf["hdr_length"]
    if hdr_length < 124 or base + hdr_length > n:
        raise imgf.error("hdr_length", f"pixel offset {hdr_length} lies outside the {n}-byte file")
    if variant == "dat":
        # First tape record: packed suite/exam/series/image at fixed offsets; the IMGF DB
        # pointers are garbage; a 4-byte pixel byte count precedes the pixels (notes 2 C).
        pixels = base + hdr_length + 4
        if pixels > n:
            raise imgf.error("hdr_length", "no room for the pixel byte count after the header")
        count = int.from_bytes(data[pixels - 4:pixels], "big", signed=True)
        limit = pixels + count if 0 < count <= n - pixels else n
        lay = Layout(variant, base, 0, 114, 1138, 2158, True, pixels, limit)
        if limit == n and count != n - pixels:
            lay.notes.append(f"DAT pixel byte count {count} does not fit the {n - pixels} bytes present; ignored")
        return lay
    if variant == "aw":
        # Advantage Windows: padded headers at fixed offsets, pixels at IMGF + hdr_length
        # (dicom3tools and SIVIC; MIPAV's 8 bytes earlier is not followed, notes 14.1).
        return Layout(variant, base, 0, 116, 1156, 2184, False, base + hdr_length, n)
    pointers = [(imgf[f"p_{h}"], imgf[f"l_{h}"], h) for h in ("exam", "series", "image")]
    bad = [(p, ln, h) for p, ln, h in pointers if p <= 0 or ln <= 0 or base + p + ln > n]
    if bad:
        # No usable DB pointers. ITK/SIVIC's "version 2" IMGF is 124 bytes long and followed
        # by padded headers at fixed offsets (so its "pointers" are suite-header bytes). Used
        # only when the exam type is where that layout puts it: never assumed (notes 2 B).
        if data[base + 240 + 309:base + 240 + 311] in (b"MR", b"CT") and base + 2308 + 1044 <= n:
            return Layout("fixed", base, base + 124, base + 240, base + 1280, base + 2308, False,
                          base + hdr_length, n, ["IMGF has no DB-header pointers: fixed version-2 offsets used"])
        p, ln, h = bad[0]
        raise imgf.error(f"p_{h}", f"{h} header pointer {p} (length {ln}) lies outside the file")
    packed = _LAYOUTS.get((imgf["l_exam"], imgf["l_series"]))
    if packed is None:
        raise imgf.error("l_exam", f"header lengths exam {imgf['l_exam']} / series {imgf['l_series']} "
                                   "match neither the packed (1024/1020) nor the padded (1040/1028) layout")
    # The suite header only names the product: an unusable suite pointer costs that name, not the image.
    suite_size = SUITE_PK.size if packed else SUITE_PD.size
    p_suite = imgf["p_suite"]
    suite = base + p_suite if imgf["l_suite"] > 0 and p_suite > 0 and base + p_suite + suite_size <= n else -1
    lay = Layout(variant, base, suite, base + pointers[0][0], base + pointers[1][0], base + pointers[2][0],
                 packed, base + hdr_length, n)
    if suite < 0 and imgf["l_suite"] != 0:
        lay.notes.append(f"suite header pointer {p_suite} unusable; suite header skipped")
    return lay


# --------------------------------------------------------------------------- decoding


@dataclass
class Headers:
    """The records of one file."""

    layout: Layout
    imgf: Record
    suite: Record | None
    exam: Record
    series: Record
    image: Record
    modality: str


def read_headers(data: bytes) -> Headers:
    found = _find_imgf(data)
    if found is None:
        raise DecodeError("no IMGF header at 0, 3180, 3228, 3240 or after GEMS", field="magic", offset=0)
    imgf = IMGF.read(data, found[1])
    layout = _resolve(data, imgf)
    packed = layout.packed
    exam = (EXAM_PK if packed else EXAM_PD).read(data, layout.exam)
    modality = exam["exam_type"].strip().upper()
    if modality not in ("MR", "CT"):
        raise exam.error("exam_type", f"exam type {modality!r} is neither MR nor CT")
    if layout.variant in ("ximg", "gems") and imgf["l_image"] != _IMAGE_LENGTHS[(packed, modality)]:
        layout.notes.append(f"image header length {imgf['l_image']} differs from the {modality} "
                            f"{'packed' if packed else 'padded'} size {_IMAGE_LENGTHS[(packed, modality)]}")
    series = (SERIES_PK if packed else SERIES_PD).read(data, layout.series)
    table = {(True, "MR"): MR_PK, (False, "MR"): MR_PD, (True, "CT"): CT_PK, (False, "CT"): CT_PD}[(packed, modality)]
    image = table.read(data, layout.image)
    suite = None
    if layout.suite >= 0:
        suite = (SUITE_PK if packed else SUITE_PD).read(data, layout.suite)
    return Headers(layout, imgf, suite, exam, series, image, modality)


def decode_pixels(data: bytes, h: Headers) -> np.ndarray:
    """The full rows x cols int16 raster, whatever the compression code."""
    imgf, lay = h.imgf, h.layout
    rows, cols = imgf["height"], imgf["width"]
    image_bytes(Dimension(rows, "height", imgf.offset("height")), Dimension(cols, "width", imgf.offset("width")), 16)
    if imgf["depth"] != 16:
        raise imgf.error("depth", f"{imgf['depth']} bits per pixel: only 16 is supported")
    code = imgf["compress"]
    area = memoryview(data)[:lay.stream_limit]
    if code in (0, 1):
        return ge_pixels.raster(area, lay.pixels, rows, cols)
    if code == 3:
        return ge_pixels.dpcm(area, lay.pixels, rows, cols)
    if code in (2, 4):
        left, width = ge_pixels.read_line_map(data, lay.imgf + imgf["p_unpack"], imgf["l_unpack"], rows, cols)
        decode = ge_pixels.packed if code == 2 else ge_pixels.dpcm_packed
        return decode(area, lay.pixels, left, width, rows, cols)
    raise imgf.error("compress", f"compression code {code} is not one of 0-4")


def _object_end(data: bytes, variant: str, base: int, imgf: Record) -> int | None:
    """Where the file ends: pixel offset plus the pixel bytes by compression code. A prefix
    gets the bytes still needed (or one more than it has, while a DPCM stream is cut off)."""
    rows, cols, hdr = imgf["height"], imgf["width"], imgf["hdr_length"]
    if hdr < 124 or imgf["depth"] != 16 or not plausible(rows, cols):
        return None
    pixels = base + hdr
    if variant == "dat":  # a byte count precedes the pixels
        if len(data) < pixels + 4:
            return pixels + 4
        count = int.from_bytes(data[pixels:pixels + 4], "big", signed=True)
        return pixels + 4 + count if count > 0 else None
    code = imgf["compress"]
    if code in (0, 1):
        return pixels + 2 * rows * cols
    count = rows * cols
    if code in (2, 4):
        map_end = base + imgf["p_unpack"] + imgf["l_unpack"]
        if len(data) < map_end:
            return map_end
        _, width = ge_pixels.read_line_map(data, base + imgf["p_unpack"], imgf["l_unpack"], rows, cols)
        count = int(width.sum())
        if code == 2:
            return pixels + 2 * count
    if code not in (3, 4):
        return None
    size = ge_pixels.dpcm_length(data, pixels, count)
    return pixels + size if size is not None else max(pixels, len(data)) + 1


class GenesisDecoder(GenesisFormat):
    def length(self, data: bytes) -> int | None:
        """Header length plus the pixels the IMGF header describes (registry contract)."""
        found = _find_imgf(data[:4096])
        if found is None:
            return None
        if len(data) < found[1] + IMGF.size:
            return found[1] + IMGF.size
        try:
            return _object_end(data, found[0], found[1], IMGF.read(data, found[1]))
        except DecodeError:
            return None

    def decode(self, data: bytes) -> Decoded:
        h = read_headers(data)
        pixels = decode_pixels(data, h)
        elements: dict = {}  # made a Dataset at once: cheaper than adding one by one
        notes = list(h.layout.notes)
        _map_common(elements, h, pixels, notes)
        (_map_mr if h.modality == "MR" else _map_ct)(elements, h)
        return Decoded(
            dataset=Dataset(elements),
            format=self.name,
            identity=_identity(h),
            vendor_header=bytes(data[:h.layout.pixels]),
            notes=notes,
        )

    def dump(self, data: bytes) -> list[DumpRow]:
        found = _find_imgf(data)
        if found is None:
            return []
        rows = IMGF.dump(data, found[1])
        try:
            h = read_headers(data)
        except DecodeError as exc:  # show what could be read, then why the rest cannot
            return rows + [DumpRow(offset=-1 if exc.offset is None else exc.offset, name="(error)",
                                   type=exc.field or "", value=str(exc))]
        lay = h.layout
        if h.suite is not None:
            rows += (SUITE_PK if lay.packed else SUITE_PD).dump(data, lay.suite)
        rows += (EXAM_PK if lay.packed else EXAM_PD).dump(data, lay.exam)
        rows += (SERIES_PK if lay.packed else SERIES_PD).dump(data, lay.series)
        rows += h.image.table.dump(data, lay.image)
        return rows


# --------------------------------------------------------------------------- DICOM mapping


def _date_time(ds: Elements, date: str, time: str, when: dt.datetime | None) -> None:
    """Seconds since 1970 broken down as UTC: the scanner's own wall clock (notes 10)."""
    if when is None or when.timestamp() <= 0:
        return
    put(ds, date, "%04d%02d%02d" % (when.year, when.month, when.day))
    put(ds, time, "%02d%02d%02d" % (when.hour, when.minute, when.second))


def _map_common(ds: Elements, h: Headers, pixels: np.ndarray, notes: list[str]) -> None:
    imgf, exam, series, image = h.imgf, h.exam, h.series, h.image
    for rec in (h.suite, exam, series, image):
        if rec is not None:
            rec.table.apply(rec, ds)
    put(ds, "Modality", h.modality)
    put(ds, "SOPClassUID", MR_IMAGE_STORAGE if h.modality == "MR" else CT_IMAGE_STORAGE)
    put(ds, "Manufacturer", MANUFACTURER)
    # Laterality is 2C (paired body parts); GE headers name no side and no body part, so
    # the side is unknown: present and empty, as dciodvfy then requires.
    put(ds, "Laterality", None)
    if imgf["version"] > 0:
        put(ds, "SoftwareVersions", str(imgf["version"]))

    _date_time(ds, "StudyDate", "StudyTime", exam["exam_time"])
    _date_time(ds, "SeriesDate", "SeriesTime", series["alloc_time"])
    _date_time(ds, "AcquisitionDate", "AcquisitionTime", image["alloc_time"])
    _date_time(ds, "ContentDate", "ContentTime", image["actual_time"])

    age, units = exam["age"], exam["age_units"]
    if 0 < age <= 999 and units in (0, 1, 2, 3):
        put(ds, "PatientAge", f"{age:03d}{'YMDW'[units]}")
    set_value(ds, "PatientSex", {1: "M", 2: "F"}.get(exam["sex"]))
    if exam["weight_g"] > 0:
        put(ds, "PatientWeight", ds_number(exam["weight_g"] / 1000))
    entry = {1: "HF", 2: "FF"}.get(series["entry"])
    position = {1: "S", 2: "P", 4: "DL", 8: "DR"}.get(series["position"])
    if entry and position:
        put(ds, "PatientPosition", entry + position)

    for keyword, rec, name in (("StudyInstanceUID", exam, "study_uid"), ("SeriesInstanceUID", series, "series_uid"),
                               ("FrameOfReferenceUID", series, "landmark_uid"), ("SOPInstanceUID", image, "image_uid")):
        uid = rec[name]
        if is_valid_uid(uid):
            put(ds, keyword, uid)
        elif uid:
            notes.append(f"{name} {uid!r} is not a valid UID; a deterministic one is derived")

    _map_geometry(ds, h, notes)
    _map_pixels(ds, h, pixels, notes)

    fovs = [v for v in (image["dfov_x"], image["dfov_y"]) if finite(v) and v > 0]
    if fovs:
        put(ds, "ReconstructionDiameter", ds_number(max(fovs)))
    thickness, gap = image["thickness"], image["spacing_gap"]
    if finite(thickness, gap) and thickness > 0 and thickness + gap > 0:
        put(ds, "SpacingBetweenSlices", ds_number(thickness + gap))
    if finite(image["scan_duration_us"]) and image["scan_duration_us"] > 0:
        put(ds, "AcquisitionDuration", float(image["scan_duration_us"]) / 1e6)
    _map_contrast(ds, image)
    put(ds, "ImageType", _image_type(series["series_type"], h.modality))


def _map_geometry(ds: Elements, h: Headers, notes: list[str]) -> None:
    image, imgf = h.image, h.imgf
    rows, cols = imgf["height"], imgf["width"]
    px, py = image["pixsize_x"], image["pixsize_y"]
    if not (finite(px, py) and 0 < px < 1e4 and 0 < py < 1e4):
        raise image.error("pixsize_x", f"pixel size {px} x {py} mm is not plausible")
    corner = {c: (image[f"{c}_r"], image[f"{c}_a"], image[f"{c}_s"]) for c in ("tlhc", "trhc", "brhc")}
    plane = plane_from_corners(corner["tlhc"], corner["trhc"], corner["brhc"], "brhc", rows, cols,
                               row_spacing=py, column_spacing=px, field="tlhc_r", offset=image.offset("tlhc_r"))
    notes.append(f"corners {'are image edges' if plane.corners_are_edges else 'are pixel centres'}: "
                 f"row extent {plane.row_extent_mm:.3f} mm for {cols} x {px} mm; "
                 f"column extent {plane.column_extent_mm:.3f} mm for {rows} x {py} mm")
    put_plane(ds, plane, py, px)


def _map_pixels(ds: Elements, h: Headers, pixels: np.ndarray, notes: list[str]) -> None:
    imgf = h.imgf
    if (h.image["matrix_y"], h.image["matrix_x"]) != pixels.shape:
        notes.append(f"image-header matrix {h.image['matrix_x']}x{h.image['matrix_y']} differs from "
                     f"IMGF {pixels.shape[1]}x{pixels.shape[0]}; IMGF used")
    # signed, as dicom3tools writes Genesis pixels
    put_image_pixel(ds, *pixels.shape, pixels.astype("<i2", copy=False).tobytes(), signed=True)
    if imgf["dwindow"] > 0:
        put(ds, "WindowCenter", ds_number(imgf["dlevel"]))
        put(ds, "WindowWidth", ds_number(imgf["dwindow"]))


def _map_contrast(ds: Elements, image: Record) -> None:
    mode = image["contrast_mode"]
    if mode <= 0:
        return
    agents = [a for a in (image["oral_contrast"] if mode & 1 else "", image["iv_contrast"] if mode & 2 else "") if a]
    set_value(ds, "ContrastBolusAgent", " / ".join(agents) or "CONTRAST")
    route = {1: "ORAL", 2: "IV", 3: "ORAL AND IV"}.get(mode & 3)
    set_value(ds, "ContrastBolusRoute", route)


def _image_type(series_type: int, modality: str) -> list[str]:
    third = "AXIAL" if modality == "CT" else "OTHER"
    return {
        1: ["ORIGINAL", "PRIMARY", third],
        2: ["ORIGINAL", "SECONDARY", third],
        3: ["ORIGINAL", "PRIMARY", "LOCALIZER"],
        4: ["DERIVED", "SECONDARY", "OTHER"],
        5: ["DERIVED", "SECONDARY", "OTHER"],
        6: ["ORIGINAL", "PRIMARY", third],  # xenon: dicom3tools falls through to service (a bug)
        7: ["DERIVED", "SECONDARY", "OTHER"],
        9: ["DERIVED", "SECONDARY", "PROJECTION IMAGE"],
    }.get(series_type, ["ORIGINAL", "PRIMARY", third])


# Pulse sequence -> (ScanningSequence, SequenceVariant) per dicom3tools (notes 12).
_SEQUENCES: dict[int, tuple[list[str], list[str]]] = {
    0: (["SE"], []), 1: (["IR"], []), 2: (["RM"], []), 3: (["RM"], []),
    4: (["GR"], []), 5: (["GR"], []), 8: (["GR"], []), 9: (["GR"], []), 12: (["GR"], []), 13: (["GR"], []),
    15: (["GR"], []), 17: (["GR"], []),
    6: (["IR"], []), 7: (["IR"], []),
    10: (["GR"], ["SP"]), 14: (["GR"], ["SP"]), 16: (["GR"], ["SP"]), 18: (["GR"], ["SP"]),
    11: (["GR"], ["TRSS"]),
    19: (["SE"], ["SK"]), 20: (["GR"], ["SK"]), 21: (["GR"], ["SK"]),
    22: (["GR"], ["SP", "SK"]), 23: (["GR"], ["SP", "SK"]),
    26: (["IR"], ["SK"]),
}
_ANGIO_SEQUENCES = {12, 13, 15, 16, 17, 18}


def _map_mr(ds: Elements, h: Headers) -> None:
    exam, image = h.exam, h.image
    if exam["magnet_gauss"] > 0:
        put(ds, "MagneticFieldStrength", ds_number(exam["magnet_gauss"] / 10000))
    scanning, variant = _SEQUENCES.get(image["pseq"], ([], []))
    scanning, variant = list(scanning), list(variant)
    prep = image["prep_pulse"]
    if prep in (1, 2):
        variant.append("MP")
        if prep == 1 and "IR" not in scanning:
            scanning.append("IR")  # an inversion-prepared sequence is IR in DICOM terms
    options = image["iopt"]
    if options & (1 << 7):
        variant.append("OSP")
    scanning = scanning or ["RM"]  # type 1: RM (research mode) when GE names no family
    scan_options = _scan_options(image) or None
    put(ds, "ScanningSequence", scanning)
    put(ds, "SequenceVariant", variant or ["NONE"])
    put(ds, "ScanOptions", scan_options)
    put(ds, "MRAcquisitionType", {1: "2D", 2: "3D", 3: "3D"}.get(image["imode"]))
    for keyword, name in (("RepetitionTime", "tr_us"), ("EchoTime", "te_us")):
        if image[name] > 0:
            put(ds, keyword, ds_number(image[name] / 1000))
    if "IR" in scanning:  # type 2C: present (empty if unknown) exactly for IR
        put(ds, "InversionTime", ds_number(image["ti_us"] / 1000) if image["ti_us"] > 0 else None)
    etl = image["etl"] if image["etl"] > 0 else image["echoes"]
    if etl > 0:
        put(ds, "EchoTrainLength", etl)
    if "CG" in (scan_options or []) or image["trigger_delay"] > 0:
        # TriggerTime is required for cardiac-gated images; the delay is in milliseconds.
        put(ds, "TriggerTime", ds_number(max(image["trigger_delay"], 0)))
    freq = image["freq_dir"]
    dim_x, dim_y = image["dim_x"], image["dim_y"]
    if finite(dim_x, dim_y) and 0 < dim_x < 65536 and 0 < dim_y < 65536:
        dx, dy = int(round(dim_x)), int(round(dim_y))
        for name, n in (("dim_x", dx), ("dim_y", dy)):
            if n < 1:  # 0 < dim < 0.5: a matrix of no samples (and PixelBandwidth would divide by it)
                raise image.error(name, f"acquisition matrix size {image[name]} rounds to 0 samples")
        put(ds, "AcquisitionMatrix", [dx, 0, 0, dy] if freq == 1 else [0, dx, dy, 0])
        put(ds, "NumberOfPhaseEncodingSteps", dy)
        vbw = image["vbw_khz"]
        if finite(vbw) and vbw > 0:
            # vbw is +/- kHz: total 2000 * vbw Hz over the frequency-encoding samples.
            put(ds, "PixelBandwidth", ds_number(2000 * vbw / dx))
    set_value(ds, "InPlanePhaseEncodingDirection", {1: "COL", 2: "ROW"}.get(freq))
    if image["pseq"] in _ANGIO_SEQUENCES:
        put(ds, "AngioFlag", "Y" if image["vascular_collapse"] == 0 and image["projection_alg"] == 0 else "N")
    if image["image_type"] in (1, 2, 3):  # value 4 is implementation specific in the MR Image module
        put(ds, "ImageType", [*_image_type(h.series["series_type"], h.modality),
                              {1: "PHASE", 2: "REAL", 3: "IMAGINARY"}[image["image_type"]]])


def _scan_options(image: Record) -> list[str]:
    options = image["iopt"]
    out = [name for bit, name in ((0, "CG"), (1, "RG"), (2, "PER"), (3, "FC"), (6, "PPG")) if options & (1 << bit)]
    if options & (1 << 5) or image["sat_bits"]:
        out.append("SP")
    if image["suppression"] == 1:
        out.append("FS")
    if image["frac_echo"] & 1:
        out.append("PFF")
    return out


_CT_FILTERS = {1: "AIR", 2: "BODY", 3: "BOWTIE", 4: "FLAT", 5: "HIGH"}
_CT_KERNELS = {1: "SMOOTH", 2: "SOFT", 4: "STANDARD", 8: "DETAIL", 16: "BONE", 32: "EDGE", 64: "SHARP", 128: "EXP2"}


def _map_ct(ds: Elements, h: Headers) -> None:
    exam, image, imgf = h.exam, h.image, h.imgf
    put(ds, "RescaleIntercept", ds_number(imgf["level_offset"]))
    put(ds, "RescaleSlope", ds_number(1))
    put(ds, "RescaleType", "HU")
    for keyword, value in (("DistanceSourceToDetector", exam["source_detector_mm"]),
                           ("DistanceSourceToPatient", exam["source_iso_mm"])):
        if finite(value) and value > 0:
            put(ds, keyword, ds_number(value))
    set_value(ds, "FilterType", _CT_FILTERS.get(image.get("filter")))
    set_value(ds, "ConvolutionKernel", _CT_KERNELS.get(image.get("algorithm")))
    set_value(ds, "RotationDirection", {1: "CW", 2: "CC"}.get(image.get("rotation")))
    seconds = image["scan_duration_us"] / 1e6 if finite(image["scan_duration_us"]) else 0
    if 0 < seconds < 1e6:  # IS values: anything larger is a damaged field
        put(ds, "ExposureTime", int(round(seconds * 1000)))
        if 0 < image["ma"] < 1e5:
            put(ds, "Exposure", int(round(seconds * image["ma"])))


# --------------------------------------------------------------------------- identity


def _identity(h: Headers) -> dict[str, tuple[str, ...]]:
    """Vendor identity for deterministic UIDs (DESIGN.md, Identity): suite, exam number and
    exam time for the study; + series number; + image number and time; + landmark counter."""
    exam, series, image = h.exam, h.series, h.image
    stamp = lambda t: "" if t is None else str(int(t.timestamp()))  # noqa: E731
    study = ("ge-genesis", exam["suite_id"], exam["system_id"], str(exam["exam_number"]), stamp(exam["exam_time"]))
    series_id = study + (str(series["series_number"]), stamp(series["alloc_time"]))
    return {
        "study": study,
        "series": series_id,
        "instance": series_id + (str(image["image_number"]), stamp(image["alloc_time"]), stamp(image["actual_time"])),
        "frame_of_reference": study + ("landmark", str(series["landmark_counter"])),
    }
