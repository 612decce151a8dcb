"""Prometheus metrics for the forwarder (served over HTTP by ``gateway.console.server``).

Events are counted as they happen (per destination): instances received, delivered, retried,
dead-lettered, association failures, bytes sent. Queue depth per state, the age of the
oldest waiting instance, and the spool's free space, floor and paused intake are read from the
spool at scrape time, so they are right even for
work queued by another process (``legacy-gateway send``). Each ``Metrics`` has its own
registry: a reloaded service keeps its counters, and tests do not collide.
"""

from __future__ import annotations

import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

PREFIX = "legacy_gateway"


class _SpoolCollector:
    def __init__(self, source: Callable[[], object | None], up: dict[str, bool]):
        self.source = source
        self.up = up

    def collect(self):
        depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Instances per destination and delivery state",
                                  labels=["destination", "state"])
        oldest = GaugeMetricFamily(f"{PREFIX}_oldest_waiting_seconds",
                                   "Age of the oldest instance not yet delivered", labels=["destination"])
        up = GaugeMetricFamily(f"{PREFIX}_destination_up",
                               "1 while the destination answers, 0 while it is down and probed",
                               labels=["destination"])
        spool = self.source()
        now = time.time()
        for st in spool.status() if spool is not None else []:
            for state in ("queued", "in_flight", "committing", "delivered", "dead"):
                depth.add_metric([st.destination, state], getattr(st, state))
            oldest.add_metric([st.destination], max(0.0, now - st.oldest_waiting) if st.oldest_waiting else 0.0)
        for name, is_up in sorted(self.up.items()):
            up.add_metric([name], 1.0 if is_up else 0.0)
        yield depth
        yield oldest
        yield up
        if spool is not None:
            yield from _space(spool)


def _space(spool):
    """Free space, the intake floor, and whether intake is paused (1) for want of space."""
    room = spool.space.room()
    paused = spool.intake_paused is not None or room.free < room.floor
    for name, doc, value in (
            ("spool_free_bytes", "Free space on the spool's file system", room.free),
            ("spool_floor_bytes", "Free space below which intake pauses", room.floor),
            ("intake_paused", "1 while intake is paused for want of free space on the spool", float(paused))):
        gauge = GaugeMetricFamily(f"{PREFIX}_{name}", doc)
        gauge.add_metric([], value)
        yield gauge


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.spool = None
        self.up: dict[str, bool] = {}

        def counter(name: str, doc: str) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, ["destination"], registry=self.registry)

        self.received = counter("received", "Instances queued for a destination")
        self.delivered = counter("delivered", "Instances delivered (confirmed, with storage commitment)")
        self.retried = counter("retried", "Delivery attempts that will be retried")
        self.dead_lettered = counter("dead_lettered", "Instances moved to dead-letter")
        self.association_failures = counter("association_failures",
                                            "Associations that could not be opened or were lost")
        self.bytes_sent = counter("bytes_sent", "Bytes of instances sent with C-STORE")
        self.registry.register(_SpoolCollector(lambda: self.spool, self.up))
        self.source_degraded = Gauge(f"{PREFIX}_source_degraded",
                                     "1 while a source runs without being able to take captures (port unplugged, "
                                     "device missing)", ["source"], registry=self.registry)

    def touch(self, destination: str) -> None:
        """Create every counter of a destination at zero, so a scrape shows them all from the start."""
        for counter in (self.received, self.delivered, self.retried, self.dead_lettered,
                        self.association_failures, self.bytes_sent):
            counter.labels(destination)
