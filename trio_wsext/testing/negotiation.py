"""The checks on the opening handshake: the pair negotiates, and refusals are clean.

Strategy: ``negotiation`` opens two connections with the same factory
objects, as a server reuses its factories for every client, and checks that
each connection gets extension objects of its own (an extension keeps
per-connection state: a compressor's window, a message in progress).
``declines`` checks the other outcomes of a handshake: the server without
the extension (the connection goes on without it), and offers or answers
that the factories cannot accept, made by rewriting the real ones (an
unknown parameter, a parameter twice, a value of ``x``, no parameters):
each factory must then build the extension or raise
:class:`~trio_wsext.exceptions.NegotiationError`, which declines the offer
(server) or fails the handshake cleanly (client). Any other exception is a
crash of the handshake, which a server answers with HTTP 500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from ..exceptions import NegotiationError
from ..extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from ..extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from ..headers import index_headers, parse_extension_header
from .corpus import Message
from .diagnosis import explain_handshake, require_active
from .flow import exchange
from .harness import CheckRun, HandshakeFailed, Pair, open_pair
from .probes import SIDES, Probes

__all__ = ["REWRITES", "check_declines", "check_negotiation", "rewrites_for"]

_Params = list[ExtensionParameter]

#: The parameter name the rewrites add: ``x-`` and the kit's name, so that no
#: real extension knows it.
_UNKNOWN: Final = "x-trio-wsext-unknown"

#: A value that few parameters accept: one letter, a valid token.
_ODD_VALUE: Final = "x"

#: How ``declines`` rewrites an offer or an answer: a label, and a function of
#: the real parameters (``None`` when it does not apply to them).
REWRITES: Final[tuple[tuple[str, Callable[[_Params], _Params | None]], ...]] = (
    ("with an unknown parameter", lambda p: [*p, (_UNKNOWN, None)]),
    ("with an unknown parameter that has a value", lambda p: [*p, (_UNKNOWN, "1")]),
    ("with its first parameter twice", lambda p: [*p, p[0]] if p else None),
    ("without its parameters", lambda p: [] if p else None),
)


def rewrites_for(parameters: _Params) -> list[tuple[str, _Params]]:
    """Return every rewrite of ``parameters`` that ``declines`` tries, labelled."""
    rewritten: list[tuple[str, _Params]] = []
    for label, rewrite in REWRITES:
        result = rewrite(parameters)
        if result is not None:
            rewritten.append((label, result))
    for index, (name, value) in enumerate(parameters):
        odd = [*parameters[:index], (name, _ODD_VALUE), *parameters[index + 1 :]]
        rewritten.append((f"with {name}={_ODD_VALUE}", odd))
        if value is not None:
            bare = [*parameters[:index], (name, None), *parameters[index + 1 :]]
            rewritten.append((f"with {name} without its value", bare))
    return rewritten


def _check_objects(
    run: CheckRun, client: Extension, server: Extension
) -> tuple[Extension, Extension]:
    for side, extension, factory in (
        ("client", client, run.client_factory),
        ("server", server, run.server_factory),
    ):
        if extension.name != factory.name:
            run.fail(
                f"the {side} factory {factory.name!r} built an extension named {extension.name!r}",
                "give the extension its factory's name: the handshake refuses a second "
                "extension of one name by the extensions' names, and ws.extensions "
                "reports them.",
            )
    if client is server:
        run.fail(
            "the client and the server factory returned the same extension object",
            "build a new Extension in every process_response_params and "
            "process_request_params call: each side keeps state of its own.",
        )
    return client, server


async def check_negotiation(run: CheckRun) -> None:
    """The factory pair negotiates, and each connection gets extension objects of its own."""
    made: list[tuple[Extension, Extension]] = []
    for attempt in (1, 2):
        run.step = f"opening connection {attempt} with the same factories"
        async with open_pair(run, [run.client()], [run.server()]) as pair:
            client, server = require_active(run, pair.client.extensions, pair.server.extensions)
            made.append(_check_objects(run, client, server))
    for index, side in enumerate(SIDES):
        if made[0][index] is made[1][index]:
            factory = run.client_factory if side == "client" else run.server_factory
            method = "process_response_params" if side == "client" else "process_request_params"
            run.fail(
                f"the {side} factory returned the same {type(made[0][index]).__name__} "
                "object to two connections",
                f"{type(factory).__name__}.{method} must build a new Extension for every "
                "connection (a server reuses its factories for every client, and each "
                "connection encodes and decodes in its own threads with its own state).",
            )


def _response_params(pair: Pair, name: str) -> _Params:
    values = index_headers(pair.client.response_headers).get("sec-websocket-extensions", [])
    return next((params for n, params in parse_extension_header(values) if n == name), [])


async def _goes_on_without(
    run: CheckRun,
    client_factories: Sequence[ClientExtensionFactory],
    server_factories: Sequence[ServerExtensionFactory],
    expected: list[str],
    situation: str,
) -> None:
    """Open a connection the extension cannot join; it must run with ``expected`` only."""
    run.step = f"opening a connection {situation}"
    async with open_pair(run, client_factories, server_factories) as pair:
        for side in SIDES:
            active = [extension.name for extension in pair.on(side).extensions]
            if active != expected:
                run.fail(
                    f"{situation}, the {side} runs {active}, not {expected}",
                    "a client factory whose offer the server does not accept must not "
                    "add an extension of its own.",
                )
        messages: list[Message] = ["going on without the extension ✓", b"\x00\x01going on"]
        await exchange(run, pair.client, pair.server, messages, f"{situation}: client → server")
        await exchange(run, pair.server, pair.client, messages, f"{situation}: server → client")


def _replace_with(parameters: _Params) -> Callable[[_Params], _Params]:
    """Return a rewrite that replaces any parameters with ``parameters``."""

    def rewrite(_: _Params) -> _Params:
        return list(parameters)

    return rewrite


def _fail_crash(run: CheckRun, failure: HandshakeFailed, situation: str) -> None:
    """Fail for a factory that crashed; a NegotiationError is a clean refusal."""
    if run.probes.crashes or not isinstance(failure.client_error, NegotiationError):
        explain_handshake(run, failure, situation)


async def check_declines(run: CheckRun) -> None:
    """Without the server's extension the connection goes on; odd offers are refused cleanly."""
    name = run.extension_name
    async with open_pair(run, [run.client()], [run.server()]) as pair:
        require_active(run, pair.client.extensions, pair.server.extensions)
        offer = list(run.client_factory.get_request_params())
        answer = _response_params(pair, name)

    await _goes_on_without(
        run, [run.client()], [], [], "when the server does not have the extension"
    )
    if name != PerMessageDeflate.name:
        await _goes_on_without(
            run,
            [run.client(), ClientPerMessageDeflateFactory()],
            [ServerPerMessageDeflateFactory()],
            [PerMessageDeflate.name],
            "when the server has only permessage-deflate",
        )

    for label, params in rewrites_for(offer):
        situation = f"an offer {label}"
        run.step = f"trying {situation}"
        run.probes = Probes()  # each handshake's crashes on their own
        try:
            async with open_pair(run, [run.client(_replace_with(params))], [run.server()]) as pair:
                if not pair.server.extensions:
                    await exchange(run, pair.client, pair.server, ["declined ✓"], situation)
        except HandshakeFailed as failure:
            _fail_crash(run, failure, situation)

    for label, params in rewrites_for(answer):
        situation = f"an answer {label}"
        run.step = f"trying {situation}"
        run.probes = Probes()
        try:
            async with open_pair(run, [run.client()], [run.server(_replace_with(params))]):
                pass
        except HandshakeFailed as failure:
            _fail_crash(run, failure, situation)
