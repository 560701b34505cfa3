"""Extensions that each break one rule of ``trio_wsext.testing``, on purpose.

Each is a small, plausible bug (the kind a first extension has), paired with
factories, so that ``tests/test_testing.py`` can show the check for that rule
failing with its own message. Every factory pair here negotiates, so that a
check fails for the rule it tests, not for a handshake that never happened.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence

from trio_wsext.exceptions import NegotiationError, PayloadTooBig
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.frames import Frame, Opcode

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
_FIRST = (Opcode.TEXT, Opcode.BINARY)


def _flip(data: bytes) -> bytes:
    # Flip the lowest bit of every byte: valid UTF-8 stays valid UTF-8, but changed.
    return data.translate(bytes(b ^ 0x01 for b in range(256)))


class PlainClientFactory(ClientExtensionFactory):
    """Offers ``name`` (with ``parameters``) and builds ``make()`` from any answer."""

    def __init__(
        self,
        name: str,
        make: Callable[[], Extension],
        parameters: Sequence[ExtensionParameter] = (),
    ) -> None:
        super().__init__(name, parameters)
        self.make = make

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Build the extension."""
        return self.make()


class PlainServerFactory(ServerExtensionFactory):
    """Accepts any offer of ``name``, answers without parameters, builds ``make()``."""

    def __init__(self, name: str, make: Callable[[], Extension]) -> None:
        super().__init__(name)
        self.make = make

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept the offer."""
        return [], self.make()


def factories(
    make: Callable[[], Extension], name: str | None = None
) -> tuple[ClientExtensionFactory, ServerExtensionFactory]:
    """Return a client and a server factory that negotiate ``make()`` on both sides."""
    name = name or make().name
    return PlainClientFactory(name, make), PlainServerFactory(name, make)


# -- round_trip --------------------------------------------------------------------------------


class ChecksumExtension(Extension):
    """Appends a 1-byte checksum to each data frame; decode strips it only from 2 bytes up.

    The bug: an empty message is encoded as the checksum alone (1 byte), which
    decode leaves in place, so an empty message arrives as one NUL byte.
    """

    def __init__(self) -> None:
        super().__init__("x-checksum")

    def encode(self, frame: Frame) -> Frame:
        """Append the checksum."""
        if frame.opcode not in _DATA:
            return frame
        return frame.replace(data=frame.data + bytes([sum(frame.data) & 0xFF]))

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Strip the checksum (but not from a 1-byte payload)."""
        if frame.opcode not in _DATA or len(frame.data) < 2:
            return frame
        return frame.replace(data=frame.data[:-1])


# -- fragments ---------------------------------------------------------------------------------


class ContinuationBlindExtension(Extension):
    """Scrambles every data frame, but unscrambles only TEXT and BINARY frames, not CONT."""

    def __init__(self) -> None:
        super().__init__("x-cont-blind")

    def encode(self, frame: Frame) -> Frame:
        """Scramble TEXT, BINARY and CONT frames."""
        return frame.replace(data=_flip(frame.data)) if frame.opcode in _DATA else frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Unscramble TEXT and BINARY frames (forgetting CONT frames)."""
        return frame.replace(data=_flip(frame.data)) if frame.opcode in _FIRST else frame


# -- control_frames ----------------------------------------------------------------------------


class ControlScramblingExtension(Extension):
    """Scrambles every frame, control frames too, and unscrambles them all.

    Messages, pings and close frames come out right at the other end, but
    control frames cross the wire changed.
    """

    def __init__(self) -> None:
        super().__init__("x-scramble-all")

    def encode(self, frame: Frame) -> Frame:
        """Scramble any frame."""
        return frame.replace(data=_flip(frame.data))

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Unscramble any frame."""
        return frame.replace(data=_flip(frame.data))


# -- rsv_bits ----------------------------------------------------------------------------------


class UndeclaredBitExtension(Extension):
    """Marks each message's first frame with RSV2, and clears it, without declaring it."""

    def __init__(self) -> None:
        super().__init__("x-undeclared")

    def encode(self, frame: Frame) -> Frame:
        """Set RSV2 on TEXT and BINARY frames."""
        return frame.replace(rsv2=True) if frame.opcode in _FIRST else frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Clear RSV2."""
        return frame.replace(rsv2=False) if frame.opcode in _FIRST else frame


# -- chained_with_deflate, chained_with_marker -------------------------------------------------


class Rsv1Extension(Extension):
    """Declares RSV1, which permessage-deflate uses (and sets it on first frames)."""

    rsv_bits = frozenset({1})

    def __init__(self) -> None:
        super().__init__("x-rsv1")

    def encode(self, frame: Frame) -> Frame:
        """Set RSV1 on TEXT and BINARY frames."""
        return frame.replace(rsv1=True) if frame.opcode in _FIRST else frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Clear RSV1 on TEXT and BINARY frames."""
        return frame.replace(rsv1=False) if frame.opcode in _FIRST else frame


class FrameRebuildingExtension(Extension):
    """Scrambles data frames, returning ``Frame(opcode, data, fin)``: it drops the others' bits."""

    def __init__(self) -> None:
        super().__init__("x-rebuild")

    def encode(self, frame: Frame) -> Frame:
        """Scramble a data frame into a new Frame (losing RSV1-3)."""
        if frame.opcode not in _DATA:
            return frame
        return Frame(frame.opcode, _flip(frame.data), fin=frame.fin)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Unscramble a data frame into a new Frame (losing RSV1-3)."""
        if frame.opcode not in _DATA:
            return frame
        return Frame(frame.opcode, _flip(frame.data), fin=frame.fin)


# -- declines ----------------------------------------------------------------------------------


class LevelExtension(Extension):
    """A pass-through extension negotiated with a ``level`` parameter."""

    def __init__(self, level: int) -> None:
        super().__init__("x-level")
        self.level = level


class LevelClientFactory(ClientExtensionFactory):
    """Offers ``x-level; level=3`` and reads the level back, refusing odd answers cleanly."""

    def __init__(self) -> None:
        super().__init__("x-level", [("level", "3")])

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Build the extension at the answered level."""
        values = dict(parameters)
        if set(values) != {"level"} or not (values["level"] or "").isdigit():
            raise NegotiationError(f"unexpected answer {parameters}")
        return LevelExtension(int(values["level"] or ""))


