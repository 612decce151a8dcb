"""Deterministic synthetic instances for tests that re-read the same source."""

from __future__ import annotations

from pydicom.dataset import Dataset

from tests.support import instances


def ct_instance(index: int = 0, rows: int = 16, columns: int = 16) -> Dataset:
    """``tests.support.instances.ct_instance`` with UIDs fixed by ``index`` and size: the same call
    gives the same instance, as a re-read tape or re-dropped file does."""
    assert rows == columns, "synthetic slices are square"
    return instances.ct_instance(index, rows, uid_seed="legacy-gateway-test")
