"""permessage-deflate (:rfc:`7692`): negotiation, and the names users import.

Strategy: the factories compare an offer and a response parameter by
parameter, each rule written as the RFC's Req./Resp./Result table in a
comment (the tests mirror them row for row), and hand the agreed values to
:class:`PerMessageDeflate` (:mod:`~trio_wsext.extensions.deflate_codec`),
which does the compressing. Offers and responses list parameters in RFC 7692
§7.1's order and leave out what equals the RFC's default.

A window of 8 bits is accepted in every position; the codec's docstring says
why that is safe with zlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal, NamedTuple

from ..exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
)
from .base import ClientExtensionFactory, Extension, ExtensionParameter, ServerExtensionFactory
from .deflate_codec import (
    DEFAULT_WINDOW_BITS,
    PerMessageDeflate,
    check_compress_settings,
    check_flag,
    check_threshold,
    check_window_bits,
)

__all__ = [
    "ClientPerMessageDeflateFactory",
    "PerMessageDeflate",
    "ServerPerMessageDeflateFactory",
    "enable_client_permessage_deflate",
    "enable_server_permessage_deflate",
]

#: RFC 7692 §7.1.2.1/§7.1.2.2: window bits are "a decimal integer value
#: without leading zeroes between 8 to 15, inclusive".
_WINDOW_BITS_VALUES: Final = {str(bits): bits for bits in range(8, 16)}

# The settings of enable_*_permessage_deflate, chosen from the tables that
# ``python -m benchmarks.deflate_defaults`` prints (README, "Compression").
#: The server's windows: 4 KiB. On 100 B-16 KiB JSON the output is ~14 % larger
#: than with 32 KiB windows, for 50 KiB per busy connection instead of 302 KiB
#: at zlib's defaults; each step above 12 bits costs 3-27 KiB per % saved.
DEFAULT_MAX_WINDOW_BITS: Final = 12
#: At 12 bits, memLevel 5 is within 0.5 % of 8 and 9, and takes 50 KiB, not 162.
#: Messages under 8 KiB are compressed with zlib even when zlib-ng is installed
#: (``deflate_codec.LARGE_MESSAGE``), so 5 is what a busy connection holds;
#: zlib-ng, for the large messages, sizes only its symbol buffer by memLevel,
#: and at 5 compresses 64 KiB JSON-like text 1 % larger and 4-8 % slower than
#: at 6 (``python -m benchmarks.deflate_defaults --mem-levels``).
DEFAULT_MEM_LEVEL: Final = 5
#: Below 32 bytes compressing saves at most 13 % of the bytes on the wire for
#: ~4 times the CPU per message, and without context takeover it expands them.
DEFAULT_THRESHOLD: Final = 32


class _Params(NamedTuple):
    """The four parameters of one offer or response, as parsed."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_max_window_bits: int | None
    client_max_window_bits: int | Literal[True] | None


def _parse_params(parameters: Sequence[ExtensionParameter], *, offer: bool) -> _Params:
    """Parse the parameters of an offer (``offer=True``) or of a response.

    Raises:
        DuplicateParameter: a parameter appears twice.
        InvalidParameterName: a parameter is not one of RFC 7692 §7.1's.
        InvalidParameterValue: a value where none is allowed, none where one
            is required, or a window size that is not 8-15.
    """
    seen: set[str] = set()
    server_nct = client_nct = False
    server_bits: int | None = None
    client_bits: int | Literal[True] | None = None
    for name, value in parameters:
        # RFC 7692 §7.1: decline (or fail) if "The negotiation offer contains
        # multiple extension parameters with the same name."
        if name in seen:
            raise DuplicateParameter(name)
        seen.add(name)
        if name == "server_no_context_takeover" or name == "client_no_context_takeover":
            # RFC 7692 §7.1.1: "This extension parameter has no value."
            if value is not None:
                raise InvalidParameterValue(name, value)
            if name == "server_no_context_takeover":
                server_nct = True
            else:
                client_nct = True
        elif name == "server_max_window_bits":
            if value not in _WINDOW_BITS_VALUES:
                raise InvalidParameterValue(name, value)
            server_bits = _WINDOW_BITS_VALUES[value]
        elif name == "client_max_window_bits":
            # RFC 7692 §7.1.2.2: "This parameter has no value or a decimal
            # integer value" in an offer; a response's always has a value.
            if value is None and offer:
                client_bits = True
            elif value in _WINDOW_BITS_VALUES:
                client_bits = _WINDOW_BITS_VALUES[value]
            else:
                raise InvalidParameterValue(name, value)
        else:
            raise InvalidParameterName(name)
    return _Params(server_nct, client_nct, server_bits, client_bits)


