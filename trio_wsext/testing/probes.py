"""What the extension under test did, frame by frame: the factories and extensions, observed.

Strategy: the kit hands the connection wrappers of the user's factories. Each
wrapper negotiates by calling the user's factory (with ``accepted_extensions``
only where the factory takes it, as the library does) and records a refusal
or a crash; the :class:`~trio_wsext.extensions.base.Extension` it returns is
the user's own object, unchanged in type and identity, whose ``encode`` and
``decode`` are shadowed by instance attributes that call the originals with
exactly the keywords they accept and record, for every frame, the reserved
bits before and after, the sizes, ``max_size``, and whether it ran in a
worker thread. :class:`~trio_wsext.extensions.base.ExtensionChain` binds the
methods when the connection starts, after the factory returned, so it calls
the observers.

Nothing here changes what the extension computes: a check can therefore say
"the server's ``decode`` returned 65,537 bytes with ``max_size=65536``" or
"``encode`` cleared RSV1, which it does not declare", rather than only
"the connection failed".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

from ..exceptions import NegotiationError
from ..extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
    accepts_keyword,
    accepts_positional,
)
from ..frames import Frame, Opcode
from ..headers import build_extension_header

__all__ = [
    "SIDES",
    "Crash",
    "ExtensionProbe",
    "FrameRecord",
    "ObservedClientFactory",
    "ObservedServerFactory",
    "Probes",
    "SideName",
    "describe_offer",
    "frame_bits",
    "rsv_names",
]

#: Which end of a connection: ``"client"`` or ``"server"``.
SideName: TypeAlias = Literal["client", "server"]

#: Both sides, client first.
SIDES: Final[tuple[SideName, SideName]] = ("client", "server")

#: Rewrites the parameters of an offer or a response (the ``declines`` check).
Rewrite: TypeAlias = Callable[[list[ExtensionParameter]], list[ExtensionParameter]]


def frame_bits(frame: Frame) -> frozenset[int]:
    """Return the reserved bits set on ``frame``: 1, 2, 3 for RSV1..RSV3."""
    return frozenset(n for n, bit in ((1, frame.rsv1), (2, frame.rsv2), (3, frame.rsv3)) if bit)


def rsv_names(bits: frozenset[int] | set[int]) -> str:
    """Name reserved bits for a message: ``"RSV1 and RSV3"``, or ``"no bit"``."""
    names = [f"RSV{bit}" for bit in sorted(bits)]
    if not names:
        return "no bit"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe_offer(name: str, parameters: Sequence[ExtensionParameter]) -> str:
    """Render one extension as it appears in ``Sec-WebSocket-Extensions``."""
    try:
        return build_extension_header([(name, list(parameters))])
    except ValueError:
        return f"{name} {list(parameters)!r}"


@attrs.frozen
class FrameRecord:
    """One frame through an observed ``encode`` or ``decode``."""

    opcode: Opcode
    """The opcode of the frame given."""
    fin: bool
    """Whether the frame given ends its message."""
    bits_in: frozenset[int]
    """The reserved bits set on the frame given."""
    bits_out: frozenset[int]
    """The reserved bits set on the frame returned."""
    size_in: int
    """The payload size of the frame given."""
    size_out: int
    """The payload size of the frame returned."""
    max_size: int | None
    """The ``max_size`` the chain passed to ``decode`` (``None`` for ``encode``)."""
    in_thread: bool
    """Whether it ran outside the thread that runs trio (in a worker thread)."""


@attrs.frozen
class Crash:
    """A factory method or an extension method that raised (or returned a non-Frame)."""

    side: SideName
    """The side whose object it was."""
    owner: str
    """The class of the object whose method it was."""
    method: str
    """``"process_request_params"``, ``"encode"``, ...."""
    error: BaseException
    """The exception (a ``TypeError`` made up by the kit for a non-Frame result)."""
    detail: str
    """What it was given: the offer, or the frame (opcode and size)."""


@attrs.define(eq=False)
class ExtensionProbe:
    """One extension object made by a factory under test, and what it did."""

    side: SideName
    """The side it runs on."""
    extension: Extension
    """The user's extension object."""
    observed: bool = True
    """Whether its methods could be observed (``False`` for a class with ``__slots__``)."""
    decode_takes_max_size: bool = True
    """Whether its ``decode`` accepts the ``max_size`` keyword."""
    encoded: list[FrameRecord] = attrs.Factory(list)
    """Every frame its ``encode`` returned, in order."""
    decoded: list[FrameRecord] = attrs.Factory(list)
    """Every frame its ``decode`` returned, in order."""

    @property
    def label(self) -> str:
        """``"the server's SimpleEncryptionExtension"``, for messages."""
        return f"the {self.side}'s {type(self.extension).__name__}"


