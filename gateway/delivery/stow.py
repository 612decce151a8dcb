"""STOW-RS (PS3.18 10.5): a batch of spooled instances in one HTTP POST, over reused connections.

One ``multipart/related; type="application/dicom"`` request per batch to ``{url}/studies``,
its parts streamed from the spool files as they are (never decoded), with a Content-Length
computed from the file sizes. The answer is judged per instance where the server lists it:
in the Referenced SOP Sequence (stored; a Warning Reason is recorded), in the Failed SOP
Sequence (its Failure Reason goes through the same status table as a C-STORE status: out of
resources is retried, "cannot understand" dead-lettered, ...). An instance a success answer
leaves out of its lists is retried, never taken as stored; otherwise the HTTP status decides
for what is not listed (``outcomes.HTTP_RULES``). DICOM JSON and DICOM XML answers are both
read, whichever the server sends.

The HTTP client is urllib3: one connection pool per lane, kept alive across requests, with
TLS through the same ``ssl.SSLContext`` as DICOM TLS (``gateway.delivery.tls``). The bearer
token or basic password is read from its file for every request (a rotated token needs no
restart) and only ever put in the Authorization header: never logged, never in a detail.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import uuid
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, ContextManager, Iterable

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    InsecureRequestWarning,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from gateway.config import Destination, DicomWeb, TLSConfig
from gateway.delivery.association import Sent
from gateway.delivery.outcomes import SUCCESS, Failure, Outcome, Rule, classify_failure, classify_http, classify_status
from gateway.delivery.sender import Batch, Pair
from gateway.delivery.spool import Item
from gateway.delivery.tls import client_context

log = logging.getLogger("gateway.delivery.stow")

BLOCK = 256 * 1024  # bytes per socket write
ACCEPT = "application/dicom+json"

# PS3.18 Table 10.5.3-3/-4 (tags of the STOW-RS response).
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"

# Connection failures: nothing reached the server, so nothing of the batch was attempted.
_NOT_CONNECTED = (NewConnectionError, ConnectTimeoutError, NameResolutionError, SSLError, ConnectionRefusedError)


class MultipartBody:
    """A file-like multipart/related body whose parts are read from the spool files on demand.

    ``len(body)`` is known in advance (the sizes of the files as claimed), so the request
    carries a Content-Length rather than chunked encoding (which some servers refuse)."""

    def __init__(self, paths: list[Path], sizes: list[int]):
        self.boundary = uuid.uuid4().hex
        head = f"--{self.boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        self._pieces: list[bytes | Path] = []
        self.length = 0
        for path, size in zip(paths, sizes):
            self._pieces += [head, path, b"\r\n"]
            self.length += len(head) + size + 2
        tail = f"--{self.boundary}--\r\n".encode()
        self._pieces.append(tail)
        self.length += len(tail)
        self._current = None
        self._index = 0
        self._sent = 0

    @property
    def content_type(self) -> str:
        return f'multipart/related; type="application/dicom"; boundary={self.boundary}'

    def read(self, size: int = -1) -> bytes:
        size = BLOCK if size is None or size < 0 else size
        out = bytearray()
        while len(out) < size and self._index < len(self._pieces):
            piece = self._pieces[self._index]
            if isinstance(piece, bytes):
                out += piece
                self._index += 1
                continue
            if self._current is None:
                self._current = open(piece, "rb")
            chunk = self._current.read(size - len(out))
            if chunk:
                out += chunk
            else:
                self._current.close()
                self._current = None
                self._index += 1
        self._sent += len(out)
        if self._sent > self.length:
            raise OSError("a spool file grew while it was being sent")
        return bytes(out)

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def authorization(web: DicomWeb) -> str | None:
    """The Authorization header's value, from the secret's file (read now: a new token needs
    no restart)."""
    if web.bearer_file:
        return "Bearer " + Path(web.bearer_file).read_text().strip()
    if web.basic_user and web.basic_password_file:
        password = Path(web.basic_password_file).read_text().rstrip("\r\n")
        return "Basic " + base64.b64encode(f"{web.basic_user}:{password}".encode()).decode()
    return None


def _pool(dest: Destination) -> urllib3.PoolManager:
    web = dest.web
    kw: dict = {"timeout": urllib3.Timeout(connect=dest.timeout, read=dest.timeout), "retries": False,
                "maxsize": 1, "blocksize": BLOCK}
    if web.url.startswith("https://"):
        kw["ssl_context"] = client_context(TLSConfig(ca=web.ca, verify=web.verify))
        if not web.verify:
            kw["cert_reqs"] = "CERT_NONE"
            kw["assert_hostname"] = False
            # chosen in the configuration (and said by check-config's reader): not at every request
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    return urllib3.PoolManager(num_pools=1, **kw)


def _headers(web: DicomWeb, **extra: str) -> dict[str, str]:
    headers = {"User-Agent": "legacy-gateway", **extra}
    auth = authorization(web)
    if auth:
        headers["Authorization"] = auth
    return headers


def _why(exc: Exception) -> str:
    """A connection failure in a few words (urllib3 nests the cause)."""
    reason = getattr(exc, "reason", None) or exc
    return f"{type(exc).__name__}: {reason}"


class StowSender:
    """One lane's HTTP connection to a STOW-RS server (``gateway.delivery.sender.Sender``)."""

    def __init__(self, dest: Destination):
        assert dest.web is not None, "a dicomweb destination has its web settings"
        self.dest = dest
        self.web = dest.web
        self.http: urllib3.PoolManager | None = None
        self.sent = 0
        self.last_used = 0.0

    @property
    def is_open(self) -> bool:
        return self.http is not None

    def covers(self, pairs: Iterable[Pair], commitment: bool = False) -> bool:
        return self.is_open  # any SOP class and transfer syntax goes as application/dicom

    def open(self, first: Iterable[Pair] = (), waiting: Iterable[Pair] = (), commitment: bool = False) -> None:
        """Prepare the pool; connections are made by the first request (so a server that is
        down is found out by the send, which gives the batch back unpenalised)."""
        self.close()
        self.http = _pool(self.dest)
        self.sent = 0
        self.last_used = time.monotonic()

    def close(self) -> None:
        if self.http is not None:
            self.http.clear()
            self.http = None

    def abort(self) -> None:
        self.close()

    def idling(self) -> ContextManager[None]:
        return contextlib.nullcontext()  # nothing runs between requests

    # -- one batch ------------------------------------------------------------------------

    def send_batch(self, items: list[Item], stopping: threading.Event,
                   meanwhile: Callable[[], None] | None = None) -> Batch:
        batch = Batch()
        if stopping.is_set():
            batch.released = [(i, "stopping") for i in items]
            return batch
        present = []
        for item in items:
            if Path(item.path).is_file():
                present.append(item)
            else:
                batch.answered.append((item, Sent(classify_failure(Failure.FILE_MISSING), "",
                                                  f"{item.path} is missing")))
        if not present:
            return batch
        if not self.is_open:
            self.open()
        try:
            response = self._post(present)
        except _NOT_CONNECTED as exc:
            batch.released += [(i, "not sent: cannot connect") for i in present]
            batch.lost = f"cannot connect to {self.web.url}: {_why(exc)}"
            return batch
        except OSError as exc:  # a secret or spool file that cannot be read: nothing went out whole
            batch.released += [(i, "not sent") for i in present]
            batch.lost = f"cannot send to {self.web.url}: {type(exc).__name__}: {exc}"
            return batch
        except ReadTimeoutError:
            detail = f"no response within {self.dest.timeout:g}s"
            rule = classify_failure(Failure.NO_RESPONSE)
            batch.answered += [(i, Sent(rule, "", detail)) for i in present]
            batch.lost = detail
            return batch
        except HTTPError as exc:  # the connection broke during the exchange
            detail = f"connection lost: {_why(exc)}"
            rule = classify_failure(Failure.ASSOCIATION_ABORTED)
            batch.answered += [(i, Sent(rule, "", detail)) for i in present]
            batch.lost = detail
            return batch
        finally:
            self.last_used = time.monotonic()
        if meanwhile is not None:  # answered: the lane may claim its next batch
            meanwhile()
        self.sent += len(present)
        batch.answered += judge(present, response.status, response.reason or "",
                                response.headers.get("Content-Type", ""), response.data)
        if classify_http(response.status).destination_down:
            batch.lost = f"HTTP {response.status} {response.reason or ''}".strip()
        return batch

    def _post(self, items: list[Item]) -> urllib3.BaseHTTPResponse:
        """POST the batch; once more on a fresh connection if a kept-alive one turns out to
        have been closed by the server before it answered (STOW-RS is safe to repeat: the
        same instances are stored again)."""
        for attempt in (1, 2):
            body = MultipartBody([Path(i.path) for i in items], [i.size for i in items])
            headers = _headers(self.web, **{"Content-Type": body.content_type, "Accept": ACCEPT,
                                            "Content-Length": str(body.length)})
            try:
                return self.http.request("POST", f"{self.web.url}/studies", body=body, headers=headers,
                                         redirect=False, preload_content=True)
            except ProtocolError as exc:
                if attempt == 2 or not _closed_early(exc):
                    raise
                log.debug("event=stow_reconnect destination=%s", self.dest.name)
            finally:
                body.close()
        raise AssertionError("unreachable")


