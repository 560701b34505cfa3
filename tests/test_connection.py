"""WebSocketConnection over in-memory streams: messages, pings, closing, failures, backpressure."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import trio
import trio.testing
from helpers import open_connection_pair, open_raw_pair

from trio_wsext.connection import (
    RECEIVE_SIZE,
    SCHEDULE_EVERY,
    THREAD_SEND_THRESHOLD,
    ConnectionStatistics,
    WebSocketConnection,
)
from trio_wsext.engine import CLIENT_CLOSE_WAIT
from trio_wsext.exceptions import ConnectionClosed, PayloadTooBig, ProtocolError
from trio_wsext.extensions.base import Extension
from trio_wsext.frames import Close, CloseReason, Frame, Opcode
from trio_wsext.options import ConnectionOptions

Pair = tuple[WebSocketConnection, WebSocketConnection]


def _close_frame(code: int, reason: str = "") -> Frame:
    return Frame(Opcode.CLOSE, Close(code, reason).serialize())


async def _collect(connection: WebSocketConnection, into: list[str | bytes]) -> None:
    async for message in connection:
        into.append(message)


def _sender_and_receiver(pair: Pair, sender: str) -> Pair:
    client, server = pair
    return (client, server) if sender == "client" else (server, client)


# -- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["client", "server"])
@pytest.mark.parametrize(
    "message",
    ["", "héllo wörld", "x" * 70_000, b"", b"\x00\xff\x80", b"y" * 70_000],
    ids=["empty-text", "utf8-text", "70k-text", "empty-binary", "binary", "70k-binary"],
)
async def test_message_round_trips_unchanged(
    connection_pair: Pair, sender: str, message: str | bytes
) -> None:
    """A text or binary message of any size arrives as it was sent, either way."""
    a, b = _sender_and_receiver(connection_pair, sender)
    await a.send_message(message)
    assert await b.get_message() == message


@pytest.mark.parametrize(
    "make", [bytearray, memoryview], ids=["bytearray", "memoryview-of-bytearray"]
)
async def test_send_message_copies_a_mutable_buffer(connection_pair: Pair, make: Any) -> None:
    """A buffer changed right after send_message returns is sent as it was."""
    client, server = connection_pair
    buffer = bytearray(b"abc")
    await client.send_message(make(buffer))
    buffer[:] = b"xyz"
    assert await server.get_message() == b"abc"


async def test_send_message_refuses_a_non_message(connection_pair: Pair) -> None:
    """Anything but str, bytes-like or an iterable of them is a TypeError naming the type."""
    client, _ = connection_pair
    with pytest.raises(
        TypeError,
        match=r"^message must be str, bytes-like, or an iterable or async iterable of them,"
        r" not int$",
    ):
        await client.send_message(42)  # type: ignore[arg-type]


async def test_send_message_refuses_a_non_bool_compress(connection_pair: Pair) -> None:
    """``compress`` is True, False or None."""
    client, _ = connection_pair
    with pytest.raises(TypeError, match=r"^compress must be True, False or None, not 'no'$"):
        await client.send_message("x", compress="no")  # type: ignore[arg-type]


@pytest.mark.parametrize("lockstep", [False, True], ids=["buffered", "lockstep"])
async def test_concurrent_send_message_keeps_messages_whole_and_in_task_order(
    lockstep: bool,
) -> None:
    """Twenty tasks sending at once: every message intact, each task's in order."""
    tasks, per_task = 20, 5
    async with open_connection_pair(lockstep=lockstep) as (client, server):

        async def sender(task: int) -> None:
            for index in range(per_task):
                await client.send_message(f"{task}:{index}:" + "x" * (997 * (task + 1)))

        received: list[str | bytes] = []
        async with trio.open_nursery() as nursery:
            for task in range(tasks):
                nursery.start_soon(sender, task)
            for _ in range(tasks * per_task):
                received.append(await server.get_message())
    seen: dict[int, list[int]] = {}
    for message in received:
        assert isinstance(message, str)
        number, index, body = message.split(":")
        assert body == "x" * (997 * (int(number) + 1))
        seen.setdefault(int(number), []).append(int(index))
    assert seen == {task: list(range(per_task)) for task in range(tasks)}


