"""Early DICOM repaired, not refused: the habits of the first DICOM years made valid, each on record.

Files written in the early 1990s (no preamble, no meta header, group lengths, ACR-NEMA
spellings) are DICOM in all but form. Normalisation passes them through; the functions here
make what they got wrong conform, and every change goes through a ``Changes`` recorder, so the
previous value ends up in the Original Attributes Sequence (reason CORRECT) and nothing of the
content is lost. Retired elements are kept: DICOM still defines them, and dropping them would
lose content. Only group lengths go: they count bytes of an encoding that is rewritten.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from gateway.dicom import values, verbatim
from gateway.dicom.iods import MODALITY_BY_SOP_CLASS
from gateway.dicom.provenance import Changes, changes
from gateway.dicom.uids import derive_uid, is_valid_uid
from gateway.formats.engine.fieldtable import put, value_of

# Text VRs whose values are checked one by one (values.is_valid) and conformed.
_CHECKED_VRS = {"AE", "CS", "SH", "LO", "PN", "ST", "LT", "DA", "TM", "DS", "IS"}

# What a derived type 1 attribute was derived from, for ``explain``.
DERIVED_FROM = {
    "Modality": "SOPClassUID",
    "SOPClassUID": "Modality",
    "HighBit": "BitsStored (HighBit = BitsStored - 1)",
    "BitsStored": "HighBit (BitsStored = HighBit + 1)",
    "SamplesPerPixel": "PhotometricInterpretation",
}
# UIDs replaced are derived from their previous value (so images that shared one still do).
_UID_NOTE = "derived from the previous value: it repeated another UID or was not a valid UID"

_DICOM_DA_TM = {"DA": re.compile(r"^\d{8}$"), "TM": re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$")}
_SAMPLES = {"MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3,
            "YBR_FULL": 3, "YBR_FULL_422": 3, "YBR_ICT": 3, "YBR_RCT": 3}


def record_put(ds: Dataset, keyword: str, value, record: Changes | None, reason: str = "CORRECT",
               nonconforming: bool = False) -> None:
    """``put``, with the previous value noted first when a recorder is given (``nonconforming``:
    that value was not valid for its VR)."""
    if record is not None:
        record.note(ds, keyword, reason, nonconforming)
    put(ds, keyword, value)


def drop_group_lengths(ds: Dataset) -> None:
    """Group lengths (gggg,0000) are retired outside group 0002 and counted the old encoding;
    kept, they would be wrong as soon as any value changes length. Not content: not recorded."""
    for tag in [t for t in ds.keys() if not t & 0xFFFF and t >> 16 != 0x0002]:  # by arithmetic: no properties
        del ds[tag]


def conform_values(ds: Dataset, record: Changes) -> None:
    """Top-level text values made valid for their VR: ``yyyy.mm.dd`` dates and ``hh:mm:ss``
    times to DA/TM, over-long values cut to their VR's length (the full value stays in the
    record), lower-case code strings upper-cased. A date or time that cannot be read at all
    becomes empty. Private and unknown elements are left alone (their VR is not ours to know);
    so are values inside sequences, which the recorder cannot address, and values still in
    their file (``deferred``: large binary values, which no text rule concerns)."""
    for tag, elem in list(ds.items()):  # unconverted, deferred values not read
        if isinstance(elem, RawDataElement):
            if elem.value is None and elem.length not in (0, 0xFFFFFFFF) or verbatim.is_plain(ds, tag, elem):
                continue  # deferred: looking would read it into memory; plain: valid already, as it came
            elem = ds[tag]
        if elem.tag.is_private or not elem.keyword or elem.VR not in _CHECKED_VRS or elem.value in (None, ""):
            continue
        multi = elem.VM > 1
        texts = [_text(v) for v in (elem.value if multi else [elem.value])]
        fixed = [_conformed(elem.VR, t) for t in texts]
        if any(f is None for f in fixed) or fixed == texts:
            continue  # valid already, or not something a rule here can repair
        record.note(ds, elem.keyword, nonconforming=True)
        ds[elem.tag].value = fixed if multi else fixed[0]


def _text(value) -> str:
    return "" if value is None else str(value)


def _conformed(vr: str, text: str) -> str | None:
    """The valid form of ``text``, or None when no rule here can make it valid. A date or
    time already in DICOM's syntax is kept even where ``values`` doubts it (a placeholder
    birth date 11111111 is the sender's to correct, not ours to empty)."""
    if vr in ("DA", "TM") and _DICOM_DA_TM[vr].match(text):
        return text
    if text == "" or (vr == "PN" and all(len(g) <= 64 for g in text.split("="))) or values.is_valid(vr, text):
        return text
    for candidate in (values.conform(vr, text), values.conform(vr, text.rstrip("\0 "))):  # NUL padding
        if candidate is not None and values.is_valid(vr, candidate):
            return candidate
    if vr in ("DA", "TM"):
        return ""  # unreadable: emptied; the record keeps what it said
    if vr == "PN":
        return "=".join(g[:64].rstrip() for g in text.split("="))
    limit = values.MAX_LENGTH.get(vr)
    if limit is not None and len(text) > limit:
        cut = text[:limit].rstrip()
        cut = values.conform(vr, cut) if vr == "CS" else cut
        if cut is not None and values.is_valid(vr, cut):
            return cut
    return None


