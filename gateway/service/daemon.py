"""The daemon: every configured source and destination, run until told to stop.

Every source's driver is started before readiness is reported: a source that cannot start
(a folder path that is a file, a spool or folder another run holds) stops the service with one
clear line and exit status 1, and no ``READY=1``. A source that runs but cannot take captures
(a serial adapter unplugged) is degraded: logged, in ``STATUS=`` and the metrics, while the
watchdog is still fed. SIGTERM (and SIGINT) let each source finish the capture in hand, stop taking new ones, stop
the forwarder and exit 0. SIGHUP reloads the configuration; an invalid new one is refused and
the old one kept. Under systemd (``Type=notify``) readiness, ``STATUS=`` lines and watchdog
keep-alives go to ``$NOTIFY_SOCKET``; keep-alives stop if a worker thread has died, so systemd
restarts a gateway that is alive but no longer working.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from gateway import logs
from gateway.config import Config, Source, load_config
from gateway.console.preview import thumbnail
from gateway.console.server import ConsoleContext, HttpListener
from gateway.console.snapshot import SERVICE_FILE, Arrival, Arrivals, write_service_state
from gateway.delivery.archive import Archive
from gateway.delivery.forwarder import Forwarder
from gateway.delivery.metrics import Metrics
from gateway.delivery.spool import Spool
from gateway.errors import ConfigError, GatewayError, StorageError
from gateway.pipeline import GROUP_BYTES, GROUP_COUNT, Batch, Pipeline
from gateway.service.lock import Busy, DirectoryLock
from gateway.service.sdnotify import Notifier
from gateway.service.sources import make_driver

log = logging.getLogger("gateway.service.daemon")

STATUS_INTERVAL = 10.0
STATE_INTERVAL = 2.0  # how often the state file that ``status`` and the console read is rewritten


RETRY_FIRST = 2.0   # after a storage failure, the first wait before the capture is offered again
RETRY_MAX = 120.0   # and the longest: the waits double up to here while storage keeps failing


def retry_delay(failures: int) -> float:
    """The wait after ``failures`` storage failures in a row: exponential, capped."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, failures - 1))


class SourceFailed(GatewayError):
    """A source could not start (a folder path that is a file, a tape path that is a folder)."""


