"""Read a tape (a drive such as /dev/nst0, or a SIMH, AWS or raw image) once, carefully.

Each tape file becomes one capture; what decodes is made durable in the spool and forwarded
(``--to``, default every enabled destination), or only decoded (``--dry-run``). Captures are
staged in groups that share one spool commit (``GROUP_COUNT`` files or ``GROUP_BYTES``, the end
of the tape, or before the read stops for any reason), so a tape of many small images does not
pay one fsync'd commit per image. A journal of positions in the state directory records every
tape file's outcome, in tape order, once it is settled (its group durable), so ``--resume``
continues after a crash, a Ctrl-C or a full disk without passing over a file that was staged
but not committed, and an ingest of the same tape twice sends nothing twice (UIDs are
deterministic and the spool remembers deliveries).
``--extract DIR`` also keeps every raw tape file (with a manifest of positions and SHA-256).
At the end: what was found per study and series (never patient data) and every failure with
its position on the tape.

Exit status: 0 all read and delivered; 1 some tape files failed (listed); 2 the tape or the
configuration could not be used; 3 read, but not everything delivered yet (it stays spooled
for the service); 130 interrupted (resume with --resume).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from gateway import formats, logs, private
from gateway.commands.tape_report import TapeReport
from gateway.config import Config, load_config
from gateway.dicom.normalize import SiteRules
from gateway.errors import ConfigError, DecodeError, UsageError

log = logging.getLogger("gateway.ingest_tape")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="tape drive (/dev/nst0) or tape image file")
    parser.add_argument("-c", "--config", default="etc/legacy-gateway.yaml", help="configuration file")
    parser.add_argument("--format", default="auto", choices=("auto", "device", "simh", "aws", "raw"),
                        help="what SOURCE is (default: a character device is a drive, an image is recognised)")
    parser.add_argument("--block-size", type=int, help="record size of a raw image; fixed-block mode on a drive")
    parser.add_argument("--to", action="append", metavar="DEST",
                        help="destination name from the configuration (repeatable; default: every enabled one)")
    parser.add_argument("--dry-run", action="store_true", help="only read and decode: no spool, journal or network")
    parser.add_argument("--extract", type=Path, metavar="DIR", help="also write every raw tape file into DIR")
    parser.add_argument("--resume", action="store_true", help="continue after the last tape file the journal settled")
    parser.add_argument("--retry-damaged", action="store_true", help="with --resume: read damaged tape files again")
    parser.add_argument("--retries", type=int, default=3, help="re-reads of a block after a read error (default 3)")
    parser.add_argument("--on-error", choices=("skip", "stop"), default="skip",
                        help="after a bad record: report it and go on (skip, default) or stop")
    parser.add_argument("--past-eot", action="store_true", help="read on after two filemarks (old data)")
    parser.add_argument("--max-file-size", type=int, default=64 << 20, metavar="BYTES",
                        help="largest tape file taken as one image (larger ones are only extracted)")
    parser.add_argument("--name", default="tape", help="source name recorded in logs and instances (default tape)")
    parser.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                        help="how long to wait for the forwarder to deliver at the end (default 600)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace) -> Config | None:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if args.dry_run and not Path(args.config).exists():
            return None  # a dry run needs no configuration
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise SystemExit(2) from None
    private.configure(config.file_group)
    return config


def run(args: argparse.Namespace) -> int:
    from drivers.tape.medium import open_tape
    from drivers.tape.records import ErrorPolicy, TapeError

    config = _config(args)
    logs.setup(config.log_level if config else "WARNING")
    rules = config.site if config else SiteRules()
    try:
        policy = ErrorPolicy(retries=args.retries, on_error=args.on_error, past_eot=args.past_eot)
        reader = open_tape(args.source, args.format, block_size=args.block_size, policy=policy)
    except (TapeError, OSError, ValueError) as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return 2
    with reader:
        try:
            return _Ingest(args, config, rules, reader).run()
        except TapeError as exc:
            print(f"{args.source}: {exc}", file=sys.stderr)
            return 2


class _Ingest:
    def __init__(self, args: argparse.Namespace, config: Config | None, rules: SiteRules, reader):
        self.args, self.config, self.rules, self.reader = args, config, rules, reader
        self.report = TapeReport()
        self.stop = threading.Event()
        self.bar = None
        self.series = "-"
        self.spool = self.forwarder = self.pipeline = None
        self.destinations: tuple[str, ...] = ()

    # -- set-up ---------------------------------------------------------------------------

    def _journal(self, fingerprint: str):
        from drivers.tape.journal import TapeJournal

        if self.args.dry_run:
            return None
        state = self.config.state_dir
        previous = TapeJournal.previous(state, fingerprint)
        journal = TapeJournal.open(state, fingerprint, self.args.source, self.reader.kind, self.args.resume)
        if previous and not self.args.resume:
            self.report.notes.append("this tape was read before (its journal is kept beside the new one); "
                                     "UIDs are deterministic, so nothing already delivered is sent again")
        return journal

    def _delivery(self) -> None:
        from gateway.delivery.forwarder import Forwarder
        from gateway.delivery.spool import Spool
        from gateway.pipeline import Pipeline

        cfg = self.config
        enabled = [d for d in cfg.destinations if d.enabled]
        names = self.args.to or [d.name for d in enabled]
        chosen = []
        for name in names:
            try:
                chosen.append(cfg.destination(name))
            except KeyError as exc:
                raise _Usage(str(exc.args[0])) from None
        self.destinations = tuple(d.name for d in chosen)
        self.spool = Spool(cfg.spool_dir, durable=cfg.durable, floor=cfg.floor())
        self.forwarder = Forwarder(chosen, self.spool, cfg.ae_title)
        self.forwarder.start()
        # coercions always; routes only when --to does not choose the destinations itself
        routing = cfg.routing if not self.args.to else cfg.routing.coercions_only()
        self.pipeline = Pipeline(self.spool, self.rules, on_spooled=self.forwarder.notify, routing=routing)

    # -- the read -------------------------------------------------------------------------

    def run(self) -> int:
        from drivers.tape.session import TapeSession

        args = self.args
        if not args.dry_run and self.config is None:
            print("a configuration is needed to spool and forward (or use --dry-run)", file=sys.stderr)
            return 2
        try:
            if not args.dry_run:
                self._delivery()
        except _Usage as exc:
            print(exc, file=sys.stderr)
            return 2
        if args.extract is not None:
            _check_writable(args.extract)
        fingerprint = self.reader.fingerprint()
        session = TapeSession(self.reader, args.name, journal=self._journal(fingerprint), fingerprint=fingerprint,
                              resume=args.resume, retry_damaged=args.retry_damaged, extract_dir=args.extract,
                              max_bytes=args.max_file_size, stop=self.stop, on_outcome=self._outcome,
                              reoffer=False)  # a storage failure stops the read: --resume reads it again
        previous = signal.signal(signal.SIGINT, self._interrupt)
        self.bar = _progress(self.reader, args.no_progress)
        try:
            with _logs_above(self.bar):
                self._read(session)
        except Exception as exc:  # noqa: BLE001 - the spool failed: nothing unsafe was journaled
            log.exception("event=ingest_failed medium=%s", args.source)
            print(f"\nstopped: {type(exc).__name__}: {exc}\nThe journal holds every settled tape file; "
                  "run again with --resume.", file=sys.stderr)
            self._finish_delivery(wait=False)
            return 1
        finally:
            signal.signal(signal.SIGINT, previous)
            self.bar.close()
        return self._conclude(session)

    def _interrupt(self, *_: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop at once (the journal is still consistent)
        self.stop.set()
        print("\ninterrupt: stopping after the current record (Ctrl-C again to stop at once)", file=sys.stderr)

    def _read(self, session) -> None:
        """Stage each capture into a group that commits at ``GROUP_COUNT`` files or
        ``GROUP_BYTES`` and whenever the session yields None (the end of the tape, a read that
        stopped, Ctrl-C); the session journals each tape file once its group is durable. Any
        other stop (a tape error, a capture that could not be staged) commits what is staged
        first; a second Ctrl-C drops it instead (stop at once: it is read again on resume)."""
        from gateway.pipeline import GROUP_BYTES, GROUP_COUNT

        batch = None
        if not self.args.dry_run:
            batch = self.pipeline.batch(session, keep_datasets=True, bare=True, headers_only=True)
        try:
            for capture in session.captures():
                if capture is None:
                    self._commit(session, batch)
                    continue
                self._handle(session, batch, capture)
                del capture  # its bytes: nothing holds them while the group waits
                if batch is not None and (len(batch) >= GROUP_COUNT or batch.nbytes >= GROUP_BYTES):
                    self._commit(session, batch)
        except KeyboardInterrupt:
            if batch is not None:
                batch.discard()
            raise
        except BaseException:
            with contextlib.suppress(Exception):  # the first failure is the one to report
                self._commit(session, batch)
            raise

    def _commit(self, session, batch) -> None:
        """Make the group durable, journal its tape files (one journal write; rejections and
        labels between them too), then report its instances. Raises when the group is not
        durable, or not all of it journaled."""
        if batch is None or not len(batch):
            return
        done = batch.commit()
        session.journal_settled()
        for capture, result in done.results:
            if result.dataset is not None:
                self._found(capture, result.dataset, result.format or "")
        if done.unacked:
            raise done.unacked[0][1]

    def _handle(self, session, batch, capture) -> None:
        if formats.identify(capture.data) is None:
            leading = capture.origin.details.get("leading_file")
            why = ("not an image: the first data file of the tape (GE tapes start with a header file)"
                   if leading else "not recognised as an image (unknown format)")
            session.reject(capture, why)
            return
        if self.args.dry_run:
            from gateway.pipeline import convert

            try:
                ds, fmt = convert(capture, self.rules, self.config.routing if self.config else None)
            except DecodeError as exc:
                session.reject(capture, str(exc))
                return
            self._found(capture, ds, fmt)
            session.ack(capture, str(ds.SOPInstanceUID))
            return
        batch.add(capture, self.destinations)  # a rejection is told to the session; raises if not staged

    def _found(self, capture, ds, fmt: str) -> None:
        s = self.report.instance(capture.origin.details["tape_file"], ds, fmt)
        self.series = f"{s.modality} #{s.series_number or '?'} {s.date or ''}".strip()

    def _outcome(self, outcome) -> None:
        tf, status, report = outcome.file, outcome.status, self.report
        report.files += 1
        where = _where(tf)
        if status == "label":
            report.labels += 1
        elif status == "damaged":
            report.failure(tf.number, where, "damaged (not sent)", outcome.reason or "bad records")
        elif status == "oversize":
            report.failure(tf.number, where, "too large for one image", outcome.reason or "")
        elif status == "rejected":
            reason = outcome.reason or ""
            if reason.startswith("not an image: the first data file"):
                report.notes.append(f"{where}: {reason}")
            else:
                report.failure(tf.number, where, "rejected" if "unknown format" not in reason else "not an image",
                               reason)
        if self.bar is not None:
            self.bar.n = self.reader.position
            self.bar.set_postfix_str(f"files {report.files} images {report.images} series {self.series}",
                                     refresh=False)
            self.bar.refresh()

    # -- the end --------------------------------------------------------------------------

    def _finish_delivery(self, wait: bool = True) -> bool:
        if self.forwarder is None:
            return True
        delivered = True
        if wait:
            try:
                delivered = self.forwarder.drain(self.args.wait, list(self.destinations))
            except KeyboardInterrupt:
                delivered = False
        self.forwarder.stop()
        return delivered

    def _conclude(self, session) -> int:
        s, report = session.summary, self.report
        if s.skipped_before or s.resumed_at:
            report.notes.append(f"resumed at tape file {s.resumed_at}; {s.skipped_before} tape file(s) after it "
                                "were already settled")
        if s.volume:
            report.notes.append(f"volume serial (VOL1): {s.volume}")
        if s.beyond_eot:
            report.notes.append(f"{s.beyond_eot[1]} bytes after the logical end of tape (byte offset "
                                f"{s.beyond_eot[0]}) were not read; --past-eot reads them")
        if s.end_reason and not s.interrupted:
            end = session.files.end if session.files else None
            where = end.where(self.reader.unit) if end is not None else "end"
            report.failure(end.file if end is not None else None, where, "read stopped", s.end_reason)
        delivered = True
        if not self.args.dry_run:
            if s.interrupted:
                self._finish_delivery(wait=False)
            else:
                print("waiting for the forwarder to deliver...", file=sys.stderr)
                delivered = self._finish_delivery()
                report.notes.extend(self._delivery_notes(delivered))
        report.render(sys.stdout)
        if s.interrupted:
            print(f"\nInterrupted. The journal is consistent; continue with: legacy-gateway ingest-tape "
                  f"{self.args.source} --resume", file=sys.stdout)
            return 130
        if report.failures:
            return 1
        return 0 if delivered else 3

    def _delivery_notes(self, delivered: bool) -> list[str]:
        notes = []
        for st in self.spool.status():
            if st.destination in self.destinations:
                notes.append(f"{st.destination}: {st.delivered} delivered, {st.queued + st.in_flight} waiting, "
                             f"{st.dead} dead-lettered" + (f" (last error: {st.last_error})" if st.last_error else ""))
        if not delivered:
            notes.append("not everything is delivered yet: it stays in the spool; the service "
                         "(legacy-gateway run) or another ingest delivers it")
        self.spool.close()
        return notes


class _Usage(Exception):
    pass


def _check_writable(folder: Path) -> None:
    """Before the first record: a folder that cannot take the extracted files is the user's to fix,
    not a failure half-way through the tape."""
    folder.mkdir(parents=True, exist_ok=True)  # an OSError here is reported by the command line
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--extract {folder}: this user cannot write there")


def _where(tf) -> str:
    parts = [f"tape file {tf.number}"]
    if tf.offset is not None:
        parts.append(f"byte offset {tf.offset}")
    if tf.records:
        parts.append(f"records 0-{tf.records - 1}")
    return ", ".join(parts)


def _logs_above(bar):
    """While the bar is drawn, log lines are written above it (tqdm's own redirection, which
    keeps our formatter), so a line and the bar never print over each other."""
    if bar.disable:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()


def _progress(reader, disabled: bool):
    from tqdm import tqdm

    return tqdm(total=reader.size, unit="B", unit_scale=True, unit_divisor=1024, desc=Path(reader.path).name,
                disable=disabled or not sys.stderr.isatty(), file=sys.stderr, dynamic_ncols=True)
