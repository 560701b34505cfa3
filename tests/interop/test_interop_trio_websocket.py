"""trio_wsext against ``trio-websocket`` (wsproto underneath, no compression), both directions.

A sanity peer: trio-websocket offers and accepts no extension, so every combination must
end up uncompressed, whatever trio_wsext offers or accepts, and still run the whole plan.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
import trio

from .peers import trio_websocket_drive, trio_websocket_server
from .plan import (
    driver_problems,
    echo_problems,
    negotiation_problems,
)
from .trio_side import EchoServer, drive, serving

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 60
COMPRESSION: Final[dict[str, dict[str, Any]]] = {"deflate": {}, "off": {"compression": None}}


@pytest.mark.parametrize("closer", ["client-closes", "server-closes"])
@pytest.mark.parametrize("compression", COMPRESSION.keys())
async def test_trio_client_runs_plan_against_trio_websocket_server(
    compression: str, closer: str
) -> None:
    """A trio_wsext client's offer is declined by trio-websocket, and the plan runs plain."""
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_websocket_server() as (url, echo):
            server_closes = closer == "server-closes"
            report, side = await drive(
                url, server_closes=server_closes, **COMPRESSION[compression]
            )
            await echo.served.wait()
    assert side is not None, report.error
    problems = driver_problems(report) + echo_problems(echo.report)
    problems += negotiation_problems(
        None, side, peer_offered=None, peer_negotiated=None, offered_known=False
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("closer", ["client-closes", "server-closes"])
@pytest.mark.parametrize("compression", COMPRESSION.keys())
async def test_trio_websocket_client_runs_plan_against_trio_server(
    compression: str, closer: str
) -> None:
    """A trio-websocket client offers nothing, gets nothing, and the plan runs plain."""
    echo = EchoServer()
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(echo.handler, **COMPRESSION[compression]) as url:
            report = await trio_websocket_drive(url, closer == "server-closes")
            echo_report, side = await echo.report()
    problems = driver_problems(report) + echo_problems(echo_report)
    problems += negotiation_problems(
        None, side, peer_offered=None, peer_negotiated=report.negotiated
    )
    assert not problems, "\n".join(problems)
