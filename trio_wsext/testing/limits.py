"""The checks on limits: ``max_size`` in ``decode``, and encode/decode in worker threads.

Strategy for ``max_size``: the connections run with a small
``max_message_size`` (64 KiB). A message of exactly that size, compressible
or not, must arrive; one byte more must fail the receiving connection with
1009 -- sent whole, and in fragments whose last one crosses the limit. The
outcome alone cannot tell a bounded ``decode`` from one that inflated
everything and let the protocol refuse the result, so the observers check
every ``decode`` the receiver ran: its output may exceed neither ``max_size``
nor the frame it was given. (An extension that does not expand data, such
as a cipher, stays within the frame's own size, which the frame header's
check bounded already.)

Strategy for ``threads``: the library runs ``encode`` in a worker thread for
a message of :data:`~trio_wsext.connection.THREAD_SEND_THRESHOLD` or more,
and ``decode`` in one for a frame of
:data:`~trio_wsext.connection.THREAD_RECEIVE_THRESHOLD` or more, while the
event loop goes on decoding and encoding small ones. Both ends send large
messages, a paced stream of small ones and pings all at once; each end
checks that each stream arrives whole and in order. The check also verifies
that worker threads did run the extension, so that it cannot pass without
testing what it claims.
"""

from __future__ import annotations

from typing import Final

import trio

from ..connection import THREAD_RECEIVE_THRESHOLD, THREAD_SEND_THRESHOLD, WebSocketConnection
from ..exceptions import ConnectionClosed
from ..frames import CloseCode, CloseReason
from .corpus import Message, binary_message, describe, describe_change
from .diagnosis import fail_closed, first_crash, require_active
from .harness import CheckRun, Peer, open_pair, open_peer_pair, other
from .probes import SIDES, SideName

__all__ = ["MAX_SIZE_LIMIT", "check_max_size", "check_threads"]

#: The ``max_message_size`` of the max_size check's connections: 64 KiB keeps
#: the check fast, and crosses the 16-bit frame length.
MAX_SIZE_LIMIT: Final = 65536

#: The small messages' pace in the threads check: one every 2 ms, so that
#: they keep coming while a large message is encoded in a thread.
_SMALL_PACE: Final = 0.002

#: The least small messages each side sends in the threads check.
_MIN_SMALL: Final = 50


def _payloads_over(limit: int) -> list[tuple[str, Message | list[bytes], bool]]:
    """The over-limit messages: a label, the message (or its fragments), whether text."""
    half = limit // 2
    return [
        ("a compressible binary message one byte over the limit", bytes(limit + 1), False),
        ("a compressible text message one byte over the limit", "a" * (limit + 1), True),
        ("a random binary message one byte over the limit", binary_message(limit + 1), False),
        (
            "a compressible binary message in three fragments, the last one over the limit",
            [bytes(half), bytes(limit - half), b"\x00"],
            False,
        ),
        (
            "a compressible text message in three fragments, the last one over the limit",
            [b"a" * half, b"a" * (limit - half), b"a"],
            True,
        ),
    ]


async def _send_from_peer(peer: Peer, payload: Message | list[bytes], text: bool) -> None:
    if isinstance(payload, list):
        for index, piece in enumerate(payload):
            peer.protocol.send_fragment(piece, text=text, fin=index == len(payload) - 1)
    else:
        peer.protocol.send_message(payload)
    await peer.flush()


def _check_decode_bounds(run: CheckRun, side: SideName, context: str) -> None:
    """Fail if a ``decode`` on ``side`` returned more than ``max_size`` and than its input."""
    for probe in run.probes.on(side):
        for record in probe.decoded:
            if record.max_size is None:
                continue
            bound = max(record.max_size, record.size_in)
            if record.size_out <= bound:
                continue
            if not probe.decode_takes_max_size:
                run.fail(
                    f"{context}: {probe.label}.decode(frame) does not take max_size, and it "
                    f"expanded a {record.size_in}-byte {record.opcode.name} frame to "
                    f"{record.size_out} bytes when {record.max_size} were left of the limit",
                    "accept the keyword: decode(self, frame, *, max_size=None), produce at "
                    "most max_size bytes, and raise trio_wsext.exceptions.PayloadTooBig "
                    "when the output would be larger (decompress with a max_length of "
                    "max_size + 1): otherwise a small frame can inflate to gigabytes.",
                )
            run.fail(
                f"{context}: {probe.label}.decode returned {record.size_out} bytes from a "
                f"{record.size_in}-byte {record.opcode.name} frame, with max_size="
                f"{record.max_size}",
                "never return more than max_size bytes: stop decoding at max_size + 1 "
                "bytes and raise trio_wsext.exceptions.PayloadTooBig instead, so that a "
                "small frame cannot inflate to an unbounded size before the limit applies.",
            )


