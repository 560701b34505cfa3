"""Headless chromium as a peer: a tiny HTTP server for its page, and the browser itself.

Strategy: the test serves ``browser/page.html`` and ``node/plan.js`` over plain HTTP on
127.0.0.1 from a trio task of its own, and starts chromium on that page with the WebSocket
URLs in the query string.  The page runs plan.js's driver and sends its report over a second
WebSocket to ``/report``, so no devtools protocol is needed.  chromium gets a fresh profile,
no background networking, and a host resolver that maps every name except 127.0.0.1 to
nothing: nothing it does can reach beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import functools
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import trio

from .processes import NODE_DIR, Child, spawn

PAGE: Final = Path(__file__).parent / "browser" / "page.html"
FILES: Final = {
    "/": (PAGE, "text/html; charset=utf-8"),
    "/plan.js": (NODE_DIR / "plan.js", "text/javascript; charset=utf-8"),
}
# A request head longer than this is refused; the browser's are well under 2 KiB.
MAX_REQUEST_HEAD: Final = 16384
REPORT_PATH: Final = "/report"
# The flags of the brief (issue 4): headless, no sandbox (root), no GPU, no QUIC, nothing
# fetched in the background, plus a resolver that resolves no name but 127.0.0.1.
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _serve_file(stream: trio.SocketStream) -> None:
    """Answer one GET with a file of FILES (or 404/400), then close."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < MAX_REQUEST_HEAD:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return
        head += chunk
    method, _, rest = head.partition(b"\r\n")[0].decode("latin-1").partition(" ")
    path = urllib.parse.urlsplit(rest.partition(" ")[0]).path
    if method != "GET" or b"\r\n\r\n" not in head:
        answer = _response("400 Bad Request", "text/plain", b"GET only\n")
    elif path in FILES:
        file, content_type = FILES[path]
        answer = _response("200 OK", content_type, file.read_bytes())
    else:
        answer = _response("404 Not Found", "text/plain", b"not found\n")
    with contextlib.suppress(trio.BrokenResourceError):  # a browser may give up early
        await stream.send_all(answer)
    await stream.aclose()


@asynccontextmanager
async def page_server() -> AsyncIterator[str]:
    """Serve the page on 127.0.0.1 port 0; yield its ``http://`` URL."""
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, _serve_file, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}/"
        nursery.cancel_scope.cancel()


def page_url(page: str, ws_base: str, *, server_closes: bool = False) -> str:
    """Return the page's URL that drives ``ws_base + "echo"`` and reports to ``/report``.

    With ``server_closes``, the page asks the server to close instead of closing.
    """
    query = urllib.parse.urlencode(
        {
            "ws": urllib.parse.urljoin(ws_base, "/echo"),
            "report": urllib.parse.urljoin(ws_base, REPORT_PATH),
            "close": "server" if server_closes else "client",
        }
    )
    return f"{page}?{query}"


@asynccontextmanager
async def chromium_on(chromium: str, url: str, tmp_path: Path) -> AsyncIterator[Child]:
    """Run headless chromium on ``url`` with a fresh profile; kill it on exit."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    argv = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url]
    async with spawn(argv, cwd=tmp_path, stderr_path=tmp_path / "chromium.stderr") as child:
        yield child
