"""A client that stops reading the event WebSocket: closed with 4008 in bounded time, then gone.

The client here is a plain socket with a small receive buffer: it does the handshake itself
(through websockets' sans-I/O ``ClientProtocol``, which also parses what the server sends)
and then reads nothing until the test says so, the way a stalled or hostile client behaves.
A library client would keep reading into buffers of its own behind the test's back.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from arqd.api import create_app
from arqd.api.events import Relay
from arqd.api.state import ApiState
from arqd.api.ws_protocol import CLOSE_WAIT_SECONDS
from conftest import RedisServer
from e2e.live import AUTH, LiveServer, settings_for, wait_until

SLOW_BUFFER = 20  # events a client may fall behind, when that is the bound under test
SHORT_SEND_TIMEOUT = 0.5  # seconds, when the send bound is the one under test
SLACK = 3.0  # seconds a busy test machine may add to a bound


@dataclass
class RawClient:
    """One WebSocket connection on a plain non-blocking socket, read only on demand."""

    sock: socket.socket
    protocol: ClientProtocol
    frames: list[Frame] = field(default_factory=list)

    @classmethod
    async def connect(cls, port: int, path: str) -> RawClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}{path}"))
        request = protocol.connect()
        for name, value in AUTH.items():
            request.headers[name] = value
        protocol.send_request(request)
        await loop.sock_sendall(sock, b"".join(protocol.data_to_send()))
        client = cls(sock, protocol)
        async with asyncio.timeout(10):
            response = await client.handshake()
        assert response.status_code == 101, response
        return client

    async def handshake(self) -> Response:
        """Read until the server's handshake response (and keep any frames after it)."""
        response = None
        while response is None:
            chunk = await asyncio.get_running_loop().sock_recv(self.sock, 4096)
            assert chunk, "the server ended the connection during the handshake"
            self.protocol.receive_data(chunk)
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    response = event
                elif isinstance(event, Frame):
                    self.frames.append(event)
        return response

    async def read_to_the_end(self, timeout: float = 10.0) -> None:
        """Read everything the server sends until it ends the connection (EOF or reset)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    chunk = await loop.sock_recv(self.sock, 65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    self.protocol.receive_eof()
                    break
                self.protocol.receive_data(chunk)
        self.frames += [e for e in self.protocol.events_received() if isinstance(e, Frame)]

    async def send_close(self) -> None:
        self.protocol.send_close(1000)
        await asyncio.get_running_loop().sock_sendall(
            self.sock, b"".join(self.protocol.data_to_send())
        )

    def close(self) -> None:
        self.sock.close()


@dataclass
class Bound:
    """The API with one bound on a slow client made small, and the tasks that cross it."""

    event_buffer: int
    send_timeout: float
    thousands: int  # thousands of tasks to enqueue: their events, to replay
    stalls: bool  # the transport's buffer is past its high-water mark when the close is sent


BOUNDS = [
    # The client falls 20 events behind long before anything blocks.
    pytest.param(Bound(SLOW_BUFFER, 10.0, 5, stalls=False), id="buffer-full"),
    # The events never fill the buffer, but over 5 MB of them fill the kernels' socket
    # buffers (the server's grows to 4 MB on Linux) and the transport's: a send waits.
    pytest.param(Bound(100_000, SHORT_SEND_TIMEOUT, 20, stalls=True), id="send-timed-out"),
]


@pytest.fixture(params=BOUNDS)
def bound(request: pytest.FixtureRequest) -> Bound:
    value: Bound = request.param
    return value


@pytest.fixture
def slow_bound(bound: Bound, redis_server: RedisServer) -> Iterator[LiveServer]:
    settings = settings_for(redis_server.url, events_max=100_000)
    app = create_app(settings, event_buffer=bound.event_buffer)
    state: ApiState = app.state.arqd
    state.send_timeout = bound.send_timeout
    server = LiveServer(app)
    server.start()
    yield server
    server.stop()


async def flood(server: LiveServer, thousands: int) -> None:
    """Enqueue tasks on queue ``flood``, whose ``queued`` events the client then replays."""
    async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as http:
        for _ in range(thousands):
            batch = {"tasks": [{"type": "echo", "queue": "flood", "payload": "x" * 200}] * 1000}
            assert (await http.post("/tasks/batch", json=batch)).status_code == 201


async def stalled_client(server: LiveServer, bound: Bound) -> tuple[RawClient, float]:
    """A client of the flood's events that reads nothing after the handshake, and how long
    the server took to close it as too slow."""
    await flood(server, bound.thousands)
    state: ApiState = server.app.state.arqd
    client = await RawClient.connect(server.port, "/events?queue=flood&last_event_id=0-0")
    started = time.monotonic()

    async def closed_for_being_slow() -> bool:
        return state.slow_consumers_closed == 1

    await wait_until(closed_for_being_slow, timeout=20)
    return client, time.monotonic() - started


async def let_go(server: LiveServer, client: RawClient, timeout: float) -> None:
    """Wait until uvicorn holds no connection from ``client``."""
    address = client.sock.getsockname()

    async def gone() -> bool:
        connections = server.server.server_state.connections
        return all(getattr(c, "client", None) != address for c in connections)

    await wait_until(gone, timeout)


def assert_holds_nothing(server: LiveServer) -> None:
    """No request or WebSocket task is left in the server, and no client's relay is alive."""
    assert not server.server.server_state.tasks
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Relay)]


async def test_a_client_that_stops_reading_gets_4008_then_the_connection_ends(
    slow_bound: LiveServer, bound: Bound
) -> None:
    client, took = await stalled_client(slow_bound, bound)
    try:
        # Reading again now, the client gets what was queued for it, the close frame last,
        # then the end of the connection: it never answered the close, so the server gave
        # up on the closing handshake and ended it.
        await client.read_to_the_end(timeout=CLOSE_WAIT_SECONDS + SLACK)
        await let_go(slow_bound, client, timeout=1)
    finally:
        client.close()
    assert took < SLACK + SHORT_SEND_TIMEOUT
    assert client.frames, "the client got nothing at all"
    last = client.frames[-1]
    assert last.opcode is Opcode.CLOSE
    close = Close.parse(last.data)
    assert close.code == 4008
    assert close.reason.startswith("too slow")
    assert all(f.opcode is Opcode.TEXT for f in client.frames[:-1])
    assert_holds_nothing(slow_bound)


@pytest.mark.parametrize("answers", [False, True], ids=["silent", "answers-unread"])
async def test_a_client_that_never_reads_again_is_cut_off_after_the_close_wait(
    slow_bound: LiveServer, bound: Bound, answers: bool
) -> None:
    client, _ = await stalled_client(slow_bound, bound)
    closed = time.monotonic()
    try:
        if answers:  # a close of its own, sent without reading the server's: no way out
            await client.send_close()
        await let_go(slow_bound, client, timeout=CLOSE_WAIT_SECONDS + SLACK)
        took = time.monotonic() - closed
        # What the kernels hold still reaches the client (the close frame too, if it got
        # that far); what the server's transport held is gone. Then the connection ends.
        await client.read_to_the_end()
    finally:
        client.close()
    assert took < CLOSE_WAIT_SECONDS + SLACK
    if not answers:  # the server waited for an answer
        assert took > CLOSE_WAIT_SECONDS - 0.5
    if bound.stalls:  # the close frame waited behind data, and was dropped with it
        assert client.protocol.close_rcvd is None
    assert_holds_nothing(slow_bound)
