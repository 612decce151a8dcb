"""DICOM receiving driver: a Storage SCP that modalities and workstations send to with C-STORE.

It listens on ``host``/``port`` as ``ae_title`` and accepts associations only from the calling
AE titles (and, where given, addresses) in ``allowed``; anyone else gets an A-ASSOCIATE-RJ
("calling AE title not recognised") and a log line with the AE title and address only. Every
storage SOP class is accepted in every transfer syntax pynetdicom knows, and C-ECHO.

A C-STORE's data set is written to a private file as its fragments arrive (the service turns
on pynetdicom's receiving into files for drivers that say ``receives_c_store``), so a 1 GB
object never sits in memory while it is received. The handler then makes it a ``Capture``
(the Part-10 file pynetdicom wrote: preamble, a file meta group built from the request and the
accepted transfer syntax, the data set as sent), queues it for ``captures`` and waits for the
pipeline's verdict, exactly as a serial driver withholds its final ACK:

- ``ack`` (the instance is durable in the spool): Success, 0x0000;
- ``reject`` (it can never become an instance): 0xC000 "cannot understand", with the reason
  as Error Comment: the sender must not send it again unchanged;
- ``defer`` (the spool failed), a stop, or no turn in the pipeline within ``answer_timeout``:
  0xA700 "out of resources", which senders retry.

pynetdicom removes the file when the handler returns. Its temporary files go to
``<state_dir>/receiving`` (private): pynetdicom takes no folder for them, so Python's default
temporary folder is set to it for the whole process (one folder for every DICOM source, as
there is one state directory); files a killed process left there are removed when the first
DICOM source of the next process starts.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from drivers.driver import Driver
from gateway.capture import Capture, Origin

log = logging.getLogger("drivers.dicom")

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700   # "refused: out of resources": senders send again later
CANNOT_UNDERSTAND = 0xC000  # "error: cannot understand": not worth sending again unchanged
_REJECT_CALLING_AE = (0x01, 0x01, 0x03)  # rejected permanent, by the service user: calling AE not recognised
# A capture the pipeline took always gets a verdict; this only bounds a bug (or a spool write of
# many gigabytes on a very slow disk).
_VERDICT_CAP = 600.0
_SWEPT: set[Path] = set()  # receive folders this process has cleared of a killed one's leftovers


@dataclass(frozen=True)
class Peer:
    """One allowed sender: its calling AE title and, when given, its address."""

    ae: str
    host: str | None = None

    def admits(self, ae_title: str, address: str) -> bool:
        return ae_title == self.ae and (self.host is None or address == self.host)


@dataclass(frozen=True)
class ScpSettings:
    """Every option of a ``type: dicom`` source (see etc/legacy-gateway.yaml)."""

    ae_title: str
    port: int
    allowed: tuple[Peer, ...]
    host: str = "0.0.0.0"
    answer_timeout: float = 60.0
    max_associations: int = 8
    state_dir: str | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> "ScpSettings":
        clean = {k: v for k, v in options.items() if v is not None}
        allowed = tuple(Peer(str(p["ae"]).strip(), p.get("host") or None) for p in clean.pop("allowed", ()))
        if not allowed:
            raise ValueError("allowed: at least one sender (ae, optionally host) is required")
        if "state_dir" in clean:
            clean["state_dir"] = str(clean["state_dir"])
        return cls(allowed=allowed, **clean)

    @property
    def folder(self) -> Path:
        """Where pynetdicom writes objects while they are received."""
        return Path(self.state_dir or ".") / "receiving"


@dataclass
class _Pending:
    """One received object waiting for its verdict; ``taken`` once the pipeline has it."""

    capture: Capture
    done: threading.Event = field(default_factory=threading.Event)
    taken: bool = False
    withdrawn: bool = False
    status: int = OUT_OF_RESOURCES
    comment: str = ""


class DicomDriver(Driver):
    """A ``type: dicom`` source: a Storage SCP whose C-STOREs are answered by the pipeline."""

    uses_state_dir = True     # the receive folder lives there
    receives_c_store = True   # the service turns on pynetdicom's receiving into files

    def __init__(self, name: str, settings: ScpSettings):
        self.name = name
        self.settings = settings
        self._inbox: queue.Queue[_Pending] = queue.Queue()
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._numbers = itertools.count(1)
        self.listener = None

    @classmethod
    def from_options(cls, name: str, options: dict) -> "DicomDriver":
        return cls(name, ScpSettings.from_options(options))

    # -- the listener -------------------------------------------------------------------------

    def start(self) -> None:
        folder = self.settings.folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        if folder not in _SWEPT:  # once: later, every file there is a live association's
            _sweep(folder)
            _SWEPT.add(folder)
        tempfile.tempdir = str(folder)  # pynetdicom's NamedTemporaryFile takes no folder of its own
        ae = AE(ae_title=self.settings.ae_title)
        ae.maximum_associations = self.settings.max_associations
        # pynetdicom aborts an association whose network has been idle this long, and it is idle
        # while a C-STORE waits for its verdict (60 s by default, which a large object can take).
        ae.network_timeout = self.settings.answer_timeout + _VERDICT_CAP + 60
        ae.require_called_aet = True
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        handlers = [(evt.EVT_REQUESTED, self._on_request), (evt.EVT_C_STORE, self._on_store),
                    (evt.EVT_C_ECHO, lambda event: SUCCESS)]
        self.listener = ae.start_server((self.settings.host, self.settings.port), block=False,
                                       evt_handlers=handlers)
        log.info("event=source_started source=%s ae=%s address=%s:%d allowed=%s", self.name,
                 self.settings.ae_title, self.settings.host, self.settings.port,
                 ",".join(p.ae + (f"@{p.host}" if p.host else "") for p in self.settings.allowed))

    def stop(self) -> None:
        """Answer whatever still waits with 0xA700, close the listener and end its associations."""
        self._stopping.set()
        with self._lock:
            for pending in self._pending.values():
                if not pending.taken:
                    pending.withdrawn = True
                    pending.comment = "the gateway is stopping; send again later"
                    pending.done.set()
        if self.listener is not None:
            self.listener.shutdown()
            for assoc in list(self.listener.active_associations):
                assoc.abort()
            self.listener = None

    def _on_request(self, event) -> None:
        """EVT_REQUESTED: refuse a sender that ``allowed`` does not name."""
        peer = event.assoc.requestor
        ae_title, address = str(peer.primitive.calling_ae_title).strip(), str(peer.address)
        if any(p.admits(ae_title, address) for p in self.settings.allowed):
            return
        log.warning("event=association_refused source=%s calling_ae=%s address=%s reason=%r", self.name,
                    ae_title, address, "not in allowed")
        event.assoc.acse.send_reject(*_REJECT_CALLING_AE)
        # As pynetdicom's own refusals do: wait until the rejection is sent and the peer has
        # closed (or the ARTIM timer ran out) before the connection is shut down.
        event.assoc.kill()

    def _on_store(self, event) -> Dataset:
        """EVT_C_STORE: queue the received file as a capture and answer with the pipeline's verdict."""
        pending = _Pending(self._capture(event))
        with self._lock:
            self._pending[id(pending.capture)] = pending
        try:
            if self._stopping.is_set():
                return _status(OUT_OF_RESOURCES, "the gateway is stopping; send again later")
            self._inbox.put(pending)
            if not pending.done.wait(self.settings.answer_timeout):
                with self._lock:
                    pending.withdrawn = not pending.taken
                if pending.withdrawn:
                    self._answered(pending.capture, OUT_OF_RESOURCES, "no turn in the pipeline in time")
                    return _status(OUT_OF_RESOURCES, "busy: send again later")
                pending.done.wait(_VERDICT_CAP)
            self._answered(pending.capture, pending.status, pending.comment)
            return _status(pending.status, pending.comment)
        finally:
            with self._lock:
                self._pending.pop(id(pending.capture), None)

    def _capture(self, event) -> Capture:
        peer = event.assoc.requestor
        number = next(self._numbers)
        ae_title = str(peer.ae_title).strip()
        path = Path(event.dataset_path)
        details = {"calling_ae": ae_title, "address": str(peer.address), "store": number,
                   "sop_class": str(event.request.AffectedSOPClassUID), "size": path.stat().st_size}
        return Capture(b"", Origin(self.name, f"{ae_title}@{peer.address} store {number}", details), path=path)

    def _answered(self, capture: Capture, status: int, comment: str) -> None:
        level = logging.INFO if status == SUCCESS else logging.WARNING
        log.log(level, "event=sender_answered source=%s calling_ae=%s store=%s bytes=%s status=0x%04X%s", self.name,
                capture.origin.details["calling_ae"], capture.origin.details["store"],
                capture.origin.details["size"], status, f" reason={comment!r}" if comment else "")

    # -- captures and verdicts ----------------------------------------------------------------

    def captures(self, stop: threading.Event) -> Iterator[Capture]:
        """Received objects in arrival order, until ``stop`` is set."""
        while not stop.is_set():
            try:
                pending = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                if pending.withdrawn or stop.is_set():
                    pending.withdrawn = True
                    pending.done.set()
                    continue
                pending.taken = True
            yield pending.capture

    def _verdict(self, capture: Capture, status: int, comment: str = "") -> None:
        with self._lock:
            pending = self._pending.get(id(capture))
        if pending is not None:
            pending.status, pending.comment = status, comment
            pending.done.set()

    def ack(self, capture: Capture, sop_instance_uid: str) -> None:
        self._verdict(capture, SUCCESS)

    def reject(self, capture: Capture, reason: str) -> None:
        self._verdict(capture, CANNOT_UNDERSTAND, reason)

    def defer(self, capture: Capture) -> None:
        """The spool failed: the sender hears 0xA700 and sends again later."""
        self._verdict(capture, OUT_OF_RESOURCES, "not durable: the spool failed; send again later")


def _status(status: int, comment: str) -> Dataset:
    """The C-STORE response's status, with an Error Comment (LO, 64 characters) on failure."""
    ds = Dataset()
    ds.Status = status
    if status != SUCCESS and comment:
        ds.ErrorComment = comment.replace("\\", "/")[:64]
    return ds


def _sweep(folder: Path) -> None:
    """Remove objects a killed process left half-received (never acknowledged to anyone)."""
    for path in folder.glob("tmp*.dcm"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
