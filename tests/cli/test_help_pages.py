"""Every help page of the command line, as an operator reads it in an 80-column terminal: no
line wider, every command and option described, values named in words (`FILE`, `ID`), never
by Python type (`<list[str]>`), and no value shown for flags (`--help <bool>`)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer._click import Command, Context
from typer.core import TyperArgument, TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from globeguard.cli import app

WIDTH = 80
# Type names of Python and of Click's defaults (FILE and PATH are words an operator reads; the
# `<file>`/`<path>` forms are caught with every other `<type>`).
PYTHON_TYPES = {"str", "int", "float", "bool", "list", "dict", "tuple", "datetime", "uuid"}
PYTHON_TYPES |= {"text", "integer", "boolean"}
# A value's name: capitals, digits and _ (NAME, FILE, ID, PORT).
METAVAR = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _tree(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _tree(sub, (*path, name))


PAGES = dict(_tree(get_command(app)))


def _label(path: tuple[str, ...]) -> str:
    return " ".join(("globeguard", *path))


def _render(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": str(WIDTH)}, prog_name="globeguard"
    )
    assert result.exit_code == 0, result.output
    return result.output


def _params(command: Command) -> list[TyperArgument | TyperOption]:
    context = Context(command, info_name=command.name)
    return [p for p in command.get_params(context) if isinstance(p, TyperArgument | TyperOption)]


def test_the_walk_reaches_every_command():
    assert {("serve",), ("worker",), ("subscriptions", "update"), ("users", "import")} <= set(PAGES)
    assert len(PAGES) > 15


@pytest.mark.parametrize("path", PAGES, ids=_label)
def test_a_help_page_fits_80_columns(path):
    page = _render(path)
    too_wide = [line for line in page.splitlines() if len(line) > WIDTH]
    assert too_wide == []
    assert "…" not in page.replace("(con_…)", "")  # nothing cut short
    assert not set("╭╮╰╯│─") & set(page)  # plain text: nothing a narrow terminal garbles


@pytest.mark.parametrize("path", PAGES, ids=_label)
def test_every_command_and_option_is_described(path):
    command = PAGES[path]
    assert (command.help or "").strip(), f"{_label(path)} has no description"
    for param in _params(command):
        assert (param.help or "").strip(), f"{_label(path)}: {param.name} has no description"


@pytest.mark.parametrize("path", PAGES, ids=_label)
def test_values_are_named_in_words(path):
    for param in _params(PAGES[path]):
        if isinstance(param, TyperOption) and param.is_flag:
            continue
        where = f"{_label(path)}: {param.name}"
        assert param.metavar is not None, f"{where} shows its Python type"
        assert METAVAR.match(param.metavar), where
        assert param.metavar.lower() not in PYTHON_TYPES, where


@pytest.mark.parametrize("path", PAGES, ids=_label)
def test_a_page_shows_no_type_and_no_value_for_a_flag(path):
    page = _render(path)
    assert not re.search(r"<[\w\[\]| ]+>", page), page
    assert not re.search(r"\{\w+\}", page.splitlines()[0]), page  # usage: NAME, not {name}
    rows = [line.strip() for line in page.splitlines() if line.startswith("  -")]
    labels = [row.split("  ")[0] for row in rows]
    assert "--help" in labels
    for label in labels:
        words = {word.lower() for word in re.findall(r"[A-Za-z_\[\]]+", label)}
        assert not words & PYTHON_TYPES, label


def test_the_installed_command_prints_the_same_plain_page(tmp_path):
    entry_point = Path(sys.executable).parent / "globeguard"
    result = subprocess.run(
        [str(entry_point), "subscriptions", "redrive", "--help"],
        env={"COLUMNS": str(WIDTH), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == _render(("subscriptions", "redrive"))
