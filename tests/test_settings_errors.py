"""What an operator sees for a configuration: list settings in comma or JSON form, one line per
refused variable, a warning per misspelt variable, and the issuer checked against the address
the server listens on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from globeguard.cli.common import load_settings
from globeguard.settings import Settings
from globeguard.settings_check import (
    NON_SETTING_VARIABLES,
    example_value,
    issuer_notice,
    setting_fields,
    unknown_variable_warnings,
    variable_name,
)

CLI = Path(sys.executable).parent / "globeguard"
PG_URL = "postgresql+asyncpg://gg@127.0.0.1:1/nowhere"
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - the address under test
SECRET = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"
LIST_SETTINGS = [
    path for path, field in setting_fields() if typing.get_origin(field.annotation) is list
]
LEAF_SETTINGS = [
    path
    for path, field in setting_fields()
    if not (isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields"))
]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No GLOBEGUARD_ variable of the caller's, and no .env file."""
    for name in list(os.environ):
        if name.upper().startswith("GLOBEGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _value_of(path: tuple[str, ...]) -> object:
    value: object = Settings()
    for part in path:
        value = getattr(value, part)
    return value


def test_every_list_setting_is_found():
    assert {("http", "trusted_proxies"), ("http", "cors_origins")} <= set(LIST_SETTINGS)
    assert {("metrics", "open_networks"), ("ingest", "topics")} <= set(LIST_SETTINGS)
    assert ("delivery", "retry_schedule") in LIST_SETTINGS


@pytest.mark.parametrize("path", LIST_SETTINGS, ids=variable_name)
def test_a_list_setting_reads_the_same_from_commas_and_from_json(clean_env, path):
    items = str(example_value(path)).split(",")
    clean_env.setenv(variable_name(path), " , ".join(items))
    from_commas = _value_of(path)
    clean_env.setenv(variable_name(path), json.dumps(items))
    assert _value_of(path) == from_commas
    assert len(typing.cast(list[object], from_commas)) == len(items)


def test_commas_trim_spaces(clean_env):
    clean_env.setenv("GLOBEGUARD_HTTP__TRUSTED_PROXIES", " 127.0.0.1 ,10.0.0.0/8 ")
    assert Settings().http.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]


@pytest.mark.parametrize("value", ["127.0.0.1,,10.0.0.0/8", "127.0.0.1,", '["127.0.0.1"'])
def test_an_empty_item_or_broken_json_is_refused(clean_env, value):
    clean_env.setenv("GLOBEGUARD_HTTP__TRUSTED_PROXIES", value)
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings()


# Examples that are valid only on the operator's machine: a shell substitution, a file.
EXAMPLES_OF_ANOTHER_MACHINE = {("secret_key",), ("delivery", "ca_bundle")}


@pytest.mark.parametrize("path", LEAF_SETTINGS, ids=variable_name)
def test_every_setting_has_an_example_that_is_valid(clean_env, path):
    example = example_value(path)
    assert example, f"{variable_name(path)} has no example for its error line"
    if path not in EXAMPLES_OF_ANOTHER_MACHINE:
        clean_env.setenv(variable_name(path), example)
        Settings()


def _run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("GLOBEGUARD_")}
    return subprocess.run(
        [str(CLI), *args],
        env={**base, "GLOBEGUARD_DATA_DIR": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (("serve",), "GLOBEGUARD_HTTP__TRUSTED_PROXIES", "10.0.0.300"),
        (("keys", "rotate"), "GLOBEGUARD_DB__POOL_SIZE", "ten"),
        (("db", "upgrade"), "GLOBEGUARD_DELIVERY__RETRY_SCHEDULE", "PT5S,,PT1M"),
        (("worker",), "GLOBEGUARD_HTTP", "{not json"),
        (("admin", "create"), "globeguard_auth__access_token_ttl", "fifteen minutes"),
    ],
)
def test_a_bad_value_stops_a_command_with_one_line_naming_the_variable(
    tmp_path, command, variable, value
):
    result = _run(*command, env={variable: value}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]  # as typed, in lower case too
    assert "e.g. globeguard_" in lines[0].lower()  # with an example of a valid value
    assert "Traceback" not in result.stderr + result.stdout


