"""A small built-in Storage SCP: lets a newcomer see instances arrive without owning a PACS.

It accepts every storage SOP class in the uncompressed and common compressed transfer
syntaxes and writes each instance, as received, to ``<directory>/<StudyInstanceUID>/<SOP
Instance UID>.dcm`` (temporary name, fsync, rename) before it answers success.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from gateway import private
from gateway.dicom.uids import is_valid_uid
from gateway.errors import listen_error

log = logging.getLogger("gateway.delivery.archive")

SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian]


def _safe(uid: str) -> str:
    return uid if is_valid_uid(uid) else "invalid-uid"


class Archive:
    def __init__(self, directory: str | Path, ae_title: str = "ARCHIVE", host: str = "127.0.0.1", port: int = 11112):
        self.directory = Path(directory)
        self.ae_title, self.host, self.port = ae_title, host, port
        self.server = None

    def _on_store(self, event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        study = _safe(str(ds.get("StudyInstanceUID", "")))
        sop = _safe(str(ds.get("SOPInstanceUID", "")))
        folder = self.directory / study
        final = folder / f"{sop}.dcm"
        tmp = folder / f".{sop}.{os.getpid()}.tmp"
        try:
            if not folder.is_dir():
                private.make_dir(folder)
            with os.fdopen(private.open_file(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as f:
                ds.save_as(f, enforce_file_format=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except Exception as exc:  # noqa: BLE001 - tell the sender, keep serving
            log.error("event=archive_store_failed sop=%s error=%r", sop, f"{type(exc).__name__}: {exc}")
            return 0xA700
        log.info("event=archived sop=%s path=%s", sop, final)
        return 0x0000

    def start(self, block: bool = False):
        private.make_dir(self.directory)
        ae = AE(ae_title=self.ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_associations = 16
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        try:
            self.server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        except (OSError, OverflowError) as exc:
            raise listen_error("the built-in archive", self.host, self.port, exc) from None
        log.info("event=archive_started ae=%s address=%s:%d directory=%s", self.ae_title, self.host, self.port,
                 self.directory)
        while block:  # until KeyboardInterrupt (the archive command turns SIGTERM into one)
            time.sleep(3600)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None
