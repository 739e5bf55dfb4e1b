"""The analytics tables as Core handles, shared by the rollup writer (repository.py) and the
reads (read_repository.py)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from globeguard.analytics.models import (
    GeoFlaggedJourney,
    GeoLastLogin,
    GeoPlace,
    GeoRollupDay,
    GeoRollupTotal,
    GeoSubjectDay,
    GeoSubjectTotal,
)

DAY = cast(Table, GeoRollupDay.__table__)
TOTAL = cast(Table, GeoRollupTotal.__table__)
SUBJECT = cast(Table, GeoSubjectDay.__table__)
SUBJECT_TOTAL = cast(Table, GeoSubjectTotal.__table__)
LAST = cast(Table, GeoLastLogin.__table__)
FLAGGED = cast(Table, GeoFlaggedJourney.__table__)
PLACE = cast(Table, GeoPlace.__table__)
