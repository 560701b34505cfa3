"""The connections a check runs on: real ones, a sans-I/O peer, and what crossed the wire.

Strategy: every connection a check opens is new, and goes through the
library's real opening handshake over :func:`trio.testing.memory_stream_pair`:
:func:`~trio_wsext.wrap_client_stream` on one end and
:func:`~trio_wsext.wrap_server_stream` plus ``accept()`` on the other
(:func:`open_pair`). Where a check needs what no connection method offers --
sending a message in fragments, or seeing the pings and close frames a
connection received -- one end is a :class:`Peer` instead: the library's
sans-I/O :class:`~trio_wsext.handshake.ClientHandshake` or
:class:`~trio_wsext.handshake.ServerHandshake` and
:class:`~trio_wsext.protocol.Protocol`, driven by hand over the same kind of
stream, with extensions made by the same factories (:func:`open_peer_pair`).

Both ends' streams record every byte they send (:class:`RecordingStream`), so
that a check can parse the frames as they crossed the wire
(:meth:`Wire.frames`) with the library's own frame parser.

A :class:`CheckRun` is one check's state: the factories under test, what the
observers recorded (:class:`~trio_wsext.testing.probes.Probes`), the step the
check is at (for a timeout's message), and :meth:`CheckRun.fail`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Final, NoReturn, TypeVar

import attrs
import trio
import trio.testing

from ..client import wrap_client_stream
from ..connection import WebSocketConnection
from ..exceptions import ProtocolError
from ..extensions.base import ClientExtensionFactory, ServerExtensionFactory
from ..frames import Frame, FrameParser
from ..handshake import ClientHandshake, ServerHandshake
from ..protocol import Event, Protocol, Side
from ..server import wrap_server_stream
from .failures import CheckNotApplicable, ExtensionCheckFailed
from .probes import ObservedClientFactory, ObservedServerFactory, Probes, Rewrite, SideName

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "CheckRun",
    "HandshakeFailed",
    "Pair",
    "Peer",
    "PeerPair",
    "RecordingStream",
    "Wire",
    "open_pair",
    "open_peer_pair",
    "other",
    "unwrap",
    "wire_frames",
]

#: The ``max_message_size`` of the kit's connections unless a check sets one:
#: the library's default (1 MiB), which the largest round-trip message fills.
DEFAULT_MAX_MESSAGE_SIZE: Final = 2**20

#: Seconds for the opening handshake and the closing handshake of the kit's
#: connections: all in memory, so a handshake that takes this long is stuck.
_HANDSHAKE_TIMEOUT: Final = 10

ClientEnd = TypeVar("ClientEnd")
ServerEnd = TypeVar("ServerEnd")

#: The most a peer reads at once: the library's default receive size.
_PEER_RECEIVE: Final = 65536


def unwrap(exc: BaseException) -> BaseException:
    """Find what a check raised inside trio's exception groups.

    A failure raised in a nursery's task (or body) reaches the check's
    caller inside an :class:`ExceptionGroup`; the first
    :class:`ExtensionCheckFailed` in it is the failure to report (then a
    failed handshake, a skip, a timeout); a group of one other exception is
    that exception.
    """
    if isinstance(exc, BaseExceptionGroup):
        for wanted in (
            ExtensionCheckFailed,
            HandshakeFailed,
            CheckNotApplicable,
            trio.TooSlowError,
        ):
            match = exc.subgroup(lambda e, wanted=wanted: isinstance(e, wanted))  # type: ignore[misc]
            if match is not None:
                return unwrap(match.exceptions[0])
        if len(exc.exceptions) == 1:
            return unwrap(exc.exceptions[0])
    return exc


def other(side: SideName) -> SideName:
    """Return the other side."""
    return "server" if side == "client" else "client"


class RecordingStream(trio.abc.Stream):
    """A stream that keeps a copy of every byte sent through it.

    Args:
        inner: the stream to wrap (one end of a memory stream pair).
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        #: Every byte sent, handshake included.
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Record ``data``, then send it."""
        self.sent += data
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait as the wrapped stream does."""
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Receive from the wrapped stream."""
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self.inner.aclose()


@attrs.define(eq=False)
class Wire:
    """What each end of one connection sent, as recorded."""

    client: RecordingStream
    """The client's end."""
    server: RecordingStream
    """The server's end."""

    def frames(self, sender: SideName) -> list[Frame]:
        """Parse the frames ``sender`` sent after its handshake head (unmasked).

        Raises:
            ProtocolError: a frame breaks RFC 6455's framing (a control frame
                over 125 bytes, a reserved opcode, the wrong masking).
        """
        data = bytes((self.client if sender == "client" else self.server).sent)
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            return []
        parser = FrameParser(require_mask=sender == "client")
        parser.feed(data[head_end + 4 :])
        frames = []
        while (frame := parser.next_frame()) is not None:
            frames.append(frame)
        return frames