def test_a_refused_secret_is_not_echoed(tmp_path):
    url = "https://operator:hunter2-secret@proxy.internal:3128"
    result = _run("keys", "rotate", env={"GLOBEGUARD_DELIVERY__PROXY_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert "GLOBEGUARD_DELIVERY__PROXY_URL" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("GLOBEGUARD_EVENTS__HTTP_TIMEOUT", "GLOBEGUARD_DELIVERY__HTTP_TIMEOUT"),
        ("GLOBEGUARD_EVENTS__MAX_ATTEMPTS", "GLOBEGUARD_DELIVERY__…"),
        ("GLOBEGUARD_DELIVRY__CONCURENCY", "GLOBEGUARD_DELIVERY__CONCURRENCY"),
        ("GLOBEGUARD_AUTH__ISUER", "GLOBEGUARD_AUTH__ISSUER"),
        ("GLOBEGUARD_LOGLEVEL", "GLOBEGUARD_LOG_LEVEL"),
        ("globeguard_database__url", "GLOBEGUARD_DB__URL"),
    ],
)
def test_an_unknown_variable_warns_with_the_closest_setting(name, suggested):
    (warning,) = unknown_variable_warnings([name])
    assert warning.startswith(f"globeguard: warning: {name} is not a setting")
    assert warning.endswith(f"did you mean {suggested}?")


def test_settings_and_the_test_suites_variables_do_not_warn():
    settings = [variable_name(path) for path, _ in setting_fields()]
    assert unknown_variable_warnings([*settings, *NON_SETTING_VARIABLES, "PATH", "HOME"]) == []
    assert unknown_variable_warnings(["globeguard_db__url", "GLOBEGUARD_TEST_POSTGRES_URL"]) == []


def test_a_name_far_from_every_setting_warns_without_a_guess():
    assert unknown_variable_warnings(["GLOBEGUARD_ZZZ"]) == [
        "globeguard: warning: GLOBEGUARD_ZZZ is not a setting and is ignored"
    ]


def test_an_unknown_variable_in_the_env_file_warns_too(clean_env, tmp_path, capsys):
    (tmp_path / ".env").write_text("GLOBEGUARD_EVENTS__HTTP_TIMEOUT=PT3S\n")
    load_settings()
    assert "did you mean GLOBEGUARD_DELIVERY__HTTP_TIMEOUT?" in capsys.readouterr().err


def test_the_command_line_warns_of_an_unknown_variable(tmp_path):
    env = {"GLOBEGUARD_EVENTS__HTTP_TIMEOUT": "PT3S", "GLOBEGUARD_DB__POOL_SIZE": "ten"}
    result = _run("keys", "rotate", env=env, cwd=tmp_path)
    warning, error = result.stderr.splitlines()
    assert "GLOBEGUARD_EVENTS__HTTP_TIMEOUT" in warning and "GLOBEGUARD_DELIVERY__" in warning
    assert "GLOBEGUARD_DB__POOL_SIZE" in error


@pytest.mark.parametrize(
    ("issuer_set", "host", "port", "on_sqlite", "expected"),
    [
        (False, "127.0.0.1", 8000, True, None),
        (False, "localhost", 8000, False, None),
        (False, "::1", 8000, False, None),
        (False, "127.0.0.1", 9000, True, "warn"),
        (False, "127.0.0.1", 9000, False, "warn"),
        (False, EVERY_INTERFACE, 8000, True, "warn"),
        (False, EVERY_INTERFACE, 8000, False, "refuse"),
        (False, "::", 8000, False, "refuse"),
        (False, "192.168.1.20", 8000, True, "warn"),
        (False, "id.example.com", 443, False, "refuse"),
        (True, EVERY_INTERFACE, 8000, False, None),
        (True, "127.0.0.1", 9000, True, None),
    ],
)
def test_the_default_issuer_fits_only_a_loopback_server_on_its_port(
    issuer_set, host, port, on_sqlite, expected
):
    notice = issuer_notice(issuer_set=issuer_set, host=host, port=port, on_sqlite=on_sqlite)
    if expected is None:
        assert notice is None
    else:
        assert notice is not None
        assert notice.refuse is (expected == "refuse")
        assert "GLOBEGUARD_AUTH__ISSUER" in notice.message and "e.g." in notice.message


def test_serve_on_every_interface_with_postgresql_refuses_the_default_issuer(tmp_path):
    env = {"GLOBEGUARD_DB__URL": PG_URL, "GLOBEGUARD_SECRET_KEY": SECRET}
    result = _run("serve", "--host", EVERY_INTERFACE, env=env, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "GLOBEGUARD_AUTH__ISSUER is unset" in line and EVERY_INTERFACE in line


def test_an_issuer_set_in_the_environment_counts_as_set(clean_env):
    from globeguard.settings_check import issuer_notice_for

    clean_env.setenv("GLOBEGUARD_AUTH__ISSUER", "http://127.0.0.1:8000")
    assert issuer_notice_for(Settings(), EVERY_INTERFACE, 8000) is None
    clean_env.delenv("GLOBEGUARD_AUTH__ISSUER")
    clean_env.setenv("GLOBEGUARD_AUTH__AUDIENCE", "other")
    assert issuer_notice_for(Settings(), EVERY_INTERFACE, 8000) is not None
