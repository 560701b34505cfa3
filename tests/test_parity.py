"""Parity with trio-websocket 0.12: every public name, and every call it allows, works here too."""

from __future__ import annotations

import contextlib
import inspect
import tomllib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from helpers import MemoryListener

import trio_wsext
from trio_wsext import (
    WebSocketRequest,
    WebSocketServer,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
    serve_websocket,
    wrap_client_stream,
    wrap_server_stream,
)
from trio_wsext.frames import CloseReason

trio_websocket = pytest.importorskip("trio_websocket")

#: trio-websocket's public names (its ``__init__`` re-exports them; no ``__all__``).
TRIO_WEBSOCKET_NAMES = sorted(
    name
    for name, value in vars(trio_websocket).items()
    if not name.startswith("_") and not inspect.ismodule(value)
)

#: Constructors that are not for users in either library (trio-websocket's take
#: wsproto objects; ours take the handshake and the stream), and CloseReason,
#: whose constructor API.md fixes as ``(code, name, reason)``.
CONSTRUCTORS_NOT_COMPARED = {"WebSocketConnection", "WebSocketRequest", "CloseReason"}

#: Public class attributes of trio-websocket that are implementation details:
#: a connection counter for its ``str()``.
MEMBERS_NOT_COMPARED = {"CONNECTION_ID"}

POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _parameters(function: Callable[..., Any]) -> Mapping[str, inspect.Parameter] | None:
    """The parameters, or ``None`` for an exception that keeps ``BaseException``'s constructor."""
    try:
        return inspect.signature(function).parameters
    except ValueError:
        return None


def call_incompatibilities(theirs: Callable[..., Any], ours: Callable[..., Any]) -> list[str]:
    """Ways a call that is valid for ``theirs`` would fail or bind differently for ``ours``."""
    their_parameters = _parameters(theirs)
    our_parameters = _parameters(ours)
    if their_parameters is None or our_parameters is None:
        same = their_parameters is None and our_parameters is None
        return [] if same else ["one takes BaseException's (*args), the other not"]
    problems = []
    their_positional = [p.name for p in their_parameters.values() if p.kind in POSITIONAL]
    our_positional = [p.name for p in our_parameters.values() if p.kind in POSITIONAL]
    if our_positional[: len(their_positional)] != their_positional:
        problems.append(f"positional order {their_positional} became {our_positional}")
    for name, theirs_p in their_parameters.items():
        if theirs_p.kind in VARIADIC:
            continue
        ours_p = our_parameters.get(name)
        if ours_p is None:
            problems.append(f"no parameter {name!r}")
        elif theirs_p.kind is not inspect.Parameter.POSITIONAL_ONLY and ours_p.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            *VARIADIC,
        ):
            problems.append(f"{name!r} cannot be passed by keyword")
        elif theirs_p.default is not inspect.Parameter.empty and ours_p.default is ours_p.empty:
            problems.append(f"{name!r} is optional there, required here")
    for name, ours_p in our_parameters.items():
        extra = name not in their_parameters and ours_p.kind not in VARIADIC
        if extra and ours_p.default is inspect.Parameter.empty:
            problems.append(f"extra required parameter {name!r}")
    return problems


def test_every_trio_websocket_name_is_exported() -> None:
    """Each public name of trio-websocket is in ``trio_wsext.__all__``."""
    assert set(TRIO_WEBSOCKET_NAMES) - set(trio_wsext.__all__) == set()


@pytest.mark.parametrize(
    "name", [name for name in TRIO_WEBSOCKET_NAMES if name not in CONSTRUCTORS_NOT_COMPARED]
)
def test_calls_valid_for_trio_websocket_are_valid_here(name: str) -> None:
    """Same parameter names and positional order; our extra parameters are optional."""
    theirs, ours = getattr(trio_websocket, name), getattr(trio_wsext, name)
    assert call_incompatibilities(theirs, ours) == []


def _classes() -> list[str]:
    return [
        name for name in TRIO_WEBSOCKET_NAMES if inspect.isclass(getattr(trio_websocket, name))
    ]


@pytest.mark.parametrize("name", _classes())
def test_every_trio_websocket_member_exists_and_takes_the_same_calls(name: str) -> None:
    """Each public method and property of a trio-websocket class is here, callable the same way."""
    theirs, ours = getattr(trio_websocket, name), getattr(trio_wsext, name)
    problems: dict[str, list[str]] = {}
    for member, value in vars(theirs).items():
        if member.startswith("_") or member in MEMBERS_NOT_COMPARED:
            continue
        ours_value = inspect.getattr_static(ours, member, None)
        if ours_value is None:
            problems[member] = ["missing"]
        elif isinstance(value, property):
            # A property or an attrs field (a slot): readable on an instance.
            if not inspect.isdatadescriptor(ours_value):
                problems[member] = ["not an attribute of instances"]
        elif callable(value) and (found := call_incompatibilities(value, ours_value)):
            problems[member] = found
    assert problems == {}


def test_members_are_checked_on_the_classes_users_touch() -> None:
    """The member check above covers the connection, the request, the server and Endpoint."""
    assert {"WebSocketConnection", "WebSocketRequest", "WebSocketServer", "Endpoint"} <= set(
        _classes()
    )


def test_version_is_the_packages() -> None:
    """``trio_wsext.__version__`` (trio-websocket has one) is pyproject.toml's version."""
    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    version = tomllib.loads(pyproject.read_text())["project"]["version"]
    assert trio_wsext.__version__ == version


