"""Headers every HTTP response carries: no caching of what may hold a token, a key or personal
data; no sniffing, framing or referrers; and a Content-Security-Policy per kind of page.

The dashboard keeps its tokens in sessionStorage, so a script injected into it could take the
admin's session: its policy (and the API docs') lets scripts come from this origin's files only
(no inline script, no eval, no other origin). API answers are data, never a page: their policy
allows nothing at all.

A header the route set itself (e.g. a cacheable Cache-Control) is left as it is."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from globeguard.kit.net import Network, trusted_peer

Headers = tuple[tuple[bytes, bytes], ...]

API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Pages: scripts, styles and fonts from our own files only; images may be data: URLs (Leaflet
# and Swagger UI draw icons that way); fetches only to this API.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; "
    "img-src 'self' data:{images}; connect-src 'self'; manifest-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Sent only on HTTPS (browsers ignore it on plain HTTP anyway). One year, this host only:
# whether subdomains are HTTPS-only too is the operator's call, made at their proxy.
HSTS = (b"strict-transport-security", b"max-age=31536000")
COMMON: Headers = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# Tokens, API keys, client and webhook secrets, personal data: nothing dynamic is stored by
# a browser or a shared cache (RFC 6749 §5.1 requires this of token responses). Pragma for
# HTTP/1.0 caches.
NO_STORE: Headers = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))
# Static files of the dashboard and the docs: the same for everyone, revalidated by ETag.
STATIC_PREFIXES = ("/dashboard/assets/", "/docs/assets/")
PAGE_PREFIXES = ("/dashboard", "/docs")


def image_source(tile_url: str | None) -> str | None:
    """The CSP source that admits a tile server's images, or None when there is none.

    A `{s}` subdomain template becomes a wildcard label, as CSP allows only on the left;
    a template anywhere else in the host admits the scheme (any host), the narrowest rule
    CSP can say for it."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.scheme not in ("http", "https") or not host:
        return None
    first, _, rest = host.partition(".")
    if "{" not in host:
        return f"{parts.scheme}://{host}"
    if first.startswith("{") and first.endswith("}") and rest and "{" not in rest:
        return f"{parts.scheme}://*.{rest}"
    return f"{parts.scheme}:"


def page_policy(extra_images: str | None = None) -> str:
    return PAGE_POLICY.format(images=f" {extra_images}" if extra_images else "")


class _Under:
    """Whether a path is one of `prefixes` (with or without its trailing slash) or below
    one: worked out for every response, so the prefixes are prepared once."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        roots = tuple(p.rstrip("/") for p in prefixes)
        self._exact = frozenset(roots)
        self._below = tuple(f"{root}/" for root in roots)

    def __call__(self, path: str) -> bool:
        return path in self._exact or path.startswith(self._below)


_is_page = _Under(PAGE_PREFIXES)
_is_static = _Under(STATIC_PREFIXES)


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering, so streams stay streams)."""

    def __init__(
        self, app: ASGIApp, *, trusted_proxies: Sequence[Network], tile_url: str | None = None
    ) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        self.api: Headers = (*COMMON, (b"content-security-policy", API_POLICY.encode()))
        page_csp = page_policy(image_source(tile_url)).encode()
        self.page: Headers = (*COMMON, (b"content-security-policy", page_csp))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.headers_for(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                if b"cache-control" in present:  # the route chose; Pragma would contradict it
                    present.add(b"pragma")
                headers += [(name, value) for name, value in added if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def headers_for(self, scope: Scope) -> Headers:
        path: str = scope["path"]
        headers = self.page if _is_page(path) else self.api
        if not _is_static(path):
            headers += NO_STORE
        if self._https(scope):
            headers += (HSTS,)
        return headers

    def _https(self, scope: Scope) -> bool:
        """Served over TLS: by us, or by a trusted proxy that says so in X-Forwarded-Proto
        (only the proxy nearest the client knows; it is the first value)."""
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        if not client or not trusted_peer(client[0], self.trusted_proxies):
            return False
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                return value.split(b",", 1)[0].strip().lower() == b"https"
        return False
