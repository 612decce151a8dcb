"""Fixtures that start real peers; see ``tests/peers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import Orthanc, StoreSCP

# shared/ lies beside the checkout (or beside the folder of worktrees), here and in CI: the
# nearest ancestor that has shared/samples wins.
_HERE = Path(__file__).resolve()
SHARED = next(
    (p / "shared" for p in _HERE.parents if (p / "shared" / "samples").is_dir()),
    _HERE.parents[2] / "shared",
)
SAMPLES = SHARED / "samples"


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
