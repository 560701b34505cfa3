"""A custom extension: XOR "encryption", negotiated with a shared password.

Port of websockets' "Custom Implementation" example. With the right password
the server accepts the extension and both sides encrypt their frames; with a
wrong one the server declines it (``NegotiationError`` declines one offer)
and the connection goes on without it. XOR is NOT encryption: this shows the
extension API, nothing more.

``decode`` takes the keyword ``max_size``: what is left of the message-size
budget, which only an extension that expands data (decompression) needs to
respect. The original's ``decode(self, frame)`` runs unchanged too; type checkers
want the keyword.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from functools import partial

import trio

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.exceptions import NegotiationError
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.frames import Frame, Opcode


class SimpleEncryptionExtension(Extension):
    """Simple XOR encryption extension (for demonstration only)."""

    def __init__(self, key: bytes) -> None:
        super().__init__("simple-encrypt")
        self.key = key

    def _xor(self, data: bytes) -> bytes:
        return bytes(b ^ self.key[i % len(self.key)] for i, b in enumerate(data))

    def encode(self, frame: Frame) -> Frame:
        """Encrypt outgoing data frames."""
        if frame.opcode in [Opcode.TEXT, Opcode.BINARY]:
            # Simple XOR encryption (NOT secure!)
            return frame._replace(data=self._xor(frame.data))
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Decrypt incoming data frames."""
        if frame.opcode in [Opcode.TEXT, Opcode.BINARY]:
            # XOR decryption (same as encryption for XOR)
            return frame._replace(data=self._xor(frame.data))
        return frame


class SimpleEncryptionClientFactory(ClientExtensionFactory):
    """Client factory for simple encryption extension."""

    def __init__(self, password: str) -> None:
        # Generate key from password
        key = hashlib.sha256(password.encode()).digest()[:16]  # 16-byte key
        super().__init__("simple-encrypt", [("key", base64.b64encode(key).decode())])
        self.key = key

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Process server response parameters."""
        # In real implementation, would validate server parameters
        return SimpleEncryptionExtension(self.key)


class SimpleEncryptionServerFactory(ServerExtensionFactory):
    """Server factory for simple encryption extension."""

    def __init__(self, password: str) -> None:
        super().__init__("simple-encrypt")
        self.key = hashlib.sha256(password.encode()).digest()[:16]

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Process client request parameters."""
        # Validate client key matches our key
        client_key_param = next((p for p in parameters if p[0] == "key"), None)
        if client_key_param is None or client_key_param[1] is None:
            raise NegotiationError("Missing encryption key")

        try:
            client_key = base64.b64decode(client_key_param[1], validate=True)
        except binascii.Error as exc:  # not base64: decline, as for a wrong key
            raise NegotiationError("Invalid encryption key") from exc
        if client_key != self.key:
            raise NegotiationError("Invalid encryption key")

        # Return response parameters and extension
        response_params: list[ExtensionParameter] = [("key", base64.b64encode(self.key).decode())]
        extension = SimpleEncryptionExtension(self.key)

        return response_params, extension


def encrypted(names: list[str]) -> str:
    """How the messages travelled: "decrypted" if simple-encrypt was negotiated."""
    return "decrypted" if "simple-encrypt" in names else "not encrypted"


async def encrypted_handler(request: WebSocketRequest) -> None:
    """Echo each message; frames are decrypted before the handler sees them."""
    websocket = await request.accept()
    how = encrypted([extension.name for extension in websocket.extensions])
    async for message in websocket:
        print(f"Server received ({how}): {message!s}")
        await websocket.send_message(f"Encrypted echo: {message!s}")


async def custom_extension_example(url: str, password: str) -> None:
    """Connect with ``password`` and exchange one message."""
    print(f"\n=== Client password: {password!r} ===")
    # Client with custom extension
    client_extensions = [SimpleEncryptionClientFactory(password)]

    try:
        async with open_websocket_url(url, extensions=client_extensions) as websocket:
            names = [extension.name for extension in websocket.extensions]
            print(f"Negotiated extensions: {names}")
            # Send encrypted message
            await websocket.send_message("This message is encrypted!")
            response = await websocket.get_message()
            print(f"Client received ({encrypted(names)}): {response!s}")

    except Exception as e:
        print(f"Custom extension error: {e}")


async def main() -> None:
    """Start the server, connect with the right and a wrong password."""
    password = "shared-secret-password"
    server_extensions = [SimpleEncryptionServerFactory(password)]

    print("Starting server with custom encryption extension...")
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(
                serve_websocket,
                encrypted_handler,
                "127.0.0.1",
                0,
                None,
                extensions=server_extensions,
            )
        )
        url = f"ws://127.0.0.1:{server.port}"
        await custom_extension_example(url, password)
        # The server declines the offer; the connection goes on unencrypted.
        await custom_extension_example(url, "wrong-password")
        nursery.cancel_scope.cancel()


# Note: This is a demonstration. Real encryption would use proper cryptography
if __name__ == "__main__":
    trio.run(main)
