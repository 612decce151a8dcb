"""One association to one destination, reused for many C-STOREs (the forwarder's network edge).

pynetdicom negotiates, releases and aborts; an instance whose stored syntax the peer accepted
is written from its spool file by ``gateway.delivery.store_request`` and its response read by
``gateway.delivery.store_response`` (pynetdicom receives whatever else comes), one converted to another
syntax goes through pynetdicom's ``send_c_store``. Reaching into pynetdicom for this is left to
``gateway.delivery.pynetdicom_internals``; if that finds pynetdicom other than it expects
(``internals.FAST`` is False), every instance goes through ``send_c_store`` and our sockets'
options below are off.

Presentation contexts are proposed from what is queued: one context per (SOP class, stored
transfer syntax), so the instance can be streamed from its spool file unchanged, plus one
uncompressed fallback context per SOP class (Explicit/Implicit VR Little Endian) for a peer that
refuses the stored syntax; the instances of the batch at hand come first and the whole stays
under the 128 contexts an association may carry (PS3.8 9.3.2.2).

Our sockets set ``TCP_NODELAY`` (our PDUs go out at once) and re-arm ``TCP_QUICKACK`` before
every read. The second matters more: DCMTK-based receivers (storescp, Orthanc) answer each
C-STORE ~40 ms late on Linux because Nagle's algorithm on their side waits for our
acknowledgement, which Linux's delayed ACK holds back; acknowledging at once removes that
stall (measured on one association: storescp 47 -> 3 ms, Orthanc 50 -> 6.5 ms per instance).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterable

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import StorageCommitmentPushModel, Verification
from pynetdicom.transport import AssociationSocket

from gateway.config import Destination
from gateway.delivery import pynetdicom_internals as internals
from gateway.delivery import store_request, store_response
from gateway.delivery.outcomes import Failure, Rule, classify_failure, classify_status
from gateway.delivery.sender import Batch
from gateway.delivery.spool import Item
from gateway.delivery.tls import tls_args

log = logging.getLogger("gateway.delivery.association")

MAX_CONTEXTS = 127  # odd context IDs 1..255 (PS3.8 9.3.2.2)
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
# The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.5).
STORAGE_COMMITMENT_INSTANCE = UID("1.2.840.10008.1.20.1.1")

Pair = tuple[str, str]  # (SOP class UID, transfer syntax UID)


class LinkError(Exception):
    """The association could not be opened or was lost; ``kind`` says how."""

    def __init__(self, kind: Failure, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail

    @property
    def rule(self) -> Rule:
        return classify_failure(self.kind)


class NotProposed(Exception):
    """The item's SOP class / transfer syntax was not proposed on this association."""


@dataclass(frozen=True)
class Sent:
    """The outcome of one DIMSE request: its rule, the status as text (or "") and detail."""

    rule: Rule
    status: str
    detail: str
    bytes: int = 0


def propose(first: Iterable[Pair], waiting: Iterable[Pair] = (), commitment: bool = False,
            limit: int = MAX_CONTEXTS) -> tuple[list[PresentationContext], set[Pair]]:
    """Contexts for an association, and the pairs they cover.

    Order of priority: exact contexts for ``first`` (the batch at hand), their SOP classes'
    fallbacks, the commitment context, then exact contexts and fallbacks for ``waiting``.
    """
    first, waiting = list(dict.fromkeys(first)), list(dict.fromkeys(waiting))
    wanted: dict[tuple[str, tuple[str, ...]], None] = {}
    covered: set[Pair] = set()

    def add(sop: str, syntaxes: list[str]) -> bool:
        key = (sop, tuple(syntaxes))
        if key not in wanted:
            if len(wanted) >= limit:
                return False
            wanted[key] = None
        return True

    def fallback(pairs: list[Pair]) -> None:
        by_sop: dict[str, set[str]] = {}
        for sop, ts in pairs:
            by_sop.setdefault(sop, set()).add(ts)
        for sop, exact in by_sop.items():
            rest = [ts for ts in UNCOMPRESSED if ts not in exact]
            if rest:
                add(sop, rest)

    fits = []
    for sop, ts in first:
        if add(sop, [ts]):
            covered.add((sop, ts))
            fits.append((sop, ts))
    fallback(fits)
    if commitment:
        add(StorageCommitmentPushModel, list(UNCOMPRESSED))
    extra = []
    for sop, ts in waiting:
        if (sop, ts) not in covered and add(sop, [ts]):
            covered.add((sop, ts))
            extra.append((sop, ts))
    fallback(extra)
    return [build_context(sop, list(syntaxes)) for sop, syntaxes in wanted], covered