class SourceRunner(threading.Thread):
    """One source's thread: captures through the pipeline, one commit each, or, for a driver
    that ``yields_idle``, one commit per group of what was ready at once (bounded by
    ``GROUP_COUNT`` and ``GROUP_BYTES``); no capture is acknowledged before its commit.

    The driver is started by ``start_driver`` in the service's own thread, before readiness is
    reported, so a source that cannot start stops the service with its reason. A capture that
    could not be stored (``StorageError``, or a driver failing to record its verdict) is offered
    again after a wait that doubles while storage keeps failing; every other outcome was
    already settled by the pipeline as accepted or rejected.
    """

    def __init__(self, source: Source, pipeline: Pipeline, state_dir: Path | None = None):
        super().__init__(name=f"source-{source.name}", daemon=True)
        self.source = source
        self.pipeline = pipeline
        self.stop_event = threading.Event()
        self.driver = make_driver(source, state_dir)
        self.failures = 0  # storage failures in a row
        self._lock: DirectoryLock | None = None

    def start_driver(self) -> None:
        """Start the driver and take the lock on what it must have alone (a watched folder)."""
        try:
            self.driver.start()
            exclusive = getattr(self.driver, "exclusive_path", None)
            if exclusive is not None:
                self._lock = DirectoryLock(exclusive, "folder").acquire()
        except Exception as exc:  # noqa: BLE001 - any reason is reported the same way
            self.driver.stop()
            raise SourceFailed(f"source {self.source.name!r} cannot start: {exc}") from exc

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def degraded(self) -> str | None:
        """Why the source runs without being able to take captures (None: it can)."""
        health = getattr(self.driver, "degraded", None)
        return health() if callable(health) else None

    def run(self) -> None:
        grouped = bool(getattr(self.driver, "yields_idle", False))
        batch = self.pipeline.batch(self.driver, bare=grouped)  # a group holds no capture's bytes
        try:
            for capture in self.driver.captures(self.stop_event):
                if capture is None:  # nothing more ready now: what waits becomes durable
                    self._commit(batch)
                    continue
                self._stage(batch, capture)
                del capture  # the bytes: nothing holds them while waiting for the next one
                if not grouped or len(batch) >= GROUP_COUNT or batch.nbytes >= GROUP_BYTES:
                    self._commit(batch)
        except Exception:  # noqa: BLE001 - logged once; the dead thread stops the watchdog keep-alives
            log.exception("event=source_failed source=%s", self.source.name)
        finally:
            try:
                self._commit(batch)  # the generator ended or stopped: nothing staged is left waiting
            finally:
                self.driver.stop()
                log.info("event=source_stopped source=%s", self.source.name)

    def _stage(self, batch: Batch, capture) -> None:
        """Reject or stage one capture; one that cannot be staged is deferred, after what the
        batch holds is committed (it need not wait for the retry delay)."""
        try:
            batch.add(capture, self.source.destinations)
        except Exception as exc:  # noqa: BLE001 - not durable, so not acknowledged
            self._commit(batch)
            self._failed([capture], exc)
        else:
            if not len(batch):
                self.failures = 0  # a verdict was given (rejected): storage is not failing

    def _commit(self, batch: Batch) -> None:
        """Make the batch durable and ack each; on failure defer every capture of it."""
        if not len(batch):
            return
        waiting = batch.captures
        try:
            done = batch.commit()
        except Exception as exc:  # noqa: BLE001 - not durable, so none acknowledged
            self._failed(waiting, exc)
            return
        if done.unacked:
            self._failed([c for c, _ in done.unacked], done.unacked[0][1])
        else:
            self.failures = 0

    def _failed(self, captures: list, exc: Exception) -> None:
        """Captures not made durable (or not acknowledged): the driver keeps each and offers it
        again after a wait that doubles while storage keeps failing."""
        self.failures += 1
        delay = retry_delay(self.failures)
        where = captures[0].origin if len(captures) == 1 else f"{captures[0].origin} and {len(captures) - 1} more"
        if isinstance(exc, StorageError):
            log.error("event=capture_deferred source=%s origin=%s failures=%d retry_in=%.0fs error=%r",
                      self.source.name, where, self.failures, delay, str(exc))
        else:
            log.error("event=capture_deferred source=%s origin=%s failures=%d retry_in=%.0fs",
                      self.source.name, where, self.failures, delay, exc_info=exc)
        defer = getattr(self.driver, "defer", None)
        for capture in captures:
            if defer:
                defer(capture)
        self.stop_event.wait(delay)

    def stop(self) -> None:
        self.stop_event.set()


