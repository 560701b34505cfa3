"""The public names: the top level and the submodules against API.md and their ``__all__``."""

from __future__ import annotations

import importlib
import inspect

import pytest

import trio_wsext

#: The exceptions of API.md's "Exceptions" section ("main ones also top level").
API_EXCEPTIONS = {
    "WebSocketError",
    "ConnectionClosed",
    "ConnectionRejected",
    "HandshakeError",
    "ConnectionTimeout",
    "DisconnectionTimeout",
    "NegotiationError",
    "DuplicateParameter",
    "InvalidParameterName",
    "InvalidParameterValue",
    "ProtocolError",
    "PayloadTooBig",
}

#: The names shared/API.md puts at the top level: the client and server entry
#: points, the connection, Frame and Opcode ("also top level"), the exceptions.
API_TOP_LEVEL = {
    "open_websocket",
    "open_websocket_url",
    "connect_websocket",
    "connect_websocket_url",
    "serve_websocket",
    "WebSocketServer",
    "WebSocketRequest",
    "WebSocketConnection",
    "broadcast",
    "Frame",
    "Opcode",
    *API_EXCEPTIONS,
}

#: Public names API.md gives each submodule.
API_SUBMODULES = {
    "trio_wsext.frames": {"Opcode", "Frame", "CloseCode", "Close"},
    "trio_wsext.extensions": {
        "Extension",
        "ClientExtensionFactory",
        "ServerExtensionFactory",
        "ExtensionParameter",
        "ExtensionChain",
        "enable_client_permessage_deflate",
        "enable_server_permessage_deflate",
    },
    "trio_wsext.extensions.base": {
        "Extension",
        "ClientExtensionFactory",
        "ServerExtensionFactory",
        "ExtensionParameter",
        "ExtensionChain",
    },
    "trio_wsext.extensions.permessage_deflate": {
        "PerMessageDeflate",
        "ClientPerMessageDeflateFactory",
        "ServerPerMessageDeflateFactory",
        "enable_client_permessage_deflate",
        "enable_server_permessage_deflate",
    },
    "trio_wsext.exceptions": API_EXCEPTIONS,
}


def test_top_level_all_has_every_api_name() -> None:
    """Every name API.md puts at the top level is in ``trio_wsext.__all__``."""
    assert API_TOP_LEVEL - set(trio_wsext.__all__) == set()


def test_top_level_all_is_sorted_unique_and_importable() -> None:
    """``__all__`` is sorted, without duplicates, and every name is there."""
    assert trio_wsext.__all__ == sorted(set(trio_wsext.__all__))
    missing = [name for name in trio_wsext.__all__ if not hasattr(trio_wsext, name)]
    assert missing == []


def test_top_level_exports_nothing_else_public() -> None:
    """Public module attributes are in ``__all__``, except the submodules."""
    public = {
        name
        for name, value in vars(trio_wsext).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(trio_wsext.__all__)


@pytest.mark.parametrize("name", sorted(trio_wsext.__all__))
def test_top_level_name_is_the_defining_modules_object(name: str) -> None:
    """Each top-level name is re-exported, not redefined: the same object as its module's."""
    value = getattr(trio_wsext, name)
    module = importlib.import_module(value.__module__)
    assert getattr(module, value.__name__) is value
    assert name in getattr(module, "__all__", [])


@pytest.mark.parametrize("module_name", sorted(API_SUBMODULES), ids=sorted(API_SUBMODULES))
def test_submodule_all_has_its_api_names(module_name: str) -> None:
    """Each submodule's ``__all__`` lists the names API.md gives it, and they import."""
    module = importlib.import_module(module_name)
    assert API_SUBMODULES[module_name] - set(module.__all__) == set()
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