async def test_cancelled_get_message_loses_no_message(autojump_clock: trio.abc.Clock) -> None:
    """get_message cancelled while waiting, again and again: every message still arrives."""
    async with open_connection_pair() as (client, server):

        async def send_slowly() -> None:
            for index in range(20):
                await trio.sleep(1.5)
                await client.send_message(str(index))

        received: list[str | bytes] = []
        cancelled = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_slowly)
            while len(received) < 20:
                with trio.move_on_after(1) as scope:
                    received.append(await server.get_message())
                cancelled += scope.cancelled_caught
    assert received == [str(index) for index in range(20)]
    assert cancelled >= 10


async def _queue_messages(
    client: WebSocketConnection, server: WebSocketConnection, count: int
) -> None:
    """Send ``count`` messages and wait until the server has queued them all."""
    for index in range(count):
        await client.send_message(str(index))
    await trio.testing.wait_all_tasks_blocked()


async def test_get_message_of_a_queued_message_honours_cancellation() -> None:
    """A cancelled scope: get_message raises Cancelled with a message queued, and keeps it."""
    async with open_connection_pair() as (client, server):
        await _queue_messages(client, server, 2)
        for _ in range(2 * SCHEDULE_EVERY):  # every call, not one in SCHEDULE_EVERY
            with trio.CancelScope() as scope:
                scope.cancel()
                await server.get_message()
            assert scope.cancelled_caught
        assert [await server.get_message(), await server.get_message()] == ["0", "1"]


async def test_send_message_honours_cancellation_and_queues_nothing() -> None:
    """A cancelled scope: send_message raises Cancelled every time and sends nothing."""
    async with open_raw_pair() as (connection, peer):
        for _ in range(2 * SCHEDULE_EVERY):
            with trio.CancelScope() as scope:
                scope.cancel()
                await connection.send_message("dropped")
            assert scope.cancelled_caught
        await connection.send_message("kept")
        assert await peer.receive_frame() == Frame(Opcode.TEXT, b"kept")


