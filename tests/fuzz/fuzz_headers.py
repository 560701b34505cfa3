"""Fuzz the handshake's header grammar (:mod:`trio_wsext.headers`): parse_X / build_X pairs.

The input's first byte chooses a parser; the rest, read as Latin-1 (how
:func:`~trio_wsext.headers.index_headers` hands header values over) and cut
at ``\\n`` into header lines, is its input. The contract checked:

- ``parse_extension_header``, ``parse_subprotocol_header``,
  ``parse_token_list`` and ``parse_upgrade_header`` return a list or raise
  ``InvalidHeaderFormat`` (a ``HandshakeError``) whose ``pos`` points into
  one of the lines, and nothing else;
- round trip: what a parser returned, built again (``build_extension_header``,
  ``build_subprotocol_header``, or joined with ``", "``), parses to the same
  list; ``build_extension_header`` may refuse only with ``ValueError``, and
  only for a quoted value with characters a header cannot carry;
- ``normalize_headers`` on arbitrary pairs returns checked pairs (no CR, LF
  or NUL can be injected) or raises ``ValueError``; ``build_host`` returns
  ASCII without whitespace or raises ``ValueError``.

Run: ``python tests/fuzz/fuzz_headers.py [-max_total_time=60] [corpus_dir]``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

from fuzzing import Reader, run

from trio_wsext.exceptions import HandshakeError, InvalidHeaderFormat
from trio_wsext.headers import (
    build_extension_header,
    build_host,
    build_subprotocol_header,
    normalize_headers,
    parse_extension_header,
    parse_subprotocol_header,
    parse_token_list,
    parse_upgrade_header,
)

T = TypeVar("T")

#: What a header may carry in a quoted value: HTAB, SP and VCHAR (headers.py's builder).
_QUOTABLE: Final = re.compile(r"[\t\x20-\x7e]*")

#: A field value after normalize_headers: no control character but HTAB.
_FIELD_VALUE: Final = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f]*")


def _parse_checked(parse: Callable[[Sequence[str]], list[T]], lines: list[str]) -> list[T] | None:
    """Run ``parse``; on ``InvalidHeaderFormat`` check where it points and return ``None``."""
    try:
        return parse(lines)
    except InvalidHeaderFormat as exc:
        check_position(exc, lines)
        return None


def check_position(error: InvalidHeaderFormat, lines: list[str]) -> None:
    """Check that ``error`` is a ``HandshakeError`` pointing into one of ``lines``."""
    assert isinstance(error, HandshakeError)
    assert error.value in lines, (error.value, lines)
    assert 0 <= error.pos <= len(error.value or "")


def check_extensions(lines: list[str]) -> None:
    """Parse ``Sec-WebSocket-Extensions``; build what parsed and parse it back."""
    parsed = _parse_checked(parse_extension_header, lines)
    if not parsed:
        return
    try:
        built = build_extension_header(parsed)
    except ValueError:
        # Only a quoted value the builder cannot send (obs-text) is refused.
        values = [value for _, params in parsed for _, value in params if value is not None]
        assert any(_QUOTABLE.fullmatch(value) is None for value in values), parsed
        return
    assert parse_extension_header(built) == parsed, (built, parsed)


def check_subprotocols(lines: list[str]) -> None:
    """Parse ``Sec-WebSocket-Protocol``; build what parsed and parse it back."""
    parsed = _parse_checked(parse_subprotocol_header, lines)
    if parsed:
        assert parse_subprotocol_header(build_subprotocol_header(parsed)) == parsed


def check_tokens(lines: list[str]) -> None:
    """Parse ``Connection``; join what parsed and parse it back."""
    parsed = _parse_checked(parse_token_list, lines)
    if parsed:
        assert parse_token_list(", ".join(parsed)) == parsed


def check_upgrade(lines: list[str]) -> None:
    """Parse ``Upgrade``; join what parsed and parse it back."""
    parsed = _parse_checked(parse_upgrade_header, lines)
    if parsed:
        assert parse_upgrade_header(", ".join(parsed)) == parsed


def check_normalize(data: bytes) -> None:
    """Normalize ``name: value`` pairs from ``data``; no control character gets through."""
    pairs: list[tuple[str | bytes, str | bytes]] = []
    for line in data.split(b"\n"):
        name, _, value = line.partition(b":")
        pairs.append((name, value))
    try:
        result = normalize_headers(pairs, reserved={b"upgrade"})
    except ValueError:
        return
    assert len(result) == len(pairs)
    for name, value in result:
        assert name
        assert name.lower() != b"upgrade"
        assert _FIELD_VALUE.fullmatch(value) is not None
        assert value == value.strip(b" \t")


def check_host(data: bytes) -> None:
    """Build a ``Host`` value from arbitrary text; it is ASCII with no space, or refused."""
    text = data.decode("utf-8", "replace")
    port = 1 + int.from_bytes(data[:2] or b"\0", "big") % 65535
    try:
        host = build_host(text, port, secure=bool(data[:1]) and data[0] & 1 == 1)
    except ValueError:
        return
    assert host.isascii()
    assert not any(c in host for c in " \t\r\n\0")


LINE_PARSERS: Final[list[Callable[[list[str]], None]]] = [
    check_extensions,
    check_subprotocols,
    check_tokens,
    check_upgrade,
]


def one_input(data: bytes) -> None:
    """Run the parser (or builder) that the first byte chooses on the rest."""
    reader = Reader(data)
    mode = reader.choice(len(LINE_PARSERS) + 2)
    rest = reader.rest()
    if mode == len(LINE_PARSERS):
        check_normalize(rest)
    elif mode == len(LINE_PARSERS) + 1:
        check_host(rest)
    else:
        LINE_PARSERS[mode](rest.decode("latin-1").split("\n"))


def seeds() -> list[bytes]:
    """Return valid values of each header, one or several lines, quoted and not."""
    extensions = [
        b"permessage-deflate; client_max_window_bits",
        b"permessage-deflate; server_max_window_bits=10; client_no_context_takeover, x-webkit",
        b'x-enc; key="a+b/c=="; iv="\\"q\\"" , permessage-deflate',
        b"foo,,bar\n ,baz; a = 1",
    ]
    tokens = [b"chat, superchat", b"Upgrade\nkeep-alive, upgrade", b"websocket, h2c/1.0"]
    out = [bytes([0]) + value for value in extensions]
    out += [bytes([mode]) + value for mode in (1, 2, 3) for value in tokens]
    out.append(bytes([4]) + b"Host: example.com\nX-Token: abc \nbad name: x")
    out += [bytes([5]) + host for host in (b"example.com", b"::1", b"b\xc3\xbccher.example")]
    return out


def main() -> None:
    """Fuzz with libFuzzer; arguments as for libFuzzer (``-help=1``)."""
    run(Path(__file__).stem, seeds, sys.argv)


if __name__ == "__main__":
    main()
