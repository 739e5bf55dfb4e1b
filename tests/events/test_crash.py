"""A process SIGKILLed between commit and dispatch loses nothing: after a restart every event
is delivered. Also when it dies holding leases on claimed deliveries. On both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from globeguard.events.models import OutboxEvent
from tests.events.support import FakeClock, Receiver, dispatcher, subscribe

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _run_child(container, *args: str) -> subprocess.CompletedProcess[str]:
    settings = container.settings
    env = {
        **os.environ,
        "GLOBEGUARD_DB__URL": settings.db.url,
        "GLOBEGUARD_DATA_DIR": str(settings.data_dir),
        "GLOBEGUARD_SECRET_KEY": settings.secret_key.get_secret_value(),
        "GLOBEGUARD_DB__MIGRATE_ON_START": "false",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(CHILD), *args],
        env=env,
        cwd=settings.data_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "committed" in done.stdout
    return done


async def _event_ids(container) -> list[str]:
    async with container.db.read() as session:
        return list(await session.scalars(select(OutboxEvent.event_id).order_by(OutboxEvent.seq)))


async def test_killed_after_commit_before_dispatch_loses_nothing(app, container):
    await subscribe(container, "a")
    await subscribe(container, "b", event_types=["user.created"])
    _run_child(container, "commit", "25")
    committed = await _event_ids(container)
    assert len(committed) == 25
    receiver = Receiver()
    # The restarted process: a fresh dispatcher over the same database.
    await dispatcher(container, receiver, FakeClock()).drain()
    assert sorted(receiver.ids("a.test")) == sorted(committed)
    assert sorted(receiver.ids("b.test")) == sorted(committed)


async def test_killed_holding_leases_redelivers_after_they_expire(app, container):
    await subscribe(container, "a")
    _run_child(container, "commit", "10")
    done = _run_child(container, "claim", "0")
    assert done.stdout.split()[0] == "10"  # it died owning all ten
    clock = FakeClock()
    receiver = Receiver()
    pump = dispatcher(container, receiver, clock)
    await pump.drain()
    assert receiver.requests == []  # leases still held by the dead process
    # The child ran on the real clock, a moment after this one started.
    clock.advance(container.settings.delivery.lease + timedelta(minutes=1))
    await pump.drain()
    assert sorted(receiver.ids()) == sorted(await _event_ids(container))
