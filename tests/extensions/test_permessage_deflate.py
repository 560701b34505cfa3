"""Tests of permessage-deflate negotiation (RFC 7692 §7.1), factories and enable_* helpers.

The parametrize tables mirror, row for row, the Req./Resp./Result tables in
the comments of trio_wsext/extensions/permessage_deflate.py.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import pytest
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory as WebsocketsClientFactory,
    ServerPerMessageDeflateFactory as WebsocketsServerFactory,
)

from trio_wsext.exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
)
from trio_wsext.extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    enable_client_permessage_deflate as enable_client_from_package,
    enable_server_permessage_deflate as enable_server_from_package,
)
from trio_wsext.extensions.deflate_codec import BACKEND
from trio_wsext.extensions.permessage_deflate import (
    DEFAULT_MEM_LEVEL,
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from trio_wsext.frames import Frame, Opcode
from trio_wsext.negotiation import negotiate_client, negotiate_server

Params = list[ExtensionParameter]

SNCT: ExtensionParameter = ("server_no_context_takeover", None)
CNCT: ExtensionParameter = ("client_no_context_takeover", None)
CMWB: ExtensionParameter = ("client_max_window_bits", None)


def smwb(bits: int) -> ExtensionParameter:
    return ("server_max_window_bits", str(bits))


def cmwb(bits: int) -> ExtensionParameter:
    return ("client_max_window_bits", str(bits))


def agreed(extension: PerMessageDeflate) -> tuple[int, int, bool, bool]:
    """(server bits, client bits, server no takeover, client no takeover) of an extension."""
    return (
        extension.server_max_window_bits,
        extension.client_max_window_bits,
        extension.server_no_context_takeover,
        extension.client_no_context_takeover,
    )


# Offers. API.md: "A client built with the defaults offers
# `permessage-deflate; client_max_window_bits`".

OFFERS = [
    pytest.param({}, [CMWB], id="defaults"),
    pytest.param({"client_max_window_bits": True}, [CMWB], id="client-bare"),
    pytest.param({"client_max_window_bits": None}, [], id="client-none"),
    pytest.param({"client_max_window_bits": 10}, [cmwb(10)], id="client-10"),
    pytest.param({"server_max_window_bits": 12}, [smwb(12), CMWB], id="server-12"),
    pytest.param({"server_max_window_bits": None}, [CMWB], id="server-none"),
    pytest.param(
        {
            "server_max_window_bits": 8,
            "client_max_window_bits": 9,
            "server_no_context_takeover": True,
            "client_no_context_takeover": True,
        },
        [SNCT, CNCT, smwb(8), cmwb(9)],
        id="all-in-rfc-order",
    ),
]


@pytest.mark.parametrize(("arguments", "offer"), OFFERS)
def test_client_offers_only_what_differs_from_rfc_defaults(
    arguments: dict[str, object], offer: Params
) -> None:
    """The offer lists parameters in RFC 7692 §7.1's order and leaves out 15s."""
    factory = ClientPerMessageDeflateFactory(**arguments)  # type: ignore[arg-type]
    assert factory.get_request_params() == offer
    assert factory.parameters == offer


# Server side: one table per parameter, as in the module's comments.
# Each row: factory arguments, request, response, agreed (server bits, client
# bits, server no takeover, client no takeover).

