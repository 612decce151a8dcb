"""Deterministic UIDs: the same vendor identity always gives the same UID (DESIGN.md, Identity).

Re-ingesting a tape must not create a second copy of a study, so a UID is a pure function of
the object's vendor identity and the UID root: ``2.25.<UUIDv5 as integer>`` by default, or
``<site root>.<decimal digest>`` when the site has its own root.
"""

from __future__ import annotations

import hashlib
import re
import uuid

# A fixed namespace of our own, so our name-based UUIDs never collide with another tool's.
_NAMESPACE = uuid.UUID("5c0e2b8e-6f1a-5d3e-9a7c-1e6a4f0b2d31")
_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

UID_MAX = 64


def is_valid_uid(value: object) -> bool:
    """A UID DICOM accepts: dotted decimal components without leading zeros, at most 64 chars."""
    return isinstance(value, str) and 0 < len(value) <= UID_MAX and bool(_UID_RE.match(value))


def _identity_text(level: str, identity: tuple[str, ...] | list[str]) -> str:
    # A unit separator keeps ("ab", "c") apart from ("a", "bc").
    return level + "\x1f" + "\x1f".join(str(p) for p in identity)


def derive_uid(level: str, identity: tuple[str, ...] | list[str], root: str = "2.25") -> str:
    """The UID of ``level`` ("study", "series", "instance", ...) for a vendor identity."""
    text = _identity_text(level, identity)
    if root == "2.25":
        return "2.25." + str(uuid.uuid5(_NAMESPACE, text).int)
    if not is_valid_uid(root) or len(root) > UID_MAX - 12:
        raise ValueError(f"UID root {root!r} is not a valid UID prefix with room for a suffix")
    room = UID_MAX - len(root) - 1
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
    suffix = str(digest)[:room].lstrip("0") or "0"
    return f"{root}.{suffix}"
