"""Tests of the permessage-deflate codec: PerMessageDeflate's encode and decode (RFC 7692 §7.2)."""

from __future__ import annotations

import itertools
import json
import random
import re
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate as WebsocketsDeflate
from websockets.frames import Frame as WebsocketsFrame, Opcode as WebsocketsOpcode

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.extensions import deflate_codec
from trio_wsext.extensions.deflate_codec import PerMessageDeflate
from trio_wsext.frames import Frame, Opcode

TAIL = b"\x00\x00\xff\xff"
HELLO = b"Hello"


@pytest.fixture(autouse=True)
def stdlib_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compress with the standard library's zlib: these tests pin its exact output.

    zlib-ng, used when installed, has its own tests in test_deflate_backend.py.
    """
    monkeypatch.setattr(deflate_codec, "_BACKEND", deflate_codec._STDLIB)


def text(data: bytes, *, fin: bool = True, rsv1: bool = False) -> Frame:
    return Frame(Opcode.TEXT, data, fin=fin, rsv1=rsv1)


def cont(data: bytes, *, fin: bool = True, rsv1: bool = False) -> Frame:
    return Frame(Opcode.CONT, data, fin=fin, rsv1=rsv1)


def json_text(count: int, seed: int = 1) -> bytes:
    """Deterministic JSON records: compressible, and different from each other."""
    rng = random.Random(seed)
    records = [
        {
            "id": 1000 + i,
            "user": rng.choice(["alice", "bob", "carol", "dave"]),
            "text": " ".join(rng.choices(["hi", "deploy", "the", "cache", "ok"], k=6)),
            "score": round(rng.uniform(0, 100), 2),
        }
        for i in range(count)
    ]
    return json.dumps(records).encode()


# A strict inflater: RFC 1951 decoded bit by bit, failing on any distance
# beyond ``window`` bytes, which zlib's own inflate does not always notice.

_LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83]
_LENGTH_BASE += [99, 115, 131, 163, 195, 227, 258]
_LENGTH_EXTRA = [0] * 8 + [n for n in range(1, 6) for _ in range(4)] + [0]
_DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769]
_DIST_BASE += [1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
_DIST_EXTRA = [0, 0] + [n for n in range(14) for _ in range(2)]
_CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, count: int) -> int:
        value = 0
        for i in range(count):
            value |= ((self.data[self.pos >> 3] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def symbol(self, table: dict[tuple[int, int], int]) -> int:
        code = length = 0
        while (length, code) not in table:
            code = (code << 1) | self.read(1)
            length += 1
        return table[length, code]


def _huffman(lengths: Sequence[int]) -> dict[tuple[int, int], int]:
    table = {}
    code = 0
    for length in range(1, 16):
        for symbol, symbol_length in enumerate(lengths):
            if symbol_length == length:
                table[length, code] = symbol
                code += 1
        code <<= 1
    return table


_FIXED_LITERALS = _huffman([8] * 144 + [9] * 112 + [7] * 24 + [8] * 8)
_FIXED_DISTANCES = _huffman([5] * 30)


def _dynamic_tables(bits: _Bits) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    literals, distances, code_lengths = bits.read(5) + 257, bits.read(5) + 1, bits.read(4) + 4
    order = [0] * 19
    for index in range(code_lengths):
        order[_CODE_LENGTH_ORDER[index]] = bits.read(3)
    table = _huffman(order)
    lengths: list[int] = []
    while len(lengths) < literals + distances:
        symbol = bits.symbol(table)
        if symbol < 16:
            lengths.append(symbol)
        elif symbol == 16:
            lengths += [lengths[-1]] * (3 + bits.read(2))
        else:
            lengths += [0] * ((3 + bits.read(3)) if symbol == 17 else (11 + bits.read(7)))
    return _huffman(lengths[:literals]), _huffman(lengths[literals:])


def strict_inflate(stream: bytes, window: int) -> tuple[bytes, list[int]]:
    """Inflate a raw DEFLATE stream; return the output and the block types seen.

    Raises:
        ValueError: a match reaches farther back than ``window`` bytes.
    """
    bits = _Bits(stream)
    out = bytearray()
    block_types = []
    while bits.pos + 3 <= len(stream) * 8:
        final, block_type = bits.read(1), bits.read(2)
        block_types.append(block_type)
        if block_type == 0:
            bits.pos = (bits.pos + 7) & ~7
            length = bits.read(16)
            bits.read(16)
            out += stream[bits.pos >> 3 : (bits.pos >> 3) + length]
            bits.pos += 8 * length
        else:
            literals, distances = (
                (_FIXED_LITERALS, _FIXED_DISTANCES) if block_type == 1 else _dynamic_tables(bits)
            )
            while (symbol := bits.symbol(literals)) != 256:
                if symbol < 256:
                    out.append(symbol)
                    continue
                index = symbol - 257
                length = _LENGTH_BASE[index] + bits.read(_LENGTH_EXTRA[index])
                code = bits.symbol(distances)
                distance = _DIST_BASE[code] + bits.read(_DIST_EXTRA[code])
                if distance > window:
                    raise ValueError(f"distance {distance} beyond a window of {window}")
                for _ in range(length):
                    out.append(out[-distance])
        if final:
            break
    return bytes(out), block_types


def compressed_stream(extension: PerMessageDeflate, messages: Sequence[bytes]) -> bytes:
    """Return the DEFLATE stream of ``messages`` as ``extension`` sends them, tails restored."""
    return b"".join(extension.encode(text(message)).data + TAIL for message in messages)


# Compression.


@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_side_compresses_hello_as_rfc_7692_example(is_server: bool) -> None:
    """RFC 7692 §7.2.3.1: "Hello" compresses to f2 48 cd c9 c9 07 00 with RSV1 set."""
    extension = PerMessageDeflate(is_server)
    assert extension.encode(text(HELLO)) == text(bytes.fromhex("f248cdc9c90700"), rsv1=True)


def test_server_compresses_second_hello_with_context_takeover() -> None:
    """RFC 7692 §7.2.3.2: the second "Hello" refers back to the first: f2 00 11 00 00."""
    extension = PerMessageDeflate(True)
    extension.encode(text(HELLO))
    assert extension.encode(text(HELLO)).data == bytes.fromhex("f200110000")


@pytest.mark.parametrize(
    ("is_server", "server_no_context_takeover", "client_no_context_takeover"),
    [(True, True, False), (False, False, True)],
    ids=["server", "client"],
)
def test_side_compresses_each_message_alone_without_context_takeover(
    is_server: bool, server_no_context_takeover: bool, client_no_context_takeover: bool
) -> None:
    """With local no_context_takeover, the same message compresses to the same bytes every time."""
    extension = PerMessageDeflate(
        is_server,
        server_no_context_takeover=server_no_context_takeover,
        client_no_context_takeover=client_no_context_takeover,
    )
    frames = [extension.encode(text(HELLO)) for _ in range(3)]
    assert [frame.data for frame in frames] == [bytes.fromhex("f248cdc9c90700")] * 3


def test_client_keeps_context_when_only_server_drops_it() -> None:
    """server_no_context_takeover does not stop the client's own context takeover."""
    extension = PerMessageDeflate(False, server_no_context_takeover=True)
    extension.encode(text(HELLO))
    assert extension.encode(text(HELLO)).data == bytes.fromhex("f200110000")