SERVER_ROWS = [
    # server_no_context_takeover: Config / Req. / Resp. = Result
    pytest.param({}, [], [], (15, 15, False, False), id="snct-F-F"),
    pytest.param({}, [SNCT], [SNCT], (15, 15, True, False), id="snct-F-T"),
    pytest.param(
        {"server_no_context_takeover": True}, [], [SNCT], (15, 15, True, False), id="snct-T-F"
    ),
    pytest.param(
        {"server_no_context_takeover": True}, [SNCT], [SNCT], (15, 15, True, False), id="snct-T-T"
    ),
    # client_no_context_takeover: Config / Req. / Resp. = Result
    pytest.param({}, [], [], (15, 15, False, False), id="cnct-F-F"),
    pytest.param({}, [CNCT], [CNCT], (15, 15, False, True), id="cnct-F-T"),
    pytest.param(
        {"client_no_context_takeover": True}, [], [CNCT], (15, 15, False, True), id="cnct-T-F"
    ),
    pytest.param(
        {"client_no_context_takeover": True}, [CNCT], [CNCT], (15, 15, False, True), id="cnct-T-T"
    ),
    # server_max_window_bits: Config / Req. / Resp. / Result
    pytest.param({}, [], [], (15, 15, False, False), id="smwb-15-absent"),
    pytest.param({}, [smwb(10)], [smwb(10)], (10, 15, False, False), id="smwb-15-M"),
    pytest.param({}, [smwb(15)], [smwb(15)], (15, 15, False, False), id="smwb-15-M15"),
    pytest.param(
        {"server_max_window_bits": None},
        [smwb(9)],
        [smwb(9)],
        (9, 15, False, False),
        id="smwb-None-M",
    ),
    pytest.param(
        {"server_max_window_bits": 12},
        [],
        [smwb(12)],
        (12, 15, False, False),
        id="smwb-N-absent",
    ),
    pytest.param(
        {"server_max_window_bits": 12},
        [smwb(8)],
        [smwb(8)],
        (8, 15, False, False),
        id="smwb-N-M<=N",
    ),
    pytest.param(
        {"server_max_window_bits": 12},
        [smwb(14)],
        [smwb(12)],
        (12, 15, False, False),
        id="smwb-N-M>N",
    ),
    # client_max_window_bits: Config / Req. / Resp. / Result
    pytest.param(
        {"client_max_window_bits": 12}, [], [], (15, 15, False, False), id="cmwb-N-absent"
    ),
    pytest.param({}, [CMWB], [], (15, 15, False, False), id="cmwb-15-bare"),
    pytest.param(
        {"client_max_window_bits": 12},
        [CMWB],
        [cmwb(12)],
        (15, 12, False, False),
        id="cmwb-N-bare",
    ),
    pytest.param(
        {"client_max_window_bits": 12},
        [cmwb(10)],
        [cmwb(10)],
        (15, 10, False, False),
        id="cmwb-N-M<N",
    ),
    pytest.param(
        {"client_max_window_bits": 12},
        [cmwb(14)],
        [cmwb(12)],
        (15, 12, False, False),
        id="cmwb-N-M>N",
    ),
    pytest.param({}, [cmwb(15)], [], (15, 15, False, False), id="cmwb-15-M15"),
    pytest.param({}, [cmwb(8)], [cmwb(8)], (15, 8, False, False), id="cmwb-15-M"),
    pytest.param(
        {"client_max_window_bits": None}, [], [], (15, 15, False, False), id="cmwb-None-absent"
    ),
    pytest.param(
        {"client_max_window_bits": None}, [CMWB], [], (15, 15, False, False), id="cmwb-None-bare"
    ),
    pytest.param(
        {"client_max_window_bits": None}, [cmwb(9)], [], (15, 9, False, False), id="cmwb-None-M"
    ),
    # Everything at once, answered in RFC 7692 §7.1's order.
    pytest.param(
        {"server_max_window_bits": 10, "client_max_window_bits": 11},
        [cmwb(13), smwb(9), CNCT, SNCT],
        [SNCT, CNCT, smwb(9), cmwb(11)],
        (9, 11, True, True),
        id="all",
    ),
]


@pytest.mark.parametrize(("arguments", "request_params", "response", "result"), SERVER_ROWS)
def test_server_answers_offer_per_rfc_7692_tables(
    arguments: dict[str, object],
    request_params: Params,
    response: Params,
    result: tuple[int, int, bool, bool],
) -> None:
    """Each row of the server's tables: the response it sends and what it agrees to."""
    factory = ServerPerMessageDeflateFactory(**arguments)  # type: ignore[arg-type]
    answer, extension = factory.process_request_params(request_params)
    assert answer == response
    assert extension.is_server is True
    assert agreed(extension) == result


