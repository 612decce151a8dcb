"""Interfile 3.3 (and the STIR and Siemens headers that extend it) to DICOM.

An Interfile object is two files: the text header this decoder identifies, and the binary data
file its ``name of data file`` names, relative to the header. The decoder stays pure: it names
that file (``companions``) and receives its bytes from whoever has a file system (the folder
driver, ``convert``, ``send``) as ``parts``. The IOD is chosen honestly (README, Formats):

* nuclear medicine (``imaging modality := nucmed``, the only modality 3.3 defines) static,
  dynamic, gated and tomographic images with integer pixels become **NM Image Storage**, one
  multi-frame instance with the NM frame vectors;
* PET data (STIR images and sinograms, Siemens headers), and any data whose values need a
  rescale (IEEE floats, 32-bit integers), become **Multi-frame Grayscale Word Secondary
  Capture** with Rescale Slope/Intercept: the PET Image IOD needs one instance per slice and
  type 1 facts (radiopharmaceutical, decay correction, units) these headers do not carry, and
  the NM IOD has no rescale for float values.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

from pydicom.dataset import Dataset

from gateway.dicom import values
from gateway.errors import DecodeError
from gateway.formats import Decoded, DumpRow
from gateway.formats.engine.fieldtable import clean_text, put, set_value
from gateway.formats.interfile import nm
from gateway.formats.interfile.header import DATA_FILE, Header, parse
from gateway.formats.interfile.layout import Layout, Pixels, check_size, layout, pixels, unsigned
from gateway.formats.interfile.recognise import InterfileFormat, data_file_name

MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
FRAME_LABEL_VECTOR = 0x00182002

# Header keys that go straight to DICOM attributes (dump shows the target).
_TEXT_TARGETS = {
    "patientname": "PatientName",
    "patientid": "PatientID",
    "studyid": "StudyID",
    "examtype": "StudyDescription",
    "datadescription": "SeriesDescription",
    "originalinstitution": "InstitutionName",
    "originatingsystem": "ManufacturerModelName",
}
_USED = {
    "patientdob": "PatientBirthDate", "patientsex": "PatientSex", "studydate": "StudyDate",
    "studydate(yyyy:mm:dd)": "StudyDate", "studytime": "StudyTime", "studytime(hh:mm:ssgmt+00:00)": "StudyTime",
    "imagingmodality": "Modality", "typeofdata": "ImageType / SOP class", "matrixsize": "Rows, Columns, NumberOfFrames",
    "numberformat": "pixel conversion", "numberofbytesperpixel": "pixel conversion",
    "imagedatabyteorder": "pixel conversion",
    "nameofdatafile": "the data file", "scalingfactor(mm/pixel)": "PixelSpacing",
    "patientorientation": "PatientPosition", "patientrotation": "PatientPosition",
}


class Interfile(InterfileFormat):
    def decode(self, data: bytes, parts: Mapping[str, bytes] | None = None) -> Decoded:
        header = parse(data)
        name = data_file_name(header)
        if name is None:
            raise DecodeError(f"'{DATA_FILE}' is missing or empty: the header describes no image data", field=DATA_FILE,
                              offset=header.offset_of(DATA_FILE))
        payload = (parts or {}).get(name)
        if payload is None:
            raise DecodeError(f"data file {name!r} named by '{DATA_FILE}' is not there (a header alone has no pixels)",
                              field=DATA_FILE, offset=header.offset_of(DATA_FILE))
        _refuse_unsupported(header)
        kind = nm.kind(header)
        lay = layout(header, nm.frames_hint(header, kind))
        check_size(header, lay, name, len(payload))
        px = pixels(payload, lay, name)
        modality = _modality(header)
        use_nm = modality == "NM" and kind is not None and px.slope is None
        if not use_nm:
            px = unsigned(px)  # the Word SC IOD stores unsigned values
        ds = Dataset()
        notes: list[str] = []
        self._common(ds, header, lay, px, modality)
        if use_nm:
            nm.apply(ds, header, lay, kind, notes)
        else:
            self._secondary_capture(ds, lay, px)
        values.ready_to_write(ds)
        return Decoded(ds, self.name, identity=_identity(header, data), vendor_header=data[: header.length],
                       notes=notes)

    def _common(self, ds: Dataset, header: Header, lay: Layout, px: Pixels, modality: str) -> None:
        for key, keyword in _TEXT_TARGETS.items():
            value = header.text(key)
            if value.lower() not in ("unknown", "<null>"):
                set_value(ds, keyword, value)
        put(ds, "Modality", modality)
        set_value(ds, "Manufacturer", _manufacturer(header))
        for keys, keyword in ((("study date", "study date (yyyy:mm:dd)"), "StudyDate"),
                              (("patient dob",), "PatientBirthDate")):
            date = values.date(header.text(*keys).replace(":", "."))
            if date:
                put(ds, keyword, date)
        time = values.time(header.text("study time", "study time (hh:mm:ss GMT+00:00)"))
        if time:
            put(ds, "StudyTime", time)
        sex = header.text("patient sex").strip().upper()[:1]
        put(ds, "PatientSex", sex if sex in ("M", "F", "O") else None)
        position = _patient_position(header)
        if position:
            put(ds, "PatientPosition", position)
        put(ds, "SamplesPerPixel", 1)
        put(ds, "PhotometricInterpretation", "MONOCHROME2")
        put(ds, "Rows", lay.rows)
        put(ds, "Columns", lay.columns)
        put(ds, "NumberOfFrames", lay.frames)
        put(ds, "BitsAllocated", 16)
        put(ds, "BitsStored", 16)
        put(ds, "HighBit", 15)
        put(ds, "PixelRepresentation", 1 if px.signed else 0)
        spacing = [header.number("scaling factor (mm/pixel)", index=i) for i in (2, 1)]
        if all(s is not None and s > 0 for s in spacing):
            put(ds, "PixelSpacing", [values.decimal_string(s) for s in spacing])  # row spacing (y) first
        put(ds, "PixelData", px.data, vr="OW")
        put(ds, "InstanceNumber", 1)

    def _secondary_capture(self, ds: Dataset, lay: Layout, px: Pixels) -> None:
        put(ds, "SOPClassUID", MULTIFRAME_WORD_SC)
        put(ds, "ConversionType", "WSD")
        put(ds, "ImageType", ["DERIVED", "SECONDARY"])
        put(ds, "BurnedInAnnotation", "NO")
        put(ds, "PresentationLUTShape", "IDENTITY")
        put(ds, "RescaleIntercept", px.intercept or "0")
        put(ds, "RescaleSlope", px.slope or "1")
        put(ds, "RescaleType", "US")
        put(ds, "FrameIncrementPointer", FRAME_LABEL_VECTOR)
        put(ds, "FrameLabelVector", _frame_labels(lay))

    def dump(self, data: bytes) -> list[DumpRow]:
        header = parse(data)
        rows = []
        for e in header.entries:
            target = _TEXT_TARGETS.get(e.name) or _USED.get(e.name, "")
            rows.append(DumpRow(e.offset, e.key, "key", e.value, target))
        return rows


def _refuse_unsupported(header: Header) -> None:
    for key, ok in (("data compression", ("", "NONE")), ("compression", ("", "NONE", "OFF")),
                    ("data encode", ("", "NONE"))):
        value = header.text(key).strip().upper()
        if value not in ok:
            raise DecodeError(f"{key} := {value!r}: compressed or encoded data is not supported", field=key,
                              offset=header.offset_of(key))
    data_format = header.text("data format").strip().lower().replace(" ", "")
    if data_format in ("coincidencelist", "listmode"):
        raise DecodeError("data format := CoincidenceList: list-mode events are not an image", field="data format",
                          offset=header.offset_of("data format"))


def _modality(header: Header) -> str:
    """PT for PET data (STIR's ``type of data := PET``, Siemens' PET keys); NM otherwise (3.3 knows only nucmed)."""
    stated = header.text("imaging modality").strip().upper()
    kind = header.text("type of data").strip().upper()
    if stated in ("PT", "PET") or kind == "PET" or header.find("PET data type"):
        return "PT"
    return "NM"


def _manufacturer(header: Header) -> str:
    """SIEMENS for the scanner's own headers (their ``%SMS-MI`` keys); 3.3 names no manufacturer."""
    return "SIEMENS" if header.find("SMS-MI header name space") else ""


