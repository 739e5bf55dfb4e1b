"""A value at a key path inside a metadata JSON column, one class per dialect: what the search
compiler tests metadata terms against (present, is a string, its text or number, equals).

Apart from the compiler because the two must agree on JSON types (see the compiler's
docstring) and are easier to compare side by side; neither knows about query terms. Key
names reach them checked already (the compiler's _KEY_RE) and go to the database as bound
parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Numeric, String, and_, case, cast, func, literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement


class SqliteJson:
    """A value inside a JSON column via JSON1; the `$."a"."b"` path is a bound parameter."""

    def __init__(self, column: Any, keys: list[str]) -> None:
        # Keys passed the compiler's _KEY_RE, so they hold no quote or dot that could break
        # out of the path.
        path = literal("$" + "".join(f'."{key}"' for key in keys), String)
        self.type = func.json_type(column, path)
        self.value = func.json_extract(column, path)

    def present(self) -> ColumnElement[bool]:
        return func.coalesce(self.type, "null") != "null"

    def is_string(self) -> ColumnElement[bool]:
        return self.type == "text"

    def text(self) -> Any:
        return case((self.is_string(), self.value))

    def number(self) -> Any:
        return case((self.type.in_(["integer", "real"]), self.value))

    def equals(self, value: str | float | bool) -> ColumnElement[bool]:
        if isinstance(value, bool):
            return self.type == ("true" if value else "false")
        if isinstance(value, str):
            return and_(self.is_string(), self.value == literal(value, String))
        return and_(self.type.in_(["integer", "real"]), self.value == literal(value))


class PostgresJson:
    """A value inside a JSONB column; keys are bound parameters of jsonb_extract_path."""

    def __init__(self, column: Any, keys: list[str]) -> None:
        self.column = column
        self.keys = keys
        bound_keys = [literal(key, String) for key in keys]
        self.type = func.jsonb_typeof(func.jsonb_extract_path(column, *bound_keys, type_=JSONB))
        self.value_text = func.jsonb_extract_path_text(column, *bound_keys, type_=String)

    def present(self) -> ColumnElement[bool]:
        return func.coalesce(self.type, "null") != "null"

    def is_string(self) -> ColumnElement[bool]:
        return self.type == "string"

    def text(self) -> Any:
        # The "C" collation compares bytes, as SQLite does; a locale collation may not.
        return case((self.is_string(), self.value_text.collate("C")))

    def number(self) -> Any:
        # CASE guards the cast: casting a non-numeric string would abort the whole query.
        return case((self.type == "number", cast(self.value_text, Numeric())))

    def equals(self, value: str | float | bool) -> ColumnElement[bool]:
        # Containment (`@>`) is what the jsonb_path_ops GIN index on the column can serve.
        document: Any = value
        for key in reversed(self.keys):
            document = {key: document}
        return self.column.op("@>", is_comparison=True)(literal(document, JSONB))