def test_server_compresses_fragmented_message_with_rsv1_on_first_frame_only() -> None:
    """Each frame is sync-flushed; RSV1 is on the first; the tail goes only from the last."""
    extension = PerMessageDeflate(True)
    first = extension.encode(text(b"He", fin=False))
    middle = extension.encode(cont(b"", fin=False))
    last = extension.encode(cont(b"llo"))
    assert (first.rsv1, middle.rsv1, last.rsv1) == (True, False, False)
    # RFC 7692 §7.2.3.5 and §7.2.3.6: two blocks, and an empty fragment between.
    assert first.data == bytes.fromhex("f24805000000ffff")
    assert middle.data == bytes.fromhex("000000ffff")
    assert last.data == bytes.fromhex("cac9c90700")
    receiver = PerMessageDeflate(False)
    decoded = [receiver.decode(frame).data for frame in (first, middle, last)]
    assert b"".join(decoded) == HELLO


def test_server_compresses_empty_message_to_one_byte() -> None:
    """An empty message is the lone header byte of an empty stored block: 00, RSV1 set."""
    extension = PerMessageDeflate(True)
    frame = extension.encode(Frame(Opcode.BINARY, b""))
    assert frame == Frame(Opcode.BINARY, b"\x00", rsv1=True)
    assert PerMessageDeflate(False).decode(frame) == Frame(Opcode.BINARY, b"")


@pytest.mark.parametrize(
    "frame",
    [Frame(Opcode.PING, b"ping"), Frame(Opcode.PONG, b""), Frame(Opcode.CLOSE, b"\x03\xe8")],
    ids=["ping", "pong", "close"],
)
def test_server_leaves_control_frames_uncompressed(frame: Frame) -> None:
    """RFC 7692 §6.1: control frames are never compressed, whatever ``compress`` says."""
    extension = PerMessageDeflate(True)
    assert extension.encode(frame) is frame
    assert extension.encode(frame, compress=True) is frame


