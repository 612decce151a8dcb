"""A C-STORE response read straight off the association's socket by the thread that waits for it.

pynetdicom hands a response to the waiting thread through its DUL thread, which looks at the
socket between naps (``internals.dul_nap``), decodes the PDU, assembles the DIMSE message,
decodes its command set with pydicom and queues it. On a stream of 0.5 MB instances to a
pynetdicom receiver that cost the sending process ~0.45 ms of CPU per instance (1.3 -> 0.85
ms measured) and the waiting thread up to one nap of latency; the nap had been shortened to
0.2 ms to cut that latency, which made the idle DUL thread wake 5,000 times a second.

Here the sending thread takes the socket's read side (``read_lock``: the DUL does not look at
the socket while it is held, see ``gateway.delivery.association``) before it writes the request, blocks in
``select`` until the peer answers, and reads the next PDU itself. If that PDU is a P-DATA-TF
carrying exactly one PDV, a complete command set (message control header 0x03, PS3.8 9.3.5
and E.2) on the request's context that is a C-STORE-RSP (Implicit VR Little Endian, PS3.7
6.3.1 and 9.3.1.2) to the request's message ID without a data set, it is consumed and its
status returned. Anything else (A-ABORT, A-RELEASE-RQ, an N-EVENT-REPORT, a fragmented or
malformed command, a stale response, a closed connection) is pushed back unread (``unread``)
and left to pynetdicom, whose ``await_response`` path then runs as before; a P-DATA PDU does
not change the upper layer state (Sta6 stays Sta6), so consuming one does not bypass the
state machine. The DUL's network idle timer is restarted for every response consumed here,
as the DUL does for each PDU it reads. While a request is out, pynetdicom's association
reactor is paused (as its own ``send_c_store`` does) and the DUL naps 5 ms: its two threads
then spend 0.06 instead of 0.14 ms of CPU per instance; over a whole batch (``quiet``), not
request by request, ~0.02.

TLS sockets keep pynetdicom's path: a TLS record may be buffered where ``select`` cannot see it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import time
from typing import Callable, Iterator

from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from gateway.delivery import pynetdicom_internals as internals
from gateway.delivery import store_request

POLL = 0.05          # a blocked wait looks this often whether the association was ended meanwhile
QUIET_NAP = 0.005    # the DUL's nap while this thread owns the read side (pynetdicom's: 1 ms)
MAX_PDU = 4096       # a C-STORE-RSP command set is a few hundred bytes; anything longer is not one
C_STORE_RSP = 0x8001
STATUS, ERROR_COMMENT = Tag(0x0000, 0x0900), Tag(0x0000, 0x0902)
NO_DATA_SET = 0x0101
COMMAND_LAST = 0x03  # message control header: command information, last fragment
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
_ELEMENT = struct.Struct("<HHL")
_PDV = struct.Struct(">LBB")


def parse_c_store_rsp(pdu_body: bytes, context_id: int, message_id: int) -> Dataset | None:
    """The status (Status, and ErrorComment / OffendingElement / ErrorID if present) of a
    P-DATA-TF PDU's variable part if it is exactly the awaited C-STORE-RSP, else None."""
    if len(pdu_body) < _PDV.size:
        return None
    length, pdv_context, control = _PDV.unpack_from(pdu_body)
    if length != len(pdu_body) - 4 or pdv_context != context_id or control != COMMAND_LAST:
        return None
    values: dict[int, bytes] = {}
    offset, end = _PDV.size, len(pdu_body)
    while offset < end:
        if end - offset < _ELEMENT.size:
            return None
        group, element, size = _ELEMENT.unpack_from(pdu_body, offset)
        offset += _ELEMENT.size
        if group != 0x0000 or size > end - offset or element in values:
            return None
        values[element] = bytes(pdu_body[offset:offset + size])
        offset += size

    def us(element: int) -> int | None:
        value = values.get(element)
        return struct.unpack("<H", value)[0] if value is not None and len(value) == 2 else None

    if (us(0x0100) != C_STORE_RSP or us(0x0120) != message_id or us(0x0800) != NO_DATA_SET
            or us(0x0900) is None):
        return None
    # Built straight from its element (no keyword look-ups, no validation of a US we just
    # unpacked): 9 instead of 17 us, once per instance.
    status = Dataset({STATUS: DataElement(STATUS, "US", us(0x0900), validation_mode=config.IGNORE)})
    comment = values.get(0x0902)
    if comment:
        status.ErrorComment = comment.decode("ascii", "replace").rstrip(" \0")
    offending = values.get(0x0901)
    if offending and len(offending) % 4 == 0:
        tags = [Tag(*struct.unpack_from("<HH", offending, i)) for i in range(0, len(offending), 4)]
        status.OffendingElement = tags if len(tags) > 1 else tags[0]
    if us(0x0903) is not None:
        status.ErrorID = us(0x0903)
    return status


def _ended(assoc) -> bool:
    return assoc.is_aborted or not assoc.is_established


def _fill(raw, buffer: bytearray, size: int, deadline: float | None, assoc, ahead: int = 0) -> str:
    """Read until ``buffer`` holds ``size`` bytes, taking up to ``ahead`` more of what is
    there in the same read: "ok", "eof", "timeout" or "ended"."""
    while len(buffer) < size:
        wait = POLL if deadline is None else min(POLL, deadline - time.monotonic())
        if wait <= 0:
            return "timeout"
        if _QUICKACK is not None:  # acknowledge the answer at once (see gateway.delivery.association)
            try:
                raw.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                return "ended"
        try:
            readable, _, _ = select.select([raw], [], [], wait)
            if not readable:
                if _ended(assoc):
                    return "ended"
                continue
            chunk = raw.recv(size - len(buffer) + ahead)
        except (OSError, ValueError):  # closed under us (an abort from another thread)
            return "ended"
        if not chunk:
            return "eof"
        buffer += chunk
    return "ok"


