"""From what a decoder knew to a complete, valid DICOM instance (DESIGN.md, step 4).

Normalisation never invents clinical facts. It chooses the SOP class, keeps valid UIDs and
derives deterministic ones from the vendor identity otherwise, adds the type 1/2 attributes the
IOD requires, drops a window of width 0, applies the site's rules, keeps the vendor's header
in our private block and writes the Part-10 meta header.
"""

from __future__ import annotations

import functools
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from gateway import __version__
from gateway.dicom import repair, unknown, verbatim
from gateway.dicom.iods import (
    FRAME_OF_REFERENCE_REQUIRED,
    IOD_ATTRIBUTES,
    REQUIRED,
    SECONDARY_CAPTURE_STORAGE,
    SOP_CLASS_BY_MODALITY,
    WITHOUT_FRAME_OF_REFERENCE,
)
from gateway.dicom.provenance import COERCE, Changes
from gateway.dicom.repair import record_put
from gateway.dicom.site import SiteRules
from gateway.dicom.uids import derive_uid, is_valid_uid
from gateway.errors import DecodeError
from gateway.formats import Decoded
from gateway.formats.engine.fieldtable import element, put, tag_and_vr, value_of

IMPLEMENTATION_CLASS_UID = "2.25.226411372716939123385981532934016345105"
IMPLEMENTATION_VERSION_NAME = f"LEGACYGW_{__version__}"[:16]

PRIVATE_CREATOR = "LEGACY-GATEWAY 1"
PRIVATE_GROUP = 0x0029
# Offsets within our private block (element = block << 8 | offset).
_PRIV_FORMAT = 0x01
_PRIV_VERSION = 0x02
_PRIV_ORIGIN = 0x03
_PRIV_VENDOR_HEADER = 0x10


_UID_LEVELS = {
    "StudyInstanceUID": "study",
    "SeriesInstanceUID": "series",
    "SOPInstanceUID": "instance",
    "FrameOfReferenceUID": "frame_of_reference",
}


def normalize(decoded: Decoded, rules: SiteRules = SiteRules(), origin: str | None = None) -> Dataset:
    """Return a complete instance with its file meta; raises ``DecodeError`` if it cannot be."""
    ds = decoded.dataset
    passthrough = decoded.format.startswith("dicom")
    # DICOM passed through is repaired, never refused for an early writer's habits; each
    # change is recorded in the instance (``repair``, ``provenance``). Converted data has no
    # DICOM original to record: its vendor header is kept in our private block instead.
    record = Changes() if passthrough else None
    source = str(value_of(ds, "InstitutionName") or "")
    if record is not None:
        repair.drop_group_lengths(ds)
        unknown.remove_unknown(ds, record)
        repair.conform_values(ds, record)
        repair.separate_series_from_study(ds, rules.uid_root, record)

    if not is_valid_uid(str(value_of(ds, "SOPClassUID", ""))):
        modality = str(value_of(ds, "Modality", "")).upper()
        record_put(ds, "SOPClassUID", SOP_CLASS_BY_MODALITY.get(modality, SECONDARY_CAPTURE_STORAGE), record)
        if not value_of(ds, "Modality"):
            record_put(ds, "Modality", "OT", record)
    sop_class = str(value_of(ds, "SOPClassUID"))
    if record is not None:
        repair.derive_type1(ds, sop_class, record)

    _assign_uids(ds, decoded, rules.uid_root, sop_class, record)
    _separate_frame_of_reference(ds, rules.uid_root, record)
    # DICOM passed through keeps every value it can; only what its IOD lacks is added.
    _complete_iod(ds, sop_class, strict=not passthrough, record=record)
    if not passthrough:
        _drop_meaningless_window(ds)
        if "SpecificCharacterSet" not in ds:
            put(ds, "SpecificCharacterSet", "ISO_IR 100")
    _apply_site_rules(ds, rules, converted=not passthrough, record=record)
    if not passthrough:
        _add_private_block(ds, decoded, rules, origin)
    else:
        record.write(ds, source, when=repair.stamp(ds))
    _write_meta(ds)
    return ds