class _StepCounter(trio.abc.Instrument):
    """Counts the scheduler steps of one task: each is a yield to the scheduler."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += task is self.task


@pytest.mark.parametrize("method", ["get_message", "send_message"])
async def test_calls_that_do_not_wait_yield_every_schedule_every(method: str) -> None:
    """Calls that find their work done yield to the scheduler once every SCHEDULE_EVERY."""
    # Within the queue's room and the write limit, so no call below waits.
    count = SCHEDULE_EVERY
    async with open_connection_pair(message_queue_size=count) as (client, server):
        if method == "get_message":
            await _queue_messages(client, server, count)
        else:
            await trio.testing.wait_all_tasks_blocked()
        counter = _StepCounter(trio.lowlevel.current_task())
        trio.lowlevel.add_instrument(counter)
        try:
            for index in range(count):
                if method == "get_message":
                    assert await server.get_message() == str(index)
                else:
                    await client.send_message(str(index))
                assert counter.steps == (index + 1) // SCHEDULE_EVERY
        finally:
            trio.lowlevel.remove_instrument(counter)


# -- pings -------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["client", "server"])
@pytest.mark.parametrize("payload", [None, b"", b"abc"], ids=["random", "empty", "given"])
async def test_ping_returns_when_the_pong_arrives(
    connection_pair: Pair, sender: str, payload: bytes | None
) -> None:
    """The peer answers a ping by itself and ping() returns."""
    a, _ = _sender_and_receiver(connection_pair, sender)
    with trio.fail_after(1):
        await a.ping(payload)


@pytest.mark.parametrize("client", [True, False], ids=["client", "server"])
async def test_ping_from_the_peer_is_answered_without_the_application(client: bool) -> None:
    """A ping gets a pong with the same payload while nobody calls get_message."""
    async with open_raw_pair(client=client) as (_, peer):
        await peer.send_frame(Frame(Opcode.PING, b"are you there"))
        assert await peer.receive_frame() == Frame(Opcode.PONG, b"are you there")


async def test_ping_refuses_a_payload_already_in_flight(autojump_clock: trio.abc.Clock) -> None:
    """Two pings with one payload cannot be told apart: ValueError."""
    async with open_raw_pair() as (connection, _), trio.open_nursery() as nursery:
        nursery.start_soon(connection.ping, b"same")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(
            ValueError, match=r"^a ping with payload b'same' is already in flight$"
        ):
            await connection.ping(b"same")
        nursery.cancel_scope.cancel()


async def test_ping_refuses_a_payload_over_125_bytes(connection_pair: Pair) -> None:
    """RFC 6455 §5.5: control frames carry at most 125 bytes."""
    client, _ = connection_pair
    with pytest.raises(ValueError, match=r"^ping payload is 126 bytes, more than 125$"):
        await client.ping(b"x" * 126)
    with pytest.raises(ValueError, match=r"^pong payload is 126 bytes, more than 125$"):
        await client.pong(b"x" * 126)


async def test_pong_answers_every_earlier_ping(autojump_clock: trio.abc.Clock) -> None:
    """A pong for the second ping also wakes the first (RFC 6455 §5.5.3)."""
    answered: list[bytes] = []
    async with open_raw_pair() as (connection, peer):

        async def ping(payload: bytes) -> None:
            await connection.ping(payload)
            answered.append(payload)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ping, b"1")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ping, b"2")
            assert (await peer.receive_frame()).data == b"1"
            assert (await peer.receive_frame()).data == b"2"
            await peer.send_frame(Frame(Opcode.PONG, b"2"))
    assert sorted(answered) == [b"1", b"2"]


async def test_unsolicited_pong_is_ignored_by_the_peer(connection_pair: Pair) -> None:
    """A pong nobody asked for is no message and breaks nothing."""
    client, server = connection_pair
    await client.pong(b"heartbeat")
    await client.send_message("after")
    assert await server.get_message() == "after"
    await server.ping(b"still fine")


async def test_ping_raises_connection_closed_when_the_connection_closes(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A ping waiting for its pong raises ConnectionClosed when the peer closes."""
    async with open_raw_pair() as (connection, peer), trio.open_nursery() as nursery:
        nursery.start_soon(peer.send_frame, _close_frame(1001, "bye"))
        with pytest.raises(ConnectionClosed, match=r"^1001 \(GOING_AWAY\) bye$"):
            await connection.ping(b"p")


# -- keepalive ---------------------------------------------------------------------------


async def test_keepalive_keeps_an_idle_connection_open(autojump_clock: trio.abc.Clock) -> None:
    """Pings every 5 s answered in time: a minute later both ends are open."""
    async with open_connection_pair(ping_interval=5, ping_timeout=5) as (client, server):
        await trio.sleep(60)
        assert client.closed is None
        assert server.closed is None
        # 12 pings each way, 6-byte headers + 4-byte payload (+ 4-byte mask from the client)
        assert client.statistics().wire_bytes_sent >= 12 * 10


async def test_keepalive_deadline_on_a_reader_at_a_full_queue_loses_nothing(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The keepalive interrupts a reader waiting for queue room: it pings, then goes on whole."""
    async with open_connection_pair(ping_interval=1, ping_timeout=30, message_queue_size=1) as (
        client,
        server,
    ):
        for index in range(5):
            await client.send_message(f"{index}:" + "x" * 1000)
        await trio.sleep(10)  # the server's reader waits for room; its deadline fires meanwhile
        assert server.statistics().wire_bytes_sent >= 6  # its keepalive ping went out
        with trio.fail_after(1):  # a lost message would leave get_message waiting
            received = [await server.get_message() for _ in range(5)]
        assert received == [f"{index}:" + "x" * 1000 for index in range(5)]
        assert server.closed is None


async def test_keepalive_pings_every_interval_while_messages_flow(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Traffic does not hold pings back: one per interval, whatever else is received."""
    async with open_raw_pair(ping_interval=5, ping_timeout=5) as (connection, peer):
        pings = 0

        async def answer_pings() -> None:
            nonlocal pings
            while True:
                frame = await peer.receive_frame()
                assert frame.opcode is Opcode.PING
                await peer.send_frame(Frame(Opcode.PONG, frame.data))
                pings += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_pings)
            for second in range(32):
                await peer.send_frame(Frame(Opcode.TEXT, str(second).encode()))
                assert await connection.get_message() == str(second)
                await trio.sleep(1)
            nursery.cancel_scope.cancel()
        assert pings == 6  # at 5, 10, ... 30 s
        assert connection.closed is None


