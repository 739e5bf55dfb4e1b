"""Bulk ingestion of login events reported by other IdPs: reading NDJSON streams (reading),
checking each event (events), and storing batches of them (bulk)."""

from globeguard.travel.ingest.bulk import BATCH_SIZE, BulkIngestor, Prepared
from globeguard.travel.ingest.events import (
    IncomingEvent,
    Login,
    ReportedLogin,
    digest,
    parse_line,
)
from globeguard.travel.ingest.grade import Stored
from globeguard.travel.ingest.reading import MAX_LINE_BYTES, event_batches, lines
from globeguard.travel.ingest.report import MAX_ERRORS_LISTED, IngestReport, LineError

__all__ = [
    "BATCH_SIZE",
    "MAX_ERRORS_LISTED",
    "MAX_LINE_BYTES",
    "BulkIngestor",
    "IncomingEvent",
    "IngestReport",
    "LineError",
    "Login",
    "Prepared",
    "ReportedLogin",
    "Stored",
    "digest",
    "event_batches",
    "lines",
    "parse_line",
]
