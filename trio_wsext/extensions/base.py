"""The extension framework: extensions, their factories, and the chain that runs them.

Strategy: an :class:`Extension` transforms frames, one at a time, on the way
out (:meth:`~Extension.encode`) and on the way in (:meth:`~Extension.decode`).
Factories negotiate it in the opening handshake (:rfc:`6455#section-9`). A
connection runs its negotiated extensions as one :class:`ExtensionChain`:
encode in negotiation order, decode in reverse.

Two optional keywords flow through the chain, each passed only to a method
whose signature accepts it, so that code written for websockets'
extension API (``decode(self, frame)``) runs unchanged:

- ``decode(frame, *, max_size)``: what is left of the message-size budget; an
  extension that expands data must not produce more, and raises
  :class:`~trio_wsext.exceptions.PayloadTooBig` instead.
- ``encode(frame, *, compress)``: the caller's per-message wish
  (``send_message(..., compress=False)``); ``None`` means "your settings".

Extensions that use reserved bits declare them in :attr:`Extension.rsv_bits`,
so that the handshake never activates two extensions that claim the same bit.
A connection that has gone quiet calls
:meth:`~Extension.release_idle_memory`, so that an extension may free what it
can rebuild (a compressor) instead of holding it for an idle peer. An
extension whose encoding depends on nothing a connection keeps returns a
:meth:`~Extension.broadcast_key`, so that a broadcast encodes a message once
for every connection that shares it.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar, TypeAlias

from ..frames import Frame

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionChain",
    "ExtensionParameter",
    "ServerExtensionFactory",
    "accepts_keyword",
]

ExtensionParameter: TypeAlias = tuple[str, str | None]
"""One extension parameter: a name and a value, ``None`` for a bare name."""


@functools.lru_cache(maxsize=256)
def _signature_parameters(function: Callable[..., Any]) -> tuple[inspect.Parameter, ...] | None:
    try:
        return tuple(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return None


def _parameters(function: Callable[..., Any]) -> tuple[inspect.Parameter, ...] | None:
    """Return the parameters a caller of ``function`` passes, or ``None`` if unknown.

    Every connection asks this of its extensions' methods, and every
    negotiation of its factories' methods: a signature is built once per
    function (``inspect.signature`` costs ~20 µs) and a bound method's is its
    function's without the first parameter.
    """
    underlying = getattr(function, "__func__", None)
    if underlying is not None and getattr(function, "__self__", None) is not None:
        target, skip = underlying, 1
    else:
        target, skip = function, 0
    try:
        parameters = _signature_parameters(target)
    except TypeError:  # unhashable: look it up each time
        parameters = _signature_parameters.__wrapped__(target)
    return None if parameters is None else parameters[skip:]


def accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    """Tell whether ``function`` can be called with the keyword argument ``name``."""
    parameters = _parameters(function)
    if parameters is None:  # pragma: no cover
        return False
    for parameter in parameters:
        if parameter.name == name and parameter.kind is not inspect.Parameter.VAR_KEYWORD:
            return parameter.kind in (
                inspect.Parameter.KEYWORD_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            )
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def accepts_positional(function: Callable[..., Any], count: int) -> bool:
    """Tell whether ``function`` (a bound method) takes ``count`` positional arguments."""
    parameters = _parameters(function)
    if parameters is None:  # pragma: no cover
        return False
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return True
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= count


class Extension:
    """Base class of WebSocket extensions; it passes frames through unchanged.

    Subclasses override :meth:`encode` and :meth:`decode`.

    Args:
        name: the extension's name in ``Sec-WebSocket-Extensions``.
    """

    #: The reserved bits (1, 2, 3 for RSV1..RSV3) this extension sets on
    #: outgoing frames and consumes on incoming ones. The handshake refuses to
    #: activate two extensions that declare the same bit. An extension that
    #: declares nothing may still use a bit; it is then unchecked.
    rsv_bits: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, name: str) -> None:
        self.name = name

    def encode(self, frame: Frame) -> Frame:
        """Process an outgoing frame; return it, or a replacement.

        Args:
            frame: the frame the application (or the previous extension) made.
        """
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Process an incoming frame; return it, or a replacement.

        Args:
            frame: the frame as received (or as the next extension decoded it).
            max_size: what is left of the message-size budget, or ``None``.
                An extension that expands data must not produce more than
                this and raises :class:`~trio_wsext.exceptions.PayloadTooBig`.
        """
        return frame

    def release_idle_memory(self) -> None:
        """Free memory this extension can rebuild; the base class holds none.

        Called by the connection when it has sent nothing for a while; an
        extension may free what it can rebuild; never called in the middle of
        a message. The connection calls it where it calls :meth:`encode`,
        never while an ``encode`` runs, so an extension may drop send-side
        state without a lock. State that the peer's next messages rely on
        (a decompressor's window under context takeover) must be kept.
        """

    def broadcast_key(self) -> Hashable | None:
        """Return a key under which a broadcast may share this extension's output, or ``None``.

        :func:`trio_wsext.broadcast` encodes a message once for all
        server connections whose chains give equal keys, extension by
        extension, and writes the same bytes to each. An extension may return
        a key only if :meth:`encode`, for a whole message, depends on nothing
        but the frame, the ``compress`` wish and what the key holds, and
        leaves no state that a later message depends on (permessage-deflate
        with ``server_no_context_takeover``). The base class returns ``None``:
        each connection encodes the message itself, which is always correct.
        """
        return None

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(name={self.name!r})"