@pytest.mark.parametrize("client", [True, False], ids=["client", "server"])
async def test_keepalive_closes_with_1011_when_the_pong_is_late(
    autojump_clock: trio.abc.Clock, client: bool
) -> None:
    """No pong within ping_timeout: close frame 1011, stream closed, closed says why."""
    async with open_raw_pair(client=client, ping_interval=5, ping_timeout=2) as (connection, peer):
        assert (await peer.receive_frame()).opcode is Opcode.PING
        close = await peer.receive_frame()
        assert Close.parse(close.data) == Close(1011, "keepalive ping timeout")
        with pytest.raises(EOFError):
            await peer.receive_frame()
        assert connection.closed == CloseReason(1011, "INTERNAL_ERROR", "keepalive ping timeout")
        with pytest.raises(ConnectionClosed, match=r"^1011 \(INTERNAL_ERROR\) keepalive"):
            await connection.get_message()


# -- closing -----------------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["client", "server"])
async def test_close_handshake_sets_closed_on_both_sides(
    connection_pair: Pair, closer: str
) -> None:
    """aclose(code, reason) reaches the peer, and both ends report it."""
    a, b = _sender_and_receiver(connection_pair, closer)
    await a.aclose(4000, "done")
    expected = CloseReason(4000, "PRIVATE", "done")
    assert a.closed == expected
    assert b.closed == expected
    for end in (a, b):
        with pytest.raises(ConnectionClosed, match=r"^4000 \(PRIVATE\) done$"):
            await end.send_message("late")


@pytest.mark.parametrize("code", [1000, 1001], ids=["normal", "going-away"])
async def test_async_for_ends_after_a_normal_close(connection_pair: Pair, code: int) -> None:
    """Messages sent before the close are read, then the loop ends."""
    client, server = connection_pair
    await client.send_message("a")
    await client.send_message(b"b")
    await client.aclose(code)
    assert [message async for message in server] == ["a", b"b"]


@pytest.mark.parametrize("code", [1011, 4000], ids=["internal-error", "private"])
async def test_async_for_raises_after_another_close(connection_pair: Pair, code: int) -> None:
    """After a close with an error code, the loop raises ConnectionClosed."""
    client, server = connection_pair
    await client.send_message("a")
    await client.aclose(code, "why")
    received: list[str | bytes] = []
    with pytest.raises(ConnectionClosed, match=rf"^{code} \(\w+\) why$"):
        await _collect(server, received)
    assert received == ["a"]


@pytest.mark.parametrize("client", [True, False], ids=["client", "server"])
async def test_close_without_a_code_is_echoed_empty_and_ends_async_for(client: bool) -> None:
    """An empty close frame (1005, what browsers send) is echoed empty; iteration ends."""
    async with open_raw_pair(client=client) as (connection, peer):
        await peer.send_frame(Frame(Opcode.CLOSE, b""))
        assert await peer.receive_frame() == Frame(Opcode.CLOSE, b"")
        with trio.fail_after(5):  # at once: no message can follow a close frame
            assert [message async for message in connection] == []
        assert connection.closed == CloseReason(1005, "NO_STATUS_RCVD", None)


async def test_local_close_discards_pending_messages(connection_pair: Pair) -> None:
    """After our own aclose(), queued incoming messages are not returned."""
    client, server = connection_pair
    await client.send_message("pending")
    await trio.testing.wait_all_tasks_blocked()
    await server.aclose()
    with pytest.raises(ConnectionClosed, match=r"^1000 \(NORMAL_CLOSURE\)$"):
        await server.get_message()


