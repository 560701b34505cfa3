"""The message plan every interop combination runs, and the checks on its reports.

Strategy: one driver (the client) sends every message of the plan and checks that the echo
comes back byte for byte and with the same type; one echo side (the server) answers each
message with itself and records the type, length and SHA-256 of what it received.  Both sides
ping the other once and the driver closes with 1000.  Each side writes a report (a
:class:`DriverReport` or an :class:`EchoReport`); the Python peers build them directly, the
Node and browser peers send them as JSON.  The payloads are generated deterministically, and
``node/plan.js`` generates exactly the same bytes, so the Python side can check what a
JavaScript peer sent, not only that it came back (``test_interop_node.py`` checks that the two
generators agree).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import trio
from websockets.headers import parse_extension

__all__ = [
    "CLOSE_REQUEST",
    "DEFAULTS",
    "MESSAGE_SIZES",
    "PING_TIMEOUT",
    "PLAN",
    "RUN",
    "RUN_LENGTH",
    "STEP_TIMEOUT",
    "Case",
    "DriverReport",
    "EchoReport",
    "Effective",
    "Expectation",
    "MessageConnection",
    "Step",
    "StepResult",
    "TrioSide",
    "compare_echo",
    "describe",
    "driver_problems",
    "echo_problems",
    "effective_deflate",
    "expected_received",
    "header_value",
    "negotiation_problems",
    "payload",
    "run_message",
    "run_plan",
    "traffic_problems",
]

# The text a driver sends, instead of closing, to ask the echo side to close with 1000: so
# that the closing handshake is also started by the server (RFC 6455 §7.1.1: the server
# closes TCP first).  No plan message is equal to it.
CLOSE_REQUEST: Final = "close, please"
# Bounds on single steps of a driver or an echo side; a whole plan takes about a second.
PING_TIMEOUT: Final = 10
STEP_TIMEOUT: Final = 20
# The size boundaries of RFC 6455 §5.2: the 7-bit length (<= 125), the 16-bit length
# (126..65535), the 64-bit length (>= 65536), the empty message, and 1 MiB, the default
# max_message_size of trio_wsext (and of websockets and trio-websocket).
MESSAGE_SIZES: Final = (0, 125, 126, 65535, 65536, 2**20)
# Messages sent back to back without waiting for their echoes; each repeats a block of the
# message seven places before it, so compressors reach back across messages (context takeover)
# and beyond a 2**9 or 2**10-byte window, where a peer that ignores a negotiated window or
# no_context_takeover produces data the other side cannot inflate.
RUN_LENGTH: Final = 100
# Code points of the text payloads: 1-, 2-, 3- and 4-byte UTF-8 sequences (and a surrogate pair
# in JavaScript's UTF-16 strings).
TEXT_UNIT: Final = "Grüße, ünïcödé ✓ € 𝄞 日本語 — héllo wörld; "
RUN_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789äöüßéèñçø€✓日本𝄞"
# The block that the compressible binary payload repeats (bytes).
COMPRESSIBLE_BLOCK: Final = 1000

Kind = Literal["text", "binary", "binary-compressible"]


@dataclass(frozen=True)
class Step:
    """One message of the plan."""

    kind: Kind
    size: int
    """Length in bytes (UTF-8 bytes for text)."""

    @property
    def name(self) -> str:
        """The step's name in reports, e.g. ``text-65535``."""
        return f"{self.kind}-{self.size}"


PLAN: Final = (
    *(Step(kind, size) for size in MESSAGE_SIZES for kind in ("text", "binary")),
    Step("binary-compressible", 2**20),
)
RUN: Final = "run-100"


def _xorshift32(seed: int, count: int) -> list[int]:
    """Return ``count`` words of Marsaglia's xorshift32 from ``seed`` (plan.js has the twin)."""
    x = seed
    words = [0] * count
    for i in range(count):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        words[i] = x
    return words


