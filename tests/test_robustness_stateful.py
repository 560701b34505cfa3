"""Stateful fuzzing of the sans-I/O Protocol: two ends driven by rules, and corrupted streams.

Two hypothesis state machines:

- :class:`ProtocolPairMachine` drives a client :class:`~trio_wsext.protocol.Protocol`
  and a server one (no extension, or permessage-deflate with and without
  context takeover, with a small window) the way two connections would:
  messages of any size, fragmented messages with pings between fragments,
  pings, a close from either side or both at once, and each side's bytes
  delivered to the other in pieces cut anywhere. Every message arrives
  intact and in order, every pong answers a ping in order, nothing ever
  fails, and after a close both ends reach ``CLOSED`` with the code sent.
- :class:`CorruptedStreamMachine` sends valid traffic to one receiver and
  corrupts the bytes still on the wire (flipped bits, garbage, a reserved
  opcode, a header announcing an absurd length, a lost stretch). Every message whose
  bytes all precede the first corrupted byte arrives intact and in order,
  no failure comes before that byte is delivered, and a failure is the last
  event, with 1002, 1007 or 1009.
"""

from __future__ import annotations

import itertools
from typing import Final

from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from trio_wsext.extensions.base import Extension
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.protocol import (
    CloseReceived,
    ConnectionFailed,
    Event,
    Message,
    Ping,
    Pong,
    Protocol,
    Side,
    State,
)

#: Extension settings of both ends: None, or (no_context_takeover, window_bits).
CONFIGS: Final[list[tuple[bool, int] | None]] = [None, (False, 15), (True, 15), (False, 9)]

#: Codes the receiver may fail with for a corrupted stream.
FAILURE_CODES: Final = frozenset({1002, 1007, 1009})

#: Close codes a side may send; 1005 sends an empty close frame.
CLOSE_CODES: Final = [1000, 1001, 1005, 3000, 4999]

#: Machine settings: a few dozen runs of a few dozen steps, so this file
#: runs in about ten seconds while covering every configuration.
STATEFUL: Final = settings(max_examples=120, stateful_step_count=40, deadline=None)


