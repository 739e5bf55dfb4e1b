"""Serve-time logging: our loggers reach a handler, and ingestion queries stay out of the
access log."""

from __future__ import annotations

import logging
import logging.config

import pytest

from globeguard.observability.logs import RedactQuery, log_config

SECRET_QUERY = "topic=t&message=%7B%22email%22%3A%22a%40b.co%22%7D"


def access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:5000", "GET", path, "1.1", 200),
        None,
    )


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (f"/api/v1/ingest/users?{SECRET_QUERY}", "/api/v1/ingest/users?[redacted]"),
        ("/api/v1/ingest/users", "/api/v1/ingest/users"),
        ("/api/v1/users?limit=5", "/api/v1/users?limit=5"),
    ],
)
def test_ingestion_queries_are_redacted(path, logged):
    record = access_record(path)
    assert RedactQuery().filter(record) is True
    assert record.getMessage() == f'203.0.113.7:5000 - "GET {logged} HTTP/1.1" 200'


def test_the_config_is_valid_and_routes_our_loggers():
    config = log_config("info")
    logging.config.dictConfig(config)
    try:
        ours = logging.getLogger("globeguard.ingest.access")
        assert ours.getEffectiveLevel() == logging.INFO
        assert logging.getLogger("globeguard").handlers
        access = logging.getLogger("uvicorn.access").handlers[0]
        assert any(isinstance(f, RedactQuery) for f in access.filters)
    finally:
        logging.getLogger("globeguard").handlers.clear()
        logging.getLogger("globeguard").propagate = True
        logging.getLogger("globeguard").setLevel(logging.NOTSET)