# -- receive_buffer_size reaches the connection from every entry point ---------------------


async def _never_called(request: WebSocketRequest) -> None:
    raise AssertionError("no connection expected")  # pragma: no cover


async def _open_websocket(nursery: trio.Nursery, **options: Any) -> None:
    async with open_websocket("127.0.0.1", 9, **options):
        pass  # pragma: no cover - the options are refused first


async def _open_websocket_url(nursery: trio.Nursery, **options: Any) -> None:
    async with open_websocket_url("ws://127.0.0.1:9/", **options):
        pass  # pragma: no cover - the options are refused first


async def _connect_websocket(nursery: trio.Nursery, **options: Any) -> None:
    await connect_websocket(nursery, "127.0.0.1", 9, "/", **options)


async def _connect_websocket_url(nursery: trio.Nursery, **options: Any) -> None:
    await connect_websocket_url(nursery, "ws://127.0.0.1:9/", **options)


async def _serve_websocket(nursery: trio.Nursery, **options: Any) -> None:
    await nursery.start(partial(serve_websocket, _never_called, "127.0.0.1", 0, None, **options))


async def _websocket_server(nursery: trio.Nursery, **options: Any) -> None:
    WebSocketServer(_never_called, [MemoryListener()], **options)


@pytest.mark.parametrize(
    "entry_point",
    [
        _open_websocket,
        _open_websocket_url,
        _connect_websocket,
        _connect_websocket_url,
        _serve_websocket,
        _websocket_server,
    ],
    ids=lambda f: f.__name__.lstrip("_"),
)
@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, r"^receive_buffer_size must be > 0 or None, not 0$"),
        ("4096", TypeError, r"^receive_buffer_size must be an int or None, not str$"),
    ],
    ids=["zero", "str"],
)
async def test_receive_buffer_size_is_taken_and_checked_everywhere(
    entry_point: Callable[..., Any], value: object, error: type[Exception], message: str
) -> None:
    """Every entry point takes trio-websocket's receive_buffer_size and checks it before I/O."""
    async with trio.open_nursery() as nursery:
        with pytest.raises(error, match=message):
            await entry_point(nursery, receive_buffer_size=value)


async def test_receive_buffer_size_reaches_both_connections_over_tcp() -> None:
    """serve_websocket and open_websocket hand receive_buffer_size to their connections."""
    sizes: dict[str, int | None] = {}

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        sizes["server"] = ws._engine._receive_size  # no public reader of it, as in trio-websocket
        await ws.send_message(await ws.get_message())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(serve_websocket, handler, "127.0.0.1", 0, None, receive_buffer_size=7)
            )
            async with open_websocket(
                "127.0.0.1", server.port, receive_buffer_size=5, ping_interval=None
            ) as ws:
                sizes["client"] = ws._engine._receive_size
                await ws.send_message("x" * 100)
                assert await ws.get_message() == "x" * 100
            nursery.cancel_scope.cancel()
    assert sizes == {"client": 5, "server": 7}


@pytest.mark.parametrize(
    ("address", "port", "is_ssl"),
    [("127.0.0.1", 80, False), ("::1", 8443, True)],
    ids=["ipv4", "ipv6"],
)
def test_endpoint_reads_as_trio_websockets(address: str, port: int, is_ssl: bool) -> None:
    """``repr``/``str`` and ``url`` of an Endpoint are trio-websocket's, so log lines match."""
    ours, theirs = (
        trio_wsext.Endpoint(address, port, is_ssl),
        trio_websocket.Endpoint(address, port, is_ssl),
    )
    assert repr(ours) == str(ours) == repr(theirs)
    assert ours.url == theirs.url


# -- the wrap functions against trio-websocket's own, over one memory stream pair ----------

MESSAGES: list[str | bytes] = ["text", b"\x00binary"]


async def test_our_wrap_server_stream_serves_trio_websockets_wrap_client_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    """trio-websocket's client, wrapped over a memory stream, talks to our wrapped server."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            request = await wrap_server_stream(nursery, server_stream, ping_interval=None)
            assert request.proposed_subprotocols == ("chat",)
            assert request.path == "/echo"
            ws = await request.accept(subprotocol="chat")
            async for message in ws:
                await ws.send_message(message)

        nursery.start_soon(serve)
        client = await trio_websocket.wrap_client_stream(
            nursery, client_stream, "example.com", "/echo", subprotocols=["chat"]
        )
        assert client.subprotocol == "chat"
        for message in MESSAGES:
            await client.send_message(message)
            assert await client.get_message() == message
        await client.aclose()
    assert client.closed.code == 1000


async def test_our_wrap_client_stream_talks_to_trio_websockets_wrap_server_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Our wrapped client against trio-websocket's wrapped server: no deflate, messages echo."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:

        async def serve() -> None:
            request = await trio_websocket.wrap_server_stream(nursery, server_stream)
            ws = await request.accept(extra_headers=[(b"x-server", b"trio-websocket")])
            with contextlib.suppress(trio_websocket.ConnectionClosed):
                while True:
                    await ws.send_message(await ws.get_message())

        nursery.start_soon(serve)
        client = await wrap_client_stream(
            nursery, client_stream, "example.com", "/echo", ping_interval=None
        )
        assert client.extensions == []  # offered, and declined by a server without deflate
        assert (b"x-server", b"trio-websocket") in client.handshake_headers
        for message in MESSAGES:
            await client.send_message(message)
            assert await client.get_message() == message
        await client.aclose()
    assert client.closed == CloseReason(1000, "NORMAL_CLOSURE", None)
