"""A small client for the parts of Auth0's Management API the connector needs: the
client-credentials token, users-exports jobs, and the export download.

What it does that AuthGlobeTrek's did not (research/seeds.md §1): one token reused until it
expires instead of one per poll (Auth0 meters machine-to-machine tokens); a `failed` job ends
the wait at once with Auth0's reason; 429s wait for `Retry-After`; polling backs off with
full jitter and never sleeps past the deadline; no export `limit`, so large tenants are not
silently cut to 500 users; the 60-second download link is used at once and fetched again if
it expired all the same. No token or secret is ever logged or returned.

Every connection goes through the SSRF guard (the handler's client uses the guarded
transport of tenant.py). A refused or unreachable target fails with one fixed sentence
(NOT_ALLOWED, UNREACHABLE): a job's error never says "connection refused" or "timed out",
which would tell whoever submitted it which ports of which hosts are open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from globeguard.events.sinks.guard import NOT_ALLOWED, UnsafeTarget
from globeguard.kit.backoff import full_jitter
from globeguard.kit.retry_after import parse_retry_after, seconds_until

log = logging.getLogger(__name__)
UNREACHABLE = "the Auth0 tenant could not be reached"

# Fields of the export: everything an import needs, and the last-login data for the map.
# `user_metadata.last_login_ip` by name too: AuthGlobeTrek's tenants keep the address there.
EXPORT_FIELDS = (
    "user_id", "email", "email_verified", "username", "given_name", "family_name", "name",
    "created_at", "updated_at", "last_login", "last_ip", "logins_count", "blocked",
    "user_metadata", "app_metadata", "user_metadata.last_login_ip",
)  # fmt: skip
# A token is renewed this long before Auth0 says it expires (clock skew, request time).
TOKEN_MARGIN_S = 60.0
# Requests refused with 429 or 5xx outside polling are retried this many times.
MAX_RETRIES = 5
# Download links are fetched again at most this many times when Auth0 says they expired.
MAX_LINK_REFRESHES = 3
EXPIRED_LINK_STATUSES = (400, 403, 404, 410)
DOWNLOAD_CHUNK = 1024 * 1024

Sleep = Callable[[float], Awaitable[None]]


class Auth0Error(Exception):
    """A failure of the tenant or of the Management API, worded for the job's `error`."""


@dataclass(frozen=True, slots=True)
class Credentials:
    base_url: str
    client_id: str
    client_secret: str

    @property
    def audience(self) -> str:
        return f"{self.base_url}/api/v2/"


