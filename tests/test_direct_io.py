"""direct_io: reads and writes on a plain TCP socket's descriptor, others through the stream."""

from __future__ import annotations

import socket
import struct

import pytest
import trio
import trio.testing

from trio_wsext.direct_io import receive_some, send_all, socket_fd


async def _tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    return client, server


async def test_only_a_plain_socket_stream_has_a_descriptor() -> None:
    client, server = await _tcp_pair()
    assert socket_fd(client) == client.socket.fileno() >= 0
    left, right = trio.testing.memory_stream_pair()
    assert socket_fd(left) == -1
    for stream in (client, server, left, right):
        await stream.aclose()


async def test_receive_some_waits_for_data_then_reads_it() -> None:
    client, server = await _tcp_pair()
    fd = socket_fd(server)
    got: list[bytes] = []

    async def receive() -> None:
        got.append(await receive_some(server, fd, 100))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await client.send_all(b"hello")
    assert got == [b"hello"]
    await client.send_eof()
    assert await receive_some(server, fd, 100) == b""
    await client.aclose()
    await server.aclose()


async def test_receive_some_reports_a_reset_as_a_broken_stream() -> None:
    client, server = await _tcp_pair()
    client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.aclose()  # RST
    with pytest.raises(trio.BrokenResourceError, match="socket read failed"):
        await receive_some(server, socket_fd(server), 100)
    await server.aclose()


async def test_receive_some_is_cancelled_cleanly() -> None:
    client, server = await _tcp_pair()
    with trio.move_on_after(0.05) as scope:
        await receive_some(server, socket_fd(server), 100)
    assert scope.cancelled_caught
    await client.send_all(b"after")
    assert await receive_some(server, socket_fd(server), 100) == b"after"
    await client.aclose()
    await server.aclose()


async def test_send_all_sends_more_than_the_socket_takes_at_once() -> None:
    client, server = await _tcp_pair()
    data = bytes(range(256)) * 40_000  # 10 MB: far beyond the socket buffers
    received = bytearray()

    async def drain() -> None:
        while len(received) < len(data):
            chunk = await server.receive_some(1 << 20)
            assert chunk
            received.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain)
        await send_all(client, socket_fd(client), data)
    assert received == data
    await client.aclose()
    await server.aclose()


async def test_send_all_to_a_reset_peer_is_a_broken_stream() -> None:
    client, server = await _tcp_pair()
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await server.aclose()
    await trio.sleep(0.01)  # the reset reaches the client
    with pytest.raises(trio.BrokenResourceError, match="socket write failed"):
        await send_all(client, socket_fd(client), b"x" * 1000)
    await client.aclose()


async def test_other_streams_go_through_their_own_methods() -> None:
    left, right = trio.testing.memory_stream_pair()
    await send_all(left, -1, b"memory")
    assert await receive_some(right, -1, 100) == b"memory"
    await left.aclose()
    await right.aclose()


async def _schedule_points_of_read(server: trio.SocketStream, *, wait_first: bool) -> int:
    """How often receive_some yields to the scheduler to read data that is already there."""
    task = trio.lowlevel.current_task()
    before = task._schedule_points
    assert await receive_some(server, socket_fd(server), 5, wait_first=wait_first)
    return task._schedule_points - before


async def test_receive_some_without_waiting_first_reads_what_is_there_at_once() -> None:
    client, server = await _tcp_pair()
    await client.send_all(b"already here")
    await trio.sleep(0.01)  # on the server's side of loopback by now
    assert await _schedule_points_of_read(server, wait_first=False) == 0
    assert await _schedule_points_of_read(server, wait_first=True) == 1
    # And it still waits when nothing is there.
    received: list[bytes] = []

    async def receive() -> None:
        received.append(await receive_some(server, socket_fd(server), 100, wait_first=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        assert received == [b"re"]  # what the two reads above left
        received.clear()
        nursery.start_soon(receive)
        await trio.testing.wait_all_tasks_blocked()
        assert received == []
        await client.send_all(b"later")
    assert received == [b"later"]
    await client.aclose()
    await server.aclose()
