"""What a bulk ingestion came to: counts, and the lines refused with their reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

# Errors listed in a report; the count covers all. Keeps the response bounded however bad the
# input is.
MAX_ERRORS_LISTED = 1000


@dataclass(slots=True)
class LineError:
    line: int
    reason: str


@dataclass(slots=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    suspicious: int = 0
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0

    def reject(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(LineError(line, reason))

    def absorb(self, other: IngestReport) -> None:
        """Add what `other` counted, its errors listed after these."""
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.suspicious += other.suspicious
        self.error_count += other.error_count
        self.errors.extend(other.errors[: max(0, MAX_ERRORS_LISTED - len(self.errors))])