# pynetdicom's DUL thread naps between looks at its socket when idle (1 ms by default). A
# C-STORE response is read by the waiting thread itself (``gateway.delivery.store_response``), so on a plain
# TCP socket nothing waits on those naps and the default stays. Over TLS the DUL still
# receives responses: one association gains from looking more often (0.2 ms: ~30% more
# instances/s measured); with several, the others fill that gap while every looking thread
# costs CPU, so the nap grows with their number (back to 1 ms at 5).
DUL_LOOP_DELAY = 0.0002
DUL_LOOP_DELAY_MAX = 0.001
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only; elsewhere delayed ACKs stay


class _Socket(AssociationSocket):
    """pynetdicom's socket with TCP_NODELAY from the start, TCP_QUICKACK before each read
    (Linux clears QUICKACK after it acknowledges, so it is set again every time), a write
    lock that ``gateway.delivery.store_request`` holds for a whole message, so nothing interleaves with it,
    and a read side that ``gateway.delivery.store_response`` can take: while its ``read_lock`` is held the
    DUL does not look at the socket (``internals.read_only_when_free``), and bytes read there but meant for
    pynetdicom are pushed back (``unread``) and served first by ``recv``. Used only with
    ``internals.FAST``: pynetdicom takes a socket of ours through a private hook."""

    connected = False  # did the TCP (and TLS) connection ever come up?
    usual_nap: float | None = None  # the DUL's nap while ``store_response.quiet`` holds a longer one

    def __init__(self, *args, **kwargs):
        self.write_lock = threading.Lock()
        self.read_lock = threading.Lock()
        self._unread = bytearray()
        super().__init__(*args, **kwargs)

    def send(self, bytestream: bytes) -> None:
        with self.write_lock:
            super().send(bytestream)

    def connect(self, primitive) -> None:
        if self.socket is not None:  # bound, not connected yet (nor wrapped in TLS)
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connect(primitive)
        self.connected = self.socket is not None  # pynetdicom drops the socket if connecting failed

    @property
    def ready(self) -> bool:
        return (bool(self._unread) and self.socket is not None) or super().ready

    def unread(self, data: bytes) -> None:
        """Give back bytes taken off the socket: the next reads return them first."""
        self._unread[:0] = data

    def take_unread(self) -> bytearray:
        data, self._unread = self._unread, bytearray()
        return data

    def recv(self, nr_bytes: int) -> bytearray:
        if self._unread:
            data = self._unread[:nr_bytes]
            del self._unread[:nr_bytes]
            if len(data) < nr_bytes:
                data += self.recv(nr_bytes - len(data))
            return data
        if _QUICKACK is not None and self.socket is not None:
            try:
                self.socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass
        return super().recv(nr_bytes)


def _new_socket(assoc, address) -> _Socket:
    sock = _Socket(assoc, address=address)
    internals.read_only_when_free(assoc, sock.read_lock)
    return sock


def _application_entity(dest: Destination, ae_title: str) -> AE:
    loop_delay = min(DUL_LOOP_DELAY_MAX, DUL_LOOP_DELAY * dest.associations)
    ae = internals.application_entity(dest.calling_ae or ae_title, _new_socket, tls_nap=loop_delay)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = dest.timeout
    ae.connection_timeout = dest.timeout
    return ae


def _not_established(assoc, dest: Destination) -> LinkError:
    where = f"{dest.called_ae}@{dest.host}:{dest.port}"
    if not getattr(internals.assoc_socket(assoc), "connected", True):
        return LinkError(Failure.CONNECTION_FAILED,
                         f"cannot connect to {where} (refused, unreachable, timed out or TLS handshake failed)")
    if assoc.is_rejected:
        rsp = getattr(assoc.acceptor, "primitive", None)
        why = f"{rsp.result_str}, {rsp.source_str}: {rsp.reason_str}" if rsp is not None else "rejected"
        return LinkError(Failure.ASSOCIATION_REJECTED, f"{where} rejected the association ({why})")
    if assoc.is_aborted:
        return LinkError(Failure.ASSOCIATION_ABORTED, f"{where} aborted the association request")
    return LinkError(Failure.CONNECTION_FAILED,
                     f"cannot connect to {where} (refused, unreachable, timed out or TLS handshake failed)")


def _missing(path: Path, exc: OSError | None = None) -> Sent:
    """The spool file cannot be sent: one bad item, not a broken association."""
    why = f": {exc.strerror or exc}" if exc is not None else ""
    return Sent(classify_failure(Failure.FILE_MISSING), "", f"{path} is missing or unreadable{why}")


