"""Forward a few instances with pynetdicom broken the way a future release might break it.

Run as ``python -m tests.support.forward_without_internals BREAK SPOOL_DIR PORT``: before the
gateway is imported, ``BREAK`` changes the real pynetdicom ("version": reports 3.1.0;
"serve_request": ``Association._serve_request`` is gone, as if renamed, which pynetdicom itself
does not need to send C-STOREs; "none": nothing, for comparison), so
``gateway.delivery.pynetdicom_internals`` finds it unlike what it was tested with. Then it
spools an uncompressed CT instance and one stored RLE Lossless (for a peer that takes it only
uncompressed) for a C-STORE SCP at 127.0.0.1:PORT, forwards until the spool is empty, and
prints a JSON line: FAST, why not, the UIDs spooled, what is still pending and how many
C-STOREs went through pynetdicom's ``send_c_store`` (counted by wrapping the real method).
Logging goes to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pynetdicom
from pynetdicom.association import Association


def _break(how: str) -> None:
    if how == "none":
        return
    if how == "version":
        pynetdicom.__version__ = "3.1.0"
    elif how == "serve_request":
        del Association._serve_request
    else:
        raise SystemExit(f"unknown way to break pynetdicom: {how}")


def main(how: str, spool_dir: str, port: str) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    _break(how)
    calls = []
    send_c_store = Association.send_c_store

    def counted(self, *args, **kwargs):
        calls.append(1)
        return send_c_store(self, *args, **kwargs)

    Association.send_c_store = counted
    from pydicom.uid import RLELossless

    from gateway.delivery import pynetdicom_internals
    from gateway.delivery.spool import Spool
    from tests.support.forwarding import destination, forwarding, wait_until
    from tests.support.instances import ct_instance

    spool = Spool(Path(spool_dir))
    plain = ct_instance(0, 64)
    rle = ct_instance(1, 64)
    rle.compress(RLELossless, generate_instance_uid=False)
    uids = [spool.add(ds, ["pacs"]).sop_instance_uid for ds in (plain, rle)]
    started = time.monotonic()
    with forwarding(spool, [destination("pacs", int(port), called_ae="STORESCP", associations=2)]):
        wait_until(lambda: spool.pending("pacs") == 0, 60)
    print(json.dumps({"fast": pynetdicom_internals.FAST, "why": pynetdicom_internals.WHY_NOT_FAST,
                      "uids": uids, "pending": spool.pending("pacs"), "send_c_store": len(calls),
                      "seconds": round(time.monotonic() - started, 2)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
