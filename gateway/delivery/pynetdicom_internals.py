"""Every use of pynetdicom's private members, behind small named operations, checked at import.

The forwarder's fast path (``gateway.delivery.store_request`` writes a C-STORE straight to the
association's socket, ``gateway.delivery.store_response`` reads the answer there) and two fixes
to pynetdicom's behaviour (TCP options on its sockets, a response its reactor took handed back;
see ``gateway.delivery.association``) reach where pynetdicom promises nothing: underscore
members, and its association's DUL and DIMSE providers with their queues. This is the only
module that does (``tests/delivery/test_pynetdicom_internals.py`` greps the others).

At import, ``problems()`` checks that each member used here exists with the shape relied on
and that pynetdicom's version is one we tested. If anything is off, ``FAST`` is False, nothing
here touches pynetdicom's internals (``application_entity`` gives a plain ``AE``) and the
forwarder sends through pynetdicom's public ``Association.send_c_store``: slower (every
instance decoded and re-encoded, DCMTK peers' ~40 ms delayed answers back, see
``gateway.delivery.association``) and without the hand-back of a response pynetdicom's reactor
takes (that rare loss costs a DIMSE timeout, an abort and a retry), but correct. The check
sees names and shapes, not behaviour (that the DUL still calls ``_is_transport_event`` every
loop, say): the version range is what guards that, hence the upper bound in ``pyproject.toml``.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
from typing import Any, Callable

import pynetdicom
from pynetdicom import AE, Association
from pynetdicom.transport import AssociationSocket

log = logging.getLogger("gateway.delivery.pynetdicom_internals")

# The versions this module accepts; keep in step with pyproject.toml. Tested with 3.0.4; the
# change logs of 3.0.1-3.0.3 list fixes elsewhere (the version string, N-ACTION logging, IPv4
# host names); 3.0.1 was already the project's minimum.
TESTED_FROM = (3, 0, 1)
TESTED_BELOW = (3, 1)


def _version(text: str) -> tuple[int, ...]:
    """The leading numbers of a version string ("3.0.4" -> (3, 0, 4), "3.1.0.dev0" -> (3, 1, 0))."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def _queue_like(value: Any) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("put", "get"))


def problems() -> list[str]:
    """What is missing or unlike what this module relies on, in words; empty if nothing."""
    found: list[str] = []
    version = getattr(pynetdicom, "__version__", "")
    if not TESTED_FROM <= _version(version) < TESTED_BELOW:
        found.append(f"pynetdicom {version or '(no version)'} is outside the tested "
                     f"{'.'.join(map(str, TESTED_FROM))} to <{'.'.join(map(str, TESTED_BELOW))}")
    create = getattr(AE, "_create_socket", None)
    if not callable(create) or list(inspect.signature(create).parameters) != ["self", "assoc", "address", "tls_args"]:
        found.append("AE._create_socket(assoc, address, tls_args) is missing or has another signature")
    if not callable(getattr(Association, "_serve_request", None)):
        found.append("Association._serve_request is missing")
    try:  # members set in __init__: a throwaway association (no thread, no socket) shows them
        assoc = Association(AE(), "requestor")
    except Exception as exc:  # noqa: BLE001 - anything here means the internals are not the ones tested
        return found + [f"a bare Association cannot be built: {type(exc).__name__}: {exc}"]
    checkpoint = getattr(assoc, "_reactor_checkpoint", None)
    if not all(callable(getattr(checkpoint, name, None)) for name in ("set", "clear", "wait")):
        found.append("Association._reactor_checkpoint is not an event (set/clear/wait)")
    dul, dimse = getattr(assoc, "dul", None), getattr(assoc, "dimse", None)
    if not callable(getattr(dul, "_is_transport_event", None)):
        found.append("DULServiceProvider._is_transport_event is missing")
    if not isinstance(getattr(dul, "_run_loop_delay", None), (int, float)):
        found.append("DULServiceProvider._run_loop_delay is not a number")
    if not callable(getattr(getattr(dul, "_idle_timer", None), "restart", None)):
        found.append("DULServiceProvider._idle_timer has no restart()")
    if not _queue_like(getattr(dul, "event_queue", None)):
        found.append("DULServiceProvider.event_queue is not a queue")
    if not hasattr(dul, "socket"):
        found.append("DULServiceProvider.socket is missing")
    if not _queue_like(getattr(dimse, "msg_queue", None)):
        found.append("DIMSEServiceProvider.msg_queue is not a queue")
    if not callable(getattr(dimse, "get_msg", None)):
        found.append("DIMSEServiceProvider.get_msg is missing")
    return found


_FOUND = problems()
FAST = not _FOUND
WHY_NOT_FAST = "; ".join(_FOUND)
_untold = threading.Lock()  # taken by the first to tell, never given back


def _tell_once() -> None:
    """Say why the fast path is off, once per process, when delivery first starts (not at
    import: every command imports this, before logging is set up). Names of pynetdicom's
    members only, nothing about any patient."""
    if not FAST and _untold.acquire(blocking=False):
        log.warning("event=fast_path_off reason=%r: sending through pynetdicom's send_c_store instead",
                    WHY_NOT_FAST)


# -- opening an association -----------------------------------------------------------------

