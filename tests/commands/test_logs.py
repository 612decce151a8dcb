"""Log lines an operator can read and a machine can split: values with spaces quoted, and the
configured level applied again on reload."""

from __future__ import annotations

import logging
import signal
import urllib.request

from gateway import logs
from tests.support.daemon import Daemon, wait_until, write_config
from tests.support.peers import free_port


def test_values_with_spaces_or_quotes_are_quoted(caplog):
    record = logging.LogRecord("gateway.x", logging.INFO, __file__, 1,
                               "event=x path=%s n=%d reason=%s plain=%s empty=%s rate=%d%%", None, None)
    record.args = ("/data/scanner exports/a.MR", 3, "it's broken", "ok", "", 5)
    line = logs.Formatter().format(record)
    assert line.endswith("""event=x path='/data/scanner exports/a.MR' n=3 reason="it's broken" """
                         """plain=ok empty='' rate=5%""")


def test_reload_applies_the_new_log_level(tmp_path):
    port = free_port()
    incoming = tmp_path / "in"
    incoming.mkdir()
    config = write_config(tmp_path / "gateway config.yaml", destinations=[{"name": "pacs", "port": free_port()}],
                          incoming=incoming, spool=tmp_path / "spool")
    with open(config, "a") as f:
        f.write(f"metrics:\n  host: 127.0.0.1\n  port: {port}\nconsole:\n  enabled: true\n")
    daemon = Daemon(config, tmp_path).start()
    try:
        wait_until(lambda: "event=started" in daemon.log_text(), 30, what="start")
        assert f"config='{config}'" in daemon.log_text()  # the path has a space
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert "event=http_request" not in daemon.log_text()  # a DEBUG line, and the level is INFO
        config.write_text(config.read_text().replace("log_level: INFO", "log_level: DEBUG"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "event=reloaded" in daemon.log_text(), 30, what="reload")
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        wait_until(lambda: "event=http_request" in daemon.log_text(), 10, what="a DEBUG line after the reload")
    finally:
        assert daemon.stop() == 0
