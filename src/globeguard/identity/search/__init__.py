"""User search: `parse` query text into an AST, `compile_user_filter` it into a WHERE clause.

    node = parse(q)                                   # QuerySyntaxError
    where = compile_user_filter(node, db.dialect)     # QueryFieldError
    select(User).where(where)

Both errors are `QueryError`s with `message` and `position` (0-based offset into `q`).
"""

from __future__ import annotations

from globeguard.identity.search.compiler import QueryFieldError, compile_user_filter
from globeguard.identity.search.nodes import QueryError, QuerySyntaxError, to_text, top_fields
from globeguard.identity.search.parser import parse

__all__ = [
    "QueryError",
    "QueryFieldError",
    "QuerySyntaxError",
    "compile_user_filter",
    "parse",
    "to_text",
    "top_fields",
]