@pytest.mark.parametrize("arguments", [{}, {"client_max_window_bits": 9}, {"threshold": 3}])
def test_server_never_sends_client_max_window_bits_unoffered(
    arguments: dict[str, object],
) -> None:
    """RFC 7692 §7.1.2.2: without the offer's parameter the response "MUST NOT include" it."""
    factory = ServerPerMessageDeflateFactory(**arguments)  # type: ignore[arg-type]
    for request_params in ([], [SNCT], [smwb(10)], [CNCT, smwb(9)]):
        answer, _ = factory.process_request_params(request_params)
        assert all(name != "client_max_window_bits" for name, _ in answer)


def test_server_hands_settings_to_extension() -> None:
    """compress_settings and threshold reach the extension the server builds."""
    factory = ServerPerMessageDeflateFactory(compress_settings={"level": 1}, threshold=50)
    _, extension = factory.process_request_params([], [])
    assert (extension.compress_settings, extension.threshold) == ({"level": 1}, 50)


SERVER_DECLINES = [
    pytest.param([("x", None)], InvalidParameterName, "invalid parameter name: x", id="unknown"),
    pytest.param(
        [SNCT, SNCT],
        DuplicateParameter,
        "duplicate parameter: server_no_context_takeover",
        id="duplicate-snct",
    ),
    pytest.param(
        [smwb(9), smwb(10)],
        DuplicateParameter,
        "duplicate parameter: server_max_window_bits",
        id="duplicate-smwb",
    ),
    pytest.param(
        [CMWB, cmwb(9)],
        DuplicateParameter,
        "duplicate parameter: client_max_window_bits",
        id="duplicate-cmwb",
    ),
    pytest.param(
        [("client_no_context_takeover", "1")],
        InvalidParameterValue,
        "invalid value for parameter client_no_context_takeover: '1'",
        id="value-on-flag",
    ),
    pytest.param(
        [("server_max_window_bits", None)],
        InvalidParameterValue,
        "invalid value for parameter server_max_window_bits: None",
        id="smwb-bare",
    ),
    *(
        pytest.param(
            [(name, value)],
            InvalidParameterValue,
            f"invalid value for parameter {name}: {value!r}",
            id=f"{name}-{value or 'empty'}",
        )
        for name in ("server_max_window_bits", "client_max_window_bits")
        for value in ("7", "16", "08", "9a", "", "-9")
    ),
]


