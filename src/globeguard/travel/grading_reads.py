"""The reads grading makes of stored login events when it cannot go by a subject's profile
alone: the columns it reads (FACTS), what makes a success trusted (TRUSTED), and the prebuilt
statements for a subject's latest event with its tallies of successes, its successes since a
time, and the tail of events a bulk batch is graded against.

Kept apart from repository.py, which runs them: together they are what a profile is rebuilt
from (travel.replay) and are built once at import, as compiling a statement per call costs
more than running it; the repository keeps the writes and the other reads.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select

from globeguard.travel.models import LoginEvent

# The columns grading reads: hot paths select these rather than whole rows, skipping the JSON
# decoding of verdict_reasons and the ORM bookkeeping of twenty objects per sign-in.
FACTS = (
    LoginEvent.id,
    LoginEvent.event_uuid,
    LoginEvent.occurred_at,
    LoginEvent.success,
    LoginEvent.located,
    LoginEvent.latitude,
    LoginEvent.longitude,
    LoginEvent.accuracy_radius_km,
    LoginEvent.country_iso,
    LoginEvent.city_name,
    LoginEvent.ip,
    LoginEvent.asn,
    LoginEvent.review,
)


def _up_to(inclusive: bool) -> Any:
    """Events at or before (`inclusive`), or strictly before, the bound `before`."""
    bound: Any = bindparam("before")
    return LoginEvent.occurred_at <= bound if inclusive else LoginEvent.occurred_at < bound


def _tallies(inclusive: bool) -> Any:
    """Per subject, its latest event up to `before`, with the number of its successes up to
    then and the time of the first one."""
    subject = LoginEvent.subject
    success_time = case((LoginEvent.success.is_(True), LoginEvent.occurred_at))
    ranked = (
        select(
            *FACTS,
            subject,
            func.row_number()
            .over(
                partition_by=subject,
                order_by=(LoginEvent.occurred_at.desc(), LoginEvent.id.desc()),
            )
            .label("rank"),
            func.count(success_time).over(partition_by=subject).label("successes"),
            func.min(success_time).over(partition_by=subject).label("first_success"),
        )
        .where(subject.in_(bindparam("subjects", expanding=True)), _up_to(inclusive))
        .subquery()
    )
    return select(ranked).where(ranked.c.rank == 1)


def _successes_since(inclusive: bool) -> Any:
    """The successes of the subjects from `since` up to `before`, in event order, with the
    verdict and review that say whether each proved its place."""
    return (
        select(*FACTS, LoginEvent.subject, LoginEvent.verdict)
        .where(
            LoginEvent.subject.in_(bindparam("subjects", expanding=True)),
            LoginEvent.success.is_(True),
            LoginEvent.occurred_at >= bindparam("since"),
            _up_to(inclusive),
        )
        .order_by(LoginEvent.subject, LoginEvent.occurred_at, LoginEvent.id)
    )


# A success that proved its place (profile.is_trusted): not flagged, or reviewed "safe";
# never reviewed "compromised".
TRUSTED = and_(
    LoginEvent.success.is_(True),
    or_(LoginEvent.review.is_(None), LoginEvent.review != "compromised"),
    or_(
        LoginEvent.review == "safe",
        LoginEvent.verdict.is_(None),
        LoginEvent.verdict.not_in(("suspicious", "impossible")),
    ),
)
TALLIES = {inclusive: _tallies(inclusive) for inclusive in (False, True)}
SUCCESSES_SINCE = {inclusive: _successes_since(inclusive) for inclusive in (False, True)}
TAIL_FACTS = select(
    *FACTS, LoginEvent.subject, LoginEvent.verdict, LoginEvent.verdict_reasons
).where(
    LoginEvent.subject.in_(bindparam("subjects", expanding=True)),
    LoginEvent.occurred_at >= bindparam("since"),
)
