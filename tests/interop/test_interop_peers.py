"""The peers among themselves, without trio_wsext: proof that the peer side works alone.

If one of these fails, the trouble is in the test's peers (or their versions), not in
trio_wsext; the matrix in the other test_interop_* modules depends on them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import pytest
import trio

from .browser import chromium_on, page_server, page_url
from .peers import (
    trio_websocket_drive,
    trio_websocket_server,
    websockets_drive,
    websockets_server,
)
from .plan import DriverReport, EchoReport, driver_problems, echo_problems
from .processes import NODE_DIR, spawn

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 60
# How long chromium may take to run the plan and report (below TEST_TIMEOUT).
BROWSER_TIMEOUT: Final = 40
NODE_DEFLATE: Final = {"perMessageDeflate": {"threshold": 0}}
CLOSERS: Final = {"client-closes": False, "server-closes": True}
closers = pytest.mark.parametrize("closer", CLOSERS)


def _problems(report: DriverReport, echo: EchoReport) -> list[str]:
    problems = driver_problems(report) + echo_problems(echo)
    if report.negotiated != echo.negotiated:
        problems.append(f"the client saw {report.negotiated!r}, the server {echo.negotiated!r}")
    return problems


async def test_node_client_and_server_pass_the_plan_together(node: str, tmp_path: Path) -> None:
    """Node's client and server run the whole plan with each other: the peer side alone."""
    options = json.dumps(
        {
            "perMessageDeflate": {
                "threshold": 0,
                "serverMaxWindowBits": 10,
                "clientNoContextTakeover": True,
            }
        }
    )
    with trio.fail_after(TEST_TIMEOUT):
        server_argv = [node, "echo_server.js", options]
        async with spawn(server_argv, cwd=NODE_DIR, stderr_path=tmp_path / "server") as server:
            port = (await server.receive_json())["port"]
            client_argv = [node, "client.js", f"ws://127.0.0.1:{port}/", options]
            async with spawn(client_argv, cwd=NODE_DIR, stderr_path=tmp_path / "client") as client:
                report = DriverReport.from_json(await client.receive_report())
            peer = EchoReport.from_json(await server.receive_report())
    assert driver_problems(report) + echo_problems(peer) == []
    assert (report.negotiated, peer.negotiated) == (
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
    ) * 2


@closers
async def test_node_client_runs_plan_against_websockets_server(
    closer: str, node: str, tmp_path: Path
) -> None:
    """Node's client and the websockets server run the plan, compressed, with each other."""
    with trio.fail_after(TEST_TIMEOUT):
        async with websockets_server({}) as (url, echo):
            options = {**NODE_DEFLATE, "serverCloses": CLOSERS[closer]}
            argv = [node, "client.js", url, json.dumps(options)]
            async with spawn(argv, cwd=NODE_DIR, stderr_path=tmp_path / "client") as client:
                report = DriverReport.from_json(await client.receive_report())
            await trio.to_thread.run_sync(echo.served.wait, TEST_TIMEOUT)
    assert _problems(report, echo.report) == []
    assert report.negotiated == (
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    )


@closers
async def test_websockets_client_runs_plan_against_node_server(
    closer: str, node: str, tmp_path: Path
) -> None:
    """The websockets client and Node's server run the plan, compressed, with each other."""
    argv = [node, "echo_server.js", json.dumps(NODE_DEFLATE)]
    with trio.fail_after(TEST_TIMEOUT):
        async with spawn(argv, cwd=NODE_DIR, stderr_path=tmp_path / "server") as server:
            port = (await server.receive_json())["port"]
            url = f"ws://127.0.0.1:{port}/"
            report = await trio.to_thread.run_sync(websockets_drive, url, {}, CLOSERS[closer])
            echo = EchoReport.from_json(await server.receive_report())
    assert _problems(report, echo) == []
    assert report.negotiated == "permessage-deflate"


@closers
async def test_trio_websocket_client_runs_plan_against_websockets_server(closer: str) -> None:
    """trio-websocket's client and the websockets server run the plan, uncompressed."""
    with trio.fail_after(TEST_TIMEOUT):
        async with websockets_server({}) as (url, echo):
            report = await trio_websocket_drive(url, CLOSERS[closer])
            await trio.to_thread.run_sync(echo.served.wait, TEST_TIMEOUT)
    assert _problems(report, echo.report) == []
    assert report.negotiated is None


@closers
async def test_websockets_client_runs_plan_against_trio_websocket_server(closer: str) -> None:
    """The websockets client and trio-websocket's server run the plan, uncompressed."""
    with trio.fail_after(TEST_TIMEOUT):
        async with trio_websocket_server() as (url, echo):
            report = await trio.to_thread.run_sync(websockets_drive, url, {}, CLOSERS[closer])
            await echo.served.wait()
    assert _problems(report, echo.report) == []
    assert (report.offered, report.negotiated) == (
        "permessage-deflate; client_max_window_bits",
        None,
    )


@closers
async def test_chromium_runs_plan_against_websockets_server(
    closer: str, chromium: str, tmp_path: Path
) -> None:
    """Headless chromium runs the plan against the websockets server and reports back."""
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            page_server() as page,
            websockets_server({}) as (url, echo),
            chromium_on(
                chromium, page_url(page, url, server_closes=CLOSERS[closer]), tmp_path
            ) as browser,
        ):
            reported = await trio.to_thread.run_sync(echo.browser_reported.wait, BROWSER_TIMEOUT)
            stderr = browser.stderr_tail()
    assert reported, f"no report from chromium; its stderr: {stderr}"
    report = DriverReport.from_json(echo.browser_report)
    assert driver_problems(report, can_ping=False) + echo_problems(echo.report) == []
    assert (
        report.negotiated
        == echo.report.negotiated
        == ("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12")
    )
    assert "Chrome/" in echo.browser_report["user_agent"]