@pytest.mark.parametrize(("request_params", "error", "message"), SERVER_DECLINES)
def test_server_declines_offer_breaking_rfc_7692(
    request_params: Params, error: type[NegotiationError], message: str
) -> None:
    """RFC 7692 §7.1: a server "MUST decline" these offers; the exception names the problem."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        ServerPerMessageDeflateFactory().process_request_params(request_params)


def test_server_declines_offer_without_client_max_window_bits_when_required() -> None:
    """require_client_max_window_bits declines clients whose window cannot be limited."""
    factory = ServerPerMessageDeflateFactory(
        client_max_window_bits=10, require_client_max_window_bits=True
    )
    with pytest.raises(
        NegotiationError,
        match=r"^the offer lacks client_max_window_bits, which this server requires$",
    ):
        factory.process_request_params([SNCT])
    assert factory.process_request_params([CMWB])[0] == [cmwb(10)]


def test_server_declines_second_permessage_deflate_in_one_handshake() -> None:
    """accepted_extensions: a permessage-deflate already accepted makes this offer declined."""
    factory = ServerPerMessageDeflateFactory()
    with pytest.raises(NegotiationError, match=r"^declined a second permessage-deflate$"):
        factory.process_request_params([], [PerMessageDeflate(True)])
    other = Extension("x-other")
    assert factory.process_request_params([], [other])[0] == []


def test_server_takes_first_acceptable_of_several_offers() -> None:
    """A bad offer is declined and the next one accepted; a third alternative is skipped."""
    offers = [
        ("permessage-deflate", [smwb(16)]),
        ("permessage-deflate", [SNCT, CMWB]),
        ("permessage-deflate", []),
    ]
    response, extensions = negotiate_server([ServerPerMessageDeflateFactory()], offers)
    assert response == [("permessage-deflate", [SNCT])]
    assert len(extensions) == 1
    assert isinstance(extensions[0], PerMessageDeflate)
    assert agreed(extensions[0]) == (15, 15, True, False)


# Client side: one table per parameter. Each row: factory arguments, response,
# agreed (server bits, client bits, server no takeover, client no takeover).

CLIENT_ROWS = [
    # server_no_context_takeover: Req. / Resp. / Result
    pytest.param({}, [], (15, 15, False, False), id="snct-F-F"),
    pytest.param({}, [SNCT], (15, 15, True, False), id="snct-F-T"),
    pytest.param(
        {"server_no_context_takeover": True}, [SNCT], (15, 15, True, False), id="snct-T-T"
    ),
    # client_no_context_takeover: Req. / Resp. / Result
    pytest.param({}, [CNCT], (15, 15, False, True), id="cnct-F-T"),
    pytest.param({"client_no_context_takeover": True}, [], (15, 15, False, True), id="cnct-T-F"),
    pytest.param(
        {"client_no_context_takeover": True}, [CNCT], (15, 15, False, True), id="cnct-T-T"
    ),
    # server_max_window_bits: Req. / Resp. / Result
    pytest.param({}, [smwb(11)], (11, 15, False, False), id="smwb-absent-M"),
    pytest.param(
        {"server_max_window_bits": 12}, [smwb(12)], (12, 15, False, False), id="smwb-N-N"
    ),
    pytest.param(
        {"server_max_window_bits": 12}, [smwb(8)], (8, 15, False, False), id="smwb-N-M<N"
    ),
    # client_max_window_bits: Req. / Resp. / Result
    pytest.param({"client_max_window_bits": None}, [], (15, 15, False, False), id="cmwb-absent"),
    pytest.param({}, [], (15, 15, False, False), id="cmwb-bare-absent"),
    pytest.param({}, [cmwb(9)], (15, 9, False, False), id="cmwb-bare-M"),
    pytest.param({"client_max_window_bits": 10}, [], (15, 10, False, False), id="cmwb-N-absent"),
    pytest.param(
        {"client_max_window_bits": 10}, [cmwb(8)], (15, 8, False, False), id="cmwb-N-M<N"
    ),
    pytest.param(
        {"client_max_window_bits": 10}, [cmwb(10)], (15, 10, False, False), id="cmwb-N-N"
    ),
]


@pytest.mark.parametrize(("arguments", "response", "result"), CLIENT_ROWS)
def test_client_accepts_response_per_rfc_7692_tables(
    arguments: dict[str, object], response: Params, result: tuple[int, int, bool, bool]
) -> None:
    """Each accepting row of the client's tables: what the client agrees to."""
    factory = ClientPerMessageDeflateFactory(**arguments)  # type: ignore[arg-type]
    extension = factory.process_response_params(response)
    assert extension.is_server is False
    assert agreed(extension) == result


CLIENT_REFUSALS = [
    # Rows marked "Error" in the tables.
    pytest.param(
        {"server_no_context_takeover": True},
        [],
        NegotiationError,
        "the response lacks server_no_context_takeover, which the offer asked for",
        id="snct-T-F",
    ),
    pytest.param(
        {"server_max_window_bits": 12},
        [],
        NegotiationError,
        "the response lacks server_max_window_bits, which the offer limited to 12",
        id="smwb-N-absent",
    ),
    pytest.param(
        {"server_max_window_bits": 12},
        [smwb(13)],
        InvalidParameterValue,
        "server_max_window_bits=13 exceeds the offered 12",
        id="smwb-N-M>N",
    ),
    pytest.param(
        {"client_max_window_bits": None},
        [cmwb(10)],
        NegotiationError,
        "the response has client_max_window_bits=10, which the offer did not include",
        id="cmwb-absent-M",
    ),
    pytest.param(
        {"client_max_window_bits": 10},
        [cmwb(12)],
        InvalidParameterValue,
        "client_max_window_bits=12 exceeds the offered 10",
        id="cmwb-N-M>N",
    ),
    # RFC 7692 §7.1: parameters not defined for a response, invalid values, duplicates.
    pytest.param(
        {},
        [CMWB],
        InvalidParameterValue,
        "invalid value for parameter client_max_window_bits: None",
        id="cmwb-bare-in-response",
    ),
    pytest.param(
        {}, [("x", "1")], InvalidParameterName, "invalid parameter name: x", id="unknown"
    ),
    pytest.param(
        {},
        [CNCT, CNCT],
        DuplicateParameter,
        "duplicate parameter: client_no_context_takeover",
        id="duplicate",
    ),
    pytest.param(
        {},
        [("server_no_context_takeover", "")],
        InvalidParameterValue,
        "invalid value for parameter server_no_context_takeover: ''",
        id="value-on-flag",
    ),
    pytest.param(
        {},
        [smwb(16)],
        InvalidParameterValue,
        "invalid value for parameter server_max_window_bits: '16'",
        id="smwb-16",
    ),
    pytest.param(
        {},
        [("client_max_window_bits", "012")],
        InvalidParameterValue,
        "invalid value for parameter client_max_window_bits: '012'",
        id="cmwb-leading-zero",
    ),
]


