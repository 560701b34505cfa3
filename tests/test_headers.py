"""Tests of trio_wsext.headers: the list-header grammar, parsing and building."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings, strategies as st

from trio_wsext.exceptions import InvalidHeaderFormat
from trio_wsext.extensions.base import ExtensionParameter
from trio_wsext.headers import (
    build_extension_header,
    build_host,
    build_subprotocol_header,
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
)

Parsed = list[tuple[str, list[ExtensionParameter]]]

# -- Sec-WebSocket-Extensions: parsing --------------------------------------------

EXTENSION_CASES: list[tuple[str | list[str], Parsed]] = [
    ("foo", [("foo", [])]),
    ("foo, bar", [("foo", []), ("bar", [])]),
    (
        "permessage-deflate; client_max_window_bits",
        [("permessage-deflate", [("client_max_window_bits", None)])],
    ),
    (
        "permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
        [
            (
                "permessage-deflate",
                [("server_max_window_bits", "10"), ("client_no_context_takeover", None)],
            )
        ],
    ),
    ('foo; x="10"', [("foo", [("x", "10")])]),
    ('foo; x="a\\"b\\\\c"', [("foo", [("x", 'a"b\\c')])]),
    ('foo; key="k+/9=="', [("foo", [("key", "k+/9==")])]),
    ('foo; x=""', [("foo", [("x", "")])]),
    ("foo ; x = 1 ;y\t,\tbar", [("foo", [("x", "1"), ("y", None)]), ("bar", [])]),
    ("foo,,bar", [("foo", []), ("bar", [])]),
    (" , foo , ,bar, ", [("foo", []), ("bar", [])]),
    (["foo; x=1", "bar"], [("foo", [("x", "1")]), ("bar", [])]),
    (["foo", ","], [("foo", [])]),
    ([], []),
    ("foo; x=1, foo; x=2", [("foo", [("x", "1")]), ("foo", [("x", "2")])]),
]


@pytest.mark.parametrize(
    ("value", "expected"),
    EXTENSION_CASES,
    ids=[repr(value) for value, _ in EXTENSION_CASES],
)
def test_parse_extension_header_accepts_valid_value(
    value: str | list[str], expected: Parsed
) -> None:
    """Each valid Sec-WebSocket-Extensions value parses to its extensions."""
    assert parse_extension_header(value) == expected


EXTENSION_ERRORS: list[tuple[str | list[str], str]] = [
    ("", "expected extension name at 0 in ''"),
    (",", "expected extension name at 1 in ','"),
    (["", " "], "expected extension name at 1 in ' '"),
    ("foo;", "expected parameter name at 4 in 'foo;'"),
    ("foo; =1", "expected parameter name at 5 in 'foo; =1'"),
    ("foo; x=", "expected parameter value at 7 in 'foo; x='"),
    ("foo; x=1=2", "expected ',' or ';' at 8 in 'foo; x=1=2'"),
    ("foo bar", "expected ',' or ';' at 4 in 'foo bar'"),
    ('foo; x="1', "invalid quoted string at 7 in 'foo; x=\"1'"),
    ('foo; x="a\x01"', "invalid quoted string at 7 in 'foo; x=\"a\\x01\"'"),
    ("foo; x=a/b", "expected ',' or ';' at 8 in 'foo; x=a/b'"),
    ("f(o)", "expected ',' or ';' at 1 in 'f(o)'"),
    ('"foo"', "expected extension name at 0 in '\"foo\"'"),
    (["foo", "bar baz"], "expected ',' or ';' at 4 in 'bar baz'"),
]


@pytest.mark.parametrize(
    ("value", "message"),
    EXTENSION_ERRORS,
    ids=[repr(value) for value, _ in EXTENSION_ERRORS],
)
def test_parse_extension_header_rejects_malformed_value(
    value: str | list[str], message: str
) -> None:
    """A malformed Sec-WebSocket-Extensions value raises, naming the position."""
    full = f"invalid Sec-WebSocket-Extensions header: {message}"
    with pytest.raises(InvalidHeaderFormat, match=f"^{re.escape(full)}$") as info:
        parse_extension_header(value)
    assert info.value.name == "Sec-WebSocket-Extensions"


def test_parse_extension_header_error_carries_line_and_position() -> None:
    """The error of a multi-line header points into the line that broke the grammar."""
    with pytest.raises(InvalidHeaderFormat) as info:
        parse_extension_header(["foo", "bar;;"])
    assert (info.value.value, info.value.pos) == ("bar;;", 4)


def test_parse_extension_header_accepts_obs_text_in_quoted_value() -> None:
    """A quoted value may hold obs-text (bytes 0x80-0xFF decoded as Latin-1)."""
    assert parse_extension_header('foo; x="caf\xe9"') == [("foo", [("x", "caf\xe9")])]


# -- Sec-WebSocket-Extensions: building -------------------------------------------

BUILD_CASES: list[tuple[Parsed, str]] = [
    ([("foo", [])], "foo"),
    ([("foo", []), ("bar", [])], "foo, bar"),
    (
        [("permessage-deflate", [("client_max_window_bits", None), ("x", "10")])],
        "permessage-deflate; client_max_window_bits; x=10",
    ),
    ([("foo", [("key", "k+/9==")])], 'foo; key="k+/9=="'),
    ([("foo", [("x", 'a"b\\c')])], 'foo; x="a\\"b\\\\c"'),
    ([("foo", [("x", "")])], 'foo; x=""'),
    ([("foo", [("x", "a b\tc")])], 'foo; x="a b\tc"'),
]


@pytest.mark.parametrize(
    ("extensions", "expected"),
    BUILD_CASES,
    ids=[value for _, value in BUILD_CASES],
)
def test_build_extension_header_quotes_only_non_tokens(extensions: Parsed, expected: str) -> None:
    """Token values are sent bare; other values as an escaped quoted-string."""
    assert build_extension_header(extensions) == expected
    assert parse_extension_header(expected) == extensions


BUILD_ERRORS: list[tuple[Parsed, str]] = [
    ([], "Sec-WebSocket-Extensions needs at least one extension"),
    ([("fo o", [])], "extension name 'fo o' is not a token"),
    ([("foo", [("x y", None)])], "extension parameter name 'x y' is not a token"),
    (
        [("foo", [("x", "a\r\nInjected: 1")])],
        "extension parameter value 'a\\r\\nInjected: 1' has a character that a header "
        "cannot carry",
    ),
    (
        [("foo", [("x", "caf\xe9")])],
        "extension parameter value 'café' has a character that a header cannot carry",
    ),
]


@pytest.mark.parametrize(
    ("extensions", "message"),
    BUILD_ERRORS,
    ids=["empty", "name", "parameter name", "CRLF", "non-ASCII"],
)
def test_build_extension_header_refuses_unsendable_input(extensions: Parsed, message: str) -> None:
    """Input that no valid header can carry raises ValueError saying why."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        build_extension_header(extensions)


