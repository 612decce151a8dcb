"""The service's one HTTP listener: Prometheus metrics, and the web console with its JSON API.

Routes (the console's only when it is enabled, the metrics only when they are):

- ``GET /metrics``: Prometheus text format.
- ``GET /``: the console page (``page.html``), which polls the API below.
- ``GET /api/overview``: ``snapshot.overview``, the same data as ``legacy-gateway status --json``.
- ``GET /api/queue?state=dead&destination=NAME``: delivery rows.
- ``GET /api/arrivals``, ``GET /api/preview/<SOP Instance UID>.png``: recent arrivals and thumbnails.
- ``POST /api/retry`` (JSON ``{"destination": NAME, "sop_instance_uid": UID}``; without the UID,
  every dead letter of that destination): dead letters sent again.

With a token configured every request must carry it (``Authorization: Bearer TOKEN``, or HTTP
Basic with the token as password, so a browser can ask for it). A POST must also carry
``X-Console: 1``, a header no other site can make a browser send here without asking first.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from gateway.console import snapshot
from gateway.delivery.metrics import Metrics
from gateway.delivery.spool import DEAD, STATES
from gateway.errors import listen_error

log = logging.getLogger("gateway.console")


@dataclass
class ConsoleContext:
    """What the listener serves from; the service fills it and keeps it current across reloads."""

    metrics: Metrics | None = None                       # serve /metrics
    console: bool = False                                # serve the page and the API
    token: str | None = None
    config: Any = None
    spool: Any = None
    arrivals: snapshot.Arrivals = field(default_factory=snapshot.Arrivals)
    service_state: Callable[[], dict[str, Any] | None] = lambda: None
    on_requeued: Callable[[], None] = lambda: None       # wake the forwarder


class HttpListener:
    def __init__(self, host: str, port: int, context: ConsoleContext):
        self.host, self.port, self.context = host, port, context
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        context = self.context

        class Handler(_Handler):
            ctx = context

        try:
            self.httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        except (OSError, OverflowError) as exc:
            raise listen_error("metrics and the console", self.host, self.port, exc) from None
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True).start()
        log.info("event=http_started address=%s:%d console=%s metrics=%s", self.host, self.port,
                 "on" if context.console else "off", "on" if context.metrics else "off")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


class _Handler(BaseHTTPRequestHandler):
    ctx: ConsoleContext
    server_version = "legacy-gateway"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("event=http_request client=%s request=%r", self.client_address[0], format % args)

    # -- dispatch ---------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._authorised():
            return
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        if path == "/metrics" and self.ctx.metrics is not None:
            return self._send(HTTPStatus.OK, generate_latest(self.ctx.metrics.registry), CONTENT_TYPE_LATEST)
        if not self.ctx.console:
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        if path in ("/", "/index.html"):
            page = resources.files("gateway.console").joinpath("page.html").read_bytes()
            return self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        if path == "/api/overview":
            return self._json(snapshot.overview(self.ctx.config, self.ctx.spool, self.ctx.service_state()))
        if path == "/api/queue":
            states = [s for s in query.get("state", []) if s in STATES] or list(STATES)
            dest = (query.get("destination") or [None])[0]
            return self._json(snapshot.queue(self.ctx.spool, states, dest))
        if path == "/api/arrivals":
            return self._json(self.ctx.arrivals.list())
        if path.startswith("/api/preview/") and path.endswith(".png"):
            png = self.ctx.arrivals.preview(unquote(path[len("/api/preview/"):-4]))
            if png is not None:
                return self._send(HTTPStatus.OK, png, "image/png")
        return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        if not self.ctx.console or urlsplit(self.path).path != "/api/retry":
            return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
        if self.headers.get("X-Console") != "1":
            return self._send(HTTPStatus.FORBIDDEN, b"missing X-Console header\n", "text/plain")
        try:
            length = min(int(self.headers.get("Content-Length", "0")), 4096)
            body = json.loads(self.rfile.read(length) or b"{}")
            dest = str(body["destination"])
            uid = body.get("sop_instance_uid")
        except (ValueError, KeyError, TypeError):
            return self._send(HTTPStatus.BAD_REQUEST, b"expected {\"destination\": ..., \"sop_instance_uid\": ...}\n",
                              "text/plain")
        count = self.ctx.spool.requeue(dest, [DEAD], [str(uid)] if uid else None)
        log.info("event=console_retry destination=%s instances=%d client=%s", dest, count, self.client_address[0])
        self.ctx.on_requeued()
        return self._json({"requeued": count})

    # -- helpers --------------------------------------------------------------------------------

    def _authorised(self) -> bool:
        token = self.ctx.token
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        offered = ""
        if given.startswith("Bearer "):
            offered = given[7:].strip()
        elif given.startswith("Basic "):
            try:
                offered = base64.b64decode(given[6:]).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                offered = ""
        if offered and hmac.compare_digest(offered.encode(), token.encode()):
            return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="legacy-gateway"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _json(self, data: Any) -> None:
        self._send(HTTPStatus.OK, json.dumps(data, default=str).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