@pytest.mark.parametrize(("arguments", "response", "error", "message"), CLIENT_REFUSALS)
def test_client_refuses_response_breaking_rfc_7692(
    arguments: dict[str, object], response: Params, error: type[NegotiationError], message: str
) -> None:
    """RFC 7692 §7.1: the client "MUST _Fail the WebSocket Connection_"; the error says why."""
    factory = ClientPerMessageDeflateFactory(**arguments)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        factory.process_response_params(response, [])


@pytest.mark.parametrize("received", range(8, 16))
@pytest.mark.parametrize("offered", range(8, 15))
@pytest.mark.parametrize("name", ["server_max_window_bits", "client_max_window_bits"])
def test_client_refuses_window_above_offer_and_accepts_up_to_it(
    name: str, offered: int, received: int
) -> None:
    """RFC 7692 §7.1.2: a response's window may equal or undercut the offer, never exceed it."""
    factory = ClientPerMessageDeflateFactory(**{name: offered})  # type: ignore[arg-type]
    if received <= offered:
        extension = factory.process_response_params([(name, str(received))])
        assert getattr(extension, name) == received
        return
    with pytest.raises(InvalidParameterValue) as info:
        factory.process_response_params([(name, str(received))])
    assert str(info.value) == f"{name}={received} exceeds the offered {offered}"
    assert (info.value.name, info.value.value) == (name, str(received))


@pytest.mark.parametrize("received", range(8, 16))
def test_client_refuses_client_window_it_did_not_offer(received: int) -> None:
    """RFC 7692 §7.1.2.2: unoffered, the response "MUST NOT include" client_max_window_bits."""
    factory = ClientPerMessageDeflateFactory(client_max_window_bits=None)
    with pytest.raises(
        NegotiationError,
        match=f"^the response has client_max_window_bits={received}, which the offer did not ",
    ):
        factory.process_response_params([cmwb(received)])


#: Window sizes a factory may be given: unset, the extremes, and values between.
FACTORY_WINDOWS: list[int | None] = [None, 8, 10, 12, 15]


@pytest.mark.parametrize("server_client_bits", FACTORY_WINDOWS)
@pytest.mark.parametrize("server_server_bits", FACTORY_WINDOWS)
def test_server_never_answers_a_window_above_the_offer(
    server_server_bits: int | None, server_client_bits: int | None
) -> None:
    """Whatever it is configured with, our server's answer is one our client accepts."""
    server_factory = ServerPerMessageDeflateFactory(server_server_bits, server_client_bits)
    offers = itertools.product(FACTORY_WINDOWS, [*FACTORY_WINDOWS, True])
    for client_arguments in offers:
        client_factory = ClientPerMessageDeflateFactory(*client_arguments)
        response, server = server_factory.process_request_params(
            client_factory.get_request_params()
        )
        assert agreed(client_factory.process_response_params(response)) == agreed(server)


