"""Tests of trio_wsext.protocol: the sans-I/O core, back to back and on literal bytes."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.extensions.base import Extension
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import Close, Frame, FrameParser, Opcode, apply_mask
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

SIDES = pytest.mark.parametrize("side", [Side.CLIENT, Side.SERVER], ids=["client", "server"])

#: The masking key of the examples in RFC 6455 §5.7.
RFC_KEY = b"\x37\xfa\x21\x3d"

#: Message sizes at the edges of the 7-, 16- and 64-bit length forms.
BOUNDARY_SIZES = [0, 1, 125, 126, 127, 65535, 65536]


class ProtocolPair:
    """A client and a server Protocol wired back to back (h11's ConnectionPair)."""

    def __init__(
        self,
        client_extensions: Sequence[Extension] = (),
        server_extensions: Sequence[Extension] = (),
        **kwargs: Any,
    ) -> None:
        self.client = Protocol(Side.CLIENT, client_extensions, **kwargs)
        self.server = Protocol(Side.SERVER, server_extensions, **kwargs)

    def end(self, side: Side) -> Protocol:
        """Return the Protocol playing ``side``."""
        return self.client if side is Side.CLIENT else self.server

    def peer(self, side: Side) -> Protocol:
        """Return the Protocol facing ``side``."""
        return self.server if side is Side.CLIENT else self.client

    def deliver(self, side: Side) -> list[Event]:
        """Move what ``side`` queued to its peer; return the peer's events."""
        receiver = self.peer(side)
        receiver.receive_data(self.end(side).data_to_send())
        return receiver.events_received()


def other(side: Side) -> Side:
    """Return the other side."""
    return Side.SERVER if side is Side.CLIENT else Side.CLIENT


def raw_frame(
    first: int, payload: bytes = b"", *, to: Side, length: int | None = None, key: bytes = RFC_KEY
) -> bytes:
    """Build a frame by hand: ``first`` byte as given, masked if it goes ``to`` a server.

    ``length`` overrides the announced payload length (for header-only tests).
    """
    size = len(payload) if length is None else length
    mask_bit = 0x80 if to is Side.SERVER else 0
    if size < 126:
        header = bytes([first, mask_bit | size])
    elif size < 65536:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", size)
    if to is Side.SERVER:
        return header + key + apply_mask(payload, key)
    return header + payload


def frames_sent(side: Side, wire: bytes) -> list[Frame]:
    """Parse what ``side`` sent (masked if it is a client)."""
    parser = FrameParser(require_mask=side is Side.CLIENT)
    parser.feed(wire)
    frames = []
    while (frame := parser.next_frame()) is not None:
        frames.append(frame)
    assert parser.buffered == 0
    return frames


def receive(side: Side, data: bytes, **kwargs: Any) -> tuple[Protocol, list[Event]]:
    """Feed ``data`` to a new Protocol playing ``side``; return it and its events."""
    protocol = Protocol(side, **kwargs)
    protocol.receive_data(data)
    return protocol, protocol.events_received()


def failed(events: list[Event], code: int, reason: str) -> ConnectionFailed:
    """Check that the last event is a failure with ``code`` and ``reason``; return it."""
    assert events, "no events"
    last = events[-1]
    assert isinstance(last, ConnectionFailed), events
    assert (last.code, last.reason) == (code, reason)
    assert last.exception.code == code
    assert str(last.exception) == reason
    return last


def boundary_message(size: int, text: bool) -> str | bytes:
    """A message of ``size`` payload bytes; text mixes 1- and 2-byte characters."""
    if text:
        return "é" * (size // 2) + "a" * (size % 2)
    return bytes(range(256)) * (size // 256) + bytes(size % 256)


@pytest.fixture
def rfc_mask_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make clients mask with the key of RFC 6455 §5.7."""
    monkeypatch.setattr("trio_wsext.frames.os.urandom", lambda n: RFC_KEY)


# -- construction ------------------------------------------------------------------


def test_protocol_starts_open_and_empty() -> None:
    """A new Protocol is OPEN, with nothing to send or report."""
    protocol = Protocol(Side.SERVER)
    assert protocol.state is State.OPEN
    assert (protocol.side, protocol.max_message_size, protocol.extensions) == (
        Side.SERVER,
        2**20,
        [],
    )
    assert (protocol.close_sent, protocol.close_received, protocol.failure) == (None, None, None)
    assert protocol.eof_received is False
    assert protocol.data_to_send() == b""
    assert protocol.events_received() == []
    assert repr(protocol) == "<Protocol SERVER OPEN extensions=[]>"


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"], ids=repr)
def test_protocol_refuses_bad_max_message_size(value: object) -> None:
    """max_message_size must be a positive int or None."""
    with pytest.raises(
        ValueError, match=r"^max_message_size must be a positive int or None, not "
    ):
        Protocol(Side.CLIENT, max_message_size=value)  # type: ignore[arg-type]


def test_protocol_refuses_bad_side() -> None:
    """side must be a Side."""
    with pytest.raises(
        TypeError, match=r"^side must be Side.CLIENT or Side.SERVER, not 'client'$"
    ):
        Protocol("client")  # type: ignore[arg-type]


# -- literal bytes and RFC vectors -------------------------------------------------


@pytest.mark.parametrize(
    ("side", "wire", "events"),
    [
        (Side.CLIENT, "810548656c6c6f", [Message("Hello")]),
        (Side.SERVER, "818537fa213d7f9f4d5158", [Message("Hello")]),
        (Side.CLIENT, "010348656c80026c6f", [Message("Hello")]),
        (Side.CLIENT, "890548656c6c6f", [Ping(b"Hello")]),
        (Side.SERVER, "8a8537fa213d7f9f4d5158", [Pong(b"Hello")]),
        (Side.CLIENT, "827e0100" + "00" * 256, [Message(bytes(256))]),
        (Side.CLIENT, "827f0000000000010000" + "00" * 65536, [Message(bytes(65536))]),
        (Side.CLIENT, "880203e8", [CloseReceived(1000, "")]),
        (Side.CLIENT, "8800", [CloseReceived(1005, "")]),
    ],
    ids=[
        "text",
        "masked-text",
        "fragmented",
        "ping",
        "masked-pong",
        "256",
        "64k",
        "close",
        "empty",
    ],
)
def test_receive_rfc_vectors(side: Side, wire: str, events: list[Event]) -> None:
    """The examples of RFC 6455 §5.7 give their events."""
    assert receive(side, bytes.fromhex(wire))[1] == events


@pytest.mark.usefixtures("rfc_mask_key")
@pytest.mark.parametrize(
    ("side", "action", "wire"),
    [
        (Side.SERVER, lambda p: p.send_message("Hello"), "810548656c6c6f"),
        (Side.CLIENT, lambda p: p.send_message("Hello"), "818537fa213d7f9f4d5158"),
        (Side.SERVER, lambda p: p.send_message(b"\x00\xff"), "820200ff"),
        (Side.SERVER, lambda p: p.send_ping(b"Hello"), "890548656c6c6f"),
        (Side.CLIENT, lambda p: p.send_pong(b"Hello"), "8a8537fa213d7f9f4d5158"),
        (Side.SERVER, lambda p: p.send_pong(), "8a00"),
        (Side.SERVER, lambda p: p.send_close(), "880203e8"),
        (Side.SERVER, lambda p: p.send_close(1001, "bye"), "880503e9627965"),
        (Side.SERVER, lambda p: p.send_close(1005), "8800"),
        (
            Side.SERVER,
            lambda p: (
                p.send_fragment("Hel", text=True, fin=False),
                p.send_fragment(b"lo", text=True, fin=True),
            ),
            "010348656c80026c6f",
        ),
    ],
    ids=[
        "text",
        "masked-text",
        "binary",
        "ping",
        "masked-pong",
        "empty-pong",
        "close",
        "close-reason",
        "close-1005",
        "fragments",
    ],
)
def test_send_literal_bytes(side: Side, action: Any, wire: str) -> None:
    """What the send_* methods queue, byte for byte (RFC 6455 §5.7 where it has them)."""
    protocol = Protocol(side)
    action(protocol)
    assert protocol.data_to_send() == bytes.fromhex(wire)
    assert protocol.data_to_send() == b""


@SIDES
def test_sender_masks_only_as_client(side: Side) -> None:
    """Clients mask every frame with a fresh key; servers never mask (RFC 6455 §5.1)."""
    protocol = Protocol(side)
    protocol.send_message(b"abcd")
    protocol.send_message(b"abcd")
    protocol.send_ping(b"p")
    protocol.send_close()
    wire = protocol.data_to_send()
    if side is Side.SERVER:
        assert wire == b"\x82\x04abcd\x82\x04abcd\x89\x01p\x88\x02\x03\xe8"
    else:
        frames = [wire[0:10], wire[10:20], wire[20:27], wire[27:]]
        assert [f[:2] for f in frames] == [b"\x82\x84", b"\x82\x84", b"\x89\x81", b"\x88\x82"]
        assert [apply_mask(f[6:], f[2:6]) for f in frames] == [b"abcd", b"abcd", b"p", b"\x03\xe8"]
        assert frames[0][2:6] != frames[1][2:6]


def test_client_draws_masking_keys_64_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """One os.urandom call per 64 frames; every frame has its own key from it."""
    calls: list[int] = []
    real_urandom = os.urandom

    def urandom(n: int) -> bytes:
        calls.append(n)
        return real_urandom(n)

    monkeypatch.setattr("trio_wsext.protocol.os.urandom", urandom)
    protocol = Protocol(Side.CLIENT)
    for index in range(130):
        protocol.send_message(index.to_bytes(2, "big"))
    wire = protocol.data_to_send()
    assert calls == [256, 256, 256]
    keys = [wire[i + 2 : i + 6] for i in range(0, len(wire), 8)]
    assert len(set(keys)) == 130
    assert [
        apply_mask(wire[i + 6 : i + 8], wire[i + 2 : i + 6]) for i in range(0, len(wire), 8)
    ] == [index.to_bytes(2, "big") for index in range(130)]


# -- round trips -------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize("size", BOUNDARY_SIZES, ids=str)
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_message_round_trip_at_length_boundaries(side: Side, size: int, text: bool) -> None:
    """Messages at every length-form boundary arrive intact, in both directions."""
    pair = ProtocolPair()
    message = boundary_message(size, text)
    pair.end(side).send_message(message)
    assert pair.deliver(side) == [Message(message)]


@SIDES
@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536], ids=str)
def test_message_survives_one_byte_at_a_time(side: Side, size: int) -> None:
    """A message fed to the peer one byte at a time arrives once, whole."""
    pair = ProtocolPair()
    message = boundary_message(size, text=True)
    pair.end(side).send_message(message)
    pair.end(side).send_ping(b"after")
    wire = pair.end(side).data_to_send()
    receiver = pair.peer(side)
    events: list[Event] = []
    for i in range(len(wire)):
        receiver.receive_data(wire[i : i + 1])
        events += receiver.events_received()
    assert events == [Message(message), Ping(b"after")]


@SIDES
def test_fragmented_message_with_interleaved_control_frames(side: Side) -> None:
    """Control frames between fragments arrive in order, before the message (RFC 6455 §5.4)."""
    pair = ProtocolPair()
    sender = pair.end(side)
    sender.send_fragment("κό", text=True, fin=False)
    sender.send_ping(b"1")
    sender.send_fragment("σμ", text=True, fin=False)
    sender.send_pong(b"2")
    sender.send_ping(b"3")
    sender.send_fragment(b"", text=True, fin=False)
    sender.send_fragment("ε", text=True, fin=True)
    sender.send_fragment(b"\x00", text=False, fin=False)
    sender.send_ping(b"4")
    sender.send_fragment(b"\xff", text=False, fin=True)
    assert pair.deliver(side) == [
        Ping(b"1"),
        Pong(b"2"),
        Ping(b"3"),
        Message("κόσμε"),
        Ping(b"4"),
        Message(b"\x00\xff"),
    ]


@SIDES
def test_fragmented_text_split_inside_a_character(side: Side) -> None:
    """Bytes fragments of a text message may split a character."""
    pair = ProtocolPair()
    encoded = "κόσμε".encode()
    for i, byte in enumerate(encoded):
        pair.end(side).send_fragment(bytes([byte]), text=True, fin=i == len(encoded) - 1)
    assert pair.deliver(side) == [Message("κόσμε")]


message_items = st.one_of(
    st.text(max_size=200).map(lambda t: ("message", t)),
    st.binary(max_size=200).map(lambda b: ("message", b)),
    st.builds(boundary_message, st.sampled_from(BOUNDARY_SIZES), st.booleans()).map(
        lambda m: ("message", m)
    ),
    st.binary(max_size=125).map(lambda b: ("ping", b)),
    st.lists(st.text(max_size=20), min_size=1, max_size=4).map(lambda parts: ("fragments", parts)),
    st.lists(st.binary(max_size=20), min_size=1, max_size=4).map(
        lambda parts: ("fragments", parts)
    ),
)


def send_items(sender: Protocol, items: list[tuple[str, Any]]) -> list[Event]:
    """Queue ``items`` on ``sender``; return the events the peer should see."""
    expected: list[Event] = []
    for kind, value in items:
        if kind == "message":
            sender.send_message(value)
            expected.append(Message(value))
        elif kind == "ping":
            sender.send_ping(value)
            expected.append(Ping(value))
        else:
            text = isinstance(value[0], str)
            for i, part in enumerate(value):
                sender.send_fragment(part, text=text, fin=i == len(value) - 1)
            expected.append(Message(("" if text else b"").join(value)))
    return expected


@SIDES
@settings(max_examples=40, deadline=None)
@given(items=st.lists(message_items, max_size=8), data=st.data())
def test_any_messages_survive_any_split(
    side: Side, items: list[tuple[str, Any]], data: st.DataObject
) -> None:
    """Any sequence of messages, pings and fragments survives any split of the byte stream."""
    pair = ProtocolPair()
    sender = pair.end(side)
    expected = send_items(sender, items)
    sender.send_close(1000, "done")
    expected.append(CloseReceived(1000, "done"))
    wire = sender.data_to_send()
    if len(wire) <= 4096 and data.draw(st.booleans(), label="bytewise"):
        cuts = list(range(1, len(wire)))
    else:
        cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=30))))
    receiver = pair.peer(side)
    events: list[Event] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        receiver.receive_data(wire[start:end])
        events += receiver.events_received()
    assert events == expected
    assert receiver.state is State.CLOSING


# -- header violations -------------------------------------------------------------


@SIDES
@pytest.mark.parametrize(
    ("first", "payload", "reason"),
    [
        *[(0x80 | op, b"", f"reserved opcode {op:#x}") for op in (3, 7, 11, 15)],
        (0x09, b"", "fragmented control frame (PING)"),
        (0x0A, b"", "fragmented control frame (PONG)"),
        (0x08, b"\x03\xe8", "fragmented control frame (CLOSE)"),
        (0x89, bytes(126), "control frame (PING) of 126 bytes"),
        (0x88, b"\x03\xe8" + bytes(124), "control frame (CLOSE) of 126 bytes"),
        (0xC1, b"x", "reserved bit RSV1 set without a negotiated extension"),
        (0xA2, b"x", "reserved bit RSV2 set without a negotiated extension"),
        (0x92, b"x", "reserved bit RSV3 set without a negotiated extension"),
        (0xF9, b"", "reserved bits RSV1, RSV2, RSV3 set without a negotiated extension"),
        (0x80, b"x", "continuation frame without a message in progress"),
    ],
    ids=[
        "opcode-3",
        "opcode-7",
        "opcode-b",
        "opcode-f",
        "fragmented-ping",
        "fragmented-pong",
        "fragmented-close",
        "ping-126",
        "close-126",
        "rsv1",
        "rsv2",
        "rsv3",
        "all-rsv-on-ping",
        "cont-first",
    ],
)
def test_receive_protocol_violation_fails_with_1002(
    side: Side, first: int, payload: bytes, reason: str
) -> None:
    """Each RFC 6455 §5 violation fails the connection with 1002 and a precise reason."""
    protocol, events = receive(side, raw_frame(first, payload, to=side))
    error = failed(events, 1002, reason)
    assert events == [error]
    assert type(error.exception) is ProtocolError
    assert protocol.failure is error
    assert protocol.state is State.CLOSING


@SIDES
def test_receive_wrong_masking_fails(side: Side) -> None:
    """A server refuses unmasked frames, a client masked ones (RFC 6455 §5.1)."""
    wrong = raw_frame(0x81, b"hi", to=other(side))
    reason = "unmasked frame from client" if side is Side.SERVER else "masked frame from server"
    failed(receive(side, wrong)[1], 1002, reason)


@SIDES
@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([(0x01, b"a"), (0x81, b"b")], "TEXT frame while a fragmented message is in progress"),
        ([(0x02, b"a"), (0x82, b"b")], "BINARY frame while a fragmented message is in progress"),
        ([(0x01, b"a"), (0x82, b"b")], "BINARY frame while a fragmented message is in progress"),
        ([(0x81, b"a"), (0x80, b"b")], "continuation frame without a message in progress"),
    ],
    ids=["text-in-text", "binary-in-binary", "binary-in-text", "cont-after-fin"],
)
def test_receive_continuation_violation(
    side: Side, frames: list[tuple[int, bytes]], reason: str
) -> None:
    """Interleaved messages and stray continuations fail with 1002 (RFC 6455 §5.4)."""
    wire = b"".join(raw_frame(first, payload, to=side) for first, payload in frames)
    events = receive(side, wire)[1]
    failed(events, 1002, reason)
    assert len(events) == 1 + (frames[0][0] & 0x80 != 0)


# -- UTF-8 -------------------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff", "invalid start byte"),
        (b"\xce\xba\xe1\xbd", "unexpected end of data"),
        (b"\xed\xa0\x80", "invalid continuation byte"),
        (b"\xc0\xaf", "invalid start byte"),
    ],
    ids=["ff", "truncated", "surrogate", "overlong"],
)
def test_receive_invalid_utf8_text_fails_with_1007(
    side: Side, payload: bytes, reason: str
) -> None:
    """A text message that is not UTF-8 fails with 1007 (RFC 6455 §8.1)."""
    error = failed(
        receive(side, raw_frame(0x81, payload, to=side))[1],
        1007,
        f"invalid UTF-8 in text message: {reason}",
    )
    assert isinstance(error.exception.__cause__, UnicodeDecodeError)


@SIDES
def test_receive_invalid_utf8_fails_on_the_frame_that_carries_it(side: Side) -> None:
    """Autobahn 6.4.1: the connection fails on the bad fragment, before the message ends."""
    protocol = Protocol(side)
    protocol.receive_data(raw_frame(0x01, "κόσμε".encode(), to=side))
    assert protocol.events_received() == []
    protocol.receive_data(raw_frame(0x00, b"\xf4\x90\x80\x80", to=side))
    reason = "invalid UTF-8 in text message: invalid continuation byte"
    failed(protocol.events_received(), 1007, reason)
    protocol.receive_data(raw_frame(0x80, b"edited", to=side))
    assert protocol.events_received() == []


@SIDES
def test_receive_surrogate_prefix_fails_before_its_last_byte(side: Side) -> None:
    """ED A0 (a surrogate's start) at the end of a fragment fails at once."""
    _, events = receive(side, raw_frame(0x01, b"ok\xed\xa0", to=side))
    failed(events, 1007, "invalid UTF-8 in text message: invalid continuation byte")


@SIDES
def test_receive_binary_is_not_utf8_checked(side: Side) -> None:
    """Binary messages carry any bytes."""
    assert receive(side, raw_frame(0x82, b"\xff\xed\xa0\x80", to=side))[1] == [
        Message(b"\xff\xed\xa0\x80")
    ]


# -- close frames --------------------------------------------------------------------------


@SIDES
@pytest.mark.parametrize(
    ("payload", "code", "reason"),
    [
        (b"\x03", 1002, "close frame payload of 1 byte"),
        *[
            (struct.pack("!H", c), 1002, f"invalid close code {c}")
            for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)
        ],
        (
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            1007,
            "close reason is not valid UTF-8",
        ),
    ],
    ids=[
        "1-byte",
        *(str(c) for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)),
        "autobahn-7.5.1",
    ],
)
def test_receive_invalid_close_payload(side: Side, payload: bytes, code: int, reason: str) -> None:
    """Bad close payloads fail (RFC 6455 §5.5.1, §7.4): 1002, or 1007 for a non-UTF-8 reason."""
    protocol, events = receive(side, raw_frame(0x88, payload, to=side))
    failed(events, code, reason)
    assert protocol.close_received is None


@SIDES
@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, ""), (1001, "bye"), (1003, ""), (1007, ""), (1014, ""), (3000, ""), (4999, "é" * 61)],
    ids=["1000", "1001", "1003", "1007", "1014", "3000", "4999-long-reason"],
)
def test_receive_valid_close_codes(side: Side, code: int, reason: str) -> None:
    """Autobahn 7.7: every valid code is received and reported with its reason."""
    protocol, events = receive(side, raw_frame(0x88, Close(code, reason).serialize(), to=side))
    assert events == [CloseReceived(code, reason)]
    assert protocol.close_received == Close(code, reason)