# threshold and compress=, mirrored from API.md.
#
#   threshold  size  compress  fragmented  Result
#   ---------  ----  --------  ----------  --------------------
#   0          0     None      no          compressed
#   10         9     None      no          uncompressed
#   10         10    None      no          compressed
#   10         9     True      no          compressed
#   0          100   False     no          uncompressed
#   10         3     None      yes         compressed (size unknown)
#   0          100   False     yes         uncompressed, CONT too
THRESHOLD_CASES = [
    pytest.param(0, 0, None, False, True, id="0-empty-compressed"),
    pytest.param(10, 9, None, False, False, id="below-threshold"),
    pytest.param(10, 10, None, False, True, id="at-threshold"),
    pytest.param(10, 9, True, False, True, id="below-threshold-forced"),
    pytest.param(0, 100, False, False, False, id="compress-false"),
    pytest.param(10, 3, None, True, True, id="fragmented-compressed"),
    pytest.param(0, 100, False, True, False, id="fragmented-compress-false"),
]


@pytest.mark.parametrize(
    ("threshold", "size", "compress", "fragmented", "compressed"), THRESHOLD_CASES
)
def test_server_applies_threshold_and_compress_to_whole_message(
    threshold: int, size: int, compress: bool | None, fragmented: bool, compressed: bool
) -> None:
    """The first frame decides for the message; the receiver gets the data back either way."""
    extension = PerMessageDeflate(True, threshold=threshold)
    data = b"a" * size
    frames = [extension.encode(text(data, fin=not fragmented), compress=compress)]
    if fragmented:
        frames.append(extension.encode(cont(data), compress=not compress))
    assert frames[0].rsv1 is compressed
    assert all(not frame.rsv1 for frame in frames[1:])
    if not compressed:
        assert [frame.data for frame in frames] == [data] * len(frames)
    receiver = PerMessageDeflate(False)
    assert b"".join(receiver.decode(frame).data for frame in frames) == data * len(frames)


def test_server_compresses_again_after_uncompressed_message() -> None:
    """compress=False for one message keeps the context of the compressed ones intact."""
    sender, receiver = PerMessageDeflate(True), PerMessageDeflate(False)
    messages = [(HELLO, None), (b"raw bytes", False), (HELLO, None)]
    frames = [sender.encode(text(data), compress=compress) for data, compress in messages]
    assert [frame.rsv1 for frame in frames] == [True, False, True]
    assert frames[2].data == bytes.fromhex("f200110000")
    assert [receiver.decode(frame).data for frame in frames] == [HELLO, b"raw bytes", HELLO]


@pytest.mark.parametrize(
    ("settings", "check"),
    [
        ({"level": 0}, lambda types: set(types) == {0}),
        ({"strategy": zlib.Z_FIXED}, lambda types: set(types[:-1]) == {1}),
        # memLevel sets zlib's symbol buffer (2**(memLevel + 6)), hence the block count.
        ({"memLevel": 1, "strategy": zlib.Z_HUFFMAN_ONLY}, lambda types: len(types) > 20),
        ({"memLevel": 9, "strategy": zlib.Z_HUFFMAN_ONLY}, lambda types: len(types) < 4),
    ],
    ids=["level-0-stored", "fixed-huffman", "memLevel-1", "memLevel-9"],
)
def test_server_passes_compress_settings_to_zlib(
    settings: dict[str, int], check: Callable[[list[int]], bool]
) -> None:
    """level, memLevel and strategy reach zlib: the block types in the stream show it."""
    extension = PerMessageDeflate(True, compress_settings=settings)
    message = json_text(50)
    output, block_types = strict_inflate(compressed_stream(extension, [message]), 2**15)
    assert output == message
    assert check(block_types)


def test_server_huffman_only_emits_no_matches() -> None:
    """Z_HUFFMAN_ONLY's stream decodes with a window of 1 byte: no match at all."""
    extension = PerMessageDeflate(True, compress_settings={"strategy": zlib.Z_HUFFMAN_ONLY})
    message = b"abcabcabc" * 100
    assert strict_inflate(compressed_stream(extension, [message]), 0)[0] == message


# Window sizes. RFC 7692 §7.1.2: "the LZ77 sliding window size that the server
# will use to compress messages"; every distance must fit in it.


