"""The daemon: every configured source and destination, run until told to stop.

SIGTERM (and SIGINT) let each source finish the capture in hand, stop taking new ones, stop
the forwarder and exit 0. SIGHUP reloads the configuration; an invalid new one is refused and
the old one kept. Under systemd (``Type=notify``) readiness, ``STATUS=`` lines and watchdog
keep-alives go to ``$NOTIFY_SOCKET``; keep-alives stop if a worker thread has died, so systemd
restarts a gateway that is alive but no longer working.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from gateway.console.preview import thumbnail
from gateway.console.server import ConsoleContext, HttpListener
from gateway.console.snapshot import SERVICE_FILE, Arrival, Arrivals, write_service_state
from gateway.delivery.archive import Archive
from gateway.config import Config, Source, load_config
from gateway.errors import ConfigError
from gateway.delivery.forwarder import Forwarder
from gateway.delivery.metrics import Metrics
from gateway.pipeline import Pipeline
from gateway.service.sdnotify import Notifier
from gateway.service.sources import make_driver
from gateway.delivery.spool import Spool

log = logging.getLogger("gateway.service.daemon")

STATUS_INTERVAL = 10.0
STATE_INTERVAL = 2.0  # how often the state file that ``status`` and the console read is rewritten


class SourceRunner(threading.Thread):
    def __init__(self, source: Source, pipeline: Pipeline, state_dir: Path | None = None):
        super().__init__(name=f"source-{source.name}", daemon=True)
        self.source = source
        self.pipeline = pipeline
        self.stop_event = threading.Event()
        self.driver = make_driver(source, state_dir)

    def run(self) -> None:
        self.driver.start()
        try:
            for capture in self.driver.captures(self.stop_event):
                try:
                    self.pipeline.handle(capture, self.driver, self.source.destinations)
                except Exception:  # noqa: BLE001 - not durable, so not acknowledged
                    log.exception("event=capture_failed source=%s origin=%s", self.source.name, capture.origin)
                    self.driver.defer(capture)
                    self.stop_event.wait(5.0)
        finally:
            self.driver.stop()
            log.info("event=source_stopped source=%s", self.source.name)

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

    # -- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        cfg = self.config
        if self.spool is None or self.spool.directory != Path(cfg.spool_dir):
            if self.spool is not None:
                self.spool.close()
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
            "sources": [{"name": r.source.name, "type": r.source.type,
                         "state": "running" if r.is_alive() else "stopped", "detail": ""} for r in self.sources],
        }

    def _stop_workers(self) -> None:
        for runner in self.sources:
            runner.stop()
        for runner in self.sources:
            runner.join(30)
        if self.forwarder is not None:
            self.forwarder.stop()

    def _healthy(self) -> bool:
        workers = [*self.sources, *(self.forwarder.workers.values() if self.forwarder else [])]
        return all(w.is_alive() for w in workers)

    def _status_line(self) -> str:
        parts = []
        for st in self.spool.status() if self.spool else []:
            parts.append(f"{st.destination}: {st.queued + st.in_flight} waiting, {st.delivered} delivered, {st.dead} dead")
        paused = self.spool.intake_paused if self.spool else None
        if paused:
            parts.insert(0, f"INTAKE PAUSED ({paused})")
        return "; ".join(parts) or "idle"

    def reload(self) -> None:
        self.notifier.reloading()
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("event=reload_refused problem=%r", problem)
            self.notifier.ready(f"reload refused, old configuration kept: {len(exc.problems)} problem(s)")
            return
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
        self._start()
        log.info("event=started config=%s sources=%d destinations=%d", self.config.path, len(self.sources),
                 len(self.config.destinations))
        self.notifier.ready(self._status_line())
        keepalive = self.notifier.watchdog_interval or STATUS_INTERVAL
        last_status = last_keepalive = last_state = 0.0
        while not self.stopping.wait(1.0):
            if time.monotonic() - last_state >= STATE_INTERVAL:
                write_service_state(self.config.state_dir, self._state())
                last_state = time.monotonic()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if time.monotonic() - last_keepalive >= keepalive and self.config.watchdog and self._healthy():
                self.notifier.watchdog()
                last_keepalive = time.monotonic()
            if time.monotonic() - last_status >= STATUS_INTERVAL:
                self.notifier.status(self._status_line())
                last_status = time.monotonic()
        log.info("event=stopping")
        self.notifier.stopping()
        self._stop_workers()
        if self.archive is not None:
            self.archive.stop()
        if self.spool is not None:
            self.spool.close()
        if self.http is not None:
            self.http.stop()
        (Path(self.config.state_dir) / SERVICE_FILE).unlink(missing_ok=True)
        log.info("event=stopped")
        return 0