def _assign_uids(ds: Dataset, decoded: Decoded, root: str, sop_class: str, record: Changes | None = None) -> None:
    """Keep valid UIDs; derive the others from the vendor identity. DICOM passed through
    (``record``) needs a Frame of Reference UID only where its IOD has the module
    (``FRAME_OF_REFERENCE_REQUIRED``: not CR, DX, SC...), and an invalid UID of its own is
    derived from that UID's text. Converted data skips it for Secondary Capture only."""
    for keyword, level in _UID_LEVELS.items():
        if level == "frame_of_reference" and sop_class not in FRAME_OF_REFERENCE_REQUIRED:
            if sop_class in WITHOUT_FRAME_OF_REFERENCE or (record is not None and not value_of(ds, keyword)):
                continue
        if is_valid_uid(str(value_of(ds, keyword, ""))):
            continue
        identity = decoded.identity.get(level)
        previous = str(value_of(ds, keyword) or "").strip()
        if identity is None and record is not None and previous:
            identity = ("invalid uid", previous)
        if identity is None:
            if level == "frame_of_reference" and "series" in decoded.identity:
                identity = decoded.identity["series"]
            elif keyword in ds or decoded.identity:
                raise DecodeError(f"no valid {keyword} and no vendor identity to derive one", field=keyword)
            else:
                raise DecodeError(f"no {keyword}", field=keyword)
        record_put(ds, keyword, derive_uid(level, identity, root), record, nonconforming=bool(previous))


def _separate_frame_of_reference(ds: Dataset, root: str, record: Changes | None = None) -> None:
    """Some vendors reused the Series (or Study) Instance UID as Frame of Reference UID, which
    DICOM forbids; the replacement is derived from the old value, so images that shared a frame
    of reference still share one."""
    for_uid = value_of(ds, "FrameOfReferenceUID")
    if for_uid and for_uid in (value_of(ds, "SeriesInstanceUID"), value_of(ds, "StudyInstanceUID")):
        record_put(ds, "FrameOfReferenceUID", derive_uid("frame_of_reference", (str(for_uid),), root), record)


def _complete_iod(ds: Dataset, sop_class: str, strict: bool, record: Changes | None = None) -> None:
    """Add missing type 2 attributes empty and type 1 ones from their defaults. ``strict``:
    a type 1 attribute with no honest default is an error (converted data); otherwise it is
    left for the receiver to judge (DICOM passed through)."""
    present = ds.keys()
    for tag, keyword, kind, default in _iod_attributes(sop_class):
        if kind == 2:  # present is enough, empty or not
            if tag not in present:
                record_put(ds, keyword, None, record)
            continue
        if tag in present and _has_value(ds, tag):
            continue
        if default is not REQUIRED:
            record_put(ds, keyword, default, record)
        elif strict:
            raise DecodeError(f"required attribute {keyword} is missing", field=keyword)


def _has_value(ds: Dataset, tag: BaseTag) -> bool:
    """Whether the element at ``tag`` (present) is not empty. A value left in its file
    (gateway.dicom.deferred) is large, so not empty: not loaded to see. An element already
    built (every one of converted data) is read as it is, without the dataset's lookups."""
    elem = ds._dict.get(tag)  # ``get_item(tag, keep_deferred=True)``, without its call overhead
    if isinstance(elem, RawDataElement):
        if elem.value is None and elem.length not in (0, 0xFFFFFFFF):
            return True  # deferred (gateway.dicom.deferred): large, so not empty
        filled = verbatim.filled(elem) if verbatim.is_plain(ds, tag, elem) else None
        if filled is not None:
            return filled  # seen in its bytes: not converted
        elem = verbatim.read(ds, tag)
    return elem.value not in (None, "", [])


@functools.lru_cache(maxsize=None)
def _iod_attributes(sop_class: str) -> tuple[tuple[BaseTag, str, int, Any], ...]:
    """``IOD_ATTRIBUTES`` of a SOP class with each keyword's tag, looked up once per process
    rather than per attribute of every image."""
    return tuple((tag_and_vr(keyword)[0], keyword, kind, default)
                 for keyword, kind, default in IOD_ATTRIBUTES.get(sop_class, []))