class Service:
    def __init__(self, config: Config, notifier: Notifier | None = None):
        self.config = config
        self.notifier = notifier or Notifier()
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.spool: Spool | None = None
        self.forwarder: Forwarder | None = None
        self.archive: Archive | None = None
        self.metrics = Metrics()  # one per process: counters survive a reload
        self.sources: list[SourceRunner] = []
        self.arrivals = Arrivals()  # survive a reload too
        self.http: HttpListener | None = None
        self.started = time.time()
        self._spool_lock = DirectoryLock(config.spool_dir, "spool")  # taken by _start

    # -- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        """Open the spool, start delivery and every source; raises ``SourceFailed`` (with the
        reason, every source stopped again) when one cannot start or the spool is in use."""
        cfg = self.config
        if self.spool is None or self.spool.directory != Path(cfg.spool_dir):
            if self.spool is not None:
                self.spool.close()
                self._spool_lock.release()
            Path(cfg.spool_dir).mkdir(parents=True, exist_ok=True)
            try:
                self._spool_lock = DirectoryLock(cfg.spool_dir, "spool").acquire()
            except Busy as exc:
                raise SourceFailed(str(exc)) from None
            self.spool = Spool(cfg.spool_dir, durable=cfg.durable, floor=cfg.floor())
        if cfg.archive.enabled and self.archive is None:
            a = cfg.archive
            self.archive = Archive(a.directory, a.ae_title, a.host, a.port)
            self.archive.start()
        self._serve_http()
        self.forwarder = Forwarder(cfg.destinations, self.spool, cfg.ae_title, commitment=cfg.commitment,
                                   metrics=self.metrics)
        self.forwarder.start()
        pipeline = Pipeline(self.spool, cfg.site, on_spooled=self.forwarder.notify,
                            on_arrival=self._arrived if cfg.console.enabled else None, routing=cfg.routing)
        self.sources = [SourceRunner(s, pipeline, cfg.state_dir) for s in cfg.sources if s.enabled]
        started: list[SourceRunner] = []
        try:
            for runner in self.sources:
                runner.start_driver()
                started.append(runner)
        except SourceFailed:
            for runner in started:
                runner.driver.stop()
                runner.release()
            self.sources = []
            raise
        for runner in self.sources:
            runner.start()

    def _serve_http(self) -> None:
        """The metrics and console listener: (re)started when its address changed, and told the
        current configuration, spool, metrics and token."""
        cfg = self.config
        wanted = (cfg.metrics.host, cfg.metrics.port) if cfg.metrics.enabled or cfg.console.enabled else None
        if self.http is not None and (self.http.host, self.http.port) != wanted:
            self.http.stop()
            self.http = None
        if wanted is None:
            return
        context = ConsoleContext(metrics=self.metrics if cfg.metrics.enabled else None, console=cfg.console.enabled,
                                 token=cfg.console.token(), config=cfg, spool=self.spool, arrivals=self.arrivals,
                                 service_state=self._state, on_requeued=self._wake_forwarder)
        if self.http is None:
            self.http = HttpListener(*wanted, context)
            self.http.start()
            if cfg.console.enabled:
                log.info("event=console_ready url=%s", self.http.url)
        else:
            vars(self.http.context).update(vars(context))  # the running handlers see the new one

    def _wake_forwarder(self) -> None:
        if self.forwarder is not None:
            self.forwarder.notify()

    def _arrived(self, result, capture) -> None:
        ds = result.dataset
        show_name = self.config.console.show_patient_names
        self.arrivals.add(Arrival(result.sop_instance_uid or "", result.study_uid or "", result.series_uid or "",
                                  str(ds.get("Modality", "")), result.format or "", capture.origin.source,
                                  capture.origin.location, capture.origin.received, result.queued,
                                  str(ds.get("PatientName", "")) if show_name else None),
                          thumbnail(ds))

    def _state(self) -> dict:
        """What this running service knows that the spool does not (for ``status`` and the console)."""
        workers = self.forwarder.workers if self.forwarder else {}
        return {
            "pid": os.getpid(), "started": self.started, "config": str(self.config.path),
            "destinations": {name: {"up": w.health.up, "reason": w.health.reason} for name, w in workers.items()},
            "sources": [self._source_state(r) for r in self.sources],
        }

    @staticmethod
    def _source_state(runner: "SourceRunner") -> dict:
        why = runner.degraded() if runner.is_alive() else None
        state = "stopped" if not runner.is_alive() else "degraded" if why else "running"
        return {"name": runner.source.name, "type": runner.source.type, "state": state, "detail": why or ""}

    def _stop_workers(self) -> None:
        for runner in self.sources:
            runner.stop()
        for runner in self.sources:
            runner.join(30)
            runner.release()
        if self.forwarder is not None:
            self.forwarder.stop()

    def _healthy(self) -> bool:
        """Every worker thread alive (a degraded source is alive: it says why in the status)."""
        workers = [*self.sources, *(self.forwarder.workers.values() if self.forwarder else [])]
        return all(w.is_alive() for w in workers)

    def _degraded(self) -> list[str]:
        return [f"source {r.source.name} degraded: {why}" for r in self.sources if (why := r.degraded())]

    def _status_line(self) -> str:
        parts = self._degraded()
        parts += [f"source {r.source.name} stopped" for r in self.sources if not r.is_alive()]
        for st in self.spool.status() if self.spool else []:
            parts.append(f"{st.destination}: {st.queued + st.in_flight} waiting, {st.delivered} delivered, "
                         f"{st.dead} dead")
        paused = self.spool.intake_paused if self.spool else None
        if paused:
            parts.insert(0, f"INTAKE PAUSED ({paused})")
        return "; ".join(parts) or "idle"

    def _log_degraded(self, previous: list[str]) -> list[str]:
        """Log each change of a source's degraded state once (not every status tick), and
        keep the metric in step."""
        for runner in self.sources:
            self.metrics.source_degraded.labels(runner.source.name).set(1 if runner.degraded() else 0)
        now = self._degraded()
        for line in now:
            if line not in previous:
                log.warning("event=source_degraded %s", line)
        for line in previous:
            if line not in now:
                log.info("event=source_recovered was=%r", line)
        return now

    def reload(self) -> None:
        self.notifier.reloading()
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("event=reload_refused problem=%r", problem)
            self.notifier.ready(f"reload refused, old configuration kept: {len(exc.problems)} problem(s)")
            return
        logs.set_level(new.log_level)
        log.info("event=reloading config=%s", self.config.path)
        self._stop_workers()
        if self.archive is not None and new.archive != self.config.archive:
            self.archive.stop()
            self.archive = None
        self.config = new
        self._start()
        self.notifier.ready("configuration reloaded")
        log.info("event=reloaded sources=%d destinations=%d", len(self.sources), len(new.destinations))

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        try:
            self._start()
            dead = [r.source.name for r in self.sources if not r.is_alive()]
            if dead:  # never READY=1 with a source thread already dead
                raise SourceFailed(f"source {', '.join(dead)} stopped at start (see the log)")
        except SourceFailed as exc:
            return self._fail(str(exc))
        log.info("event=started config=%s sources=%d destinations=%d", self.config.path, len(self.sources),
                 len(self.config.destinations))
        self.notifier.ready(self._status_line())
        keepalive = self.notifier.watchdog_interval or STATUS_INTERVAL
        last_status = last_keepalive = last_state = 0.0
        degraded = self._log_degraded([])
        while not self.stopping.wait(1.0):
            if time.monotonic() - last_state >= STATE_INTERVAL:
                write_service_state(self.config.state_dir, self._state())
                last_state = time.monotonic()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                try:
                    self.reload()
                except SourceFailed as exc:
                    return self._fail(str(exc))
            if time.monotonic() - last_keepalive >= keepalive and self.config.watchdog and self._healthy():
                self.notifier.watchdog()
                last_keepalive = time.monotonic()
            if time.monotonic() - last_status >= STATUS_INTERVAL:
                degraded = self._log_degraded(degraded)
                self.notifier.status(self._status_line())
                last_status = time.monotonic()
        log.info("event=stopping")
        self.notifier.stopping()
        self._shutdown()
        log.info("event=stopped")
        return 0

    def _fail(self, reason: str) -> int:
        """Cannot run as configured: one clear line (log and stderr), everything stopped, exit 2
        (nothing was done: the configuration or the environment cannot work)."""
        log.error("event=start_failed reason=%r", reason)
        print(f"legacy-gateway: cannot start: {reason}", file=sys.stderr)
        self.notifier.status(f"failed: {reason}")
        self._shutdown()
        return 2

    def _shutdown(self) -> None:
        self._stop_workers()
        if self.archive is not None:
            self.archive.stop()
        if self.spool is not None:
            self.spool.close()
        self._spool_lock.release()
        if self.http is not None:
            self.http.stop()
        (Path(self.config.state_dir) / SERVICE_FILE).unlink(missing_ok=True)
