"""The metrics registry: per-app, snapshot gauges fed at scrape time, failures contained."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from globeguard.observability import metrics as module
from globeguard.observability.metrics import Metrics


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


async def test_two_apps_do_not_share_or_collide():
    first, second = Metrics(), Metrics()  # the global registry would refuse the second
    first.ingest_requests.labels(status="200").inc()
    key = ("globeguard_ingest_requests_total", (("status", "200"),))
    assert samples(await first.render())[key] == 1
    assert key not in samples(await second.render())


async def test_a_refresher_runs_before_each_scrape_and_replaces_the_whole_set():
    metrics = Metrics()
    rounds = iter(
        [{("crm",): 12.0, ("mail",): 0.0}, {("mail",): 3.0}]  # "crm" was deleted
    )

    async def refresh() -> None:
        metrics.delivery_lag.replace(next(rounds))

    metrics.on_scrape(refresh)
    lag = "globeguard_delivery_lag_seconds"
    first = samples(await metrics.render())
    assert first[(lag, (("subscription", "crm"),))] == 12.0
    second = samples(await metrics.render())
    assert (lag, (("subscription", "crm"),)) not in second
    assert second[(lag, (("subscription", "mail"),))] == 3.0


async def test_a_failing_refresher_keeps_old_values_and_is_counted():
    metrics = Metrics()
    metrics.outbox_oldest_undispatched.set(7.0)

    async def broken() -> None:
        raise RuntimeError("database down")

    async def fine() -> None:
        metrics.delivery_dead.replace({("crm",): 2.0})

    metrics.on_scrape(broken, name="outbox")
    metrics.on_scrape(fine)
    scraped = samples(await metrics.render())
    assert scraped[("globeguard_outbox_oldest_undispatched_seconds", ())] == 7.0
    assert scraped[("globeguard_delivery_dead", (("subscription", "crm"),))] == 2.0
    failures = ("globeguard_metrics_refresh_failures_total", (("refresher", "outbox"),))
    assert scraped[failures] == 1


async def test_a_hanging_refresher_is_abandoned(monkeypatch):
    monkeypatch.setattr(module, "REFRESH_TIMEOUT_S", 0.01)
    metrics = Metrics()
    never = asyncio.Event()
    metrics.on_scrape(never.wait, name="stuck")
    scraped = samples(await metrics.render())
    assert scraped[("globeguard_metrics_refresh_failures_total", (("refresher", "stuck"),))] == 1


def test_snapshot_labels_must_match():
    metrics = Metrics()
    with pytest.raises(ValueError, match="subscription"):
        metrics.delivery_dead.replace({("crm", "extra"): 1.0})


async def test_extra_collectors_and_snapshots_can_be_registered():
    metrics = Metrics()
    extra = Counter("globeguard_things", "Things", registry=None)
    extra.inc(3)
    metrics.register_collector(extra)
    depth = metrics.snapshot("globeguard_queue_depth", "Depth", ["queue"])
    depth.replace({("a",): 4.0})
    scraped = samples(await metrics.render())
    assert scraped[("globeguard_things_total", ())] == 3
    assert scraped[("globeguard_queue_depth", (("queue", "a"),))] == 4.0
    with pytest.raises(ValueError, match="Duplicated"):
        metrics.snapshot("globeguard_queue_depth", "Depth again")
