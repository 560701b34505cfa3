"""Tests of trio_wsext.cli.demo: what ``python -m trio_wsext demo`` prints."""

from __future__ import annotations

import io

import trio

from trio_wsext.cli.demo import DemoRow, describe_deflate, format_demo_table, run_demo
from trio_wsext.cli.samples import MESSAGE_SIZES
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate


async def test_run_demo_measures_every_size_with_and_without_compression() -> None:
    """The rows give each size's bytes; deflate saves on every size past Small."""
    out = io.StringIO()
    with trio.fail_after(20):
        rows = await run_demo(out)
    assert [(row.name, row.app_bytes) for row in rows] == list(MESSAGE_SIZES)
    # Client frames: 2-byte header (+2 past 125 bytes, +8 past 65,535) and a 4-byte mask.
    assert [row.wire_plain for row in rows] == [106, 1_308, 10_008, 80_014]
    assert all(row.wire_deflate < row.wire_plain for row in rows[1:])
    lines = out.getvalue().splitlines()
    offer = lines.index("Client 1 offers permessage-deflate. The server answers:")
    assert lines[offer + 1].startswith("  Sec-WebSocket-Extensions: permessage-deflate")
    assert lines[offer + 2] == "Negotiated, as the client applies it:"
    assert [line.split()[0] for line in lines[offer + 3 : offer + 9]] == [
        "server_max_window_bits",
        "client_max_window_bits",
        "server_no_context_takeover",
        "client_no_context_takeover",
        "compress_settings",
        "threshold",
    ]
    plain = lines.index("Client 2 offers no extension. The server answers:")
    assert lines[plain + 1] == "  (no Sec-WebSocket-Extensions header: nothing negotiated)"
    table = format_demo_table(rows).splitlines()
    start = lines.index(table[0])
    assert lines[start : start + len(table)] == table


def test_format_demo_table() -> None:
    """The table has one row per size, a total row, and the share saved."""
    rows = [DemoRow("Small", 100, 106, 106), DemoRow("Huge", 80_000, 80_014, 20_000)]
    assert format_demo_table(rows) == (
        "Bytes per message, client to server:\n"
        "Message   App bytes  Wire, plain  Wire, deflate  Saved\n"
        "------------------------------------------------------\n"
        "Small           100          106            106     0%\n"
        "Huge         80,000       80,014         20,000    75%\n"
        "Total        80,100       80,120         20,106    75%"
    )


def test_demo_row_saved_is_zero_without_bytes() -> None:
    """A row of nothing saved nothing (no division by zero)."""
    assert DemoRow("Empty", 0, 0, 0).saved == 0


def test_describe_deflate_lists_every_parameter_with_its_value() -> None:
    """Each negotiated parameter gets a line: name, value, meaning."""
    extension = PerMessageDeflate(False, 10, 12, True, False, {"memLevel": 4}, threshold=8)
    assert [line.split(None, 2)[:2] for line in describe_deflate(extension)] == [
        ["server_max_window_bits", "10"],
        ["client_max_window_bits", "12"],
        ["server_no_context_takeover", "True"],
        ["client_no_context_takeover", "False"],
        ["compress_settings", "{'memLevel':"],
        ["threshold", "8"],
    ]
