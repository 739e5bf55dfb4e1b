"""NATS JetStream sink: publish to `<prefix>.<event type>` with `Nats-Msg-Id: <event id>`.

A message counts as delivered only once JetStream acknowledges it (the PubAck says a stream
stored it); a publish nobody stores, a timeout or a lost connection is a failed attempt and
is retried like a webhook. The message id makes JetStream drop a redelivery inside its
duplicate window (2 min by default), so a retry after a lost ack is not stored twice.

A subscription's stream is made (or found) when the subscription is created or updated
(`ensure_stream`), so nobody has to create it by hand before the first event.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from globeguard.events.sinks.port import Message, SendResult

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


class NatsSink:
    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._nc: Any = None
        self._js: Any = None
        self._connecting = asyncio.Lock()

    async def _jetstream(self) -> Any:
        async with self._connecting:
            if self._nc is None or self._nc.is_closed:
                import nats

                self._nc = await nats.connect(
                    self.url, connect_timeout=self.timeout_s, max_reconnect_attempts=-1
                )
                self._js = self._nc.jetstream(timeout=self.timeout_s)
            return self._js

    async def send(self, message: Message) -> SendResult:
        from nats.errors import Error as NatsError
        from nats.errors import NoRespondersError, TimeoutError
        from nats.js.errors import NoStreamResponseError

        began = time.perf_counter()
        subject = f"{message.target}.{message.event_type}"
        try:
            js = await self._jetstream()
            ack = await js.publish(subject, message.body, headers={"Nats-Msg-Id": message.event_id})
        except (NoRespondersError, NoStreamResponseError):
            # Made when the subscription was saved; someone deleted it since.
            note = f"no stream stores {subject}; resume the subscription to create it again"
            return SendResult(None, _ms(began), error=note)
        except TimeoutError:
            return SendResult(None, _ms(began), timed_out=True, error="publish ack timed out")
        except (NatsError, OSError) as exc:
            return SendResult(None, _ms(began), error=f"{type(exc).__name__}: {exc}"[:200])
        note = f"stream={ack.stream} seq={ack.seq}" + (" duplicate" if ack.duplicate else "")
        return SendResult(200, _ms(began), response=note)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()


async def _quiet(exc: Exception) -> None:
    """nats-py logs each failed connect with a traceback; the caller reports it once."""


def _ms(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)