def separate_series_from_study(ds: Dataset, root: str, record: Changes) -> None:
    """Some early writers gave a series its study's UID. The Series Instance UID is derived
    from the repeated value, so every image of that series still shares one series."""
    study, series = value_of(ds, "StudyInstanceUID"), value_of(ds, "SeriesInstanceUID")
    if study and study == series and is_valid_uid(str(study)):
        record_put(ds, "SeriesInstanceUID", derive_uid("series", ("study uid reused", str(study)), root), record)


def derive_type1(ds: Dataset, sop_class: str, record: Changes) -> None:
    """Missing type 1 values that follow from others (``DERIVED_FROM`` says from which)."""
    if not value_of(ds, "Modality") and sop_class in MODALITY_BY_SOP_CLASS:
        record_put(ds, "Modality", MODALITY_BY_SOP_CLASS[sop_class], record)
    stored, high = value_of(ds, "BitsStored"), value_of(ds, "HighBit")
    if high is None and isinstance(stored, int) and stored > 0:
        record_put(ds, "HighBit", stored - 1, record)
    elif stored is None and isinstance(high, int):
        record_put(ds, "BitsStored", high + 1, record)
    photometric = str(value_of(ds, "PhotometricInterpretation", "")).strip().upper()
    if value_of(ds, "SamplesPerPixel") is None and photometric in _SAMPLES:
        record_put(ds, "SamplesPerPixel", _SAMPLES[photometric], record)


_STAMP_SOURCES = (("InstanceCreationDate", "InstanceCreationTime"), ("ContentDate", "ContentTime"),
                  ("AcquisitionDate", "AcquisitionTime"), ("SeriesDate", "SeriesTime"),
                  ("StudyDate", "StudyTime"))
_NO_DATE = dt.datetime(1993, 1, 1)  # DICOM 3.0's year: an instance that names no date at all


def stamp(ds: Dataset) -> dt.datetime:
    """The Attribute Modification DateTime written for a pass-through instance.

    Not the clock: converting the same file twice must give the same bytes, or the spool
    (which compares SHA-256) and the PACS would take a re-ingested tape as new instances. It
    is the instance's own latest creation date and time (after repair), so the record says
    "changed as of the instance as it was made"; who changed it is the Modifying System.
    """
    for date_kw, time_kw in _STAMP_SOURCES:
        date = str(value_of(ds, date_kw) or "")
        if _valid_date(date):
            return _stamp_at(date, str(value_of(ds, time_kw) or ""))
    return _NO_DATE


# Pure functions of the text, remembered: the images of a series share their dates and times.
@functools.lru_cache(maxsize=1024)
def _valid_date(date: str) -> bool:
    return values.is_valid("DA", date) and bool(date)


@functools.lru_cache(maxsize=1024)
def _stamp_at(date: str, time: str) -> dt.datetime:
    """``date`` (valid) at ``time``, or at midnight where that is not a valid time."""
    clock = time.split(".")[0].ljust(6, "0")
    clock = clock if values.is_valid("TM", clock) else "000000"
    try:  # both checked above: two digits a field, as strptime would read them
        return dt.datetime(int(date[:4]), int(date[4:6]), int(date[6:8]),
                           int(clock[:2]), int(clock[2:4]), int(clock[4:6]))
    except ValueError:  # 31 February, a leap second: strptime's own error
        return dt.datetime.strptime(date + clock[:6], "%Y%m%d%H%M%S")


def explain(ds: Dataset) -> list[str]:
    """One line per recorded change: reason, attribute, before -> now, and for a derived
    value where it came from."""
    lines = []
    for reason, keyword, before, now in changes(ds):
        line = f"{reason} {keyword}: {before} -> {now}"
        if before == "(absent)" and keyword in DERIVED_FROM:
            line += f" (derived from {DERIVED_FROM[keyword]})"
        elif before != "(absent)" and (keyword.endswith("InstanceUID") or keyword == "FrameOfReferenceUID"):
            line += f" ({_UID_NOTE})"
        elif keyword.startswith("("):  # named by its tag: no standard attribute (``unknown``)
            line += " (not a standard attribute; its bytes are kept in the record)"
        lines.append(line)
    return lines