def _build_params(params: _Params) -> list[ExtensionParameter]:
    """Build parameters in RFC 7692 §7.1's order; ``None`` leaves one out."""
    built: list[ExtensionParameter] = []
    if params.server_no_context_takeover:
        built.append(("server_no_context_takeover", None))
    if params.client_no_context_takeover:
        built.append(("client_no_context_takeover", None))
    if params.server_max_window_bits is not None:
        built.append(("server_max_window_bits", str(params.server_max_window_bits)))
    if params.client_max_window_bits is True:
        built.append(("client_max_window_bits", None))
    elif params.client_max_window_bits is not None:
        built.append(("client_max_window_bits", str(params.client_max_window_bits)))
    return built


class _WindowAboveOfferError(InvalidParameterValue):
    """A response's window size is larger than the one the offer allowed.

    Attributes:
        offered: the largest window size (in bits) the offer allowed.
    """

    def __init__(self, name: str, offered: int, received: int) -> None:
        super().__init__(name, str(received))
        self.offered = offered
        # The inherited message names the value only; the limit explains the refusal.
        self.args = (f"{name}={received} exceeds the offered {offered}",)


def _refuse_window_above_offer(name: str, offered: int, received: int) -> None:
    """Raise InvalidParameterValue if a response's window size exceeds the offered one.

    RFC 7692 §7.1.2.1 and §7.1.2.2: a server answers an offered window size
    "with the same or smaller value as the offer" ("equal to or smaller than
    the received value"). A larger one is a configuration the client did not
    offer, so RFC 7692 §7.1 has the client fail the connection.
    """
    if received > offered:
        raise _WindowAboveOfferError(name, offered, received)


def _refuse_duplicate(accepted_extensions: Sequence[Extension], what: str) -> None:
    """Raise NegotiationError if permessage-deflate is among ``accepted_extensions``."""
    if any(extension.name == PerMessageDeflate.name for extension in accepted_extensions):
        raise NegotiationError(f"{what} a second permessage-deflate")


def _factory_repr(factory: object, names: Sequence[str]) -> str:
    """Return ``Class(name=value, ...)``, the call that rebuilds ``factory``."""
    arguments = ", ".join(f"{name}={getattr(factory, name)!r}" for name in names)
    return f"{type(factory).__name__}({arguments})"


_FACTORY_FIELDS: Final = (
    "server_max_window_bits",
    "client_max_window_bits",
    "server_no_context_takeover",
    "client_no_context_takeover",
    "compress_settings",
    "threshold",
)


class _FactorySettings:
    """The settings both factories share, validated and readable."""

    def _configure(
        self,
        server_max_window_bits: int | None,
        client_max_window_bits: int | Literal[True] | None,
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        compress_settings: Mapping[str, int] | None,
        threshold: int,
        *,
        bare: bool,
    ) -> None:
        check_window_bits("server_max_window_bits", server_max_window_bits, none=True)
        check_window_bits("client_max_window_bits", client_max_window_bits, none=True, bare=bare)
        check_flag("server_no_context_takeover", server_no_context_takeover)
        check_flag("client_no_context_takeover", client_no_context_takeover)
        self._compress_settings = check_compress_settings(compress_settings)
        check_threshold(threshold)
        self._server_max_window_bits = server_max_window_bits
        self._server_no_context_takeover = server_no_context_takeover
        self._client_no_context_takeover = client_no_context_takeover
        self._threshold = threshold

    @property
    def server_max_window_bits(self) -> int | None:
        """The largest server window to allow, as a power of 2 (``None``: 15, unsent)."""
        return self._server_max_window_bits

    @property
    def server_no_context_takeover(self) -> bool:
        """Whether the server is to compress each message with an empty window."""
        return self._server_no_context_takeover

    @property
    def client_no_context_takeover(self) -> bool:
        """Whether the client is to compress each message with an empty window."""
        return self._client_no_context_takeover

    @property
    def compress_settings(self) -> dict[str, int] | None:
        """A copy of the :func:`zlib.compressobj` keywords, or ``None``."""
        return dict(self._compress_settings) if self._compress_settings else None

    @property
    def threshold(self) -> int:
        """Data messages shorter than this many bytes go out uncompressed."""
        return self._threshold


