"""Elements in a standard group that the standard does not define, removed on record.

An even group (PS3.5 7.1) belongs to the standard: only PS3.6's data elements may be there.
Some early or broken writers put their own elements in such groups (an (0018,9999) LO, say),
and one is enough to make the instance invalid ("Attribute with an even group number is not a
recognized standard attribute", dciodvfy). DICOM passed through loses no content for it: the
element leaves the top level of the data set, and its value's bytes go to the Original
Attributes Sequence (``provenance.Changes.remove``: reason CORRECT).

Not concerned: private elements (odd groups), which are the writer's to define; group lengths
(gggg,0000), which ``repair.drop_group_lengths`` handles; the Command and File Meta groups
(0000, 0002), which the pipeline refuses inside a data set.

Inside a standard sequence's items (at any depth) such elements are removed too, and the record
keeps the whole top-level sequence as it was, as C.12.1.1.9 asks for an attribute changed inside
a sequence: there the element is a prior value, which dciodvfy only warns about. Private
sequences are left as they are: their items are the writer's business, and the record, keyed
by attribute keyword, could not name them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom.datadict import DicomDictionary, dictionary_VR, keyword_for_tag, mask_match
from pydicom.dataset import Dataset

if TYPE_CHECKING:  # the decoder asks ``is_unknown`` without the recorder's imports
    from gateway.dicom.provenance import Changes

_NOT_DATA_SET = (0x0000, 0x0002)  # Command Set, File Meta Information


def is_unknown(tag: int) -> bool:
    """Whether ``tag`` is in a standard group of a data set and names no attribute pydicom's
    dictionary knows, repeating groups (50xx, 60xx) included; retired ones are known."""
    group = tag >> 16
    if group & 1 or group in _NOT_DATA_SET or not tag & 0xFFFF:
        return False
    return tag not in DicomDictionary and mask_match(tag) is None


def remove_unknown(ds: Dataset, record: Changes) -> None:
    """Remove every top-level ``is_unknown`` element of ``ds``, its bytes kept in ``record``."""
    # One dictionary lookup a tag first, the elements of most files are all in it; by int, as
    # a BaseTag compares with the dictionary's keys through its Python-level __eq__ (4x slower).
    for tag in [t for t in map(int, ds.keys()) if t not in DicomDictionary]:
        if is_unknown(tag):
            record.remove(ds, tag)
    for tag in [t for t, elem in ds.items() if _is_sequence_element(t, elem)]:
        keyword = keyword_for_tag(tag)
        if keyword and _inside(ds[tag].value):
            record.note(ds, keyword)  # the whole sequence as it was, before anything goes
            _strip(ds[tag].value)


def _is_sequence(ds: Dataset, tag) -> bool:
    """A sequence of a standard attribute (known without converting the element: a value still
    in its file stays there)."""
    return _is_sequence_element(tag, ds.get_item(tag, keep_deferred=True))


def _is_sequence_element(tag, elem) -> bool:
    """``_is_sequence`` for the element at ``tag`` as the data set holds it (raw or not)."""
    if tag >> 16 & 1:
        return False
    vr = getattr(elem, "VR", None)
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return False
    return vr == "SQ"


def _inside(items) -> bool:
    """Whether any item holds an unknown element, at any depth."""
    return any(is_unknown(int(tag)) or _is_sequence(item, tag) and _inside(item[tag].value)
               for item in items for tag in item.keys())


def _strip(items) -> None:
    for item in items:
        for tag in list(item.keys()):
            if is_unknown(int(tag)):
                del item[tag]
            elif _is_sequence(item, tag):
                _strip(item[tag].value)
