"""Prometheus metrics, in a registry owned by one app (never the process-global default, so
two apps in one process, as in the tests, do not collide).

The metric names below are a contract: `deploy/prometheus/alerts.yml` and dashboards use
them, and `tests/deploy` checks that every name the rules use is exported here.

    globeguard_ingest_requests_total{status}            counter  ingestion API responses
    globeguard_delivery_attempts_total{outcome}         counter  one per delivery attempt
    globeguard_delivery_lag_seconds{subscription}       gauge    age of the oldest pending
                                                                 delivery (0 when none)
    globeguard_delivery_dead{subscription}              gauge    dead deliveries (DLQ depth)
    globeguard_outbox_oldest_undispatched_seconds       gauge    age of the oldest outbox
                                                                 row not yet fanned out
    globeguard_mail_sent_total{kind}                    counter  emails a server accepted
    globeguard_mail_failed_total{kind}                  counter  emails given up on

How the delivery pipeline feeds them:

- Counters are plain prometheus counters on `Metrics`: call
  `metrics.delivery_attempts.labels(outcome="delivered").inc()` where the attempt ends.
- Gauges read from the database cannot be computed inside a prometheus collector (collectors
  are synchronous; the database is async). They are `Snapshot`s: register an async refresher
  with `metrics.on_scrape(fn)`; `GET /metrics` awaits every refresher (each bounded by
  `REFRESH_TIMEOUT_S`) and then renders. A refresher calls `snapshot.replace({...})` with the
  complete current label set, so a deleted subscription's series disappears instead of
  freezing at its last value. A refresher that fails or times out keeps the previous values
  and counts `globeguard_metrics_refresh_failures_total{refresher}`.
- Anything else: `metrics.register_collector(collector)` adds any prometheus `Collector`.

Every process has its own registry. Counters are per process (Prometheus sums them across
targets); database-backed gauges report the same shared value from every process, so rules
aggregate them with `max`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

INGEST_REQUESTS_TOTAL = "globeguard_ingest_requests_total"
DELIVERY_ATTEMPTS_TOTAL = "globeguard_delivery_attempts_total"
DELIVERY_LAG_SECONDS = "globeguard_delivery_lag_seconds"
DELIVERY_DEAD = "globeguard_delivery_dead"
OUTBOX_OLDEST_UNDISPATCHED_SECONDS = "globeguard_outbox_oldest_undispatched_seconds"
REFRESH_FAILURES_TOTAL = "globeguard_metrics_refresh_failures_total"
MAIL_SENT_TOTAL = "globeguard_mail_sent_total"
MAIL_FAILED_TOTAL = "globeguard_mail_failed_total"

# A scrape must answer within Prometheus' default 10 s scrape timeout even when the database
# is slow; a refresher that takes longer is abandoned and its last values are served.
REFRESH_TIMEOUT_S = 3.0

Refresher = Callable[[], Awaitable[None]]


def _counter_base(name: str) -> str:
    # prometheus_client appends `_total` itself; the contract spells the exported name.
    return name.removesuffix("_total")


class Snapshot(Collector):
    """A gauge family whose samples are replaced wholesale by an async refresher."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._samples: dict[tuple[str, ...], float] = {}

    def replace(self, samples: Mapping[tuple[str, ...], float]) -> None:
        """The complete current values, keyed by label values in `labelnames` order."""
        for labels in samples:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
        # One assignment, so a scrape never sees half of an update.
        self._samples = dict(samples)

    def set(self, value: float) -> None:
        """For a family without labels."""
        self.replace({(): value})

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in sorted(self._samples.items()):
            family.add_metric(list(labels), value)
        return [family]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ingest_requests = Counter(
            _counter_base(INGEST_REQUESTS_TOTAL),
            "Ingestion API responses, by HTTP status",
            ["status"],
            registry=self.registry,
        )
        self.delivery_attempts = Counter(
            _counter_base(DELIVERY_ATTEMPTS_TOTAL),
            "Delivery attempts, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.refresh_failures = Counter(
            _counter_base(REFRESH_FAILURES_TOTAL),
            "Scrape-time refreshes of database-backed gauges that failed or timed out",
            ["refresher"],
            registry=self.registry,
        )
        # `kind`: the template (verify_email, password_reset, …).
        self.mail_sent = Counter(
            _counter_base(MAIL_SENT_TOTAL),
            "Emails a mail server accepted, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.mail_failed = Counter(
            _counter_base(MAIL_FAILED_TOTAL),
            "Emails given up on (refused for good, or out of attempts), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.delivery_lag = self.snapshot(
            DELIVERY_LAG_SECONDS,
            "Age of the oldest pending delivery of each subscription (0 when none is pending)",
            ["subscription"],
        )
        self.delivery_dead = self.snapshot(
            DELIVERY_DEAD, "Dead deliveries of each subscription (DLQ depth)", ["subscription"]
        )
        self.outbox_oldest_undispatched = self.snapshot(
            OUTBOX_OLDEST_UNDISPATCHED_SECONDS,
            "Age of the oldest outbox event not yet fanned out (0 when none)",
        )
        self._refreshers: list[tuple[str, Refresher]] = []
        # Concurrent scrapes queue behind one round of refreshes instead of piling queries up.
        self._refreshing = asyncio.Lock()

    def snapshot(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Snapshot:
        """A new database-backed gauge family, registered here."""
        family = Snapshot(name, documentation, labelnames)
        self.registry.register(family)
        return family

    def register_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def on_scrape(self, refresher: Refresher, name: str | None = None) -> None:
        """Await `refresher` before every scrape; it should update Snapshots."""
        label = name or str(getattr(refresher, "__qualname__", "refresher"))
        self._refreshers.append((label, refresher))

    async def refresh(self) -> None:
        async with self._refreshing:
            for name, refresher in self._refreshers:
                await self._run(name, refresher)

    async def _run(self, name: str, refresher: Refresher) -> None:
        try:
            await asyncio.wait_for(refresher(), REFRESH_TIMEOUT_S)
        except Exception:  # a failing refresher must not take the other metrics down with it
            log.exception("metrics refresher %s failed; serving its previous values", name)
            self.refresh_failures.labels(refresher=name).inc()

    async def render(self) -> bytes:
        """The Prometheus text exposition, after refreshing database-backed gauges."""
        await self.refresh()
        return generate_latest(self.registry)