def _window_probe() -> list[bytes]:
    """Messages whose repeats lie just inside and just outside small windows."""
    rng = random.Random(5)
    probes = [json_text(30), bytes(rng.randrange(256) for _ in range(3000))]
    for period in (200, 250, 251, 255, 256, 257, 300, 511, 512, 513, 4096, 4097):
        chunk = bytes(rng.randrange(256) for _ in range(period))
        probes.append(chunk * max(3, 9000 // period))
    return probes


@pytest.mark.parametrize("bits", range(8, 16))
def test_server_never_reaches_past_its_negotiated_window(bits: int) -> None:
    """Every distance fits in 2**bits bytes, across messages too; 8 included (zlib's 9)."""
    extension = PerMessageDeflate(True, server_max_window_bits=bits)
    messages = _window_probe()
    output, _ = strict_inflate(compressed_stream(extension, messages), 2**bits)
    assert output == b"".join(messages)


def test_strict_inflater_catches_distance_beyond_window() -> None:
    """The check above can fail: a 10-bit stream of the same probes breaks a 256-byte window."""
    extension = PerMessageDeflate(True, server_max_window_bits=10)
    with pytest.raises(ValueError, match=r"^distance \d+ beyond a window of 256$"):
        strict_inflate(compressed_stream(extension, _window_probe()), 256)


def test_zlib_inflate_with_8_bits_decodes_what_server_with_window_8_sends() -> None:
    """zlib's inflate with wbits=-8, fed byte by byte (no help from its output buffer), agrees."""
    sender = PerMessageDeflate(True, server_max_window_bits=8)
    receiver = zlib.decompressobj(wbits=-8)
    for message in _window_probe()[:6]:
        payload = sender.encode(text(message)).data + TAIL
        output = b"".join(receiver.decompress(payload[i : i + 1]) for i in range(len(payload)))
        assert output == message


# Decompression of every DEFLATE shape in RFC 7692 §7.2.3.

RFC_7692_MESSAGES = [
    pytest.param([text(bytes.fromhex("f248cdc9c90700"), rsv1=True)], id="7.2.3.1-one-block"),
    pytest.param(
        [text(bytes.fromhex("f248cd"), fin=False, rsv1=True), cont(bytes.fromhex("c9c90700"))],
        id="7.2.3.1-fragmented",
    ),
    pytest.param(
        [text(bytes.fromhex("000500faff48656c6c6f00"), rsv1=True)], id="7.2.3.3-stored-block"
    ),
    pytest.param([text(bytes.fromhex("f348cdc9c9070000"), rsv1=True)], id="7.2.3.4-bfinal"),
    pytest.param([text(bytes.fromhex("f348cdc9c90700"), rsv1=True)], id="bfinal-no-padding"),
    pytest.param(
        [text(bytes.fromhex("f24805000000ffffcac9c90700"), rsv1=True)], id="7.2.3.5-two-blocks"
    ),
    pytest.param(
        [
            text(bytes.fromhex("f24805000000ffff"), fin=False, rsv1=True),
            cont(bytes.fromhex("000000ffff"), fin=False),
            cont(bytes.fromhex("cac9c90700")),
        ],
        id="7.2.3.6-empty-fragment",
    ),
]


@pytest.mark.parametrize("frames", RFC_7692_MESSAGES)
def test_client_decodes_rfc_7692_deflate_shapes_then_next_message(frames: list[Frame]) -> None:
    """Each shape decodes to "Hello", and a normal message after it still decodes."""
    extension = PerMessageDeflate(False)
    decoded = [extension.decode(frame) for frame in frames]
    assert b"".join(frame.data for frame in decoded) == HELLO
    assert not any(frame.rsv1 for frame in decoded)
    assert extension.decode(text(bytes.fromhex("f248cdc9c90700"), rsv1=True)).data == HELLO


def test_client_decodes_second_hello_with_context_takeover() -> None:
    """RFC 7692 §7.2.3.2: f2 00 11 00 00 refers back to the previous message."""
    extension = PerMessageDeflate(False)
    extension.decode(text(bytes.fromhex("f248cdc9c90700"), rsv1=True))
    assert extension.decode(text(bytes.fromhex("f200110000"), rsv1=True)).data == HELLO


def test_client_decodes_large_final_frame_in_two_calls() -> None:
    """A final frame over 2 KiB is inflated without copying it to append the tail."""
    message = json_text(400)
    sender, receiver = PerMessageDeflate(True), PerMessageDeflate(False)
    frame = sender.encode(text(message))
    assert len(frame.data) > 2048
    assert receiver.decode(frame).data == message
    assert receiver.decode(sender.encode(text(message))).data == message


def test_server_drops_window_after_each_message_under_client_no_context_takeover() -> None:
    """A back-reference to a previous message fails when the client may not use one."""
    extension = PerMessageDeflate(True, client_no_context_takeover=True)
    extension.decode(text(bytes.fromhex("f248cdc9c90700"), rsv1=True))
    with pytest.raises(ProtocolError, match=r"^invalid compressed data: .*too far back$"):
        extension.decode(text(bytes.fromhex("f200110000"), rsv1=True))


def test_client_passes_uncompressed_messages_through() -> None:
    """Without RSV1 on the first frame, the message and its CONT frames are left alone."""
    extension = PerMessageDeflate(False)
    frames = [text(b"plain ", fin=False), cont(b"text")]
    assert [extension.decode(frame) for frame in frames] == frames


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (Frame(Opcode.PING, b"", rsv1=True), "RSV1 set on a PING frame"),
        (Frame(Opcode.CLOSE, b"", rsv1=True), "RSV1 set on a CLOSE frame"),
        (cont(b"", rsv1=True), "RSV1 set on a continuation frame"),
    ],
    ids=["ping", "close", "continuation"],
)
def test_client_fails_on_rsv1_where_rfc_7692_forbids_it(frame: Frame, message: str) -> None:
    """RFC 7692 §6.1: RSV1 on a control frame or a non-first fragment fails with 1002."""
    with pytest.raises(ProtocolError, match=f"^{message}$") as info:
        PerMessageDeflate(False).decode(frame)
    assert info.value.code == 1002


