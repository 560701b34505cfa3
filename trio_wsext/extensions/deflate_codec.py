"""The permessage-deflate codec (:rfc:`7692#section-7.2`): compress and decompress messages.

Strategy: :class:`PerMessageDeflate` is what negotiation (in
:mod:`trio_wsext.extensions.permessage_deflate`, which re-exports it) agrees
on. Its constructor renames the RFC's ``server_*``/``client_*`` parameters
``local_*``/``remote_*``, once: the compressor follows the local ones and the
decompressor the remote ones, so the code below never asks which side it is
on.

The compressor and the decompressor share no state, so that a connection may
encode in one thread while it decodes in another. Each is created by the
first message that needs it and, under ``*_no_context_takeover``, dropped at
the end of each message: an idle connection of that kind holds no zlib
memory at all. With context takeover, :meth:`PerMessageDeflate.release_idle_memory`
drops the compressor of a connection that has gone quiet: the next message
starts a fresh one, whose output never refers back to the old window, which
every peer decodes (its decompressor keeps the old window, unused). The
decompressor is kept, because the peer's next messages may refer to its
window.

Decompression is bounded: zlib is never asked for more output than what is
left of the message-size budget, plus one byte to tell "exactly full" from
"too big", so a small frame that inflates to gigabytes costs its budget and
no more.

Why a window of 8 bits is compressed with zlib's 9: zlib's deflate cannot be
set up with a 256-byte window for a raw stream (``compressobj(wbits=-8)``
raises ``ValueError`` since zlib 1.2.9). But zlib's
deflate never emits a match farther back than its window minus 262 bytes
(``MAX_DIST`` in ``deflate.c``), so a 512-byte window emits distances of at
most 250, which a peer decoding with a 256-byte window accepts. An 8 is thus
honoured in every position: announced as 8, compressed with zlib's 9. The
decompressor also uses 9 for an 8: every valid stream decodes the same, and
so do the streams of peers whose deflater widened 8 to 9 less carefully.

The backends: when the ``zlib-ng`` package is installed (``pip install
trio_wsext[fast]``), its ``zlib_ng.zlib_ng`` module, a drop-in for the
standard library's :mod:`zlib`, compresses messages of
:data:`LARGE_MESSAGE` bytes or more, about twice as fast as zlib. Everything
else -- smaller messages, and decompression -- uses the standard library,
because zlib-ng's state is large whatever the settings: its compressor
holds a fixed 128 KiB hash table (~160 KiB in all, against ~36 KiB for
zlib's at a 4 KiB window and memLevel 5) and its decompressor a 32 KiB
window (~41 KiB, against ~5 KiB), which for 2,000 busy connections is
400 MiB against 80 MiB. Switching compressors is allowed at any message
boundary for the same reason as releasing one (above): the new one starts
with an empty window. So a connection changes compressor only when a message
crosses :data:`LARGE_MESSAGE` the other way from the previous one, and
holds zlib-ng's only while its large messages go on. A decompressor for
the largest window (15 bits, 32 KiB) is zlib-ng's: zlib's then needs the
same memory, and zlib-ng inflates about twice as fast. Both speak plain
DEFLATE, so either end may use either (the tests decode each one's streams
with the other), and both honour ``max_length`` and ``unconsumed_tail`` the
same way. zlib-ng's deflate keeps zlib's ``MAX_DIST`` (its window minus 262
bytes), so the window argument above holds for it too. Setting the
environment variable ``TRIO_WSEXT_DEFLATE_BACKEND=zlib`` keeps the standard
library for large messages too. :data:`BACKEND` names the one that
compresses large messages.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Hashable, Mapping
from typing import Final, Protocol, cast, final

import attrs

from ..exceptions import PayloadTooBig, ProtocolError
from ..frames import CloseCode, Frame, Opcode, frame_unchecked
from .base import Extension

__all__ = ["BACKEND", "LARGE_MESSAGE", "PerMessageDeflate"]


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int, /) -> bytes: ...


class _Decompressor(Protocol):
    @property
    def unused_data(self) -> bytes: ...
    @property
    def eof(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


@attrs.frozen
class _Backend:
    """A zlib-compatible module: the standard library's, or zlib-ng's."""

    name: str
    compressobj: Callable[[int, int, int, int, int], _Compressor]
    decompressobj: Callable[[int], _Decompressor]
    error: type[Exception]


#: The environment variable that chooses the backend: ``zlib`` keeps the
#: standard library's even when zlib-ng is installed.
BACKEND_ENV: Final = "TRIO_WSEXT_DEFLATE_BACKEND"

_STDLIB: Final = _Backend("zlib", zlib.compressobj, zlib.decompressobj, zlib.error)


def _load_backend() -> _Backend:
    """Return zlib-ng's module when installed (unless ``BACKEND_ENV`` says zlib), else zlib's."""
    if os.environ.get(BACKEND_ENV, "").strip().lower() == "zlib":
        return _STDLIB
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return _STDLIB
    return _Backend(
        "zlib-ng",
        zlib_ng.compressobj,
        zlib_ng.decompressobj,
        cast(type[Exception], zlib_ng.error),  # its stub types it as an instance
    )


#: What each new :class:`PerMessageDeflate` compresses with, read when it is built.
_BACKEND: _Backend = _load_backend()

#: The deflate backend that compresses large messages: ``"zlib-ng"`` (the
#: ``zlib-ng`` package is installed) or ``"zlib"`` (the standard library).
BACKEND: Final = _BACKEND.name

#: Messages (first frames) of at least this many bytes are compressed with
#: :data:`BACKEND`, smaller ones with the standard library's zlib (see the
#: module docstring). At 8 KiB of JSON zlib-ng compresses in ~65 us against
#: zlib's ~100, a fresh compressor included, and a message that size gains
#: almost nothing from the previous message's 4 KiB window; below it, zlib's
#: quarter-size state with its window kept wins.
LARGE_MESSAGE: Final = 8 * 1024

#: RFC 7692 §7.2.1: the sender removes these 4 octets, the empty stored block
#: that ends a sync flush; RFC 7692 §7.2.2: the receiver appends them again.
_TAIL: Final = b"\x00\x00\xff\xff"

#: RFC 7692 §7.1.2.1: without the parameter, the window is "up to 32,768
#: bytes" (2**15).
DEFAULT_WINDOW_BITS: Final = 15

#: The smallest window zlib's raw deflate accepts (see the module docstring).
_ZLIB_MIN_WINDOW_BITS: Final = 9

#: Below this size a final frame's data and the tail are joined and inflated
#: in one call; above it, two calls avoid copying the frame (websockets
#: measured the crossover near 2 KiB).
_JOIN_TAIL_BELOW: Final = 2048

#: zlib.compressobj's defaults for the settings that may be changed
#: (zlib.h: Z_DEFAULT_COMPRESSION, DEF_MEM_LEVEL = 8, Z_DEFAULT_STRATEGY).
_ZLIB_DEFAULTS: Final = {"level": zlib.Z_DEFAULT_COMPRESSION, "memLevel": 8, "strategy": 0}
#: Each setting's allowed range (zlib.h, deflateInit2).
_SETTING_RANGES: Final = {"level": (-1, 9), "memLevel": (1, 9)}
_STRATEGIES: Final = frozenset(
    {zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE, zlib.Z_FIXED}
)


def check_window_bits(name: str, value: object, *, none: bool = False, bare: bool = False) -> None:
    """Raise ValueError unless ``value`` is an int from 8 to 15 (or an allowed extra).

    ``bool`` is refused although it is an ``int``: code ported from websockets,
    whose factories take ``server_no_context_takeover`` first, fails here
    instead of binding a flag to a window size.
    """
    if (none and value is None) or (bare and value is True):
        return
    if type(value) is not int or not 8 <= value <= 15:
        extras = ", True or None" if bare else " or None" if none else ""
        raise ValueError(f"{name} must be an int from 8 to 15{extras}, not {value!r}")


def check_flag(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a bool."""
    if type(value) is not bool:
        raise ValueError(f"{name} must be a bool, not {value!r}")