async def test_aclose_is_idempotent(connection_pair: Pair) -> None:
    """A second aclose (another code even) returns at once and changes nothing."""
    client, server = connection_pair
    await client.aclose(1001)
    await client.aclose(1000)
    await server.aclose()
    assert client.closed == server.closed == CloseReason(1001, "GOING_AWAY", None)


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        (1005, None, r"^close code 1005 may not be sent$"),
        (1006, None, r"^close code 1006 may not be sent$"),
        (999, None, r"^close code 999 may not be sent$"),
        (5000, None, r"^close code 5000 may not be sent$"),
        (1000, "é" * 62, r"^close reason is longer than 123 bytes in UTF-8$"),
    ],
    ids=["no-status", "abnormal", "below-range", "above-range", "long-reason"],
)
async def test_aclose_refuses_what_may_not_be_sent(
    connection_pair: Pair, code: int, reason: str | None, message: str
) -> None:
    """Reserved or out-of-range codes and over-long reasons raise ValueError; still open."""
    client, _ = connection_pair
    with pytest.raises(ValueError, match=message):
        await client.aclose(code, reason)
    assert client.closed is None


async def test_aclose_gives_up_after_disconnect_timeout(autojump_clock: trio.abc.Clock) -> None:
    """A peer that never answers our close frame: aclose gives up after the timeout."""
    async with open_raw_pair(disconnect_timeout=10) as (connection, peer):
        start = trio.current_time()
        await connection.aclose()
        assert trio.current_time() - start == pytest.approx(10)
        assert Close.parse((await peer.receive_frame()).data) == Close(1000)
        with pytest.raises(EOFError):
            await peer.receive_frame()


async def test_server_closes_tcp_as_soon_as_the_close_handshake_is_done(
    autojump_clock: trio.abc.Clock,
) -> None:
    """RFC 6455 §7.1.1: the server closes TCP first, without waiting for the client."""
    async with open_raw_pair(client=False, disconnect_timeout=10) as (_, peer):
        start = trio.current_time()
        await peer.send_frame(_close_frame(1000))
        assert await peer.receive_frame() == _close_frame(1000)
        with pytest.raises(EOFError):
            await peer.receive_frame()
        assert trio.current_time() == start


async def test_client_waits_for_the_server_to_close_tcp(autojump_clock: trio.abc.Clock) -> None:
    """After the close frames crossed, the client keeps TCP open until the server closes it."""
    async with open_raw_pair(client=True, disconnect_timeout=10) as (connection, peer):
        await peer.send_frame(_close_frame(1000))
        assert await peer.receive_frame() == _close_frame(1000)
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.aclose)
            await trio.sleep(3)
            await peer.stream.aclose()
        assert trio.current_time() - start == pytest.approx(3)


async def test_client_closes_tcp_itself_when_the_server_does_not(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A server that never closes TCP after the closing handshake holds the client briefly."""
    async with open_raw_pair(client=True, disconnect_timeout=10) as (connection, peer):
        start = trio.current_time()
        await peer.send_frame(_close_frame(1000))
        await connection.aclose()
        assert trio.current_time() - start == pytest.approx(CLIENT_CLOSE_WAIT)
        assert connection.closed == CloseReason(1000, "NORMAL_CLOSURE", None)
        assert not connection.closing_timed_out


async def test_aclose_finishes_while_the_incoming_queue_is_full(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A reader blocked on a full queue does not stall our closing handshake."""
    async with open_connection_pair(message_queue_size=1) as (client, server):
        for index in range(5):
            await client.send_message(str(index))
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await server.aclose()
        assert trio.current_time() == start
        assert client.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


# -- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\x81\x02hi", 1002),
        (b"\x83\x80\x00\x00\x00\x00", 1002),
        (b"\x81\x82\x00\x00\x00\x00\xc3\x28", 1007),
        (b"\x82\x8b\x00\x00\x00\x00" + b"x" * 11, 1009),
    ],
    ids=["unmasked-from-client", "reserved-opcode", "invalid-utf8", "too-big"],
)
async def test_peer_protocol_violation_fails_with_its_close_code(wire: bytes, code: int) -> None:
    """The server sends the violation's close code, closes TCP, and keeps the cause."""
    async with open_raw_pair(client=False, max_message_size=10) as (connection, peer):
        await peer.stream.send_all(wire)
        assert Close.parse((await peer.receive_frame()).data).code == code
        with pytest.raises(EOFError):
            await peer.receive_frame()
        assert connection.closed is not None
        assert connection.closed.code == code
        with pytest.raises(ConnectionClosed) as caught:
            await connection.get_message()
        assert isinstance(caught.value.__cause__, ProtocolError)
        assert isinstance(caught.value.__cause__, PayloadTooBig) == (code == 1009)