@attrs.define(eq=False)
class Probes:
    """Everything the observed factories and extensions recorded during one check."""

    loop_thread: int = attrs.field(factory=threading.get_ident)
    """The thread that runs trio (worker threads are the others)."""
    extensions: list[ExtensionProbe] = attrs.Factory(list)
    """Every extension object the factories under test made, in order."""
    refusals: list[tuple[SideName, str, NegotiationError]] = attrs.Factory(list)
    """Each NegotiationError a factory under test raised: side, offer, error."""
    crashes: list[Crash] = attrs.Factory(list)
    """Each other exception a factory or extension under test raised."""

    def on(self, side: SideName) -> list[ExtensionProbe]:
        """Return the probes of the extensions made for ``side``."""
        return [probe for probe in self.extensions if probe.side == side]

    def observe(self, extension: Extension, side: SideName) -> Extension:
        """Start observing ``extension`` (made for ``side``); return it, the same object."""
        probe = ExtensionProbe(side, extension)
        self.extensions.append(probe)
        encode: Callable[..., Any] = extension.encode
        decode: Callable[..., Any] = extension.decode
        takes_compress = accepts_keyword(encode, "compress")
        takes_max_size = accepts_keyword(decode, "max_size")
        probe.decode_takes_max_size = takes_max_size
        loop_thread = self.loop_thread
        crashes = self.crashes
        owner = type(extension).__name__

        def check_result(method: str, frame: Frame, result: object) -> None:
            if not isinstance(result, Frame):
                error = TypeError(f"{method} returned {type(result).__name__}, not a Frame")
                crashes.append(Crash(side, owner, method, error, _frame_detail(frame)))

        def observed_encode(frame: Frame, *, compress: bool | None = None) -> Frame:
            try:
                result = encode(frame, compress=compress) if takes_compress else encode(frame)
            except Exception as exc:
                crashes.append(Crash(side, owner, "encode", exc, _frame_detail(frame)))
                raise
            check_result("encode", frame, result)
            if isinstance(result, Frame):
                probe.encoded.append(_record(frame, result, None, loop_thread))
            return result  # type: ignore[no-any-return]

        def observed_decode(frame: Frame, *, max_size: int | None = None) -> Frame:
            try:
                result = decode(frame, max_size=max_size) if takes_max_size else decode(frame)
            except Exception as exc:
                crashes.append(Crash(side, owner, "decode", exc, _frame_detail(frame)))
                raise
            check_result("decode", frame, result)
            if isinstance(result, Frame):
                probe.decoded.append(_record(frame, result, max_size, loop_thread))
            return result  # type: ignore[no-any-return]

        try:
            # Instance attributes shadow the methods; the chain binds them later.
            object.__setattr__(extension, "encode", observed_encode)
            object.__setattr__(extension, "decode", observed_decode)
        except (AttributeError, TypeError):
            probe.observed = False
        return extension


def _frame_detail(frame: Frame) -> str:
    return f"a {len(frame.data)}-byte {frame.opcode.name} frame (fin={frame.fin})"


def _record(given: Frame, result: Frame, max_size: int | None, loop_thread: int) -> FrameRecord:
    return FrameRecord(
        opcode=given.opcode,
        fin=given.fin,
        bits_in=frame_bits(given),
        bits_out=frame_bits(result),
        size_in=len(given.data),
        size_out=len(result.data),
        max_size=max_size,
        in_thread=threading.get_ident() != loop_thread,
    )


