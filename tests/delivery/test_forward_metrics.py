"""The Prometheus endpoint: counters per destination and the spool's queue, as scraped."""

from __future__ import annotations

import io
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gateway.capture import Capture, Origin
from gateway.config import RetryPolicy
from gateway.console.server import ConsoleContext, HttpListener
from gateway.delivery.metrics import Metrics
from gateway.delivery.spool import Spool
from gateway.dicom.normalize import SiteRules
from gateway.pipeline import Pipeline
from tests.support.forwarding import destination, forwarding, wait_until
from tests.support.instances import ct_instance
from tests.support.peers import free_port
from tests.support.status_scp import StatusSCP


class _Sink:
    def ack(self, capture, uid):
        pass

    def reject(self, capture, reason):
        raise AssertionError(reason)


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _bytes(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_metrics_endpoint_counts_per_destination(tmp_path):
    instances = [ct_instance(i) for i in range(5)]
    retry_once, wrong = str(instances[0].SOPInstanceUID), str(instances[1].SOPInstanceUID)

    def policy(uid, seen):
        if uid == wrong:
            return 0xA900
        return 0xA700 if uid == retry_once and seen == 0 else 0x0000

    scp = StatusSCP(policy=policy).start()
    metrics, port = Metrics(), free_port()
    listener = HttpListener("127.0.0.1", port, ConsoleContext(metrics=metrics))
    listener.start()
    try:
        spool = Spool(tmp_path / "spool")
        pacs = destination("pacs", scp.port)
        down = destination("down", free_port(), retry=RetryPolicy(0.2, 0.5, 3600))
        with forwarding(spool, [pacs, down], metrics=metrics) as fwd:
            pipeline = Pipeline(spool, SiteRules(), on_spooled=fwd.notify)
            for ds in instances:
                pipeline.handle(Capture(_bytes(ds), Origin("test", "memory")), _Sink(), ("pacs", "down"))
            assert wait_until(lambda: spool.pending("pacs") == 0, 20)
            assert wait_until(lambda: fwd.metrics.up["down"] is False, 10)
            got = _scrape(port)
        sizes = {r["sop_instance_uid"]: r["size"] for r in spool.rows("pacs")}

        def value(name, **labels):
            return got[(name, tuple(sorted(labels.items())))]

        assert value("legacy_gateway_received_total", destination="pacs") == 5
        assert value("legacy_gateway_received_total", destination="down") == 5
        assert value("legacy_gateway_delivered_total", destination="pacs") == 4
        assert value("legacy_gateway_retried_total", destination="pacs") == 1
        assert value("legacy_gateway_dead_lettered_total", destination="pacs") == 1
        # every C-STORE that went out: each instance once, the retried one twice
        assert value("legacy_gateway_bytes_sent_total", destination="pacs") == sum(sizes.values()) + sizes[retry_once]
        assert value("legacy_gateway_association_failures_total", destination="pacs") == 0
        assert value("legacy_gateway_association_failures_total", destination="down") >= 1
        assert value("legacy_gateway_queue_depth", destination="pacs", state="delivered") == 4
        assert value("legacy_gateway_queue_depth", destination="pacs", state="dead") == 1
        assert value("legacy_gateway_queue_depth", destination="down", state="queued") == 5
        assert value("legacy_gateway_oldest_waiting_seconds", destination="down") > 0
        assert value("legacy_gateway_oldest_waiting_seconds", destination="pacs") == 0
        assert value("legacy_gateway_destination_up", destination="pacs") == 1
        assert value("legacy_gateway_destination_up", destination="down") == 0
    finally:
        listener.stop()
        scp.stop()


def test_a_group_counts_each_instance_received(tmp_path):
    """A folder source's group (one commit, one wake of delivery) still counts every instance
    it queued, for each destination that has it to do."""
    from gateway.delivery.forwarder import Forwarder

    spool = Spool(tmp_path / "spool")
    fwd = Forwarder([destination("pacs", free_port()), destination("other", free_port())], spool, "LEGACYGW")
    pipeline = Pipeline(spool, SiteRules(), on_spooled=fwd.notify)
    batch = pipeline.batch(_Sink(), bare=True)
    for index in range(3):
        batch.add(Capture(_bytes(ct_instance(index)), Origin("test", f"slice{index}")), ("pacs",))
    batch.add(Capture(_bytes(ct_instance(9)), Origin("test", "slice9")), ("pacs", "other"))
    batch.commit()
    assert fwd.metrics.received.labels("pacs")._value.get() == 4
    assert fwd.metrics.received.labels("other")._value.get() == 1