def _drop_meaningless_window(ds: Dataset) -> None:
    width = value_of(ds, "WindowWidth")
    if width is None:
        return
    iterable = isinstance(width, (list, tuple)) or hasattr(width, "__iter__") and not isinstance(width, str)
    values = list(width) if iterable else [width]
    try:
        bad = any(float(v) < 1 for v in values)
    except (TypeError, ValueError):
        bad = True
    if bad:
        for keyword in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation"):
            if keyword in ds:
                del ds[keyword]


def _apply_site_rules(ds: Dataset, rules: SiteRules, converted: bool, record: Changes | None = None) -> None:
    if rules.institution_name and not value_of(ds, "InstitutionName"):
        record_put(ds, "InstitutionName", rules.institution_name, record, COERCE)
    if rules.station_name and not value_of(ds, "StationName"):
        record_put(ds, "StationName", rules.station_name, record, COERCE)
    if rules.patient_id_prefix and converted:
        pid = str(value_of(ds, "PatientID") or "")
        if not pid.startswith(rules.patient_id_prefix):
            ds.PatientID = (rules.patient_id_prefix + pid)[:64]


def _add_private_block(ds: Dataset, decoded: Decoded, rules: SiteRules, origin: str | None) -> None:
    base = _private_block(ds)

    def add(offset: int, vr: str, value: str | bytes) -> None:
        tag = Tag(PRIVATE_GROUP, base | offset)
        ds[tag] = element(tag, vr, value)

    add(_PRIV_FORMAT, "LO", decoded.format[:64])
    add(_PRIV_VERSION, "LO", f"legacy-gateway {__version__}")
    if origin:
        add(_PRIV_ORIGIN, "LT", origin[:10240])
    if rules.keep_vendor_header and decoded.vendor_header:
        header = decoded.vendor_header
        add(_PRIV_VENDOR_HEADER, "OB", header + (b"\0" if len(header) % 2 else b""))


def _private_block(ds: Dataset) -> int:
    """The element base (0xXX00) of our block in group 0029: the slot already holding our
    creator, else the first free one, which gets it (PS3.5 7.8.1). Probed slot by slot, as
    pydicom's ``private_block`` sorts the whole dataset to find it, a third of the cost of
    normalising."""
    for slot in range(0x10, 0x100):
        tag = Tag(PRIVATE_GROUP, slot)
        existing = ds.get(tag)
        if existing is None:
            ds[tag] = element(tag, "LO", PRIVATE_CREATOR)
            return slot << 8
        if existing.value == PRIVATE_CREATOR:
            return slot << 8
    raise DecodeError(f"no free private block in group {PRIVATE_GROUP:04X}", field="private creator")


_TRANSFER_SYNTAX = tag_and_vr("TransferSyntaxUID")[0]
_PLAIN_SYNTAXES = {ImplicitVRLittleEndian, ExplicitVRLittleEndian}


def _write_meta(ds: Dataset) -> None:
    """File meta information for Part 10; a decoder may have chosen the transfer syntax."""
    old = getattr(ds, "file_meta", None)
    found = old.get(_TRANSFER_SYNTAX) if isinstance(old, FileMetaDataset) else None  # by tag: no keyword lookup
    syntax = None if found is None else found.value
    # The two plain syntaxes (most files) need no second UID, which would check the value again.
    if not syntax or not (isinstance(syntax, str) and syntax in _PLAIN_SYNTAXES or UID(syntax).is_transfer_syntax):
        syntax = ExplicitVRLittleEndian
    meta = {}
    for keyword, value in (("MediaStorageSOPClassUID", value_of(ds, "SOPClassUID")),
                           ("MediaStorageSOPInstanceUID", value_of(ds, "SOPInstanceUID")),
                           ("TransferSyntaxUID", syntax),
                           ("ImplementationClassUID", IMPLEMENTATION_CLASS_UID),
                           ("ImplementationVersionName", IMPLEMENTATION_VERSION_NAME)):
        tag, vr = tag_and_vr(keyword)
        meta[tag] = element(tag, vr, str(value))
    ds.file_meta = FileMetaDataset(meta)
