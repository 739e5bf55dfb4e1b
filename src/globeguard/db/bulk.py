"""Many-row INSERTs at the driver's speed.

SQLAlchemy's executemany path builds a parameter dict per row and runs every value through
its bind processing, with per-row bookkeeping around it. For the bulk paths (tens of thousands
of login events, demo users) that bookkeeping cost more than the database's own work. A
`BulkInsert` compiles its statement once per dialect, keeps only the columns' real converters
(a datetime to SQLite text, a dict to JSON, a uuid to hex), and sends positional tuples
straight to the driver: the same values SQLAlchemy would send, for less.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

Converter = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    columns: tuple[str, ...]
    converters: tuple[Converter, ...]


class BulkInsert:
    """INSERT INTO `table` (`columns`) for rows given as mappings holding every column."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._statement = insert(table).values(
            {name: bindparam(name, type_=table.c[name].type) for name in self.columns}
        )
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ())
        if sorted(order) != sorted(self.columns):
            # A column default computed in Python would add a parameter rows do not carry.
            raise ValueError(f"{self.table.name}: parameters {order} are not {self.columns}")
        converters = tuple(
            self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
        )
        return _Compiled(str(compiled), order, converters)

    def tuples(self, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        compiled = self._for(dialect)
        pairs = tuple(zip(compiled.columns, compiled.converters, strict=True))
        # Converters see None too, as in SQLAlchemy: JSON stores it as JSON null.
        return [
            tuple(row[name] if convert is None else convert(row[name]) for name, convert in pairs)
            for row in rows
        ]

    async def run(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        connection = await session.connection()
        dialect = connection.dialect
        await connection.exec_driver_sql(
            self._for(dialect).sql,
            self.tuples(dialect, rows),  # type: ignore[arg-type]
        )
