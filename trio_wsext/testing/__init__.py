"""A test kit for extension authors: what every WebSocket extension must hold, checked.

Strategy: each check is an ``async`` function of a :class:`~.harness.CheckRun`
that opens fresh connections through the library's real opening handshake
over in-memory streams, with the factories under test observed frame by
frame (:mod:`.probes`), and fails with an :class:`ExtensionCheckFailed`
that says what went wrong and what to fix.

The entry points are synchronous and run trio themselves
(:func:`check_extension`, :func:`run_check`), for three reasons: they work in
any test suite (plain pytest, pytest-trio, unittest) without a plugin; the
kit's timeouts need a real clock, because the library encodes and decodes
large messages in worker threads, which a test's ``autojump_clock`` would
skip past; and each check gets an event loop of its own, so an extension
that wedges a connection cannot leak tasks into the user's test. (Call them
from a synchronous test: ``trio.run`` cannot nest inside a running one.)

For one test per check in pytest, parametrize over :data:`CHECK_NAMES`::

    @pytest.mark.parametrize("check", CHECK_NAMES)
    def test_my_extension(check: str) -> None:
        run_check(check, MyClientFactory(), MyServerFactory())

The checks, in order:

- ``negotiation``: the pair negotiates; each connection gets its own objects.
- ``round_trip``: text and binary messages of 0 bytes to 1 MiB, both ways.
- ``fragments``: messages sent in fragments arrive whole, both ways.
- ``control_frames``: pings, pongs and close frames arrive untouched.
- ``rsv_bits``: the reserved bits on the wire are the declared ones.
- ``chained_with_deflate``: no clash with permessage-deflate; runs chained in both orders.
- ``chained_with_marker``: runs chained, in both orders, with an extension
  that uses a reserved bit it does not own; leaves that bit alone.
- ``declines``: without the extension the connection goes on; odd offers and
  answers are refused with ``NegotiationError``.
- ``max_size``: ``decode`` honours ``max_size``; too big a message fails
  with 1009.
- ``threads``: encode and decode in worker threads, concurrent with small
  messages and pings, keep every message whole and in order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from typing import Final, Literal

import attrs
import trio

from ..extensions.base import ClientExtensionFactory, ServerExtensionFactory
from .diagnosis import explain_handshake
from .failures import CheckNotApplicable, ExtensionCheckFailed
from .flow import check_control_frames, check_fragments, check_round_trip
from .harness import CheckRun, HandshakeFailed, unwrap
from .limits import check_max_size, check_threads
from .negotiation import check_declines, check_negotiation
from .reserved_bits import check_chained_with_deflate, check_chained_with_marker, check_rsv_bits

__all__ = [
    "CHECK_NAMES",
    "DEFAULT_TIMEOUT",
    "CheckNotApplicable",
    "CheckResult",
    "ExtensionCheckFailed",
    "check_extension",
    "run_check",
]

_Check = Callable[[CheckRun], Awaitable[None]]

_CHECKS: Final[dict[str, _Check]] = {
    "negotiation": check_negotiation,
    "round_trip": check_round_trip,
    "fragments": check_fragments,
    "control_frames": check_control_frames,
    "rsv_bits": check_rsv_bits,
    "chained_with_deflate": check_chained_with_deflate,
    "chained_with_marker": check_chained_with_marker,
    "declines": check_declines,
    "max_size": check_max_size,
    "threads": check_threads,
}

#: The names of the checks, in the order :func:`check_extension` runs them.
CHECK_NAMES: Final[tuple[str, ...]] = tuple(_CHECKS)

#: Seconds one check may take before it fails as stuck. Every connection is
#: in memory; the slowest check on a pure-Python extension takes a few
#: seconds, so this is room for a busy CI machine.
DEFAULT_TIMEOUT: Final = 60.0


@attrs.frozen
class CheckResult:
    """How one check went (a failed check raises instead)."""

    name: str
    """The check's name."""
    outcome: Literal["passed", "skipped"]
    """``"passed"``, or ``"skipped"`` when the check does not apply."""
    detail: str
    """Why it was skipped, or what it covered."""
    seconds: float
    """How long it took."""


