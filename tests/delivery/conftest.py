"""Fixtures the delivery tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server and a client certificate it signed, and another CA (``make_pki``)."""
    return make_pki(tmp_path_factory.mktemp("pki"))