def _call(method: Callable[..., Any], parameters: list[ExtensionParameter], accepted: Any) -> Any:
    # As the library's negotiation does: the second argument only where it is taken.
    if accepts_positional(method, 2):
        return method(parameters, list(accepted))
    return method(parameters)


def _negotiate(
    probes: Probes,
    side: SideName,
    inner: object,
    method: str,
    parameters: Sequence[ExtensionParameter],
    accepted: Sequence[Extension],
    described: str,
    detail: str,
) -> Any:
    """Call a factory's negotiation ``method``; record a refusal or a crash, and re-raise it.

    ``described`` is what a refusal is recorded with, ``detail`` what a crash is.
    """
    try:
        return _call(getattr(inner, method), list(parameters), accepted)
    except NegotiationError as exc:
        probes.refusals.append((side, described, exc))
        raise
    except Exception as exc:
        probes.crashes.append(Crash(side, type(inner).__name__, method, exc, detail))
        raise


def _check_extension(
    probes: Probes,
    side: SideName,
    inner: object,
    method: str,
    extension: object,
    message: str,
    detail: str,
) -> None:
    """Record and raise a ``TypeError(message)`` unless the factory built an :class:`Extension`."""
    if not isinstance(extension, Extension):
        error = TypeError(message)
        probes.crashes.append(Crash(side, type(inner).__name__, method, error, detail))
        raise error


class ObservedClientFactory(ClientExtensionFactory):
    """A client factory under test, observed; it may offer rewritten parameters.

    Args:
        inner: the user's factory.
        probes: where to record.
        rewrite: rewrites the offer's parameters (the ``declines`` check), or ``None``.
    """

    def __init__(
        self, inner: ClientExtensionFactory, probes: Probes, rewrite: Rewrite | None = None
    ) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.probes = probes
        self.rewrite = rewrite
        self.offered: list[ExtensionParameter] = []

    def get_request_params(self) -> list[ExtensionParameter]:
        """Return the user's offer (rewritten if asked), recording a crash."""
        try:
            parameters = list(self.inner.get_request_params())
        except Exception as exc:
            self.probes.crashes.append(
                Crash("client", type(self.inner).__name__, "get_request_params", exc, "nothing")
            )
            raise
        if self.rewrite is not None:
            parameters = self.rewrite(parameters)
        self.offered = parameters
        return parameters

    def process_response_params(
        self,
        parameters: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension] = (),
    ) -> Extension:
        """Let the user's factory build the extension; observe it."""
        answer = describe_offer(self.name, parameters)
        extension = _negotiate(
            self.probes,
            "client",
            self.inner,
            "process_response_params",
            parameters,
            accepted_extensions,
            answer,
            f"the answer {answer!r}",
        )
        _check_extension(
            self.probes,
            "client",
            self.inner,
            "process_response_params",
            extension,
            f"returned {extension!r}, not an Extension",
            f"the answer {answer!r}",
        )
        return self.probes.observe(extension, "client")


class ObservedServerFactory(ServerExtensionFactory):
    """A server factory under test, observed; it may answer with rewritten parameters.

    Args:
        inner: the user's factory.
        probes: where to record.
        rewrite: rewrites the response's parameters (the ``declines`` check), or ``None``.
    """

    def __init__(
        self, inner: ServerExtensionFactory, probes: Probes, rewrite: Rewrite | None = None
    ) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.probes = probes
        self.rewrite = rewrite

    def process_request_params(
        self,
        parameters: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension] = (),
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Let the user's factory answer the offer; observe the extension it builds."""
        offer = describe_offer(self.name, parameters)
        response, extension = _negotiate(
            self.probes,
            "server",
            self.inner,
            "process_request_params",
            parameters,
            accepted_extensions,
            offer,
            f"the offer {offer!r}",
        )
        _check_extension(
            self.probes,
            "server",
            self.inner,
            "process_request_params",
            extension,
            f"returned {extension!r} as the extension, not an Extension",
            f"the offer {offer!r}",
        )
        response = list(response)
        if self.rewrite is not None:
            response = self.rewrite(response)
        return response, self.probes.observe(extension, "server")
