"""What an operator is told about their configuration before anything starts: one line per
refused setting (named as the environment variable, with an example of a valid value), a
warning per `GLOBEGUARD_` variable that is no setting, and whether the issuer fits the
address the server listens on."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import SettingsError

from globeguard.settings import AuthSettings, Settings

PREFIX = "GLOBEGUARD_"
NESTED = "__"
# Variables of the test suite, the benchmarks and the wheel build: not settings, not typos.
NON_SETTING_VARIABLES = frozenset(
    {
        "GLOBEGUARD_TEST_POSTGRES_URL",
        "GLOBEGUARD_TEST_REDIS_URL",
        "GLOBEGUARD_TEST_NATS_URL",
        "GLOBEGUARD_BENCH_POSTGRES_URL",
        "GLOBEGUARD_FUZZ_EXAMPLES",
        "GLOBEGUARD_SKIP_UI",
    }
)
# Group names people reach for that are called something else here: spelling alone would
# not lead from one to the other.
GROUP_ALIASES = {
    "EVENTS": "DELIVERY",
    "WEBHOOKS": "DELIVERY",
    "DATABASE": "DB",
    "REDIS": "KV",
}
# Examples for the settings whose default (unset, empty) shows no valid value.
EXAMPLES: dict[tuple[str, ...], str] = {
    ("secret_key",): "$(openssl rand -base64 48)",
    ("kv", "url"): "redis://127.0.0.1:6379/0",
    ("bootstrap", "admin_username"): "admin",
    ("bootstrap", "admin_password"): "a-long-passphrase-of-several-words",
    ("bootstrap", "admin_email"): "admin@example.com",
    ("http", "trusted_proxies"): "127.0.0.1,10.0.0.0/8",
    ("http", "cors_origins"): "https://app.example.com,https://admin.example.com",
    ("geoip", "city_db"): "/var/lib/GeoIP/GeoLite2-City.mmdb",
    ("geoip", "asn_db"): "/var/lib/GeoIP/GeoLite2-ASN.mmdb",
    ("geoip", "remote_url"): "https://ipinfo.io",
    ("geoip", "remote_token"): "your-ipinfo-token",
    ("delivery", "ca_bundle"): "/etc/ssl/certs/private-ca.pem",
    ("delivery", "proxy_url"): "http://proxy.internal:3128",
    ("delivery", "nats_url"): "nats://127.0.0.1:4222",
    ("metrics", "open_networks"): "127.0.0.1/32,10.0.0.0/8",
    ("dashboard", "tile_url"): "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
    ("dashboard", "tile_attribution"): "© OpenStreetMap contributors",
    ("jobs", "dir"): "/var/lib/globeguard/jobs",
    ("auth0", "domain"): "example.eu.auth0.com",
    ("auth0", "client_id"): "your-auth0-client-id",
    ("auth0", "client_secret"): "your-auth0-client-secret",
    ("auth0", "log_stream_token"): "a-long-random-token",
    ("mail", "url"): "smtp://user:password@smtp.example.com:587",
    ("mail", "public_url"): "https://id.example.com",
    ("mail", "ca_file"): "/etc/ssl/certs/private-ca.pem",
    ("risk", "impossible_travel"): "deny",
    ("account", "breached_range_url"): "https://api.pwnedpasswords.com/range/",
}
# pydantic's wording for these describes its parser, not what the operator should write.
PLAIN_MESSAGES = {
    "time_delta_parsing": "not an ISO 8601 duration",
    "time_delta_type": "not an ISO 8601 duration",
    "bool_parsing": "not true or false",
}
DEFAULT_ISSUER: str = AuthSettings.model_fields["issuer"].default
DEFAULT_ISSUER_PORT = urlsplit(DEFAULT_ISSUER).port


def variable_name(path: Iterable[str]) -> str:
    return PREFIX + NESTED.join(part.upper() for part in path)


def _group_model(field: FieldInfo) -> type[BaseModel] | None:
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def setting_fields(
    model: type[BaseModel] = Settings, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every field, groups and the settings inside them, with its path of names."""
    for name, field in model.model_fields.items():
        yield (*path, name), field
        if (group := _group_model(field)) is not None:
            yield from setting_fields(group, (*path, name))


def known_variables() -> frozenset[str]:
    return frozenset(variable_name(path) for path, _ in setting_fields())


def _field_at(path: tuple[str, ...]) -> FieldInfo | None:
    return dict(setting_fields()).get(path)


# ---- examples -------------------------------------------------------------------------------


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return str(TypeAdapter(timedelta).dump_python(value, mode="json"))
    if isinstance(value, list):
        return ",".join(_env_text(item) for item in value)
    if isinstance(value, Path | SecretStr):
        return str(value.get_secret_value() if isinstance(value, SecretStr) else value)
    return str(value)


def example_value(path: tuple[str, ...]) -> str | None:
    """A valid value of a setting, as it is written in the environment."""
    if path in EXAMPLES:
        return EXAMPLES[path]
    field = _field_at(path)
    if field is None or _group_model(field) is not None:
        return None
    default = field.get_default(call_default_factory=True)
    if default is None or default in ("", []):
        return None
    if isinstance(default, bool):
        return "true"
    return _env_text(default)


# ---- refused values -------------------------------------------------------------------------


