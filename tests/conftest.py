"""Fixtures that start real peers; see ``tests/peers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.peers import Orthanc, StoreSCP

# shared/ lies beside the checkout, here and in CI; a git worktree elsewhere names it explicitly.
SAMPLES = Path(os.environ.get("LEGACY_GATEWAY_SAMPLES") or Path(__file__).resolve().parents[2] / "shared" / "samples")


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"real samples not found at {SAMPLES}: shared/ must lie beside the checkout")
    return SAMPLES


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
