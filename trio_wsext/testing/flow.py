"""The checks on what flows through an extension: round trips, fragments, control frames.

Strategy: a message goes through the sender's ``encode`` and the receiver's
``decode``, so each check sends in both directions and compares what the
application receives with what it sent, byte for byte and type for type.
The helpers here (:func:`exchange`, :func:`exchange_fragments`,
:func:`standard_traffic`) are also what the reserved-bit checks drive their
connections with.

Control frames are checked at both ends of their trip: the payload the
receiving protocol reports (a :class:`~.harness.Peer` sees every ping, pong
and close frame) and the frame on the wire, which must be exactly what the
application sent. RFC 6455 §5.5 bounds a control frame's payload to 125
bytes *on the wire*, and a connection that fails because an extension broke
must still be able to send its close frame: an extension leaves control
frames alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import trio

from ..connection import WebSocketConnection
from ..exceptions import ConnectionClosed
from ..extensions.base import ClientExtensionFactory, Extension, ServerExtensionFactory
from ..frames import Close, CloseReason, Opcode
from ..protocol import CloseReceived, ConnectionFailed, Event, Message, Ping, Pong
from .corpus import (
    FragmentPlan,
    Message as AppMessage,
    binary_message,
    describe,
    describe_change,
    fragment_plans,
    round_trip_messages,
    text_message,
)
from .diagnosis import fail_closed, require_active
from .harness import CheckRun, Peer, PeerPair, open_pair, open_peer_pair, other, wire_frames
from .probes import SIDES, SideName, rsv_names

__all__ = [
    "CONTROL_PAYLOADS",
    "TRAFFIC_MESSAGES",
    "check_control_frames",
    "check_fragments",
    "check_round_trip",
    "exchange",
    "exchange_fragments",
    "standard_traffic",
]

#: Ping and pong payloads: empty, one byte, the 125-byte maximum, UTF-8 and
#: bytes that are not UTF-8.
CONTROL_PAYLOADS: Final = (b"", b"x", bytes(range(125)), "✓ ping".encode(), b"\xff\x00" * 10)

#: The close frames of the control check: one from the connection, one from the peer.
_CLOSE_FROM_REAL: Final = Close(4000, "closing ✓ from the connection")
_CLOSE_FROM_PEER: Final = Close(4001, "closing ✓ from the peer")

#: The ping sent between two fragments of a message.
_PING_BETWEEN: Final = b"between fragments"

_CONT_HINT: Final = (
    "A fragmented message is a TEXT or BINARY frame with fin=False, then CONT frames "
    "(opcode 0), the last with fin=True; encode and decode run once per frame."
)
_CONT_FIX: Final = (
    "encode and decode run once per frame, not per message: decode must handle CONT "
    "frames (opcode 0) as encode did, and keep whatever per-message state encode kept; "
    "only the first frame carries the message's RSV bits. " + _CONT_HINT.split(";")[0] + "."
)

#: The messages of :func:`standard_traffic`: both kinds, the framing
#: boundaries, compressible and not.
TRAFFIC_MESSAGES: Final[tuple[AppMessage, ...]] = (
    text_message(0),
    binary_message(1),
    text_message(126),
    binary_message(125),
    text_message(65536),
    binary_message(65536),
    bytes(65536),
    "a" * 65536,
)


# -- helpers --------------------------------------------------------------------------------


async def exchange(
    run: CheckRun,
    sender: WebSocketConnection,
    receiver: WebSocketConnection,
    messages: Sequence[AppMessage],
    direction: str,
) -> None:
    """Send ``messages`` one way; fail the check unless each arrives unchanged, in order."""

    async def send_all() -> None:
        for message in messages:
            try:
                await sender.send_message(message)
            except ConnectionClosed as exc:
                fail_closed(run, f"{direction}: sending {describe(message)}", exc.reason)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_all)
        for number, expected in enumerate(messages, start=1):
            context = f"{direction}: {describe(expected)} (message {number} of {len(messages)})"
            run.step = f"waiting for {context}"
            try:
                received = await receiver.get_message()
            except ConnectionClosed as exc:
                fail_closed(run, context, exc.reason)
            if received != expected:
                run.fail(
                    f"{direction}: {describe_change(expected, received)}",
                    "decode must return exactly the payload encode was given, for "
                    "every size (0, 125/126 and 65535/65536 bytes are where frame "
                    "headers change) and for text and binary alike.",
                )


async def _read_pongs(run: CheckRun, peer: Peer, pongs: list[bytes], got: trio.Event) -> None:
    # The peer's side of exchange_fragments: collect the pongs that answer its
    # pings. A close frame or the end of the stream means the connection
    # failed, which the task reading the messages reports.
    while True:
        try:
            event = await peer.next_event()
        except EOFError:
            return
        if isinstance(event, Pong):
            pongs.append(event.payload)
            got.set()
        elif isinstance(event, CloseReceived):
            return
        elif isinstance(event, ConnectionFailed):
            fail_closed(
                run, f"the {peer.side} reading", CloseReason.from_code(event.code, event.reason)
            )


async def _send_plan(peer: Peer, plan: FragmentPlan) -> None:
    last = len(plan.pieces) - 1
    for index, piece in enumerate(plan.pieces):
        peer.protocol.send_fragment(piece, text=plan.text, fin=index == last)
        if plan.ping_after == index:
            peer.protocol.send_ping(_PING_BETWEEN)
        await peer.flush()


async def exchange_fragments(
    run: CheckRun, pair: PeerPair, plans: Sequence[FragmentPlan], direction: str
) -> None:
    """Send each plan from the peer in fragments; fail unless the connection gets each whole.

    A plain message follows them (the extension's per-message state must be
    back to normal), and the pong that answers the ping sent between two
    fragments must carry the ping's payload.
    """
    pongs: list[bytes] = []
    got_pong = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_read_pongs, run, pair.peer, pongs, got_pong)
        after: AppMessage = "a plain message after the fragmented ones"
        for plan in [*plans, None]:
            if plan is None:
                pair.peer.protocol.send_message(after)
                await pair.peer.flush()
                expected, label = after, describe(after)
            else:
                await _send_plan(pair.peer, plan)
                expected = plan.message
                label = f"{plan.label} ({len(plan.pieces)} frames)"
            run.step = f"waiting for {direction}: {label}"
            try:
                received = await pair.real.get_message()
            except ConnectionClosed as exc:
                fail_closed(run, f"{direction}: {label}", exc.reason, _CONT_HINT)
            if received != expected:
                run.fail(f"{direction}: {label}: {describe_change(expected, received)}", _CONT_FIX)
        if any(plan.ping_after is not None for plan in plans):
            run.step = f"waiting for {direction}: the pong to the ping between fragments"
            await got_pong.wait()
            if pongs[0] != _PING_BETWEEN:
                run.fail(
                    f"{direction}: the ping {_PING_BETWEEN!r} sent between two fragments "
                    f"was answered with {pongs[0]!r}",
                    "encode and decode must pass PING and PONG frames through unchanged, "
                    "also in the middle of a fragmented message.",
                )
        nursery.cancel_scope.cancel()


async def standard_traffic(
    run: CheckRun,
    client_factories: Sequence[ClientExtensionFactory],
    server_factories: Sequence[ServerExtensionFactory],
    expect: Callable[[Sequence[Extension], Sequence[Extension]], None],
    label: str = "",
) -> None:
    """Run the reserved-bit checks' traffic: messages and pings both ways, then fragments.

    Args:
        run: the check.
        client_factories: the client's factories, in offer (chain) order.
        server_factories: the server's factories.
        expect: called with the client's and the server's negotiated
            extensions of every connection opened; fails the check if they
            are not what the check needs.
        label: what to prefix each step with ("in the chain [...]").
    """
    prefix = f"{label}: " if label else ""
    async with open_pair(run, client_factories, server_factories) as pair:
        expect(pair.client.extensions, pair.server.extensions)
        for sender in SIDES:
            receiver = other(sender)
            await exchange(
                run,
                pair.on(sender),
                pair.on(receiver),
                TRAFFIC_MESSAGES,
                f"{prefix}{sender} → {receiver}",
            )
        run.step = f"{prefix}sending pings both ways"
        await pair.client.ping(b"client ping")
        await pair.server.ping(b"server ping")
    for real in SIDES:
        async with open_peer_pair(run, client_factories, server_factories, real=real) as peers:
            extensions = peers.peer.protocol.extensions
            if real == "server":
                expect(extensions, peers.real.extensions)
            else:
                expect(peers.real.extensions, extensions)
            direction = f"{prefix}{other(real)} → {real} (fragmented)"
            await exchange_fragments(run, peers, fragment_plans(), direction)


# -- the checks -----------------------------------------------------------------------------


async def check_round_trip(run: CheckRun) -> None:
    """Text and binary messages of 0 bytes to 1 MiB arrive unchanged, both ways."""
    messages = round_trip_messages()
    async with open_pair(run, [run.client()], [run.server()]) as pair:
        require_active(run, pair.client.extensions, pair.server.extensions)
        await exchange(run, pair.client, pair.server, messages, "client → server")
        await exchange(run, pair.server, pair.client, messages, "server → client")


async def check_fragments(run: CheckRun) -> None:
    """Messages sent in fragments (CONT frames) arrive whole and unchanged, both ways."""
    for real in SIDES:
        async with open_peer_pair(run, [run.client()], [run.server()], real=real) as pair:
            if real == "server":
                require_active(run, pair.peer.protocol.extensions, pair.real.extensions)
            else:
                require_active(run, pair.real.extensions, pair.peer.protocol.extensions)
            await exchange_fragments(run, pair, fragment_plans(), f"{other(real)} → {real}")


# The control frames each end sends, in order, in check_control_frames: what
# the wire must show.
_Sent = list[tuple[Opcode, bytes]]


async def _expect(run: CheckRun, peer: Peer, wanted: Event, what: str) -> None:
    run.step = f"the {peer.side} was waiting for {what}"
    context = f"the {peer.side} receiving {what}"
    try:
        event = await peer.next_event()
    except EOFError:
        fail_closed(run, context, None)
    if isinstance(event, ConnectionFailed) or (
        isinstance(event, CloseReceived) and not isinstance(wanted, CloseReceived)
    ):
        fail_closed(run, context, CloseReason.from_code(event.code, event.reason))
    if event != wanted:
        run.fail(
            f"the {peer.side} expected {what} and received {event!r}",
            "encode and decode must pass PING, PONG and CLOSE frames through unchanged "
            "(payload, close code and reason), in order with the messages.",
        )


async def _controls_from_real(run: CheckRun, pair: PeerPair, real: _Sent, peer: _Sent) -> None:
    # The connection pings (the peer answers) and pongs, between two messages.
    sender = "client" if pair.real.is_client else "server"

    async def connection_side() -> None:
        try:
            await pair.real.send_message("before the control frames")
            for payload in CONTROL_PAYLOADS:
                run.step = f"the {sender}'s ping({payload!r}) was waiting for its pong"
                await pair.real.ping(payload)
                real.append((Opcode.PING, payload))
            for payload in CONTROL_PAYLOADS:
                await pair.real.pong(payload)
                real.append((Opcode.PONG, payload))
            await pair.real.send_message("after the control frames")
        except ConnectionClosed as exc:
            fail_closed(run, f"the {sender} sending control frames", exc.reason)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection_side)
        await _expect(run, pair.peer, Message("before the control frames"), "the first message")
        for payload in CONTROL_PAYLOADS:
            await _expect(run, pair.peer, Ping(payload), f"the {sender}'s ping({payload!r})")
            pair.peer.protocol.send_pong(payload)
            peer.append((Opcode.PONG, payload))
            await pair.peer.flush()
        for payload in CONTROL_PAYLOADS:
            await _expect(run, pair.peer, Pong(payload), f"the {sender}'s pong({payload!r})")
        await _expect(run, pair.peer, Message("after the control frames"), "the last message")


async def _controls_from_peer(run: CheckRun, pair: PeerPair, real: _Sent, peer: _Sent) -> None:
    # The peer pings (the connection answers by itself) and pongs.
    for payload in CONTROL_PAYLOADS:
        pair.peer.protocol.send_ping(payload)
        peer.append((Opcode.PING, payload))
        await pair.peer.flush()
        await _expect(run, pair.peer, Pong(payload), f"the pong answering ping({payload!r})")
        real.append((Opcode.PONG, payload))
    for payload in CONTROL_PAYLOADS:
        pair.peer.protocol.send_pong(payload)
        peer.append((Opcode.PONG, payload))
    pair.peer.protocol.send_message("after the pongs")
    await pair.peer.flush()
    run.step = "waiting for the message after the peer's pongs"
    try:
        received = await pair.real.get_message()
    except ConnectionClosed as exc:
        fail_closed(run, "receiving pongs", exc.reason)
    if received != "after the pongs":
        run.fail(
            f"the message after the pongs arrived as {received!r}",
            "decode must pass PONG frames through and leave the next message alone.",
        )


async def _close_from_real(run: CheckRun, pair: PeerPair, real: _Sent, peer: _Sent) -> None:
    close = _CLOSE_FROM_REAL
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pair.real.aclose, close.code, close.reason)
        real.append((Opcode.CLOSE, close.serialize()))
        await _expect(
            run, pair.peer, CloseReceived(close.code, close.reason), f"the close frame {close}"
        )
        pair.peer.protocol.send_close(close.code, close.reason)
        peer.append((Opcode.CLOSE, close.serialize()))
        await pair.peer.flush()
        if pair.peer.side == "server":
            await pair.peer.stream.aclose()  # the server ends TCP (RFC 6455 §7.1.1)


async def _close_from_peer(run: CheckRun, pair: PeerPair, real: _Sent, peer: _Sent) -> None:
    close = _CLOSE_FROM_PEER
    pair.peer.protocol.send_close(close.code, close.reason)
    peer.append((Opcode.CLOSE, close.serialize()))
    await pair.peer.flush()
    run.step = "waiting for the peer's close frame to reach the connection"
    try:
        received = await pair.real.get_message()
    except ConnectionClosed as exc:
        if (exc.reason.code, exc.reason.reason) != (close.code, close.reason):
            fail_closed(run, f"receiving the close frame {close}", exc.reason)
    else:
        run.fail(
            f"the connection received a message {received!r} instead of the close frame",
            "decode must pass CLOSE frames through unchanged.",
        )
    real.append((Opcode.CLOSE, close.serialize()))
    await _expect(
        run, pair.peer, CloseReceived(close.code, close.reason), "the echo of its close frame"
    )


def _check_control_wire(run: CheckRun, sent: dict[tuple[int, SideName], _Sent]) -> None:
    for (wire_index, side), expected in sent.items():
        frames = wire_frames(run, run.wires[wire_index], side)
        controls = [frame for frame in frames if frame.opcode >= Opcode.CLOSE]
        for number, (frame, (opcode, payload)) in enumerate(
            zip(controls, expected, strict=False), start=1
        ):
            bits = {n for n, bit in ((1, frame.rsv1), (2, frame.rsv2), (3, frame.rsv3)) if bit}
            if frame.opcode != opcode or frame.data != payload or bits:
                run.fail(
                    f"control frame {number} from the {side} crossed the wire as a "
                    f"{frame.opcode.name} frame of {frame.data[:40]!r} with "
                    f"{rsv_names(bits)} set; the application sent a {opcode.name} of "
                    f"{payload[:40]!r}",
                    "encode must return PING, PONG and CLOSE frames unchanged (payload "
                    "and reserved bits): RFC 6455 §5.5 limits their payload to 125 bytes "
                    "on the wire, and a connection failing because of an extension must "
                    "still be able to send a close frame the peer can read.",
                )
        if len(controls) < len(expected):
            run.fail(
                f"the {side} sent {len(controls)} control frames, "
                f"where the application sent {len(expected)}",
                "encode must return one frame for each frame it is given.",
            )


async def check_control_frames(run: CheckRun) -> None:
    """Ping and pong payloads, close codes and reasons arrive untouched, on the wire too."""
    sent: dict[tuple[int, SideName], _Sent] = {}
    for real_side in SIDES:
        peer_side = other(real_side)
        async with open_peer_pair(run, [run.client()], [run.server()], real=real_side) as pair:
            real: _Sent = sent.setdefault((len(run.wires) - 1, real_side), [])
            peer: _Sent = sent.setdefault((len(run.wires) - 1, peer_side), [])
            if real_side == "client":
                require_active(run, pair.real.extensions, pair.peer.protocol.extensions)
            else:
                require_active(run, pair.peer.protocol.extensions, pair.real.extensions)
            await _controls_from_real(run, pair, real, peer)
            await _controls_from_peer(run, pair, real, peer)
            await _close_from_real(run, pair, real, peer)
        async with open_peer_pair(run, [run.client()], [run.server()], real=real_side) as pair:
            real = sent.setdefault((len(run.wires) - 1, real_side), [])
            peer = sent.setdefault((len(run.wires) - 1, peer_side), [])
            await _close_from_peer(run, pair, real, peer)
    _check_control_wire(run, sent)
