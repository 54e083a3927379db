"""uvicorn's WebSocket protocol, with a close that a client which stopped reading cannot stall.

uvicorn's sans-I/O protocol (what ``--ws auto`` picks when websockets is installed) waits
until the transport is writable before it writes any frame, the close frame included: once
a client stops reading, the kernel's buffers fill, the transport's buffer passes its
high-water mark and pauses writing, and a ``websocket.close`` from the app then waits
forever. If the app gives up, uvicorn closes the transport gracefully, which waits for the
buffer to be flushed to a client that never reads: the connection and its buffers stay.

``BoundedCloseProtocol`` changes two things, and only for a close the app sends:

- the close frame is written at once, behind whatever the transport still holds (at most
  its high-water mark plus one message, since every other frame waits for writability);
- ``CLOSE_WAIT_SECONDS`` later the connection is aborted if it is still there, however the
  closing handshake went: the transport's buffer is dropped and the socket closed, so
  nothing for that client stays in the server. A client that reads answers the close long
  before; one that stopped reading cannot, and one that answers without reading would
  otherwise hold the connection open too (uvicorn then closes gracefully, waiting for the
  buffer to flush).

``arqd serve`` runs uvicorn with it; ``arqd.api.events`` bounds its own wait for the close
too, for servers without it. It leans on the parent's internals (uvicorn 0.54:
``writable``, ``close_sent``, ``handshake_complete``, ``transport``);
tests/e2e/test_api_events_slow.py fails if they change under it.
"""

from __future__ import annotations

from asyncio import TimerHandle

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

CLOSE_WAIT_SECONDS = 5.0


class BoundedCloseProtocol(WebSocketsSansIOProtocol):
    """See the module docstring; pass as ``uvicorn.Config(ws=BoundedCloseProtocol)``."""

    abort_timer: TimerHandle | None = None

    async def send(self, message: ASGISendEvent) -> None:
        closing = message["type"] == "websocket.close" and self.handshake_complete
        if closing:
            # The parent's send begins with ``await self.writable.wait()``: set, it returns
            # without suspending, and the close frame is written and ``close_sent`` set in
            # the same step. Nothing else is sent after a close (no data: the app may not;
            # no pings: they stop once ``close_sent``), so writability stops mattering.
            self.writable.set()
        await super().send(message)
        if closing and self.close_sent and self.abort_timer is None:
            self.abort_timer = self.loop.call_later(CLOSE_WAIT_SECONDS, self.transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.abort_timer is not None:
            self.abort_timer.cancel()
        super().connection_lost(exc)