# -- size limit ----------------------------------------------------------------------------


@SIDES
def test_receive_size_limit_from_header_before_payload(side: Side) -> None:
    """A header announcing more than max_message_size fails (1009) with no payload read."""
    header_only = raw_frame(0x82, to=side, length=2**40)
    _, events = receive(side, header_only, max_message_size=1000)
    error = failed(events, 1009, "message exceeds the size limit of 1000 bytes")
    assert type(error.exception) is PayloadTooBig
    assert isinstance(error.exception.__cause__, PayloadTooBig)


@SIDES
@pytest.mark.parametrize(
    ("announced", "fails"), [(1000, False), (1001, True)], ids=["fits", "one-over"]
)
def test_receive_size_limit_exact_from_header(side: Side, announced: int, fails: bool) -> None:
    """Without extensions the header limit is exactly max_message_size."""
    _, events = receive(side, raw_frame(0x82, to=side, length=announced), max_message_size=1000)
    if fails:
        failed(events, 1009, "message exceeds the size limit of 1000 bytes")
    else:
        assert events == []


@SIDES
def test_receive_size_limit_counts_all_fragments(side: Side) -> None:
    """The limit applies to the message: fragments add up, control frames do not count."""
    protocol = Protocol(side, max_message_size=10)
    protocol.receive_data(
        raw_frame(0x01, b"x" * 6, to=side)
        + raw_frame(0x89, b"p" * 125, to=side)
        + raw_frame(0x00, b"x" * 4, to=side)
    )
    assert protocol.events_received() == [Ping(b"p" * 125)]
    protocol.receive_data(raw_frame(0x80, b"x", to=side))
    failed(protocol.events_received(), 1009, "message exceeds the size limit of 10 bytes")


