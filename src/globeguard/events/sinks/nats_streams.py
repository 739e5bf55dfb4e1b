"""The JetStream stream of a `nats` subscription: found, or created, when the subscription is
saved (and when it is resumed), so that its first event has somewhere to go. Subscriptions
call it directly, like the SSRF guard: it is a check of a target, not a way to deliver."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)
_NOT_IN_STREAM_NAME = re.compile(r"[^A-Za-z0-9_-]")


class StreamUnavailable(Exception):
    """No stream stores the subscription's subjects and none could be made. Safe to show."""


@dataclass(frozen=True, slots=True)
class StreamCheck:
    name: str
    created: bool


def stream_name(prefix: str) -> str:
    """`GLOBEGUARD_<PREFIX>_<hash>`: dots cannot be in a stream name, and the hash keeps
    `a.b` and `a_b` (which read the same once the dot is replaced) apart."""
    readable = _NOT_IN_STREAM_NAME.sub("_", prefix).upper()[:64]
    return f"GLOBEGUARD_{readable}_{hashlib.sha256(prefix.encode()).hexdigest()[:8]}"


async def ensure_stream(url: str, prefix: str, *, timeout_s: float) -> StreamCheck:
    """Find the stream that stores `<prefix>.>`, or create one (file storage, limits
    retention: the server's defaults). Raises StreamUnavailable when neither is possible."""
    import nats
    from nats.errors import Error as NatsError
    from nats.js.errors import NotFoundError

    subjects = f"{prefix}.>"
    try:
        # One try at each server: nats-py's initial connect otherwise keeps retrying.
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=timeout_s,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                error_cb=_quiet,
            ),
            timeout_s,
        )
    except (TimeoutError, NatsError, OSError) as exc:
        log.warning("NATS server %s unreachable while checking %s: %r", url, subjects, exc)
        raise StreamUnavailable("the NATS server cannot be reached") from exc
    try:
        js = nc.jetstream(timeout=timeout_s)
        try:
            return StreamCheck(await js.find_stream_name_by_subject(subjects), created=False)
        except NotFoundError:
            pass
        info = await js.add_stream(name=stream_name(prefix), subjects=[subjects])
        log.info("created JetStream stream %s for %s", info.config.name, subjects)
        return StreamCheck(str(info.config.name), created=True)
    except (TimeoutError, NatsError, OSError) as exc:
        log.warning("no JetStream stream for %s: %r", subjects, exc)
        reason = str(exc) or type(exc).__name__
        raise StreamUnavailable(
            f"no JetStream stream stores {subjects} and none could be created "
            f"(is JetStream enabled?): {reason}"[:300]
        ) from exc
    finally:
        await nc.close()


async def _quiet(exc: Exception) -> None:
    """nats-py logs each failed connect with a traceback; the caller reports it once."""