@attrs.define(eq=False)
class CheckRun:
    """One check's state: the factories under test, what they did, where the check is."""

    name: str
    """The check's name."""
    client_factory: ClientExtensionFactory
    """The user's client factory."""
    server_factory: ServerExtensionFactory
    """The user's server factory."""
    probes: Probes = attrs.Factory(Probes)
    """What the observed factories and extensions recorded."""
    wires: list[Wire] = attrs.Factory(list)
    """Every connection's wire, in the order opened."""
    step: str = "starting"
    """What the check is doing now (a timeout names it)."""

    def fail(self, problem: str, fix: str, cause: BaseException | None = None) -> NoReturn:
        """Raise :class:`ExtensionCheckFailed` for this check.

        Args:
            problem: what went wrong.
            fix: what to change.
            cause: the exception the extension raised, if it did: chained as
                ``__cause__``, so that a traceback shows where in the
                extension it came from.
        """
        raise ExtensionCheckFailed(self.name, problem, fix) from cause

    @property
    def extension_name(self) -> str:
        """The name the client factory offers."""
        return self.client_factory.name

    def client(self, rewrite: Rewrite | None = None) -> ObservedClientFactory:
        """Return the client factory under test, observed."""
        return ObservedClientFactory(self.client_factory, self.probes, rewrite)

    def server(self, rewrite: Rewrite | None = None) -> ObservedServerFactory:
        """Return the server factory under test, observed."""
        return ObservedServerFactory(self.server_factory, self.probes, rewrite)


class HandshakeFailed(Exception):
    """The opening handshake of a kit's connection failed.

    Args:
        client_error: what the client side raised, if it did.
        server_error: what the server side raised, if it did.
    """

    def __init__(self, client_error: BaseException | None, server_error: BaseException | None):
        super().__init__(client_error, server_error)
        self.client_error = client_error
        self.server_error = server_error


@attrs.define(eq=False)
class Pair:
    """Two running connections, client and server."""

    client: WebSocketConnection
    """The client's connection."""
    server: WebSocketConnection
    """The server's connection."""
    wire: Wire
    """What each sent."""

    def on(self, side: SideName) -> WebSocketConnection:
        """Return the connection of ``side``."""
        return self.client if side == "client" else self.server


class Peer:
    """One end of a connection as a sans-I/O :class:`~trio_wsext.protocol.Protocol`, by hand.

    Args:
        side: which end it plays.
        protocol: the protocol, with the negotiated extensions.
        stream: its stream.
    """

    def __init__(self, side: SideName, protocol: Protocol, stream: trio.abc.Stream) -> None:
        self.side = side
        self.protocol = protocol
        self.stream = stream

    async def flush(self) -> None:
        """Send whatever the protocol has framed."""
        data = self.protocol.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def next_event(self) -> Event:
        """Return the next event, reading as needed.

        Raises:
            EOFError: the stream ended first.
        """
        while True:
            event = self.protocol.next_event()
            if event is not None:
                return event
            if self.protocol.eof_received:
                raise EOFError("the stream ended")
            data = await self.stream.receive_some(_PEER_RECEIVE)
            self.protocol.receive_data(data)


@attrs.define(eq=False)
class PeerPair:
    """A running connection and a :class:`Peer` at the other end."""

    real: WebSocketConnection
    """The connection (on the side the check chose)."""
    peer: Peer
    """The sans-I/O end."""
    wire: Wire
    """What each sent."""


def _streams(run: CheckRun) -> tuple[RecordingStream, RecordingStream, Wire]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    wire = Wire(RecordingStream(client_stream), RecordingStream(server_stream))
    run.wires.append(wire)
    return wire.client, wire.server, wire


async def _serve(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    *,
    factories: Sequence[ServerExtensionFactory],
    max_message_size: int,
) -> WebSocketConnection:
    request = await wrap_server_stream(
        nursery,
        stream,
        max_message_size=max_message_size,
        extensions=list(factories),
        compression=None,
        connect_timeout=_HANDSHAKE_TIMEOUT,
        disconnect_timeout=_HANDSHAKE_TIMEOUT,
        ping_interval=None,
    )
    return await request.accept()


async def _connect(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    *,
    factories: Sequence[ClientExtensionFactory],
    max_message_size: int,
) -> WebSocketConnection:
    return await wrap_client_stream(
        nursery,
        stream,
        "example.com",
        "/",
        extensions=list(factories),
        compression=None,
        max_message_size=max_message_size,
        connect_timeout=_HANDSHAKE_TIMEOUT,
        disconnect_timeout=_HANDSHAKE_TIMEOUT,
        ping_interval=None,
    )


async def _peer_client(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    *,
    factories: Sequence[ClientExtensionFactory],
    max_message_size: int,
) -> Peer:
    handshake = ClientHandshake("example.com", 80, "/", extensions=list(factories))
    await stream.send_all(handshake.request_bytes())
    while True:
        result = handshake.receive_data(bytes(await stream.receive_some(_PEER_RECEIVE)))
        if result is not None:
            break
    protocol = Protocol(Side.CLIENT, result.extensions, max_message_size=max_message_size)
    if result.extra_data:
        protocol.receive_data(result.extra_data)
    return Peer("client", protocol, stream)


