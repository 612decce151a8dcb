"""Fixtures that start real peers; see ``tests/support/peers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.delivery import flush
from tests.support.disk import tmpfs
from tests.support.peers import Orthanc, StoreSCP
from tests.support.samples import SAMPLES, SHARED


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"real samples not found at {SAMPLES}: shared/ must lie beside the checkout")
    return SAMPLES


@pytest.fixture(scope="session")
def formats() -> Path:
    """shared/formats: the format notes (test vectors are checked against them)."""
    path = SHARED / "formats"
    if not path.is_dir():
        pytest.fail(f"format notes not found at {path}: shared/ must lie beside the checkout")
    return path


@pytest.fixture
def orthanc(tmp_path_factory):
    peer = Orthanc(tmp_path_factory.mktemp("orthanc")).start()
    yield peer
    peer.stop()


@pytest.fixture
def storescp(tmp_path_factory):
    peer = StoreSCP(tmp_path_factory.mktemp("storescp")).start()
    yield peer
    peer.stop()


@pytest.fixture
def fsync_only(monkeypatch):
    """Spools and staging areas made in this test fsync each file and folder, as they do where
    one ``syncfs`` of the file system is not sound (``gateway.delivery.flush``)."""
    monkeypatch.setattr(flush, "possible", lambda directory: False)


@pytest.fixture
def small_fs(tmp_path):
    """A 16 MB file system of the test's own (``tests.support.disk``)."""
    with tmpfs(tmp_path / "fs") as mount:
        yield mount