@SIDES
def test_receive_size_limit_small_frame_over_small_limit(side: Side) -> None:
    """A frame under 125 bytes but over a tiny limit still fails with 1009."""
    _, events = receive(side, raw_frame(0x82, bytes(11), to=side), max_message_size=10)
    failed(events, 1009, "message exceeds the size limit of 10 bytes")


@SIDES
def test_receive_size_limit_text_counts_utf8_bytes(side: Side) -> None:
    """Text counts UTF-8 bytes, not characters."""
    _, events = receive(side, raw_frame(0x81, "éé".encode(), to=side), max_message_size=3)
    failed(events, 1009, "message exceeds the size limit of 3 bytes")


@SIDES
def test_receive_without_size_limit(side: Side) -> None:
    """max_message_size=None accepts any size."""
    pair = ProtocolPair(max_message_size=None)
    pair.end(side).send_message(bytes(2**20 + 1))
    assert pair.deliver(side) == [Message(bytes(2**20 + 1))]


# -- close handshake and state ------------------------------------------------------------


@SIDES
def test_close_handshake_started_by_side(side: Side) -> None:
    """One side closes, the other echoes the code: both end CLOSED (RFC 6455 §5.5.1)."""
    pair = ProtocolPair()
    closer, answerer = pair.end(side), pair.peer(side)
    states = [(closer.state, answerer.state)]
    closer.send_close(1001, "going")
    states.append((closer.state, answerer.state))
    assert pair.deliver(side) == [CloseReceived(1001, "going")]
    states.append((closer.state, answerer.state))
    answerer.send_close(1001)
    states.append((closer.state, answerer.state))
    assert pair.deliver(other(side)) == [CloseReceived(1001, "")]
    states.append((closer.state, answerer.state))
    assert states == [
        (State.OPEN, State.OPEN),
        (State.CLOSING, State.OPEN),
        (State.CLOSING, State.CLOSING),
        (State.CLOSING, State.CLOSED),
        (State.CLOSED, State.CLOSED),
    ]
    assert (closer.close_sent, closer.close_received) == (Close(1001, "going"), Close(1001, ""))