async def _peer_server(
    nursery: trio.Nursery,
    stream: trio.abc.Stream,
    *,
    factories: Sequence[ServerExtensionFactory],
    max_message_size: int,
) -> Peer:
    handshake = ServerHandshake()
    while True:
        request = handshake.receive_data(bytes(await stream.receive_some(_PEER_RECEIVE)))
        if request is not None:
            break
    response, extensions, _ = handshake.accept(request, extensions=list(factories))
    await stream.send_all(response)
    protocol = Protocol(Side.SERVER, extensions, max_message_size=max_message_size)
    if request.extra_data:
        protocol.receive_data(request.extra_data)
    return Peer("server", protocol, stream)


@asynccontextmanager
async def _ends(
    run: CheckRun,
    start_client: Callable[[trio.Nursery, trio.abc.Stream], Awaitable[ClientEnd]],
    start_server: Callable[[trio.Nursery, trio.abc.Stream], Awaitable[ServerEnd]],
) -> AsyncIterator[tuple[ClientEnd, ServerEnd, Wire]]:
    """Run both opening handshakes at once; tear both ends down on exit.

    A failure on either side closes that side's stream, so that the other
    side fails at once rather than at its timeout.

    Raises:
        HandshakeFailed: with what each side raised.
    """
    client_stream, server_stream, wire = _streams(run)
    failure: HandshakeFailed | None = None
    async with trio.open_nursery() as nursery:
        server_box: list[ServerEnd | Exception] = []
        server_done = trio.Event()

        async def serve() -> None:
            try:
                server_box.append(await start_server(nursery, server_stream))
            except Exception as exc:
                server_box.append(exc)
                await trio.aclose_forcefully(server_stream)
            finally:
                server_done.set()

        nursery.start_soon(serve)
        try:
            with trio.fail_after(_HANDSHAKE_TIMEOUT):
                client_end = await start_client(nursery, client_stream)
        except Exception as exc:
            await trio.aclose_forcefully(client_stream)
            await server_done.wait()
            server_error = next((e for e in server_box if isinstance(e, Exception)), None)
            failure = HandshakeFailed(exc, server_error)
        else:
            await server_done.wait()
            server_end = server_box[0]
            if isinstance(server_end, Exception):
                failure = HandshakeFailed(None, server_end)
            else:
                try:
                    yield client_end, server_end, wire
                finally:
                    nursery.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    if failure is not None:
        # Raised here, outside the nursery, so that it is not wrapped in a group.
        raise failure


@asynccontextmanager
async def open_pair(
    run: CheckRun,
    client_factories: Sequence[ClientExtensionFactory],
    server_factories: Sequence[ServerExtensionFactory],
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AsyncIterator[Pair]:
    """Open a client and a server connection to each other; tear both down on exit.

    Raises:
        HandshakeFailed: the opening handshake failed on either side.
    """
    connect = functools.partial(
        _connect, factories=client_factories, max_message_size=max_message_size
    )
    serve = functools.partial(
        _serve, factories=server_factories, max_message_size=max_message_size
    )
    async with _ends(run, connect, serve) as (client, server, wire):
        yield Pair(client, server, wire)


@asynccontextmanager
async def open_peer_pair(
    run: CheckRun,
    client_factories: Sequence[ClientExtensionFactory],
    server_factories: Sequence[ServerExtensionFactory],
    *,
    real: SideName,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> AsyncIterator[PeerPair]:
    """Open a connection on side ``real`` and a :class:`Peer` on the other.

    Raises:
        HandshakeFailed: the opening handshake failed on either side.
    """
    if real == "client":
        connect = functools.partial(
            _connect, factories=client_factories, max_message_size=max_message_size
        )
        answer = functools.partial(
            _peer_server, factories=server_factories, max_message_size=max_message_size
        )
        async with _ends(run, connect, answer) as (client, peer, wire):
            yield PeerPair(client, peer, wire)
    else:
        offer = functools.partial(
            _peer_client, factories=client_factories, max_message_size=max_message_size
        )
        serve = functools.partial(
            _serve, factories=server_factories, max_message_size=max_message_size
        )
        async with _ends(run, offer, serve) as (peer, server, wire):
            yield PeerPair(server, peer, wire)


def wire_frames(run: CheckRun, wire: Wire, sender: SideName) -> list[Frame]:
    """Parse what ``sender`` sent on ``wire``; fail the check on a frame RFC 6455 refuses."""
    try:
        return wire.frames(sender)
    except ProtocolError as exc:
        run.fail(
            f"the {sender} sent an invalid frame: {exc}",
            "encode must return a frame that RFC 6455 allows: the opcode and fin it "
            "was given, and at most 125 bytes for a PING, PONG or CLOSE frame.",
        )
