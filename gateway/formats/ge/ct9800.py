"""GE CT 9800 image files (Data General / RDOS host) to DICOM.

Facts and sources: shared/formats/ge-9800.md (cited as "notes 3.2" etc.). Almost every fact
there has one source, dicom3tools' ge9800 converter, and no real 9800 file is in our reach:
the layout, the byte code and the geometry below are single-source and unverified.

A file is a 512-byte global header holding 1-based 16-bit *word* pointers (byte offset =
(pointer - 1) x 2; 0 means a default that for the image map and data depends on the group
type in image header 1) and 512-byte block counts to an exam header, image headers 1 and 2,
an optional line map and the byte-coded pixels (ct9800_pixels). Integers are big-endian
Int16, reals Data General hex floats. Every pointer and block count is checked against the
file before anything is read through it.

DICOM: CT Image Storage when the plane is known without the conventions dicom3tools calls
unknown (an axial reconstruction, no gantry tilt, centred and unmagnified, patient position
given); anything else (scouts, tilted or off-centre reconstructions, screen saves, plots)
becomes Secondary Capture, with the pixels, Hounsfield rescale and CT values kept.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from gateway.dicom.iods import CT_IMAGE_STORAGE, SECONDARY_CAPTURE_STORAGE
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.engine.fieldtable import (
    Elements,
    F,
    Record,
    Table,
    To,
    Used,
    ds_number,
    finite,
    put,
    set_value,
)
from gateway.formats.ge import ct9800_pixels as px
from gateway.formats.ge.recognise import CT9800_BLOCK as BLOCK
from gateway.formats.ge.recognise import CT9800Format
from gateway.formats.ge.recognise import looks_like_9800 as _looks_like_9800
from gateway.formats.ge.signa4x import signa_year

MAX_DIM = 2048  # matrices are 256/320/512; scouts have a few hundred detectors and views
MANUFACTURER = "GE MEDICAL SYSTEMS"
RESCALE_INTERCEPT = -1024  # dicom3tools' constant (notes 4): no header field names it
BITS_STORED = 12  # the byte code keeps P & 0x0FFF, whatever the data-range field says


def _positive(v):
    return v if finite(v) and v > 0 else None


GLOBAL = Table("global header", size=BLOCK, fields=[
    F(0,   "char[6]",  "membership_id",  note="ASCII '9800' (identification, with the constants at 192/194)"),
    F(6,   "char[2]",  "revision"),
    F(8,   "char[2]",  "format_code"),
    F(10,  "char[2]",  "user_revision"),
    F(12,  "int16_be[6]", "created_mdyhms", note="creation month, day, year, hour, minute, second"),
    F(24,  "int16_be", "station_id",     Used("StationName if the exam header has none; identity")),
    F(32,  "char[14]", "file_name"),
    F(66,  "int16_be", "global_pointer", note="word pointer to itself, 1"),
    F(68,  "int16_be", "exam_pointer",   Used("exam header at (p - 1) x 2; 0: 512")),
    F(70,  "int16_be", "image1_pointer", Used("image header 1 at (p - 1) x 2; 0: 1024")),
    F(72,  "int16_be", "image2_pointer", note="image header 2 (0: 1536) holds nothing DICOM needs: not read"),
    F(74,  "int16_be", "map_pointer",    Used("image map at (p - 1) x 2; 0: 9 or 4 blocks by group type")),
    F(76,  "int16_be", "data_pointer",   Used("pixels at (p - 1) x 2; 0: 11 or 6 blocks by group type")),
    F(78,  "int16_be", "global_blocks"),
    F(80,  "int16_be", "exam_blocks",    Used("checked against the file")),
    F(82,  "int16_be", "image1_blocks",  Used("checked against the file")),
    F(84,  "int16_be", "image2_blocks"),
    F(86,  "int16_be", "map_blocks",     Used("checked against the file")),
    F(88,  "int16_be", "data_blocks",    Used("checked against the file; object length")),
    F(90,  "int16_be", "max_images",     note="one image per file: one map and one data pointer"),
    F(192, "int16_be", "constant_1",     note="always 1 (identification)"),
    F(194, "int16_be", "constant_512",   note="always 512 (identification)"),
])

EXAM = Table("exam header", size=BLOCK, fields=[
    F(0,   "char[2]",  "revision",       "SoftwareVersions"),
    F(2,   "int16_be", "system_number"),
    F(4,   "int16_be", "station_id",     To("StationName", lambda v: str(v) if v > 0 else None)),
    F(6,   "int16_be", "exam_number",    To("StudyID", str)),
    F(8,   "char[14]", "exam_number_text", Used("identity")),
    F(22,  "char[12]", "patient_id",     "PatientID"),
    F(34,  "char[30]", "patient_name",   "PatientName"),
    F(64,  "char[30]", "referring",      "ReferringPhysicianName"),
    F(94,  "char[24]", "hospital",       "InstitutionName"),
    F(118, "char[30]", "diagnostician",  "PerformingPhysicianName", note="dicom3tools' choice of role"),
    F(148, "char[4]",  "operator",       "OperatorsName"),
    F(152, "char[80]", "description",    "StudyDescription"),
    F(232, "int16_be[6]", "scan_counts", note="scouts, axials, standard, dynamic, target, dynamic target"),
    F(244, "int16_be", "month",          Used("StudyDate"), note="M/D/Y order"),
    F(246, "int16_be", "day",            Used("StudyDate")),
    F(248, "int16_be", "year",           Used("StudyDate"), note="2 digits or year - 1900: UNVERIFIED (notes 6)"),
    F(250, "int16_be", "hour",           Used("StudyTime")),
    F(252, "int16_be", "minute",         Used("StudyTime")),
    F(254, "int16_be", "second",         Used("StudyTime")),
    F(284, "dg_single", "source_detector_mm", To("DistanceSourceToDetector", _positive)),
    F(288, "dg_single", "source_centre_mm",   To("DistanceSourceToPatient", _positive)),
])

IMAGE1 = Table("image header 1", size=BLOCK, fields=[
    F(0,   "char[2]",  "revision"),
    F(2,   "int16_be", "station_id"),
    F(4,   "int16_be", "exam_number"),
    F(24,  "int16_be", "group_type",     Used("map/data pointer defaults; identity"),
      note="2 scout, 3 standard, 4 dynamic, 5 arr"),
    F(26,  "int16_be", "group_number",   "SeriesNumber"),
    F(28,  "char[30]", "group_description", "SeriesDescription"),
    F(92,  "int16_be", "scan_number",    "AcquisitionNumber"),
    F(94,  "int16_be", "image_number",   "InstanceNumber"),
    F(98,  "int16_be", "entry",          Used("PatientPosition HF/FF")),
    F(100, "int16_be", "ap_orientation", Used("PatientPosition P/S/DL/DR"),
      note="1 prone, 2 supine (Signa's order differs)"),
    F(102, "char[6]",  "position_reference", "PositionReferenceIndicator"),
    F(108, "int16_be", "contrast_flag"),
    F(110, "char[64]", "contrast",       "ContrastBolusAgent"),
    F(174, "int16_be", "bowtie",         Used("FilterType"), note="no BodyPartExamined guess (dicom3tools guesses)"),
    F(176, "dg_single", "aperture_mm",   To("SliceThickness", _positive)),
    F(180, "int16_be", "kvp",            To("KVP", lambda v: v if v > 0 else None)),
    F(182, "int16_be", "ma",             To("XRayTubeCurrent", lambda v: v if v > 0 else None)),
    F(184, "dg_single", "gantry_angle",  Used("GantryDetectorTilt; CT only when 0")),
    F(188, "dg_single", "table_height",  To("TableHeight", lambda v: v if finite(v) else None)),
    F(192, "dg_single", "table_location", Used("SliceLocation; z of the plane"),
      note="positive into the gantry"),
    F(196, "dg_single", "scan_time_s",   Used("ExposureTime, Exposure")),
    F(204, "int16_be[6]", "scan_mdyhms", Used("AcquisitionDate/Time")),
    F(242, "int16_be", "rotation",       Used("RotationDirection")),
    F(246, "int16_be", "image_size",     Used("Rows = Columns (not scouts)")),
    F(252, "int16_be", "tube_azimuth",   note="scouts: plane rotation of unknown sign (notes 5): not used"),
    F(254, "dg_single", "scout_end_mm"),
    F(262, "int16_be", "detectors_per_view", Used("Columns (scouts)")),
    F(272, "int16_be", "views_per_scan", Used("Rows (scouts)")),
    F(286, "dg_single", "scan_x_diameter", Used("DataCollectionDiameter")),
    F(290, "dg_single", "scan_y_diameter", Used("DataCollectionDiameter")),
    F(308, "dg_single", "display_mag",   Used("CT only when 0 or 1")),
    F(312, "dg_single", "display_x_centre", Used("CT only when 0")),
    F(316, "dg_single", "display_y_centre", Used("CT only when 0")),
    F(320, "int16_be", "window",         Used("WindowWidth if > 0")),
    F(322, "int16_be", "level",          Used("WindowCenter")),
    F(330, "int16_be[6]", "recon_mdyhms", Used("ContentDate/Time")),
    F(348, "int16_be", "use_map",        Used("1: rows stored as centred spans; 2: rectangular")),
    F(430, "dg_single", "pixel_size_mm", Used("PixelSpacing")),
    F(434, "int16_be", "file_type",      Used("ImageType; SOP class"),
      note="1 prospective, 2 scout, 3 retrospective, 4 segmented, 5 screensave, 6 plot"),
    F(436, "int16_be", "data_range",     note="bits; -1 seen; the code keeps 12 bits, so BitsStored is 12"),
    F(442, "int16_be", "recon_type",     Used("ConvolutionKernel")),
    F(444, "dg_single", "recon_x_diameter", Used("ReconstructionDiameter")),
    F(448, "dg_single", "recon_y_diameter", Used("ReconstructionDiameter")),
    F(452, "dg_single", "target_x_centre", Used("CT only when 0")),
    F(456, "dg_single", "target_y_centre", Used("CT only when 0")),
    F(460, "dg_single", "target_mag",    Used("CT only when 0 or 1")),
    F(468, "int16_be", "disk_compressed", note="not consulted by dicom3tools: the byte code is always applied"),
    F(470, "int16_be", "scout_orientation", note="0 AP, 1 lateral"),
])


@functools.lru_cache(maxsize=8)
def map_table(rows: int) -> Table:
    """The image map of a ``rows``-row image: one Int16 half-length a row (notes 4)."""
    return Table("image map", size=2 * rows, fields=[
        F(0, f"int16_be[{rows}]", "half_lengths", Used("row spans: cols // 2 - h, 2h wide")),
    ])


# --------------------------------------------------------------------------- layout


@dataclass
class Headers:
    """The records of one file and where the map and the pixels are."""

    glob: Record
    exam: Record
    image: Record
    rows: int
    cols: int
    map_at: int | None  # None: every row stored in full
    data_at: int
    data_end: int  # the stream never reads past this
    notes: list[str] = field(default_factory=list)


def _offset(pointer: int, default: int) -> int | None:
    """A 1-based word pointer as a byte offset (0: ``default``); None when it would point
    into the global header or before the file (a negative Int16)."""
    at = default if pointer == 0 else (pointer - 1) * 2
    return at if at >= BLOCK else None


def _part(glob: Record, n: int, name: str, default: int, need: int) -> int:
    """The byte offset of a part from its word pointer, checked: it must lie past the global
    header with ``need`` bytes and its declared blocks inside the file."""
    p = glob[f"{name}_pointer"]
    at = _offset(p, default)
    if at is None:
        raise glob.error(f"{name}_pointer", f"{name} pointer {p} points outside the file or into the global header")
    if at + need > n:
        raise glob.error(f"{name}_pointer", f"{name} at byte {at} ({need} bytes) lies beyond the {n}-byte file")
    blocks_field = f"{name}_blocks"
    if blocks_field in GLOBAL.by_name:
        blocks = glob[blocks_field]
        if blocks < 0 or at + blocks * BLOCK > n:
            raise glob.error(blocks_field, f"{blocks} blocks of {name} at byte {at} exceed the {n}-byte file")
    return at


def _shape(image: Record) -> tuple[int, int]:
    """(rows, cols): views x detectors for scouts, image size squared otherwise (notes 3.2)."""
    names = ("views_per_scan", "detectors_per_view") if image["file_type"] == 2 else ("image_size", "image_size")
    for name in names:
        if not 0 < image[name] <= MAX_DIM:
            raise image.error(name, f"{image[name]} is not a plausible image dimension")
    return image[names[0]], image[names[1]]


def read_headers(data: bytes) -> Headers:
    if not _looks_like_9800(data):
        raise DecodeError("no '9800' global header (magic at 0, constants 1 and 512 at 192)",
                          field="membership_id", offset=0)
    n = len(data)
    glob = GLOBAL.read(data, 0)
    exam = EXAM.read(data, _part(glob, n, "exam", 1 * BLOCK, BLOCK))
    image = IMAGE1.read(data, _part(glob, n, "image1", 2 * BLOCK, BLOCK))
    rows, cols = _shape(image)
    arr = image["group_type"] == 5
    use_map = image["use_map"] == 1
    map_at = _part(glob, n, "map", (9 if arr else 4) * BLOCK, 2 * rows) if use_map else None
    data_at = _part(glob, n, "data", (11 if arr else 6) * BLOCK, 1)
    blocks = glob["data_blocks"]
    data_end = data_at + blocks * BLOCK if blocks > 0 else n
    notes = [] if image["use_map"] in (1, 2) else [f"image map flag {image['use_map']}: rows taken as stored in full"]
    return Headers(glob, exam, image, rows, cols, map_at, data_at, data_end, notes)


def _spans(data: bytes, h: Headers) -> tuple[np.ndarray, np.ndarray]:
    if h.map_at is None:
        return np.zeros(h.rows, dtype=np.intp), np.full(h.rows, h.cols, dtype=np.intp)
    map_table(h.rows).read(data, h.map_at)  # bounds checked by the table (a DecodeError naming the field)
    half = np.frombuffer(data, dtype=">i2", count=h.rows, offset=h.map_at)  # the field, without a tuple of ints
    return px.spans(half, h.cols, h.map_at)


def decode_pixels(data: bytes, h: Headers) -> np.ndarray:
    """The rows x cols raster of 12-bit stored values (uint16)."""
    left, width = _spans(data, h)
    count = int(width.sum())
    if h.map_at is None:
        return px.decode_stream(memoryview(data), h.data_at, count, h.data_end).reshape(h.rows, h.cols)
    return px.scatter(px.predictor(memoryview(data), h.data_at, count, h.data_end), left, width, h.rows, h.cols)


class CT9800Decoder(CT9800Format):
    def length(self, data: bytes) -> int | None:
        """The image data's end by the global header's block count, or else by walking the
        codes (registry contract: more than ``len(data)`` while the bytes are a prefix)."""
        if not _looks_like_9800(data):
            return None
        if len(data) < BLOCK:
            return BLOCK
        glob = GLOBAL.read(data, 0)
        image_at = _offset(glob["image1_pointer"], 2 * BLOCK)
        if image_at is None:
            return None
        if len(data) < image_at + BLOCK:
            return image_at + BLOCK
        image = IMAGE1.read(data, image_at)
        arr = image["group_type"] == 5
        data_at = _offset(glob["data_pointer"], (11 if arr else 6) * BLOCK)
        if data_at is None or glob["data_blocks"] < 0:
            return None
        if glob["data_blocks"] > 0:
            return data_at + glob["data_blocks"] * BLOCK
        try:
            rows, cols = _shape(image)
            count = rows * cols
            if image["use_map"] == 1:
                map_at = _offset(glob["map_pointer"], (9 if arr else 4) * BLOCK)
                if map_at is None:
                    return None
                if len(data) < map_at + 2 * rows:
                    return map_at + 2 * rows
                half = np.array(map_table(rows).read(data, map_at)["half_lengths"], dtype=np.intp)
                count = int(px.spans(half, cols, map_at)[1].sum())
        except DecodeError:
            return None
        size = px.stream_length(memoryview(data), data_at, count)
        return data_at + size if size is not None else max(data_at, len(data)) + 1

    def decode(self, data: bytes) -> Decoded:
        h = read_headers(data)
        stored = decode_pixels(data, h)
        elements: dict = {}
        notes = list(h.notes)
        for rec in (h.exam, h.image):
            rec.table.apply(rec, elements)
        _map(elements, h, stored, notes)
        return Decoded(dataset=Dataset(elements), format=self.name, identity=_identity(h),
                       vendor_header=bytes(data[:h.data_at]), notes=notes)

    def dump(self, data: bytes) -> list[DumpRow]:
        if len(data) < GLOBAL.size:
            return GLOBAL.dump(data, 0)
        rows = GLOBAL.dump(data, 0)
        try:
            h = read_headers(data)
            rows += EXAM.dump(data, h.exam.base) + IMAGE1.dump(data, h.image.base)
            if h.map_at is not None:
                rows += map_table(h.rows).dump(data, h.map_at)
        except DecodeError as exc:  # what could be read, then why the rest cannot
            rows.append(DumpRow(offset=-1 if exc.offset is None else exc.offset, name="(error)",
                                type=exc.field or "", value=str(exc)))
        return rows


# --------------------------------------------------------------------------- DICOM mapping


def _date_time(values: tuple[int, ...]) -> tuple[str | None, str | None]:
    """(DA, TM) from month, day, year, hour, minute, second; the year by Signa's rule (the
    same Data General era and ambiguity: notes 6, ge-signa-4x.md 7)."""
    month, day, year, hour, minute, second = values
    date = time = None
    full = signa_year(year)
    if full is not None:
        try:
            date = dt.date(full, month, day).strftime("%Y%m%d")
        except ValueError:
            date = None
    if 0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59:
        time = f"{hour:02d}{minute:02d}{second:02d}"
    return date, time


def _exam_mdyhms(exam: Record) -> tuple[int, ...]:
    return tuple(exam[k] for k in ("month", "day", "year", "hour", "minute", "second"))


_ENTRY = {1: "HF", 2: "FF"}
_LYING = {1: "P", 2: "S", 3: "DL", 4: "DR"}
# Axial image in the gantry frame (row: to the right of someone facing the gantry, column:
# down towards the table) as patient LPS directions, per patient position.
_AXIAL_IOP = {
    "HFS": (1, 0, 0, 0, 1, 0), "HFP": (-1, 0, 0, 0, -1, 0), "FFS": (-1, 0, 0, 0, 1, 0), "FFP": (1, 0, 0, 0, -1, 0),
    "HFDL": (0, -1, 0, 1, 0, 0), "HFDR": (0, 1, 0, -1, 0, 0), "FFDL": (0, 1, 0, 1, 0, 0), "FFDR": (0, -1, 0, -1, 0, 0),
}
# DS values made once (DSfloat is immutable; formatting one costs more than the lookup).
_IOP_DS = {position: tuple(ds_number(v) for v in iop) for position, iop in _AXIAL_IOP.items()}
_DS_0, _DS_1, _DS_INTERCEPT = ds_number(0), ds_number(1), ds_number(RESCALE_INTERCEPT)
_IMAGE_TYPE = {
    1: ["ORIGINAL", "PRIMARY", "AXIAL"], 2: ["ORIGINAL", "PRIMARY", "LOCALIZER"],
    3: ["DERIVED", "SECONDARY", "AXIAL"], 4: ["DERIVED", "SECONDARY", "AXIAL"],
    5: ["DERIVED", "SECONDARY", "AXIAL"], 6: ["DERIVED", "SECONDARY", "OTHER"],
}
_KERNELS = {0: "UNDEFINED", 1: "BONE", 2: "SOFT TISSUE", 3: "QUICK SOFT TISSUE"}
_FILTERS = {1: "BODY", 2: "HEAD", 3: "A"}


def patient_position(image: Record) -> str | None:
    entry, lying = _ENTRY.get(image["entry"]), _LYING.get(image["ap_orientation"])
    return entry + lying if entry and lying else None


def plane_known(image: Record) -> str | None:
    """Why the plane cannot be stated (None: it can). Known only without the conventions
    dicom3tools calls unknown (notes 5): an axial reconstruction, no gantry tilt, no
    reconstruction or display offset or magnification, a known patient position."""
    if image["file_type"] not in (1, 3, 4):
        return f"file type {image['file_type']} is not an axial reconstruction"
    if patient_position(image) is None:
        return "patient position not given"
    size = image["pixel_size_mm"]
    if not (finite(size) and 0 < size < 10):
        return f"pixel size {size} mm is not plausible"
    if not finite(image["table_location"]):
        return "table location is not a number"
    if image["gantry_angle"] != 0:
        return f"gantry tilt {image['gantry_angle']} (its sign convention is unknown)"
    for name in ("display_x_centre", "display_y_centre", "target_x_centre", "target_y_centre"):
        if image[name] != 0:
            return f"{name} {image[name]} (units unknown)"
    for name in ("display_mag", "target_mag"):
        if image[name] not in (0, 1):
            return f"{name} {image[name]}"
    return None


def _map(ds: Elements, h: Headers, stored: np.ndarray, notes: list[str]) -> None:
    exam, image = h.exam, h.image
    put(ds, "Modality", "CT")
    put(ds, "Manufacturer", MANUFACTURER)
    put(ds, "ManufacturerModelName", "CT 9800")
    put(ds, "Laterality", None)  # 2C; the header names no body part or side
    if exam["station_id"] <= 0 < h.glob["station_id"]:
        put(ds, "StationName", str(h.glob["station_id"]))
    for (date_kw, time_kw), values in ((("StudyDate", "StudyTime"), _exam_mdyhms(exam)),
                                       (("AcquisitionDate", "AcquisitionTime"), image["scan_mdyhms"]),
                                       (("ContentDate", "ContentTime"), image["recon_mdyhms"])):
        date, time = _date_time(values)
        set_value(ds, date_kw, date)
        set_value(ds, time_kw, time)
    position = patient_position(image)
    set_value(ds, "PatientPosition", position)
    put(ds, "ImageType", _IMAGE_TYPE.get(image["file_type"], ["DERIVED", "SECONDARY", "OTHER"]))
    why = plane_known(image)
    if why is None:
        put(ds, "SOPClassUID", CT_IMAGE_STORAGE)
        _map_plane(ds, image, position, h.rows, h.cols)  # type: ignore[arg-type]
    else:
        put(ds, "SOPClassUID", SECONDARY_CAPTURE_STORAGE)
        notes.append(f"Secondary Capture: {why}")
        size = image["pixel_size_mm"]
        if image["file_type"] != 2 and finite(size) and 0 < size < 10:
            put(ds, "PixelSpacing", [ds_number(size)] * 2)
    _map_ct(ds, image)
    _map_pixels(ds, image, stored)


def _map_plane(ds: Elements, image: Record, position: str, rows: int, cols: int) -> None:
    """An axial plane centred on the rotation axis at the table location: z = -location for
    head first (the table moves the patient feet-wards through the plane), + for feet first."""
    size = float(image["pixel_size_mm"])
    iop = _AXIAL_IOP[position]
    z = float(image["table_location"]) * (-1 if position.startswith("HF") else 1)
    half_row, half_col = size * (cols - 1) / 2, size * (rows - 1) / 2
    ipp = [-iop[k] * half_row - iop[3 + k] * half_col + (z if k == 2 else 0.0) + 0.0 for k in range(3)]
    put(ds, "ImageOrientationPatient", list(_IOP_DS[position]))
    put(ds, "ImagePositionPatient", [ds_number(v) for v in ipp])
    put(ds, "PixelSpacing", [ds_number(size)] * 2)
    put(ds, "GantryDetectorTilt", _DS_0)


def _map_ct(ds: Elements, image: Record) -> None:
    put(ds, "RescaleIntercept", _DS_INTERCEPT)
    put(ds, "RescaleSlope", _DS_1)
    put(ds, "RescaleType", "HU")
    location = image["table_location"]
    if finite(location):
        put(ds, "SliceLocation", ds_number(location))
    tilt = image["gantry_angle"]
    if finite(tilt) and tilt != 0:
        put(ds, "GantryDetectorTilt", ds_number(tilt))
    seconds = image["scan_time_s"]
    if finite(seconds) and 0 < seconds < 1e5:
        put(ds, "ExposureTime", round(seconds * 1000))
        if 0 < image["ma"]:
            put(ds, "Exposure", round(seconds * image["ma"]))
    scan = [v for v in (image["scan_x_diameter"], image["scan_y_diameter"]) if finite(v) and v > 0]
    if scan:
        put(ds, "DataCollectionDiameter", ds_number(max(scan)))
    recon = [v for v in (image["recon_x_diameter"], image["recon_y_diameter"]) if finite(v) and v > 0]
    if recon:
        put(ds, "ReconstructionDiameter", ds_number(max(recon)))
    set_value(ds, "ConvolutionKernel", _KERNELS.get(image["recon_type"]))
    set_value(ds, "FilterType", _FILTERS.get(image["bowtie"]))
    set_value(ds, "RotationDirection", {1: "CW", 2: "CC"}.get(image["rotation"]))


def _map_pixels(ds: Elements, image: Record, stored: np.ndarray) -> None:
    put(ds, "Rows", stored.shape[0])
    put(ds, "Columns", stored.shape[1])
    put(ds, "SamplesPerPixel", 1)
    put(ds, "PhotometricInterpretation", "MONOCHROME2")
    put(ds, "BitsAllocated", 16)
    put(ds, "BitsStored", BITS_STORED)
    put(ds, "HighBit", BITS_STORED - 1)
    put(ds, "PixelRepresentation", 0)
    put(ds, "PixelData", stored.astype("<u2", copy=False).tobytes(), vr="OW")
    if image["window"] > 0:
        put(ds, "WindowCenter", ds_number(image["level"]))
        put(ds, "WindowWidth", ds_number(image["window"]))


# --------------------------------------------------------------------------- identity


def _identity(h: Headers) -> dict[str, tuple[str, ...]]:
    """Vendor identity (the format has no UIDs): station, exam number (integer and text) and
    exam start for the study; + group type and number; + scan, image number, file type and
    scan/recon times; the frame: the exam + position reference, patient position, table height."""
    exam, image = h.exam, h.image
    station = str(exam["station_id"] or h.glob["station_id"])
    study = ("ge-ct9800", station, str(exam["exam_number"]), exam["exam_number_text"],
             "/".join(map(str, _exam_mdyhms(exam))))
    series = study + (str(image["group_type"]), str(image["group_number"]))
    return {
        "study": study,
        "series": series,
        "instance": series + (str(image["scan_number"]), str(image["image_number"]), str(image["file_type"]),
                              "/".join(map(str, image["scan_mdyhms"])), "/".join(map(str, image["recon_mdyhms"]))),
        "frame_of_reference": study + ("frame", image["position_reference"], str(patient_position(image)),
                                       repr(image["table_height"])),
    }