def _bits(value: int | Literal[True] | None) -> int | None:
    """A parsed window size as an int; the bare parameter (``True``) gives ``None``."""
    return None if value is None or value is True else value


class ClientPerMessageDeflateFactory(_FactorySettings, ClientExtensionFactory):
    """Offer permessage-deflate from a client and check the server's answer.

    Parameters behave as :rfc:`7692#section-7.1` describes. The offer lists
    only what differs from the RFC's defaults: with every argument left as
    is, it reads ``permessage-deflate; client_max_window_bits``.

    Args:
        server_max_window_bits: the largest window (8-15) the server may
            compress with; ``15`` or ``None`` sends nothing (the RFC's default).
        client_max_window_bits: the largest window (8-15) this client
            compresses with. ``15`` or ``True`` sends the bare parameter (the
            server may then ask for a smaller window, as browsers allow);
            a smaller value is sent as a limit, and a response above it fails
            the handshake; ``None`` sends nothing, and the server may not
            limit this client's window.
        server_no_context_takeover: ask the server to compress each message
            with an empty window; a response without it fails the handshake.
        client_no_context_takeover: compress each message with an empty window.
        compress_settings: keywords of :func:`zlib.compressobj` (``level``,
            ``memLevel``, ``strategy``); ``None`` means zlib's defaults.
        threshold: data messages shorter than this many bytes go out
            uncompressed; ``0`` compresses every data message.

    Raises:
        ValueError: an argument has the wrong type or is out of range; the
            message names it.
    """

    name = "permessage-deflate"

    def __init__(
        self,
        server_max_window_bits: int | None = DEFAULT_WINDOW_BITS,
        client_max_window_bits: int | Literal[True] | None = DEFAULT_WINDOW_BITS,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        compress_settings: Mapping[str, int] | None = None,
        *,
        threshold: int = 0,
    ) -> None:
        self._configure(
            server_max_window_bits,
            client_max_window_bits,
            server_no_context_takeover,
            client_no_context_takeover,
            compress_settings,
            threshold,
            bare=True,
        )
        self._client_max_window_bits = client_max_window_bits
        super().__init__(self.name, _build_params(self._offer()))

    @property
    def client_max_window_bits(self) -> int | Literal[True] | None:
        """The largest window this client compresses with; ``True``: bare, 15."""
        return self._client_max_window_bits

    def __repr__(self) -> str:
        return _factory_repr(self, _FACTORY_FIELDS)

    def _offer(self) -> _Params:
        server_bits = self._server_max_window_bits
        client_bits = self._client_max_window_bits
        return _Params(
            self._server_no_context_takeover,
            self._client_no_context_takeover,
            # RFC 7692 §7.1.2.1: without the parameter, the client "can receive
            # messages compressed using an LZ77 sliding window of up to 32,768
            # bytes", so a 15 is left out.
            None if server_bits is None or server_bits == DEFAULT_WINDOW_BITS else server_bits,
            True if client_bits is True or client_bits == DEFAULT_WINDOW_BITS else client_bits,
        )

    def get_request_params(self) -> list[ExtensionParameter]:
        """Return the offer's parameters, in RFC 7692 §7.1's order."""
        return _build_params(self._offer())

    def process_response_params(
        self,
        parameters: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension] = (),
    ) -> PerMessageDeflate:
        """Check the server's response to the offer and build the extension.

        Args:
            parameters: the response's permessage-deflate parameters.
            accepted_extensions: the extensions accepted so far.

        Raises:
            NegotiationError: RFC 7692 §7.1: the client "MUST *Fail the
                WebSocket Connection*" when the response has an undefined
                parameter, an invalid value, a duplicate, or a configuration
                the client does not support, such as a window size above
                the offered one (:class:`InvalidParameterValue`); and for a
                second permessage-deflate. The subclasses name the parameter.
        """
        _refuse_duplicate(accepted_extensions, "received")
        offer = self._offer()
        response = _parse_params(parameters, offer=False)

        # server_no_context_takeover (RFC 7692 §7.1.1.1: "A server accepts an
        # extension negotiation offer that includes the
        # "server_no_context_takeover" extension parameter by including [it]")
        #
        #   Req.    Resp.   Result
        #   ------  ------  ----------------------------------------
        #   False   False   False
        #   False   True    True
        #   True    False   Error: the server ignored it
        #   True    True    True
        if offer.server_no_context_takeover and not response.server_no_context_takeover:
            raise NegotiationError(
                "the response lacks server_no_context_takeover, which the offer asked for"
            )
        server_no_context_takeover = response.server_no_context_takeover

        # client_no_context_takeover (RFC 7692 §7.1.1.2: offered, it is "a
        # hint that even if the server doesn't include [it] ... the client is
        # not going to use context takeover")
        #
        #   Req.    Resp.   Result
        #   ------  ------  ----------------------------------------
        #   False   False   False
        #   False   True    True
        #   True    False   True: the offer promised it
        #   True    True    True
        client_no_context_takeover = (
            offer.client_no_context_takeover or response.client_no_context_takeover
        )

        # server_max_window_bits (RFC 7692 §7.1.2.1: "with the same or smaller
        # value as the offer"; unoffered, the server MAY still send it)
        #
        #   Req.    Resp.   Result
        #   ------  ------  ----------------------------------------
        #   absent  absent  15
        #   absent  M       M
        #   N       absent  Error: the server ignored the limit
        #   N       M<=N    M
        #   N       M>N     Error: above the limit
        requested, answered = _bits(offer.server_max_window_bits), response.server_max_window_bits
        if requested is not None:
            if answered is None:
                raise NegotiationError(
                    f"the response lacks server_max_window_bits, which the offer limited "
                    f"to {requested}"
                )
            _refuse_window_above_offer("server_max_window_bits", requested, answered)
        server_max_window_bits = DEFAULT_WINDOW_BITS if answered is None else answered

        # client_max_window_bits (RFC 7692 §7.1.2.2: unoffered, the response
        # "MUST NOT include" it; offered with a value, "the client is not going
        # to use an LZ77 sliding window size greater than" that value, and the
        # server limits it in a response "with a value equal to or smaller
        # than the received value")
        #
        #   Req.    Resp.   Result
        #   ------  ------  ----------------------------------------
        #   absent  absent  15
        #   absent  M       Error: not offered
        #   bare    absent  15
        #   bare    M       M
        #   N       absent  N
        #   N       M<=N    M
        #   N       M>N     Error: above the limit
        offered = _bits(offer.client_max_window_bits)
        answered = _bits(response.client_max_window_bits)  # never bare: _parse_params refuses it
        if answered is not None:
            if offer.client_max_window_bits is None:
                raise NegotiationError(
                    f"the response has client_max_window_bits={answered}, which the offer "
                    "did not include"
                )
            if offered is not None:
                _refuse_window_above_offer("client_max_window_bits", offered, answered)
        client_max_window_bits = answered or offered or DEFAULT_WINDOW_BITS

        return PerMessageDeflate(
            False,
            server_max_window_bits,
            client_max_window_bits,
            server_no_context_takeover,
            client_no_context_takeover,
            self._compress_settings or None,
            threshold=self._threshold,
        )


