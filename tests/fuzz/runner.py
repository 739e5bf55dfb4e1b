"""Schemathesis over every operation of the OpenAPI document, in process, as one caller.

Cases are drawn per operation by schemathesis' strategies under a derandomized hypothesis
(the same cases every run), then sent with httpx to the app of the test fixtures, on the
fixtures' event loop. A 5xx answer is a finding; so is a success whose body breaks the
operation's declared response schema.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.openapi.checks import JsonSchemaError

CREDENTIAL_HEADERS = ("authorization", "x-api-key")


@dataclass(frozen=True, slots=True)
class Finding:
    operation: str
    status: int
    kind: str  # "5xx" or "schema"
    reproducer: str

    def __str__(self) -> str:
        return f"{self.kind} {self.status} on {self.operation}: {self.reproducer}"


@dataclass
class Tally:
    requests: int = 0
    server_errors: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def operations(openapi: dict[str, Any]) -> list[Any]:
    schema = schemathesis.openapi.from_dict(openapi)
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())  # a schema error raises here: the document must be sound
    return found


def cases_for(operation: Any, examples: int) -> list[Any]:
    drawn: list[Any] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def collect(case: Any) -> None:
        drawn.append(case)

    collect()
    return drawn


def _request_kwargs(case: Any, credentials: dict[str, str]) -> dict[str, Any]:
    kwargs = case.as_transport_kwargs(base_url="http://fuzz")
    headers = {
        name: value
        for name, value in (kwargs.get("headers") or {}).items()
        if name.lower() not in CREDENTIAL_HEADERS
    }
    headers.update(credentials)
    sent: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": headers,
        "params": kwargs.get("params") or None,
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        sent["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        sent["content"] = data
    elif data is not None:
        sent["data"] = data
    if kwargs.get("files"):
        sent["files"] = [_file(name, spec) for name, spec in kwargs["files"]]
    return sent


def _file(name: str, spec: Any) -> tuple[str, Any]:
    """Schemathesis writes files for `requests`, which takes any value as a part's content;
    httpx takes bytes or str."""
    if isinstance(spec, tuple):
        filename, content, *rest = spec
        return name, (filename, _bytes(content), *rest)
    return name, (None, _bytes(spec))


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else str(value).encode()


def _schema_breach(case: Any, response: httpx.Response) -> str | None:
    """Only successes are held to the document: error answers are problem details that the
    document does not list for every status."""
    if not 200 <= response.status_code < 300:
        return None
    try:
        case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])
    except JsonSchemaError as exc:
        return str(exc).splitlines()[0]
    except Exception as exc:  # other check failures (undeclared status...) are not ours here
        if type(exc).__name__ == "FailureGroup" and any(
            isinstance(e, JsonSchemaError) for e in getattr(exc, "exceptions", ())
        ):
            return str(exc).splitlines()[0]
    return None


async def fuzz(
    client: httpx.AsyncClient,
    openapi: dict[str, Any],
    credentials: Callable[[], Awaitable[dict[str, str]]],
    examples: int,
    known: dict[str, str],
) -> Tally:
    """Send `examples` cases of every operation; `credentials()` is asked before each
    operation (a case may have signed the caller out or deleted it)."""
    tally = Tally()
    for operation in operations(openapi):
        label = f"{operation.method.upper()} {operation.path}"
        headers = await credentials()
        for case in cases_for(operation, examples):
            response = await client.request(**_request_kwargs(case, headers))
            tally.requests += 1
            tally.by_status[response.status_code] = tally.by_status.get(response.status_code, 0) + 1
            reproducer = case.as_curl_command(headers={k: "…" for k in headers})
            if response.status_code >= 500:
                tally.server_errors += 1
                if label not in known:
                    tally.findings.append(Finding(label, response.status_code, "5xx", reproducer))
            elif (breach := _schema_breach(case, response)) is not None:
                tally.findings.append(Finding(label, response.status_code, "schema", breach))
    return tally


def summary(name: str, tally: Tally) -> str:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.by_status.items()))
    return f"{name}: {tally.requests} requests, {tally.server_errors} 5xx ({statuses})"


_serial = itertools.count(1)


def next_name(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"
