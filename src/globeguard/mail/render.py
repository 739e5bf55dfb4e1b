"""Rendering a message from its templates: `templates/<name>.txt` (first line
`Subject: …`, a blank line, the plain-text body) and `templates/<name>.html` (the HTML body).
Placeholders are `${name}` (`string.Template`); values are HTML-escaped in the HTML part."""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template
from typing import Any

# Where the templates are; tests point it elsewhere (and clear `_template`'s cache).
TEMPLATES: Traversable = resources.files("globeguard.mail").joinpath("templates")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    # The subject line as the template spells it, placeholders unfilled: what may be stored
    # in the clear and logged (a subject can carry a secret, e.g. a sign-in code).
    subject_template: str


@cache
def _template(name: str, suffix: str) -> Template:
    return Template(TEMPLATES.joinpath(f"{name}.{suffix}").read_text(encoding="utf-8"))


def render(name: str, values: dict[str, Any]) -> Rendered:
    """The subject, text and HTML of template `name`; a missing value is a KeyError (a bug,
    caught by the tests that render every template)."""
    plain = {key: str(value) for key, value in values.items()}
    source = _template(name, "txt")
    text = source.substitute(plain)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"mail template {name}.txt must start with a 'Subject: ' line")
    escaped = {key: html.escape(value) for key, value in plain.items()}
    return Rendered(
        subject=first.removeprefix("Subject: ").strip(),
        text=body.lstrip("\n"),
        html=_template(name, "html").substitute(escaped),
        subject_template=source.template.partition("\n")[0].removeprefix("Subject: ").strip(),
    )


def template_names() -> list[str]:
    """Every template with both parts, sorted."""
    files = {entry.name for entry in TEMPLATES.iterdir()}
    return sorted(
        name.removesuffix(".txt")
        for name in files
        if name.endswith(".txt") and f"{name.removesuffix('.txt')}.html" in files
    )


def placeholders(name: str) -> set[str]:
    """The `${…}` names template `name` uses, in either part."""
    return set(_template(name, "txt").get_identifiers()) | set(
        _template(name, "html").get_identifiers()
    )