async def check_max_size(run: CheckRun) -> None:
    """A message at the size limit arrives; one byte over fails with 1009, decoded bounded."""
    limit = MAX_SIZE_LIMIT
    at_limit: list[Message] = [bytes(limit), binary_message(limit), "é" * (limit // 2)]
    async with open_pair(run, [run.client()], [run.server()], max_message_size=limit) as pair:
        require_active(run, pair.client.extensions, pair.server.extensions)
        for sender in SIDES:
            receiver = other(sender)
            direction = f"{sender} → {receiver}, max_message_size={limit}"
            for message in at_limit:
                run.step = f"sending {direction}: {describe(message)}"
                await pair.on(sender).send_message(message)
                try:
                    received = await pair.on(receiver).get_message()
                except ConnectionClosed as exc:
                    fail_closed(
                        run, f"{direction}: {describe(message)} (exactly the limit)", exc.reason
                    )
                if received != message:
                    run.fail(
                        f"{direction}: {describe_change(message, received)}",
                        "decode must return exactly the payload encode was given.",
                    )
        _check_decode_bounds(run, "client", f"messages of exactly {limit} bytes")
        _check_decode_bounds(run, "server", f"messages of exactly {limit} bytes")

    for receiver in SIDES:
        for label, payload, text in _payloads_over(limit):
            context = f"{other(receiver)} → {receiver}, max_message_size={limit}: {label}"
            run.step = f"sending {context}"
            async with open_peer_pair(
                run, [run.client()], [run.server()], real=receiver, max_message_size=limit
            ) as pair:
                await _send_from_peer(pair.peer, payload, text)
                try:
                    received = await pair.real.get_message()
                except ConnectionClosed as exc:
                    reason: CloseReason = exc.reason
                else:
                    run.fail(
                        f"{context}: the {receiver} received {describe(received)} "
                        f"although the limit is {limit} bytes",
                        "decode must return exactly the payload encode was given.",
                    )
            _check_decode_bounds(run, receiver, context)
            if reason.code != CloseCode.MESSAGE_TOO_BIG:
                crash = first_crash(run, ("decode",))
                raised = f" ({crash.owner}.decode raised {crash.error!r})" if crash else ""
                run.fail(
                    f"{context}: the {receiver} closed the connection with {reason}, not "
                    f"1009 (message too big){raised}",
                    "when the output would pass max_size, raise trio_wsext.exceptions."
                    "PayloadTooBig (close code 1009), not another exception.",
                    crash.error if crash else None,
                )


def _big_messages(label: str) -> list[Message]:
    # Each starts with its stream's label and number, so that order can be checked.
    sizes = [THREAD_SEND_THRESHOLD, THREAD_RECEIVE_THRESHOLD + 1024, THREAD_SEND_THRESHOLD + 1]
    messages: list[Message] = []
    for index, size in enumerate(sizes):
        head = f"{label} big {index} ".encode()
        if index == 2:
            messages.append((head + b"t" * (size - len(head))).decode())
        else:
            messages.append(head + binary_message(size - len(head), seed=index))
    return messages


async def _flood(
    run: CheckRun,
    connection: WebSocketConnection,
    side: SideName,
    big_done: dict[SideName, trio.Event],
) -> None:
    """Send one side's streams: large messages, paced small ones, pings.

    The client sends its large messages first, the server once they are all
    framed: while one side encodes a large message in a worker thread, the
    other keeps sending small ones, which the first decodes meanwhile (a
    side's own small messages wait while its send side is in a thread).
    """

    async def send_big() -> None:
        if side == "server":
            await big_done["client"].wait()
        for message in _big_messages(side):
            run.step = f"the {side} was sending {describe(message)}"
            await connection.send_message(message)
        big_done[side].set()

    async def send_small() -> None:
        count = 0
        while count < _MIN_SMALL or not all(event.is_set() for event in big_done.values()):
            message = f"{side} small {count}"
            await connection.send_message(message if count % 2 else message.encode())
            count += 1
            await trio.sleep(_SMALL_PACE)
        await connection.send_message(f"{side} small end {count}")

    async def ping() -> None:
        count = 0
        while not all(event.is_set() for event in big_done.values()):
            await connection.ping(f"{side} ping {count}".encode())
            count += 1
            await trio.sleep(_SMALL_PACE * 5)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_big)
            nursery.start_soon(send_small)
            nursery.start_soon(ping)
    except* ConnectionClosed as group:
        exc = group.exceptions[0]
        assert isinstance(exc, ConnectionClosed)
        fail_closed(run, f"the {side} sending while messages flow both ways", exc.reason)


def _head(message: Message) -> str:
    data = message.encode("utf-8") if isinstance(message, str) else message
    return repr(data[:16])


async def _collect(run: CheckRun, connection: WebSocketConnection, side: SideName) -> None:
    """Receive the other side's streams; fail unless each is whole and in order."""
    sender = other(side)
    bigs = _big_messages(sender)
    next_big = next_small = 0
    small_total: int | None = None
    end_marker = f"{sender} small end "
    direction = f"{sender} → {side}, while messages flow both ways"
    while next_big < len(bigs) or small_total is None or next_small < small_total:
        run.step = f"waiting for {direction} (large {next_big}, small {next_small} so far)"
        try:
            message = await connection.get_message()
        except ConnectionClosed as exc:
            fail_closed(run, direction, exc.reason)
        small_text = f"{sender} small {next_small}"
        small: Message = small_text if next_small % 2 else small_text.encode()
        if next_big < len(bigs) and message == bigs[next_big]:
            next_big += 1
        elif (small_total is None or next_small < small_total) and message == small:
            next_small += 1
        elif isinstance(message, str) and message.startswith(end_marker):
            small_total = int(message[len(end_marker) :])
        else:
            expected = [small] if small_total is None or next_small < small_total else []
            expected += bigs[next_big : next_big + 1]
            run.fail(
                f"{direction}: received {describe(message)} starting {_head(message)}, where "
                "the next message was "
                + " or ".join(f"{describe(m)} starting {_head(m)}" for m in expected),
                "encode and decode run at the same time in two threads (a large message's "
                "encode in a worker thread while the event loop decodes, and the "
                "reverse): keep the send side's state (touched only by encode) apart from "
                "the receive side's (touched only by decode), share nothing mutable "
                "between them, or guard what you share with a lock.",
            )


def _check_threads_ran(run: CheckRun) -> None:
    for side in SIDES:
        probes = run.probes.on(side)
        for method in ("encode", "decode"):
            ran = any(
                record.in_thread
                for probe in probes
                for record in (probe.encoded if method == "encode" else probe.decoded)
            )
            if probes and all(probe.observed for probe in probes) and not ran:
                run.fail(
                    f"the {side}'s {method} never ran in a worker thread, so this check "
                    "tested nothing",
                    "this is the kit out of step with trio_wsext's THREAD_SEND_THRESHOLD "
                    "and THREAD_RECEIVE_THRESHOLD; report it.",
                )


async def check_threads(run: CheckRun) -> None:
    """Large messages encoded and decoded in worker threads, amid small ones and pings."""
    limit = 4 * THREAD_SEND_THRESHOLD
    async with open_pair(run, [run.client()], [run.server()], max_message_size=limit) as pair:
        require_active(run, pair.client.extensions, pair.server.extensions)
        big_done: dict[SideName, trio.Event] = {side: trio.Event() for side in SIDES}
        async with trio.open_nursery() as nursery:
            for side in SIDES:
                nursery.start_soon(_flood, run, pair.on(side), side, big_done)
                nursery.start_soon(_collect, run, pair.on(side), side)
    _check_threads_ran(run)
