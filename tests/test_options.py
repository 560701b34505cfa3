"""check_connection_options: every shared option refused with a message naming it."""

from __future__ import annotations

from typing import Any

import pytest

from trio_wsext import WebSocketRequest, open_websocket_url, serve_websocket
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from trio_wsext.options import (
    check_connection_options,
    check_extension_factories,
    check_seconds,
)

GOOD: dict[str, Any] = {
    "message_queue_size": 16,
    "max_message_size": 2**20,
    "disconnect_timeout": 60,
    "ping_interval": 20,
    "ping_timeout": 20,
    "connect_timeout": 60,
    "receive_buffer_size": 65536,
}


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"message_queue_size": -1}, ValueError, r"^message_queue_size must be >= 0, not -1$"),
        (
            {"message_queue_size": 1.5},
            TypeError,
            r"^message_queue_size must be an int, not float$",
        ),
        (
            {"message_queue_size": True},
            TypeError,
            r"^message_queue_size must be an int, not bool$",
        ),
        ({"max_message_size": 0}, ValueError, r"^max_message_size must be > 0 or None, not 0$"),
        (
            {"max_message_size": "1"},
            TypeError,
            r"^max_message_size must be an int or None, not str$",
        ),
        (
            {"receive_buffer_size": 0},
            ValueError,
            r"^receive_buffer_size must be > 0 or None, not 0$",
        ),
        (
            {"receive_buffer_size": 4096.0},
            TypeError,
            r"^receive_buffer_size must be an int or None, not float$",
        ),
        ({"connect_timeout": 0}, ValueError, r"^connect_timeout must be > 0 seconds, not 0$"),
        (
            {"disconnect_timeout": -1.5},
            ValueError,
            r"^disconnect_timeout must be > 0 seconds, not -1\.5$",
        ),
        (
            {"disconnect_timeout": None},
            TypeError,
            r"^disconnect_timeout must be a number of seconds, not None$",
        ),
        ({"ping_interval": 0}, ValueError, r"^ping_interval must be > 0 seconds, not 0$"),
        ({"ping_timeout": "5"}, TypeError, r"^ping_timeout must be a number of seconds, not str$"),
        (
            {"ping_timeout": float("nan")},
            ValueError,
            r"^ping_timeout must be > 0 seconds, not nan$",
        ),
    ],
    ids=[
        "negative-queue",
        "float-queue",
        "bool-queue",
        "zero-max-size",
        "str-max-size",
        "zero-receive-buffer",
        "float-receive-buffer",
        "zero-connect",
        "negative-disconnect",
        "none-disconnect",
        "zero-interval",
        "str-timeout",
        "nan-timeout",
    ],
)
def test_bad_option_is_refused(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Each option is checked, and the error names it and what it may be."""
    with pytest.raises(error, match=message):
        check_connection_options(**{**GOOD, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {
            "max_message_size": None,
            "receive_buffer_size": None,
            "ping_interval": None,
            "ping_timeout": None,
        },
        {"message_queue_size": 0},
    ],
    ids=["defaults", "nones", "unbuffered"],
)
def test_good_options_pass(changes: dict[str, Any]) -> None:
    """The defaults, None where allowed, and an unbuffered queue are fine."""
    check_connection_options(**{**GOOD, **changes})


def test_check_seconds_takes_int_and_float() -> None:
    """Seconds may be an int or a float, and None only when allowed."""
    check_seconds("t", 1, allow_none=False)
    check_seconds("t", 0.25, allow_none=False)
    check_seconds("t", None, allow_none=True)


# -- factories and TLS contexts, on both sides, before any I/O -------------------------------


@pytest.mark.parametrize(
    ("extensions", "server", "message"),
    [
        (["deflate"], True, r"^extensions\[0\] must be a ServerExtensionFactory, not str$"),
        (
            [ClientPerMessageDeflateFactory()],
            True,
            r"^extensions\[0\] must be a ServerExtensionFactory,"
            r" not ClientPerMessageDeflateFactory \(a client factory\)$",
        ),
        (
            [ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory()],
            False,
            r"^extensions\[1\] must be a ClientExtensionFactory,"
            r" not ServerPerMessageDeflateFactory \(a server factory\)$",
        ),
        ("permessage-deflate", False, r"^extensions must be a list of extension factories"),
    ],
)
def test_extension_factories_of_the_wrong_kind_are_named(
    extensions: Any, server: bool, message: str
) -> None:
    """A factory of the wrong side, or not a factory at all, fails naming its position."""
    with pytest.raises(TypeError, match=message):
        check_extension_factories(extensions, server=server)


def test_factories_of_the_right_kind_pass() -> None:
    """Both built-in factories pass on their own side; None and [] pass."""
    check_extension_factories([ServerPerMessageDeflateFactory()], server=True)
    check_extension_factories([ClientPerMessageDeflateFactory()], server=False)
    check_extension_factories(None, server=True)
    check_extension_factories([], server=False)


async def test_server_refuses_bad_options_before_listening() -> None:
    """A path for ssl_context, or a client factory, fails before anything is bound."""
    with pytest.raises(
        TypeError, match=r"^ssl_context must be an ssl.SSLContext or None, not str$"
    ):
        await serve_websocket(_never, "127.0.0.1", 0, "cert.pem")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a client factory"):
        await serve_websocket(
            _never,
            "127.0.0.1",
            0,
            None,
            extensions=[ClientPerMessageDeflateFactory()],  # type: ignore[list-item]
        )


async def test_client_refuses_bad_options_before_connecting() -> None:
    """The wrong kind of factory, or a bad ssl_context, names the option; no I/O happens."""
    with pytest.raises(TypeError, match=r"a server factory"):
        async with open_websocket_url(
            "ws://127.0.0.1:9/",
            extensions=[ServerPerMessageDeflateFactory()],  # type: ignore[list-item]
        ):
            pass
    with pytest.raises(TypeError, match=r"^ssl_context must be an ssl.SSLContext or None"):
        async with open_websocket_url("wss://127.0.0.1:9/", "cert.pem"):  # type: ignore[arg-type]
            pass


async def _never(request: WebSocketRequest) -> None:
    raise AssertionError("no connection may be served")  # pragma: no cover