async def test_stream_broken_while_writing_becomes_1006_with_cause() -> None:
    """BrokenResourceError from send_all is ConnectionClosed(1006) with that cause."""
    async with open_raw_pair() as (connection, peer):
        await peer.stream.receive_stream.aclose()  # type: ignore[attr-defined]
        await connection.send_message("into the void")
        with pytest.raises(ConnectionClosed, match=r"^1006 \(ABNORMAL_CLOSURE\)") as caught:
            await connection.get_message()
        assert isinstance(caught.value.__cause__, trio.BrokenResourceError)


async def test_stream_ending_without_a_close_frame_is_1006() -> None:
    """EOF before any close frame: abnormal closure, and async for raises."""
    async with open_raw_pair() as (connection, peer):
        await peer.stream.aclose()
        with pytest.raises(
            ConnectionClosed,
            match=r"^1006 \(ABNORMAL_CLOSURE\) stream ended without a close frame$",
        ):
            async for _ in connection:
                pass


class _FailingEncoder(Extension):
    def __init__(self) -> None:
        super().__init__("x-failing")

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode is Opcode.TEXT:
            raise RuntimeError("encoder bug")
        return frame


async def test_extension_error_while_sending_fails_with_1011_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An extension's encode raising: logged once, the sender gets 1011 with the cause."""
    async with open_connection_pair(client_extensions=[_FailingEncoder()]) as (client, server):
        with caplog.at_level(logging.ERROR, logger="trio_wsext.connection"):
            with pytest.raises(ConnectionClosed, match=r"^1011 \(INTERNAL_ERROR\)") as caught:
                await client.send_message("boom")
            with pytest.raises(ConnectionClosed, match=r"^1011 \(INTERNAL_ERROR\)"):
                await client.get_message()
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert [record.message.endswith(": sending failed") for record in caplog.records] == [True]
        assert caplog.records[0].exc_info is not None
        with pytest.raises(ConnectionClosed):
            await server.get_message()


# -- backpressure ------------------------------------------------------------------------


@pytest.mark.parametrize("write_limit", [0, 4096, 65536])
async def test_peer_that_stops_reading_blocks_send_message(
    autojump_clock: trio.abc.Clock, write_limit: int
) -> None:
    """A peer that reads nothing: send_message waits once write_limit bytes wait."""
    sent = 0
    frame_size = 4 + 1000  # a 126-length header, unmasked (the server side)
    async with open_raw_pair(client=False, lockstep=True, write_limit=write_limit) as (
        connection,
        peer,
    ):

        async def flood() -> None:
            nonlocal sent
            for _ in range(200):
                await connection.send_message(b"x" * 1000)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            # Senders wait once more than write_limit bytes wait: one more
            # message than fits, at most.
            assert sent * frame_size <= write_limit + frame_size
            assert sent == write_limit // frame_size + 1
            frames = [await peer.receive_frame() for _ in range(200)]
    assert sent == 200
    assert frames == [Frame(Opcode.BINARY, b"x" * 1000)] * 200


async def test_full_incoming_queue_stops_reading(autojump_clock: trio.abc.Clock) -> None:
    """A full message queue stops the reader, so the sender is held back; nothing is lost."""
    sent = 0
    async with open_connection_pair(lockstep=True, message_queue_size=2) as (client, server):

        async def flood() -> None:
            nonlocal sent
            for index in range(50):
                await client.send_message(f"{index}:" + "x" * 10_000)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            # the messages that fill the queue, and at most one read beyond them
            assert server.statistics().wire_bytes_received < 2 * RECEIVE_SIZE
            assert sent < 50
            received = [await server.get_message() for _ in range(50)]
    assert received == [f"{index}:" + "x" * 10_000 for index in range(50)]


