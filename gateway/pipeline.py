"""The path of one capture: identify, decode, normalise, spool, then tell the driver.

``convert`` is the pure part (bytes in, finished dataset out) that ``convert``, ``ingest-tape
--dry-run`` and the service share. ``Pipeline.handle`` adds the spool and the one rule that
matters most: the driver hears ``ack`` only once the instance is durable, and ``reject`` (with
the reason) for anything that cannot become one. A decoder bug is a rejected capture, never a
dead service. A capture in a Part-10 file (the DICOM source's) takes ``convert_file`` and is
streamed into the spool, its large values never loaded (``gateway.dicom.deferred``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from pydicom.dataset import Dataset

from gateway import formats
from gateway.capture import Capture, CaptureSink
from gateway.errors import DecodeError
from gateway.dicom.deferred import write_part10
from gateway.formats.dicom.passthrough import decode_file
from gateway.dicom.normalize import SiteRules, normalize
from gateway.delivery.spool import Spool

log = logging.getLogger("gateway.pipeline")

PART10 = "dicom"


def convert(capture: Capture, rules: SiteRules = SiteRules()) -> tuple[Dataset, str]:
    """Return the finished instance and the name of the format it came from."""
    decoded = formats.decode(capture.read())
    return _normalize(decoded, rules, capture), decoded.format


def kept_in_file(capture: Capture) -> bool:
    """A capture in a Part-10 file is decoded with its large values left there
    (``gateway.dicom.deferred``) and streamed into the spool: however large, it never sits in
    memory. Anything else is read whole."""
    if capture.path is None:
        return False
    with open(capture.path, "rb") as f:
        return formats.get(PART10).identify(f.read(132))


def convert_file(capture: Capture, rules: SiteRules = SiteRules()) -> tuple[Dataset, str]:
    """``convert`` for a capture ``kept_in_file``: its large values stay in the file."""
    decoded = formats.safe_decode(lambda _: decode_file(capture.path), b"", PART10)
    return _normalize(decoded, rules, capture), decoded.format


def _normalize(decoded: formats.Decoded, rules: SiteRules, capture: Capture) -> Dataset:
    try:
        return normalize(decoded, rules, origin=str(capture.origin))
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a normalisation bug rejects one capture only
        raise DecodeError(f"{decoded.format}: cannot build a valid instance: {type(exc).__name__}: {exc}") from exc


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
    def __init__(self, spool: Spool, rules: SiteRules, on_spooled: Callable[[tuple[str, ...]], None] | None = None,
                 on_arrival: Callable[[Result, Capture], None] | None = None):
        self.spool = spool
        self.rules = rules
        self.on_spooled = on_spooled
        self.on_arrival = on_arrival  # the console's list of recent arrivals

    def handle(self, capture: Capture, sink: CaptureSink, destinations: tuple[str, ...]) -> Result:
        where = str(capture.origin)
        in_file = kept_in_file(capture)
        try:
            ds, fmt = convert_file(capture, self.rules) if in_file else convert(capture, self.rules)
        except DecodeError as exc:
            log.warning("event=rejected origin=%s size=%d reason=%r", where, capture.size, str(exc))
            sink.reject(capture, str(exc))
            return Result(False, reason=str(exc))
        try:
            if in_file:
                added = self.spool.add_stream(ds, lambda out: write_part10(ds, capture.path, out), capture.size,
                                              destinations, source=capture.origin.source, origin=where)
            else:
                added = self.spool.add(ds, destinations, source=capture.origin.source, origin=where)
        except Exception as exc:
            # Not durable, so not acknowledged: the driver keeps the source and tries again later.
            log.error("event=spool_failed origin=%s error=%r", where, f"{type(exc).__name__}: {exc}")
            raise
        log.info("event=spooled origin=%s format=%s sop=%s queued=%s", where, fmt, added.sop_instance_uid,
                 ",".join(added.queued) or "-")
        sink.ack(capture, added.sop_instance_uid)
        if self.on_spooled and added.queued:
            self.on_spooled(added.queued)
        result = Result(True, added.sop_instance_uid, fmt, queued=added.queued,
                        series_uid=str(ds.get("SeriesInstanceUID", "")), study_uid=str(ds.get("StudyInstanceUID", "")),
                        dataset=ds)
        if self.on_arrival:
            self.on_arrival(result, capture)
        return result