def test_client_refuses_second_permessage_deflate_in_response() -> None:
    """accepted_extensions: a second permessage-deflate in the response is refused."""
    factory = ClientPerMessageDeflateFactory()
    with pytest.raises(NegotiationError, match=r"^received a second permessage-deflate$"):
        factory.process_response_params([], [PerMessageDeflate(False)])
    with pytest.raises(
        NegotiationError, match=r"^server accepted extension 'permessage-deflate' "
    ):
        negotiate_client([factory], [("permessage-deflate", []), ("permessage-deflate", [])])


# Both factories together, and the extensions they build working together.

PAIRS = [
    pytest.param({}, {}, (15, 15, False, False), id="defaults"),
    pytest.param(
        {},
        {"server_max_window_bits": 12, "client_max_window_bits": 12},
        (12, 12, False, False),
        id="server-limits",
    ),
    pytest.param(
        {"server_max_window_bits": 8, "client_max_window_bits": 8},
        {},
        (8, 8, False, False),
        id="eights",
    ),
    pytest.param(
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        {},
        (15, 15, True, True),
        id="no-takeover",
    ),
    pytest.param(
        {"client_max_window_bits": None},
        {"client_max_window_bits": 9},
        (15, 15, False, False),
        id="client-unlimitable",
    ),
]


@pytest.mark.parametrize(("client_arguments", "server_arguments", "result"), PAIRS)
def test_client_and_server_agree_and_exchange_messages(
    client_arguments: dict[str, object],
    server_arguments: dict[str, object],
    result: tuple[int, int, bool, bool],
) -> None:
    """Offer, response and acceptance give twin extensions that understand each other."""
    client_factory = ClientPerMessageDeflateFactory(**client_arguments)  # type: ignore[arg-type]
    server_factory = ServerPerMessageDeflateFactory(**server_arguments)  # type: ignore[arg-type]
    response, server = server_factory.process_request_params(client_factory.get_request_params())
    client = client_factory.process_response_params(response)
    assert agreed(client) == agreed(server) == result
    message = b'{"event":"tick","values":[1,2,3,4,5,6,7,8]}' * 40
    for _ in range(3):
        assert server.decode(client.encode(Frame(Opcode.TEXT, message))).data == message
        assert client.decode(server.encode(Frame(Opcode.TEXT, message))).data == message


WEBSOCKETS_SERVERS = [
    pytest.param({}, id="defaults"),
    pytest.param({"server_max_window_bits": 10, "client_max_window_bits": 11}, id="limits"),
    pytest.param(
        {"server_no_context_takeover": True, "client_no_context_takeover": True}, id="no-takeover"
    ),
]


@pytest.mark.parametrize("arguments", WEBSOCKETS_SERVERS)
def test_client_negotiates_with_websockets_server_factory(arguments: dict[str, object]) -> None:
    """websockets' server accepts our offer, and we accept its response."""
    ours = ClientPerMessageDeflateFactory()
    theirs = WebsocketsServerFactory(**arguments)  # type: ignore[arg-type]
    response, their_extension = theirs.process_request_params(ours.get_request_params(), [])
    extension = ours.process_response_params(response, [])
    assert extension.server_max_window_bits == their_extension.local_max_window_bits
    assert extension.client_max_window_bits == their_extension.remote_max_window_bits
    assert extension.server_no_context_takeover == their_extension.local_no_context_takeover
    assert extension.client_no_context_takeover == their_extension.remote_no_context_takeover


WEBSOCKETS_CLIENTS = [
    pytest.param({}, id="defaults"),
    pytest.param({"server_max_window_bits": 9, "client_max_window_bits": 10}, id="limits"),
    pytest.param({"client_max_window_bits": None}, id="no-client-bits"),
    pytest.param(
        {"server_no_context_takeover": True, "client_no_context_takeover": True}, id="no-takeover"
    ),
]


@pytest.mark.parametrize("arguments", WEBSOCKETS_CLIENTS)
def test_server_negotiates_with_websockets_client_factory(arguments: dict[str, object]) -> None:
    """Our server accepts websockets' offer, and websockets accepts our response."""
    theirs = WebsocketsClientFactory(**arguments)  # type: ignore[arg-type]
    ours = ServerPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=12)
    response, extension = ours.process_request_params(list(theirs.get_request_params()))
    their_extension = theirs.process_response_params(response, [])
    assert extension.server_max_window_bits == their_extension.remote_max_window_bits
    assert extension.client_max_window_bits == their_extension.local_max_window_bits
    assert extension.server_no_context_takeover == their_extension.remote_no_context_takeover
    assert extension.client_no_context_takeover == their_extension.local_no_context_takeover


