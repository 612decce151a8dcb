"""The web console in a real browser (Debian's chromium, driven by selenium through chromium-driver)
against a real running service, and its JSON API and access rules over plain HTTP.

The receiver is ``StatusSCP``: it refuses one chosen instance for good the first time it is
offered (0xA900, dead-lettered) and accepts it afterwards, so a retry pressed in the page has
something to show.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread

from gateway.console.preview import png, thumbnail
from gateway.delivery.spool import encode
from tests.support.daemon import Daemon, wait_until, write_config
from tests.support.instances import ct_instance
from tests.support.peers import free_port
from tests.support.status_scp import StatusSCP

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _service(tmp_path: Path, scp: StatusSCP, console: str) -> tuple[Daemon, Path, int]:
    incoming, port = tmp_path / "incoming", free_port()
    incoming.mkdir()
    config = write_config(tmp_path / "gw.yaml", destinations=[{"name": "pacs", "port": scp.port, "aet": scp.aet}],
                          incoming=incoming, spool=tmp_path / "spool")
    with open(config, "a") as f:
        f.write(f"metrics:\n  enabled: true\n  host: 127.0.0.1\n  port: {port}\nconsole:\n{console}")
    daemon = Daemon(config, tmp_path).start()
    wait_until(lambda: "event=console_ready" in daemon.log_text(), 30, what="the console")
    return daemon, incoming, port


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _browser(tmp_path: Path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromium-driver are installed by make test")
def test_console_in_a_browser_shows_arrivals_and_retries_a_dead_letter(tmp_path):
    from selenium.webdriver.common.by import By

    good, refused = ct_instance(1), ct_instance(2)
    refused_uid = str(refused.SOPInstanceUID)
    scp = StatusSCP(policy=lambda uid, seen: 0xA900 if uid == refused_uid and seen == 0 else 0x0000).start()
    daemon, incoming, port = _service(tmp_path, scp, "  enabled: true\n")
    browser = _browser(tmp_path)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        (incoming / "good.dcm").write_bytes(encode(good))
        (incoming / "refused.dcm").write_bytes(encode(refused))

        def shown(sop: str):
            found = browser.find_elements(By.CSS_SELECTOR, f'.arrival[data-sop="{sop}"] img')
            return found and browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                                    found[0])

        assert wait_until(lambda: shown(str(good.SOPInstanceUID)), 30, what="the arrival and its preview")
        assert wait_until(lambda: shown(refused_uid), 30, what="the second arrival")
        row = f'#dead tr[data-sop="{refused_uid}"]'
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, row), 30, what="the dead letter in the page")
        assert "pacs" in browser.find_element(By.CSS_SELECTOR, row).text
        browser.find_element(By.CSS_SELECTOR, f"{row} button.retry").click()
        wait_until(lambda: not browser.find_elements(By.CSS_SELECTOR, row), 30, what="the dead letter to leave")
        delivered = '#destinations tr[data-destination="pacs"] td.delivered'
        wait_until(lambda: browser.find_element(By.CSS_SELECTOR, delivered).text == "2", 30, what="both delivered")
        accepted = sorted(uid for uid, _, status in scp.receipts if status == 0)
        assert accepted == sorted([str(good.SOPInstanceUID), refused_uid])
    finally:
        browser.quit()
        daemon.stop()
        scp.stop()


def test_console_api_needs_the_token_and_never_shows_names_unless_asked(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    scp = StatusSCP().start()
    daemon, incoming, port = _service(tmp_path, scp, f"  enabled: true\n  token_file: {token_file}\n")
    try:
        ds = ct_instance(3)
        ds.PatientName = "Doe^Jane"
        (incoming / "a.dcm").write_bytes(encode(ds))
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/api/overview")[0] == 401
        assert _get(base + "/api/overview", {"Authorization": "Bearer wrong"})[0] == 401
        basic = {"Authorization": "Basic " + base64.b64encode(b"operator:s3cret-token").decode()}
        bearer = {"Authorization": "Bearer s3cret-token"}

        def arrived():
            status, body = _get(base + "/api/arrivals", bearer)
            return status == 200 and json.loads(body)

        (arrival,) = wait_until(arrived, 30, what="the arrival")
        assert arrival["sop_instance_uid"] == str(ds.SOPInstanceUID) and arrival["patient_name"] is None
        status, png = _get(base + f"/api/preview/{ds.SOPInstanceUID}.png", basic)
        assert status == 200 and png.startswith(b"\x89PNG\r\n\x1a\n")
        status, body = _get(base + "/api/overview", basic)
        view = json.loads(body)
        assert status == 200 and view["service"]["running"] and view["destinations"][0]["name"] == "pacs"
        everything = b"".join(_get(base + p, bearer)[1] for p in ("/", "/api/overview", "/api/queue", "/api/arrivals"))
        assert b"Doe" not in everything
        assert _get(base + "/metrics", bearer)[1].count(b"legacy_gateway_received_total") >= 1
        request = urllib.request.Request(base + "/api/retry", data=b'{"destination": "pacs"}', headers=bearer)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # without X-Console: another site could have sent it
        assert refused.value.code == 403
    finally:
        daemon.stop()
        scp.stop()


def test_preview_is_the_image_made_small():
    """The thumbnail is the instance's own pixels, windowed: a bright square stays a bright square."""
    ds = ct_instance(4)
    pixels = np.zeros((ds.Rows, ds.Columns), np.uint16)
    pixels[: ds.Rows // 2, : ds.Columns // 2] = 1000
    ds.PixelData = pixels.tobytes()
    data = thumbnail(dcmread(io.BytesIO(encode(ds))))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert max(width, height) <= 128
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width + 1)[:, 1:]
    assert rows[0, 0] == 255 and rows[-1, -1] == 0
    assert png(np.full((2, 3), 7, np.uint8)).endswith(b"IEND\xaeB`\x82")