class Link:
    """A lane's association (``gateway.delivery.sender.Sender``): one C-STORE per instance."""

    def __init__(self, dest: Destination, ae_title: str, on_report: Callable | None = None):
        self.dest = dest
        self.ae_title = ae_title
        self.on_report = on_report
        self.assoc = None
        self.covered: set[Pair] = set()
        self.accepted: dict[str, set[str]] = {}  # SOP class -> accepted transfer syntaxes
        self.exact: dict[Pair, int] = {}  # (SOP class, transfer syntax) -> accepted context ID
        self.commitment_proposed = False
        self.commitment_accepted = False
        self.sent = 0
        self.last_used = 0.0
        self._opening: AE | None = None
        self.awaiting: int | None = None  # message ID of the request whose answer we wait for
        self._message_id = 0

    @property
    def is_open(self) -> bool:
        return self.assoc is not None and self.assoc.is_established

    def covers(self, pairs: Iterable[Pair], commitment: bool = False) -> bool:
        return self.is_open and set(pairs) <= self.covered and (not commitment or self.commitment_proposed)

    def open(self, first: Iterable[Pair], waiting: Iterable[Pair] = (), commitment: bool = False) -> None:
        self.close()
        contexts, covered = propose(first, waiting, commitment)
        handlers = []
        if self.on_report is not None:
            handlers.append((evt.EVT_N_EVENT_REPORT, self.on_report))
        try:
            ae = self._opening = _application_entity(self.dest, self.ae_title)
            assoc = ae.associate(self.dest.host, self.dest.port, contexts=contexts, ae_title=self.dest.called_ae,
                                 tls_args=tls_args(self.dest), evt_handlers=handlers)
        except (OSError, RuntimeError, ValueError) as exc:  # bad TLS files, unresolvable host, ...
            raise LinkError(Failure.CONNECTION_FAILED, f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._opening = None
        if not assoc.is_established:
            raise _not_established(assoc, self.dest)
        if internals.FAST:
            # pynetdicom's send_* calls pause its association reactor through a checkpoint, but
            # the reactor can be past it while the call already sends; if the peer answers
            # before the reactor's next non-blocking look at the DIMSE queue, the reactor takes
            # the response, logs "Received unexpected C-STORE service message" and drops it, and
            # the call waits out the DIMSE timeout, aborts, and the instance is sent again. Fast
            # answers (quick ACKs) on a loaded machine make this happen (seen here: 2-3 per
            # 10,000 instances to storescp at load 5-6 on 2 cores). Each of our requests carries
            # its own message ID, so the response is recognised and handed back.
            internals.hand_back_responses(assoc, lambda: self.awaiting)
        self.assoc = assoc
        self.covered = covered
        self.commitment_proposed = commitment
        self.accepted, self.exact = {}, {}
        for cx in assoc.accepted_contexts:
            if cx.as_scu is False:
                continue
            self.accepted.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
            self.exact.setdefault((str(cx.abstract_syntax), str(cx.transfer_syntax[0])), cx.context_id)
        self.commitment_accepted = bool(self.accepted.get(StorageCommitmentPushModel))
        self.sent = 0
        self.last_used = time.monotonic()

    def idling(self) -> ContextManager[None]:
        """Between batches, pynetdicom's threads stay as quiet as during one: idle, its DUL
        looked at the socket every millisecond and its reactor at the DIMSE queue as often
        (about 0.1 s of CPU in a ``send`` of 500 files, taken from the conversion). A release
        or abort from the peer is still seen by the DUL; the reactor catches up when the wait
        ends (within ``forwarder.POLL``). Not with storage commitment: its reports arrive on
        the association and the reactor serves them."""
        if self.commitment_proposed or not self.is_open:
            return contextlib.nullcontext()
        return store_response.quiet(self.assoc)

    def close(self) -> None:
        if self.assoc is not None:
            if self.assoc.is_established:
                try:
                    self.assoc.release()
                except Exception:  # noqa: BLE001 - a failed release still ends the association
                    self.assoc.abort()
            self.assoc = None

    def abort(self) -> None:
        """Abort the association, or interrupt one being requested (from another thread):
        closing the socket ends a wait for the peer's answer at once."""
        opening = self._opening
        if opening is not None:
            internals.interrupt_request(opening)
        if self.assoc is not None and self.assoc.is_established:
            self.assoc.abort()

    def _lost(self, started: float | None = None) -> LinkError:
        """What ended a request without an answer. pynetdicom aborts the association itself
        when its DIMSE timeout runs out, so a wait that long means no store_response."""
        timed_out = started is not None and time.monotonic() - started >= 0.95 * self.dest.timeout
        assoc = self.assoc
        lost = assoc is not None and (assoc.is_aborted or not assoc.is_established or assoc.acse.is_aborted())
        if lost and not timed_out:
            return LinkError(Failure.ASSOCIATION_ABORTED, "association ended (aborted or connection lost)")
        return LinkError(Failure.NO_RESPONSE, f"no response within {self.dest.timeout:g}s")

    # -- C-STORE --------------------------------------------------------------------------

    def send_batch(self, items: list[Item], stopping: threading.Event,
                   meanwhile: Callable[[], None] | None = None) -> Batch:
        """One C-STORE per item, in order; ``meanwhile`` runs while the last one is answered.
        An item not proposed on this association goes back for another; when the association
        is lost, the item in hand counts an attempt (it may be what broke it), the rest go back."""
        batch = Batch()
        with store_response.quiet(self.assoc):
            for index, item in enumerate(items):
                if stopping.is_set():
                    batch.released += [(i, "stopping") for i in items[index:]]
                    break
                try:
                    sent = self.send(item, meanwhile if index == len(items) - 1 else None)
                except NotProposed:
                    batch.released.append((item, "needs another association"))
                    continue
                except LinkError as exc:
                    batch.answered.append((item, Sent(exc.rule, "", exc.detail)))
                    batch.released += [(i, exc.detail) for i in items[index + 1:]]
                    batch.lost = exc.detail
                    break
                batch.answered.append((item, sent))
        return batch

    def send(self, item: Item, meanwhile: Callable[[], None] | None = None) -> Sent:
        """Send one spooled instance. Raises ``NotProposed`` if this association was not set up
        for it, ``LinkError`` if the association is lost; any answer of the peer is a ``Sent``.
        ``meanwhile`` (which must not raise) runs once the request is out, while the peer works
        on it, if it is streamed from its file."""
        pair = (item.sop_class_uid, item.transfer_syntax)
        if pair not in self.covered:
            raise NotProposed(pair)
        if not self.is_open:
            raise self._lost()
        path = item.path if isinstance(item.path, Path) else Path(item.path)
        if pair in self.exact and internals.FAST:
            return self._stream(item, path, self.exact[pair], meanwhile)  # opening it tells if it is there
        if not path.is_file():
            return _missing(path)
        if pair in self.exact:
            return self._through_pynetdicom(item, path, meanwhile)
        if self.accepted.get(item.sop_class_uid, set()) & set(UNCOMPRESSED):
            try:
                payload = self._convertible(path, item)
            except Exception as exc:  # noqa: BLE001 - a file we cannot convert is one bad item
                return Sent(classify_failure(Failure.UNSENDABLE), "",
                            f"peer accepts {item.sop_class_uid} only uncompressed and the stored "
                            f"{UID(item.transfer_syntax).name} cannot be decompressed: {exc}")
        else:
            rejected = UID(item.sop_class_uid).name
            return Sent(classify_failure(Failure.CONTEXT_NOT_ACCEPTED), "",
                        f"peer did not accept {rejected} ({item.sop_class_uid}) in "
                        f"{UID(item.transfer_syntax).name} nor uncompressed")
        # pynetdicom re-encodes the decoded data set in the accepted uncompressed syntax.
        return self._through_pynetdicom(item, payload)

    def _through_pynetdicom(self, item: Item, dataset: Dataset | Path,
                            meanwhile: Callable[[], None] | None = None) -> Sent:
        """pynetdicom's public ``send_c_store`` (given a path, it decodes the file first);
        ``meanwhile`` runs once the answer is in, as this call gives no moment before."""
        def send(message_id: int) -> Dataset:
            with store_response.usual_pace(self.assoc):
                status = self.assoc.send_c_store(dataset, msg_id=message_id)
            if meanwhile is not None:
                meanwhile()
            return status

        return self._answer(item, send)

    def _stream(self, item: Item, path: Path, context_id: int, meanwhile: Callable[[], None] | None) -> Sent:
        """The stored syntax was accepted: the file goes out as it is (``gateway.delivery.store_request``)."""
        try:
            f = store_request.open_instance(path)
        except OSError as exc:
            return _missing(path, exc)

        def send(message_id: int) -> Dataset:
            return store_response.exchange(self.assoc, context_id, message_id, lambda: store_request.write_c_store(
                self.assoc, context_id, f, path, item.sop_class_uid, item.sop_instance_uid, message_id), meanwhile)

        with f:
            return self._answer(item, send)

    def _answer(self, item: Item, send: Callable[[int], Dataset]) -> Sent:
        """Run one C-STORE and classify what came back."""
        started = time.monotonic()
        try:
            status = send(self._next_message_id())
        except (ValueError, AttributeError, InvalidDicomError) as exc:
            return Sent(classify_failure(Failure.UNSENDABLE), "", str(exc))
        except (OSError, RuntimeError) as exc:
            raise LinkError(Failure.ASSOCIATION_ABORTED, f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.awaiting = None
        self.sent += 1
        self.last_used = time.monotonic()
        if store_response.STATUS not in status:  # by tag: a keyword is looked up every time
            raise self._lost(started)
        code = int(status[store_response.STATUS].value)
        rule = classify_status(code)
        element = status.get(store_response.ERROR_COMMENT)  # by tag: the element, not its value
        comment = str(element.value or "") if element is not None else ""
        return Sent(rule, f"0x{code:04X}", rule.meaning + (f": {comment}" if comment else ""), item.size)

    def _next_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        self.awaiting = self._message_id
        return self._message_id

    @staticmethod
    def _convertible(path: Path, item: Item) -> Dataset:
        """The dataset, decoded, for a peer that takes its SOP class only uncompressed:
        pynetdicom converts between Explicit and Implicit VR Little Endian itself."""
        ds = dcmread(path)
        if UID(item.transfer_syntax).is_compressed:
            ds.decompress(generate_instance_uid=False)  # same instance, only its encoding changes
        return ds

    # -- storage commitment (N-ACTION) ----------------------------------------------------

    def request_commitment(self, transaction_uid: str, refs: list[tuple[str, str]]) -> Sent:
        """Ask the peer to commit ``refs`` ((SOP class, SOP instance) pairs); its answer to the
        request only says it will report, the report itself comes by N-EVENT-REPORT."""
        if not self.is_open:
            raise self._lost()
        if not self.commitment_accepted:
            return Sent(classify_failure(Failure.CONTEXT_NOT_ACCEPTED), "",
                        "peer did not accept Storage Commitment Push Model: disable storage_commitment "
                        "for this destination or enable it at the PACS")
        request = Dataset()
        request.TransactionUID = transaction_uid
        request.ReferencedSOPSequence = []
        for sop_class, sop_instance in refs:
            ref = Dataset()
            ref.ReferencedSOPClassUID = sop_class
            ref.ReferencedSOPInstanceUID = sop_instance
            request.ReferencedSOPSequence.append(ref)
        started = time.monotonic()
        try:
            status, _ = self.assoc.send_n_action(request, 1, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE,
                                                 msg_id=self._next_message_id())
        except (OSError, RuntimeError, ValueError) as exc:
            raise LinkError(Failure.ASSOCIATION_ABORTED, f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.awaiting = None
        self.last_used = time.monotonic()
        if "Status" not in status:
            lost = self._lost(started)
            if lost.kind is Failure.ASSOCIATION_ABORTED:
                # Orthanc, for one, aborts an N-ACTION from an AE title it does not know.
                lost.detail = (f"the PACS aborted the storage commitment request: does it know our AE title "
                               f"{self.assoc.requestor.ae_title} (with our commitment address)?")
            raise lost
        code = int(status.Status)
        rule = classify_status(code)
        return Sent(rule, f"0x{code:04X}", f"storage commitment request: {rule.meaning}")


def echo(dest: Destination, ae_title: str) -> tuple[bool, str, float]:
    """C-ECHO the destination: (peer is up, what happened, seconds taken). An association
    that is accepted counts as up even if the peer does not offer the Verification service."""
    start = time.monotonic()
    try:
        ae = _application_entity(dest, ae_title)
        assoc = ae.associate(dest.host, dest.port, contexts=[build_context(Verification)],
                             ae_title=dest.called_ae, tls_args=tls_args(dest))
    except (OSError, RuntimeError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}", time.monotonic() - start
    if not assoc.is_established:
        return False, _not_established(assoc, dest).detail, time.monotonic() - start
    try:
        if not assoc.accepted_contexts:
            return True, "association accepted (Verification not offered)", time.monotonic() - start
        status = assoc.send_c_echo()
        if "Status" not in status:
            return False, "no response to C-ECHO", time.monotonic() - start
        code = int(status.Status)
        return True, f"C-ECHO status 0x{code:04X}", time.monotonic() - start
    finally:
        if assoc.is_established:
            assoc.release()
