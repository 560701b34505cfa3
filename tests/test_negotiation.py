"""Tests of trio_wsext.negotiation: which offers become active extensions, on each side.

The parametrize tables mirror, row for row, the Req./Resp./Result tables in the
module docstring of ``trio_wsext/negotiation.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import pytest

from trio_wsext.exceptions import NegotiationError
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.headers import build_extension_header, parse_extension_header
from trio_wsext.negotiation import negotiate_client, negotiate_server

# -- fakes: extensions, and factories written the seed's way and websockets' way ---


class FakeExtension(Extension):
    """An extension that remembers the parameters it was negotiated with."""

    def __init__(self, name: str, parameters: Sequence[ExtensionParameter]) -> None:
        super().__init__(name)
        self.parameters = list(parameters)


class Rsv1Extension(FakeExtension):
    """A fake extension that claims RSV1, as permessage-deflate does."""

    rsv_bits = frozenset({1})


class Rsv2Extension(FakeExtension):
    """A fake extension that claims RSV2."""

    rsv_bits = frozenset({2})


#: The extension class per name: "r1" and "s1" both claim RSV1, "r2" claims RSV2.
EXTENSION_CLASSES: dict[str, type[FakeExtension]] = {
    "r1": Rsv1Extension,
    "s1": Rsv1Extension,
    "r2": Rsv2Extension,
}


def make_extension(name: str, parameters: Sequence[ExtensionParameter]) -> FakeExtension:
    """Build the fake extension of ``name``."""
    return EXTENSION_CLASSES.get(name, FakeExtension)(name, parameters)


class SeedServerFactory(ServerExtensionFactory):
    """A server factory written the seed's way: one argument.

    It declines offers that carry the parameter ``decline`` names (any offer
    when ``decline`` is ``"*"``) and echoes the offer's parameters.
    """

    def __init__(self, name: str, decline: str | None = None) -> None:
        super().__init__(name)
        self.decline = decline
        self.calls: list[list[ExtensionParameter]] = []

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept the offer unless it carries the declined parameter."""
        self.calls.append(list(parameters))
        if self.decline == "*" or any(name == self.decline for name, _ in parameters):
            raise NegotiationError(f"{self.name} declines {parameters!r}")
        return list(parameters), make_extension(self.name, parameters)