def _closed_early(exc: ProtocolError) -> bool:
    cause = exc.args[1] if len(exc.args) > 1 else None
    return isinstance(cause, (ConnectionResetError, BrokenPipeError)) or "closed connection" in str(exc)


# -- the response -------------------------------------------------------------------------

def judge(items: list[Item], status: int, reason: str, content_type: str, body: bytes) -> list[tuple[Item, Sent]]:
    """Each instance's outcome from the server's answer."""
    http = classify_http(status)
    listed = parse_response(content_type, body)
    where = f"HTTP {status}" + (f" {reason}" if reason else "")
    out = []
    for item in items:
        size = item.size
        if item.sop_instance_uid in listed.failed:
            code = listed.failed[item.sop_instance_uid]
            rule = classify_status(code) if code is not None else Rule(-1, -1, http.outcome, "failed")
            if rule.outcome is Outcome.DELIVERED:  # a success code as a Failure Reason still failed
                rule = Rule(-1, -1, http.outcome if http.outcome is not Outcome.DELIVERED else Outcome.RETRY, "failed")
            status_text = f"0x{code:04X}" if code is not None else where
            out.append((item, Sent(rule, status_text, f"{where}: failed: {rule.meaning}", size)))
        elif item.sop_instance_uid in listed.stored:
            code = listed.stored[item.sop_instance_uid]
            if code:
                rule = classify_status(code)
                if rule.outcome is not Outcome.DELIVERED:  # a stored instance is delivered whatever it says
                    rule = Rule(code, code, Outcome.DELIVERED, f"warning 0x{code:04X}")
                out.append((item, Sent(rule, f"0x{code:04X}", f"{where}: stored with {rule.meaning}", size)))
            else:
                out.append((item, Sent(SUCCESS, where, "stored", size)))
        elif http.outcome is Outcome.DELIVERED and listed.read:
            # The server answered with its lists, without this one: we cannot tell it was stored
            # (Orthanc's plugin stops at an instance its Lua filter fails on, answers 200 and
            # lists neither that instance nor those after it).
            rule = Rule(-1, -1, Outcome.RETRY, "not in the STOW-RS response")
            out.append((item, Sent(rule, where, f"{where}: not listed in the response", size)))
        elif http.outcome is Outcome.DELIVERED:
            out.append((item, Sent(SUCCESS, where, "stored", size)))
        else:
            out.append((item, Sent(http, where, f"{where}: {http.meaning}", size)))
    return out