def check_threshold(value: object) -> None:
    """Raise ValueError unless ``value`` is an int >= 0."""
    if type(value) is not int or value < 0:
        raise ValueError(f"threshold must be an int >= 0, not {value!r}")


def check_compress_settings(value: object) -> dict[str, int]:
    """Validate ``compress_settings``; return a private copy ({} for None).

    Only ``level``, ``memLevel`` and ``strategy`` may be set: ``wbits`` is
    negotiated, and ``zdict`` or another ``method`` would make streams the
    peer cannot read.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"compress_settings must be a dict or None, not {value!r}")
    settings = dict(value)
    if "wbits" in settings:
        raise ValueError(
            "compress_settings must not set wbits: the window is negotiated "
            "(server_max_window_bits, client_max_window_bits)"
        )
    for key, item in settings.items():
        if key == "strategy":
            if type(item) is not int or item not in _STRATEGIES:
                raise ValueError(
                    "compress_settings['strategy'] must be one of zlib's Z_DEFAULT_STRATEGY, "
                    f"Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED, not {item!r}"
                )
        elif key in _SETTING_RANGES:
            low, high = _SETTING_RANGES[key]
            if type(item) is not int or not low <= item <= high:
                raise ValueError(
                    f"compress_settings[{key!r}] must be an int from {low} to {high}, not {item!r}"
                )
        else:
            raise ValueError(
                f"compress_settings: unknown key {key!r}; allowed: level, memLevel, strategy"
            )
    return settings


@final
class PerMessageDeflate(Extension):
    """Compress and decompress data messages with DEFLATE (:rfc:`7692#section-7`).

    Built by the factories from the negotiated parameters; the arguments are
    named as in the RFC, from the point of view of the connection as a whole.
    Every argument can be read back as an attribute of the same name.

    Args:
        is_server: ``True`` on the server's side of the connection.
        server_max_window_bits: the server's LZ77 window, as a power of 2 (8-15).
        client_max_window_bits: the client's LZ77 window, as a power of 2 (8-15).
        server_no_context_takeover: the server compresses each message with
            an empty window.
        client_no_context_takeover: the client compresses each message with
            an empty window.
        compress_settings: keywords of :func:`zlib.compressobj`: ``level``,
            ``memLevel``, ``strategy``; ``None`` means zlib's defaults.
        threshold: data messages shorter than this many bytes go out
            uncompressed (RSV1 clear), as RFC 7692 §6 allows per message.

    Raises:
        ValueError: an argument has the wrong type or is out of range; the
            message names it.
    """

    name = "permessage-deflate"
    rsv_bits = frozenset({1})

    def __init__(
        self,
        is_server: bool,
        server_max_window_bits: int = DEFAULT_WINDOW_BITS,
        client_max_window_bits: int = DEFAULT_WINDOW_BITS,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        compress_settings: Mapping[str, int] | None = None,
        *,
        threshold: int = 0,
    ) -> None:
        check_flag("is_server", is_server)
        check_window_bits("server_max_window_bits", server_max_window_bits)
        check_window_bits("client_max_window_bits", client_max_window_bits)
        check_flag("server_no_context_takeover", server_no_context_takeover)
        check_flag("client_no_context_takeover", client_no_context_takeover)
        settings = check_compress_settings(compress_settings)
        check_threshold(threshold)
        self._zlib_settings = {**_ZLIB_DEFAULTS, **settings}
        self._large_backend = _BACKEND  # large messages (see LARGE_MESSAGE)
        super().__init__(self.name)
        self._is_server = is_server
        self._server_max_window_bits = server_max_window_bits
        self._client_max_window_bits = client_max_window_bits
        self._server_no_context_takeover = server_no_context_takeover
        self._client_no_context_takeover = client_no_context_takeover
        self._compress_settings = settings
        self._threshold = threshold

        # From here on, only local (what we compress) and remote (what we decompress).
        if is_server:
            local_bits, remote_bits = server_max_window_bits, client_max_window_bits
            self._local_no_context_takeover = server_no_context_takeover
            self._remote_no_context_takeover = client_no_context_takeover
        else:
            local_bits, remote_bits = client_max_window_bits, server_max_window_bits
            self._local_no_context_takeover = client_no_context_takeover
            self._remote_no_context_takeover = server_no_context_takeover
        # Negative wbits: a raw DEFLATE stream, no zlib header (RFC 7692 §7.2.1).
        self._local_wbits = -max(local_bits, _ZLIB_MIN_WINDOW_BITS)
        self._remote_wbits = -max(remote_bits, _ZLIB_MIN_WINDOW_BITS)
        # zlib-ng's inflater holds a 32 KiB window whatever the window bits;
        # zlib's holds only the window asked for. At 15 bits they cost the
        # same, and zlib-ng inflates about twice as fast: it decompresses then.
        self._inflate_backend = _BACKEND if remote_bits == DEFAULT_WINDOW_BITS else _STDLIB

        # Send side: touched only by encode().
        self._compressor: _Compressor | None = None
        self._compressor_backend = _STDLIB  # which backend made self._compressor
        self._compressing = False  # is the message being sent compressed?
        # Receive side: touched only by decode().
        self._decompressor: _Decompressor | None = None
        self._decompressing = False  # is the message being received compressed?
        self._stream_ended = False  # did a BFINAL block end the stream in this message?

    @property
    def is_server(self) -> bool:
        """``True`` on the server's side of the connection."""
        return self._is_server

    @property
    def server_max_window_bits(self) -> int:
        """The server's LZ77 window, as a power of 2."""
        return self._server_max_window_bits

    @property
    def client_max_window_bits(self) -> int:
        """The client's LZ77 window, as a power of 2."""
        return self._client_max_window_bits

    @property
    def server_no_context_takeover(self) -> bool:
        """Whether the server compresses each message with an empty window."""
        return self._server_no_context_takeover

    @property
    def client_no_context_takeover(self) -> bool:
        """Whether the client compresses each message with an empty window."""
        return self._client_no_context_takeover

    @property
    def compress_settings(self) -> dict[str, int] | None:
        """A copy of the :func:`zlib.compressobj` keywords, or ``None``."""
        return dict(self._compress_settings) if self._compress_settings else None

    @property
    def threshold(self) -> int:
        """Data messages shorter than this many bytes go out uncompressed."""
        return self._threshold

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflate(is_server={self._is_server}, "
            f"server_max_window_bits={self._server_max_window_bits}, "
            f"client_max_window_bits={self._client_max_window_bits}, "
            f"server_no_context_takeover={self._server_no_context_takeover}, "
            f"client_no_context_takeover={self._client_no_context_takeover}, "
            f"compress_settings={self.compress_settings!r}, threshold={self._threshold})"
        )

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Compress an outgoing data frame; control frames pass unchanged.

        The first frame of a message decides for the whole message:
        ``compress=False`` sends it uncompressed, ``True`` compresses it,
        ``None`` compresses it unless it is a single frame shorter than
        :attr:`threshold`. Each compressed frame is sync-flushed; the first
        carries RSV1, the "Per-Message Compressed" bit that marks a compressed
        message (RFC 7692 §6), and the last loses the trailing ``00 00 ff ff``.

        Args:
            frame: the frame to send.
            compress: the caller's choice for the message this frame starts;
                ignored on continuation frames.
        """
        opcode = frame.opcode
        if opcode is Opcode.CONT:
            if not self._compressing:
                return frame
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if compress is None:
                # A fragmented message's size is unknown here: compress it.
                compress = not frame.fin or len(frame.data) >= self._threshold
            self._compressing = compress
            if not compress:
                return frame
            backend = self._large_backend if len(frame.data) >= LARGE_MESSAGE else _STDLIB
            if backend is not self._compressor_backend:
                # A fresh compressor, which a message boundary allows (see
                # release_idle_memory); the other one's memory goes now.
                self._compressor = None
                self._compressor_backend = backend
        else:
            # RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message
            # Compressed" bit of control frames".
            return frame

        compressor = self._compressor
        if compressor is None:
            zlib_settings = self._zlib_settings
            compressor = self._compressor = self._compressor_backend.compressobj(
                zlib_settings["level"],
                zlib.DEFLATED,
                self._local_wbits,
                zlib_settings["memLevel"],
                zlib_settings["strategy"],
            )
        data = compressor.compress(frame.data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if frame.fin:
            # RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff)
            # from the tail end." A sync flush always ends with them.
            data = data[:-4]
            self._compressing = False
            if self._local_no_context_takeover:
                self._compressor = None
        return frame_unchecked(
            opcode, data, frame.fin, opcode is not Opcode.CONT, frame.rsv2, frame.rsv3
        )

    def broadcast_key(self) -> Hashable | None:
        """Return what a compressed message depends on, when it depends on no history.

        Only a server that compresses each message with an empty window
        (``server_no_context_takeover``) has one: its output is then a
        function of the message, the window size, the zlib settings and the
        threshold, so a broadcast compresses the message once for every
        connection with the same key. With context takeover each message
        refers back to the connection's own earlier messages, and the key is
        ``None``.
        """
        if not (self._is_server and self._local_no_context_takeover):
            return None
        settings = self._zlib_settings
        return (
            self.name,
            self._local_wbits,
            settings["level"],
            settings["memLevel"],
            settings["strategy"],
            self._threshold,
        )

    def release_idle_memory(self) -> None:
        """Drop the compressor between messages; the next message builds a fresh one.

        A sender may start a new LZ77 window at any message boundary: the
        fresh compressor emits no back-reference into the old window, and the
        peer's decompressor, which keeps that window, decodes the message as
        any other. So an idle connection with context takeover holds no
        compressor (zlib's is ~36-50 KiB at the default settings, zlib-ng's,
        after a large message, ~160 KiB), at the cost of compressing its next message without
        context. The decompressor is kept: under context takeover the peer's
        next messages may refer to its window (under the peer's
        no_context_takeover it is already freed after each message).

        Does nothing while a compressed message is half sent (its first
        frame encoded, not yet its last): its next frames need the same
        compressor. Touches only the send side, like :meth:`encode`, and must
        not run at the same time as it.
        """
        if not self._compressing:
            self._compressor = None

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decompress an incoming data frame of a compressed message.

        Frames of uncompressed messages and control frames pass unchanged.

        Args:
            frame: the frame as received.
            max_size: what is left of the message-size budget, or ``None``;
                the output never exceeds it.

        Raises:
            PayloadTooBig: the frame inflates past ``max_size`` (close code
                1009); inflation stops at ``max_size + 1`` bytes.
            ProtocolError: RSV1 on a control or continuation frame (1002), or
                data that is not valid DEFLATE (1007).
        """
        opcode = frame.opcode
        if opcode is Opcode.CONT:
            if frame.rsv1:
                # RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message
                # Compressed" bit of ... non-first fragments of a data message.
                # An endpoint receiving such a frame MUST _Fail the WebSocket
                # Connection_."
                raise ProtocolError("RSV1 set on a continuation frame")
            if not self._decompressing:
                return frame
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._decompressing = frame.rsv1
            if not frame.rsv1:
                return frame
        else:
            if frame.rsv1:
                raise ProtocolError(f"RSV1 set on a {opcode.name} frame")
            return frame

        data = self._inflate(frame.data, frame.fin, max_size)
        if frame.fin:
            self._decompressing = False
            # RFC 7692 §7.2.3.4 allows a BFINAL block; the stream then ended,
            # and the next message starts a new one with an empty window.
            if self._remote_no_context_takeover or self._stream_ended:
                self._decompressor = None
                self._stream_ended = False
        return frame_unchecked(opcode, data, frame.fin, False, frame.rsv2, frame.rsv3)

    def _inflate(self, data: bytes, fin: bool, max_size: int | None) -> bytes:
        """Inflate one frame's data (and the tail after the last), within ``max_size``."""
        if fin and len(data) < _JOIN_TAIL_BELOW:
            chunks: tuple[bytes, ...] = (data + _TAIL,)
        elif fin:
            chunks = (data, _TAIL)
        else:
            chunks = (data,)
        budget = None if max_size is None else max(max_size, 0)
        parts: list[bytes] = []
        produced = 0
        for chunk in chunks:
            while chunk:
                decompressor = self._decompressor
                if decompressor is None:
                    decompressor = self._decompressor = self._inflate_backend.decompressobj(
                        self._remote_wbits
                    )
                # max_length 0 means "no limit" to zlib; budget + 1 is never 0.
                room = 0 if budget is None else budget - produced + 1
                try:
                    output = decompressor.decompress(chunk, room)
                except self._inflate_backend.error as exc:
                    # RFC 6455 §7.4.1: 1007 is for "data within a message that
                    # was not consistent with the type of the message".
                    raise ProtocolError(
                        f"invalid compressed data: {exc}", code=CloseCode.INVALID_DATA
                    ) from exc
                produced += len(output)
                if budget is not None and produced > budget:
                    raise PayloadTooBig(
                        f"compressed message inflates past the {budget} bytes left "
                        "of the message size limit"
                    )
                parts.append(output)
                if decompressor.eof:
                    # A BFINAL block ended the stream: what follows (the RFC's
                    # padding octet, the tail, or a new stream) goes to a new
                    # decompressor.
                    chunk = decompressor.unused_data
                    self._decompressor = None
                    self._stream_ended = True
                else:
                    # The output was not full, so zlib consumed all the input.
                    chunk = b""
        return parts[0] if len(parts) == 1 else b"".join(parts)
