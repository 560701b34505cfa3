"""One message to many connections: :func:`broadcast` (``trio_wsext.broadcast``).

Strategy: a broadcast must not let one connection hold back the others, so
it never waits for one. Each connection is looked at once, in the calling
task, without a checkpoint in between:

- open, with room in its outgoing buffer (at most ``write_limit`` bytes
  waiting): the message is framed for it and written at once, or left in its
  buffer for its writer task;
- open, but a send would have to wait (the buffer is over ``write_limit``:
  the peer reads slower than it is sent to; or the connection is framing a
  large message in a worker thread, or sending a fragmented one): the
  ``on_slow`` policy applies, ``"skip"`` (the default) leaves it out of this
  message, ``"close"`` closes it with 1008 (policy violation);
- closing or closed: left out.

**Encoding once.** A server's frames are not masked, so the same message
gives the same frame bytes on every connection whose extensions encode it
the same way. Connections are grouped by their chain's
:meth:`~trio_wsext.extensions.base.Extension.broadcast_key`: no extension at
all, or permessage-deflate with ``server_no_context_takeover`` and the same
window, zlib settings and threshold. The message is framed (and compressed)
once per group, and every connection of the group is handed the same bytes.
Connections whose encoding depends on their own history (context takeover,
extensions without a key) and clients (whose frames are masked) each frame
the message themselves, as :meth:`~trio_wsext.WebSocketConnection.send_message`
would.

Everything happens on the event loop, as in websockets' ``broadcast()``:
a message of megabytes sent to connections that cannot share its encoding
compresses once per connection before the call returns; send such messages
with ``send_message``, whose large compressions run in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from typing import Final, Literal, TypeAlias

import attrs
import trio
from trio.lowlevel import cancel_shielded_checkpoint

from .connection import WebSocketConnection
from .engine import CLOSING, SLOW, UNKNOWN_BROADCAST_KEY
from .extensions.base import Extension, ExtensionChain
from .frames import CloseCode, serialize_frame_parts
from .messages import MessageFramer
from .protocol import Protocol, Side

__all__ = [
    "TOO_SLOW_REASON",
    "BroadcastResult",
    "SlowPolicy",
    "broadcast",
]

logger = logging.getLogger("trio_wsext.broadcast")

SlowPolicy: TypeAlias = Literal["skip", "close"]
"""What :func:`broadcast` does with a connection that cannot take a message now."""

#: The close reason of a connection that the ``"close"`` policy closes (code 1008).
TOO_SLOW_REASON: Final = "too slow to keep up with broadcast messages"

_POLICIES: Final = ("skip", "close")


@attrs.frozen
class BroadcastResult:
    """What :func:`broadcast` did with each connection.

    Every connection given is in exactly one of: counted in ``delivered``,
    ``skipped``, ``closed``, ``not_open``.
    """

    delivered: int
    """Connections the message was framed for: written, or waiting in their outgoing buffer."""
    skipped: tuple[WebSocketConnection, ...]
    """Connections left out because a send would have waited (``on_slow="skip"``)."""
    closed: tuple[WebSocketConnection, ...]
    """Connections closed with 1008 because a send would have waited (``on_slow="close"``)."""
    not_open: tuple[WebSocketConnection, ...]
    """Connections already closing or closed (or whose extension failed on the message)."""
    encodings: int
    """How many times the message was framed: once per group that shares an encoding,
    plus once per connection that frames it itself."""


async def broadcast(
    connections: Iterable[WebSocketConnection],
    message: str | bytes | bytearray | memoryview,
    *,
    compress: bool | None = None,
    on_slow: SlowPolicy = "skip",
) -> BroadcastResult:
    """Send ``message`` to every connection that can take it now, waiting for none.

    See the module's docstring for who gets it and how often it is
    encoded. Messages from one task's successive broadcasts arrive in order
    on every connection that took them. Cancellation: the call raises
    ``Cancelled`` before sending anything if its scope is cancelled, and is
    not interrupted once it starts (it never waits).

    Args:
        connections: the connections (a set, a list, any iterable; read once).
        message: ``str`` (a text message) or bytes-like (binary; copied once).
        compress: as in :meth:`~trio_wsext.WebSocketConnection.send_message`:
            ``False`` sends it uncompressed everywhere, ``None`` follows each
            connection's settings.
        on_slow: ``"skip"`` leaves out a connection whose outgoing buffer is
            over its ``write_limit`` (the peer reads too slowly), or that is
            busy framing a large or fragmented message; ``"close"`` closes it
            with 1008 and :data:`TOO_SLOW_REASON`, without waiting for the
            close to complete.

    Returns:
        A :class:`BroadcastResult`; skipped and closed connections are also
        logged (``trio_wsext.broadcast``, DEBUG).

    Raises:
        TypeError: ``message`` is neither ``str`` nor bytes-like, or
            ``compress`` is not a bool or ``None``.
        ValueError: ``on_slow`` is not ``"skip"`` or ``"close"``.
    """
    data = _message_data(message)
    if compress is not None and not isinstance(compress, bool):
        raise TypeError(f"compress must be True, False or None, not {compress!r}")
    if on_slow not in _POLICIES:
        raise ValueError(f"on_slow must be 'skip' or 'close', not {on_slow!r}")
    await trio.lowlevel.checkpoint_if_cancelled()

    delivered = 0
    encodings = 0
    skipped: list[WebSocketConnection] = []
    closed: list[WebSocketConnection] = []
    not_open: list[WebSocketConnection] = []
    prepared: dict[Hashable, tuple[tuple[bytes, ...], int]] = {}
    for connection in connections:
        engine = connection._engine
        readiness = engine.broadcast_readiness()
        if readiness == CLOSING:
            not_open.append(connection)
        elif readiness == SLOW:
            if on_slow == "close":
                engine.fail_now(CloseCode.POLICY_VIOLATION, TOO_SLOW_REASON)
                closed.append(connection)
            else:
                skipped.append(connection)
        else:
            key = engine.broadcast_key
            if key is UNKNOWN_BROADCAST_KEY:
                key = engine.broadcast_key = sharing_key(engine.protocol)
            if key is None:
                encodings += 1
                if engine.send_message_now(data, compress):
                    delivered += 1
                else:
                    not_open.append(connection)
                continue
            frame = prepared.get(key)
            if frame is None:
                frame = prepared[key] = prepare_message(data, engine.protocol.extensions, compress)
                encodings += 1
            engine.send_prepared_now(*frame)
            delivered += 1
    await cancel_shielded_checkpoint()
    if skipped or closed:
        logger.debug(
            "broadcast: %d delivered, %d skipped and %d closed for being too slow",
            delivered,
            len(skipped),
            len(closed),
        )
    return BroadcastResult(delivered, tuple(skipped), tuple(closed), tuple(not_open), encodings)


def _message_data(message: object) -> str | bytes:
    if isinstance(message, str):
        return message
    if isinstance(message, bytes):
        return message
    if isinstance(message, bytearray | memoryview):
        return bytes(message)
    raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")


def sharing_key(protocol: Protocol) -> Hashable | None:
    """Return the key of the connections that may share ``protocol``'s frames, or ``None``.

    A server's chain is shareable when every extension in it has a
    :meth:`~trio_wsext.extensions.base.Extension.broadcast_key`; the key holds
    each extension's class and key, in chain order (``()`` without extensions).
    A client masks its frames with keys of its own: never shareable.
    """
    if protocol.side is not Side.SERVER:
        return None
    keys: list[Hashable] = []
    for extension in protocol.extensions:
        key = extension.broadcast_key()
        if key is None:
            return None
        keys.append((type(extension), key))
    return tuple(keys)


def prepare_message(
    data: str | bytes, extensions: Sequence[Extension], compress: bool | None
) -> tuple[tuple[bytes, ...], int]:
    """Frame ``data`` as one unmasked message through ``extensions``.

    Returns the wire bytes (in pieces, as :func:`~trio_wsext.frames.serialize_frame_parts`
    gives them) and the payload size before encoding. The extensions must
    have a :meth:`~trio_wsext.extensions.base.Extension.broadcast_key`: their
    ``encode`` then leaves no state behind that a later message depends on.
    """
    frame = MessageFramer().message(data)
    payload_size = len(frame.data)
    if extensions:
        frame = ExtensionChain(extensions).encode(frame, compress=compress)
    parts = tuple(bytes(part) for part in serialize_frame_parts(frame, mask=False))
    return parts, payload_size
