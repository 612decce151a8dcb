"""A file through the registry and normalisation, as the pipeline takes it (format tests)."""

from __future__ import annotations

import pydicom
import pytest

from gateway import formats
from gateway.dicom.normalize import normalize
from gateway.errors import DecodeError


def normalized(data: bytes | bytearray) -> pydicom.Dataset:
    """The complete instance the gateway makes of ``data``."""
    return normalize(formats.decode(bytes(data)), origin="test")


def decode_error(data: bytes | bytearray) -> DecodeError:
    """The ``DecodeError`` the registry raises for ``data`` (fails the test if none)."""
    with pytest.raises(DecodeError) as info:
        formats.decode(bytes(data))
    return info.value


def as_list(value) -> list:
    """A DICOM value as a list, whether it holds one value or several."""
    return [value] if isinstance(value, str) else list(value)