def test_client_fails_on_rsv1_continuation_inside_compressed_message() -> None:
    """RSV1 on the second frame of a compressed message fails too."""
    extension = PerMessageDeflate(False)
    extension.decode(text(bytes.fromhex("f248cd"), fin=False, rsv1=True))
    with pytest.raises(ProtocolError, match=r"^RSV1 set on a continuation frame$"):
        extension.decode(cont(bytes.fromhex("c9c90700"), rsv1=True))


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xff\xff\xff", "invalid block type"),
        (bytes.fromhex("0005000000") + HELLO, "invalid stored block lengths"),
        (bytes.fromhex("f200110000"), "invalid distance too far back"),
    ],
    ids=["block-type", "stored-lengths", "distance"],
)
def test_client_fails_with_1007_on_corrupt_data(data: bytes, error: str) -> None:
    """Data that is not DEFLATE fails with 1007 and a reason; zlib's error is the cause."""
    with pytest.raises(ProtocolError, match=f"^invalid compressed data: .*{error}$") as info:
        PerMessageDeflate(False).decode(text(data, rsv1=True))
    assert info.value.code == 1007
    assert isinstance(info.value.__cause__, zlib.error)


# Bounded inflation.


def deflate_bomb(inflated: int) -> bytes:
    """A raw DEFLATE stream of ``inflated`` zero bytes, about 1/1000 of that, built in ms.

    After a first flushed MiB of zeros, one flushed MiB more only refers back
    to zeros, so its bytes can be repeated as often as wanted.
    """
    compressor = zlib.compressobj(wbits=-15)
    mebibyte = b"\x00" * 2**20
    head = compressor.compress(mebibyte) + compressor.flush(zlib.Z_SYNC_FLUSH)
    repeat = compressor.compress(mebibyte) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return head + repeat * (inflated // 2**20 - 1)


def test_client_refuses_deflate_bomb_without_inflating_it() -> None:
    """A 1 MB frame that inflates to 1 GiB raises PayloadTooBig after ~1 MiB of output."""
    bomb = deflate_bomb(2**30)
    assert len(bomb) < 1_100_000
    frame = Frame(Opcode.BINARY, bomb, rsv1=True)
    extension = PerMessageDeflate(False)
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooBig, match=r"^compressed message inflates past the 1048576 "):
            extension.decode(frame, max_size=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


@pytest.mark.parametrize(("max_size", "fits"), [(10_000, True), (9_999, False)])
def test_client_inflates_exactly_up_to_max_size(max_size: int, fits: bool) -> None:
    """A message of exactly max_size bytes passes; one byte less of budget refuses it."""
    message = json_text(200)[:10_000]
    frame = PerMessageDeflate(True).encode(Frame(Opcode.BINARY, message))
    extension = PerMessageDeflate(False)
    if fits:
        assert extension.decode(frame, max_size=max_size).data == message
    else:
        with pytest.raises(PayloadTooBig, match=r"^compressed message inflates past the 9999 "):
            extension.decode(frame, max_size=max_size)


def test_client_counts_budget_across_frames_of_one_message() -> None:
    """The caller passes what is left: the second frame's budget is what the first left."""
    sender, receiver = PerMessageDeflate(True), PerMessageDeflate(False)
    first = sender.encode(Frame(Opcode.BINARY, b"a" * 6000, fin=False))
    second = sender.encode(cont(b"b" * 6000))
    budget = 10_000
    budget -= len(receiver.decode(first, max_size=budget).data)
    with pytest.raises(PayloadTooBig, match=r"^compressed message inflates past the 4000 bytes"):
        receiver.decode(second, max_size=budget)


def test_client_inflates_without_limit_when_max_size_is_none() -> None:
    """max_size=None (the limit turned off) inflates the whole message."""
    frame = Frame(Opcode.BINARY, deflate_bomb(2**23), rsv1=True)
    assert len(PerMessageDeflate(False).decode(frame).data) == 2**23


def test_client_decodes_empty_message_with_zero_budget() -> None:
    """An empty compressed message fits a budget of 0 bytes."""
    assert PerMessageDeflate(False).decode(text(b"\x00", rsv1=True), max_size=0).data == b""


# Lazy zlib objects.


def _traced(build: Callable[[], object]) -> int:
    """Bytes still allocated after calling ``build`` (kept alive in the result)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
        del kept
    finally:
        tracemalloc.stop()
    return after - before


def _exchange(no_context_takeover: bool) -> list[PerMessageDeflate]:
    """Ten servers that each sent and received one message."""
    servers = []
    for _ in range(10):
        server = PerMessageDeflate(True, 15, 15, no_context_takeover, no_context_takeover)
        client = PerMessageDeflate(False, 15, 15, no_context_takeover, no_context_takeover)
        client.decode(server.encode(text(HELLO)))
        server.decode(client.encode(text(HELLO)))
        servers.append(server)
    return servers


def test_server_allocates_zlib_objects_lazily_and_frees_them_without_takeover() -> None:
    """Idle: no zlib memory; after traffic: ~300 KiB each; under no_context_takeover: none."""
    idle = _traced(lambda: [PerMessageDeflate(True) for _ in range(10)])
    busy = _traced(lambda: _exchange(False))
    freed = _traced(lambda: _exchange(True))
    assert idle < 10 * 4096
    assert busy > 10 * 200_000
    assert freed < 10 * 4096


# Releasing idle memory.


@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_side_compresses_hello_afresh_after_release_and_peer_decodes_it(is_server: bool) -> None:
    """RFC 7692 §7.2.3.1-2: after release "Hello" is f2 48 cd c9 c9 07 00 again, not f2 00 11."""
    side, peer = PerMessageDeflate(is_server), PerMessageDeflate(not is_server)
    assert peer.decode(side.encode(text(HELLO))).data == HELLO
    side.release_idle_memory()
    assert side._compressor is None
    again = side.encode(text(HELLO))
    assert again.data == bytes.fromhex("f248cdc9c90700")
    assert peer.decode(again).data == HELLO
    assert side.encode(text(HELLO)).data == bytes.fromhex("f200110000")  # context again


@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_side_keeps_its_decompressor_window_on_release(is_server: bool) -> None:
    """The peer's next message may refer back to its last one, so release keeps that window."""
    side, peer = PerMessageDeflate(is_server), PerMessageDeflate(not is_server)
    message = json_text(20)
    assert side.decode(peer.encode(text(message))).data == message
    decompressor = side._decompressor
    side.release_idle_memory()
    assert side._decompressor is decompressor
    reference = peer.encode(text(message))
    assert len(reference.data) < len(message) // 20  # a back-reference, nearly nothing else
    assert side.decode(reference).data == message


@pytest.mark.parametrize("bits", [8, 9, 10, 12, 15], ids=lambda bits: f"bits-{bits}")
@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_side_released_between_messages_is_read_by_zlib_fed_the_whole_stream(
    is_server: bool, bits: int
) -> None:
    """One zlib decompressobj(-bits) reads every message, released or not, as one stream."""
    side = PerMessageDeflate(is_server, bits, bits)
    peer = PerMessageDeflate(not is_server, bits, bits)
    inflater = zlib.decompressobj(wbits=-bits)
    messages = [json_text(count, seed) for seed, count in enumerate((3, 40, 3, 200, 3, 3))]
    for index, message in enumerate(messages):
        frame = side.encode(text(message))
        assert inflater.decompress(frame.data + TAIL) == message
        assert peer.decode(frame).data == message
        if index % 2:
            side.release_idle_memory()
    assert peer._decompressor is not None


def test_server_compresses_a_repeat_without_context_after_release() -> None:
    """A repeated message shrinks to back-references without release, not after one."""
    kept, released = PerMessageDeflate(True), PerMessageDeflate(True)
    message = json_text(30)
    sizes = []
    for side in (kept, released):
        side.encode(text(message))
        if side is released:
            side.release_idle_memory()
        sizes.append(len(side.encode(text(message)).data))
    assert sizes[0] < len(message) // 20 < len(message) // 10 < sizes[1]


def test_server_release_in_the_middle_of_a_compressed_fragmented_message_does_nothing() -> None:
    """The next fragments need the same compressor: it stays until the last one is sent."""
    server, client = PerMessageDeflate(True), PerMessageDeflate(False)
    parts = [json_text(10, seed) for seed in range(3)]
    frames = [server.encode(text(parts[0], fin=False))]
    compressor = server._compressor
    server.release_idle_memory()
    assert server._compressor is compressor
    frames.append(server.encode(cont(parts[1], fin=False)))
    server.release_idle_memory()
    assert server._compressor is compressor
    frames.append(server.encode(cont(parts[2])))
    assert [client.decode(frame).data for frame in frames] == parts
    server.release_idle_memory()
    assert server._compressor is None


def test_server_release_during_an_uncompressed_fragmented_message_drops_the_compressor() -> None:
    """An uncompressed message does not use the compressor, so release may drop it then."""
    server, client = PerMessageDeflate(True), PerMessageDeflate(False)
    assert client.decode(server.encode(text(HELLO))).data == HELLO
    first = server.encode(text(b"He", fin=False), compress=False)
    server.release_idle_memory()
    assert server._compressor is None
    frames = [first, server.encode(cont(b"llo")), server.encode(text(HELLO))]
    assert [frame.rsv1 for frame in frames] == [False, False, True]
    assert [client.decode(frame).data for frame in frames] == [b"He", b"llo", HELLO]
    assert frames[2].data == bytes.fromhex("f248cdc9c90700")


@pytest.mark.parametrize(
    "arguments",
    [(), (15, 15, True, True), (15, 15, True, False)],
    ids=["unused", "no-takeover", "server-no-takeover"],
)
def test_server_release_with_nothing_to_free_is_harmless(arguments: tuple[object, ...]) -> None:
    """Before any message, or under no_context_takeover, release finds nothing; twice is fine."""
    server = PerMessageDeflate(True, *arguments)  # type: ignore[arg-type]
    client = PerMessageDeflate(False, *arguments)  # type: ignore[arg-type]
    server.release_idle_memory()
    for _ in range(2):
        assert client.decode(server.encode(text(HELLO))).data == HELLO
        server.release_idle_memory()
        server.release_idle_memory()
        assert server._compressor is None


def test_server_release_frees_the_compressor_and_keeps_the_decompressor() -> None:
    """tracemalloc, zlib's defaults: ~260 KiB freed per connection, the ~40 KiB inflater kept."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        servers = _exchange(False)
        busy = tracemalloc.get_traced_memory()[0]
        for server in servers:
            server.release_idle_memory()
        released = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert busy - released > 10 * 200 * 1024
    assert 10 * 30 * 1024 < released - before < 10 * 60 * 1024
    assert all(server._decompressor is not None for server in servers)


# Byte-for-byte interoperability with websockets' own implementation.


def _messages() -> list[Frame]:
    long = json_text(500, seed=3)
    return [
        text(HELLO),
        text(json_text(20)),
        Frame(Opcode.BINARY, long),
        text(long[:5000], fin=False),
        cont(long[5000:12000], fin=False),
        cont(long[12000:20000]),
        Frame(Opcode.BINARY, b""),
        text(json_text(20)),
    ]


def _to_websockets(frame: Frame) -> WebsocketsFrame:
    return WebsocketsFrame(WebsocketsOpcode(frame.opcode), frame.data, frame.fin, frame.rsv1)


def _from_websockets(frame: WebsocketsFrame) -> Frame:
    return Frame(Opcode(frame.opcode), bytes(frame.data), frame.fin, frame.rsv1)


def _websockets_twin(
    is_server: bool, bits: tuple[int, int], no_takeover: tuple[bool, bool]
) -> WebsocketsDeflate:
    """websockets' PerMessageDeflate in the given role (bits and flags as (server, client))."""
    local, remote = (0, 1) if is_server else (1, 0)
    return WebsocketsDeflate(
        no_takeover[remote],
        no_takeover[local],
        bits[remote],
        max(bits[local], 9),  # websockets refuses to compress with 8; zlib uses 9 either way
    )


INTEROP_CASES = [
    pytest.param(
        is_server, bits, flags, id=f"{'server' if is_server else 'client'}-{bits}-{flags}"
    )
    for is_server in (True, False)
    for bits in itertools.product((8, 10, 15), repeat=2)
    for flags in itertools.product((False, True), repeat=2)
]


@pytest.mark.parametrize(("is_server", "bits", "no_takeover"), INTEROP_CASES)
def test_side_matches_websockets_byte_for_byte_both_ways(
    is_server: bool, bits: tuple[int, int], no_takeover: tuple[bool, bool]
) -> None:
    """Our frames equal websockets' for the same settings; each decodes the other's."""
    ours = PerMessageDeflate(is_server, *bits, *no_takeover)
    twin = _websockets_twin(is_server, bits, no_takeover)
    peer = _websockets_twin(not is_server, bits, no_takeover)
    our_peer = PerMessageDeflate(not is_server, *bits, *no_takeover)
    for frame in _messages():
        sent = ours.encode(frame)
        assert sent == _from_websockets(twin.encode(_to_websockets(frame)))
        assert _from_websockets(peer.decode(_to_websockets(sent))) == frame
        received = _from_websockets(peer.encode(_to_websockets(frame)))
        assert ours.decode(received) == frame
        assert our_peer.decode(sent) == frame


def _iter_frames(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_server_decodes_websockets_fragmented_stream_split_anywhere() -> None:
    """Compressed data split at every 7 bytes into CONT frames still decodes."""
    long = json_text(100)
    sender = WebsocketsDeflate(False, False, 15, 15)
    payload = bytes(sender.encode(_to_websockets(text(long))).data)
    pieces = list(_iter_frames(payload, 7))
    receiver = PerMessageDeflate(True)
    frames = [text(pieces[0], fin=False, rsv1=True)]
    frames += [cont(piece, fin=False) for piece in pieces[1:-1]] + [cont(pieces[-1])]
    assert b"".join(receiver.decode(frame).data for frame in frames) == long


# Arguments, attributes, repr.

BAD_ARGUMENTS = [
    pytest.param({"is_server": 1}, "is_server must be a bool, not 1", id="is_server-int"),
    pytest.param(
        {"server_max_window_bits": 16},
        "server_max_window_bits must be an int from 8 to 15, not 16",
        id="server-bits-16",
    ),
    pytest.param(
        {"client_max_window_bits": 7},
        "client_max_window_bits must be an int from 8 to 15, not 7",
        id="client-bits-7",
    ),
    pytest.param(
        {"server_max_window_bits": True},
        "server_max_window_bits must be an int from 8 to 15, not True",
        id="server-bits-bool",
    ),
    pytest.param(
        {"client_max_window_bits": None},
        "client_max_window_bits must be an int from 8 to 15, not None",
        id="client-bits-none",
    ),
    pytest.param(
        {"server_no_context_takeover": 1},
        "server_no_context_takeover must be a bool, not 1",
        id="server-nct-int",
    ),
    pytest.param(
        {"client_no_context_takeover": "yes"},
        "client_no_context_takeover must be a bool, not 'yes'",
        id="client-nct-str",
    ),
    pytest.param(
        {"compress_settings": {"wbits": 9}},
        "compress_settings must not set wbits: the window is negotiated "
        "(server_max_window_bits, client_max_window_bits)",
        id="wbits",
    ),
    pytest.param(
        {"compress_settings": {"zdict": b"x"}},
        "compress_settings: unknown key 'zdict'; allowed: level, memLevel, strategy",
        id="zdict",
    ),
    pytest.param(
        {"compress_settings": {"level": 10}},
        "compress_settings['level'] must be an int from -1 to 9, not 10",
        id="level",
    ),
    pytest.param(
        {"compress_settings": {"memLevel": 0}},
        "compress_settings['memLevel'] must be an int from 1 to 9, not 0",
        id="memLevel",
    ),
    pytest.param(
        {"compress_settings": {"strategy": 7}},
        "compress_settings['strategy'] must be one of zlib's Z_DEFAULT_STRATEGY, Z_FILTERED, "
        "Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED, not 7",
        id="strategy",
    ),
    pytest.param(
        {"compress_settings": [("level", 1)]},
        "compress_settings must be a dict or None, not [('level', 1)]",
        id="settings-list",
    ),
    pytest.param({"threshold": -1}, "threshold must be an int >= 0, not -1", id="threshold"),
    pytest.param(
        {"threshold": 1.5}, "threshold must be an int >= 0, not 1.5", id="threshold-float"
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_ARGUMENTS)
def test_extension_refuses_bad_argument_naming_it(
    changes: dict[str, object], message: str
) -> None:
    """Each bad argument raises ValueError with a message that names it."""
    arguments: dict[str, object] = {"is_server": True, **changes}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        PerMessageDeflate(**arguments)  # type: ignore[arg-type]


def test_extension_reads_back_arguments_and_repr_rebuilds_it() -> None:
    """Attributes are named as the arguments, read-only; repr is the constructor call."""
    extension = PerMessageDeflate(
        False, 10, 12, True, False, {"memLevel": 4, "level": 9}, threshold=100
    )
    assert (extension.is_server, extension.server_max_window_bits) == (False, 10)
    assert (extension.client_max_window_bits, extension.server_no_context_takeover) == (12, True)
    assert extension.client_no_context_takeover is False
    assert extension.compress_settings == {"memLevel": 4, "level": 9}
    assert extension.threshold == 100
    assert repr(extension) == (
        "PerMessageDeflate(is_server=False, server_max_window_bits=10, client_max_window_bits=12, "
        "server_no_context_takeover=True, client_no_context_takeover=False, "
        "compress_settings={'memLevel': 4, 'level': 9}, threshold=100)"
    )
    assert repr(eval(repr(extension))) == repr(extension)
    with pytest.raises(AttributeError):
        extension.threshold = 5  # type: ignore[misc]
    settings = extension.compress_settings
    assert settings is not None
    settings["level"] = 1
    assert extension.compress_settings == {"memLevel": 4, "level": 9}


def test_extension_declares_name_and_rsv1() -> None:
    """name is a class attribute; RSV1 is declared so no other extension may claim it."""
    assert PerMessageDeflate.name == "permessage-deflate"
    assert PerMessageDeflate.rsv_bits == frozenset({1})
    assert PerMessageDeflate(True).compress_settings is None
