"""Which journey a login is judged by. Pure.

A login's verdict is that of the journey to it from the subject's last *trusted* successful
login before it (in event order, ``(occurred_at, arrival_seq)``): its *anchor* (see
``profile`` for what makes a success trusted). The pair itself is graded by
``detect.assess_pair``. Failed attempts are judged the same way but are never the anchor of
another login, and only successes teach the false-positive controls (``History``): an
attacker's failed try from a new place must not vouch for their next one. A login with no
anchor gets ``Grade.NONE``.

Keeping stored verdicts current. A failure arriving late changes no other login's verdict. A
success S arriving late may become the anchor of the logins after it and joins the history of
every later login (learning, known places), so everything after it is judged again from the
profile of everything up to S (``Profile.judge``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade, assess_pair, pair_verdict
from globeguard.travel.timeline import History, TravelEvent

Verdict = tuple[Grade, dict[str, Any] | None]


def judge(
    event: TravelEvent, anchor: TravelEvent | None, history: History, settings: TravelSettings
) -> Verdict:
    """`anchor` is the last trusted success before `event`; `history` what came before."""
    if anchor is None:
        return Grade.NONE, None
    pair = assess_pair(anchor, event, history, settings)
    return pair.grade, pair.as_dict()


def judge_lazily(
    event: TravelEvent,
    anchor: TravelEvent | None,
    history_of: Callable[[], History],
    settings: TravelSettings,
) -> Verdict:
    """`judge`, building the history only if a false-positive control asks for it."""
    if anchor is None:
        return Grade.NONE, None
    return pair_verdict(anchor, event, history_of, settings)