@SIDES
def test_close_without_code_is_echoed_empty(side: Side) -> None:
    """An empty close reports 1005, and echoing 1005 sends an empty payload again."""
    pair = ProtocolPair()
    pair.end(side).send_close(1005)
    assert pair.deliver(side) == [CloseReceived(1005, "")]
    pair.peer(side).send_close(1005)
    wire = pair.peer(side).data_to_send()
    assert wire[:2] == (b"\x88\x00" if side is Side.CLIENT else b"\x88\x80")
    pair.end(side).receive_data(wire)
    assert pair.end(side).events_received() == [CloseReceived(1005, "")]


@SIDES
def test_receive_ignores_everything_after_close(side: Side) -> None:
    """After a close frame, later bytes, even invalid ones, are ignored."""
    protocol, events = receive(
        side,
        raw_frame(0x88, b"\x03\xe8", to=side)
        + raw_frame(0x81, b"late", to=side)
        + raw_frame(0x83, b"", to=side),
    )
    assert events == [CloseReceived(1000, "")]
    protocol.receive_data(raw_frame(0x81, b"\xff", to=side))
    assert protocol.events_received() == []
    assert protocol.failure is None


@SIDES
def test_receive_data_after_sending_close(side: Side) -> None:
    """Messages the peer sent before seeing our close are still delivered (CLOSING)."""
    pair = ProtocolPair()
    pair.end(side).send_close()
    pair.peer(side).send_message("in flight")
    assert pair.deliver(other(side)) == [Message("in flight")]
    assert pair.end(side).state is State.CLOSING


