"""The server's HTTP/2 side: many WebSocket requests over one connection (:rfc:`8441`).

Strategy: :class:`~trio_wsext.server.WebSocketServer` reads the first bytes
of each connection; when ALPN chose ``h2`` or the bytes are HTTP/2's preface
(:mod:`~trio_wsext.http2.selection`), it calls :func:`serve_http2` instead of
reading an HTTP/1.1 request. That runs an
:class:`~trio_wsext.http2.connection.Http2Connection` and, for each request
it receives, either

- a valid extended CONNECT (:func:`~trio_wsext.http2.handshake.check_request`):
  ``run_request``, the server's own code that makes a
  :class:`~trio_wsext.server.WebSocketRequest` and runs the handler, exactly
  as for HTTP/1.1, with an :class:`Http2ServerHandshake` to answer it;
- a plain ``GET``/``HEAD`` for a path of ``Http2Options.static``: that answer;
- anything else: its HTTP error (405 for another method, 400, 403, 431 ...)
  with a one-line reason,

each in a task of its own, beside the others. The connection ends when the
client goes away and its last stream has ended, when the server shuts down
(:meth:`~trio_wsext.http2.connection.Http2Connection.go_away`, then the
WebSockets close with 1001), or after ``idle_timeout`` without a stream.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableSet, Sequence
from typing import Final, final

import trio

from ..extensions.base import Extension, ServerExtensionFactory
from ..handshake import ExtraHeaders, HandshakeRequest
from .connection import Headers, Http2Connection
from .handshake import Http2Refusal, accept_headers, check_request, reject_headers, request_target
from .settings import Http2Options, StaticResponse
from .streams import Http2Stream

__all__ = ["Http2ServerHandshake", "RunRequest", "serve_http2"]

logger = logging.getLogger("trio_wsext.server")

#: What runs one accepted-for-checking request: the server's handler call.
RunRequest = Callable[
    [Http2Stream, "Http2ServerHandshake", HandshakeRequest, str], Awaitable[None]
]

#: Seconds an error or static answer may take to go out (a client that does
#: not read cannot hold its task longer).
ANSWER_TIMEOUT: Final = 10.0


@final
class Http2ServerHandshake:
    """Answers one extended CONNECT as ``ServerHandshake`` answers an Upgrade.

    :class:`~trio_wsext.server.WebSocketRequest` calls :meth:`accept` or
    :meth:`reject` and then writes the bytes they return to the stream: here
    the HEADERS frame is queued on the connection at once, and the bytes
    returned are the body (none for ``accept``), which go out as DATA.
    """

    def __init__(self, stream: Http2Stream) -> None:
        self._stream = stream

    def _send_headers(self, headers: Headers, *, end_stream: bool = False) -> None:
        try:
            self._stream._connection.send_headers(
                self._stream.stream_id, headers, end_stream=end_stream
            )
        except trio.BrokenResourceError as exc:
            # The next write to the stream raises it, where the request expects it.
            self._stream._on_lost(exc)

    def accept(
        self,
        request: HandshakeRequest,
        *,
        subprotocol: str | None = None,
        extra_headers: ExtraHeaders = None,
        extensions: Sequence[ServerExtensionFactory] | None = None,
    ) -> tuple[bytes, list[Extension], list[tuple[bytes, bytes]]]:
        """Answer ``:status 200`` with the negotiated subprotocol and extensions.

        Returns:
            No bytes (the answer is the HEADERS frame, queued), the
            extensions to run, and the response's headers (no ``:status``).

        Raises:
            ValueError: the subprotocol was not offered or a header is
                invalid (nothing is sent).
        """
        headers, active = accept_headers(
            request,
            subprotocol=subprotocol,
            extra_headers=extra_headers,
            extensions=extensions or (),
        )
        self._send_headers(headers)
        return b"", active, [(n, v) for n, v in headers if not n.startswith(b":")]

    def reject(
        self,
        status_code: int,
        *,
        extra_headers: ExtraHeaders = None,
        body: bytes | None = None,
    ) -> bytes:
        """Answer ``status_code``; return the body, to send before END_STREAM.

        Raises:
            ValueError: the status is not 200-599 or a header is invalid
                (nothing is sent).
        """
        body = body or b""
        self._send_headers(reject_headers(status_code, extra_headers, body))
        return body


async def _answer(stream: Http2Stream, headers: Headers, body: bytes, log_name: str) -> None:
    """Send a whole response (HEADERS, DATA within the windows, END_STREAM), then close."""
    try:
        with trio.move_on_after(ANSWER_TIMEOUT):
            stream._connection.send_headers(stream.stream_id, headers, end_stream=not body)
            stream._local_ended = not body
            if body:
                await stream.send_all(body)
                await stream.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        logger.debug("%s: client went away before its answer was sent", log_name)
    finally:
        await stream.aclose()


def _static_headers(response: StaticResponse) -> Headers:
    return [
        (b":status", str(response.status).encode("ascii")),
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]


async def serve_http2(
    stream: trio.abc.Stream,
    initial_data: bytes,
    *,
    options: Http2Options,
    run_request: RunRequest,
    log_name: str,
    origins: frozenset[str | None] | None = None,
    max_header_bytes: int = 16384,
    max_header_count: int = 128,
    idle_timeout: float | None = 10.0,
    connections: MutableSet[Http2Connection] | None = None,
    going_away: bool = False,
) -> None:
    """Serve WebSocket requests over one HTTP/2 connection until it ends.

    Args:
        stream: the connection (TLS after ALPN chose ``h2``, or cleartext).
        initial_data: what the server read already (the preface, if it sniffed it).
        options: the HTTP/2 settings and static answers.
        run_request: called in a task of its own for each valid extended
            CONNECT, with the stream, an :class:`Http2ServerHandshake` to
            answer it, the request, and a log name.
        log_name: the connection's log name (streams add `` stream N``).
        origins: the allowed ``Origin`` values (``None``: any).
        max_header_bytes: the most header bytes of one request (431 beyond).
        max_header_count: the most header fields of one request (431 beyond).
        idle_timeout: seconds without a stream before the connection goes away.
        connections: a set to hold the connection while it runs (for the
            server's shutdown, which calls ``go_away`` on each).
        going_away: send GOAWAY at once (the server is shutting down).

    Returns when the connection and every request task have ended; the
    caller closes nothing (the socket is closed by then). Cancellation
    breaks every stream and closes the socket.
    """
    async with trio.open_nursery() as nursery:

        def on_request(h2_stream: Http2Stream, headers: Headers, ended: bool) -> None:
            name = f"{log_name} stream {h2_stream.stream_id}"
            method, target = request_target(headers)
            static = options.static.get(target.partition("?")[0])
            if method in {"GET", "HEAD"} and static is not None:
                body = static.body if method == "GET" else b""
                nursery.start_soon(_answer, h2_stream, _static_headers(static), body, name)
                return
            try:
                request = check_request(
                    headers,
                    end_stream=ended,
                    origins=origins,
                    max_header_bytes=max_header_bytes,
                    max_header_count=max_header_count,
                )
            except Http2Refusal as refusal:
                logger.info("%s: refused a request: %s", name, refusal)
                answer, body = refusal.response()
                nursery.start_soon(_answer, h2_stream, answer, body, name)
                return
            handshake = Http2ServerHandshake(h2_stream)
            nursery.start_soon(run_request, h2_stream, handshake, request, name)

        connection = Http2Connection(
            stream,
            client=False,
            options=options,
            initial_data=initial_data,
            log_name=log_name,
            idle_timeout=idle_timeout,
            on_request=on_request,
        )
        if connections is not None:
            connections.add(connection)
        try:
            await nursery.start(connection.run)
            logger.debug("%s: serving WebSockets over HTTP/2", log_name)
            if going_away:
                connection.go_away()
            await connection.wait_finished()
        finally:
            if connections is not None:
                with contextlib.suppress(KeyError):
                    connections.remove(connection)
