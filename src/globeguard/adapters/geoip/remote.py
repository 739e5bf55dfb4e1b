"""An IPinfo-style batch provider behind the GeoLocator port (optional, off by default).

The port is synchronous and must answer in microseconds on the sign-in path, so the remote
provider never sits on it: `locate` answers from a per-address cache of remote results and
falls back to the local database for anything not fetched yet. Bulk paths (the Auth0 sync)
call `prefetch` with a batch's addresses first, outside any transaction: the addresses not
cached are sent in requests of at most 1000 (the provider's batch limit), several at once.
Private, reserved and invalid addresses are never sent. The HTTP client wiring.py hands in
connects only to addresses the SSRF guard approved for the provider's host (a private one
only with GLOBEGUARD_GEOIP__REMOTE_ALLOW_PRIVATE); a refused or failing provider is logged
and the local database answers.

Wire format (IPinfo's `POST /batch`): a JSON array of addresses in, an object keyed by
address out, each `{"ip", "city", "region", "country", "loc": "lat,lon", "org": "AS… name",
"timezone"}` or `{"ip", "bogon": true}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

import httpx

from globeguard.adapters.geoip.port import (
    GeoLocator,
    GeoReason,
    GeoResult,
    classify_ip,
    normalise_ip,
)

log = logging.getLogger(__name__)
# IPinfo's documented maximum per batch request.
MAX_BATCH = 1000


@runtime_checkable
class Prefetching(Protocol):
    """A locator that can be warmed with a batch of addresses before a bulk write."""

    async def prefetch(self, ips: Iterable[str]) -> int: ...


def parse_result(ip: str, data: Any, local: GeoResult) -> GeoResult | None:
    """A remote answer as a GeoResult, or None when it says nothing usable. Geoname ids and
    the accuracy radius come only from the local database, and only when it agrees on the
    city (the analytics group places by geoname id)."""
    if not isinstance(data, dict) or data.get("bogon"):
        return None
    coordinates = _coordinates(data.get("loc"))
    if coordinates is None:
        return None
    city, country = data.get("city") or None, data.get("country") or None
    same_city = local.located and local.city_name == city and local.country_iso == country
    asn, as_org = _asn(data.get("org"))
    base = local if same_city else GeoResult(ip=ip, located=True)
    return replace(
        base,
        ip=ip,
        located=True,
        reason=None,
        latitude=coordinates[0],
        longitude=coordinates[1],
        country_iso=country,
        subdivision_name=data.get("region") or None,
        city_name=city,
        time_zone=data.get("timezone") or base.time_zone,
        asn=asn or base.asn,
        as_org=as_org or base.as_org,
    )


def _coordinates(loc: Any) -> tuple[float, float] | None:
    if not isinstance(loc, str) or "," not in loc:
        return None
    try:
        lat, lon = (float(part) for part in loc.split(",", 1))
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat, lon) == (0.0, 0.0):
        return None
    return lat, lon


def _asn(org: Any) -> tuple[int | None, str | None]:
    if not isinstance(org, str) or not org.startswith("AS"):
        return None, None
    number, _, name = org[2:].partition(" ")
    return (int(number), name or None) if number.isdigit() else (None, None)


def batches(ips: list[str], size: int = MAX_BATCH) -> list[list[str]]:
    return [ips[i : i + size] for i in range(0, len(ips), size)]


class RemoteBatchLocator:
    """GeoLocator: remote results from the cache, the local database otherwise."""

    def __init__(
        self,
        local: GeoLocator,
        http: httpx.AsyncClient,
        url: str,
        token: str | None,
        *,
        concurrency: int = 4,
        cache_size: int = 100_000,
        ttl_s: float = 86_400.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.local = local
        self.http = http
        self.url = url.rstrip("/")
        self.token = token
        self.limit = asyncio.Semaphore(concurrency)
        self.cache_size = cache_size
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._cache: OrderedDict[str, tuple[float, GeoResult | None]] = OrderedDict()
        self.requests = 0

    def _cached(self, ip: str) -> tuple[bool, GeoResult | None]:
        found = self._cache.get(ip)
        if found is None or self.monotonic() >= found[0]:
            return False, None
        self._cache.move_to_end(ip)
        return True, found[1]

    def _remember(self, ip: str, result: GeoResult | None) -> None:
        self._cache[ip] = (self.monotonic() + self.ttl_s, result)
        self._cache.move_to_end(ip)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def locate(self, ip: str) -> GeoResult:
        local = self.local.locate(ip)
        if local.reason in (
            GeoReason.INVALID,
            GeoReason.LOOPBACK,
            GeoReason.PRIVATE,
            GeoReason.RESERVED,
        ):
            return local
        hit, remote = self._cached(local.ip)
        return remote if hit and remote is not None else local

    def locate_many(self, ips: Iterable[str]) -> dict[str, GeoResult]:
        return {ip: self.locate(ip) for ip in dict.fromkeys(ips)}

    def describe(self) -> dict[str, Any]:
        return {**self.local.describe(), "remote": self.url, "remote_cached": len(self._cache)}

    async def prefetch(self, ips: Iterable[str]) -> int:
        """Fetch the public addresses not cached yet; returns how many were asked for. A
        failed request is logged and its addresses stay on the local database."""
        wanted = []
        for ip in dict.fromkeys(ips):
            normalised = normalise_ip(ip)
            if normalised is None or classify_ip(normalised) is not None:
                continue
            if not self._cached(normalised)[0]:
                wanted.append(normalised)
        await asyncio.gather(*(self._fetch(batch) for batch in batches(wanted)))
        return len(wanted)

    async def _fetch(self, batch: list[str]) -> None:
        params = {"token": self.token} if self.token else None
        async with self.limit:
            self.requests += 1
            try:
                response = await self.http.post(f"{self.url}/batch", json=batch, params=params)
                response.raise_for_status()
                answers = response.json()
            except (httpx.HTTPError, ValueError) as exc:  # the guard's refusal is a ValueError
                log.warning(
                    "remote IP lookup of %d addresses failed: %s", len(batch), type(exc).__name__
                )
                return
        if not isinstance(answers, dict):
            return
        for ip in batch:
            self._remember(ip, parse_result(ip, answers.get(ip), self.local.locate(ip)))