@functools.cache
def random_bytes(seed: int, size: int) -> bytes:
    """Return ``size`` incompressible bytes: xorshift32 words, little-endian."""
    count = (size + 3) // 4
    return struct.pack(f"<{count}I", *_xorshift32(seed, count))[:size]


def random_text(seed: int, length: int) -> str:
    """Return ``length`` code points of RUN_ALPHABET picked by xorshift32."""
    return "".join(RUN_ALPHABET[w % len(RUN_ALPHABET)] for w in _xorshift32(seed, length))


@functools.cache
def text_of_size(size: int) -> str:
    """Return text of exactly ``size`` UTF-8 bytes: TEXT_UNIT repeated, then ``.`` padding."""
    unit = TEXT_UNIT.encode()
    repeats, rest = divmod(size, len(unit))
    tail = []
    for char in TEXT_UNIT:
        width = len(char.encode())
        if width > rest:
            break
        tail.append(char)
        rest -= width
    return TEXT_UNIT * repeats + "".join(tail) + "." * rest


def payload(step: Step) -> str | bytes:
    """Return the message that ``step`` sends."""
    match step.kind:
        case "text":
            return text_of_size(step.size)
        case "binary":
            return random_bytes(step.size + 1, step.size)
        case "binary-compressible":
            block = random_bytes(7, COMPRESSIBLE_BLOCK)
            return (block * (step.size // COMPRESSIBLE_BLOCK + 1))[: step.size]


@functools.cache
def run_message(index: int) -> str | bytes:
    """Return message ``index`` (0-based) of the 100-message run: every tenth one is binary."""
    if index % 10 == 9:
        return bytes([index]) + random_bytes(300 + index % 7, 400)
    return f"{index:03d} " + random_text(100 + index % 7, 300)


def describe(message: str | bytes) -> tuple[str, int, str]:
    """Return ``(kind, length, sha256)`` of a received message, as every echo side records."""
    if isinstance(message, str):
        data = message.encode()
        return ("text", len(data), hashlib.sha256(data).hexdigest())
    return ("binary", len(message), hashlib.sha256(message).hexdigest())


def expected_received() -> list[tuple[str, int, str]]:
    """Return what the echo side must record: the plan, then the run, in order."""
    return [describe(payload(step)) for step in PLAN] + [
        describe(run_message(i)) for i in range(RUN_LENGTH)
    ]


def compare_echo(sent: str | bytes, got: object) -> str | None:
    """Return ``None`` if ``got`` is ``sent`` (type and bytes), else what differs."""
    if type(got) is not type(sent):
        return f"sent {type(sent).__name__}, got {type(got).__name__}"
    assert isinstance(got, str | bytes)
    a = sent.encode() if isinstance(sent, str) else sent
    b = got.encode() if isinstance(got, str) else got
    if a == b:
        return None
    first = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return f"sent {len(a)} bytes, got {len(b)} bytes, first difference at byte {first}"


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def header_value(headers: Iterable[tuple[str | bytes, str | bytes]], name: str) -> str | None:
    """Return header ``name`` (repeated lines joined with ``, ``), or ``None`` if absent."""
    values = [_text(v) for k, v in headers if _text(k).lower() == name.lower()]
    return ", ".join(values) if values else None


@dataclass(frozen=True)
class Effective:
    """The permessage-deflate settings both sides must apply (RFC 7692 §7.1)."""

    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False


def _deflate_params(header: str | None) -> dict[str, str | None] | None:
    """Return the parameters of the first permessage-deflate in ``header``, or ``None``."""
    if header is None:
        return None
    for name, params in parse_extension(header):
        if name == "permessage-deflate":
            return dict(params)
    return None


def effective_deflate(offer: str | None, response: str | None) -> Effective | None:
    """Return the settings that ``response`` (to the single ``offer``) agrees, or ``None``.

    The client's offer counts where RFC 7692 makes it binding without an echo in the response:
    a ``client_no_context_takeover`` it offered (§7.1.1.2, "the client is going to use no
    context takeover") and a ``client_max_window_bits=N`` it offered (§7.1.2.2, the client
    "will not use an LZ77 sliding window size greater than" N).
    """
    answered = _deflate_params(response)
    if answered is None:
        return None
    offered = _deflate_params(offer) or {}
    client_bits = answered.get("client_max_window_bits") or offered.get("client_max_window_bits")
    return Effective(
        server_max_window_bits=int(answered.get("server_max_window_bits") or 15),
        client_max_window_bits=int(client_bits or 15),
        server_no_context_takeover="server_no_context_takeover" in answered,
        client_no_context_takeover=(
            "client_no_context_takeover" in answered or "client_no_context_takeover" in offered
        ),
    )


@dataclass(frozen=True)
class StepResult:
    """The driver's verdict on one step (a plan message, or the whole run)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class DriverReport:
    """What the driving side (the client) saw."""

    offered: str | None = None
    """Sec-WebSocket-Extensions as the driver sent it, when it can read it back."""
    negotiated: str | None = None
    """Sec-WebSocket-Extensions of the server's 101 response, as the driver received it."""
    ping_ok: bool | None = None
    """Whether the driver's ping got its pong; ``None`` where the peer cannot ping (browsers)."""
    steps: list[StepResult] = field(default_factory=list)
    close_code: int | None = None
    """The code of the close frame that the server sent back."""
    close_reason: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriverReport:
        """Build a report from a JavaScript peer's JSON."""
        return cls(
            offered=data.get("offered"),
            negotiated=data.get("negotiated"),
            ping_ok=data.get("ping_ok"),
            steps=[StepResult(s["name"], s["ok"], s.get("detail", "")) for s in data["steps"]],
            close_code=data.get("close_code"),
            close_reason=data.get("close_reason"),
            error=data.get("error"),
        )


@dataclass
class EchoReport:
    """What the echoing side (the server) saw."""

    offered: str | None = None
    """Sec-WebSocket-Extensions of the client's request, as the server received it."""
    negotiated: str | None = None
    """Sec-WebSocket-Extensions of the 101 response, as the server sent it."""
    ping_ok: bool | None = None
    received: list[tuple[str, int, str]] = field(default_factory=list)
    close_code: int | None = None
    """The code of the client's close frame."""
    close_reason: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EchoReport:
        """Build a report from a JavaScript peer's JSON."""
        return cls(
            offered=data.get("offered"),
            negotiated=data.get("negotiated"),
            ping_ok=data.get("ping_ok"),
            received=[(k, n, h) for k, n, h in data["received"]],
            close_code=data.get("close_code"),
            close_reason=data.get("close_reason"),
            error=data.get("error"),
        )


def driver_problems(report: DriverReport, *, can_ping: bool = True) -> list[str]:
    """Return what is wrong in a driver's report (empty when the whole plan passed)."""
    problems = [f"driver error: {report.error}"] if report.error else []
    names = [step.name for step in PLAN] + [RUN]
    seen = [result.name for result in report.steps]
    if seen != names:
        problems.append(f"driver ran steps {seen}, expected {names}")
    problems += [f"{r.name}: {r.detail}" for r in report.steps if not r.ok]
    if can_ping and report.ping_ok is not True:
        problems.append(f"driver's ping got no pong (ping_ok={report.ping_ok})")
    if report.close_code != 1000:
        problems.append(f"driver saw close code {report.close_code}, expected 1000")
    return problems


def echo_problems(report: EchoReport, *, can_ping: bool = True) -> list[str]:
    """Return what is wrong in an echo side's report (empty when everything arrived intact)."""
    problems = [f"echo side error: {report.error}"] if report.error else []
    expected = expected_received()
    if report.received != expected:
        names = [step.name for step in PLAN] + [f"run-{i}" for i in range(RUN_LENGTH)]
        wrong = [
            f"{name}: expected {want[:2]}, received {got[:2]}"
            + (" with different bytes" if want[:2] == got[:2] else "")
            for name, want, got in zip(names, expected, report.received, strict=False)
            if want != got
        ]
        problems.append(
            f"echo side received {len(report.received)} messages, expected {len(expected)};"
            f" mismatches: {wrong[:5]}"
        )
    if can_ping and report.ping_ok is not True:
        problems.append(f"echo side's ping got no pong (ping_ok={report.ping_ok})")
    if report.close_code != 1000:
        problems.append(f"echo side saw close code {report.close_code}, expected 1000")
    return problems


# Expectation of a combination: the Effective settings, None (no extension), or DEFAULTS (a
# permessage-deflate whose settings follow from trio_wsext's measured defaults, which this
# suite does not pin: it checks that both sides agree on them instead).
DEFAULTS: Final = "defaults"
Expectation = Effective | None | Literal["defaults"]
EFFECTIVE_ATTRIBUTES: Final = (
    "server_max_window_bits",
    "client_max_window_bits",
    "server_no_context_takeover",
    "client_no_context_takeover",
)


@dataclass
class TrioSide:
    """What trio_wsext's end reports about the handshake."""

    offered: str | None
    """Sec-WebSocket-Extensions of the request (sent by a client, received by a server)."""
    negotiated: str | None
    """Sec-WebSocket-Extensions of the 101 response."""
    extensions: list[Any]
    """``ws.extensions``: the negotiated Extension objects."""
    is_server: bool
    statistics: Any = None
    """``ws.statistics()`` once the connection closed (None if it never got there)."""
    close_requested: bool = False
    """CLOSE_REQUEST went from the client to the server (one message more that way)."""


def _parsed(header: str | None) -> list[Any]:
    return [(name, list(params)) for name, params in parse_extension(header)] if header else []


# With permessage-deflate, the whole plan crosses the wire in under 0.75 of its size in each
# direction (measured: 0.36 with 2**15 windows, 0.65 with 2**9, where the 1000-byte blocks of
# the compressible binary are out of reach); without it, framing makes it a little larger.
COMPRESSED_RATIO: Final = 0.75


def traffic_problems(expect: Expectation, trio: TrioSide) -> list[str]:
    """Return what is wrong with trio_wsext's statistics after the whole plan.

    Every message of the plan went each way once; with permessage-deflate, both directions
    were compressed (a peer that negotiates deflate but never sets RSV1 passes the echo
    checks, so only the byte counts catch it); without it, nothing was.
    """
    stats = trio.statistics
    if stats is None:
        return ["trio_wsext's connection never reported its statistics"]
    total = sum(size for _, size, _ in expected_received())
    count = len(PLAN) + RUN_LENGTH
    up = (count + 1, total + len(CLOSE_REQUEST)) if trio.close_requested else (count, total)
    sent, received = ((count, total), up) if trio.is_server else (up, (count, total))
    problems = []
    counted = (
        stats.messages_sent,
        stats.messages_received,
        stats.bytes_sent,
        stats.bytes_received,
    )
    wanted = (sent[0], received[0], sent[1], received[1])
    if counted != wanted:
        problems.append(
            f"statistics count {counted} (messages sent, received, bytes sent, received),"
            f" expected {wanted}"
        )
    for direction, wire, app in (
        ("sent", stats.wire_bytes_sent, stats.bytes_sent),
        ("received", stats.wire_bytes_received, stats.bytes_received),
    ):
        if expect is None and wire < app:
            problems.append(f"{wire} wire bytes {direction} for {app} bytes, yet no compression")
        if expect is not None and wire >= COMPRESSED_RATIO * app:
            problems.append(
                f"{wire} wire bytes {direction} for {app} bytes: not compressed"
                f" (expected under {COMPRESSED_RATIO:.0%})"
            )
    return problems


def negotiation_problems(
    expect: Expectation,
    trio: TrioSide,
    *,
    peer_offered: str | None,
    peer_negotiated: str | None,
    offered_known: bool = True,
) -> list[str]:
    """Return what is wrong with a handshake's Sec-WebSocket-Extensions, read on both sides.

    Both sides must have seen the same offer (where the peer can read it back) and the same
    response; the response must agree ``expect``; trio_wsext's ``PerMessageDeflate`` must
    report the same settings as the header (API.md: "What is negotiated can be read back");
    and the traffic must have been compressed or not, accordingly (:func:`traffic_problems`).
    """
    problems = []
    if offered_known and _parsed(peer_offered) != _parsed(trio.offered):
        problems.append(f"offer: trio_wsext saw {trio.offered!r}, the peer {peer_offered!r}")
    problems += traffic_problems(expect, trio)
    if _parsed(peer_negotiated) != _parsed(trio.negotiated):
        problems.append(
            f"response: trio_wsext saw {trio.negotiated!r}, the peer {peer_negotiated!r}"
        )
    effective = effective_deflate(trio.offered, trio.negotiated)
    if expect is None:
        if trio.negotiated is not None or trio.extensions:
            problems.append(
                f"expected no extension, got {trio.negotiated!r} and {trio.extensions!r}"
            )
        return problems
    if effective is None:
        problems.append(f"expected permessage-deflate, the response has {trio.negotiated!r}")
        return problems
    if expect != DEFAULTS and effective != expect:
        problems.append(f"negotiated {effective} ({trio.negotiated!r}), expected {expect}")
    names = [getattr(ext, "name", None) for ext in trio.extensions]
    if names != ["permessage-deflate"]:
        problems.append(f"ws.extensions is {trio.extensions!r}, expected one permessage-deflate")
        return problems
    ext = trio.extensions[0]
    read_back = {name: getattr(ext, name, None) for name in ("is_server", *EFFECTIVE_ATTRIBUTES)}
    wanted = {"is_server": trio.is_server} | {
        name: getattr(effective, name) for name in EFFECTIVE_ATTRIBUTES
    }
    if read_back != wanted:
        problems.append(f"{ext!r} reads back {read_back}, the header says {wanted}")
    return problems


@dataclass(frozen=True)
class Case:
    """One combination: trio_wsext's options, the peer's options, what must be negotiated."""

    id: str
    trio: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of open_websocket_url or serve_websocket."""
    peer: dict[str, Any] = field(default_factory=dict)
    """The peer's options (keyword arguments, or the Node script's JSON)."""
    expect: Expectation = DEFAULTS
    server_closes: bool = False
    """The driver asks the server to start the closing handshake (CLOSE_REQUEST)."""


class MessageConnection(Protocol):
    """The part of a trio WebSocket connection the plan needs (trio_wsext, trio-websocket)."""

    async def send_message(self, message: str | bytes) -> None:
        """Send one message."""

    async def get_message(self) -> str | bytes:
        """Receive one message."""


async def run_plan(ws: MessageConnection, report: DriverReport) -> None:
    """Send the plan and the run over ``ws``, checking every echo into ``report``.

    Raises whatever ``ws`` raises, and ``trio.TooSlowError`` if an echo is late.
    """
    for step in PLAN:
        message = payload(step)
        await ws.send_message(message)
        with trio.fail_after(STEP_TIMEOUT):
            detail = compare_echo(message, await ws.get_message())
        report.steps.append(StepResult(step.name, detail is None, detail or ""))
    run = [run_message(i) for i in range(RUN_LENGTH)]
    for message in run:
        await ws.send_message(message)
    failures = []
    for i, message in enumerate(run):
        with trio.fail_after(STEP_TIMEOUT):
            detail = compare_echo(message, await ws.get_message())
        if detail is not None:
            failures.append(f"message {i}: {detail}")
    report.steps.append(StepResult(RUN, not failures, "; ".join(failures[:5])))
