"""List settings written either as JSON (`["a", "b"]`) or as plain comma-separated text
(`a, b`): an operator types the second, a generated configuration often writes the first."""

from __future__ import annotations

import json
from typing import Annotated, TypeVar

from pydantic import BeforeValidator
from pydantic_settings import NoDecode

T = TypeVar("T")


def comma_or_json_list(value: object) -> object:
    """A JSON array when the text starts with `[`, else comma-separated items with their
    spaces trimmed. Anything that is not text (a default, a decoded JSON object's member)
    is left to the list's own validation."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid JSON list ({exc.msg})") from None
    if not text:
        return []
    items = [item.strip() for item in text.split(",")]
    if "" in items:
        raise ValueError("an empty item (two commas in a row, or a comma at an end)")
    return items


# NoDecode keeps pydantic-settings from reading the environment's text as JSON itself (it
# would refuse `a,b`); the validator above accepts both forms instead.
CommaList = Annotated[list[T], NoDecode, BeforeValidator(comma_or_json_list)]
