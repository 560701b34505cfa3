"""Tests of the deflate backends: zlib-ng and the standard library's zlib read each other's
streams, and inflation is bounded the same way with both."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import zlib
from collections.abc import Iterator

import pytest

from trio_wsext.exceptions import PayloadTooBig, ProtocolError
from trio_wsext.extensions import deflate_codec
from trio_wsext.extensions.deflate_codec import PerMessageDeflate
from trio_wsext.frames import Frame, Opcode

HAVE_ZLIB_NG = importlib.util.find_spec("zlib_ng") is not None

requires_zlib_ng = pytest.mark.skipif(
    not HAVE_ZLIB_NG, reason="zlib-ng is not installed (pip install trio_wsext[fast])"
)

BACKENDS = ["zlib", "zlib-ng"]


def backend(monkeypatch: pytest.MonkeyPatch, name: str) -> deflate_codec._Backend:
    """The backend called ``name``, loaded as the codec loads it (whatever the environment)."""
    if name == "zlib":
        return deflate_codec._STDLIB
    monkeypatch.delenv(deflate_codec.BACKEND_ENV, raising=False)
    loaded = deflate_codec._load_backend()
    assert loaded.name == "zlib-ng"
    return loaded


def extension(
    monkeypatch: pytest.MonkeyPatch, name: str, is_server: bool, *args: object
) -> PerMessageDeflate:
    """A PerMessageDeflate built while ``name`` is the backend."""
    monkeypatch.setattr(deflate_codec, "_BACKEND", backend(monkeypatch, name))
    return PerMessageDeflate(is_server, *args)  # type: ignore[arg-type]


def json_text(count: int, seed: int) -> bytes:
    """Deterministic JSON records."""
    rng = random.Random(seed)
    return json.dumps(
        [{"id": i, "v": rng.random(), "tag": rng.choice(["a", "bb", "ccc"])} for i in range(count)]
    ).encode()


def messages() -> Iterator[list[Frame]]:
    """Messages as frame lists: small, large JSON, random bytes, repeats, fragmented, empty."""
    rng = random.Random(7)
    yield [Frame(Opcode.TEXT, b"Hello")]
    yield [Frame(Opcode.TEXT, json_text(3000, 1))]
    yield [Frame(Opcode.BINARY, bytes(rng.randrange(256) for _ in range(5000)))]
    yield [Frame(Opcode.BINARY, bytes(rng.randrange(256) for _ in range(300)) * 40)]
    yield [Frame(Opcode.TEXT, json_text(50, 2))]  # context from the first JSON message
    yield [
        Frame(Opcode.TEXT, json_text(40, 3), fin=False),
        Frame(Opcode.CONT, json_text(40, 4), fin=False),
        Frame(Opcode.CONT, b"", fin=False),
        Frame(Opcode.CONT, json_text(40, 5)),
    ]
    yield [Frame(Opcode.BINARY, b"")]


@requires_zlib_ng
@pytest.mark.parametrize(
    ("sender", "receiver"),
    [("zlib-ng", "zlib"), ("zlib", "zlib-ng"), ("zlib-ng", "zlib-ng")],
    ids=["ng-to-zlib", "zlib-to-ng", "ng-to-ng"],
)
@pytest.mark.parametrize("bits", [8, 9, 12, 15], ids=lambda bits: f"bits-{bits}")
@pytest.mark.parametrize("no_takeover", [False, True], ids=["takeover", "no-takeover"])
def test_each_backend_decodes_the_others_stream(
    monkeypatch: pytest.MonkeyPatch, sender: str, receiver: str, bits: int, no_takeover: bool
) -> None:
    """Every message compressed by one backend decodes with the other, window by window."""
    server = extension(monkeypatch, sender, True, bits, bits, no_takeover, no_takeover)
    client = extension(monkeypatch, receiver, False, bits, bits, no_takeover, no_takeover)
    for frames in messages():
        sent = [server.encode(frame) for frame in frames]
        assert sent[0].rsv1
        assert [client.decode(frame).data for frame in sent] == [f.data for f in frames]


@requires_zlib_ng
@pytest.mark.parametrize("bits", range(8, 16), ids=lambda bits: f"bits-{bits}")
def test_zlib_ng_stays_within_the_negotiated_window(
    monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    """zlib's inflate with the negotiated window, fed byte by byte, reads zlib-ng's stream."""
    rng = random.Random(bits)
    sender = extension(monkeypatch, "zlib-ng", True, bits, bits)
    receiver = zlib.decompressobj(wbits=-bits)
    for period in (200, 250, 256, 300, 511, 513, 4097):
        chunk = bytes(rng.randrange(256) for _ in range(period))
        message = chunk * max(3, 9000 // period)
        stream = sender.encode(Frame(Opcode.BINARY, message)).data + b"\x00\x00\xff\xff"
        output = b"".join(receiver.decompress(stream[i : i + 1]) for i in range(len(stream)))
        assert output == message


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
@pytest.mark.parametrize("bits", [8, 9, 12, 15], ids=lambda bits: f"bits-{bits}")
@pytest.mark.parametrize("every", [1, 2], ids=["release-each", "release-every-other"])
def test_side_released_between_messages_is_read_by_peers_that_kept_their_window(
    monkeypatch: pytest.MonkeyPatch, name: str, is_server: bool, bits: int, every: int
) -> None:
    """Released or not, each message reads with our decoder and with one zlib inflater."""
    if name == "zlib-ng" and not HAVE_ZLIB_NG:
        pytest.skip("zlib-ng is not installed (pip install trio_wsext[fast])")
    side = extension(monkeypatch, name, is_server, bits, bits)
    peer = extension(monkeypatch, name, not is_server, bits, bits)
    inflater = zlib.decompressobj(wbits=-bits)
    for index, frames in enumerate(messages()):
        sent = [side.encode(frame) for frame in frames]
        assert [peer.decode(frame).data for frame in sent] == [f.data for f in frames]
        stream = b"".join(frame.data for frame in sent) + b"\x00\x00\xff\xff"
        assert inflater.decompress(stream) == b"".join(f.data for f in frames)
        if index % every == 0:
            side.release_idle_memory()
            assert side._compressor is None
        else:
            assert side._compressor is not None
    assert peer._decompressor is not None


@pytest.mark.parametrize("name", BACKENDS)
def test_release_waits_for_the_end_of_a_fragmented_message_with_each_backend(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Between two fragments of a compressed message, release keeps the compressor."""
    if name == "zlib-ng" and not HAVE_ZLIB_NG:
        pytest.skip("zlib-ng is not installed (pip install trio_wsext[fast])")
    server = extension(monkeypatch, name, True, 12, 12)
    client = extension(monkeypatch, name, False, 12, 12)
    fragments = next(frames for frames in messages() if len(frames) > 2)
    sent = []
    for fragment in fragments:
        sent.append(server.encode(fragment))
        if fragment.fin:
            server.release_idle_memory()
            assert server._compressor is None
        else:
            compressor = server._compressor
            server.release_idle_memory()
            assert server._compressor is compressor is not None
    assert [client.decode(frame).data for frame in sent] == [f.data for f in fragments]


