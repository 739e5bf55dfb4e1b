"""The remote GeoIP provider as wired (wiring.remote_locator) goes through the SSRF guard: a
provider URL on loopback is never called unless GLOBEGUARD_GEOIP__REMOTE_ALLOW_PRIVATE is
set, and the lookups then come from the local database."""

from __future__ import annotations

import pytest

from globeguard.adapters.geoip import MaxMindLocator
from globeguard.adapters.geoip.remote import RemoteBatchLocator
from globeguard.settings import GeoIpSettings
from globeguard.wiring import remote_locator
from tests.adapters.test_remote_geoip import FakeBatchApi
from tests.conftest import make_settings

ADDRESS = "81.2.69.142"


@pytest.fixture(scope="module")
def local():
    return MaxMindLocator.from_settings(GeoIpSettings())


@pytest.fixture
def api():
    fake = FakeBatchApi()
    yield fake
    fake.close()


def wired(tmp_path, url: str, **geoip) -> RemoteBatchLocator:
    settings = make_settings("sqlite+aiosqlite:///:memory:", tmp_path, geoip=geoip)
    settings.geoip.remote_url = url
    local = MaxMindLocator.from_settings(settings.geoip)
    locator = remote_locator(settings, local)
    assert isinstance(locator, RemoteBatchLocator)
    return locator


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433"])
async def test_a_provider_on_loopback_is_refused_by_default(api, tmp_path, local, host):
    port = api.url.rsplit(":", 1)[1]
    locator = wired(tmp_path, f"http://{host}:{port}")
    await locator.prefetch([ADDRESS])
    await locator.http.aclose()
    assert api.sizes == []  # nothing reached the provider
    assert locator.locate(ADDRESS) == local.locate(ADDRESS)


async def test_a_provider_on_loopback_is_used_when_private_targets_are_allowed(
    api, tmp_path, local
):
    locator = wired(tmp_path, api.url, remote_allow_private=True)
    await locator.prefetch([ADDRESS])
    await locator.http.aclose()
    assert api.sizes == [1]
    assert locator.locate(ADDRESS).city_name == "Reykjavik"