@SIDES
@pytest.mark.parametrize(
    ("action", "what"),
    [
        (lambda p: p.send_message("x"), "a message"),
        (lambda p: p.send_fragment(b"x", text=False, fin=True), "a fragment"),
        (lambda p: p.send_ping(), "a ping"),
        (lambda p: p.send_pong(), "a pong"),
        (lambda p: p.send_close(), "a close frame"),
    ],
    ids=["message", "fragment", "ping", "pong", "close"],
)
def test_send_after_close_raises(side: Side, action: Any, what: str) -> None:
    """Nothing is sent after a close frame (RFC 6455 §5.5.1)."""
    protocol = Protocol(side)
    protocol.send_close()
    protocol.data_to_send()
    with pytest.raises(ProtocolError, match=rf"^cannot send {what} after sending a close frame$"):
        action(protocol)
    assert protocol.data_to_send() == b""


@SIDES
def test_eof_before_close(side: Side) -> None:
    """EOF is no event: state becomes CLOSED and eof_received tells the connection."""
    protocol, events = receive(side, raw_frame(0x01, b"half", to=side)[:-1])
    protocol.receive_data(b"")
    assert protocol.events_received() == events == []
    assert protocol.eof_received
    assert protocol.state is State.CLOSED
    assert protocol.close_received is None
    protocol.receive_data(b"")
    with pytest.raises(ProtocolError, match=r"^data received after EOF$"):
        protocol.receive_data(b"more")


@SIDES
def test_eof_after_close(side: Side) -> None:
    """EOF after the peer's close frame also ends in CLOSED."""
    protocol, _ = receive(side, raw_frame(0x88, b"", to=side))
    before = protocol.state
    protocol.receive_data(b"")
    assert (before, protocol.state) == (State.CLOSING, State.CLOSED)


@SIDES
def test_failure_then_close(side: Side) -> None:
    """After a failure the peer's bytes, even its close, are ignored (RFC 6455 §7.1.7)."""
    protocol, events = receive(side, raw_frame(0x83, b"", to=side))
    failure = failed(events, 1002, "reserved opcode 0x3")
    before = protocol.state
    protocol.receive_data(raw_frame(0x88, b"\x03\xe8", to=side))
    assert protocol.events_received() == []
    assert protocol.close_received is None
    protocol.send_close(failure.code, failure.reason)
    assert (before, protocol.state) == (State.CLOSING, State.CLOSED)
    [frame] = frames_sent(side, protocol.data_to_send())
    assert Close.parse(frame.data) == Close(1002, "reserved opcode 0x3")


@SIDES
def test_failure_close_frame_carries_code_and_reason(side: Side) -> None:
    """send_close(failure.code, failure.reason) tells the peer why."""
    pair = ProtocolPair()
    pair.peer(side).receive_data(raw_frame(0x81, b"\xff", to=other(side)))
    failure = failed(
        pair.peer(side).events_received(),
        1007,
        "invalid UTF-8 in text message: invalid start byte",
    )
    pair.peer(side).send_close(failure.code, failure.reason)
    assert pair.deliver(other(side)) == [
        CloseReceived(1007, "invalid UTF-8 in text message: invalid start byte")
    ]


@SIDES
def test_events_before_a_failure_are_kept(side: Side) -> None:
    """Events of frames before the bad one come first, then the failure."""
    _, events = receive(
        side,
        raw_frame(0x81, b"one", to=side)
        + raw_frame(0x89, b"two", to=side)
        + raw_frame(0x84, b"", to=side)
        + raw_frame(0x81, b"three", to=side),
    )
    assert events[:2] == [Message("one"), Ping(b"two")]
    failed(events, 1002, "reserved opcode 0x4")
    assert len(events) == 3


