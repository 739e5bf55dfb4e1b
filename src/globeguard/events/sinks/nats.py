"""NATS JetStream sink: publish to `<prefix>.<event type>` with `Nats-Msg-Id: <event id>`.

A message counts as delivered only once JetStream acknowledges it (the PubAck says a stream
stored it); a publish nobody stores, a timeout or a lost connection is a failed attempt and
is retried like a webhook. The message id makes JetStream drop a redelivery inside its
duplicate window (2 min by default), so a retry after a lost ack is not stored twice.

A subscription's stream is made (or found) when the subscription is saved (nats_streams.py),
so nobody has to create it by hand before the first event.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from globeguard.events.sinks.port import Message, SendResult


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


def _ms(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)