class ServerPerMessageDeflateFactory(_FactorySettings, ServerExtensionFactory):
    """Accept or decline a client's permessage-deflate offers.

    Parameters behave as :rfc:`7692#section-7.1` describes. The response
    states every limit the server applies, and never anything that the
    offer's parameters do not allow.

    Args:
        server_max_window_bits: the largest window (8-15) this server
            compresses with; sent whenever it is below 15 or the client asked.
            ``None`` is the same as 15.
        client_max_window_bits: the largest window (8-15) the client may
            compress with, sent to clients that offer the parameter; a client
            that does not is accepted with 15, unless
            ``require_client_max_window_bits``. ``None`` never sends it and
            trusts the window the client's offer promised (15 by default).
        server_no_context_takeover: compress each message with an empty window.
        client_no_context_takeover: ask the client to compress each message
            with an empty window (this server then frees its decompressor
            between messages). Also granted whenever a client offers it.
        compress_settings: keywords of :func:`zlib.compressobj` (``level``,
            ``memLevel``, ``strategy``); ``None`` means zlib's defaults.
        threshold: data messages shorter than this many bytes go out
            uncompressed; ``0`` compresses every data message.
        require_client_max_window_bits: decline offers without
            ``client_max_window_bits``, that is, clients whose window this
            server cannot limit.

    Raises:
        ValueError: an argument has the wrong type or is out of range; the
            message names it.
    """

    name = "permessage-deflate"

    def __init__(
        self,
        server_max_window_bits: int | None = DEFAULT_WINDOW_BITS,
        client_max_window_bits: int | None = DEFAULT_WINDOW_BITS,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        compress_settings: Mapping[str, int] | None = None,
        *,
        threshold: int = 0,
        require_client_max_window_bits: bool = False,
    ) -> None:
        self._configure(
            server_max_window_bits,
            client_max_window_bits,
            server_no_context_takeover,
            client_no_context_takeover,
            compress_settings,
            threshold,
            bare=False,
        )
        check_flag("require_client_max_window_bits", require_client_max_window_bits)
        if require_client_max_window_bits and client_max_window_bits is None:
            raise ValueError(
                "require_client_max_window_bits needs client_max_window_bits, not None"
            )
        self._server_client_max_window_bits = client_max_window_bits
        self._require_client_max_window_bits = require_client_max_window_bits
        super().__init__(self.name)

    @property
    def client_max_window_bits(self) -> int | None:
        """The largest window a client may compress with, or ``None``."""
        return self._server_client_max_window_bits

    @property
    def require_client_max_window_bits(self) -> bool:
        """Whether offers without ``client_max_window_bits`` are declined."""
        return self._require_client_max_window_bits

    def __repr__(self) -> str:
        return _factory_repr(self, (*_FACTORY_FIELDS, "require_client_max_window_bits"))

    def process_request_params(
        self,
        parameters: Sequence[ExtensionParameter],
        accepted_extensions: Sequence[Extension] = (),
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        """Accept one of the client's offers: build the response and the extension.

        Args:
            parameters: the offer's parameters.
            accepted_extensions: the extensions accepted so far.

        Returns:
            The response's parameters and the extension.

        Raises:
            NegotiationError: decline this offer (the next one is tried).
                RFC 7692 §7.1: "A server MUST decline an extension negotiation
                offer for this extension if" it has a parameter "not defined
                for use in an offer", "an invalid value", or "multiple
                extension parameters with the same name"; also when
                permessage-deflate was already accepted, and when
                ``require_client_max_window_bits`` is not met.
        """
        _refuse_duplicate(accepted_extensions, "declined")
        offer = _parse_params(parameters, offer=True)

        # server_no_context_takeover (RFC 7692 §7.1.1.1: the server "MAY
        # include [it] ... even if the extension negotiation offer ... didn't")
        #
        #   Config  Req.    Resp. = Result
        #   ------  ------  ----------------------------------------
        #   False   False   False
        #   False   True    True
        #   True    False   True
        #   True    True    True
        server_no_context_takeover = (
            self._server_no_context_takeover or offer.server_no_context_takeover
        )

        # client_no_context_takeover (RFC 7692 §7.1.1.2: offered, the server
        # "may either ignore the parameter or use the parameter to avoid
        # taking over the LZ77 sliding window unnecessarily"; we use it)
        #
        #   Config  Req.    Resp. = Result
        #   ------  ------  ----------------------------------------
        #   False   False   False
        #   False   True    True
        #   True    False   True
        #   True    True    True
        client_no_context_takeover = (
            self._client_no_context_takeover or offer.client_no_context_takeover
        )

        # server_max_window_bits (RFC 7692 §7.1.2.1: accepted "with the same or
        # smaller value as the offer"; MAY be sent when not offered)
        #
        #   Config  Req.    Resp.   Result
        #   ------  ------  ------  --------------------------------
        #   15      absent  absent  15
        #   15      M       M       M
        #   N<15    absent  N       N
        #   N<15    M<=N    M       M
        #   N<15    M>N     N       N
        config = self._server_max_window_bits or DEFAULT_WINDOW_BITS
        requested = _bits(offer.server_max_window_bits)
        server_max_window_bits = config if requested is None else min(requested, config)
        server_answer = (
            None
            if requested is None and server_max_window_bits == DEFAULT_WINDOW_BITS
            else server_max_window_bits
        )

        # client_max_window_bits (RFC 7692 §7.1.2.2: unoffered, "the
        # corresponding extension negotiation response to the offer MUST NOT
        # include" it; offered with a value M, the client promises M at most)
        #
        #   Config  Req.    Resp.   Result
        #   ------  ------  ------  --------------------------------
        #   N       absent  absent  15 (declined if require_client_max_window_bits)
        #   15      bare    absent  15
        #   N<15    bare    N       N
        #   N       M       L       L = min(N, M); absent when L is 15
        #   None    absent  absent  15
        #   None    bare    absent  15
        #   None    M       absent  M
        if offer.client_max_window_bits is None:
            if self._require_client_max_window_bits:
                raise NegotiationError(
                    "the offer lacks client_max_window_bits, which this server requires"
                )
            client_max_window_bits, client_answer = DEFAULT_WINDOW_BITS, None
        else:
            hint = _bits(offer.client_max_window_bits) or DEFAULT_WINDOW_BITS
            limit = self._server_client_max_window_bits
            if limit is None:
                client_max_window_bits, client_answer = hint, None
            else:
                client_max_window_bits = min(hint, limit)
                client_answer = (
                    None
                    if client_max_window_bits == DEFAULT_WINDOW_BITS
                    else client_max_window_bits
                )

        response = _Params(
            server_no_context_takeover,
            client_no_context_takeover,
            server_answer,
            client_answer,
        )
        extension = PerMessageDeflate(
            True,
            server_max_window_bits,
            client_max_window_bits,
            server_no_context_takeover,
            client_no_context_takeover,
            self._compress_settings or None,
            threshold=self._threshold,
        )
        return _build_params(response), extension


def enable_client_permessage_deflate(
    extensions: Sequence[ClientExtensionFactory] | None,
) -> list[ClientExtensionFactory]:
    """Add permessage-deflate with the default settings to a client's factories.

    If a permessage-deflate factory is already there, its settings are kept.
    The default offers ``permessage-deflate; client_max_window_bits``, as
    browsers do, so the server chooses both windows; it compresses with
    ``memLevel`` 5 and leaves messages under 32 bytes uncompressed. The
    README's "Compression" section shows the measurements behind these.

    Args:
        extensions: the client's extension factories, or ``None``.

    Returns:
        A new list of factories.
    """
    factories = list(extensions or ())
    if not any(factory.name == ClientPerMessageDeflateFactory.name for factory in factories):
        factories.append(
            ClientPerMessageDeflateFactory(
                compress_settings={"memLevel": DEFAULT_MEM_LEVEL},
                threshold=DEFAULT_THRESHOLD,
            )
        )
    return factories


def enable_server_permessage_deflate(
    extensions: Sequence[ServerExtensionFactory] | None,
) -> list[ServerExtensionFactory]:
    """Add permessage-deflate with the default settings to a server's factories.

    If a permessage-deflate factory is already there, its settings are kept.
    The default limits both windows to 4 KiB (12 bits), compresses with
    ``memLevel`` 5 and leaves messages under 32 bytes uncompressed: about
    50 KiB per busy connection instead of zlib's 300 KiB (zlib-ng, when
    installed, compresses only messages of 8 KiB or more, with a compressor
    of ~160 KiB held while they go on). The README's "Compression" section
    shows the measurements behind these.

    Args:
        extensions: the server's extension factories, or ``None``.

    Returns:
        A new list of factories.
    """
    factories = list(extensions or ())
    if not any(factory.name == ServerPerMessageDeflateFactory.name for factory in factories):
        factories.append(
            ServerPerMessageDeflateFactory(
                server_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
                client_max_window_bits=DEFAULT_MAX_WINDOW_BITS,
                compress_settings={"memLevel": DEFAULT_MEM_LEVEL},
                threshold=DEFAULT_THRESHOLD,
            )
        )
    return factories