class WebsocketsServerFactory(SeedServerFactory):
    """A server factory written for websockets: it takes ``accepted_extensions`` too."""

    def __init__(self, name: str, decline: str | None = None) -> None:
        super().__init__(name, decline)
        self.seen: list[list[str]] = []

    def process_request_params(  # type: ignore[override]
        self,
        parameters: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Record what was accepted before, then behave as the seed's factory."""
        self.seen.append([extension.name for extension in accepted_extensions])
        return super().process_request_params(parameters)


class SeedClientFactory(ClientExtensionFactory):
    """A client factory written the seed's way: one argument.

    It accepts a response whose parameters are exactly those it offered.
    """

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Build the extension, or refuse parameters it did not offer."""
        if list(parameters) != self.parameters:
            raise NegotiationError(f"{self.name} refuses {list(parameters)!r}")
        return make_extension(self.name, parameters)


class WebsocketsClientFactory(SeedClientFactory):
    """A client factory written for websockets: it takes ``accepted_extensions`` too."""

    def __init__(self, name: str, parameters: Sequence[ExtensionParameter] | None = None) -> None:
        super().__init__(name, parameters)
        self.seen: list[list[str]] = []

    def process_response_params(  # type: ignore[override]
        self,
        parameters: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension],
    ) -> Extension:
        """Record what was accepted before, then behave as the seed's factory."""
        self.seen.append([extension.name for extension in accepted_extensions])
        return super().process_response_params(parameters)


def offers(header: str) -> list[tuple[str, list[ExtensionParameter]]]:
    """Parse a Sec-WebSocket-Extensions value; ``""`` means no header."""
    return parse_extension_header(header) if header else []


# -- the server ------------------------------------------------------------------

ServerFactories = Callable[[], list[ServerExtensionFactory]]

# One row per row of the "Server rules" table in negotiation.py:
# (Req. header, server factories, Resp. header).
SERVER_RULES: list[tuple[str, ServerFactories, str]] = [
    ("a", lambda: [SeedServerFactory("a")], "a"),
    ("a", list, ""),
    ("b, a", lambda: [SeedServerFactory("a"), SeedServerFactory("b")], "b, a"),
    ("a; x=1, a", lambda: [SeedServerFactory("a", decline="x")], "a"),
    ("a, a", lambda: [SeedServerFactory("a"), SeedServerFactory("a")], "a"),
    ("a, a", lambda: [SeedServerFactory("a", decline="*")], ""),
    ("r1, s1", lambda: [SeedServerFactory("r1"), SeedServerFactory("s1")], "r1"),
    ("r1, r2", lambda: [SeedServerFactory("r1"), SeedServerFactory("r2")], "r1, r2"),
    ("a, b", lambda: [SeedServerFactory("b")], "b"),
    ("a", lambda: [WebsocketsServerFactory("a")], "a"),
]


@pytest.mark.parametrize(
    ("request_header", "factories", "response_header"),
    SERVER_RULES,
    ids=[
        "accept",
        "no factory",
        "client order",
        "declined then next offer",
        "never two of a name",
        "declines all",
        "RSV1 twice",
        "RSV1 and RSV2",
        "unknown name",
        "two-argument factory",
    ],
)
def test_server_negotiates_by_table(
    request_header: str, factories: ServerFactories, response_header: str
) -> None:
    """The server's response follows the Req./Resp. table of negotiation.py."""
    response, extensions = negotiate_server(factories(), offers(request_header))
    assert (build_extension_header(response) if response else "") == response_header
    assert [extension.name for extension in extensions] == [name for name, _ in response]


def test_server_gives_offer_to_first_unused_factory_only() -> None:
    """A declined offer is not retried with a second factory of that name."""
    first, second = SeedServerFactory("a", decline="*"), SeedServerFactory("a")
    response, _ = negotiate_server([first, second], offers("a; x=1"))
    assert response == []
    assert (first.calls, second.calls) == ([[("x", "1")]], [])


def test_server_answers_with_factory_parameters_and_extension() -> None:
    """The response carries the factory's parameters; the extension is the factory's."""
    response, extensions = negotiate_server(
        [SeedServerFactory("a", decline="y")], offers("a; y, a; x=1; z")
    )
    assert response == [("a", [("x", "1"), ("z", None)])]
    assert isinstance(extensions[0], FakeExtension)
    assert extensions[0].parameters == [("x", "1"), ("z", None)]


def test_server_passes_accepted_extensions_to_two_argument_factory() -> None:
    """A websockets-style factory sees the extensions accepted before its offer."""
    factory = WebsocketsServerFactory("b")
    negotiate_server([SeedServerFactory("a"), factory], offers("a, b"))
    assert factory.seen == [["a"]]


def test_server_does_not_use_factory_after_rsv_conflict() -> None:
    """A factory whose extension was dropped for an RSV clash stays free for a later offer."""
    factory = SeedServerFactory("s1")
    response, _ = negotiate_server([SeedServerFactory("r1"), factory], offers("r1, s1, s1; x"))
    assert response == [("r1", [])]
    assert factory.calls == [[], [("x", None)]]


def test_server_declines_extension_named_as_an_accepted_one() -> None:
    """An offer whose factory builds an extension of an accepted name is declined."""

    class AliasFactory(SeedServerFactory):
        def process_request_params(
            self, parameters: Sequence[ExtensionParameter]
        ) -> tuple[list[ExtensionParameter], Extension]:
            return [], FakeExtension("a", parameters)

    response, extensions = negotiate_server(
        [SeedServerFactory("a"), AliasFactory("alias")], offers("a, alias")
    )
    assert response == [("a", [])]
    assert len(extensions) == 1


def test_server_propagates_factory_bug() -> None:
    """An exception other than NegotiationError is a bug in the factory and propagates."""

    class BrokenFactory(SeedServerFactory):
        def process_request_params(
            self, parameters: Sequence[ExtensionParameter]
        ) -> tuple[list[ExtensionParameter], Extension]:
            raise KeyError("oops")

    with pytest.raises(KeyError, match=r"^'oops'$"):
        negotiate_server([BrokenFactory("a")], offers("a"))


# -- the client ------------------------------------------------------------------

ClientFactories = Callable[[], list[ClientExtensionFactory]]

# One row per row of the "Client rules" table in negotiation.py:
# (offered factories, Resp. header, Result: names of the extensions or the error).
CLIENT_RULES: list[tuple[ClientFactories, str, list[str] | str]] = [
    (lambda: [SeedClientFactory("a")], "a", ["a"]),
    (lambda: [SeedClientFactory("a"), SeedClientFactory("b")], "b, a", ["b", "a"]),
    (lambda: [SeedClientFactory("a")], "", []),
    (
        lambda: [SeedClientFactory("a")],
        "b",
        "server accepted extension 'b', which was not offered",
    ),
    (lambda: [SeedClientFactory("a")], "a, a", "server accepted extension 'a' twice"),
    (
        lambda: [SeedClientFactory("a", [("x", "1")]), SeedClientFactory("a", [("x", "2")])],
        "a; x=2",
        ["a"],
    ),
    (
        lambda: [SeedClientFactory("r1"), SeedClientFactory("s1")],
        "r1, s1",
        "extensions 'r1' and 's1' both use RSV1",
    ),
    (lambda: [SeedClientFactory("a")], "a; y=1", "a refuses [('y', '1')]"),
]


@pytest.mark.parametrize(
    ("factories", "response_header", "result"),
    CLIENT_RULES,
    ids=[
        "accept",
        "response order",
        "none accepted",
        "not offered",
        "twice",
        "second factory takes it",
        "RSV1 twice",
        "factory refuses",
    ],
)
def test_client_negotiates_by_table(
    factories: ClientFactories, response_header: str, result: list[str] | str
) -> None:
    """The client's result follows the Req./Resp./Result table of negotiation.py."""
    if isinstance(result, str):
        with pytest.raises(NegotiationError, match=f"^{re.escape(result)}$"):
            negotiate_client(factories(), offers(response_header))
    else:
        extensions = negotiate_client(factories(), offers(response_header))
        assert [extension.name for extension in extensions] == result


def test_client_uses_the_factory_that_accepts() -> None:
    """With alternative offers, the extension comes from the factory that accepts."""
    extensions = negotiate_client(
        [SeedClientFactory("a", [("x", "1")]), SeedClientFactory("a", [("x", "2")])],
        offers("a; x=2"),
    )
    assert isinstance(extensions[0], FakeExtension)
    assert extensions[0].parameters == [("x", "2")]


def test_client_reports_every_alternative_refused() -> None:
    """When every alternative refuses, the error says so and chains the last refusal."""
    with pytest.raises(
        NegotiationError,
        match=r"^no offer of extension 'a' accepts the server's parameters: "
        r"a refuses \[\('x', '3'\)\]$",
    ) as info:
        negotiate_client(
            [SeedClientFactory("a", [("x", "1")]), SeedClientFactory("a", [("x", "2")])],
            offers("a; x=3"),
        )
    assert isinstance(info.value.__cause__, NegotiationError)


def test_client_passes_accepted_extensions_to_two_argument_factory() -> None:
    """A websockets-style factory sees the extensions accepted before it."""
    factory = WebsocketsClientFactory("b")
    negotiate_client([SeedClientFactory("a"), factory], offers("a, b"))
    assert factory.seen == [["a"]]


def test_client_allows_distinct_rsv_bits() -> None:
    """Extensions that claim different RSV bits are both active."""
    extensions = negotiate_client(
        [SeedClientFactory("r1"), SeedClientFactory("r2")], offers("r1, r2")
    )
    assert [type(extension) for extension in extensions] == [Rsv1Extension, Rsv2Extension]
