"""From a symptom on a connection to the extension's fault: failed handshakes, closed connections.

Strategy: a connection only says *that* something failed (a close code, an
exception from the handshake); the observers (:mod:`.probes`) say *where*.
So every explanation looks first at what the observers recorded -- a factory
or an extension method that raised, or returned something that is not a
:class:`~trio_wsext.frames.Frame` -- and falls back on the close code only
when no method of the extension under test misbehaved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

import trio

from ..exceptions import (
    ConnectionRejected,
    NegotiationError,
    PayloadTooBig,
    ProtocolError,
    WebSocketError,
)
from ..extensions.base import Extension
from ..frames import CloseReason
from .failures import explain_close
from .harness import CheckRun, HandshakeFailed
from .probes import Crash

__all__ = [
    "crash_fix",
    "explain_handshake",
    "fail_closed",
    "first_crash",
    "require_active",
    "show_error",
]


def show_error(error: BaseException) -> str:
    """Render an exception for a message, its module named unless it is a builtin."""
    module = type(error).__module__
    text = repr(error)
    return text if module == "builtins" or module.startswith("trio_wsext") else f"{module}.{text}"


def first_crash(run: CheckRun, methods: tuple[str, ...] = ("encode", "decode")) -> Crash | None:
    """Return the first recorded crash of one of ``methods``, if any."""
    return next((crash for crash in run.probes.crashes if crash.method in methods), None)


def crash_fix(crash: Crash) -> str:
    """Say what to change for a method that raised (or returned a non-Frame)."""
    error = crash.error
    if isinstance(error, TypeError) and "not a Frame" in str(error):
        return (
            f"{crash.method} must return a Frame: return frame.replace(data=...) "
            "(or the frame itself) for every frame, never bytes or None."
        )
    if crash.method == "encode":
        return (
            "encode must accept every frame the connection hands it -- TEXT, BINARY "
            "and CONT (the later frames of a fragmented message) of any size from 0 "
            "bytes, and PING, PONG and CLOSE -- and return a Frame."
        )
    if isinstance(error, PayloadTooBig):
        return (
            "raise PayloadTooBig only when the decoded output would be larger than "
            "max_size; exactly max_size bytes is allowed, and max_size=None means "
            "no limit."
        )
    if isinstance(error, ProtocolError):
        return (
            "decode refused a frame that the peer's encode made: encode and decode "
            "must agree on every frame, including empty ones, CONT frames and "
            "control frames."
        )
    return (
        "decode must accept every frame the peer's encode produces -- TEXT, BINARY, "
        "CONT, PING, PONG and CLOSE, of any size from 0 bytes -- and raise only "
        "ProtocolError (or PayloadTooBig) for data the peer could not have made."
    )


def fail_closed(
    run: CheckRun, context: str, reason: CloseReason | None, hint: str = ""
) -> NoReturn:
    """Fail the check for a connection that closed while ``context`` was going on.

    Args:
        run: the check.
        context: what the check was doing ("client → server: a 126-byte text message").
        reason: how the connection closed, if known.
        hint: a sentence that the check adds to the fix (what it exercises).
    """
    hint = f" {hint}" if hint else ""
    crash = first_crash(run)
    if crash is not None:
        run.fail(
            f"{context}: the {crash.side}'s {crash.owner}.{crash.method} raised "
            f"{show_error(crash.error)} on {crash.detail}",
            crash_fix(crash) + hint,
            crash.error,
        )
    if reason is None:
        run.fail(
            f"{context}: the connection closed",
            "encode and decode must pass every message through; see the "
            "'trio_wsext.connection' log for the exception." + hint,
        )
    problem, fix = explain_close(reason)
    run.fail(f"{context}: {problem}", fix + hint)


def explain_handshake(run: CheckRun, failure: HandshakeFailed, context: str = "") -> NoReturn:
    """Fail the check for an opening handshake that failed (during ``context``, if given)."""
    prefix = f"{context}: " if context else ""
    negotiation = ("get_request_params", "process_response_params", "process_request_params")
    crash = first_crash(run, negotiation)
    if crash is not None:
        if crash.method == "get_request_params":
            fix = (
                "get_request_params must return a list of (name, value) pairs: "
                "names are tokens, values are tokens or None."
            )
        elif crash.side == "server":
            fix = (
                "process_request_params must build the extension, or raise "
                "NegotiationError (trio_wsext.exceptions) to decline an offer it cannot "
                "accept; the connection then goes on without the extension. Any other "
                "exception is a bug that fails the whole handshake (the client gets "
                "HTTP 500)."
            )
        else:
            fix = (
                "process_response_params must build the extension, or raise "
                "NegotiationError (trio_wsext.exceptions) for an answer it cannot "
                "accept, which fails the handshake with that reason. Any other "
                "exception is a bug in the factory."
            )
        run.fail(
            f"{prefix}the {crash.side}'s {crash.owner}.{crash.method} raised "
            f"{show_error(crash.error)} for {crash.detail}",
            fix,
            crash.error,
        )
    client_error, server_error = failure.client_error, failure.server_error
    if isinstance(client_error, NegotiationError):
        run.fail(
            f"{prefix}the client refused the server's answer: {client_error}",
            f"{type(run.client_factory).__name__}.process_response_params must accept "
            f"what {type(run.server_factory).__name__}.process_request_params answers "
            "to its offer.",
            client_error,
        )
    if isinstance(client_error, ValueError):
        run.fail(
            f"{prefix}the client could not send its offer: {client_error}",
            "get_request_params must return (name, value) pairs: names are tokens, "
            "values are tokens or None.",
        )
    for error in (server_error, client_error):
        if error is not None and not isinstance(error, WebSocketError | trio.TooSlowError):
            # Not a handshake's failure, and no factory under test raised it: a
            # bug of the library or the kit, which is not the extension's to fix.
            raise error
    if isinstance(client_error, ConnectionRejected) and server_error is not None:
        client_error = None
    run.fail(
        f"{prefix}the opening handshake failed: "
        + "; ".join(
            f"the {side} raised {show_error(error)}"
            for side, error in (("client", client_error), ("server", server_error))
            if error is not None
        ),
        "the factories must negotiate with each other: the server factory accepts "
        "the client factory's offer, and the client factory its answer.",
    )


def _made_here(run: CheckRun, extensions: Sequence[Extension]) -> list[Extension]:
    ours = {id(probe.extension) for probe in run.probes.extensions}
    return [extension for extension in extensions if id(extension) in ours]


def require_active(
    run: CheckRun,
    client_extensions: Sequence[Extension],
    server_extensions: Sequence[Extension],
    context: str = "",
) -> tuple[Extension, Extension]:
    """Fail unless the extension under test is active on both sides; return both objects.

    A check whose extension was not negotiated would test nothing, so this
    says why it was not: the server factory declined (and with what), or the
    two factories have different names.
    """
    prefix = f"{context}: " if context else ""
    client = _made_here(run, client_extensions)
    server = _made_here(run, server_extensions)
    if client and server:
        return client[0], server[0]
    client_name, server_name = run.client_factory.name, run.server_factory.name
    if client_name != server_name:
        run.fail(
            f"{prefix}the client factory offers {client_name!r} but the server factory "
            f"is named {server_name!r}, so the server never considers the offer",
            "give both factories the extension's name (the name in Sec-WebSocket-Extensions).",
        )
    refusal = next((r for r in run.probes.refusals if r[0] == "server"), None)
    if refusal is not None:
        _, offer, error = refusal
        run.fail(
            f"{prefix}the server factory declined the client factory's offer {offer!r}: {error}",
            f"{type(run.server_factory).__name__}.process_request_params must accept "
            f"what {type(run.client_factory).__name__}.get_request_params offers.",
        )
    if server and not client:
        run.fail(
            f"{prefix}the server accepted the extension but the client did not activate it",
            "process_response_params must return the extension it builds.",
        )
    active = [extension.name for extension in server_extensions]
    run.fail(
        f"{prefix}the extension was not negotiated (the server runs {active})",
        "the server factory must accept the client factory's offer, and the "
        "extension's name must not be one that another active extension has, nor "
        "claim a reserved bit that another active extension claims.",
    )
