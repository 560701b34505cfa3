"""WebSocket extensions: the framework and permessage-deflate (RFC 7692)."""

from __future__ import annotations

from .base import (
    ClientExtensionFactory,
    Extension,
    ExtensionChain,
    ExtensionParameter,
    ServerExtensionFactory,
)

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionChain",
    "ExtensionParameter",
    "ServerExtensionFactory",
]
