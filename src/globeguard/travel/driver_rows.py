"""The bulk path's statements at the driver's speed: `db.bulk.DriverRows` (kept importable
here for the modules that name it so)."""

from globeguard.db.bulk import DriverRows

__all__ = ["DriverRows"]
