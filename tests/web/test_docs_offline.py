"""The API docs page needs nothing but this server: the page names only same-origin files, each
is served with its type and revalidated by ETag, the stylesheet draws its icons from data: URLs,
and the start-up script turns off the one request Swagger UI would make elsewhere (the
validator badge). The browser side is tests/e2e/test_docs_page.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from globeguard.web.docs import DOCS_ASSETS

pytestmark = pytest.mark.skipif(
    not (DOCS_ASSETS / "swagger-ui-bundle.js").is_file(), reason="docs not built (make ui)"
)

TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)")


class References(HTMLParser):
    """Every URL the page makes the browser load: script sources and link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if tag in ("script", "link", "img") and values.get(name):
                self.urls.append(values[name] or "")


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


def _same_origin_path(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


async def test_the_page_loads_only_same_origin_files_each_with_its_type(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = references(page.text)
    assert {url.rsplit(".", 1)[-1] for url in urls} == {"css", "js", "png"}
    assert all(_same_origin_path(url) for url in urls), urls
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        expected = TYPES["." + url.rsplit(".", 1)[-1]]
        assert asset.headers["content-type"].split(";")[0] == expected, url


async def test_the_page_says_where_the_openapi_document_is(client):
    page = (await client.get("/docs")).text
    assert 'data-openapi-url="/openapi.json"' in page
    assert (await client.get("/openapi.json")).status_code == 200


async def test_the_stylesheet_draws_with_data_urls_only(client):
    css = (await client.get("/docs/assets/swagger-ui.css")).text
    urls = CSS_URL.findall(css)
    assert urls  # the icons are there
    assert all(url.startswith("data:") for url in urls), [u[:60] for u in urls]
    assert "@import" not in css


async def test_the_scripts_ask_for_no_source_map_that_is_not_served(client):
    for name in ("swagger-ui-bundle.js", "swagger-init.js"):
        script = (await client.get(f"/docs/assets/{name}")).text
        assert "sourceMappingURL" not in script[-2000:], name
    css = (await client.get("/docs/assets/swagger-ui.css")).text
    assert "sourceMappingURL" not in css[-2000:]


async def test_the_validator_badge_is_off(client):
    """Left on, Swagger UI sends the document's URL to an outside validator for a badge."""
    init = (await client.get("/docs/assets/swagger-init.js")).text
    assert re.search(r"validatorUrl:\s*null", init)


async def test_assets_are_revalidated_by_etag_and_the_page_is_not_stored(client):
    page = await client.get("/docs")
    assert page.headers["cache-control"] == "no-store"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"):
        first = await client.get(f"/docs/assets/{name}")
        # Kept, but asked about before each reuse: the names carry no content hash.
        assert first.headers["cache-control"] == "no-cache", name
        assert "pragma" not in first.headers
        again = await client.get(
            f"/docs/assets/{name}", headers={"If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304, name
        assert again.content == b"" and again.headers["cache-control"] == "no-cache"


async def test_swagger_ui_licence_and_notice_are_served(client):
    licence = await client.get("/docs/assets/LICENSE")
    notice = await client.get("/docs/assets/NOTICE")
    assert licence.status_code == 200 and "Apache License" in licence.text
    assert notice.status_code == 200 and "swagger" in notice.text.lower()


async def test_a_missing_asset_is_a_404_not_the_page(client):
    assert (await client.get("/docs/assets/nothing-here.js")).status_code == 404
