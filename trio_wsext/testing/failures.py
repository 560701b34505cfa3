"""How a check reports: what went wrong, and what to change in the extension.

Strategy: every failure is an :class:`ExtensionCheckFailed`, an
``AssertionError`` (pytest shows it as a failed assertion, with no traceback
into the kit needed to understand it) that carries three things: the check's
name, the problem as observed (which side, which message, which frame), and
the fix, phrased as what the extension must do. The explanations shared by
several checks live here: what a close code means for an extension, and how
to read an exception an extension raised.
"""

from __future__ import annotations

import unittest

from ..frames import CloseCode, CloseReason

__all__ = [
    "CheckNotApplicable",
    "ExtensionCheckFailed",
    "explain_close",
]


class ExtensionCheckFailed(AssertionError):
    """An extension broke a rule that a check tests.

    Args:
        check: the check's name (one of ``CHECK_NAMES``).
        problem: what went wrong, as observed on the connection.
        fix: what to change in the extension or its factories.
    """

    def __init__(self, check: str, problem: str, fix: str) -> None:
        super().__init__(check, problem, fix)
        #: The name of the check that failed.
        self.check = check
        #: What went wrong.
        self.problem = problem
        #: What to change.
        self.fix = fix

    def __str__(self) -> str:
        return f"[{self.check}] {self.problem}\nTo fix: {self.fix}"


class CheckNotApplicable(unittest.SkipTest):
    """A check does not apply to this extension (pytest and unittest report a skip).

    For example, chaining permessage-deflate with permessage-deflate: a
    connection never runs two extensions of one name.
    """


def explain_close(reason: CloseReason) -> tuple[str, str]:
    """Say what a connection's close code means for an extension, and what to fix.

    Args:
        reason: how the receiving side closed (its own failure, or the peer's
            close frame).

    Returns:
        The problem ("the connection failed with 1007 ...") and the fix.
    """
    code = reason.code
    text = reason.reason or ""
    problem = f"the connection failed with {reason}"
    if code == CloseCode.PROTOCOL_ERROR and "reserved bit" in text:
        return problem, (
            "decode must clear every reserved bit (RSV1-3) that encode set: the "
            "protocol fails a frame whose bits are still set after the extensions "
            "decoded it. Declare those bits in rsv_bits, and clear only those."
        )
    if code == CloseCode.PROTOCOL_ERROR:
        return problem, (
            "encode must return a valid frame: the same opcode and fin as it was "
            "given, and a control frame (PING, PONG, CLOSE) of at most 125 bytes; "
            "decode must undo exactly what encode did."
        )
    if code == CloseCode.INVALID_DATA:
        return problem, (
            "decode must return exactly the bytes encode was given: a text message "
            "that decodes to invalid UTF-8 fails the connection with 1007."
        )
    if code == CloseCode.MESSAGE_TOO_BIG:
        return problem, (
            "decode must return exactly the bytes encode was given, and must allow "
            "max_size bytes (raise PayloadTooBig only when the output would pass it)."
        )
    if code == CloseCode.INTERNAL_ERROR:
        return problem, (
            "an extension raised while encoding or decoding (the connection logs the "
            "exception on the 'trio_wsext.connection' logger): encode and decode must "
            "accept every frame of every kind and size."
        )
    if code == CloseCode.ABNORMAL_CLOSURE:
        return problem, (
            "the other side stopped without a closing handshake: its encode or decode "
            "raised (see the 'trio_wsext.connection' log), or returned something "
            "that is not a Frame."
        )
    return problem, "encode and decode must pass every message through unchanged in content."