def sized(low: int, high: int) -> st.SearchStrategy[bytes]:
    """Return binary payloads of ``low`` to ``high`` bytes, half random, half repetitive.

    Hypothesis draws mostly short binaries; this reaches the sizes where frames
    take 16- and 64-bit lengths and the parser collects large payloads apart.
    """
    return st.tuples(st.integers(low, high), st.randoms(use_true_random=False)).map(
        lambda args: args[1].randbytes(args[0] // 2) + b"ab" * ((args[0] + 1) // 4)
    )


payloads = st.one_of(st.text(max_size=200), st.binary(max_size=200), sized(200, 70000))


def extensions_for(config: tuple[bool, int] | None, side: Side) -> list[Extension]:
    """Return ``side``'s negotiated extensions for ``config``."""
    if config is None:
        return []
    no_takeover, bits = config
    return [
        PerMessageDeflate(
            side is Side.SERVER,
            server_max_window_bits=bits,
            client_max_window_bits=bits,
            server_no_context_takeover=no_takeover,
            client_no_context_takeover=no_takeover,
        )
    ]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut ``data`` at ``cuts`` (taken modulo its length); at least one piece."""
    bounds = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)] or [data]


class End:
    """One end of the pair: its Protocol, and what it sent that the peer has to see."""

    def __init__(self, side: Side, config: tuple[bool, int] | None) -> None:
        self.protocol = Protocol(side, extensions_for(config, side))
        #: Bytes sent and not yet delivered to the peer.
        self.wire = b""
        #: Messages sent, in order, not yet received by the peer.
        self.messages: list[str | bytes] = []
        #: Pings sent and not yet answered.
        self.pings: list[bytes] = []
        #: The close (code, reason) this end sent, and the one it received.
        self.closed_with: tuple[int, str] | None = None
        self.close_received: tuple[int, str] | None = None

    def flush(self) -> None:
        """Move the Protocol's output onto the wire."""
        self.wire += self.protocol.data_to_send()

    def send_close(self, code: int, reason: str) -> None:
        """Send a close frame and remember it."""
        self.protocol.send_close(code, reason)
        self.closed_with = (code, reason)
        self.flush()


class ProtocolPairMachine(RuleBasedStateMachine):
    """A client and a server exchanging everything RFC 6455 allows, cut anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: dict[Side, End] = {}

    @initialize(config=st.sampled_from(CONFIGS))
    def start(self, config: tuple[bool, int] | None) -> None:
        """Open both ends with the same negotiated extensions."""
        self.ends = {side: End(side, config) for side in Side}

    def peer(self, side: Side) -> End:
        """Return the other end."""
        return self.ends[Side.SERVER if side is Side.CLIENT else Side.CLIENT]

    def can_send(self, side: Side) -> bool:
        """Tell whether ``side`` has not sent its close frame yet."""
        return self.ends[side].protocol.close_sent is None

    @rule(side=st.sampled_from(Side), message=payloads, compress=st.booleans())
    def send_message(self, side: Side, message: str | bytes, compress: bool) -> None:
        """Send one whole message, text or binary, compressed or not."""
        end = self.ends[side]
        if not self.can_send(side):
            return
        end.protocol.send_message(message, compress=None if compress else False)
        end.messages.append(message)
        end.flush()

    @rule(
        side=st.sampled_from(Side),
        message=payloads,
        cuts=st.lists(st.integers(0, 70000), max_size=4),
        ping_between=st.booleans(),
    )
    def send_fragmented(
        self, side: Side, message: str | bytes, cuts: list[int], ping_between: bool
    ) -> None:
        """Send one message in fragments cut anywhere (even inside a UTF-8 sequence)."""
        end = self.ends[side]
        if not self.can_send(side):
            return
        text = isinstance(message, str)
        raw = message.encode("utf-8") if isinstance(message, str) else message
        parts = split(raw, cuts)
        for index, part in enumerate(parts):
            end.protocol.send_fragment(part, text=text, fin=index == len(parts) - 1)
            if ping_between and index == 0:
                end.protocol.send_ping(b"between")
                end.pings.append(b"between")
        end.messages.append(message)
        end.flush()

    @rule(side=st.sampled_from(Side), payload=st.binary(max_size=125))
    def send_ping(self, side: Side, payload: bytes) -> None:
        """Send a ping; the peer answers it with a pong of the same payload."""
        end = self.ends[side]
        if not self.can_send(side):
            return
        end.protocol.send_ping(payload)
        end.pings.append(payload)
        end.flush()

    @rule(
        side=st.sampled_from(Side),
        code=st.sampled_from(CLOSE_CODES),
        reason=st.text(max_size=40),
    )
    def close(self, side: Side, code: int, reason: str) -> None:
        """Start the closing handshake from ``side`` (maybe while the peer does too)."""
        if not self.can_send(side):
            return
        self.ends[side].send_close(code, "" if code == 1005 else reason)

    @rule(side=st.sampled_from(Side), cuts=st.lists(st.integers(0, 200000), max_size=5))
    def deliver(self, side: Side, cuts: list[int]) -> None:
        """Deliver part of ``side``'s wire to its peer, in pieces cut anywhere."""
        end = self.ends[side]
        if not end.wire:
            return
        pieces = split(end.wire, cuts)
        count = 1 + cuts[0] % len(pieces) if cuts else len(pieces)
        for piece in pieces[:count]:
            self.receive(side, piece)
        end.wire = b"".join(pieces[count:])

    def receive(self, sender_side: Side, piece: bytes) -> None:
        """Feed ``piece`` from ``sender_side`` to its peer; act on and check the events."""
        sender = self.ends[sender_side]
        receiver = self.peer(sender_side)
        receiver.protocol.receive_data(piece)
        for event in receiver.protocol.events_received():
            self.handle(event, sender, receiver)

    def handle(self, event: Event, sender: End, receiver: End) -> None:
        """Check one event against what ``sender`` sent, and answer it as a connection would."""
        match event:
            case Message(data):
                assert sender.messages, f"unexpected message {data!r}"
                assert data == sender.messages.pop(0)
            case Ping(payload):
                if receiver.protocol.close_sent is None:
                    receiver.protocol.send_pong(payload)
                    receiver.flush()
            case Pong(payload):
                assert receiver.pings, f"unexpected pong {payload!r}"
                assert payload == receiver.pings.pop(0)
            case CloseReceived(code, reason):
                assert sender.closed_with == (code, reason)
                receiver.close_received = (code, reason)
                if receiver.protocol.close_sent is None:
                    receiver.send_close(code, "")
            case ConnectionFailed():
                raise AssertionError(f"a valid exchange failed: {event!r}")

    @invariant()
    def states_follow_the_close_frames(self) -> None:
        """Each end's state is what its close frames sent and received say."""
        for end in self.ends.values():
            sent = end.protocol.close_sent is not None
            received = end.protocol.close_received is not None
            expected = State.CLOSED if sent and received else State.OPEN
            if sent != received:
                expected = State.CLOSING
            assert end.protocol.state is expected
            assert end.protocol.failure is None

    def teardown(self) -> None:
        """Deliver everything still on the wire, both ways; check that nothing was lost."""
        if not self.ends:
            return
        while any(end.wire for end in self.ends.values()):
            for side, end in self.ends.items():
                wire, end.wire = end.wire, b""
                if wire:
                    self.receive(side, wire)
        for side, end in self.ends.items():
            peer = self.peer(side)
            assert end.messages == [], "messages sent but never received"
            if peer.closed_with is None:
                assert end.pings == [], "pings never answered"
            if end.closed_with is not None:
                assert end.protocol.state is State.CLOSED
                assert peer.close_received == end.closed_with


class CorruptedStreamMachine(RuleBasedStateMachine):
    """One sender, one receiver, and a wire that rules corrupt ahead of delivery."""

    def __init__(self) -> None:
        super().__init__()
        self.sender = Protocol(Side.CLIENT)
        self.receiver = Protocol(Side.SERVER)
        #: Everything the sender sent, as the receiver will get it (corruptions included).
        self.wire = bytearray()
        #: How many bytes of ``wire`` were delivered.
        self.delivered = 0
        #: (offset just past its last byte, message) of each message sent.
        self.sent: list[tuple[int, str | bytes]] = []
        #: Offset of the first corrupted byte, or None.
        self.corrupted_at: int | None = None
        self.received: list[str | bytes] = []
        self.ended: Event | None = None

    @initialize(
        receiver_side=st.sampled_from(Side),
        config=st.sampled_from(CONFIGS),
        limit=st.sampled_from([None, 4096]),
    )
    def start(
        self, receiver_side: Side, config: tuple[bool, int] | None, limit: int | None
    ) -> None:
        """Open a sender and a receiver of the chosen sides and extensions."""
        sender_side = Side.CLIENT if receiver_side is Side.SERVER else Side.SERVER
        self.sender = Protocol(sender_side, extensions_for(config, sender_side))
        self.receiver = Protocol(
            receiver_side, extensions_for(config, receiver_side), max_message_size=limit
        )

    def clean_up_to(self) -> int:
        """Return the offset up to which the wire is known to be valid."""
        return len(self.wire) if self.corrupted_at is None else self.corrupted_at

    @rule(message=st.one_of(st.text(max_size=100), st.binary(max_size=100), sized(100, 3000)))
    def send_message(self, message: str | bytes) -> None:
        """Send a whole message that fits the receiver's limit."""
        self.sender.send_message(message)
        self.wire += self.sender.data_to_send()
        self.sent.append((len(self.wire), message))

    @rule(parts=st.lists(st.binary(max_size=300), min_size=1, max_size=4), text=st.booleans())
    def send_fragmented(self, parts: list[bytes], text: bool) -> None:
        """Send a message in fragments, with a pong between the first two."""
        if text:
            # Valid UTF-8 for the message as a whole: ASCII bytes only.
            parts = [bytes(byte & 0x7F for byte in part) for part in parts]
        for index, part in enumerate(parts):
            self.sender.send_fragment(part, text=text, fin=index == len(parts) - 1)
            if index == 0:
                self.sender.send_pong(b"between")
        self.wire += self.sender.data_to_send()
        whole = b"".join(parts)
        self.sent.append((len(self.wire), whole.decode("ascii") if text else whole))

    @rule(payload=st.binary(max_size=125))
    def send_ping(self, payload: bytes) -> None:
        """Send a ping between messages."""
        self.sender.send_ping(payload)
        self.wire += self.sender.data_to_send()

    @rule(data=st.data())
    def corrupt(self, data: st.DataObject) -> None:
        """Damage the bytes not yet delivered: bits, garbage, a bad header, a lost stretch."""
        if self.delivered >= len(self.wire):
            return
        position = data.draw(st.integers(self.delivered, len(self.wire) - 1))
        kind = data.draw(st.sampled_from(["flip", "garbage", "opcode", "length", "lose"]))
        if kind == "flip":
            self.wire[position] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "garbage":
            self.wire[position:position] = data.draw(st.binary(min_size=1, max_size=20))
        elif kind == "opcode":
            self.wire[position:position] = bytes([0x80 | data.draw(st.sampled_from([3, 7, 11]))])
        elif kind == "length":
            self.wire[position:position] = b"\x82\xff" + b"\x7f" * 8
        else:
            end = data.draw(st.integers(position + 1, len(self.wire)))
            del self.wire[position:end]
        # Sent offsets behind the damage no longer matter: those messages are unchecked.
        self.corrupted_at = min(position, self.clean_up_to())

    @rule(count=st.integers(1, 5000))
    def deliver(self, count: int) -> None:
        """Deliver the next ``count`` bytes of the wire to the receiver."""
        piece = bytes(self.wire[self.delivered : self.delivered + count])
        if not piece:
            return
        self.delivered += len(piece)
        self.receiver.receive_data(piece)
        for event in self.receiver.events_received():
            self.check(event)

    def check(self, event: Event) -> None:
        """Check one event against the clean part of the wire."""
        assert self.ended is None, f"{event!r} after {self.ended!r}"
        match event:
            case Message(data):
                index = len(self.received)
                self.received.append(data)
                if index < len(self.sent) and self.sent[index][0] <= self.clean_up_to():
                    assert data == self.sent[index][1]
            case CloseReceived():
                self.ended = event
                # The sender never closes: a close frame must come from the damage.
                assert self.corrupted_at is not None
            case ConnectionFailed(code, reason):
                self.ended = event
                assert code in FAILURE_CODES, (code, reason)
                assert self.corrupted_at is not None, f"valid bytes failed: {reason}"
                assert self.delivered > self.corrupted_at, f"failed before the damage: {reason}"
            case Ping() | Pong():
                pass

    @invariant()
    def clean_messages_arrive_in_order(self) -> None:
        """Every message wholly delivered before the damage has arrived."""
        if self.ended is not None:
            return
        clean = [
            message for end, message in self.sent if end <= min(self.delivered, self.clean_up_to())
        ]
        assert self.received[: len(clean)] == clean

    def teardown(self) -> None:
        """Deliver the rest and EOF; without damage, everything arrived and nothing failed."""
        self.deliver(len(self.wire))
        self.receiver.receive_data(b"")
        assert self.receiver.state is State.CLOSED
        if self.corrupted_at is None:
            assert self.received == [message for _, message in self.sent]
            assert self.ended is None


ProtocolPairMachine.TestCase.settings = STATEFUL
CorruptedStreamMachine.TestCase.settings = STATEFUL
TestProtocolPair = ProtocolPairMachine.TestCase
TestCorruptedStream = CorruptedStreamMachine.TestCase