class Listed:
    """The instances a STOW-RS response names: SOP Instance UID -> Warning or Failure Reason."""

    def __init__(self) -> None:
        self.stored: dict[str, int | None] = {}
        self.failed: dict[str, int | None] = {}
        self.read = False  # a STOW-RS response was read (with either sequence, even empty)


def parse_response(content_type: str, body: bytes) -> Listed:
    """Read the Referenced and Failed SOP Sequences from DICOM JSON (PS3.18 F) or DICOM XML
    (PS3.19 A.1), by the Content-Type (or, without one, the first byte); anything else (an
    HTML error page, nothing) lists no instance."""
    listed = Listed()
    kind = content_type.split(";")[0].strip().lower()
    if not kind:  # Orthanc's plugin sends its 400/409 answers without a Content-Type
        start = (body or b"").lstrip()[:1]
        kind = "json" if start in (b"{", b"[") else "xml" if start == b"<" else ""
    try:
        if kind.endswith("json"):
            _from_json(json.loads(body or b"null"), listed)
        elif kind.endswith("xml"):
            _from_xml(ET.fromstring(body), listed)
    except (ValueError, ET.ParseError, TypeError, AttributeError, KeyError) as exc:
        log.warning("event=stow_response_unreadable content_type=%s error=%r", kind, str(exc)[:200])
        return Listed()
    return listed


