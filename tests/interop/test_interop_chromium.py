"""trio_wsext's server against a real browser: headless chromium (Debian's /usr/bin/chromium).

The page (browser/page.html) runs plan.js's driver against a trio_wsext server: text with
non-ASCII characters at every size boundary, binary, a 1 MiB compressible and a 1 MiB random
message, 100 messages back to back, each echo checked byte for byte; it reads back
``ws.extensions`` and closes with 1000, then reports over a second WebSocket.  The server
pings the browser (which cannot ping from JavaScript) and checks what it received.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest
import trio

from trio_wsext import WebSocketRequest
from trio_wsext.exceptions import WebSocketError
from trio_wsext.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from .browser import REPORT_PATH, chromium_on, page_server, page_url
from .plan import (
    DEFAULTS,
    Case,
    DriverReport,
    Effective,
    driver_problems,
    echo_problems,
    negotiation_problems,
)
from .trio_side import EchoServer, serving

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 60
# How long chromium may take to start, run the plan and report (below TEST_TIMEOUT).
BROWSER_TIMEOUT: Final = 40
# What every Chromium since 2014 offers.
CHROMIUM_OFFER: Final = "permessage-deflate; client_max_window_bits"

CASES: Final = [
    Case("defaults", expect=DEFAULTS),
    Case("defaults-server-closes", expect=DEFAULTS, server_closes=True),
    Case(
        "windows-10",
        trio={
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=10, client_max_window_bits=10
                )
            ]
        },
        expect=Effective(10, 10),
    ),
    Case(
        "windows-9-no-context-takeover",
        trio={
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=9,
                    client_max_window_bits=9,
                    server_no_context_takeover=True,
                    client_no_context_takeover=True,
                )
            ]
        },
        expect=Effective(9, 9, True, True),
    ),
    Case(
        "windows-8",
        trio={
            "extensions": [
                ServerPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=8)
            ]
        },
        expect=Effective(8, 8),
    ),
    Case("compression-off", trio={"compression": None}, expect=None),
]


class BrowserServer(EchoServer):
    """The echo server, plus ``/report`` where the page sends its JSON report."""

    def __init__(self) -> None:
        super().__init__()
        self.browser_report: dict[str, object] = {}
        self.reported = trio.Event()

    async def handler(self, request: WebSocketRequest) -> None:
        """Take the report on ``/report``; echo on any other path."""
        if request.path != REPORT_PATH:
            await super().handler(request)
            return
        ws = await request.accept()
        try:
            message = await ws.get_message()
        except WebSocketError:
            return
        self.browser_report = json.loads(message)
        self.reported.set()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_chromium_runs_plan_against_trio_server(
    case: Case, chromium: str, tmp_path: Path
) -> None:
    """Headless chromium and a trio_wsext server agree on the extension and echo the plan."""
    server = BrowserServer()
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            page_server() as page,
            serving(server.handler, **case.trio) as url,
            chromium_on(
                chromium, page_url(page, url, server_closes=case.server_closes), tmp_path
            ) as browser,
        ):
            with trio.move_on_after(BROWSER_TIMEOUT):
                await server.reported.wait()
            stderr = browser.stderr_tail()
            assert server.reported.is_set(), f"no report from chromium; its stderr: {stderr}"
            echo_report, side = await server.report()
    report = DriverReport.from_json(server.browser_report)
    problems = driver_problems(report, can_ping=False) + echo_problems(echo_report)
    problems += negotiation_problems(
        case.expect,
        side,
        peer_offered=None,
        peer_negotiated=report.negotiated,
        offered_known=False,
    )
    if side.offered != CHROMIUM_OFFER:
        problems.append(f"chromium offered {side.offered!r}, expected {CHROMIUM_OFFER!r}")
    assert not problems, "\n".join(
        [*problems, f"user agent: {server.browser_report.get('user_agent')}", stderr]
    )
