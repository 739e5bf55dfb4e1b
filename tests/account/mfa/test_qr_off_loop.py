"""The enrolment's QR code (~10 ms of pure Python) is drawn on a worker thread, so the event
loop keeps serving, and before the enrolment's write transaction begins, so the (SQLite)
writer is not held while it is drawn."""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event

from globeguard.account.mfa import service as mfa_service
from tests.account.mfa.support import start
from tests.helpers import bearer, signup

# Set around the request: the app's background loops (outbox delivery, jobs) begin write
# transactions of their own.
_traced: ContextVar[bool] = ContextVar("traced", default=False)


async def test_the_qr_code_is_drawn_off_the_loop_before_the_write(
    client, container, clock, monkeypatch
):
    tokens = await signup(client, "quentin")
    seen: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    real_qr = mfa_service.qr_svg

    def qr(uri: str) -> str:
        svg = real_qr(uri)
        seen.append(("qr", threading.get_ident() == loop_thread))
        return svg

    def on_begin(conn: Any) -> None:
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        if _traced.get() and not autocommit:
            seen.append(("begin", threading.get_ident() == loop_thread))

    monkeypatch.setattr(mfa_service, "qr_svg", qr)
    writer = container.db.engine.sync_engine
    event.listen(writer, "begin", on_begin)
    token = _traced.set(True)
    try:
        started = await start(client, bearer(tokens))
    finally:
        _traced.reset(token)
        event.remove(writer, "begin", on_begin)

    assert started["qr_svg"].lstrip().startswith("<svg")
    steps = [name for name, _ in seen]
    assert "qr" in steps and "begin" in steps, seen
    assert steps.index("qr") < steps.index("begin"), f"drawn inside the transaction: {seen}"
    assert ("qr", False) in seen, "drawn on the event loop's thread"
