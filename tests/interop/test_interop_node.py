"""trio_wsext against Node's ``ws`` 8 (node/echo_server.js and node/client.js), both ways.

Each case spawns one Node process on 127.0.0.1 port 0 and runs the whole plan (plan.py, with
its twin node/plan.js) over one connection: every size boundary as text and binary, 1 MiB
compressible, 100 messages back to back, a ping each way, a close with 1000.  The cases are
ws's perMessageDeflate options: its defaults (``threshold: 1024``, so short messages go
uncompressed beside compressed ones), ``threshold: 0``, ``serverNoContextTakeover``,
``clientNoContextTakeover``, ``serverMaxWindowBits``, ``clientMaxWindowBits``, all of them
at once, settings asked for by trio_wsext, and compression off on either side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import pytest
import trio

from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

from .plan import (
    Case,
    DriverReport,
    EchoReport,
    Effective,
    driver_problems,
    echo_problems,
    negotiation_problems,
)
from .processes import NODE_DIR, spawn
from .trio_side import EchoServer, drive, serving

pytestmark = pytest.mark.interop

TEST_TIMEOUT: Final = 60


def _deflate(**options: Any) -> dict[str, Any]:
    """Return the Node scripts' options with ws's perMessageDeflate set to ``options``."""
    return {"perMessageDeflate": {"threshold": 0, **options}}


# trio_wsext client -> Node server.  The trio side uses API.md's default factory (which
# offers "permessage-deflate; client_max_window_bits") where Node sets the terms.
SERVER_CASES: Final = [
    Case("defaults", peer={"perMessageDeflate": True}),
    Case("defaults-server-closes", peer={"perMessageDeflate": True}, server_closes=True),
    Case(
        "threshold-0",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(),
        expect=Effective(),
    ),
    Case(
        "serverNoContextTakeover",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(serverNoContextTakeover=True),
        expect=Effective(server_no_context_takeover=True),
    ),
    Case(
        "clientNoContextTakeover",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(clientNoContextTakeover=True),
        expect=Effective(client_no_context_takeover=True),
    ),
    Case(
        "serverMaxWindowBits-10",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(serverMaxWindowBits=10),
        expect=Effective(10, 15),
    ),
    Case(
        "clientMaxWindowBits-9",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(clientMaxWindowBits=9),
        expect=Effective(15, 9),
    ),
    Case(
        "all-options-12",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(
            serverNoContextTakeover=True,
            clientNoContextTakeover=True,
            serverMaxWindowBits=12,
            clientMaxWindowBits=12,
        ),
        expect=Effective(12, 12, True, True),
    ),
    Case(
        "trio-asks-everything",
        trio={
            "extensions": [
                ClientPerMessageDeflateFactory(
                    server_max_window_bits=10,
                    client_max_window_bits=10,
                    server_no_context_takeover=True,
                    client_no_context_takeover=True,
                )
            ]
        },
        peer=_deflate(),
        expect=Effective(10, 10, True, True),
    ),
    Case(
        "windowBits-8",
        trio={"extensions": [ClientPerMessageDeflateFactory()]},
        peer=_deflate(serverMaxWindowBits=8, clientMaxWindowBits=8),
        expect=Effective(8, 8),
    ),
    Case("node-compression-off", peer={"perMessageDeflate": False}, expect=None),
    Case("trio-compression-off", trio={"compression": None}, peer=_deflate(), expect=None),
]

# Node client -> trio_wsext server.  The trio side uses API.md's default server factory where
# Node asks for the terms.
CLIENT_CASES: Final = [
    Case("defaults", peer={"perMessageDeflate": True}),
    Case("defaults-server-closes", peer={"perMessageDeflate": True}, server_closes=True),
    Case(
        "threshold-0",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(),
        expect=Effective(),
    ),
    Case(
        "serverNoContextTakeover",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(serverNoContextTakeover=True),
        expect=Effective(server_no_context_takeover=True),
    ),
    Case(
        "clientNoContextTakeover",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(clientNoContextTakeover=True),
        expect=Effective(client_no_context_takeover=True),
    ),
    Case(
        "serverMaxWindowBits-10",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(serverMaxWindowBits=10),
        expect=Effective(10, 15),
    ),
    Case(
        "clientMaxWindowBits-9",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(clientMaxWindowBits=9),
        expect=Effective(15, 9),
    ),
    Case(
        "all-options-12",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(
            serverNoContextTakeover=True,
            clientNoContextTakeover=True,
            serverMaxWindowBits=12,
            clientMaxWindowBits=12,
        ),
        expect=Effective(12, 12, True, True),
    ),
    Case(
        "trio-sets-everything",
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
        peer=_deflate(),
        expect=Effective(9, 9, True, True),
    ),
    Case(
        "windowBits-8",
        trio={"extensions": [ServerPerMessageDeflateFactory()]},
        peer=_deflate(serverMaxWindowBits=8, clientMaxWindowBits=8),
        expect=Effective(8, 8),
    ),
    Case("node-compression-off", peer={"perMessageDeflate": False}, expect=None),
    Case("trio-compression-off", trio={"compression": None}, peer=_deflate(), expect=None),
]


@pytest.mark.parametrize("case", SERVER_CASES, ids=[case.id for case in SERVER_CASES])
async def test_trio_client_runs_plan_against_node_server(
    case: Case, node: str, tmp_path: Path
) -> None:
    """A trio_wsext client and a Node ws server agree on the extension and echo the plan."""
    argv = [node, "echo_server.js", json.dumps(case.peer)]
    with trio.fail_after(TEST_TIMEOUT):
        async with spawn(argv, cwd=NODE_DIR, stderr_path=tmp_path / "node.stderr") as child:
            port = (await child.receive_json())["port"]
            url = f"ws://127.0.0.1:{port}/"
            report, side = await drive(url, server_closes=case.server_closes, **case.trio)
            peer = EchoReport.from_json(await child.receive_report())
            stderr = child.stderr_tail()
    assert side is not None, report.error
    problems = driver_problems(report) + echo_problems(peer)
    problems += negotiation_problems(
        case.expect, side, peer_offered=peer.offered, peer_negotiated=peer.negotiated
    )
    assert not problems, "\n".join([*problems, f"node's stderr: {stderr}"])


@pytest.mark.parametrize("case", CLIENT_CASES, ids=[case.id for case in CLIENT_CASES])
async def test_node_client_runs_plan_against_trio_server(
    case: Case, node: str, tmp_path: Path
) -> None:
    """A Node ws client and a trio_wsext server agree on the extension and echo the plan."""
    echo = EchoServer()
    with trio.fail_after(TEST_TIMEOUT):
        async with serving(echo.handler, **case.trio) as url:
            options = {**case.peer, "serverCloses": case.server_closes}
            argv = [node, "client.js", url, json.dumps(options)]
            async with spawn(argv, cwd=NODE_DIR, stderr_path=tmp_path / "node.stderr") as child:
                report = DriverReport.from_json(await child.receive_report())
                stderr = child.stderr_tail()
            echo_report, side = await echo.report()
    problems = driver_problems(report) + echo_problems(echo_report)
    problems += negotiation_problems(
        case.expect,
        side,
        peer_offered=None,
        peer_negotiated=report.negotiated,
        offered_known=False,
    )
    assert not problems, "\n".join([*problems, f"node's stderr: {stderr}"])
