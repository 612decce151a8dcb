"""Delivery of spooled instances to each destination (DESIGN.md, step 6).

Per destination, a supervisor thread and ``associations`` lanes. A lane claims a batch of due
items (a claimed item is its own until settled, so parallel lanes never send the same instance
at once), sends them through its sender (``gateway.delivery.sender``: a DICOM association, one
C-STORE per instance, or HTTP connections, one STOW-RS request per batch), which it keeps open
across batches (an association is renewed after
``max_per_association`` instances, when a batch needs contexts it was not set up for, or after
a few idle seconds), and records the batch's outcomes in one spool transaction. Every outcome
is classified by the tables in ``gateway.delivery.outcomes``: delivered, retried after capped
exponential backoff with full jitter, or dead-lettered with its reason; nothing older than the
give-up age is retried.

When the destination itself fails (connection refused, association rejected or lost, no
response, an HTTP server error) the lanes stop and the supervisor probes it (C-ECHO, or an
HTTP GET for STOW-RS, ``sender.probe``) on the same backoff, but at
least every ``PROBE_CAP`` seconds while instances wait for it (a refused or answered C-ECHO
costs a few milliseconds; a PACS back after an hour must not wait for a backoff grown to ten
minutes); once it answers, everything waiting for it is due at once. Destinations share
nothing but the spool, so one that is down never delays another.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from gateway.config import Commitment, Destination
from gateway.delivery.association import LinkError, Sent
from gateway.delivery.commitment import Listener, ReportHandler, new_transaction_uid
from gateway.delivery.metrics import Metrics
from gateway.delivery.outcomes import SUCCESS, Outcome
from gateway.delivery.sender import new_sender, probe
from gateway.delivery.space import is_full
from gateway.delivery.spool import COMMITTING, DEAD, DELIVERED, QUEUED, Item, Settlement, Spool, SpoolBusy

log = logging.getLogger("gateway.delivery.forwarder")
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

BATCH = Destination.batch  # items a lane claims at a time (a destination's default batch: 32)
POLL = 2.0            # look at the spool at least this often (work queued by other processes)
IDLE_RELEASE = 5.0    # release an association unused this long (PACS drop idle ones anyway)
SWEEP = 5.0           # how often old items and unconfirmed commitments are looked at
FULL_PAUSE = 5.0      # a lane's pause after the spool's file system was full
PROBE_CAP = 2.0       # longest wait between probes of a down destination while items wait for it


def backoff(attempts: int, initial: float, cap: float, rng: random.Random = random.Random()) -> float:
    """Full jitter: a uniform wait up to the capped exponential, so many items (or many
    gateways) failing together do not come back together."""
    return rng.uniform(0, min(cap, initial * (2 ** min(max(0, attempts), 62))))


class Health:
    """Whether a destination answers; while it does not, it is probed, not sent to."""

    def __init__(self) -> None:
        self.up = True
        self.failures = 0
        self.next_probe = 0.0
        self.reason = ""
        self.lock = threading.Lock()

    def down(self, reason: str, delay: float) -> bool:
        """Mark it down (True if it was up): the first probe comes after ``delay``."""
        with self.lock:
            was_up = self.up
            if was_up:
                self.up, self.failures, self.reason = False, 0, reason
                self.next_probe = time.time() + delay
            return was_up


class DestinationRunner(threading.Thread):
    """Supervises one destination: its lanes, its probes while down, its periodic sweeps."""

    def __init__(self, dest: Destination, spool: Spool, ae_title: str, metrics: Metrics,
                 reports: ReportHandler | None = None, on_settled: Callable[[], None] | None = None):
        super().__init__(name=f"forward-{dest.name}", daemon=True)
        self.dest, self.spool, self.ae_title, self.metrics = dest, spool, ae_title, metrics
        self.reports = reports
        self.on_settled = on_settled or (lambda: None)  # outcomes were recorded (Forwarder.drain listens)
        self.rng = random.Random()
        self.health = Health()
        self.stopping = threading.Event()
        self.cond = threading.Condition()
        self.generation = 0  # bumped by every wake-up, so no wake-up is lost between a look and a wait
        self.lanes = [Lane(self, n) for n in range(dest.associations)]
        metrics.up[dest.name] = True
        metrics.touch(dest.name)

    # -- coordination ---------------------------------------------------------------------

    def wake(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def wait(self, generation: int, timeout: float) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.generation != generation or self.stopping.is_set(), max(0.0, timeout))

    def backoff(self, attempts: int) -> float:
        return backoff(attempts, self.dest.retry.initial_delay, self.dest.retry.max_delay, self.rng)

    def probe_delay(self, failures: int) -> float:
        """The wait before the next probe: the backoff, capped at ``PROBE_CAP`` while anything
        is queued for the destination (with nothing to send, a slow look is enough)."""
        delay = self.backoff(failures)
        if self.spool.next_due(self.dest.name) is not None:
            delay = min(delay, PROBE_CAP)
        return delay

    def destination_failed(self, detail: str) -> None:
        self.metrics.association_failures.labels(self.dest.name).inc()
        if self.health.down(detail, self.probe_delay(0)):
            self.metrics.up[self.dest.name] = False
            log.warning("event=destination_down destination=%s detail=%r", self.dest.name, detail)
            self.wake()

    # -- supervisor loop ------------------------------------------------------------------

    def run(self) -> None:
        for lane in self.lanes:
            lane.start()
        next_sweep = 0.0
        while not self.stopping.is_set():
            generation = self.generation
            try:
                if not self.health.up and time.time() >= self.health.next_probe:
                    self.probe()
                if time.time() >= next_sweep:
                    self.sweep()
                    next_sweep = time.time() + SWEEP
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one failure
                log.exception("event=supervisor_error destination=%s", self.dest.name)
            wait = next_sweep - time.time()
            if not self.health.up:
                wait = min(wait, self.health.next_probe - time.time())
            self.wait(generation, wait)
        for lane in self.lanes:
            lane.join(self.dest.timeout + 5)

    def probe(self) -> None:
        ok, detail, seconds = probe(self.dest, self.ae_title)
        health = self.health
        if ok:
            with health.lock:
                health.up, health.failures = True, 0
            self.metrics.up[self.dest.name] = True
            self.spool.make_due(self.dest.name)
            log.warning("event=destination_up destination=%s after=%r echo=%r waiting=%d", self.dest.name,
                        health.reason, detail, self.spool.pending(self.dest.name))
            self.wake()
            return
        delay = self.probe_delay(health.failures + 1)
        with health.lock:
            health.failures += 1
            health.next_probe = time.time() + delay
            wait = health.next_probe - time.time()
        self.metrics.association_failures.labels(self.dest.name).inc()
        log.info("event=probe_failed destination=%s detail=%r next_in=%.1fs", self.dest.name, detail, wait)

    def sweep(self) -> None:
        name = self.dest.name
        expired = self.spool.expire(name, self.dest.retry.give_up_after, unattempted=not self.health.up)
        if expired:
            self.metrics.dead_lettered.labels(name).inc(len(expired))
            log.error("event=dead_letter destination=%s count=%d reason=expired", name, len(expired))
        # With commitment turned off since, nothing listens for the reports: send those again now.
        timeout = self.dest.commitment_timeout if self.dest.storage_commitment else 0.0
        again = self.spool.expire_commitments(name, timeout)
        if again:
            self.metrics.retried.labels(name).inc(again)
            log.warning("event=commitment_timeout destination=%s count=%d", name, again)
            self.wake()

    def stop(self) -> None:
        self.stopping.set()
        self.wake()
        for lane in self.lanes:
            if lane.connecting:  # a hung PACS would hold it for the whole timeout
                lane.link.abort()

    def abort(self) -> None:
        """Cut the associations of lanes still busy after a grace period."""
        for lane in self.lanes:
            lane.link.abort()

    def is_alive(self) -> bool:
        """For the service's health check: False once this runner or a lane has died. A runner
        not started yet (its forwarder waits for the spool's forwarding lock) has not failed."""
        if self.ident is None:
            return not self.stopping.is_set()
        return super().is_alive() and all(lane.is_alive() for lane in self.lanes)


class Lane(threading.Thread):
    """One association's worth of sending for a destination.

    A batch's outcomes are recorded in the background while the next batch is sent
    (``record``): the lane claims the next batch first, then hands the outcomes to its
    recorder thread, so the association does not stand idle while they are committed
    (~3 ms a batch of 32, fsyncs included; with one association to a pynetdicom receiver
    that was 3% of the time). They are durable before the lane idles, stops or records the
    batch after, and a batch waiting for a storage commitment report is recorded at once,
    before the request goes out, as the report may come back at any moment.

    The next batch is claimed while the peer works on this batch's last instance
    (``claim_ahead``), so the next request goes out as soon as that answer is in: a
    pynetdicom receiver looks for it ~1 ms after answering, and the claim (~1.3 ms, an fsync
    included) made it miss that look at every batch.
    """

    def __init__(self, runner: DestinationRunner, number: int):
        super().__init__(name=f"forward-{runner.dest.name}-{number}", daemon=True)
        self.runner = runner
        self.dest = runner.dest
        self.spool = runner.spool
        reports = runner.reports.for_destination(runner.dest.name) if runner.reports else None
        self.link = new_sender(runner.dest, runner.ae_title, on_report=reports)
        self.connecting = False
        self.excess_until = 0.0  # the peer refused this extra association: wait before asking again
        self.excess_failures = 0
        self.unrecorded: list[Settlement] = []  # the last batch's outcomes, not yet handed to the spool
        self.recording: tuple[Future, list[Settlement]] | None = None
        self.recorder = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-record")
        self.ahead: list[Item] = []  # the next batch, claimed while the last answer was awaited
        # This destination's counters of every instance, looked up once (labels() takes a lock).
        self.bytes_sent = runner.metrics.bytes_sent.labels(runner.dest.name)
        self.delivered = runner.metrics.delivered.labels(runner.dest.name)

    def run(self) -> None:
        runner = self.runner
        try:
            while not runner.stopping.is_set():
                generation = runner.generation
                try:
                    worked = self.step()
                except Exception as exc:  # noqa: BLE001 - a lane must outlive any one failure
                    self.failed("forward_error", exc)
                    self.link.abort()
                    worked = False
                if not worked and not self.recorded():
                    self.idle(generation)
        finally:
            self.give_back_ahead("stopping")
            try:
                self.record()
            except Exception:  # noqa: BLE001 - left in flight: recover() makes them due at restart
                log.exception("event=record_failed destination=%s", self.dest.name)
            self.recorder.shutdown()
            self.link.close()

    def recorded(self) -> bool:
        """Before idling: record what is outstanding; True if there was something (so look
        again at once: some of it may be due now)."""
        try:
            return self.record()
        except Exception as exc:  # noqa: BLE001 - kept for the next attempt (see record)
            self.failed("record_failed", exc)
            return False

    def failed(self, event: str, exc: Exception) -> None:
        """Log a failure of the lane itself and pause before going on. A full spool file
        system is a known state (see ``space``), not a bug: one line, no traceback, and a
        longer pause while delivery elsewhere or the operator frees room."""
        if is_full(exc):
            log.warning("event=%s destination=%s error=%r", event, self.dest.name, f"spool file system full: {exc}")
            self.runner.stopping.wait(FULL_PAUSE)
            return
        log.exception("event=%s destination=%s", event, self.dest.name)
        self.runner.stopping.wait(1.0)

    def record(self, background: bool = False) -> bool:
        """Hand the last batch's outcomes to the spool, in the recorder thread if ``background``
        (after waiting for the batch before, whose failure is raised here, its outcomes kept
        to be recorded again: settling only changes rows still in flight, so twice is safe)."""
        if self.recording is not None:
            future, settlements = self.recording
            self.recording = None
            try:
                future.result()
            except BaseException:
                self.unrecorded = settlements + self.unrecorded
                raise
        settlements, self.unrecorded = self.unrecorded, []
        if not settlements:
            return False
        if background:
            self.recording = (self.recorder.submit(self._settle, settlements), settlements)
        else:
            try:
                self._settle(settlements)
            except BaseException:
                self.unrecorded = settlements + self.unrecorded
                raise
        return True

    def _settle(self, settlements: list[Settlement]) -> None:
        self.spool.settle(settlements)
        self.runner.on_settled()

    def idle(self, generation: int) -> None:
        runner = self.runner
        if self.link.is_open:
            idle_for = time.monotonic() - self.link.last_used
            # A sibling waiting to connect means the peer takes fewer associations than we
            # have lanes (storescp takes one): an idle association gives way at once.
            if idle_for >= IDLE_RELEASE or any(lane.connecting for lane in runner.lanes if lane is not self):
                self.link.close()
        timeout = POLL
        if self.excess_until > time.time():
            timeout = min(timeout, self.excess_until - time.time())
        elif runner.health.up:
            due = self.spool.next_due(self.dest.name)
            if due is not None:
                timeout = min(timeout, max(0.01, due - time.time()))
        if self.link.is_open:
            timeout = min(timeout, max(0.01, IDLE_RELEASE - (time.monotonic() - self.link.last_used)))
        with self.link.idling():
            runner.wait(generation, timeout)

    def give_back_ahead(self, why: str) -> None:
        """A batch claimed ahead that will not be sent now goes back with the next record."""
        items, self.ahead = self.ahead, []
        self.unrecorded += [self._release(i, why) for i in items]

    def claim_ahead(self) -> None:
        """Claim the next batch (run while this batch's last answer is awaited). Only if this
        association goes on after it; a failure here is left to the regular claim."""
        room = self.dest.max_per_association - self.link.sent - 1  # the instance in flight counts
        if room <= 0 or self.runner.stopping.is_set() or not self.runner.health.up:
            return
        try:
            self.ahead = self.spool.claim(self.dest.name, min(self.dest.batch, room))
        except Exception:  # noqa: BLE001 - claimed again by the regular path
            log.exception("event=claim_failed destination=%s", self.dest.name)

    def step(self) -> bool:
        if self.ahead:
            if self.runner.health.up and self.link.is_open and not self.runner.stopping.is_set():
                items, self.ahead = self.ahead, []
                return self.send_batch(items)
            self.give_back_ahead("claimed ahead, not sent")
            return False
        if not self.runner.health.up or self.excess_until > time.time():
            return False
        due = self.spool.next_due(self.dest.name)
        if due is None or due > time.time():
            return False
        if self.link.is_open and self.link.sent >= self.dest.max_per_association:
            self.link.close()
        if not self.link.is_open:
            # One more association only for more work than the connected lanes take in a batch.
            connected = sum(lane.link.is_open for lane in self.runner.lanes if lane is not self)
            batch = self.dest.batch
            if connected and self.spool.due(self.dest.name, batch * connected + 1) <= batch * connected:
                return False
            # Connect before claiming, so no item waits in the hands of a lane that cannot connect.
            if not self.open(self.spool.waiting_pairs(self.dest.name)):
                return False
        items = self.spool.claim(self.dest.name, min(self.dest.batch, self.dest.max_per_association - self.link.sent))
        if not items:
            return False
        return self.send_batch(items)

    def send_batch(self, items: list[Item]) -> bool:
        try:
            self.record(background=True)  # the last batch's outcomes, while this one is sent
            self.deliver(items)
        except BaseException:
            # Whatever is still in flight goes back (settled rows are left alone): an item
            # must never stay claimed by a lane that is no longer sending it.
            try:
                self.spool.release(items)
            except Exception:  # noqa: BLE001 - the spool itself failing: recovery at restart
                log.exception("event=release_failed destination=%s", self.dest.name)
            raise
        return True

    def open(self, first: list, waiting: list = ()) -> bool:
        """Open (or renew) this lane's association; False if it could not."""
        self.connecting = True
        started = time.monotonic()
        try:
            self.link.open(first, waiting, self.dest.storage_commitment)
        except LinkError as exc:
            self.failed_open(exc, started)
            return False
        finally:
            self.connecting = False
        self.excess_failures = 0
        return True

    def failed_open(self, exc: LinkError, started: float) -> None:
        runner = self.runner
        siblings = [lane for lane in runner.lanes if lane is not self]
        if any(lane.link.is_open or lane.link.last_used >= started for lane in siblings):
            # A sibling used an association while we waited: the destination is up but would
            # not take one more (storescp serves one at a time).
            runner.metrics.association_failures.labels(self.dest.name).inc()
            self.excess_until = time.time() + runner.backoff(self.excess_failures)
            self.excess_failures += 1
            log.info("event=extra_association_refused destination=%s lane=%s detail=%r", self.dest.name,
                     self.name, exc.detail)
        else:
            runner.destination_failed(exc.detail)

    # -- one batch ------------------------------------------------------------------------

    def deliver(self, items: list[Item]) -> None:
        pairs = [(i.sop_class_uid, i.transfer_syntax) for i in items]
        commitment = self.dest.storage_commitment
        if not self.link.covers(pairs, commitment):
            if not self.open(pairs, self.spool.waiting_pairs(self.dest.name)):
                # The association failed, not the items: they wait, unpenalised.
                self._settle([Settlement(i, QUEUED, "not sent", "could not open an association",
                                         time.time(), count_attempt=False) for i in items])
                return
        transaction = new_transaction_uid() if commitment else None
        batch = self.link.send_batch(items, self.runner.stopping, self.claim_ahead)
        settlements = [self._outcome(item, sent, transaction) for item, sent in batch.answered]
        settlements += [self._release(item, why) for item, why in batch.released]
        if batch.lost is not None:
            self.link.abort()
            self.runner.destination_failed(batch.lost)
        committing = [s.item for s in settlements if s.state == COMMITTING]
        if not committing:
            self.unrecorded = settlements  # recorded by ``record``, after the next claim
            return
        self._settle(settlements)
        self._request_commitment(transaction, committing)

    def _release(self, item: Item, why: str) -> Settlement:
        return Settlement(item, QUEUED, "released", why, time.time(), count_attempt=False)

    def _outcome(self, item: Item, sent: Sent, transaction: str | None) -> Settlement:
        name, sop, metrics = self.dest.name, item.sop_instance_uid, self.runner.metrics
        if sent.bytes:
            self.bytes_sent.inc(sent.bytes)
        outcome = sent.rule.outcome
        if outcome is Outcome.DELIVERED:
            warning = sent.detail if sent.rule is not SUCCESS else None
            if warning:
                log.warning("event=delivered_with_warning destination=%s sop=%s status=%s detail=%r",
                            name, sop, sent.status, warning)
            if transaction:
                return Settlement(item, COMMITTING, sent.status, warning, transaction_uid=transaction)
            self.delivered.inc()
            log.info("event=delivered destination=%s sop=%s status=%s", name, sop, sent.status)
            return Settlement(item, DELIVERED, sent.status, warning)
        status = sent.status or sent.rule.meaning
        if outcome is Outcome.RETRY:
            age = time.time() - item.queued_at
            if age < self.dest.retry.give_up_after:
                delay = self.runner.backoff(item.attempts)
                metrics.retried.labels(name).inc()
                log.warning("event=retry destination=%s sop=%s status=%s in=%.1fs detail=%r",
                            name, sop, sent.status, delay, sent.detail)
                return Settlement(item, QUEUED, status, sent.detail, time.time() + delay)
            detail = f"gave up after {age:.0f}s; last failure: {sent.detail}"
        else:
            detail = sent.detail
        metrics.dead_lettered.labels(name).inc()
        log.error("event=dead_letter destination=%s sop=%s status=%s detail=%r", name, sop, status, detail)
        return Settlement(item, DEAD, status, detail)

    def _request_commitment(self, transaction: str, items: list[Item]) -> None:
        refs = [(i.sop_class_uid, i.sop_instance_uid) for i in items]
        try:
            sent = self.link.request_commitment(transaction, refs)
        except LinkError as exc:
            sent = Sent(exc.rule, "", exc.detail)
            self.link.abort()
        # The Transaction UID is what a report must name: DEBUG only (see commitment.py).
        log.debug("event=commitment_transaction destination=%s transaction=%s", self.dest.name, transaction)
        if sent.rule.outcome is Outcome.DELIVERED:
            log.info("event=commitment_requested destination=%s count=%d", self.dest.name, len(items))
            return
        permanent = sent.rule.outcome is Outcome.PERMANENT
        again = time.time() + self.runner.backoff(min(i.attempts for i in items))
        self.spool.commitment_failed(
            transaction,
            [(i.sop_instance_uid, sent.status or sent.rule.meaning, sent.detail, permanent) for i in items],
            [self.dest.name], next_attempt=again)
        counter = self.runner.metrics.dead_lettered if permanent else self.runner.metrics.retried
        counter.labels(self.dest.name).inc(len(items))
        log.error("event=commitment_request_failed destination=%s count=%d detail=%r",
                  self.dest.name, len(items), sent.detail)


class Forwarder:
    """All destination runners. ``notify`` wakes them when something new is spooled.

    Only one process forwards from a spool at a time: ``start`` takes the spool's forwarding
    lock, then makes whatever a crash left in flight due again. If another process holds the
    lock (an operator's ``legacy-gateway send``), a service waits for it in the background
    (intake goes on meanwhile); ``start(wait=False)`` raises ``SpoolBusy`` instead.
    """

    def __init__(self, destinations: list[Destination] | tuple[Destination, ...], spool: Spool, ae_title: str,
                 commitment: Commitment | None = None, metrics: Metrics | None = None):
        self.spool = spool
        self.metrics = metrics or Metrics()
        self.metrics.spool = spool
        enabled = [d for d in destinations if d.enabled]
        for gone in set(self.metrics.up) - {d.name for d in enabled}:
            del self.metrics.up[gone]
        self.reports = ReportHandler(spool, enabled, on_result=self._commitment_result)
        self._progress = threading.Condition()
        self._settled = 0  # batches of outcomes recorded so far
        self.workers = {d.name: DestinationRunner(d, spool, ae_title, self.metrics, self.reports, self._on_settled)
                        for d in enabled}
        self.listener = None
        self._stopping = threading.Event()
        self._waiter: threading.Thread | None = None
        if any(d.storage_commitment for d in enabled):
            c = commitment or Commitment()
            self.listener = Listener(self.reports, ae_title, c.listen_host(enabled), c.port)

    def _commitment_result(self, destination: str, sop_instance_uid: str, committed: bool) -> None:
        if committed:
            self.metrics.delivered.labels(destination).inc()
            log.info("event=delivered destination=%s sop=%s status=committed", destination, sop_instance_uid)
        else:
            self.metrics.retried.labels(destination).inc()
            log.warning("event=commitment_failed destination=%s sop=%s", destination, sop_instance_uid)
            worker = self.workers.get(destination)
            if worker:
                worker.wake()

    def start(self, wait: bool = True) -> None:
        try:
            self.spool.acquire_forwarding()
        except SpoolBusy as exc:
            if not wait:
                raise
            log.warning("event=forwarding_deferred detail=%r", f"{exc}; forwarding starts when it is released")
            self._waiter = threading.Thread(target=self._start_when_free, name="forward-wait", daemon=True)
            self._waiter.start()
            return
        self._begin()

    def _start_when_free(self) -> None:
        while not self._stopping.wait(0.5):
            try:
                self.spool.acquire_forwarding()
            except SpoolBusy:
                continue
            log.warning("event=forwarding_started")
            self._begin()
            return

    def _begin(self) -> None:
        recovered = self.spool.recover()
        if recovered:
            log.warning("event=recovered in_flight=%d", recovered)
        if self.listener is not None:
            self.listener.start()
        for worker in self.workers.values():
            worker.start()

    def notify(self, destinations: tuple[str, ...] | list[str] | None = None, count: int = 1) -> None:
        """``count`` new instances were queued for ``destinations`` (None: just look again, all);
        a group's instances are told at once, so each lane wakes once for all of them."""
        for name, worker in self.workers.items():
            if destinations is None or name in destinations:
                if destinations is not None:
                    self.metrics.received.labels(name).inc(count)
                worker.wake()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._waiter is not None:
            self._waiter.join()
        for worker in self.workers.values():
            worker.stop()
        deadline = time.monotonic() + timeout
        for worker in self.workers.values():
            if worker.ident is not None:
                worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers.values():
            if worker.ident is not None and threading.Thread.is_alive(worker):
                worker.abort()
                worker.join(5.0)
        if self.listener is not None:
            self.listener.stop()
        self.spool.release_forwarding()

    def _on_settled(self) -> None:
        with self._progress:
            self._settled += 1
            self._progress.notify_all()

    def progress(self) -> int:
        """How many batches of outcomes the lanes have recorded so far (for ``wait_progress``)."""
        with self._progress:
            return self._settled

    def wait_progress(self, seen: int, timeout: float) -> int:
        """Wait until a lane records outcomes after ``progress()`` said ``seen``, at most
        ``timeout`` seconds: a one-shot command looks at its rows when they may have changed,
        not on a clock. Returns ``progress()``."""
        with self._progress:
            self._progress.wait_for(lambda: self._settled != seen, timeout)
            return self._settled

    def drain(self, timeout: float, destinations: list[str] | None = None) -> bool:
        """Wait until nothing is pending (for one-shot commands); True if drained. Looks again
        whenever a lane records outcomes, and every 50 ms for changes made elsewhere."""
        deadline = time.monotonic() + timeout
        names = destinations or list(self.workers)
        while True:
            with self._progress:
                seen = self._settled
            if all(self.spool.pending(n) == 0 for n in names):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._progress:
                self._progress.wait_for(lambda seen=seen: self._settled != seen, min(0.05, left))