def _patient_position(header: Header) -> str | None:
    """HFS/FFS/HFP/FFP from 3.3's orientation (head_in/feet_in) and rotation (supine/prone)."""
    orientation = header.text("patient orientation").strip().upper()
    if orientation in ("HFS", "HFP", "FFS", "FFP", "HFDR", "HFDL", "FFDR", "FFDL"):
        return orientation
    head = {"HEAD_IN": "HF", "FEET_IN": "FF"}.get(orientation.replace(" ", "_"))
    rotation = {"SUPINE": "S", "PRONE": "P"}.get(header.text("patient rotation").strip().upper())
    return head + rotation if head and rotation else None


def _frame_labels(lay: Layout) -> list[str]:
    """One label per frame from the axis labels of matrix sizes [3..]: ``z 12`` for one outer
    axis, the indices alone (``12,1``, view then segment) where the names do not fit SH."""
    outer = lay.sizes[2:]
    names = [(lay.labels[i + 2] or f"axis {i + 3}") for i in range(len(outer))]
    labels = []
    for frame in range(lay.frames):
        index, rest = [], frame
        for n in outer:
            index.append(rest % n + 1)
            rest //= n
        text = ", ".join(f"{name} {i}" for name, i in zip(names, index))
        if len(text) > 16:
            text = ",".join(str(i) for i in index)
        labels.append(clean_text(text or "1", "SH"))
    return labels


def _identity(header: Header, data: bytes) -> dict[str, tuple[str, ...]]:
    """Study and series from the patient, study and date keys; the instance from the header's own
    bytes. Where those keys are all empty, the header's content hash identifies each level."""
    digest = hashlib.sha256(data[: header.length]).hexdigest()
    keys = ("patient name", "patient ID", "patient dob", "study ID", "study date", "study time", "original institution")
    study = tuple(header.text(k) for k in keys) + (header.text("study date (yyyy:mm:dd)"),
                                                   header.text("study time (hh:mm:ss GMT+00:00)"))
    if not any(study):
        study = ("header", digest)
    study = ("interfile",) + study
    series = study + tuple(header.text(k)
                           for k in ("type of data", "data description", "exam type", "originating system"))
    return {"study": study, "series": series, "instance": series + (digest,)}
