"""Imports every models module so Base.metadata is complete (Alembic, tests)."""

from globeguard.account import models as _account  # noqa: F401
from globeguard.analytics import models as _analytics  # noqa: F401
from globeguard.db.base import Base
from globeguard.events import models as _events  # noqa: F401
from globeguard.identity import models as _identity  # noqa: F401
from globeguard.ingest import models as _ingest  # noqa: F401
from globeguard.jobs import models as _jobs  # noqa: F401
from globeguard.mail import models as _mail  # noqa: F401
from globeguard.travel import models as _travel  # noqa: F401

metadata = Base.metadata
