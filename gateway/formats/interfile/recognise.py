"""Interfile: which bytes are a header, where it ends, and which data file it names.

The cheap half of the format (``gateway.formats.Format``): the header is text, parsed by
``header`` without pydicom or numpy; the decoder (``decoder.Interfile``) reads the layout and
pixels when asked.
"""

from __future__ import annotations

import posixpath

from gateway.formats import Format, register
from gateway.formats.interfile.header import DATA_FILE, Header, is_interfile, parse


def data_file_name(header: Header) -> str | None:
    """The data file as a path relative to the header, or None when the header names none.

    Backslashes are taken as separators; a drive letter, an absolute path or a path leading out
    of the header's folder is reduced to its last component: the writing machine's folders do
    not exist here, and a header must not make a reader take files from elsewhere."""
    name = header.text(DATA_FILE).strip().strip('"').strip()
    if not name or name.upper() == "<NULL>":
        return None
    name = name.replace("\\", "/")
    if posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        name = posixpath.basename(name)
    name = posixpath.normpath(name)
    if name == ".." or name.startswith("../"):
        name = posixpath.basename(name)
    return name if name not in (".", "..", "") else None


class InterfileFormat(Format):
    name = "interfile"
    description = "Interfile 3.3 header and data file (NM, PET; STIR and Siemens headers)"
    priority = 20
    implementation = "gateway.formats.interfile.decoder:Interfile"

    def identify(self, data: bytes) -> bool:
        return is_interfile(data)

    def length(self, data: bytes) -> int | None:
        """The header's length: the object a medium delivers is the header (its data file is a
        companion). Only ``END OF INTERFILE`` says where a header ends; without it (a prefix, or a
        writer that left it out) the length cannot be told."""
        if not is_interfile(data):
            return None
        header = parse(data)
        ended = header.find("endofinterfile") is not None and data[header.length - 1:header.length] in (b"\n", b"\r")
        return header.length if ended else None

    def companions(self, data: bytes) -> list[str]:
        """The data file the header names, relative to the header (none for a header without one)."""
        name = data_file_name(parse(data))
        return [name] if name else []


register(InterfileFormat())
