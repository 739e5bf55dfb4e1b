"""The figures of bench/detection.py: per-persona false positives, attacks caught, the naive
Superman rule on the same data, sweep rows and the VPN review comparison."""

from __future__ import annotations

from collections.abc import Iterable

from detection_data import SHARES, THRESHOLD_MPH, Dataset, Event, User, mph_between

Verdicts = dict[str, "str | None"]
FLAGGED = ("suspicious", "impossible")
HONEST_KINDS = ("honest", "typo")
ATTACK_KINDS = ("fast", "slow", "return", "stuffing_success")


def superman_flags(data: Dataset) -> set[str]:
    """uuids of the logins the naive rule flags: consecutive logins of a subject (any outcome),
    centre to centre, faster than the threshold; both logins of such a pair are flagged (the
    later by its preceding access, the earlier by its subsequent one)."""
    flagged: set[str] = set()
    block_of = data.plan.block_of
    last: dict[str, Event] = {}
    for event in data.events:
        prev = last.get(event.subject)
        last[event.subject] = event
        if prev is None:
            continue
        if mph_between(block_of(prev.ip), block_of(event.ip), event.t - prev.t) > THRESHOLD_MPH:
            flagged.add(prev.uuid)
            flagged.add(event.uuid)
    return flagged


def _honest_logins(data: Dataset) -> dict[str, list[str]]:
    logins: dict[str, list[str]] = {}
    for event in data.events:
        if event.kind in HONEST_KINDS:
            logins.setdefault(event.subject, []).append(event.uuid)
    return logins


def _share(users: list[User], logins: dict[str, list[str]], hit: Iterable[str] | None = None,
           verdicts: Verdicts | None = None, levels: tuple[str, ...] = ()) -> float:  # fmt: skip
    if not users:
        return 0.0
    marked = set(hit or ())
    count = 0
    for user in users:
        uuids = logins.get(user.subject, [])
        if verdicts is not None:
            count += any(verdicts.get(u) in levels for u in uuids)
        else:
            count += any(u in marked for u in uuids)
    return count / len(users)


def _pct(value: float) -> str:
    return f"{100 * value:6.1f} %"


def _honest_rows(data: Dataset, verdicts: Verdicts, flags: set[str]) -> list[str]:
    logins = _honest_logins(data)
    honest = [u for u in data.users if not u.compromised]
    rows = [
        f"{'honest users':<22}{'users':>6}{'impossible':>12}{'suspicious+':>13}{'Superman':>11}",
    ]
    groups = [(p, [u for u in honest if u.persona == p]) for p in SHARES if p != "vpn"]
    groups.append(("all except VPN", [u for u in honest if u.persona != "vpn"]))
    groups.append(("VPN users (apart)", [u for u in honest if u.persona == "vpn"]))
    for name, users in groups:
        rows.append(
            f"{name:<22}{len(users):>6}"
            f"{_pct(_share(users, logins, verdicts=verdicts, levels=('impossible',))):>12}"
            f"{_pct(_share(users, logins, verdicts=verdicts, levels=FLAGGED)):>13}"
            f"{_pct(_share(users, logins, hit=flags)):>11}"
        )
    return rows


def caught(data: Dataset, verdicts: Verdicts, kind: str) -> tuple[int, float]:
    uuids = [a.uuid for a in data.attacks if a.kind == kind]
    if not uuids:
        return 0, 0.0
    return len(uuids), sum(verdicts.get(u) in FLAGGED for u in uuids) / len(uuids)


def _attack_rows(data: Dataset, verdicts: Verdicts, flags: set[str]) -> list[str]:
    rows = [f"{'attacks':<22}{'logins':>6}{'caught':>12}{'':>13}{'Superman':>11}"]
    labels = {
        "fast": "takeover >= 2x",
        "slow": "takeover 1.2-2x",
        "return": "return 2 days later",
        "stuffing_success": "stuffing success",
    }
    for kind in ATTACK_KINDS:
        count, share = caught(data, verdicts, kind)
        superman = sum(a.uuid in flags for a in data.attacks if a.kind == kind) / max(count, 1)
        rows.append(f"{labels[kind]:<22}{count:>6}{_pct(share):>12}{'':>13}{_pct(superman):>11}")
    return rows


