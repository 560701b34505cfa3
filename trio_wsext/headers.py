"""The grammar of the handshake's list headers: parse_X / build_X pairs.

Strategy: each header is parsed by hand from the ABNF of :rfc:`6455#section-9.1`
and :rfc:`7230#appendix-B`, one character position at a time, so that a
malformed header raises :class:`~trio_wsext.exceptions.InvalidHeaderFormat`
naming what was expected and where. Several header lines of one name are one
comma-separated list (:rfc:`7230#section-3.2.2`); each line is parsed on its
own so that the position in an error points into a value that was on the wire.

The grammar, with :rfc:`7230#section-7`'s list rule::

    Sec-WebSocket-Extensions = 1#extension
    extension       = extension-token *( OWS ";" OWS extension-param )
    extension-param = token [ OWS "=" OWS ( token / quoted-string ) ]
    Sec-WebSocket-Protocol   = 1#token
    Connection      = 1#token
    Upgrade         = 1#protocol ; protocol = token [ "/" token ]

One deliberate leniency: :rfc:`6455#section-9.1` says of a parameter value
that "When using the quoted-string syntax variant, the value after
quoted-string unescaping MUST conform to the 'token' ABNF." The parser accepts
any quoted-string and the builder quotes values that are not tokens, because
the ``SimpleEncryption`` factories of websockets' extension examples send base64
(``+``, ``/``, ``=``, none of them token characters), and code written for that
API should run unchanged. A value that *is* a token is always sent bare, as the RFC intends.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Final, TypeAlias, TypeVar

from .exceptions import InvalidHeaderFormat
from .extensions.base import ExtensionParameter

__all__ = [
    "HeadersLike",
    "build_extension_header",
    "build_host",
    "build_subprotocol_header",
    "index_headers",
    "is_valid_host",
    "normalize_headers",
    "parse_extension_header",
    "parse_subprotocol_header",
    "parse_token_list",
    "parse_upgrade_header",
]

T = TypeVar("T")

ExtensionHeader = tuple[str, list[ExtensionParameter]]

HeadersLike: TypeAlias = (
    Sequence[tuple[str | bytes, str | bytes]]
    | Mapping[str, str | bytes]
    | Mapping[bytes, str | bytes]
)
"""Headers as users give them: ``(name, value)`` pairs or a mapping, ``str`` or ``bytes``."""

EXTENSIONS: Final = "Sec-WebSocket-Extensions"
PROTOCOL: Final = "Sec-WebSocket-Protocol"

# RFC 7230 §3.2.6: token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" /
# "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TOKEN_RE: Final = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")

# RFC 7230 §3.2.6: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE;
# qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text;
# quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ); obs-text = %x80-FF.
_QUOTED_STRING_RE: Final = re.compile(
    r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
)
_QUOTED_PAIR_RE: Final = re.compile(r"\\([\t\x20-\x7e\x80-\xff])")

# What the builder may put inside a quoted-string: HTAB, SP and VCHAR. obs-text
# is left out because the handshake sends header values as ASCII.
_QUOTABLE_RE: Final = re.compile(r"[\t\x20-\x7e]*")
_NEEDS_ESCAPE_RE: Final = re.compile(r'(["\\])')

# RFC 7230 §3.2: field-name = token.
_TOKEN_BYTES_RE: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# RFC 7230 §3.2: field-value = *( field-content / obs-fold ): no CTL but HTAB.
_FIELD_VALUE_RE: Final = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")
# RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ).
_REG_NAME_RE: Final = re.compile(r"[-A-Za-z0-9._~%!$&'()*+,;=]+")
# RFC 6874 §2: ZoneID = 1*( unreserved / pct-encoded ).
_ZONE_ID_RE: Final = re.compile(r"(?:[-A-Za-z0-9._~]|%[0-9A-Fa-f]{2})+")


def _is_token(value: str) -> bool:
    return _TOKEN_RE.fullmatch(value) is not None


def _peek(value: str, pos: int) -> str | None:
    """Return the character at ``pos``, or ``None`` at the end of ``value``."""
    return value[pos] if pos < len(value) else None


def _skip_ows(value: str, pos: int) -> int:
    while pos < len(value) and value[pos] in " \t":
        pos += 1
    return pos


def _parse_token(value: str, pos: int, name: str, what: str) -> tuple[str, int]:
    match = _TOKEN_RE.match(value, pos)
    if match is None:
        raise InvalidHeaderFormat(name, f"expected {what}", value, pos)
    return match.group(), match.end()


def _parse_quoted_string(value: str, pos: int, name: str) -> tuple[str, int]:
    match = _QUOTED_STRING_RE.match(value, pos)
    if match is None:
        raise InvalidHeaderFormat(name, "invalid quoted string", value, pos)
    return _QUOTED_PAIR_RE.sub(r"\1", match.group()[1:-1]), match.end()


def _as_lines(values: str | Sequence[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def _parse_list(
    parse_item: Callable[[str, int, str], tuple[T, int]],
    values: str | Sequence[str],
    name: str,
    what: str,
    delimiters: str,
) -> list[T]:
    """Parse ``1#item`` over one or several header lines.

    :rfc:`7230#section-7`: "a recipient MUST accept empty list elements"
    (``foo,,bar``, `` , foo``), so each line is ``#item`` and the lines
    together must hold at least one item. No header line at all is no list:
    an empty result.
    """
    lines = _as_lines(values)
    items: list[T] = []
    for line in lines:
        pos = _skip_ows(line, 0)
        while True:
            while _peek(line, pos) == ",":
                pos = _skip_ows(line, pos + 1)
            if pos == len(line):
                break
            item, pos = parse_item(line, pos, name)
            items.append(item)
            pos = _skip_ows(line, pos)
            if pos == len(line):
                break
            if _peek(line, pos) != ",":
                raise InvalidHeaderFormat(name, f"expected {delimiters}", line, pos)
            pos = _skip_ows(line, pos + 1)
    if lines and not items:
        raise InvalidHeaderFormat(name, f"expected {what}", lines[-1], len(lines[-1]))
    return items


def _parse_extension(value: str, pos: int, name: str) -> tuple[ExtensionHeader, int]:
    extension, pos = _parse_token(value, pos, name, "extension name")
    parameters: list[ExtensionParameter] = []
    while _peek(value, _skip_ows(value, pos)) == ";":
        pos = _skip_ows(value, _skip_ows(value, pos) + 1)
        parameter, pos = _parse_token(value, pos, name, "parameter name")
        parameter_value: str | None = None
        if _peek(value, _skip_ows(value, pos)) == "=":
            pos = _skip_ows(value, _skip_ows(value, pos) + 1)
            if _peek(value, pos) == '"':
                parameter_value, pos = _parse_quoted_string(value, pos, name)
            else:
                parameter_value, pos = _parse_token(value, pos, name, "parameter value")
        parameters.append((parameter, parameter_value))
    return (extension, parameters), pos


def parse_extension_header(values: str | Sequence[str]) -> list[ExtensionHeader]:
    """Parse ``Sec-WebSocket-Extensions`` (:rfc:`6455#section-9.1`).

    Args:
        values: the header's value, or the values of each of its lines in order.

    Returns:
        ``(name, [(parameter, value or None), ...])`` for each extension, in
        order; quoted values are unescaped. ``[]`` for an empty sequence (no
        header line).

    Raises:
        InvalidHeaderFormat: a line breaks the grammar; ``pos`` says where.
    """
    return _parse_list(_parse_extension, values, EXTENSIONS, "extension name", "',' or ';'")


def _parse_subprotocol(value: str, pos: int, name: str) -> tuple[str, int]:
    return _parse_token(value, pos, name, "subprotocol")


def parse_subprotocol_header(values: str | Sequence[str]) -> list[str]:
    """Parse ``Sec-WebSocket-Protocol`` (:rfc:`6455#section-11.3.4`): ``1#token``.

    Args:
        values: the header's value, or the values of each of its lines in order.

    Returns:
        The subprotocols in order; ``[]`` for an empty sequence.

    Raises:
        InvalidHeaderFormat: a line breaks the grammar; ``pos`` says where.
    """
    return _parse_list(_parse_subprotocol, values, PROTOCOL, "subprotocol", "','")


def parse_token_list(values: str | Sequence[str], *, name: str = "Connection") -> list[str]:
    """Parse a ``1#token`` header such as ``Connection`` (:rfc:`7230#section-6.1`).

    Args:
        values: the header's value, or the values of each of its lines in order.
        name: the header's name, for error messages.

    Returns:
        The tokens in order, case preserved (compare them case-insensitively).

    Raises:
        InvalidHeaderFormat: a line breaks the grammar; ``pos`` says where.
    """

    def parse_item(value: str, pos: int, name: str) -> tuple[str, int]:
        return _parse_token(value, pos, name, "token")

    return _parse_list(parse_item, values, name, "token", "','")


def _parse_protocol(value: str, pos: int, name: str) -> tuple[str, int]:
    protocol, pos = _parse_token(value, pos, name, "protocol")
    if _peek(value, pos) == "/":
        version, pos = _parse_token(value, pos + 1, name, "protocol version")
        protocol = f"{protocol}/{version}"
    return protocol, pos


def parse_upgrade_header(values: str | Sequence[str]) -> list[str]:
    """Parse ``Upgrade`` (:rfc:`7230#section-6.7`): ``1#protocol``.

    Args:
        values: the header's value, or the values of each of its lines in order.

    Returns:
        The protocols in order (``name`` or ``name/version``), case preserved.

    Raises:
        InvalidHeaderFormat: a line breaks the grammar; ``pos`` says where.
    """
    return _parse_list(_parse_protocol, values, "Upgrade", "protocol", "','")


def _build_value(value: str) -> str:
    if _is_token(value):
        return value
    if _QUOTABLE_RE.fullmatch(value) is None:
        raise ValueError(
            f"extension parameter value {value!r} has a character that a header cannot carry"
        )
    return '"' + _NEEDS_ESCAPE_RE.sub(r"\\\1", value) + '"'


def build_extension_header(
    extensions: Sequence[tuple[str, Sequence[ExtensionParameter]]],
) -> str:
    """Build a ``Sec-WebSocket-Extensions`` value (:rfc:`6455#section-9.1`).

    Values that are tokens are sent bare; other values (printable ASCII,
    space and tab) are sent as a quoted-string with ``"`` and ``\\`` escaped.

    Args:
        extensions: ``(name, [(parameter, value or None), ...])`` pairs, in order.

    Raises:
        ValueError: the list is empty, a name is not a token, or a value holds
            a character that no header may carry (control characters,
            non-ASCII).
    """
    if not extensions:
        raise ValueError("Sec-WebSocket-Extensions needs at least one extension")
    items = []
    for name, parameters in extensions:
        if not _is_token(name):
            raise ValueError(f"extension name {name!r} is not a token")
        parts = [name]
        for parameter, value in parameters:
            if not _is_token(parameter):
                raise ValueError(f"extension parameter name {parameter!r} is not a token")
            parts.append(parameter if value is None else f"{parameter}={_build_value(value)}")
        items.append("; ".join(parts))
    return ", ".join(items)


def build_subprotocol_header(subprotocols: Sequence[str]) -> str:
    """Build a ``Sec-WebSocket-Protocol`` value: tokens joined by ``", "``.

    Raises:
        ValueError: the list is empty, is a ``str``, or a subprotocol is not a
            token (:rfc:`6455#section-4.1`: "The elements that comprise this
            value MUST be non-empty strings with characters in the range U+0021
            to U+007E not including separator characters").
    """
    if isinstance(subprotocols, str):
        raise ValueError("subprotocols must be a sequence of str, not a str")
    if not subprotocols:
        raise ValueError("Sec-WebSocket-Protocol needs at least one subprotocol")
    for subprotocol in subprotocols:
        if not _is_token(subprotocol):
            raise ValueError(f"subprotocol {subprotocol!r} is not a token")
    return ", ".join(subprotocols)


def normalize_headers(
    headers: HeadersLike | None, *, reserved: Collection[bytes] = frozenset()
) -> list[tuple[bytes, bytes]]:
    """Turn headers given by a user into checked ``(name, value)`` byte pairs.

    ``str`` names are encoded as ASCII, ``str`` values as UTF-8; values lose
    surrounding whitespace (:rfc:`7230#section-3.2.4`).

    Args:
        headers: pairs or a mapping, or ``None`` for none.
        reserved: lowercase names that the caller sets itself.

    Raises:
        TypeError: a name or a value is neither ``str`` nor bytes.
        ValueError: a name is not a token, a value holds a control character
            (CR and LF included, so that no header can be injected), or a
            name is reserved.
    """
    if headers is None:
        return []
    items: list[tuple[str | bytes, str | bytes]] = (
        list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    )
    result = []
    for name, value in items:
        if not isinstance(name, str | bytes | bytearray):
            raise TypeError(
                f"header name {name!r} must be str or bytes, not {type(name).__name__}"
            )
        if not isinstance(value, str | bytes | bytearray):
            raise TypeError(
                f"value of header {name!r} must be str or bytes, not {type(value).__name__}"
            )
        raw_name = name.encode("utf-8") if isinstance(name, str) else bytes(name)
        raw_value = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if _TOKEN_BYTES_RE.fullmatch(raw_name) is None:
            raise ValueError(f"header name {name!r} is not a token")
        if _FIELD_VALUE_RE.fullmatch(raw_value) is None:
            raise ValueError(f"value of header {name!r} holds a control character")
        if raw_name.lower() in reserved:
            raise ValueError(f"extra_headers may not set {raw_name.decode()}: the handshake does")
        result.append((raw_name, raw_value.strip(b" \t")))
    return result


def index_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Return every header's values by lowercase name, as Latin-1 text, in arrival order.

    One pass over the headers serves the dozen lookups of a handshake check,
    instead of a scan (and a lowercasing of every name) per lookup.
    """
    index: dict[str, list[str]] = {}
    for raw, value in headers:
        index.setdefault(raw.lower().decode("latin-1"), []).append(value.decode("latin-1"))
    return index


# RFC 7230 §5.4: Host = uri-host [ ":" port ]; RFC 3986 §3.2.2: uri-host =
# IP-literal / IPv4address / reg-name (an IPv4 address is a reg-name too),
# reg-name may be empty; RFC 6874 §2 adds a zone ID ("%25" then the ID) to an
# IPv6 literal; RFC 3986 §3.2.3: port = *DIGIT.
_HOST_RE: Final = re.compile(
    r"(?:\[(?P<literal>[0-9A-Fa-f:.]+)(?:%25(?:[-A-Za-z0-9._~]|%[0-9A-Fa-f]{2})+)?\]"
    r"|[-A-Za-z0-9._~%!$&'()*+,;=]*)(?::[0-9]*)?"
)


def is_valid_host(value: str) -> bool:
    """Tell whether ``value`` is a valid ``Host`` field value (:rfc:`7230#section-5.4`).

    ``uri-host [":" port]``: a name, an IPv4 address or a bracketed IPv6
    literal, then an optional port. Anything else -- a space, a path, a
    userinfo ``@``, an unclosed bracket -- is what a server "MUST respond
    with a 400 (Bad Request)" to.
    """
    match = _HOST_RE.fullmatch(value)
    if match is None:
        return False
    literal = match.group("literal")
    if literal is None:
        return True
    try:
        ipaddress.IPv6Address(literal)
    except ValueError:
        return False
    return True


def build_host(host: str, port: int, *, secure: bool) -> str:
    """Build a ``Host`` value (:rfc:`7230#section-5.4`).

    IPv6 literals get brackets (:rfc:`3986#section-3.2.2`); international
    names are IDNA-encoded; the port is left out when it is the default for
    the scheme (:rfc:`6455#section-4.1`: "if the port is not the default").

    Raises:
        ValueError: ``host`` is not an IP address nor a host name, or its
            IPv6 zone ID (``%eth0``) holds characters a URI cannot carry.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            name = host.encode("idna").decode("ascii")
        except UnicodeError:
            name = ""
        if _REG_NAME_RE.fullmatch(name) is None:
            raise ValueError(f"host {host!r} is not a valid host name") from None
        host = name
    else:
        if isinstance(address, ipaddress.IPv6Address):
            # ipaddress takes any text after "%" as the zone: spaces, CR LF, non-ASCII.
            if address.scope_id is not None and _ZONE_ID_RE.fullmatch(address.scope_id) is None:
                raise ValueError(f"host {host!r} has an invalid IPv6 zone ID")
            host = f"[{host}]"
    if port != (443 if secure else 80):
        host = f"{host}:{port}"
    return host