# -- Sec-WebSocket-Protocol --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("chat", ["chat"]),
        ("chat, superchat", ["chat", "superchat"]),
        (["chat", "v2.bin"], ["chat", "v2.bin"]),
        (" ,chat,, superchat ,", ["chat", "superchat"]),
        ([], []),
    ],
    ids=["one", "two", "two lines", "empty elements", "no header"],
)
def test_parse_subprotocol_header_accepts_tokens(
    value: str | list[str], expected: list[str]
) -> None:
    """Sec-WebSocket-Protocol is a list of tokens."""
    assert parse_subprotocol_header(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "expected subprotocol at 0 in ''"),
        ("chat superchat", "expected ',' at 5 in 'chat superchat'"),
        ("chat; v=1", "expected ',' at 4 in 'chat; v=1'"),
        ('"chat"', "expected subprotocol at 0 in '\"chat\"'"),
    ],
    ids=["empty", "space", "parameter", "quoted"],
)
def test_parse_subprotocol_header_rejects_non_tokens(value: str, message: str) -> None:
    """A Sec-WebSocket-Protocol value that is not a token list raises, naming the position."""
    full = f"invalid Sec-WebSocket-Protocol header: {message}"
    with pytest.raises(InvalidHeaderFormat, match=f"^{re.escape(full)}$"):
        parse_subprotocol_header(value)