def _json_value(element: dict | None) -> object:
    values = (element or {}).get("Value") or []
    return values[0] if values else None


def _from_json(doc: object, listed: Listed) -> None:
    if isinstance(doc, list):  # some servers wrap the dataset in a list
        doc = doc[0] if doc else {}
    if not isinstance(doc, dict):
        return
    for tag, target, reason_tag in ((REFERENCED_SOP_SEQUENCE, listed.stored, WARNING_REASON),
                                    (FAILED_SOP_SEQUENCE, listed.failed, FAILURE_REASON)):
        listed.read = listed.read or tag in doc
        for item in (doc.get(tag) or {}).get("Value") or []:
            uid = _json_value(item.get(REFERENCED_SOP_INSTANCE_UID))
            if uid:
                target[str(uid)] = _code(_json_value(item.get(reason_tag)))


def _from_xml(root: ET.Element, listed: Listed) -> None:
    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def attribute(parent: ET.Element, tag: str) -> ET.Element | None:
        for child in parent:
            if local(child.tag) == "DicomAttribute" and child.get("tag", "").upper() == tag:
                return child
        return None

    def value(parent: ET.Element, tag: str) -> str | None:
        found = attribute(parent, tag)
        if found is None:
            return None
        for child in found:
            if local(child.tag) == "Value" and child.text:
                return child.text.strip()
        return None

    for tag, target, reason_tag in ((REFERENCED_SOP_SEQUENCE, listed.stored, WARNING_REASON),
                                    (FAILED_SOP_SEQUENCE, listed.failed, FAILURE_REASON)):
        sequence = attribute(root, tag)
        listed.read = listed.read or sequence is not None
        for item in (c for c in (sequence if sequence is not None else []) if local(c.tag) == "Item"):
            uid = value(item, REFERENCED_SOP_INSTANCE_UID)
            if uid:
                target[uid] = _code(value(item, reason_tag))


def _code(value: object) -> int | None:
    """A US reason code: a number (JSON), or text: decimal as PS3.19 says, but some servers write
    the code in hexadecimal ("A700", "0110"; older Orthanc plugins did), told apart by a hex
    letter, a 0x, or a leading zero no decimal number has."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    lower = text.lower()
    hexadecimal = lower.startswith("0x") or any(c in "abcdef" for c in lower) or (len(text) > 1 and text[0] == "0")
    try:
        return int(text, 16) if hexadecimal else int(text)
    except ValueError:
        return None


def probe(dest: Destination) -> tuple[bool, str, float]:
    """GET ``{url}/studies?limit=1`` (a QIDO-RS query for at most one study: cheap on any
    server). Any HTTP answer below 500 means the server is up, as an accepted association
    does for C-ECHO; a server without QIDO-RS answers 404 or 405 and is up too."""
    start = time.monotonic()
    http = _pool(dest)
    try:
        r = http.request("GET", f"{dest.web.url}/studies?limit=1", headers=_headers(dest.web, Accept=ACCEPT),
                         redirect=False)
    except (HTTPError, OSError) as exc:
        return False, _why(exc), time.monotonic() - start
    finally:
        http.clear()
    text = f"HTTP {r.status} {r.reason or ''}".strip()
    return r.status < 500, text, time.monotonic() - start