# -- send-side validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (
            lambda p: p.send_ping(bytes(126)),
            ValueError,
            r"^ping payload must be at most 125 bytes, not 126$",
        ),
        (
            lambda p: p.send_pong("é" * 63),
            ValueError,
            r"^pong payload must be at most 125 bytes, not 126$",
        ),
        (
            lambda p: p.send_ping(1),
            TypeError,
            r"^ping payload must be bytes-like or str, not int$",
        ),
        (lambda p: p.send_close(1006), ValueError, r"^close code 1006 may not be sent$"),
        (lambda p: p.send_close(999), ValueError, r"^close code 999 may not be sent$"),
        (
            lambda p: p.send_close(1000, "x" * 124),
            ValueError,
            r"^close reason is longer than 123 bytes in UTF-8$",
        ),
        (
            lambda p: p.send_close(1005, "x"),
            ValueError,
            r"^close code 1005 sends an empty payload and cannot carry a reason$",
        ),
        (lambda p: p.send_close("1000"), TypeError, r"^close code must be an int, not str$"),
        (lambda p: p.send_close(True), TypeError, r"^close code must be an int, not bool$"),
        (
            lambda p: p.send_close(1000, b"x"),
            TypeError,
            r"^close reason must be a str, not bytes$",
        ),
        (
            lambda p: p.send_message(1.5),
            TypeError,
            r"^message must be str or bytes-like \(bytes, bytearray, memoryview\), not float$",
        ),
        (
            lambda p: p.send_fragment("x", text=False, fin=True),
            TypeError,
            r"^a str fragment needs text=True$",
        ),
    ],
    ids=[
        "ping-126",
        "pong-126-utf8",
        "ping-int",
        "close-1006",
        "close-999",
        "close-long-reason",
        "close-1005-reason",
        "close-str-code",
        "close-bool-code",
        "close-bytes-reason",
        "message-float",
        "fragment-str-binary",
    ],
)
def test_send_refuses_bad_arguments(action: Any, error: type[Exception], message: str) -> None:
    """Bad arguments raise at once, name the problem, and queue nothing."""
    protocol = Protocol(Side.SERVER)
    with pytest.raises(error, match=message):
        action(protocol)
    assert protocol.data_to_send() == b""
    assert protocol.close_sent is None
    assert protocol.state is State.OPEN


def test_send_message_during_fragmented_message_raises() -> None:
    """A whole message cannot interleave with a fragmented one; control frames can."""
    protocol = Protocol(Side.SERVER)
    protocol.send_fragment(b"a", text=False, fin=False)
    protocol.send_ping()
    with pytest.raises(
        ProtocolError, match=r"^cannot send a message while a fragmented message is in progress$"
    ):
        protocol.send_message(b"b")
    protocol.send_fragment(b"b", text=False, fin=True)
    assert protocol.data_to_send() == b"\x02\x01a\x89\x00\x80\x01b"


# -- counters ------------------------------------------------------------------------------


@SIDES
def test_counters(side: Side) -> None:
    """Messages and payload bytes are counted on both ends; text counts UTF-8 bytes."""
    pair = ProtocolPair()
    sender, receiver = pair.end(side), pair.peer(side)
    sender.send_message("é")
    sender.send_message(b"abc")
    sender.send_fragment(b"12", text=False, fin=False)
    sender.send_ping(b"not counted")
    assert (sender.messages_sent, sender.bytes_sent) == (2, 7)
    pair.deliver(side)
    assert (receiver.messages_received, receiver.bytes_received) == (2, 7)
    sender.send_fragment(b"3", text=False, fin=True)
    pair.deliver(side)
    assert (sender.messages_sent, sender.bytes_sent) == (3, 8)
    assert (receiver.messages_received, receiver.bytes_received) == (3, 8)
    assert (receiver.messages_sent, receiver.bytes_sent) == (0, 0)


# -- extensions ----------------------------------------------------------------------------


class Recorder(Extension):
    """Logs every encode and decode call with its keyword, passing frames through."""

    def __init__(self, name: str, log: list[tuple[Any, ...]]) -> None:
        super().__init__(name)
        self.log = log

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Record the call."""
        self.log.append((self.name, "encode", frame.opcode.name, compress))
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Record the call."""
        self.log.append((self.name, "decode", frame.opcode.name, max_size))
        return frame


class SeedStyle(Extension):
    """An extension written as the seed shows: one-argument encode and decode."""

    def encode(self, frame: Frame) -> Frame:
        """Upper-case the payload."""
        return frame.replace(data=frame.data.upper())

    def decode(self, frame: Frame) -> Frame:  # type: ignore[override]
        """Lower-case the payload."""
        return frame.replace(data=frame.data.lower())


class Rsv2Reverser(Extension):
    """Reverses data-frame payloads and marks them with RSV2, without declaring the bit."""

    def __init__(self) -> None:
        super().__init__("x-reverse")

    def encode(self, frame: Frame) -> Frame:
        """Reverse and mark data frames."""
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return frame.replace(data=frame.data[::-1], rsv2=True)
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Reverse marked data frames back and clear the mark."""
        if frame.rsv2 and frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return frame.replace(data=frame.data[::-1], rsv2=False)
        return frame


class DeclaredRsv2Reverser(Rsv2Reverser):
    """The same, declaring RSV2 so that the handshake can check for clashes."""

    rsv_bits = frozenset({2})


RSV2_EXTENSIONS = pytest.mark.parametrize(
    "extension", [Rsv2Reverser, DeclaredRsv2Reverser], ids=["undeclared", "declared"]
)


class Doubler(Extension):
    """Doubles every data payload on decode, honouring max_size or not."""

    def __init__(self, *, honour_max_size: bool) -> None:
        super().__init__("x-double")
        self.honour_max_size = honour_max_size

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Double the payload, refusing to exceed max_size if honouring it."""
        if frame.opcode in (Opcode.PING, Opcode.PONG, Opcode.CLOSE):
            return frame
        if self.honour_max_size and max_size is not None and 2 * len(frame.data) > max_size:
            raise PayloadTooBig(f"doubling {len(frame.data)} bytes exceeds {max_size}")
        return frame.replace(data=frame.data * 2)