def _as_typed(canonical: str, environ: Mapping[str, str]) -> str:
    """The variable's name as the operator spelt it (names are not case-sensitive)."""
    return next((name for name in environ if name.upper() == canonical), canonical)


def _split_location(loc: tuple[int | str, ...]) -> tuple[tuple[str, ...], int | None]:
    """The setting's path and, for an item of a list setting, the item's index."""
    path: tuple[str, ...] = ()
    for part in loc:
        if isinstance(part, int):
            return path, part
        if _field_at((*path, part)) is None:
            break
        path = (*path, part)
    return path, None


def _line(variable: str, problems: list[str], example: str | None) -> str:
    text = "; ".join(dict.fromkeys(problems))
    if text.startswith(variable):  # the validator's own message already names it
        return f"globeguard: {text}"
    line = f"globeguard: invalid {variable}: {text}"
    if example is not None and "e.g." not in text:
        line += f" (e.g. {variable}={example})"
    return line


def problem_lines(exc: ValidationError | SettingsError, environ: Mapping[str, str]) -> list[str]:
    """One line per refused variable; never the refused value (it may be a secret)."""
    if isinstance(exc, SettingsError):
        return [_unparsable_line(exc, environ)]
    problems: dict[tuple[str, ...], list[str]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        path, item = _split_location(error["loc"])
        message = PLAIN_MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        if item is not None:
            message = f"item {item + 1}: {message}"
        problems.setdefault(path, []).append(message)
    lines = []
    for path, messages in problems.items():
        if not path:  # the whole configuration: the message names the variables itself
            lines += [f"globeguard: {message}" for message in messages]
            continue
        variable = _as_typed(variable_name(path), environ)
        field = _field_at(path)
        if field is not None and _group_model(field) is not None:
            variable += f"{NESTED}…"
        lines.append(_line(variable, messages, example_value(path)))
    return lines


def _unparsable_line(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """pydantic-settings could not read a group's value as JSON before validating it."""
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None:
        return f"globeguard: invalid settings: {exc}"
    group = found.group(1)
    variable = _as_typed(variable_name((group,)), environ)
    line = f"globeguard: invalid {variable}: not a JSON object"
    for path, _ in setting_fields():
        if path[:-1] == (group,) and (example := example_value(path)) is not None:
            return f"{line}; or set one setting at a time, e.g. {variable_name(path)}={example}"
    return line


# ---- unknown variables ----------------------------------------------------------------------


def _closest(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggestion(name: str) -> str | None:
    """The real setting closest to a `GLOBEGUARD_` variable that is none, or the group it
    seems to mean (`GLOBEGUARD_DELIVERY__…`) when no setting of that group is close."""
    names = {v.removeprefix(PREFIX) for v in known_variables()}
    group, nested, rest = name.upper().removeprefix(PREFIX).partition(NESTED)
    if nested:
        groups = {path[0].upper() for path, field in setting_fields() if _group_model(field)}
        real_group = GROUP_ALIASES.get(group) or _closest(group, groups)
        if real_group is not None:
            start = real_group + NESTED
            inside = {n.removeprefix(start) for n in names if n.startswith(start)}
            return f"{PREFIX}{start}{_closest(rest, inside) or '…'}"
    closest = _closest(group + nested + rest, names)
    return None if closest is None else PREFIX + closest


def unknown_variable_warnings(names: Iterable[str]) -> list[str]:
    known = known_variables() | NON_SETTING_VARIABLES
    warnings = []
    for name in dict.fromkeys(names):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known:
            continue
        line = f"globeguard: warning: {name} is not a setting and is ignored"
        if (closest := suggestion(name)) is not None:
            line += f"; did you mean {closest}?"
        warnings.append(line)
    return warnings


# ---- the issuer and the listening address ---------------------------------------------------


@dataclass(frozen=True)
class IssuerNotice:
    refuse: bool
    message: str


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


def issuer_notice(
    *, issuer_set: bool, host: str, port: int, on_sqlite: bool
) -> IssuerNotice | None:
    """Tokens name their issuer, and clients check it against the URL they called: the
    default one is right only for a client on this host, at the default port."""
    if issuer_set:
        return None
    unset = f"GLOBEGUARD_AUTH__ISSUER is unset: tokens would name {DEFAULT_ISSUER} as their issuer"
    if not is_loopback(host):
        return IssuerNotice(
            refuse=not on_sqlite,
            message=(
                f"{unset}, a URL clients on other hosts cannot call (the server listens on "
                f"{host}); set the URL clients use, e.g. "
                "GLOBEGUARD_AUTH__ISSUER=https://id.example.com"
                + ("" if on_sqlite else " (required with PostgreSQL)")
            ),
        )
    if port != DEFAULT_ISSUER_PORT:
        return IssuerNotice(
            refuse=False,
            message=(
                f"{unset}, but the server listens on port {port}; "
                f"e.g. GLOBEGUARD_AUTH__ISSUER=http://127.0.0.1:{port}"
            ),
        )
    return None


def issuer_notice_for(settings: Settings, host: str, port: int) -> IssuerNotice | None:
    return issuer_notice(
        issuer_set="issuer" in settings.auth.model_fields_set,
        host=host,
        port=port,
        on_sqlite=settings.db.is_sqlite,
    )