# Arguments, attributes, repr.

FACTORY_ARGUMENT_ERRORS = [
    pytest.param(
        ClientPerMessageDeflateFactory,
        {"server_max_window_bits": True},
        "server_max_window_bits must be an int from 8 to 15 or None, not True",
        id="client-smwb",
    ),
    pytest.param(
        ClientPerMessageDeflateFactory,
        {"client_max_window_bits": 16},
        "client_max_window_bits must be an int from 8 to 15, True or None, not 16",
        id="client-cmwb",
    ),
    pytest.param(
        ServerPerMessageDeflateFactory,
        {"client_max_window_bits": True},
        "client_max_window_bits must be an int from 8 to 15 or None, not True",
        id="server-cmwb",
    ),
    pytest.param(
        ServerPerMessageDeflateFactory,
        {"server_no_context_takeover": None},
        "server_no_context_takeover must be a bool, not None",
        id="server-snct",
    ),
    pytest.param(
        ClientPerMessageDeflateFactory,
        {"compress_settings": {"wbits": -9}},
        "compress_settings must not set wbits: the window is negotiated "
        "(server_max_window_bits, client_max_window_bits)",
        id="client-wbits",
    ),
    pytest.param(
        ServerPerMessageDeflateFactory,
        {"threshold": True},
        "threshold must be an int >= 0, not True",
        id="server-threshold",
    ),
    pytest.param(
        ServerPerMessageDeflateFactory,
        {"require_client_max_window_bits": 1},
        "require_client_max_window_bits must be a bool, not 1",
        id="server-require-int",
    ),
    pytest.param(
        ServerPerMessageDeflateFactory,
        {"client_max_window_bits": None, "require_client_max_window_bits": True},
        "require_client_max_window_bits needs client_max_window_bits, not None",
        id="server-require-none",
    ),
]


