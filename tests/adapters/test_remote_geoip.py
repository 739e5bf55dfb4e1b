"""The optional IPinfo-style batch provider, against a fake batch API on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from globeguard.adapters.geoip import MaxMindLocator
from globeguard.adapters.geoip.port import GeoReason, GeoResult
from globeguard.adapters.geoip.remote import Prefetching, RemoteBatchLocator, batches, parse_result
from globeguard.settings import GeoIpSettings
from tests.support.loopback_http import LoopbackHTTPServer


class FakeBatchApi:
    """Answers every public address with a fixed place; records each request's size."""

    def __init__(self, fail: bool = False) -> None:
        self.sizes: list[int] = []
        self.tokens: list[str] = []
        self.fail = fail
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.sizes.append(len(body))
                fake.tokens.append(self.path)
                if fake.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                place = {
                    "city": "Reykjavik",
                    "region": "Capital",
                    "country": "IS",
                    "loc": "64.1355,-21.8954",
                    "org": "AS6677 Siminn",
                    "timezone": "Atlantic/Reykjavik",
                }
                answer = {ip: {"ip": ip, **place} for ip in body}
                raw = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def local():
    return MaxMindLocator.from_settings(GeoIpSettings())


def public_ips(n: int) -> list[str]:
    return [f"81.{2 + i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(n)]


async def test_batches_of_at_most_1000_concurrently_then_cached(local):
    api = FakeBatchApi()
    async with httpx.AsyncClient() as http:
        remote = RemoteBatchLocator(local, http, api.url, "secret-token", concurrency=3)
        assert isinstance(remote, Prefetching)
        asked = await remote.prefetch([*public_ips(2500), "10.0.0.1", "127.0.0.1", "nope"])
        assert asked == 2500
        assert sorted(api.sizes) == [500, 1000, 1000]
        assert all("token=secret-token" in path for path in api.tokens)
        assert await remote.prefetch(public_ips(2500)) == 0  # every address is cached
        assert len(api.sizes) == 3
    found = remote.locate("81.2.0.5")
    assert (found.latitude, found.longitude, found.city_name, found.asn) == (
        64.1355,
        -21.8954,
        "Reykjavik",
        6677,
    )
    assert remote.locate("10.0.0.1").reason is GeoReason.PRIVATE
    # Not fetched: the local database answers.
    assert remote.locate("89.160.20.112") == local.locate("89.160.20.112")
    api.close()


async def test_a_failing_provider_leaves_the_local_answers(local):
    api = FakeBatchApi(fail=True)
    async with httpx.AsyncClient() as http:
        remote = RemoteBatchLocator(local, http, api.url, None)
        await remote.prefetch(["81.2.69.142"])
    assert remote.locate("81.2.69.142") == local.locate("81.2.69.142")
    api.close()


async def test_cached_answers_expire(local):
    now = [0.0]
    api = FakeBatchApi()
    async with httpx.AsyncClient() as http:
        remote = RemoteBatchLocator(local, http, api.url, None, ttl_s=60, monotonic=lambda: now[0])
        await remote.prefetch(["81.2.69.142"])
        now[0] = 61.0
        assert remote.locate("81.2.69.142") == local.locate("81.2.69.142")
        await remote.prefetch(["81.2.69.142"])
    assert api.sizes == [1, 1]
    api.close()


LOCAL = GeoResult(ip="8.8.8.8", located=True, latitude=1.0, longitude=2.0, city_name="X",
                  country_iso="US", city_geoname_id=42, accuracy_radius_km=50)  # fmt: skip


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"ip": "8.8.8.8", "bogon": True}, None),
        ({"ip": "8.8.8.8", "loc": "not,numbers"}, None),
        ({"ip": "8.8.8.8", "loc": "0,0"}, None),  # never Null Island
        ({"ip": "8.8.8.8", "loc": "91,0"}, None),
        ("garbage", None),
        ({"loc": "3.5,4.5", "city": "Y", "country": "US"}, (3.5, 4.5, "Y", None, None)),
        ({"loc": "3.5,4.5", "city": "X", "country": "US"}, (3.5, 4.5, "X", 42, 50)),
    ],
)
def test_parsing_remote_answers(data, expected):
    result = parse_result("8.8.8.8", data, LOCAL)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        got = (result.latitude, result.longitude, result.city_name, result.city_geoname_id,
               result.accuracy_radius_km)  # fmt: skip
        assert got == expected


def test_batches_split_at_1000():
    assert [len(b) for b in batches(list(map(str, range(2001))))] == [1000, 1000, 1]
