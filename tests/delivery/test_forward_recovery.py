"""Fast recovery: a PACS that comes back is sent to within seconds, whatever the backoff
has grown to meanwhile; probes are C-ECHOs, never instances."""

from __future__ import annotations

import time

from gateway.config import RetryPolicy
from gateway.delivery.spool import QUEUED, Spool
from tests.support.forwarding import destination, forwarding, spool_instances, wait_until
from tests.support.peers import StoreSCP, free_port


def test_delivery_resumes_within_seconds_when_the_pacs_comes_back(tmp_path):
    port = free_port()
    spool = Spool(tmp_path / "spool")
    # A patient retry policy (1 min first delay, doubling up to 10 min): the backoff alone would
    # put the next look at the PACS anywhere up to a minute away.
    dest = destination("pacs", port, called_ae="STORESCP", retry=RetryPolicy(initial_delay=60.0))
    pacs = StoreSCP(tmp_path / "storescp", port=port)
    with forwarding(spool, [dest]) as fwd:
        uids = spool_instances(spool, 6, ["pacs"])
        fwd.notify(("pacs",))
        assert wait_until(lambda: fwd.metrics.up["pacs"] is False, 10)
        time.sleep(5)
        rows = spool.rows("pacs")
        assert {r["state"] for r in rows} == {QUEUED}
        assert all(r["attempts"] == 0 for r in rows)  # probed, not sent to
        pacs.start()
        try:
            back = time.monotonic()
            assert wait_until(lambda: spool.pending("pacs") == 0, 5), "not delivered within 5 s of the PACS's return"
            took = time.monotonic() - back
        finally:
            pacs.stop()
    assert len(pacs.received()) == len(uids)
    assert took < 5.0