def test_build_subprotocol_header_joins_tokens() -> None:
    """Subprotocols are joined with a comma and a space."""
    assert build_subprotocol_header(["chat", "v2.bin"]) == "chat, v2.bin"


@pytest.mark.parametrize(
    ("subprotocols", "message"),
    [
        ([], "Sec-WebSocket-Protocol needs at least one subprotocol"),
        ("chat", "subprotocols must be a sequence of str, not a str"),
        (["chat", "a b"], "subprotocol 'a b' is not a token"),
        (["chat\r\nX: y"], "subprotocol 'chat\\r\\nX: y' is not a token"),
    ],
    ids=["empty", "str", "space", "CRLF"],
)
def test_build_subprotocol_header_refuses_non_tokens(
    subprotocols: list[str], message: str
) -> None:
    """A subprotocol that is not a token (RFC 6455 §4.1) raises ValueError."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        build_subprotocol_header(subprotocols)


# -- Connection and Upgrade --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Upgrade", ["Upgrade"]),
        ("keep-alive, Upgrade", ["keep-alive", "Upgrade"]),
        (["keep-alive", "UPGRADE"], ["keep-alive", "UPGRADE"]),
    ],
    ids=["one", "two", "two lines"],
)
def test_parse_token_list_keeps_case(value: str | list[str], expected: list[str]) -> None:
    """Connection options come back in order with their case."""
    assert parse_token_list(value) == expected


def test_parse_token_list_names_the_header_in_errors() -> None:
    """The ``name`` argument names the header in the error."""
    with pytest.raises(
        InvalidHeaderFormat,
        match=r"^invalid Proxy-Connection header: expected ',' at 5 in 'keep alive'$",
    ):
        parse_token_list("keep alive", name="Proxy-Connection")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("websocket", ["websocket"]),
        ("WebSocket, HTTP/2.0", ["WebSocket", "HTTP/2.0"]),
    ],
    ids=["websocket", "with version"],
)
def test_parse_upgrade_header_accepts_protocols(value: str, expected: list[str]) -> None:
    """Upgrade protocols may carry a version after a slash."""
    assert parse_upgrade_header(value) == expected


def test_parse_upgrade_header_rejects_empty_version() -> None:
    """A slash must be followed by a version token."""
    with pytest.raises(
        InvalidHeaderFormat,
        match=r"^invalid Upgrade header: expected protocol version at 5 in 'HTTP/'$",
    ):
        parse_upgrade_header("HTTP/")


# -- the grammar, by property ------------------------------------------------------

TCHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
# Anything a quoted-string can carry from the builder: HTAB, SP and VCHAR.
values = st.text(alphabet="\t" + "".join(map(chr, range(0x20, 0x7F))), max_size=12)
parameters = st.lists(st.tuples(tokens, st.none() | tokens | values), max_size=4)
extension_lists = st.lists(st.tuples(tokens, parameters), min_size=1, max_size=4)
ows = st.sampled_from(["", " ", "\t", "  \t"])


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(extension_lists)
def test_extension_header_round_trips(extensions: Parsed) -> None:
    """parse_extension_header(build_extension_header(x)) == x for any valid x."""
    assert parse_extension_header(build_extension_header(extensions)) == extensions


def quote(value: str) -> str:
    """Quote ``value`` escaping every character, as a sender may."""
    return '"' + "".join("\\" + char for char in value) + '"'


@st.composite
def noisy_extension_headers(draw: st.DrawFn) -> tuple[list[str], Parsed]:
    """Draw extensions and a header for them written with every freedom of the grammar.

    OWS around ``;``, ``=`` and ``,``; empty list elements; token values
    quoted and escaped; the list split over several header lines.
    """
    extensions = draw(extension_lists)
    items = []
    for name, params in extensions:
        item = name
        for param, value in params:
            item += draw(ows) + ";" + draw(ows) + param
            if value is not None:
                quoted = draw(st.booleans()) or not value or set(value) - set(TCHARS)
                item += draw(ows) + "=" + draw(ows) + (quote(value) if quoted else value)
        items.append(item)
    lines: list[str] = []
    current = ""
    for item in items:
        current += draw(st.sampled_from(["", ",", " , ,"])) + item + draw(ows) + ","
        if draw(st.booleans()):
            lines.append(current)
            current = draw(ows)
    lines.append(current)
    return lines, extensions


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(noisy_extension_headers())
def test_extension_header_parses_any_spelling(case: tuple[list[str], Parsed]) -> None:
    """Every spelling the grammar allows parses to the same extensions."""
    lines, extensions = case
    assert parse_extension_header(lines) == extensions


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.lists(tokens, min_size=1, max_size=6))
def test_subprotocol_header_round_trips(subprotocols: list[str]) -> None:
    """parse_subprotocol_header(build_subprotocol_header(x)) == x for any token list."""
    assert parse_subprotocol_header(build_subprotocol_header(subprotocols)) == subprotocols


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.text(alphabet="".join(map(chr, range(0x80))), max_size=20))
def test_parse_extension_header_fails_only_with_invalid_header_format(value: str) -> None:
    """Arbitrary input either parses or raises InvalidHeaderFormat with a position inside it."""
    try:
        parse_extension_header(value)
    except InvalidHeaderFormat as exc:
        position = exc.pos
    else:
        return
    assert 0 <= position <= len(value)


# -- Host ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [("fe80::1%eth0", 80, "[fe80::1%eth0]"), ("fe80::1%2", 8080, "[fe80::1%2]:8080")],
    ids=["name", "index"],
)
def test_build_host_keeps_a_valid_ipv6_zone_id(host: str, port: int, expected: str) -> None:
    """A zone ID of RFC 6874's characters (a name or an index) stays in the Host value."""
    assert build_host(host, port, secure=False) == expected