def _check_arguments(
    client_factory: object, server_factory: object, timeout: object
) -> tuple[ClientExtensionFactory, ServerExtensionFactory]:
    for name, factory, kind, methods in (
        ("client_factory", client_factory, "ClientExtensionFactory", ("get_request_params",)),
        ("server_factory", server_factory, "ServerExtensionFactory", ("process_request_params",)),
    ):
        if isinstance(factory, type):
            raise TypeError(f"{name} must be a {kind} instance, not the class {factory.__name__}")
        if not all(callable(getattr(factory, method, None)) for method in methods):
            raise TypeError(f"{name} must be a {kind}, not {factory!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        pass  # not inside trio: good
    else:
        raise RuntimeError(
            "the extension checks run trio themselves: call them from a synchronous "
            "test (def, not async def)"
        )
    return client_factory, server_factory  # type: ignore[return-value]


def _select(checks: Collection[str] | None, skip: Collection[str]) -> list[str]:
    for names in (checks or (), skip):
        if isinstance(names, str):
            raise TypeError(f"checks and skip take a collection of names, not the str {names!r}")
        unknown = sorted(set(names) - set(_CHECKS))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; the checks are {list(CHECK_NAMES)}")
    wanted = set(CHECK_NAMES if checks is None else checks) - set(skip)
    return [name for name in CHECK_NAMES if name in wanted]


async def _run(
    name: str,
    client_factory: ClientExtensionFactory,
    server_factory: ServerExtensionFactory,
    seconds: float,
) -> CheckResult:
    run = CheckRun(name, client_factory, server_factory)
    started = time.perf_counter()
    try:
        try:
            with trio.fail_after(seconds):
                await _CHECKS[name](run)
        except BaseException as exc:
            leaf = unwrap(exc)
            if leaf is exc:
                raise
            leaf.__suppress_context__ = True  # the groups that carried it say nothing more
            raise leaf from leaf.__cause__
    except HandshakeFailed as failure:
        explain_handshake(run, failure)
    except trio.TooSlowError:
        raise ExtensionCheckFailed(
            name,
            f"no progress for {seconds} s while {run.step}",
            "encode and decode must return promptly, one frame for each frame given, "
            "with the opcode and fin it had: one that blocks (on a lock, on I/O), "
            "loops, or turns the last frame of a message into a non-final one leaves "
            "the other side waiting for ever.",
        ) from None
    except CheckNotApplicable as exc:
        return CheckResult(name, "skipped", str(exc), time.perf_counter() - started)
    summary = (_CHECKS[name].__doc__ or name).strip().splitlines()[0]
    return CheckResult(name, "passed", summary, time.perf_counter() - started)


def run_check(
    name: str,
    client_factory: ClientExtensionFactory,
    server_factory: ServerExtensionFactory,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> CheckResult:
    """Run one check on an extension's factory pair (runs trio; call it from sync code).

    Args:
        name: one of :data:`CHECK_NAMES`.
        client_factory: the client's factory, as a client would pass it in
            ``extensions=``; reused for every connection, as a client does.
        server_factory: the server's factory, reused likewise.
        timeout: seconds the check may take without finishing.

    Returns:
        The check's result.

    Raises:
        ExtensionCheckFailed: the extension broke the check's rule; the
            message says how and what to fix.
        CheckNotApplicable: the check does not apply to this extension (a
            ``unittest.SkipTest``, which pytest reports as a skip).
        ValueError, TypeError: an unknown check, or a wrong argument.
        RuntimeError: called from inside trio (an ``async def`` test).
    """
    __tracebackhide__ = True  # pytest: the failure's message says it all
    client, server = _check_arguments(client_factory, server_factory, timeout)
    _select([name], ())
    try:
        result = trio.run(_run, name, client, server, float(timeout))
    except ExtensionCheckFailed as exc:
        # Where in the kit it was raised is no help; the extension's own
        # exception, if any, is the __cause__, with its traceback.
        raise exc.with_traceback(None) from exc.__cause__
    if result.outcome == "skipped":
        raise CheckNotApplicable(result.detail)
    return result


def check_extension(
    client_factory: ClientExtensionFactory,
    server_factory: ServerExtensionFactory,
    *,
    checks: Collection[str] | None = None,
    skip: Collection[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> list[CheckResult]:
    """Run every check (or those chosen) on an extension's factory pair.

    Every selected check runs, even after one failed, so that one run shows
    every rule the extension breaks. Runs trio itself: call it from
    synchronous code.

    Args:
        client_factory: the client's factory, reused for every connection.
        server_factory: the server's factory, reused for every connection.
        checks: the names of the checks to run (default: all of :data:`CHECK_NAMES`).
        skip: names of checks not to run, for a rule the extension breaks on
            purpose (an extension that uses RSV1 and is never combined with
            permessage-deflate skips ``"chained_with_deflate"``).
        timeout: seconds each check may take without finishing.

    Returns:
        One result per check run, passed or skipped.

    Raises:
        ExtensionCheckFailed: the first check that failed; the others that
            failed are listed in its notes (``__notes__``, which pytest and
            tracebacks show).
        ValueError, TypeError: an unknown check name, or a wrong argument.
        RuntimeError: called from inside trio (an ``async def`` test).
    """
    __tracebackhide__ = True  # pytest: the failure's message says it all
    client, server = _check_arguments(client_factory, server_factory, timeout)
    names = _select(checks, skip)
    results: list[CheckResult] = []
    failures: list[ExtensionCheckFailed] = []
    for name in names:
        try:
            results.append(trio.run(_run, name, client, server, float(timeout)))
        except ExtensionCheckFailed as exc:
            failures.append(exc)
    if failures:
        first = failures[0]
        for other in failures[1:]:
            first.add_note(f"also failed: {other}")
        raise first.with_traceback(None) from first.__cause__
    return results