def deflate_bomb(inflated: int) -> bytes:
    """A raw DEFLATE stream of ``inflated`` zero bytes, about 1/1000 of that."""
    compressor = zlib.compressobj(wbits=-15)
    mebibyte = b"\x00" * 2**20
    head = compressor.compress(mebibyte) + compressor.flush(zlib.Z_SYNC_FLUSH)
    repeat = compressor.compress(mebibyte) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return head + repeat * (inflated // 2**20 - 1)


@pytest.mark.parametrize("name", BACKENDS)
def test_bomb_is_refused_after_its_budget_with_each_backend(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A 1 MB frame that inflates to 1 GiB stops at 1 MiB + 1 byte, whatever the backend."""
    if name == "zlib-ng" and not HAVE_ZLIB_NG:
        pytest.skip("zlib-ng is not installed (pip install trio_wsext[fast])")
    receiver = extension(monkeypatch, name, False)
    frame = Frame(Opcode.BINARY, deflate_bomb(2**30), rsv1=True)
    with pytest.raises(
        PayloadTooBig, match=r"^compressed message inflates past the 1048576 bytes left "
    ):
        receiver.decode(frame, max_size=2**20)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize(("max_size", "fits"), [(10_000, True), (9_999, False), (None, True)])
def test_budget_is_exact_with_each_backend(
    monkeypatch: pytest.MonkeyPatch, name: str, max_size: int | None, fits: bool
) -> None:
    """A 10,000-byte message fits a budget of 10,000 or none, not 9,999, with either backend."""
    if name == "zlib-ng" and not HAVE_ZLIB_NG:
        pytest.skip("zlib-ng is not installed (pip install trio_wsext[fast])")
    message = json_text(400, 9)[:10_000]
    frame = PerMessageDeflate(True).encode(Frame(Opcode.BINARY, message))
    receiver = extension(monkeypatch, name, False)
    if fits:
        assert receiver.decode(frame, max_size=max_size).data == message
    else:
        with pytest.raises(PayloadTooBig, match=r"^compressed message inflates past the 9999 "):
            receiver.decode(frame, max_size=max_size)


@requires_zlib_ng
def test_zlib_ng_bounds_output_and_keeps_the_rest_like_zlib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """max_length, unconsumed_tail, unused_data and eof behave the same in both modules."""
    ng = backend(monkeypatch, "zlib-ng")
    stream = deflate_bomb(2**22)
    final = zlib.compressobj(wbits=-15)
    ended = final.compress(b"end" * 1000) + final.flush() + b"extra"
    for data, limit in ((stream, 1000), (stream, 2**20 + 1), (ended, 10), (ended, 0)):
        std, new = zlib.decompressobj(wbits=-15), ng.decompressobj(-15)
        outputs = (std.decompress(data, limit), new.decompress(data, limit))
        assert outputs[0] == outputs[1]
        assert (std.unconsumed_tail, std.unused_data, std.eof) == (
            new.unconsumed_tail,  # type: ignore[attr-defined]
            new.unused_data,
            new.eof,
        )


@pytest.mark.parametrize("name", BACKENDS)
def test_corrupt_data_fails_with_1007_with_each_backend(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Invalid DEFLATE data is a ProtocolError with code 1007 whichever module raised it."""
    if name == "zlib-ng" and not HAVE_ZLIB_NG:
        pytest.skip("zlib-ng is not installed (pip install trio_wsext[fast])")
    receiver = extension(monkeypatch, name, False)
    with pytest.raises(ProtocolError, match=r"^invalid compressed data: ") as info:
        receiver.decode(Frame(Opcode.BINARY, b"\xff\xff\xff\xff", rsv1=True))
    assert info.value.code == 1007


def test_environment_variable_keeps_the_standard_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """TRIO_WSEXT_DEFLATE_BACKEND=zlib chooses zlib even when zlib-ng is installed."""
    monkeypatch.setenv("TRIO_WSEXT_DEFLATE_BACKEND", "zlib")
    assert deflate_codec._load_backend() is deflate_codec._STDLIB


def test_standard_library_without_zlib_ng(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without zlib-ng (its import fails), the standard library's zlib is the backend."""
    monkeypatch.delenv("TRIO_WSEXT_DEFLATE_BACKEND", raising=False)
    monkeypatch.setitem(sys.modules, "zlib_ng", None)
    assert deflate_codec._load_backend() is deflate_codec._STDLIB


@requires_zlib_ng
def test_zlib_ng_is_the_default_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With zlib-ng installed and no environment variable, zlib-ng is chosen."""
    monkeypatch.delenv("TRIO_WSEXT_DEFLATE_BACKEND", raising=False)
    assert deflate_codec._load_backend().name == "zlib-ng"
    assert deflate_codec.BACKEND in {"zlib", "zlib-ng"}


def _sizes_around_the_split() -> list[int]:
    large = deflate_codec.LARGE_MESSAGE
    return [100, large - 1, large, 3 * large, 50, 2000, large, large + 1, 10, large * 2, 500]


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
@pytest.mark.parametrize("bits", [9, 12, 15], ids=lambda bits: f"bits-{bits}")
def test_small_and_large_messages_switch_compressors_and_one_window_reads_them_all(
    monkeypatch: pytest.MonkeyPatch, name: str, is_server: bool, bits: int
) -> None:
    """Small messages go to zlib, large ones to the backend; a peer keeping one window reads all.

    A compressor switched at a message boundary starts with an empty window,
    so the peer's single inflater (with context takeover, as the RFC has it)
    decodes the whole stream whichever compressor made each message.
    """
    if name == "zlib-ng" and not HAVE_ZLIB_NG:
        pytest.skip("zlib-ng is not installed (pip install trio_wsext[fast])")
    side = extension(monkeypatch, name, is_server, bits, bits)
    inflater = zlib.decompressobj(wbits=-bits)
    rng = random.Random(bits)
    for size in _sizes_around_the_split():
        data = (json_text(size // 20 + 1, rng.randrange(1000)) * 2)[:size]
        sent = side.encode(Frame(Opcode.TEXT, data))
        assert sent.rsv1
        assert inflater.decompress(sent.data + b"\x00\x00\xff\xff") == data
        expected = name if size >= deflate_codec.LARGE_MESSAGE else "zlib"
        assert side._compressor_backend.name == expected


@requires_zlib_ng
def test_a_small_message_after_a_large_one_frees_zlib_ngs_compressor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    side = extension(monkeypatch, "zlib-ng", True, 12, 12)
    side.encode(Frame(Opcode.TEXT, json_text(2000, 1)))
    large_compressor = side._compressor
    assert side._compressor_backend.name == "zlib-ng"
    side.encode(Frame(Opcode.TEXT, b'{"small": true}' * 10))
    assert side._compressor is not large_compressor
    assert side._compressor_backend is deflate_codec._STDLIB
    # And a fragmented message keeps the compressor its first frame chose.
    first = side.encode(Frame(Opcode.TEXT, json_text(2000, 2), fin=False))
    last = side.encode(Frame(Opcode.CONT, b"tail"))
    assert first.rsv1
    assert not last.rsv1
    assert side._compressor_backend.name == "zlib-ng"


@pytest.mark.parametrize("bits", [9, 12, 14, 15])
def test_decompression_uses_zlib_ng_only_for_the_largest_window(
    monkeypatch: pytest.MonkeyPatch, bits: int
) -> None:
    """zlib-ng's inflater holds a 32 KiB window whatever was negotiated: ~41 KiB against ~5.

    At 15 bits zlib's needs the same, and zlib-ng's is faster.
    """
    name = "zlib-ng" if HAVE_ZLIB_NG else "zlib"
    side = extension(monkeypatch, name, True, bits, bits)
    peer = PerMessageDeflate(False, bits, bits)
    message = json_text(1000, 3)
    assert side.decode(peer.encode(Frame(Opcode.TEXT, message))).data == message
    expected = name if bits == 15 else "zlib"
    assert side._inflate_backend.name == expected
    assert isinstance(side._decompressor, type(side._inflate_backend.decompressobj(-9)))
