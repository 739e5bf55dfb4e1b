"""Which journey a login is judged by. Pure.

A login's verdict is that of the journey to it from the subject's last *successful* login
before it (in event order, ``(occurred_at, arrival_seq)``): its *anchor*. The pair itself is
graded by ``detect.assess_pair``. Failed attempts are judged the same way but are never the
anchor of another login, and only successes teach the false-positive controls (``History``):
an attacker's failed try from a new place must not vouch for their next one. A login with no
anchor gets ``Grade.NONE``.

Keeping stored verdicts current. A failure arriving late changes no other login's verdict. A
success S arriving late becomes the anchor of the logins after it up to and including the next
success, and joins the history of every later login (learning, known places), so re-judge
everything after it: ``judge_timeline(later, settings, history_before_S.including(S), anchor=S)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from globeguard.settings import TravelSettings
from globeguard.travel.detect import Grade, assess_pair, pair_verdict
from globeguard.travel.timeline import History, TravelEvent, sort_timeline

Verdict = tuple[Grade, dict[str, Any] | None]


def judge(
    event: TravelEvent, anchor: TravelEvent | None, history: History, settings: TravelSettings
) -> Verdict:
    """`anchor` is the last successful login before `event`; `history` the successes before."""
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


def judge_timeline(
    events: Iterable[TravelEvent],
    settings: TravelSettings,
    history: History | None = None,
    anchor: TravelEvent | None = None,
) -> dict[str, Verdict]:
    """Every login's verdict, by key. `history` and `anchor` describe what came before the
    first event given (nothing, by default)."""
    state = history or History()
    verdicts: dict[str, Verdict] = {}
    for event in sort_timeline(events):
        verdicts[event.key] = judge(event, anchor, state, settings)
        if event.success:
            state = state.including(event)
            anchor = event
    return verdicts