@pytest.mark.parametrize(("factory", "arguments", "message"), FACTORY_ARGUMENT_ERRORS)
def test_factory_refuses_bad_argument_naming_it(
    factory: type[ClientPerMessageDeflateFactory | ServerPerMessageDeflateFactory],
    arguments: dict[str, object],
    message: str,
) -> None:
    """Each bad argument raises ValueError with a message that names it."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        factory(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "arguments", "message"),
    [
        (ClientPerMessageDeflateFactory, (False, True, 12, 12), "server_max_window_bits"),
        (ServerPerMessageDeflateFactory, (True, False, 12), "server_max_window_bits"),
        (ClientPerMessageDeflateFactory, (12, 12, 12), "server_no_context_takeover"),
    ],
    ids=["client-websockets-order", "server-websockets-order", "flag-as-bits"],
)
def test_factory_refuses_websockets_positional_order(
    factory: type[ClientPerMessageDeflateFactory | ServerPerMessageDeflateFactory],
    arguments: Sequence[object],
    message: str,
) -> None:
    """websockets puts server_no_context_takeover first: ported code fails, never misbinds."""
    with pytest.raises(ValueError, match=f"^{message} must be "):
        factory(*arguments)  # type: ignore[arg-type]


def test_factories_read_back_arguments_and_repr_rebuilds_them() -> None:
    """Attributes are named as the arguments, read-only; repr is the constructor call."""
    client = ClientPerMessageDeflateFactory(10, True, False, True, {"level": 1}, threshold=5)
    assert (client.server_max_window_bits, client.client_max_window_bits) == (10, True)
    assert (client.server_no_context_takeover, client.client_no_context_takeover) == (False, True)
    assert (client.compress_settings, client.threshold) == ({"level": 1}, 5)
    assert repr(client) == (
        "ClientPerMessageDeflateFactory(server_max_window_bits=10, client_max_window_bits=True, "
        "server_no_context_takeover=False, client_no_context_takeover=True, "
        "compress_settings={'level': 1}, threshold=5)"
    )
    server = ServerPerMessageDeflateFactory(None, 9, require_client_max_window_bits=True)
    assert (server.server_max_window_bits, server.client_max_window_bits) == (None, 9)
    assert server.require_client_max_window_bits is True
    assert server.compress_settings is None
    assert repr(server) == (
        "ServerPerMessageDeflateFactory(server_max_window_bits=None, client_max_window_bits=9, "
        "server_no_context_takeover=False, client_no_context_takeover=False, "
        "compress_settings=None, threshold=0, require_client_max_window_bits=True)"
    )
    for factory in (client, server):
        assert repr(eval(repr(factory))) == repr(factory)
    with pytest.raises(AttributeError):
        server.client_max_window_bits = 10  # type: ignore[misc]


def test_factories_have_name_as_class_attribute() -> None:
    """Code written for websockets reads ClientPerMessageDeflateFactory.name."""
    assert ClientPerMessageDeflateFactory.name == "permessage-deflate"
    assert ServerPerMessageDeflateFactory.name == "permessage-deflate"
    assert ClientPerMessageDeflateFactory().name == "permessage-deflate"


# enable_*_permessage_deflate.


def test_default_mem_level_is_5_whatever_the_backend() -> None:
    """Messages under 8 KiB always go to zlib, whose state memLevel 5 keeps small."""
    assert BACKEND in {"zlib", "zlib-ng"}
    assert DEFAULT_MEM_LEVEL == 5


def test_enable_client_adds_default_factory_offering_bare_client_window() -> None:
    """The default client factory offers what browsers offer, with the default memLevel, 32."""
    (factory,) = enable_client_permessage_deflate(None)
    assert isinstance(factory, ClientPerMessageDeflateFactory)
    assert factory.get_request_params() == [CMWB]
    assert (factory.compress_settings, factory.threshold) == ({"memLevel": DEFAULT_MEM_LEVEL}, 32)


def test_enable_server_adds_default_factory_limiting_windows_to_12_bits() -> None:
    """The default server factory limits both windows to 4 KiB, default memLevel, threshold 32."""
    (factory,) = enable_server_permessage_deflate([])
    assert isinstance(factory, ServerPerMessageDeflateFactory)
    assert (factory.server_max_window_bits, factory.client_max_window_bits) == (12, 12)
    assert (factory.compress_settings, factory.threshold) == ({"memLevel": DEFAULT_MEM_LEVEL}, 32)
    answer, extension = factory.process_request_params([CMWB])
    assert answer == [smwb(12), cmwb(12)]
    assert agreed(extension) == (12, 12, False, False)


class _Named(ClientExtensionFactory):
    """Any factory named permessage-deflate counts as one already there."""

    def __init__(self) -> None:
        super().__init__("permessage-deflate")

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        return Extension(self.name)


def test_enable_keeps_existing_factory_and_returns_new_list() -> None:
    """A factory already there keeps its settings; the caller's sequence is not changed."""
    mine = ClientPerMessageDeflateFactory(client_max_window_bits=9)
    existing = (mine,)
    assert enable_client_permessage_deflate(existing) == [mine]
    custom = [_Named()]
    result = enable_client_permessage_deflate(custom)
    assert result == custom
    assert result is not custom
    server = ServerPerMessageDeflateFactory(threshold=0)
    assert enable_server_permessage_deflate([server]) == [server]


def test_enable_appends_after_other_extensions() -> None:
    """Other factories keep their place; permessage-deflate goes last."""

    class Other(ClientExtensionFactory):
        def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
            return Extension("x-other")

    other = Other("x-other")
    result = enable_client_permessage_deflate([other])
    assert result[0] is other
    assert isinstance(result[1], ClientPerMessageDeflateFactory)


def test_enable_functions_are_also_in_trio_wsext_extensions() -> None:
    """API.md: enable_*_permessage_deflate are importable from trio_wsext.extensions too."""
    assert enable_client_from_package is enable_client_permessage_deflate
    assert enable_server_from_package is enable_server_permessage_deflate