@pytest.mark.parametrize(
    "host",
    ["::1%a b", "::1%\r\nX-Evil: 1", "::1%\x00", "::1%\u00e9", "::1%0\ufffd:"],
    ids=["space", "CRLF", "NUL", "non-ASCII", "replacement character"],
)
def test_build_host_refuses_ipv6_zone_id_a_uri_cannot_carry(host: str) -> None:
    """ipaddress takes any text after "%" as the zone; a Host value may not carry it."""
    with pytest.raises(ValueError, match=r"^host .* has an invalid IPv6 zone ID$"):
        build_host(host, 80, secure=False)


def test_index_headers_groups_values_by_lowercase_name_in_order() -> None:
    from trio_wsext.headers import index_headers

    headers = [(b"Upgrade", b"websocket"), (b"X-A", b"1"), (b"x-a", b"2"), (b"Caf\xe9", b"\xe9")]
    assert index_headers(headers) == {
        "upgrade": ["websocket"],
        "x-a": ["1", "2"],
        "caf\xe9": ["\xe9"],
    }
    assert index_headers([]) == {}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("example.com", True),
        ("example.com:443", True),
        ("localhost:", True),  # RFC 3986: port = *DIGIT
        ("192.0.2.1:8080", True),
        ("[2001:db8::1]:443", True),
        ("[fe80::1%25eth0]", True),
        ("", True),
        ("exa mple.com", False),
        ("example.com/path", False),
        ("user@example.com", False),
        ("example.com:http", False),
        ("[2001:db8::1", False),
        ("[example.com]", False),
        ("[fe80::1%eth0]", False),  # a zone ID in a URI is "%25" then the ID
        ("example.com\r\nX: y", False),
    ],
)
def test_is_valid_host(value: str, valid: bool) -> None:
    """RFC 7230 §5.4: uri-host [":" port]."""
    from trio_wsext.headers import is_valid_host

    assert is_valid_host(value) is valid