async def test_blocked_senders_get_connection_closed_when_closing(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Senders blocked on a peer that never reads are released by aclose, not left hanging."""
    errors: list[ConnectionClosed] = []
    async with open_raw_pair(lockstep=True, disconnect_timeout=5) as (connection, _):

        async def sender() -> None:
            try:
                while True:
                    await connection.send_message(b"x" * 1000)
            except ConnectionClosed as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            await connection.aclose()
    assert [error.reason.code for error in errors] == [1000, 1000, 1000]


# -- statistics and properties -------------------------------------------------------------


async def test_statistics_count_payload_and_wire_bytes(connection_pair: Pair) -> None:
    """Payload bytes as the application sees them; wire bytes with headers and the mask."""
    client, server = connection_pair
    await client.send_message("héllo")  # 6 bytes of UTF-8
    assert await server.get_message() == "héllo"
    await server.send_message(b"12345")
    assert await client.get_message() == b"12345"
    assert client.statistics() == ConnectionStatistics(
        messages_sent=1,
        messages_received=1,
        bytes_sent=6,
        bytes_received=5,
        wire_bytes_sent=2 + 4 + 6,  # header, mask, payload
        wire_bytes_received=2 + 5,
    )
    assert server.statistics() == ConnectionStatistics(
        messages_sent=1,
        messages_received=1,
        bytes_sent=5,
        bytes_received=6,
        wire_bytes_sent=2 + 5,
        wire_bytes_received=2 + 4 + 6,
    )


async def test_in_memory_connection_properties(connection_pair: Pair) -> None:
    """Side, path, handshake data and endpoints of a connection made by hand."""
    client, server = connection_pair
    assert (client.is_client, client.is_server) == (True, False)
    assert (server.is_client, server.is_server) == (False, True)
    assert client.path == "/"
    assert client.subprotocol is None
    assert client.extensions == []
    assert client.request_headers == client.response_headers == []
    assert client.closed is None
    assert isinstance(client.local, str)  # not a socket: the stream's repr
    assert isinstance(client.remote, str)
    assert repr(client) == "<WebSocketConnection client '/' open>"


def test_constructor_checks_its_options() -> None:
    """The constructor refuses bad options before anything runs (table: test_options.py)."""

    with pytest.raises(ValueError, match=r"^message_queue_size must be >= 0, not -1$"):
        ConnectionOptions(message_queue_size=-1)


# -- extensions in worker threads ------------------------------------------------------------


class _ThreadRecorder(Extension):
    """Records, per data frame, whether encode/decode ran in the main thread."""

    def __init__(self) -> None:
        super().__init__("x-thread-recorder")
        self.encoded_in_main: list[bool] = []
        self.decoded_in_main: list[bool] = []

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.encoded_in_main.append(threading.current_thread() is threading.main_thread())
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.decoded_in_main.append(threading.current_thread() is threading.main_thread())
        return frame


async def test_large_messages_run_the_extension_chain_in_a_worker_thread() -> None:
    """With an extension, a 1 MiB message is encoded and decoded off the trio thread."""
    sender, receiver = _ThreadRecorder(), _ThreadRecorder()
    big = b"y" * THREAD_SEND_THRESHOLD
    async with open_connection_pair(
        client_extensions=[sender], server_extensions=[receiver], max_message_size=4 * 2**20
    ) as (client, server):
        with trio.fail_after(10):
            await client.send_message(b"small")
            await client.send_message(big)
            assert await server.get_message() == b"small"
            assert await server.get_message() == big
    assert sender.encoded_in_main == [True, False]
    assert receiver.decoded_in_main == [True, False]


# -- edges of the life cycle ---------------------------------------------------------------


async def test_aclose_before_the_tasks_start_closes_the_stream() -> None:
    """A connection never started: aclose() just closes the stream."""
    ours, theirs = trio.testing.memory_stream_pair()
    connection = WebSocketConnection(ours, is_client=True)
    await connection.aclose()
    assert connection.closed == CloseReason(1000, "NORMAL_CLOSURE", None)
    assert await theirs.receive_some() == b""


async def test_cancelled_aclose_tears_the_connection_down(autojump_clock: trio.abc.Clock) -> None:
    """Cancelling aclose() abandons the handshake; the stream is still closed."""
    async with open_raw_pair(disconnect_timeout=10) as (connection, peer):
        with trio.move_on_after(1):
            await connection.aclose()
        start = trio.current_time()
        assert Close.parse((await peer.receive_frame()).data) == Close(1000)
        with pytest.raises(EOFError):
            await peer.receive_frame()
        assert trio.current_time() == start
        assert connection.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


async def test_violation_during_the_closing_handshake_ends_it_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After our close frame, a protocol error from the peer closes TCP without waiting."""
    async with open_raw_pair(client=False, disconnect_timeout=10) as (connection, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.aclose)
            assert Close.parse((await peer.receive_frame()).data) == Close(1000)
            start = trio.current_time()
            await peer.stream.send_all(b"\x81\x02hi")  # unmasked from a client: 1002
        assert trio.current_time() == start
        with pytest.raises(EOFError):
            await peer.receive_frame()
        assert connection.closed == CloseReason(1000, "NORMAL_CLOSURE", None)


async def test_ping_arriving_after_our_close_is_not_answered(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Once we asked to close, nothing but our close frame goes out."""
    async with open_raw_pair(client=False) as (connection, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.aclose)
            assert (await peer.receive_frame()).opcode is Opcode.CLOSE
            await peer.send_frame(Frame(Opcode.PING, b"late"))
            await peer.send_frame(_close_frame(1000))
        with pytest.raises(EOFError):
            await peer.receive_frame()


async def test_first_frames_behind_the_handshake_are_not_lost() -> None:
    """extra_data (frames that came with the 101) is read before the stream."""
    ours, _ = trio.testing.memory_stream_pair()
    first = b"\x81\x05early"  # a server's unmasked text frame
    connection = WebSocketConnection(
        ours, is_client=True, extra_data=first, options=ConnectionOptions(ping_interval=None)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        assert await connection.get_message() == "early"
        assert connection.statistics().wire_bytes_received == len(first)
        nursery.cancel_scope.cancel()


class _BreakingStream(trio.abc.Stream):
    """A stream whose receive_some fails as a reset TCP connection does."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:  # pragma: no cover - unused
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.lowlevel.checkpoint()
        raise trio.BrokenResourceError("connection reset")

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_stream_broken_while_reading_becomes_1006_with_cause() -> None:
    """BrokenResourceError from receive_some is ConnectionClosed(1006) with that cause."""
    ours, _ = trio.testing.memory_stream_pair()
    connection = WebSocketConnection(
        _BreakingStream(ours), is_client=True, options=ConnectionOptions(ping_interval=None)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        with pytest.raises(
            ConnectionClosed, match=r"^1006 .* stream broke while reading$"
        ) as caught:
            await connection.get_message()
    assert isinstance(caught.value.__cause__, trio.BrokenResourceError)


async def test_bug_in_the_receive_path_fails_with_1011_and_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception in the reader is logged and closes with 1011, not raised."""
    async with open_connection_pair() as (client, server):

        def broken(data: bytes) -> None:
            raise RuntimeError("receive bug")

        monkeypatch.setattr(server._engine.protocol, "receive_data", broken)
        with caplog.at_level(logging.ERROR, logger="trio_wsext.connection"):
            await client.send_message("x")
            with pytest.raises(
                ConnectionClosed, match=r"^1011 \(INTERNAL_ERROR\) internal error$"
            ):
                await client.get_message()
        assert [r.getMessage().endswith(": reader failed") for r in caplog.records] == [True]


async def test_keepalive_without_timeout_pings_and_never_fails(
    autojump_clock: trio.abc.Clock,
) -> None:
    """ping_timeout=None: pings go out every interval, unanswered pongs close nothing."""
    async with open_raw_pair(ping_interval=5, ping_timeout=None) as (connection, peer):
        frames = [await peer.receive_frame() for _ in range(4)]
        assert {frame.opcode for frame in frames} == {Opcode.PING}
        assert connection.closed is None
