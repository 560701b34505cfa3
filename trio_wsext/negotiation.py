"""Extension negotiation (:rfc:`6455#section-9`): which offers become active extensions.

Strategy: the server walks the client's offers in order and hands each to the
first server factory of that name not used yet; a factory that raises
:class:`~trio_wsext.exceptions.NegotiationError` declines that one offer, and
the walk goes on. The client then matches each extension of the response to
one of its factories. Two rules hold on both sides: never two extensions of
one name, and never two active extensions that claim the same reserved bit
(:attr:`Extension.rsv_bits <trio_wsext.extensions.base.Extension.rsv_bits>`):
RFC 6455 §5.2 lets an extension give meaning to RSV1-3, and two meanings for
one bit cannot both hold. The server declines the later offer; the client,
which can decline nothing, fails the handshake.

Factory methods take one argument, as in websockets' extension examples, or two, as in websockets
(``accepted_extensions``, the extensions accepted so far in this handshake).
The second is passed only to a method that takes it.

Server rules (one row per test in ``tests/test_negotiation.py``)::

    Req. (client offers, in order)   Server factories   Resp. (accepted, in order)
    a                                a                  a
    a                                (none)             (none)
    b, a                             a, b               b, a       client's order
    a; x=1, a                        a (declines x)     a          next offer of a
    a, a                             a, a               a          never two a's
    a, a                             a (declines all)   (none)
    r1, s1                           r1, s1             r1         both use RSV1
    r1, r2                           r1, r2             r1, r2     RSV1 and RSV2
    a, b                             b                  b          a unknown
    a                                a (two arguments)  a          sees accepted_extensions

Client rules::

    Req. (offered)   Resp. (server's answer)   Result
    a                a                         [a]
    a, b             b, a                      [b, a]     response order
    a                (none)                    []
    a                b                         NegotiationError: b was not offered
    a                a, a                      NegotiationError: a twice
    a; x=1, a; x=2   a; x=2                    [a]        second factory takes it
    r1, s1           r1, s1                    NegotiationError: both use RSV1
    a                a (factory refuses)       NegotiationError from the factory
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .exceptions import NegotiationError
from .extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
    accepts_positional,
)

__all__ = ["negotiate_client", "negotiate_server"]

ExtensionHeader = tuple[str, list[ExtensionParameter]]


def _call(
    method: Callable[..., Any],
    parameters: Sequence[ExtensionParameter],
    accepted: Sequence[Extension],
) -> Any:
    """Call a factory method with ``accepted_extensions`` only where it takes it."""
    if accepts_positional(method, 2):
        return method(list(parameters), list(accepted))
    return method(list(parameters))


def _rsv_conflict(extension: Extension, accepted: Sequence[Extension]) -> Extension | None:
    """Return the accepted extension that claims one of ``extension``'s RSV bits."""
    for other in accepted:
        if extension.rsv_bits & other.rsv_bits:
            return other
    return None


def _rsv_names(bits: frozenset[int]) -> str:
    return ", ".join(f"RSV{bit}" for bit in sorted(bits))


def negotiate_server(
    factories: Sequence[ServerExtensionFactory],
    offers: Sequence[tuple[str, list[ExtensionParameter]]],
) -> tuple[list[ExtensionHeader], list[Extension]]:
    """Choose which of the client's offers the server accepts.

    Each offer goes to the first factory of its name not used yet. The factory
    returns the response parameters and the extension, or raises
    :class:`~trio_wsext.exceptions.NegotiationError` to decline the offer. An
    offer is also declined when an extension of its name is already accepted,
    or when its extension claims an RSV bit that an accepted one claims.

    Args:
        factories: the server's factories, in order of preference for
            factories of one name.
        offers: the client's ``Sec-WebSocket-Extensions``, parsed.

    Returns:
        The response's extensions (name and parameters) and the extensions to
        run, both in the order accepted (the client's order).

    Raises:
        Exception: any exception other than ``NegotiationError`` that a
            factory raises: that is a bug in the factory, not a refusal.
    """
    response: list[ExtensionHeader] = []
    accepted: list[Extension] = []
    used: set[int] = set()
    for name, parameters in offers:
        # RFC 6455 §9.1 lists the extensions the server will use; one of a
        # name is what every extension's own spec assumes (RFC 7692 §5).
        if any(accepted_name == name for accepted_name, _ in response):
            continue
        factory = next(
            (f for f in factories if f.name == name and id(f) not in used),
            None,
        )
        if factory is None:
            continue
        try:
            response_parameters, extension = _call(
                factory.process_request_params, parameters, accepted
            )
        except NegotiationError:
            continue
        if any(other.name == extension.name for other in accepted):
            continue
        if _rsv_conflict(extension, accepted) is not None:
            continue
        used.add(id(factory))
        response.append((name, list(response_parameters)))
        accepted.append(extension)
    return response, accepted


def negotiate_client(
    factories: Sequence[ClientExtensionFactory],
    response: Sequence[tuple[str, list[ExtensionParameter]]],
) -> list[Extension]:
    """Build the extensions that the server's response accepted.

    :rfc:`6455#section-4.1`: "If the response includes a
    ``Sec-WebSocket-Extensions`` header field and this header field indicates
    the use of an extension that was not present in the client's handshake
    (the server has indicated an extension not requested by the client), the
    client MUST *Fail the WebSocket Connection*."

    Each extension of the response is matched to the factories of its name
    not used yet, in order; the first whose ``process_response_params`` does
    not raise ``NegotiationError`` builds it (a client may offer one extension
    several times with different parameters; the server picks one).

    Args:
        factories: the client's factories, in the order offered.
        response: the server's ``Sec-WebSocket-Extensions``, parsed.

    Returns:
        The extensions to run, in the response's order.

    Raises:
        NegotiationError: an extension was not offered, appears twice, claims
            an RSV bit another one claims, or every matching factory refused
            it (then the last refusal is the ``__cause__``).
    """
    accepted: list[Extension] = []
    names: set[str] = set()
    used: set[int] = set()
    for name, parameters in response:
        if name in names:
            raise NegotiationError(f"server accepted extension {name!r} twice")
        candidates = [f for f in factories if f.name == name and id(f) not in used]
        if not candidates:
            raise NegotiationError(f"server accepted extension {name!r}, which was not offered")
        extension: Extension | None = None
        refusal: NegotiationError | None = None
        for factory in candidates:
            try:
                extension = _call(factory.process_response_params, parameters, accepted)
            except NegotiationError as exc:
                refusal = exc
            else:
                break
        if extension is None:
            if len(candidates) == 1 and refusal is not None:
                raise refusal
            raise NegotiationError(
                f"no offer of extension {name!r} accepts the server's parameters: {refusal}"
            ) from refusal
        other = _rsv_conflict(extension, accepted)
        if other is not None:
            raise NegotiationError(
                f"extensions {other.name!r} and {extension.name!r} both use "
                f"{_rsv_names(extension.rsv_bits & other.rsv_bits)}"
            )
        names.add(name)
        used.add(id(factory))
        accepted.append(extension)
    return accepted
