"""Log configuration for `globeguard serve`: uvicorn's own, plus our `globeguard.*` loggers
(which would otherwise reach no handler, and only warnings would show), and no personal data
in uvicorn's access lines."""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

# The seed's ingestion query carries the user's email (`?message=…`); its gateway logged it
# in full. Our own ingestion access line has everything needed without it.
REDACTED_PREFIXES = ("/api/v1/ingest/",)


class RedactQuery(logging.Filter):
    """Drops the query string of uvicorn access lines for paths that carry personal data."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client address, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            if query and path.startswith(REDACTED_PREFIXES):
                record.args = (args[0], args[1], f"{path}?[redacted]", args[3], args[4])
        return True


def log_config(level: str) -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_query": {"()": RedactQuery}}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    config["loggers"]["globeguard"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
