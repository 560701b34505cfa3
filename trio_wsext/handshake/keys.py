"""The key and the accept value of the opening handshake (:rfc:`6455#section-4`)."""

from __future__ import annotations

import base64
import hashlib
from typing import Final

__all__ = ["GUID", "KEY_BYTES", "WEBSOCKET_VERSION", "accept_key"]

#: RFC 6455 §1.3: the GUID that the server appends to the key.
GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 6455 §4.1: "The value of this header field MUST be 13."
WEBSOCKET_VERSION: Final = "13"

#: RFC 6455 §4.1: the key "MUST be a nonce consisting of a randomly selected
#: 16-byte value that has been base64-encoded".
KEY_BYTES: Final = 16


def accept_key(key: str) -> str:
    """Compute ``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (:rfc:`6455#section-1.3`).

    Args:
        key: the client's key, as sent (base64 text).

    Returns:
        ``base64(SHA-1(key + GUID))``.
    """
    digest = hashlib.sha1((key + GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")
