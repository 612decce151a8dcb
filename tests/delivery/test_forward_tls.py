"""DICOM over TLS against DCMTK's storescp started with +tls, using a CA, server and client
certificates the test makes with the openssl command line tool."""

from __future__ import annotations

import pytest

from gateway.config import TLSConfig
from gateway.delivery.association import echo
from gateway.delivery.spool import DELIVERED, QUEUED, Spool
from tests.support.forwarding import destination, forwarding, spool_instances, wait_until
from tests.support.peers import StoreSCP


@pytest.fixture
def tls_storescp(pki, tmp_path):
    # storescp requires and verifies a client certificate (-rc is its default with +tls).
    peer = StoreSCP(tmp_path / "scp", args=("+tls", str(pki / "server.key"), str(pki / "server.crt"),
                                            "+cf", str(pki / "ca.crt"))).start()
    yield peer
    peer.stop()


def test_tls_delivery_with_verified_peer_and_client_certificate(pki, tls_storescp, tmp_path):
    tls = TLSConfig(ca=str(pki / "ca.crt"), cert=str(pki / "client.crt"), key=str(pki / "client.key"))
    dest = destination("secure", tls_storescp.port, tls=tls)
    ok, detail, _ = echo(dest, "LEGACYGW")
    assert ok, detail
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 5, ["secure"])
    with forwarding(spool, [dest]):
        assert wait_until(lambda: spool.pending("secure") == 0, 30)
    assert {r["state"] for r in spool.rows("secure")} == {DELIVERED}
    assert len(tls_storescp.received()) == len(uids)


def test_tls_refuses_a_peer_its_ca_did_not_sign(pki, tls_storescp, tmp_path):
    tls = TLSConfig(ca=str(pki / "other-ca.crt"), cert=str(pki / "client.crt"), key=str(pki / "client.key"))
    dest = destination("secure", tls_storescp.port, tls=tls)
    ok, detail, _ = echo(dest, "LEGACYGW")
    assert not ok
    spool = Spool(tmp_path / "spool")
    spool_instances(spool, 3, ["secure"])
    with forwarding(spool, [dest]) as fwd:
        assert wait_until(lambda: fwd.metrics.association_failures.labels("secure")._value.get() >= 2, 10)
    assert {r["state"] for r in spool.rows("secure")} == {QUEUED}
    assert tls_storescp.received() == []


def test_tls_verification_can_be_turned_off_for_a_lab(pki, tls_storescp, tmp_path):
    tls = TLSConfig(ca=str(pki / "other-ca.crt"), cert=str(pki / "client.crt"), key=str(pki / "client.key"),
                    verify=False)
    ok, detail, _ = echo(destination("lab", tls_storescp.port, tls=tls), "LEGACYGW")
    assert ok, detail
