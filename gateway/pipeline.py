"""The path of one capture: identify, decode, normalise, encode, spool, then tell the driver.

``prepare`` is the pure part (bytes in, finished dataset and its Part-10 bytes out) that
``convert``, ``send``, ``ingest-tape --dry-run`` and the service share; every failure in it,
encoding the Part-10 file included, is a ``DecodeError`` of that one capture. ``Pipeline.handle``
(one capture) and ``Pipeline.batch`` (a group sharing one commit) add the spool and the one rule
that matters most: the driver hears ``ack`` only once the instance is durable, and ``reject``
(with the reason) for anything that cannot become one. A decoder bug is a rejected capture, never
a dead service and never a retry loop: only a storage failure (``OSError`` or SQLite's) leaves a
capture unacknowledged, for the driver to offer again.

A capture in a Part-10 file (the DICOM source's) takes ``prepare_file``: it is decoded with its
large values left in the file and streamed into the spool (``gateway.dicom.deferred``), so
however large it never sits in memory.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass, field, replace
from typing import Callable

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from gateway import formats
from gateway.capture import Capture, CaptureSink
from gateway.delivery.spool import Spool, encode
from gateway.dicom import verbatim
from gateway.dicom.deferred import write_part10
from gateway.dicom.normalize import SiteRules, normalize
from gateway.errors import DecodeError, StorageError
from gateway.formats.dicom.passthrough import decode_file
from gateway.routing import Routing

log = logging.getLogger("gateway.pipeline")

PART10 = "dicom"
GROUP_COUNT = 64          # a group (``Batch``) of a grouping source commits at most this many at once ...
GROUP_BYTES = 64 << 20    # ... or this many staged bytes (on disk, not in memory)


@dataclass(frozen=True)
class Instance:
    """One finished instance: the dataset, its Part-10 bytes as the spool stores them, and the
    name of the format it came from."""

    dataset: Dataset
    data: bytes = field(repr=False)
    format: str


def prepare(capture: Capture, rules: SiteRules = SiteRules(), routing: Routing | None = None) -> Instance:
    """Identify, decode, normalise, coerce (``routing``'s rules for the capture's source) and
    encode one capture; any failure is a ``DecodeError``.

    Encoding belongs here, not in the spool: a dataset that pydicom refuses to write (a
    Command Set or File Meta element in the data set, a value its VR cannot hold) is bad input
    of this capture, and must be rejected like one rather than retried as if storage had failed.
    DICOM passed through keeps the bytes of the elements normalisation left unchanged (``verbatim``).
    """
    decoded = formats.decode(capture.read(), capture.parts)
    before = verbatim.snapshot(decoded.dataset) if decoded.verbatim is not None else None
    ds = _finish(decoded, rules, routing, capture)
    _refuse_misplaced_groups(ds)
    try:
        data = verbatim.part10(ds, decoded.verbatim, before) if before is not None else None
        if data is None:
            data = encode(ds)
    except MemoryError:
        raise DecodeError("cannot encode the instance: too large") from None
    except Exception as exc:  # noqa: BLE001 - pydicom refuses the dataset: this capture's fault
        raise _encode_error(exc) from exc
    return Instance(ds, data, decoded.format)


def kept_in_file(capture: Capture) -> bool:
    """Whether ``capture`` is a Part-10 file to decode with its large values left there (and
    stream into the spool); anything else is read whole."""
    if capture.path is None:
        return False
    with open(capture.path, "rb") as f:
        return formats.get(PART10).identify(f.read(132))


def prepare_file(capture: Capture, rules: SiteRules = SiteRules(), routing: Routing | None = None) -> Dataset:
    """``prepare`` for a capture ``kept_in_file``: the finished dataset, whose large values stay
    in the file until the spool copies them (encoding errors surface there)."""
    decoded = formats.safe_decode(lambda _: decode_file(capture.path), b"", PART10)
    ds = _finish(decoded, rules, routing, capture)
    _refuse_misplaced_groups(ds)
    return ds


def _finish(decoded: formats.Decoded, rules: SiteRules, routing: Routing | None, capture: Capture) -> Dataset:
    """Normalise and coerce; a bug in either rejects this capture only."""
    try:
        ds = normalize(decoded, rules, origin=str(capture.origin))
        if routing is not None:
            routing.coerce(ds, capture.origin.source, str(capture.origin))
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a normalisation bug rejects one capture only
        raise DecodeError(f"{decoded.format}: cannot build a valid instance: {type(exc).__name__}: {exc}") from exc
    return ds


_PIXEL_GROUP = 0x7FE0  # Pixel Data and its float forms: not kept for a result's report

_MISPLACED = {0x0000: "Command Set", 0x0002: "File Meta Information"}


def _refuse_misplaced_groups(ds: Dataset) -> None:
    """A Command Set or File Meta element inside the data set (a damaged group number reads
    as one) cannot be written into a DICOM file: name it rather than let pydicom refuse."""
    for tag in ds.keys():
        if tag >> 16 in _MISPLACED:  # the group, without BaseTag's property (every tag of every capture)
            raise DecodeError(f"a {_MISPLACED[tag.group]} element {tag} inside the data set cannot be written "
                              "into a DICOM file", field=str(tag))


_TAG_IN_MESSAGE = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)")


def _encode_error(exc: Exception) -> DecodeError:
    """pydicom's refusal as a one-line reason naming the element. Only the first line is
    kept: pydicom appends a traceback and the element with its value (which may be a
    patient's name) to some of its messages."""
    first = (str(exc).splitlines() or [""])[0]
    match = _TAG_IN_MESSAGE.search(first)
    name = None
    if match:
        tag = int(match.group(1) + match.group(2), 16)
        name = keyword_for_tag(tag) or f"({match.group(1)},{match.group(2)})"
    return DecodeError(f"cannot encode the instance as a DICOM file: {type(exc).__name__}: {first}", field=name)


def convert(capture: Capture, rules: SiteRules = SiteRules(), routing: Routing | None = None) -> tuple[Dataset, str]:
    """Return the finished instance and the name of the format it came from (see ``prepare``)."""
    instance = prepare(capture, rules, routing)
    return instance.dataset, instance.format


@dataclass(frozen=True)
class Result:
    accepted: bool
    sop_instance_uid: str | None = None
    format: str | None = None
    reason: str | None = None
    queued: tuple[str, ...] = ()
    series_uid: str | None = None
    study_uid: str | None = None
    dataset: Dataset | None = field(default=None, repr=False, compare=False)  # for reports (ingest-tape)


class Pipeline:
    def __init__(self, spool: Spool, rules: SiteRules, on_spooled: Callable[[tuple[str, ...], int], None] | None = None,
                 on_arrival: Callable[[Result, Capture], None] | None = None, routing: Routing = Routing()):
        self.spool = spool
        self.rules = rules
        self.routing = routing
        self.on_spooled = on_spooled
        self.on_arrival = on_arrival  # the console's list of recent arrivals

    def handle(self, capture: Capture, sink: CaptureSink, destinations: tuple[str, ...]) -> Result:
        """Spool ``capture`` and give the driver its verdict. Raises ``StorageError`` only when
        the spool could not store it: then nothing was acknowledged and the driver offers the
        capture again later. Every other failure is a rejection with the reason. A group of one."""
        batch = self.batch(sink, keep_datasets=True)
        rejected = batch.add(capture, destinations)
        if rejected is not None:
            return rejected
        done = batch.commit()
        if done.unacked:
            raise done.unacked[0][1]
        return done.results[0][1]

    def batch(self, sink: CaptureSink, keep_datasets: bool | None = None, bare: bool = False,
              headers_only: bool = False) -> Batch:
        """Captures spooled as one group (``Batch``) for ``sink``'s verdicts. Datasets are kept
        for the results only when asked, or when the console wants them (``on_arrival``);
        ``headers_only`` keeps them without their pixel data (for a report: a group waiting
        for its commit holds no images in memory).
        ``bare``: keep each staged capture without its bytes, and ack that copy (same origin),
        for a sink that knows its captures by origin; otherwise the capture itself is kept (a
        sink may know it by identity) and should be committed soon."""
        keep = self.on_arrival is not None if keep_datasets is None else keep_datasets
        return Batch(self, sink, keep, bare, headers_only)


@dataclass(frozen=True)
class _Staged:
    """A capture staged in a batch: what its ack and result need (the capture without its
    bytes, in a bare batch)."""

    capture: Capture
    format: str
    series_uid: str
    study_uid: str
    dataset: Dataset | None


@dataclass
class Committed:
    """A batch's outcome: each acknowledged capture's result, and each capture whose instance
    is durable but whose driver failed to record the ack (offer it again: nothing is sent twice)."""

    results: list[tuple[Capture, Result]] = field(default_factory=list)
    unacked: list[tuple[Capture, Exception]] = field(default_factory=list)


class Batch:
    """Captures made durable together, so many share one directory fsync and one SQLite commit
    (``Spool.intake``). ``add`` rejects at once what cannot become an instance and stages the
    rest; ``commit`` makes them durable and only then acknowledges each. A ``StorageError``
    from either acknowledges nothing it concerns: the caller defers those captures (``add``'s
    own, or ``captures`` as they were before ``commit``)."""

    def __init__(self, pipeline: Pipeline, sink: CaptureSink, keep_datasets: bool, bare: bool = False,
                 headers_only: bool = False):
        self.pipeline = pipeline
        self.sink = sink
        self.keep_datasets = keep_datasets
        self.bare = bare
        self.headers_only = headers_only
        self._intake = pipeline.spool.intake()
        self._staged: list[_Staged] = []

    def __len__(self) -> int:
        return len(self._staged)

    @property
    def nbytes(self) -> int:
        """Bytes staged on disk for this batch (a bound for when to commit)."""
        return self._intake.nbytes

    @property
    def captures(self) -> list[Capture]:
        """The staged captures (without their bytes), to defer if the commit fails."""
        return [s.capture for s in self._staged]

    def add(self, capture: Capture, destinations: tuple[str, ...]) -> Result | None:
        """Prepare and stage ``capture``: its rejection (``Result``, the driver told), or None
        once staged. Raises ``StorageError`` when it could not be staged (nothing to ack)."""
        p = self.pipeline
        where = str(capture.origin)
        instance = None
        try:
            if kept_in_file(capture):
                ds, fmt = prepare_file(capture, p.rules, p.routing), PART10
            else:
                instance = prepare(capture, p.rules, p.routing)
                ds, fmt = instance.dataset, instance.format
        except DecodeError as exc:
            return self._reject(capture, str(exc))
        destinations = p.routing.destinations(ds, fmt, capture.origin.source, destinations)
        try:
            if instance is None:
                self._intake.add_stream(ds, lambda out: write_part10(ds, capture.path, out), capture.size,
                                        destinations, source=capture.origin.source, origin=where)
            else:
                self._intake.add_bytes(instance.data, ds, destinations, source=capture.origin.source, origin=where)
        except StorageError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(where, exc) from exc
        except Exception as exc:  # noqa: BLE001 - not storage: this instance can never be stored
            return self._reject(capture, f"cannot spool the instance: {type(exc).__name__}: {exc}")
        finally:
            del instance  # the encoded bytes: nothing keeps them past staging
        kept = replace(capture, data=b"", parts={}) if self.bare else capture
        self._staged.append(_Staged(kept, fmt,
                                    str(ds.get("SeriesInstanceUID", "")), str(ds.get("StudyInstanceUID", "")),
                                    self._kept(ds)))
        return None

    def _kept(self, ds: Dataset) -> Dataset | None:
        """The dataset its result will carry, if any (without the pixel group if so asked)."""
        if not self.keep_datasets:
            return None
        if not self.headers_only:
            return ds
        return Dataset({tag: ds.get_item(tag) for tag in ds.keys() if tag.group != _PIXEL_GROUP})

    def discard(self) -> None:
        """Forget what is staged (nothing acknowledged, nothing recorded, the staged files gone):
        for a caller stopping at once."""
        self._staged = []
        self._intake.discard()

    def commit(self) -> Committed:
        """Make every staged capture durable, then ack each (in order), then tell delivery and
        the console. Raises ``StorageError`` with none acknowledged; the batch is empty after."""
        staged, self._staged = self._staged, []
        if not staged:
            return Committed()
        try:
            added = self._intake.commit()
        except StorageError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error(f"{len(staged)} capture(s) from {staged[0].capture.origin}", exc) from exc
        done = Committed()
        queued: dict[str, int] = {}  # destination: instances queued for it
        for item, a in zip(staged, added):
            log.info("event=spooled origin=%s format=%s sop=%s queued=%s", item.capture.origin, item.format,
                     a.sop_instance_uid, ",".join(a.queued) or "-")
            try:
                self.sink.ack(item.capture, a.sop_instance_uid)
            except Exception as exc:  # noqa: BLE001 - durable all the same; the driver offers it again
                done.unacked.append((item.capture, exc))
                continue
            for destination in a.queued:
                queued[destination] = queued.get(destination, 0) + 1
            done.results.append((item.capture, Result(True, a.sop_instance_uid, item.format, queued=a.queued,
                                                      series_uid=item.series_uid, study_uid=item.study_uid,
                                                      dataset=item.dataset)))
        p = self.pipeline
        if p.on_spooled and queued:
            told: dict[int, list[str]] = {}  # how many: the destinations that many went to
            for destination, count in queued.items():
                told.setdefault(count, []).append(destination)
            for count, destinations in told.items():  # one call for a group of one kind
                p.on_spooled(tuple(destinations), count)
        if p.on_arrival:
            for capture, result in done.results:
                p.on_arrival(result, capture)
        return done

    def _reject(self, capture: Capture, reason: str) -> Result:
        log.warning("event=rejected origin=%s size=%d reason=%r", capture.origin, capture.size, reason)
        self.sink.reject(capture, reason)
        return Result(False, reason=reason)


def _storage_error(where: str, exc: BaseException) -> StorageError:
    """Not durable, so not acknowledged: the driver keeps the source and tries again later."""
    log.error("event=spool_failed origin=%s error=%r", where, f"{type(exc).__name__}: {exc}")
    return StorageError(f"spool: {type(exc).__name__}: {exc}")
