"""One ``BaseTag`` object per tag number, shared by the decoder's data sets and our lookups.

A data set is a dict keyed by ``BaseTag``, whose ``__eq__`` is Python code: every lookup by
another object of the same number (a tag made for the lookup) calls it, a few hundred times an
image. A dict compares identical keys without calling it, so the pass-through decoder keys its
elements by these shared objects and ``fieldtable.tag_and_vr`` hands out the same ones.
"""

from __future__ import annotations

from pydicom.tag import BaseTag

_SHARED: dict[int, BaseTag] = {}
_LIMIT = 1 << 16  # damaged files name any tags: past this many, new ones are not kept


def shared_tag(number: int) -> BaseTag:
    """The shared ``BaseTag`` of ``number`` (a plain int: a ``BaseTag`` would compare by its
    own ``__eq__`` against the keys here)."""
    tag = _SHARED.get(number)
    if tag is None:
        tag = BaseTag(number)
        if len(_SHARED) < _LIMIT:
            _SHARED[number] = tag
    return tag
