"""STOW-RS destinations against Orthanc's DICOMweb plugin (Debian's orthanc-dicomweb): arrivals
in batches, an instance the server refuses dead-lettered alone, the server down and back, HTTPS
with a CA the test makes, basic and bearer authentication."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
import urllib3

from gateway.delivery.sender import probe
from gateway.delivery.spool import DEAD, DELIVERED, QUEUED, Spool
from gateway.delivery.stow import MultipartBody, parse_response
from tests.support.forwarding import (
    black_hole,
    forwarding,
    orthanc_uids,
    spool_instances,
    stow_destination,
    wait_until,
    write_config,
)
from tests.support.instances import ct_instance
from tests.support.peers import Orthanc, free_port
from tests.support.pki import server_pem


@pytest.fixture
def web_orthanc(tmp_path):
    peer = Orthanc(tmp_path / "orthanc", dicomweb=True).start()
    yield peer
    peer.stop()


def _states(spool: Spool, name: str) -> dict[str, str]:
    return {r["sop_instance_uid"]: r["state"] for r in spool.rows(name)}



@contextlib.contextmanager
def gated_orthanc(tmp_path: Path, lua: str) -> Iterator[tuple[Orthanc, Path]]:
    """A DICOMweb Orthanc running the Lua filter ``lua``, which looks at a gate file (``{gate}``
    in it) that exists at first: the test removes it to let things through."""
    gate = tmp_path / "gate"
    gate.write_text("")
    script = tmp_path / "filter.lua"
    script.write_text(lua.replace("{gate}", str(gate)))
    peer = Orthanc(tmp_path / "orthanc", dicomweb=True, extra={"LuaScripts": [str(script)]}).start()
    try:
        yield peer, gate
    finally:
        peer.stop()

def test_batches_arrive_unchanged(web_orthanc, tmp_path):
    spool = Spool(tmp_path / "spool")
    dest = stow_destination("web", web_orthanc.dicomweb_url, batch=8)
    uids = spool_instances(spool, 20, ["web"])
    files = {r["sop_instance_uid"]: (spool.directory / r["path"]).read_bytes() for r in spool.rows("web")}
    with forwarding(spool, [dest]) as fwd:
        assert wait_until(lambda: spool.pending("web") == 0, 30)
        assert fwd.metrics.delivered.labels("web")._value.get() == 20
    assert set(_states(spool, "web").values()) == {DELIVERED}
    stored = orthanc_uids(web_orthanc)
    assert sorted(stored) == sorted(uids)  # each once
    # streamed from the spool file as it is: Orthanc keeps the very bytes it was given
    assert web_orthanc.file(uids[0]) == files[uids[0]]
    assert {r["last_status"] for r in spool.rows("web")} == {"HTTP 200 OK"}


def test_an_instance_the_server_refuses_is_dead_lettered_alone(web_orthanc, tmp_path):
    """Orthanc's plugin refuses an instance without a Study Instance UID (Failed SOP Sequence,
    Failure Reason 0xC000 "cannot understand", HTTP 400) and stores the rest of the request."""
    spool = Spool(tmp_path / "spool")
    dest = stow_destination("web", web_orthanc.dicomweb_url, batch=8)
    good = spool_instances(spool, 3, ["web"])
    broken = ct_instance(99)
    del broken.StudyInstanceUID
    bad = spool.add(broken, ["web"]).sop_instance_uid
    good += spool_instances(spool, 2, ["web"])
    with forwarding(spool, [dest]) as fwd:
        assert wait_until(lambda: spool.pending("web") == 0, 30)
        assert fwd.metrics.dead_lettered.labels("web")._value.get() == 1
        assert fwd.metrics.up["web"] is True  # a refused instance is not a server down
    states = _states(spool, "web")
    assert states.pop(bad) == DEAD
    assert set(states.values()) == {DELIVERED}
    dead = spool.rows("web", states=[DEAD])[0]
    assert dead["last_status"] == "0xC000" and "cannot understand" in dead["reason"]
    assert sorted(orthanc_uids(web_orthanc)) == sorted(good)


def test_an_instance_the_response_does_not_name_is_retried(tmp_path):
    """A Lua filter that fails makes Orthanc drop an instance without listing it as failed
    (HTTP 200, absent from both sequences, and so is every instance after it in the request):
    not counted as stored, it is retried; the others are delivered. Once the filter lets it
    through, it arrives."""
    with gated_orthanc(tmp_path, """