class ClientExtensionFactory(ABC):
    """Negotiates one extension from the client's side.

    Args:
        name: the extension's name.
        parameters: the parameters to offer, as ``(name, value)`` pairs.
    """

    def __init__(self, name: str, parameters: Sequence[ExtensionParameter] | None = None) -> None:
        self.name = name
        self.parameters: list[ExtensionParameter] = list(parameters or [])

    def get_request_params(self) -> list[ExtensionParameter]:
        """Return the parameters to offer in ``Sec-WebSocket-Extensions``."""
        return self.parameters

    @abstractmethod
    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Check the server's answer to this offer and build the extension.

        Factories written for websockets may take a second argument,
        ``accepted_extensions`` (the extensions accepted so far in this
        handshake); the framework passes it only where it is accepted.

        Raises:
            NegotiationError: the answer is unacceptable; the handshake fails.
        """


class ServerExtensionFactory(ABC):
    """Negotiates one extension from the server's side.

    Args:
        name: the extension's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Check one offer of the client and build the extension.

        Factories written for websockets may take a second argument,
        ``accepted_extensions``; the framework passes it only where accepted.

        Returns:
            The parameters of the response and the extension.

        Raises:
            NegotiationError: decline this offer; the server goes on with the
                client's next offer.
        """


class ExtensionChain:
    """Several extensions run as one: encode in order, decode in reverse.

    Each extension's optional keywords (``max_size`` for decode, ``compress``
    for encode) are looked up once, here, not per frame.

    Args:
        extensions: the extensions, in negotiation order.
    """

    def __init__(self, extensions: Sequence[Extension]) -> None:
        self.extensions: list[Extension] = list(extensions)
        self._encoders: list[tuple[Callable[..., Frame], bool]] = [
            (extension.encode, accepts_keyword(extension.encode, "compress"))
            for extension in self.extensions
        ]
        self._decoders: list[tuple[Callable[..., Frame], bool]] = [
            (extension.decode, accepts_keyword(extension.decode, "max_size"))
            for extension in reversed(self.extensions)
        ]

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Apply every extension's ``encode`` to an outgoing frame, in order."""
        for encode, takes_compress in self._encoders:
            frame = encode(frame, compress=compress) if takes_compress else encode(frame)
        return frame

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Apply every extension's ``decode`` to an incoming frame, in reverse order."""
        for decode, takes_max_size in self._decoders:
            frame = decode(frame, max_size=max_size) if takes_max_size else decode(frame)
        return frame

    def __len__(self) -> int:
        return len(self.extensions)

    def __repr__(self) -> str:
        return f"ExtensionChain({self.extensions!r})"