class _RequestorAE(AE):
    """An AE whose requested associations use the socket ``make_socket`` builds. pynetdicom
    builds a requestor's socket in the private ``AE._create_socket``; overriding it here
    (rather than patching pynetdicom) keeps the change to the gateway's own associations."""

    def __init__(self, ae_title: str, make_socket: Callable[[Association, Any], AssociationSocket],
                 tls_nap: float):
        super().__init__(ae_title=ae_title)
        self.make_socket = make_socket
        self.tls_nap = tls_nap
        self.requested: Association | None = None  # the association being requested

    def _create_socket(self, assoc, address, tls_args):
        self.requested = assoc
        if tls_args:
            assoc.dul._run_loop_delay = self.tls_nap
        sock = self.make_socket(assoc, address)
        sock.tls_args = tls_args
        return sock


def application_entity(ae_title: str, make_socket: Callable[[Association, Any], AssociationSocket],
                       tls_nap: float) -> AE:
    """An AE for requesting associations. With ``FAST``, their sockets come from
    ``make_socket(assoc, address)`` (bound, not connected) and over TLS their DUL naps
    ``tls_nap`` seconds between looks at the socket; otherwise a plain pynetdicom AE."""
    if FAST:
        return _RequestorAE(ae_title, make_socket, tls_nap)
    _tell_once()
    return AE(ae_title=ae_title)


def interrupt_request(ae: AE) -> None:
    """From another thread: close the socket of the association ``ae`` is requesting, which
    ends its wait for the peer at once. Without ``FAST`` nothing is known of it: the request
    runs to its own timeout."""
    assoc = getattr(ae, "requested", None)
    sock = assoc_socket(assoc) if assoc is not None else None
    if sock is not None:
        sock.close()


def assoc_socket(assoc: Association) -> AssociationSocket | None:
    """The association's socket (whatever ``application_entity``'s ``make_socket`` built),
    None without ``FAST`` or before one exists."""
    return getattr(assoc.dul, "socket", None) if FAST else None


def read_only_when_free(assoc: Association, lock: threading.Lock) -> None:
    """The DUL looks at the socket (and reads a PDU) only while nobody holds ``lock``, and does
    not wait for it either, so it goes on sending and handling events meanwhile."""
    dul = assoc.dul
    look = dul._is_transport_event

    def is_transport_event() -> bool:
        if not lock.acquire(blocking=False):
            return False
        try:
            return look()
        finally:
            lock.release()

    dul._is_transport_event = is_transport_event


def hand_back_responses(assoc: Association, awaited: Callable[[], int | None]) -> None:
    """A response that pynetdicom's association reactor takes while ``awaited()`` names its
    message ID goes back on the DIMSE queue, for the call waiting for it; everything else
    stays pynetdicom's (see ``gateway.delivery.association.Link.open`` for why)."""
    serve = assoc._serve_request
    queue = assoc.dimse.msg_queue

    def serve_request(msg, context_id):
        message_id = awaited()
        if (not msg.is_valid_request and message_id is not None
                and getattr(msg, "MessageIDBeingRespondedTo", None) == message_id):
            queue.put((context_id, msg))
            log.info("event=response_returned message_id=%d", message_id)
            return
        serve(msg, context_id)

    assoc._serve_request = serve_request


# -- one request on the fast path -----------------------------------------------------------

def transport_closed(assoc: Association) -> None:
    """Tell the association's state machine the connection failed under a write of ours, as
    pynetdicom's own writes do (Evt17)."""
    assoc.dul.event_queue.put("Evt17")


def next_message(assoc: Association) -> tuple[Any, Any]:
    """The next DIMSE message pynetdicom received, (context ID, message), waiting up to the
    DIMSE timeout; (None, None) if none came or the association ended."""
    return assoc.dimse.get_msg(block=True)


def pause_reactor(assoc: Association) -> None:
    """Keep pynetdicom's association reactor off the DIMSE queue until ``resume_reactor``, as
    pynetdicom's own ``send_c_store`` keeps it while it waits for an answer."""
    assoc._reactor_checkpoint.clear()


def resume_reactor(assoc: Association) -> None:
    assoc._reactor_checkpoint.set()


def dul_nap(assoc: Association) -> float:
    """How long the DUL thread sleeps between looks at its socket when idle, in seconds."""
    return assoc.dul._run_loop_delay


def set_dul_nap(assoc: Association, seconds: float) -> None:
    assoc.dul._run_loop_delay = seconds


def restart_idle_timer(assoc: Association) -> None:
    """A PDU was read off the socket outside the DUL: restart its network idle timer, as the
    DUL does for every PDU it reads."""
    assoc.dul._idle_timer.restart()


# -- receiving (the DICOM SCP source) ---------------------------------------------------------

def receive_c_store_into_files() -> None:
    """C-STORE data sets this process receives as an SCP are written to a temporary Part-10
    file as their fragments arrive (``Event.dataset_path``), not gathered in memory. A
    documented pynetdicom setting, but in its underscore module ``_config``; process-wide, so
    our other SCPs (archive, commitment listener) read ``event.dataset`` from the file too."""
    from pynetdicom import _config

    if not isinstance(getattr(_config, "STORE_RECV_CHUNKED_DATASET", None), bool):
        # Without it every object would be gathered in memory and Event.dataset_path missing.
        raise RuntimeError(f"pynetdicom {pynetdicom.__version__} has no STORE_RECV_CHUNKED_DATASET setting: "
                           f"the DICOM source cannot receive into files")
    _config.STORE_RECV_CHUNKED_DATASET = True