class Failing(Extension):
    """Raises the given exception from decode."""

    def __init__(self, exc: Exception) -> None:
        super().__init__("x-failing")
        self.exc = exc

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Raise."""
        raise self.exc


@SIDES
def test_chain_encodes_in_order_and_decodes_in_reverse(side: Side) -> None:
    """Every frame, control frames too, goes through the chain: encode A, B; decode B, A."""
    log: list[tuple[Any, ...]] = []
    extensions = [Recorder("A", log), Recorder("B", log)]
    pair = ProtocolPair(extensions, extensions, max_message_size=100)
    sender = pair.end(side)
    sender.send_message("hi", compress=False)
    sender.send_ping()
    sender.send_fragment(b"abc", text=False, fin=False, compress=True)
    sender.send_pong()
    sender.send_fragment(b"de", text=False, fin=True, compress=False)
    sender.send_close()
    assert log == [
        ("A", "encode", "TEXT", False),
        ("B", "encode", "TEXT", False),
        ("A", "encode", "PING", None),
        ("B", "encode", "PING", None),
        ("A", "encode", "BINARY", True),
        ("B", "encode", "BINARY", True),
        ("A", "encode", "PONG", None),
        ("B", "encode", "PONG", None),
        ("A", "encode", "CONT", True),
        ("B", "encode", "CONT", True),
        ("A", "encode", "CLOSE", None),
        ("B", "encode", "CLOSE", None),
    ]
    log.clear()
    assert pair.deliver(side) == [
        Message("hi"),
        Ping(b""),
        Pong(b""),
        Message(b"abcde"),
        CloseReceived(1000, ""),
    ]
    assert log == [
        ("B", "decode", "TEXT", 100),
        ("A", "decode", "TEXT", 100),
        ("B", "decode", "PING", 125),
        ("A", "decode", "PING", 125),
        ("B", "decode", "BINARY", 100),
        ("A", "decode", "BINARY", 100),
        ("B", "decode", "PONG", 125),
        ("A", "decode", "PONG", 125),
        ("B", "decode", "CONT", 97),
        ("A", "decode", "CONT", 97),
        ("B", "decode", "CLOSE", 125),
        ("A", "decode", "CLOSE", 125),
    ]


@SIDES
def test_seed_style_extension_runs(side: Side) -> None:
    """An extension with one-argument encode/decode (the seed's way) works unchanged."""
    pair = ProtocolPair([SeedStyle("x-case")], [SeedStyle("x-case")])
    pair.end(side).send_message(b"Hello")
    wire = pair.end(side).data_to_send()
    assert frames_sent(side, wire) == [Frame(Opcode.BINARY, b"HELLO")]
    pair.peer(side).receive_data(wire)
    assert pair.peer(side).events_received() == [Message(b"hello")]


@SIDES
@RSV2_EXTENSIONS
def test_rsv2_extension_on_both_ends(side: Side, extension: type[Rsv2Reverser]) -> None:
    """An extension that sets RSV2 works, whether or not it declares the bit."""
    pair = ProtocolPair([extension()], [extension()])
    pair.end(side).send_fragment("ab", text=True, fin=False)
    pair.end(side).send_fragment("cd", text=True, fin=True)
    wire = pair.end(side).data_to_send()
    assert wire[0] == 0x21  # RSV2 | TEXT, not FIN
    pair.peer(side).receive_data(wire)
    assert pair.peer(side).events_received() == [Message("abcd")]


@SIDES
@RSV2_EXTENSIONS
def test_rsv2_without_the_extension_fails(side: Side, extension: type[Rsv2Reverser]) -> None:
    """A peer that did not negotiate the extension fails on RSV2 with 1002."""
    pair = ProtocolPair(
        [extension()] if side is Side.CLIENT else [], [extension()] if side is Side.SERVER else []
    )
    pair.end(side).send_message("hi")
    failed(pair.deliver(side), 1002, "reserved bit RSV2 set without a negotiated extension")


@SIDES
def test_rsv2_left_on_a_control_frame_fails(side: Side) -> None:
    """RSV2 on a ping, which the declaring extension does not decode, fails with 1002."""
    protocol = Protocol(side, [DeclaredRsv2Reverser()])
    protocol.receive_data(raw_frame(0xA9, b"", to=side))
    failed(protocol.events_received(), 1002, "reserved bit RSV2 set on a PING frame")


@SIDES
def test_rsv_of_another_extension_fails(side: Side) -> None:
    """RSV1 fails when only an RSV2 extension is negotiated."""
    protocol = Protocol(side, [DeclaredRsv2Reverser()])
    protocol.receive_data(raw_frame(0xC1, b"x", to=side))
    failed(
        protocol.events_received(), 1002, "reserved bit RSV1 set without a negotiated extension"
    )


@SIDES
def test_extension_raising_payload_too_big(side: Side) -> None:
    """An extension that refuses to expand past max_size fails with 1009."""
    protocol = Protocol(side, [Doubler(honour_max_size=True)], max_message_size=10)
    protocol.receive_data(raw_frame(0x82, b"12345", to=side))
    assert protocol.events_received() == [Message(b"1234512345")]
    protocol.receive_data(raw_frame(0x82, b"123456", to=side))
    error = failed(protocol.events_received(), 1009, "message exceeds the size limit of 10 bytes")
    assert str(error.exception.__cause__) == "doubling 6 bytes exceeds 10"


@SIDES
def test_extension_ignoring_max_size_is_still_bounded(side: Side) -> None:
    """The decoded size is checked even when an extension ignores max_size."""
    protocol = Protocol(side, [Doubler(honour_max_size=False)], max_message_size=10)
    protocol.receive_data(raw_frame(0x02, b"123", to=side))
    protocol.receive_data(raw_frame(0x80, b"123", to=side))
    failed(protocol.events_received(), 1009, "message exceeds the size limit of 10 bytes")


@SIDES
@pytest.mark.parametrize(
    ("announced", "fails"), [(114_126, False), (114_127, True)], ids=["slack", "over-slack"]
)
def test_size_limit_header_slack_with_extensions(side: Side, announced: int, fails: bool) -> None:
    """With extensions the header may exceed the budget by DEFLATE's worst case, no more."""
    protocol = Protocol(side, [Recorder("A", [])], max_message_size=100_000)
    protocol.receive_data(raw_frame(0x82, to=side, length=announced))
    events = protocol.events_received()
    if fails:
        failed(events, 1009, "message exceeds the size limit of 100000 bytes")
    else:
        assert events == []


@SIDES
@pytest.mark.parametrize(
    ("first", "announced", "fails"),
    [
        (0x82, 100_000, False),  # uncompressed: the exact budget
        (0x82, 100_001, True),
        (0xC2, 114_126, False),  # RSV1, compressed: plus DEFLATE's worst case
        (0xC2, 114_127, True),
    ],
    ids=["plain-fits", "plain-one-over", "compressed-slack", "compressed-over-slack"],
)
def test_size_limit_slack_only_for_frames_an_extension_marked(
    side: Side, first: int, announced: int, fails: bool
) -> None:
    """With permessage-deflate (it declares RSV1), an uncompressed frame gets no slack.

    Its payload cannot be larger than what it decodes to, so a header that
    announces more than the limit fails at once, as with no extension at all,
    instead of after its whole payload arrived.
    """
    deflate = PerMessageDeflate(side is Side.SERVER)
    protocol = Protocol(side, [deflate], max_message_size=100_000)
    protocol.receive_data(raw_frame(first, to=side, length=announced))
    events = protocol.events_received()
    if fails:
        failed(events, 1009, "message exceeds the size limit of 100000 bytes")
    else:
        assert events == []


@SIDES
def test_continuations_of_a_compressed_message_keep_its_slack(side: Side) -> None:
    """Continuation frames carry no RSV1 but are as compressed as the first frame.

    1 MiB of random bytes, compressed and sent in 64 KiB fragments (as
    Chromium sends it), grows past the budget frame by frame; with the
    message's first frame marked, every fragment keeps DEFLATE's slack.
    """
    size = 2**20
    data = random.Random(5).randbytes(size)
    sender = PerMessageDeflate(side is not Side.SERVER)
    receiver = Protocol(side, [PerMessageDeflate(side is Side.SERVER)], max_message_size=size)
    step = 65536
    wire = bytearray()
    for start in range(0, size, step):
        first, last = start == 0, start + step >= size
        frame = sender.encode(
            Frame(Opcode.BINARY if first else Opcode.CONT, data[start : start + step], fin=last)
        )
        head = (0x80 if last else 0) | (0x40 if frame.rsv1 else 0) | int(frame.opcode)
        wire += raw_frame(head, frame.data, to=side)
    receiver.receive_data(bytes(wire))
    (event,) = receiver.events_received()
    assert isinstance(event, Message)
    assert event.data == data


@SIDES
@pytest.mark.parametrize(
    ("exc", "code", "reason"),
    [
        (ValueError("boom"), 1011, "extension failed to decode a TEXT frame: ValueError"),
        (ProtocolError("bad compressed data"), 1002, "bad compressed data"),
        (ProtocolError("é" * 100, code=1007), 1007, "é" * 61),
    ],
    ids=["crash", "protocol-error", "long-reason-truncated"],
)
def test_extension_errors(side: Side, exc: Exception, code: int, reason: str) -> None:
    """Extension errors fail the connection: theirs if ProtocolError, else 1011; reasons fit."""
    protocol = Protocol(side, [Failing(exc)])
    protocol.receive_data(raw_frame(0x81, b"x", to=side))
    [event] = protocol.events_received()
    assert isinstance(event, ConnectionFailed)
    assert (event.code, event.reason) == (code, reason)
    assert len(event.reason.encode()) <= 123
    if isinstance(exc, ProtocolError):
        assert event.exception is exc
    else:
        assert event.exception.__cause__ is exc


def test_event_reprs_elide_long_data() -> None:
    """Long messages show their start and length in repr."""
    assert repr(Message("hi")) == "Message(data='hi')"
    assert repr(Message(bytes(100))) == (
        "Message(data=b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00"
        "\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00'...<100 bytes>)"
    )
    assert repr(Message("x" * 40)).endswith("...<40 chars>)")


def test_masking_key_changes_between_frames() -> None:
    """Each frame a client sends has its own key from os.urandom (RFC 6455 §5.3)."""
    protocol = Protocol(Side.CLIENT)
    keys = set()
    for _ in range(20):
        protocol.send_message(b"")
        keys.add(protocol.data_to_send()[2:6])
    assert len(keys) == 20


@SIDES
@pytest.mark.parametrize("mem_level", [1, 5, 8, 9], ids=lambda level: f"memLevel={level}")
def test_incompressible_message_of_max_size_passes_with_deflate(
    side: Side, mem_level: int
) -> None:
    """1 MiB of random bytes grows under DEFLATE (4 % at memLevel 1); the slack lets it in."""
    settings = {"memLevel": mem_level}
    pair = ProtocolPair(
        [PerMessageDeflate(False, compress_settings=settings)],
        [PerMessageDeflate(True, compress_settings=settings)],
    )
    message = os.urandom(2**20)
    pair.end(side).send_message(message)
    wire = pair.end(side).data_to_send()
    assert len(wire) > 2**20 + 14  # the compressed payload is larger than the limit
    pair.peer(side).receive_data(wire)
    assert pair.peer(side).events_received() == [Message(message)]


@SIDES
def test_deflate_bomb_fails_with_1009(side: Side) -> None:
    """A small compressed frame that inflates past max_message_size fails with 1009."""
    pair = ProtocolPair([PerMessageDeflate(False)], [PerMessageDeflate(True)])
    pair.end(side).send_message(bytes(2**20 + 1))
    wire = pair.end(side).data_to_send()
    assert len(wire) < 2000
    pair.peer(side).receive_data(wire)
    failed(
        pair.peer(side).events_received(), 1009, "message exceeds the size limit of 1048576 bytes"
    )
