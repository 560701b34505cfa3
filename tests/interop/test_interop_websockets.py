"""trio_wsext against the ``websockets`` library (its sync client and server, in threads).

Each case runs the whole plan (plan.py) over one connection: every size boundary as text and
binary, 1 MiB compressible, 100 messages back to back, a ping each way, a close with 1000.
The cases are websockets' defaults, permessage-deflate settings asked for by either side
(small windows, no context takeover on either side and both), and compression off on either
side.
"""

from __future__ import annotations

from typing import Final

import pytest
import trio
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory as PeerClientDeflate,
    ServerPerMessageDeflateFactory as PeerServerDeflate,
)

from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

from .peers import PEER_TIMEOUT, websockets_drive, websockets_server
from .plan import (
    Case,
    Effective,
    driver_problems,
    echo_problems,
    negotiation_problems,
)
from .trio_side import EchoServer, drive, serving

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 60


# trio_wsext client -> websockets server.  The trio side uses API.md's default factory
# (which offers "permessage-deflate; client_max_window_bits") where the peer sets the terms,
# so that what is negotiated follows from websockets' documented rules.
SERVER_CASES: Final = [
    Case("defaults"),
    Case("defaults-server-closes", server_closes=True),
    Case(
        "peer-windows-9",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer={
            "extensions": [PeerServerDeflate(server_max_window_bits=9, client_max_window_bits=9)]
        },
        expect=Effective(9, 9),
    ),
    Case(
        "peer-windows-12-10",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer={
            "extensions": [PeerServerDeflate(server_max_window_bits=12, client_max_window_bits=10)]
        },
        expect=Effective(12, 10),
    ),
    Case(
        "trio-asks-windows-10",
        trio={
            "extensions": [
                ClientPerMessageDeflateFactory(
                    server_max_window_bits=10, client_max_window_bits=10
                )
            ]
        },
        peer={"extensions": [PeerServerDeflate()]},
        expect=Effective(10, 10),
    ),
    Case(
        "trio-asks-server-no-context-takeover",
        trio={"extensions": [ClientPerMessageDeflateFactory(server_no_context_takeover=True)]},
        peer={"extensions": [PeerServerDeflate()]},
        expect=Effective(server_no_context_takeover=True),
    ),
    Case(
        "peer-client-no-context-takeover",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer={"extensions": [PeerServerDeflate(client_no_context_takeover=True)]},
        expect=Effective(client_no_context_takeover=True),
    ),
    Case(
        "both-no-context-takeover",
        trio={
            "extensions": [
                ClientPerMessageDeflateFactory(
                    server_no_context_takeover=True, client_no_context_takeover=True
                )
            ]
        },
        peer={"extensions": [PeerServerDeflate(server_max_window_bits=10)]},
        expect=Effective(10, 15, True, True),
    ),
    # websockets inflates with a true 256-byte window (wbits=-8): trio_wsext's deflater
    # (zlib's 9, distances <= 250) must stay inside it across the 100-message run.
    Case(
        "trio-asks-client-window-8",
        trio={"extensions": [ClientPerMessageDeflateFactory(client_max_window_bits=8)]},
        peer={"extensions": [PeerServerDeflate()]},
        expect=Effective(15, 8),
    ),
    Case("trio-compression-off", trio={"compression": None}, expect=None),
    Case("peer-compression-off", peer={"compression": None}, expect=None),
]

# websockets client -> trio_wsext server.
CLIENT_CASES: Final = [
    Case("defaults"),
    Case("defaults-server-closes", server_closes=True),
    Case(
        "trio-windows-9",
        trio={
            "extensions": [
                ServerPerMessageDeflateFactory(server_max_window_bits=9, client_max_window_bits=9)
            ]
        },
        peer={"extensions": [PeerClientDeflate()]},
        expect=Effective(9, 9),
    ),
    Case(
        "trio-windows-12-10",
        trio={
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12, client_max_window_bits=10
                )
            ]
        },
        peer={"extensions": [PeerClientDeflate()]},
        expect=Effective(12, 10),
    ),
    Case(
        "peer-asks-windows-10",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer={
            "extensions": [PeerClientDeflate(server_max_window_bits=10, client_max_window_bits=10)]
        },
        expect=Effective(10, 10),
    ),
    Case(
        "peer-asks-server-no-context-takeover",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer={"extensions": [PeerClientDeflate(server_no_context_takeover=True)]},
        expect=Effective(server_no_context_takeover=True),
    ),
    Case(
        "trio-client-no-context-takeover",
        trio={"extensions": [ServerPerMessageDeflateFactory(client_no_context_takeover=True)]},
        peer={"extensions": [PeerClientDeflate()]},
        expect=Effective(client_no_context_takeover=True),
    ),
    Case(
        "both-no-context-takeover",
        trio={
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True, client_no_context_takeover=True
                )
            ]
        },
        peer={"extensions": [PeerClientDeflate(client_max_window_bits=10)]},
        expect=Effective(15, 10, True, True),
    ),
    Case(
        "peer-asks-server-window-8",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer={"extensions": [PeerClientDeflate(server_max_window_bits=8)]},
        expect=Effective(8, 15),
    ),
    Case("trio-compression-off", trio={"compression": None}, expect=None),
    Case("peer-compression-off", peer={"compression": None}, expect=None),
]


@pytest.mark.parametrize("case", SERVER_CASES, ids=[case.id for case in SERVER_CASES])
async def test_trio_client_runs_plan_against_websockets_server(case: Case) -> None:
    """A trio_wsext client and a websockets server agree on the extension and echo the plan."""
    with trio.fail_after(TEST_TIMEOUT):
        async with websockets_server(case.peer) as (url, echo):
            report, side = await drive(url, server_closes=case.server_closes, **case.trio)
            await trio.to_thread.run_sync(echo.served.wait, PEER_TIMEOUT)
    assert side is not None, report.error
    problems = driver_problems(report) + echo_problems(echo.report)
    problems += negotiation_problems(
        case.expect, side, peer_offered=echo.report.offered, peer_negotiated=echo.report.negotiated
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CLIENT_CASES, ids=[case.id for case in CLIENT_CASES])
async def test_websockets_client_runs_plan_against_trio_server(case: Case) -> None:
    """A websockets client and a trio_wsext server agree on the extension and echo the plan."""
    echo = EchoServer()
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(echo.handler, **case.trio) as url:
            report = await trio.to_thread.run_sync(
                websockets_drive, url, case.peer, case.server_closes
            )
            echo_report, side = await echo.report()
    problems = driver_problems(report) + echo_problems(echo_report)
    problems += negotiation_problems(
        case.expect, side, peer_offered=report.offered, peer_negotiated=report.negotiated
    )
    assert not problems, "\n".join(problems)