class CrashingLevelServerFactory(ServerExtensionFactory):
    """Reads ``level`` from the offer with ``int(dict(parameters)["level"])``.

    The bug: an offer without ``level`` raises KeyError, and ``level=x``
    raises ValueError, where NegotiationError would decline the offer.
    """

    def __init__(self) -> None:
        super().__init__("x-level")

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept the offer at its level."""
        level = int(dict(parameters)["level"] or "")
        return [("level", str(level))], LevelExtension(level)


class CrashingLevelClientFactory(LevelClientFactory):
    """Reads ``level`` from the answer with ``int(...)``: an answer of ``level=x`` raises."""

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Build the extension at the answered level."""
        return LevelExtension(int(dict(parameters)["level"] or ""))


class LevelServerFactory(ServerExtensionFactory):
    """Accepts ``x-level`` at the offered level; declines odd offers with NegotiationError."""

    def __init__(self) -> None:
        super().__init__("x-level")

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept an offer of one numeric ``level``."""
        values = dict(parameters)
        if len(parameters) != 1 or not (values.get("level") or "").isdigit():
            raise NegotiationError(f"unexpected offer {parameters}")
        return [("level", values["level"])], LevelExtension(int(values["level"] or ""))


# -- max_size ----------------------------------------------------------------------------------


class _Inflating(Extension):
    """Compresses each data frame on its own with zlib, marked with RSV2."""

    rsv_bits = frozenset({2})

    def encode(self, frame: Frame) -> Frame:
        """Compress a data frame."""
        if frame.opcode not in _DATA:
            return frame
        return frame.replace(data=zlib.compress(frame.data), rsv2=True)


class UnboundedInflateExtension(_Inflating):
    """Decompresses with ``decode(self, frame)``, without ``max_size``: no limit at all."""

    def __init__(self) -> None:
        super().__init__("x-unbounded")

    def decode(self, frame: Frame) -> Frame:  # type: ignore[override]
        """Decompress, however large the result."""
        if not frame.rsv2:
            return frame
        return frame.replace(data=zlib.decompress(frame.data), rsv2=False)


class OffByOneInflateExtension(_Inflating):
    """Takes ``max_size`` but refuses output of exactly ``max_size`` bytes."""

    def __init__(self) -> None:
        super().__init__("x-off-by-one")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decompress, refusing max_size bytes or more."""
        if not frame.rsv2:
            return frame
        decompressor = zlib.decompressobj()
        data = decompressor.decompress(frame.data, 0 if max_size is None else max_size + 1)
        if max_size is not None and len(data) >= max_size:
            raise PayloadTooBig(f"{len(data)} bytes")
        return frame.replace(data=data, rsv2=False)


class WrongErrorInflateExtension(_Inflating):
    """Bounded, but raises ValueError past ``max_size`` instead of PayloadTooBig."""

    def __init__(self) -> None:
        super().__init__("x-wrong-error")

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decompress within max_size; raise ValueError past it."""
        if not frame.rsv2:
            return frame
        decompressor = zlib.decompressobj()
        data = decompressor.decompress(frame.data, 0 if max_size is None else max_size + 1)
        if max_size is not None and len(data) > max_size:
            raise ValueError("too big")
        return frame.replace(data=data, rsv2=False)


# -- threads -----------------------------------------------------------------------------------


class SharedScratchExtension(Extension):
    """Copies payloads through one scratch buffer shared by encode and decode.

    The bug: a large message's encode (in a worker thread, slow) and the
    event loop's decode of small messages use the same buffer, so the large
    message goes out with a small message's bytes.
    """

    def __init__(self) -> None:
        super().__init__("x-scratch")
        self.scratch = bytearray()

    def encode(self, frame: Frame) -> Frame:
        """Copy the payload through the scratch buffer (slowly, for large ones)."""
        if frame.opcode not in _DATA:
            return frame
        self.scratch = bytearray(frame.data)
        if len(frame.data) >= 65536:
            time.sleep(0.05)  # the work a real extension would do; the GIL is released
        return frame.replace(data=bytes(self.scratch))

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Copy the payload through the scratch buffer."""
        if frame.opcode not in _DATA:
            return frame
        self.scratch = bytearray(frame.data)
        return frame.replace(data=bytes(self.scratch))


# -- negotiation -------------------------------------------------------------------------------


class SingletonServerFactory(ServerExtensionFactory):
    """Returns one extension object to every connection."""

    def __init__(self) -> None:
        super().__init__("x-singleton")
        self.extension = Extension("x-singleton")

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept, with the shared object."""
        return [], self.extension


# -- timeouts ----------------------------------------------------------------------------------


class SlowPingExtension(Extension):
    """Blocks for ``delay`` seconds on every PING frame it decodes."""

    def __init__(self, delay: float = 1.0) -> None:
        super().__init__("x-slow-ping")
        self.delay = delay

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Block on a ping."""
        if frame.opcode is Opcode.PING:
            time.sleep(self.delay)
        return frame