class TokenCache:
    """Management tokens by (tenant, client) until shortly before they expire. In memory
    only: a token never touches the database or a log."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._monotonic = monotonic
        self._lock = asyncio.Lock()

    def get(self, key: tuple[str, str]) -> str | None:
        found = self._tokens.get(key)
        if found is None or self._monotonic() >= found[1]:
            return None
        return found[0]

    def put(self, key: tuple[str, str], token: str, expires_in: float) -> None:
        self._tokens[key] = (token, self._monotonic() + max(0.0, expires_in - TOKEN_MARGIN_S))

    def drop(self, key: tuple[str, str]) -> None:
        self._tokens.pop(key, None)

    @property
    def lock(self) -> asyncio.Lock:
        return self._lock


@dataclass
class Polling:
    base_s: float
    cap_s: float
    deadline_s: float
    sleep: Sleep
    rand: Callable[[], float]
    monotonic: Callable[[], float]
    # Every wait taken, in order (the job's result reports them; tests read them).
    waits: list[float]


class ManagementClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: Credentials,
        tokens: TokenCache,
        polling: Polling,
    ) -> None:
        self.http = http
        self.credentials = credentials
        self.tokens = tokens
        self.polling = polling
        self._key = (credentials.base_url, credentials.client_id)
        # Set while waiting for a job: no wait (backoff or Retry-After) may pass it.
        self._deadline: float | None = None

    async def token(self) -> str:
        async with self.tokens.lock:
            cached = self.tokens.get(self._key)
            if cached is not None:
                return cached
            body = {
                "grant_type": "client_credentials",
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
                "audience": self.credentials.audience,
            }
            response = await self._send("POST", f"{self.credentials.base_url}/oauth/token", body)
            if response.status_code != 200:
                raise Auth0Error(f"Auth0 refused the client credentials ({_reason(response)})")
            data = _json(response)
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise Auth0Error("Auth0's token response has no access_token")
            self.tokens.put(self._key, token, float(data.get("expires_in") or 0))
            return token

    async def _send(
        self, method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        """One request, retried on 429 (after Retry-After) and 5xx (after a backoff)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = await self.http.request(method, url, json=body, headers=headers)
            except UnsafeTarget as exc:
                raise Auth0Error(NOT_ALLOWED) from exc
            except httpx.HTTPError as exc:
                log.debug("Auth0 %s request failed: %s", method, type(exc).__name__)
                if attempt == MAX_RETRIES:
                    raise Auth0Error(UNREACHABLE) from exc
                await self._wait(self._backoff(attempt))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == MAX_RETRIES:
                    return response
                await self._wait(self._after_refusal(response, attempt))
                continue
            return response
        raise AssertionError("unreachable")

    async def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.credentials.base_url}/api/v2{path}"
        response = await self._send(method, url, body, await self.token())
        if response.status_code == 401:  # revoked or rotated early: one fresh token
            self.tokens.drop(self._key)
            response = await self._send(method, url, body, await self.token())
        if response.status_code >= 400:
            raise Auth0Error(f"Auth0 {method} {path}: {_reason(response)}")
        return _json(response)

    async def create_export(self, connection_id: str | None) -> str:
        body: dict[str, Any] = {
            "format": "json",
            "fields": [{"name": name} for name in EXPORT_FIELDS],
        }
        if connection_id:
            body["connection_id"] = connection_id
        job = await self._api("POST", "/jobs/users-exports", body)
        job_id = job.get("id") if isinstance(job, dict) else None
        if not isinstance(job_id, str):
            raise Auth0Error("Auth0 answered the export request without a job id")
        return job_id

    async def wait_for_export(self, job_id: str, deadline: float) -> str:
        """Poll until the job completes and return its download link. `failed` ends at
        once with Auth0's reason; the wait never sleeps past `deadline` (monotonic)."""
        self._deadline = deadline
        try:
            return await self._poll(job_id)
        finally:
            self._deadline = None

    async def _poll(self, job_id: str) -> str:
        attempt = 0
        while True:
            job = await self._api("GET", f"/jobs/{job_id}")
            status = job.get("status") if isinstance(job, dict) else None
            if status == "completed":
                location = job.get("location")
                if not isinstance(location, str) or not location:
                    raise Auth0Error("Auth0's completed export job has no location")
                return location
            if status == "failed":
                raise Auth0Error(f"Auth0's export job {job_id} failed: {_job_reason(job)}")
            if status not in ("pending", "processing"):
                raise Auth0Error(f"Auth0's export job {job_id} is '{status}'")
            await self._wait(self._backoff(attempt), f"last status: {status}")
            attempt += 1

    async def download(self, job_id: str, location: str, target: Path) -> int:
        """Save the export (gzip) to `target`; a link that expired before we used it is
        fetched again from the job. Returns the bytes written."""
        for refresh in range(MAX_LINK_REFRESHES + 1):
            self._check_link(location)
            try:
                async with self.http.stream("GET", location) as response:
                    if response.status_code == 200:
                        return await _save(response, target)
                    if response.status_code not in EXPIRED_LINK_STATUSES:
                        raise Auth0Error(f"downloading the export: HTTP {response.status_code}")
            except UnsafeTarget as exc:
                raise Auth0Error(f"the export's download link: {NOT_ALLOWED}") from exc
            except httpx.HTTPError as exc:
                log.debug("downloading an Auth0 export failed: %s", type(exc).__name__)
                raise Auth0Error("the export's download link could not be reached") from exc
            if refresh == MAX_LINK_REFRESHES:
                break
            location = await self.wait_for_export(job_id, self.polling.monotonic() + 60)
        raise Auth0Error("the export's download link kept expiring before it could be used")

    def _check_link(self, location: str) -> None:
        """The link Auth0 answered with is fetched only over https (or plain http when the
        tenant itself is, a local mock); where it points, the guard decides."""
        scheme = urlsplit(location).scheme
        if scheme not in ("https", urlsplit(self.credentials.base_url).scheme):
            raise Auth0Error("Auth0's export link is not an https URL")

    def _backoff(self, attempt: int) -> float:
        return full_jitter(attempt, self.polling.base_s, self.polling.cap_s, self.polling.rand)

    def _after_refusal(self, response: httpx.Response, attempt: int) -> float:
        told = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        if told is None:
            told = seconds_until(response.headers.get("x-ratelimit-reset"), time.time())
        return told if told is not None else self._backoff(attempt)

    async def _wait(self, seconds: float, why: str = "rate limited") -> None:
        if self._deadline is not None and self.polling.monotonic() + seconds > self._deadline:
            raise Auth0Error(
                f"Auth0's export job did not finish within {self.polling.deadline_s:.0f} s ({why})"
            )
        self.polling.waits.append(seconds)
        await self.polling.sleep(seconds)


async def _save(response: httpx.Response, target: Path) -> int:
    written = 0
    async with await anyio.open_file(target, "wb") as out:
        buffer = bytearray()
        async for chunk in response.aiter_bytes():
            buffer += chunk
            if len(buffer) >= DOWNLOAD_CHUNK:
                await out.write(bytes(buffer))
                written += len(buffer)
                buffer.clear()
        if buffer:
            await out.write(bytes(buffer))
            written += len(buffer)
    return written


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise Auth0Error(f"Auth0 answered HTTP {response.status_code} with no JSON") from exc


def _reason(response: httpx.Response) -> str:
    """Auth0's error text (`message` / `error_description`), never the request."""
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        text = data.get("message") or data.get("error_description") or data.get("error")
        if isinstance(text, str):
            return f"HTTP {response.status_code}: {text[:300]}"
    return f"HTTP {response.status_code}"


def _job_reason(job: dict[str, Any]) -> str:
    for key in ("summary", "error", "message"):
        value = job.get(key)
        if isinstance(value, str) and value:
            return value[:300]
        if isinstance(value, dict | list) and value:
            return str(value)[:300]
    return "no reason given"