function ReceivedInstanceFilter(dicom, origin, info)
   local f = io.open("{gate}", "r")
   if f ~= nil and dicom.SeriesDescription == "HOLD" then f:close(); error("held back") end
   if f ~= nil then f:close() end
   return true
end
""") as (peer, gate):
        spool = Spool(tmp_path / "spool")
        dest = stow_destination("web", peer.dicomweb_url, batch=8)
        others = spool_instances(spool, 3, ["web"])
        held = ct_instance(7)
        held.SeriesDescription = "HOLD"
        held_uid = spool.add(held, ["web"]).sop_instance_uid  # last in the first request
        with forwarding(spool, [dest]):
            assert wait_until(lambda: all(_states(spool, "web")[u] == DELIVERED for u in others), 30)
            assert wait_until(lambda: spool.rows("web", states=[QUEUED]) and
                              spool.rows("web", states=[QUEUED])[0]["attempts"] >= 2, 30)
            assert _states(spool, "web")[held_uid] == QUEUED
            assert "not listed" in spool.rows("web", states=[QUEUED])[0]["reason"]
            gate.unlink()
            assert wait_until(lambda: spool.pending("web") == 0, 30)
        assert sorted(orthanc_uids(peer)) == sorted(others + [held_uid])


def test_delivery_resumes_when_the_server_comes_back(tmp_path):
    port = free_port()
    spool = Spool(tmp_path / "spool")
    dest = stow_destination("web", f"http://127.0.0.1:{port}/dicom-web", batch=4)
    assert probe(dest, "LEGACYGW")[0] is False
    peer = Orthanc(tmp_path / "orthanc", http_port=port, dicomweb=True)
    with forwarding(spool, [dest]) as fwd:
        uids = spool_instances(spool, 10, ["web"])
        fwd.notify(("web",))
        assert wait_until(lambda: fwd.metrics.up["web"] is False, 10)
        time.sleep(2)
        rows = spool.rows("web")
        assert {r["state"] for r in rows} == {QUEUED}
        assert all(r["attempts"] == 0 for r in rows)  # nothing reached a server: nothing counted
        peer.start()
        try:
            assert wait_until(lambda: spool.pending("web") == 0, 15), "not delivered after the server came back"
            assert fwd.metrics.up["web"] is True
            assert sorted(orthanc_uids(peer)) == sorted(uids)
        finally:
            peer.stop()


def test_server_errors_are_retried_and_the_server_probed_until_it_recovers(tmp_path):
    """While a Lua HTTP filter fails, Orthanc answers every request (the probe's GET too) with
    500: the batch is retried, not dead-lettered, and the server is probed until it answers."""
    with gated_orthanc(tmp_path, """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
   local f = io.open("{gate}", "r")
   if f ~= nil then f:close(); error("overloaded") end
   return true
end
""") as (peer, gate):
        spool = Spool(tmp_path / "spool")
        dest = stow_destination("web", peer.dicomweb_url, batch=8)
        uids = spool_instances(spool, 5, ["web"])
        with forwarding(spool, [dest]) as fwd:
            assert wait_until(lambda: fwd.metrics.up["web"] is False, 10)
            time.sleep(1.5)
            rows = spool.rows("web")
            assert {r["state"] for r in rows} == {QUEUED}
            assert {r["last_status"] for r in rows} == {"HTTP 500 Internal Server Error"}
            assert all(r["attempts"] == 1 for r in rows)  # sent once, then probed, not sent again
            gate.unlink()
            assert wait_until(lambda: spool.pending("web") == 0, 15)
        assert sorted(orthanc_uids(peer)) == sorted(uids)


def test_a_server_that_never_answers_times_out_and_is_retried(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool_instances(spool, 3, ["web"])
    with black_hole() as port:
        dest = replace(stow_destination("web", f"http://127.0.0.1:{port}/dicom-web"), timeout=1.0)
        with forwarding(spool, [dest]) as fwd:
            assert wait_until(lambda: fwd.metrics.up["web"] is False, 10)
            time.sleep(0.5)
    rows = spool.rows("web")
    assert {r["state"] for r in rows} == {QUEUED}
    assert all(r["attempts"] == 1 and "no response within 1s" in r["reason"] for r in rows)


@pytest.fixture
def https_orthanc(pki, tmp_path):
    peer = Orthanc(tmp_path / "orthanc", dicomweb=True, certificate=server_pem(pki)).start()
    yield peer
    peer.stop()


def test_https_with_the_servers_ca(pki, https_orthanc, tmp_path):
    assert https_orthanc.dicomweb_url.startswith("https://")
    spool = Spool(tmp_path / "spool")
    dest = stow_destination("web", https_orthanc.dicomweb_url, ca=str(pki / "ca.crt"))
    assert probe(dest, "LEGACYGW")[0] is True
    uids = spool_instances(spool, 5, ["web"])
    with forwarding(spool, [dest]):
        assert wait_until(lambda: spool.pending("web") == 0, 30)
    assert sorted(orthanc_uids(https_orthanc)) == sorted(uids)


def test_https_refuses_a_server_its_ca_did_not_sign(pki, https_orthanc, tmp_path):
    spool = Spool(tmp_path / "spool")
    dest = stow_destination("web", https_orthanc.dicomweb_url, ca=str(pki / "other-ca.crt"))
    ok, detail, _ = probe(dest, "LEGACYGW")
    assert not ok and "CERTIFICATE_VERIFY_FAILED" in detail
    spool_instances(spool, 3, ["web"])
    with forwarding(spool, [dest]) as fwd:
        assert wait_until(lambda: fwd.metrics.up["web"] is False, 10)
        time.sleep(1)
    assert {r["state"] for r in spool.rows("web")} == {QUEUED}  # waits for a fixed CA, nothing lost
    assert orthanc_uids(https_orthanc) == []
    lab = stow_destination("web", https_orthanc.dicomweb_url, ca=str(pki / "other-ca.crt"), verify=False)
    with forwarding(spool, [lab]):
        assert wait_until(lambda: spool.pending("web") == 0, 30)


def _secret(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_basic_authentication(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    peer = Orthanc(tmp_path / "orthanc", dicomweb=True, users={"gateway": "pw-4f9a2c"}).start()
    try:
        spool = Spool(tmp_path / "spool")
        good = stow_destination("web", peer.dicomweb_url, basic_user="gateway",
                                basic_password_file=_secret(tmp_path, "pw", "pw-4f9a2c"))
        uids = spool_instances(spool, 4, ["web"])
        with forwarding(spool, [good]):
            assert wait_until(lambda: spool.pending("web") == 0, 30)
        assert sorted(orthanc_uids(peer)) == sorted(uids)
        # A wrong password: the whole request is refused (401), for good, with the reason.
        wrong = stow_destination("web", peer.dicomweb_url, basic_user="gateway",
                                 basic_password_file=_secret(tmp_path, "wrong", "wrong-77e1d0"))
        refused = spool_instances(spool, 3, ["web"])
        with forwarding(spool, [wrong]):
            assert wait_until(lambda: spool.pending("web") == 0, 30)
        dead = spool.rows("web", states=[DEAD])
        assert sorted(r["sop_instance_uid"] for r in dead) == sorted(refused)
        assert {r["last_status"] for r in dead} == {"HTTP 401 Unauthorized"}
        assert "unauthorised" in dead[0]["reason"]
    finally:
        peer.stop()
    assert "pw-4f9a2c" not in caplog.text and "wrong-77e1d0" not in caplog.text


def test_bearer_token(tmp_path, caplog):
    """Orthanc checks the token in a Lua HTTP filter (it has no bearer tokens of its own)."""
    caplog.set_level(logging.DEBUG)
    token = "tok-51c0e8b2"
    lua = tmp_path / "bearer.lua"
    lua.write_text(f"""
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
   if string.sub(uri, 1, 10) ~= "/dicom-web" then return true end
   return httpHeaders["authorization"] == "Bearer {token}"
end
""")
    peer = Orthanc(tmp_path / "orthanc", dicomweb=True, extra={"LuaScripts": [str(lua)]}).start()
    try:
        spool = Spool(tmp_path / "spool")
        dest = stow_destination("web", peer.dicomweb_url, bearer_file=_secret(tmp_path, "token", token))
        assert probe(dest, "LEGACYGW")[1] == "HTTP 200 OK"
        uids = spool_instances(spool, 4, ["web"])
        with forwarding(spool, [dest]):
            assert wait_until(lambda: spool.pending("web") == 0, 30)
        assert sorted(orthanc_uids(peer)) == sorted(uids)
        stale = stow_destination("web", peer.dicomweb_url, bearer_file=_secret(tmp_path, "old", "tok-expired"))
        assert probe(stale, "LEGACYGW")[1] == "HTTP 403 Forbidden"
        refused = spool_instances(spool, 2, ["web"])
        with forwarding(spool, [stale]):
            assert wait_until(lambda: spool.pending("web") == 0, 30)
        assert sorted(r["sop_instance_uid"] for r in spool.rows("web", states=[DEAD])) == sorted(refused)
    finally:
        peer.stop()
    assert token not in caplog.text


def test_a_dicom_xml_answer_is_read_as_well(web_orthanc, tmp_path):
    """The response parser on Orthanc's own DICOM XML answer (the forwarder asks for JSON; a
    server may answer XML only)."""
    spool = Spool(tmp_path / "spool")
    uids = spool_instances(spool, 2, ["web"])
    rows = spool.rows("web")
    body = MultipartBody([spool.directory / r["path"] for r in rows], [r["size"] for r in rows])
    r = urllib3.PoolManager().request("POST", f"{web_orthanc.dicomweb_url}/studies", body=body,
                                      headers={"Content-Type": body.content_type, "Accept": "application/dicom+xml",
                                               "Content-Length": str(body.length)})
    assert r.status == 200 and r.headers["Content-Type"] == "application/dicom+xml"
    listed = parse_response(r.headers["Content-Type"], r.data)
    assert sorted(listed.stored) == sorted(uids) and not listed.failed


def test_send_and_echo_from_the_command_line(web_orthanc, tmp_path):
    """The configuration's ``type: dicomweb`` all the way through ``legacy-gateway echo`` and
    ``send`` (the forwarder built from it, the credentials read from their file)."""
    root = Path(__file__).resolve().parents[2]
    token = _secret(tmp_path, "token", "not-checked-here")
    config = write_config(tmp_path / "gateway.yaml", tmp_path / "spool", [
        {"name": "web", "type": "dicomweb", "url": web_orthanc.dicomweb_url, "batch": 2,
         "auth": {"bearer_file": token}, "retry": {"initial_delay": "100ms", "max_delay": "500ms"}}])
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        ct_instance(i).save_as(folder / f"img{i}.dcm", enforce_file_format=True)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "gateway", *map(str, args)], cwd=root, capture_output=True,
                              text=True, timeout=120)

    echo = cli("echo", "-c", config, "web")
    assert echo.returncode == 0 and f"web: {web_orthanc.dicomweb_url}: OK: HTTP 200 OK" in echo.stdout, echo.stdout
    sent = cli("send", "-c", config, folder, "--to", "web")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "3 of 3 delivered to web" in sent.stdout
    assert len(orthanc_uids(web_orthanc)) == 3
    assert "not-checked-here" not in sent.stdout + sent.stderr + echo.stdout + echo.stderr