def summary_lines(
    data: Dataset, verdicts: Verdicts, flags: set[str], settings: dict[str, str], seed: int
) -> list[str]:
    missing = sum(e.uuid not in verdicts for e in data.events)
    ungraded = sum(verdicts.get(e.uuid) is None for e in data.events if e.success)
    honest = [e for e in data.events if e.kind in HONEST_KINDS]
    login_fp = sum(verdicts.get(e.uuid) == "impossible" for e in honest) / max(len(honest), 1)
    return [
        f"Globeguard detection bench — seed {seed}, {len(data.users):,} users, "
        f"{len(data.events):,} logins over 30 days, settings {settings or 'default'}",
        f"(events missing from the database: {missing}; successes without a verdict: {ungraded})",
        "",
        *_honest_rows(data, verdicts, flags),
        f"honest logins graded impossible: {100 * login_fp:.2f} % of {len(honest):,}",
        "",
        *_attack_rows(data, verdicts, flags),
        "",
        "caught = the attack login's verdict is suspicious or impossible; Superman = the naive "
        "rule flags it",
        "(consecutive logins, centres, > 500 mph from the preceding or to the subsequent login).",
    ]


def sweep_row(data: Dataset, verdicts: Verdicts, swept: dict[str, str], width: int) -> str:
    """One row of a sweep: the swept values, honest non-VPN users with an `impossible` and
    with a `suspicious`-or-worse verdict, and each kind of attack caught."""
    logins = _honest_logins(data)
    users = [u for u in data.users if not u.compromised and u.persona != "vpn"]
    setting = " ".join(f"{k}={v}" for k, v in swept.items())
    return (
        f"{setting:<{width}}"
        f"{_pct(_share(users, logins, verdicts=verdicts, levels=('impossible',))):>12}"
        f"{_pct(_share(users, logins, verdicts=verdicts, levels=FLAGGED)):>13}"
        + "".join(f"{_pct(caught(data, verdicts, k)[1]):>10}" for k in ATTACK_KINDS)
    )


def sweep_header(settings: dict[str, str], seed: int, users: int, width: int) -> list[str]:
    fixed = " ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
    return [
        f"Globeguard detection sweep — seed {seed}, {users:,} users; other settings: {fixed}",
        "(honest non-VPN users with >= 1 such verdict; share of each kind of attack caught)",
        f"{'swept':<{width}}{'impossible':>12}{'suspicious+':>13}"
        f"{'fast':>10}{'slow':>10}{'return':>10}{'stuffing':>10}",
    ]


def vpn_review_lines(
    vpn: list[User],
    reviewed: set[str],
    month: dict[str, list[Event]],
    week: list[Event],
    before: Verdicts,
    after: Verdicts,
) -> list[str]:
    next_week: dict[str, list[Event]] = {}
    for event in week:
        next_week.setdefault(event.subject, []).append(event)
    rows = [
        "VPN users: first flagged login of every other user reviewed `safe`, then the next week",
        f"{'group':<26}{'users':>6}{'month: flagged':>16}{'next week: impossible':>23}"
        f"{'suspicious+':>13}{'logins flagged':>16}",
    ]
    for name, group in (
        ("reviewed safe", [u for u in vpn if u.subject in reviewed]),
        ("not reviewed", [u for u in vpn if u.subject not in reviewed]),
    ):
        n = max(len(group), 1)
        in_month = sum(any(before.get(e.uuid) in FLAGGED for e in month[u.subject]) for u in group)
        logins = [e for u in group for e in next_week.get(u.subject, [])]
        impossible = sum(
            any(after.get(e.uuid) == "impossible" for e in next_week.get(u.subject, []))
            for u in group
        )
        flagged = sum(
            any(after.get(e.uuid) in FLAGGED for e in next_week.get(u.subject, [])) for u in group
        )
        login_share = sum(after.get(e.uuid) in FLAGGED for e in logins) / max(len(logins), 1)
        rows.append(
            f"{name:<26}{len(group):>6}{_pct(in_month / n):>16}{_pct(impossible / n):>23}"
            f"{_pct(flagged / n):>13}{_pct(login_share):>16}"
        )
    return rows
