"""WebSocket extensions: the framework and permessage-deflate (RFC 7692)."""

from __future__ import annotations

from .base import (
    ClientExtensionFactory,
    Extension,
    ExtensionChain,
    ExtensionParameter,
    ServerExtensionFactory,
)
from .permessage_deflate import (
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionChain",
    "ExtensionParameter",
    "ServerExtensionFactory",
    "enable_client_permessage_deflate",
    "enable_server_permessage_deflate",
]