def _fast(assoc):
    """The association's socket if answers can be read here (ours, plain TCP), else None.
    TLS keeps pynetdicom's path: a TLS record may be buffered where ``select`` cannot see it."""
    sock = internals.assoc_socket(assoc) if assoc is not None else None
    raw = getattr(sock, "socket", None)
    if getattr(sock, "read_lock", None) is None or raw is None or isinstance(raw, ssl.SSLSocket):
        return None
    return sock


@contextlib.contextmanager
def quiet(assoc) -> Iterator[None]:
    """Around a batch of requests: pynetdicom's reactor stays paused and its DUL naps
    ``QUIET_NAP`` from the first request to the last, not just while each is out. Resumed
    after every request, the reactor woke once per instance (and the DUL every millisecond
    between two), each time taking the GIL from the sending thread for nothing: the answers
    are read here, and a report or an abort the DUL receives meanwhile it serves itself (the
    reactor does not; pynetdicom's own ``send_*`` keep it paused as long)."""
    sock = _fast(assoc)
    if sock is None or getattr(sock, "usual_nap", None) is not None:
        yield
        return
    nap = internals.dul_nap(assoc)
    sock.usual_nap = nap
    internals.pause_reactor(assoc)
    internals.set_dul_nap(assoc, max(nap, QUIET_NAP))
    try:
        yield
    finally:
        sock.usual_nap = None
        internals.set_dul_nap(assoc, nap)
        internals.resume_reactor(assoc)


@contextlib.contextmanager
def usual_pace(assoc) -> Iterator[None]:
    """Inside ``quiet``: the DUL back at its usual nap while pynetdicom sends a request itself
    (an instance converted to another syntax), as its DUL writes and reads each PDU of it and
    naps whenever it finds nothing to do. pynetdicom pauses and resumes its reactor itself."""
    sock = _fast(assoc)
    nap = getattr(sock, "usual_nap", None)
    if nap is None:
        yield
        return
    internals.set_dul_nap(assoc, nap)
    try:
        yield
    finally:
        internals.set_dul_nap(assoc, max(nap, QUIET_NAP))


def exchange(assoc, context_id: int, message_id: int, write: Callable[[], None],
             meanwhile: Callable[[], None] | None = None) -> Dataset:
    """Write a request (``write``), run ``meanwhile`` while the peer works on it, and return
    the response's status: empty if none came within the DIMSE timeout or the association
    ended (it is then aborted, as pynetdicom does).

    The read side is taken before the request is written: otherwise the DUL could pick up a
    fast answer in between, and this thread would wait for bytes already read. The answer is
    usually in one read: bytes of a PDU after it are given back to the DUL."""
    sock = _fast(assoc)
    if sock is None:
        write()
        if meanwhile is not None:
            meanwhile()
        return store_request.await_response(assoc, message_id)
    timeout = assoc.dimse_timeout
    in_batch = getattr(sock, "usual_nap", None) is not None  # ``quiet`` holds pynetdicom's threads
    nap = sock.usual_nap if in_batch else internals.dul_nap(assoc)
    # Nothing for pynetdicom's two threads to do meanwhile: its reactor is paused as its own
    # send_c_store pauses it (again in a batch: a send_c_store there resumed it), and the DUL,
    # which only has to notice an abort from another thread (or take over a PDU handed back),
    # naps longer.
    internals.pause_reactor(assoc)
    if not in_batch:
        internals.set_dul_nap(assoc, max(nap, QUIET_NAP))
    raw = sock.socket
    try:
        with sock.read_lock:
            write()
            if meanwhile is not None:
                meanwhile()
            # The wait for the answer starts now (``meanwhile`` may have waited for the spool).
            deadline = None if timeout is None else time.monotonic() + timeout
            data = sock.take_unread()
            state = _fill(raw, data, 6, deadline, assoc, ahead=MAX_PDU)
            end = 0
            if state == "ok":
                pdu_type, _, length = struct.unpack_from(">BBL", data)
                end = 6 + length
                if pdu_type != 0x04 or length > MAX_PDU:
                    state = "not ours"
                else:
                    state = _fill(raw, data, end, deadline, assoc)
            if state == "ok":
                status = parse_c_store_rsp(memoryview(data)[6:end], context_id, message_id)
                if status is not None:
                    if len(data) > end:
                        sock.unread(data[end:])  # the start of the next PDU: the DUL's
                    internals.restart_idle_timer(assoc)  # as the DUL does for every PDU it reads
                    return status
            sock.unread(data)
        # The DUL reads again (and an abort waits for it to close the socket): at its usual
        # pace, for the rest of a batch too.
        internals.set_dul_nap(assoc, nap)
        if state == "timeout":
            if assoc.is_established:
                assoc.abort()
            return Dataset()
        if state == "ended" or _ended(assoc):
            # Aborted from another thread meanwhile (the peer's answer to that may be the end
            # of the connection): no response will come, and pynetdicom, which queues nothing
            # for a waiting call after a local abort, would wait out its timeout.
            return Dataset()
        return store_request.await_response(assoc, message_id)
    finally:
        if not in_batch:
            internals.set_dul_nap(assoc, nap)
            internals.resume_reactor(assoc)
