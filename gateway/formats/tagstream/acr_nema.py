"""ACR-NEMA 1.0/2.0 files: implicit-VR tag streams in any of three byte orders, to DICOM.

Identification (acr-nema.md 3.3): not Part-10, not explicit VR; the leading elements parse
as a tag stream starting in group 0000 or 0008; and either a recognition code says
``ACR-NEMA`` (or LIBIDO), or there is no SOP Class UID (a headerless DICOM stream has one and
is left to the pass-through). SPI streams (``recognise.is_spi``) are the SPI decoder's.
"""

from __future__ import annotations

from typing import Callable

from gateway.dicom import values as acrvalues
from gateway.formats import Decoded, DumpRow
from gateway.formats.tagstream import mapping, siemens_shadow
from gateway.formats.tagstream.convert import TEXT_VRS, Converted, ValueReader, convert
from gateway.formats.tagstream.dictionary import RETIRED_SUCCESSORS, private_entry, standard_entry
from gateway.formats.tagstream.recognise import AcrNemaFormat
from gateway.formats.tagstream.stream import read_stream, tag_str

_DUMP_VALUE_LIMIT = 1024


def decode_stream(data: bytes, fmt: str, check: Callable[[Converted], None] | None = None) -> Decoded:
    """Shared by the ACR-NEMA and SPI decoders: stream → dataset → vendor and generic rules.

    ``check`` sees the converted elements first (a format's own refusals, e.g. compression).
    """
    stream = read_stream(data)
    conv = convert(stream)
    if check is not None:
        check(conv)
    if siemens_shadow.is_siemens(conv.dataset) or _has_siemens_creators(conv):
        siemens_shadow.apply(conv)
    mapping.finish(conv)
    acrvalues.ready_to_write(conv.dataset)
    notes = [f"byte order: {stream.order.value}", *stream.notes, *conv.notes]
    return Decoded(
        dataset=conv.dataset,
        format=fmt,
        identity=mapping.identity(conv.dataset, fmt),
        vendor_header=data[: conv.pixel_offset] or None,
        notes=notes,
    )


def _has_siemens_creators(conv: Converted) -> bool:
    ds = conv.dataset
    return any(
        tag & 0x00010000 and 0x10 <= (tag & 0xFFFF) <= 0xFF and str(ds[tag].value).startswith("SIEMENS")
        for tag in ds.keys()
    )


def dump_stream(data: bytes) -> list[DumpRow]:
    """Every element as read: offset, name and VR from our dictionary, value as decoded.

    Text is shown as written (ACR-NEMA forms included), numbers as numbers, long or bulk
    values by their size; the DICOM successor of a retired element is the target.
    """
    stream = read_stream(data)
    reader = ValueReader(stream)
    rows: list[DumpRow] = []
    creators: dict[tuple[int, int], str] = {}
    for elem in stream.elements:
        group, number = elem.group, elem.element
        target = ""
        if group & 1 and 0x10 <= number <= 0xFF:
            creators[(group, number)] = reader.text(elem, "LO")[0] if elem.length else ""
            vr, name = "LO", "Private Creator"
        elif group & 1:
            creator = creators.get((group, number >> 8), "")
            entry = private_entry(creator, group, number & 0xFF) if creator else None
            vr = entry.vr if entry else "UN"
            name = f"{creator or 'no creator'}: {entry.name if entry else 'unknown'}"
            target = entry.target if entry else ""
        else:
            entry = standard_entry(elem.tag)
            vr = entry.vr.split(" or ")[-1] if entry else "UN"
            name = entry.name if entry else "unknown"
            target = RETIRED_SUCCESSORS.get(elem.tag, "")
        rows.append(DumpRow(offset=elem.offset, name=f"{tag_str(elem.tag)} {name}", type=vr,
                            value=_show(reader, elem, vr), target=target))
    return rows


def _show(reader: ValueReader, elem, vr: str):
    if vr in TEXT_VRS and elem.length <= _DUMP_VALUE_LIMIT:
        return "\\".join(reader.text(elem, vr))
    if vr in ("US", "SS", "UL", "SL", "AT", "FL", "FD") and elem.length <= _DUMP_VALUE_LIMIT:
        values = reader.binary(elem, vr)
        return values if values is not None else f"<{elem.length} bytes, not {vr}>"
    return f"<{elem.length} bytes>"


class AcrNema(AcrNemaFormat):
    def decode(self, data: bytes) -> Decoded:
        return decode_stream(data, self.name)

    def dump(self, data: bytes) -> list[DumpRow]:
        return dump_stream(data)
