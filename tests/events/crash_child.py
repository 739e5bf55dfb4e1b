"""Run by test_crash.py in its own process, which it then SIGKILLs itself.

commit  N   commit N events (each in its own transaction, as user changes are) and die
            before any dispatcher saw them
claim   -   claim every due delivery (committing the leases), start no send, and die
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

from globeguard.events.catalog import EventType
from globeguard.events.outbox import record
from globeguard.settings import Settings
from globeguard.wiring import build


async def main(mode: str, count: int) -> None:
    container = build(Settings(_env_file=None))
    if mode == "commit":
        for _ in range(count):
            async with container.db.transaction() as session:
                user = uuid.uuid4()
                await record(
                    session,
                    EventType.USER_CREATED,
                    actor="system",
                    aggregate_type="user",
                    aggregate_id=str(user),
                    user_id=user,
                    payload={"user_id": str(user)},
                )
    else:
        done = await container.dispatcher.claim_round()
        print(len(done.jobs), flush=True)
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
