"""WebSockets over HTTP/2 (:rfc:`8441`): many WebSockets on one TCP connection.

Strategy: a WebSocket over HTTP/2 opens with an extended CONNECT on a stream
of its own and then runs RFC 6455 framing and its extensions, unchanged, in
that stream's DATA frames. So the package has the parts of an HTTP/2 client
and server that a WebSocket needs, and no more:

- :mod:`~trio_wsext.http2.settings`: :class:`Http2Options`,
  :class:`StaticResponse`, whether h2 is installed (pure);
- :mod:`~trio_wsext.http2.selection`: ALPN and the connection preface (pure);
- :mod:`~trio_wsext.http2.goaway`: GOAWAY beside h2, for graceful shutdown (pure);
- :mod:`~trio_wsext.http2.handshake`: the extended CONNECT, checked and answered (pure);
- :mod:`~trio_wsext.http2.connection`: one HTTP/2 connection, h2 over trio;
- :mod:`~trio_wsext.http2.streams`: one HTTP/2 stream as a :class:`trio.abc.Stream`;
- :mod:`~trio_wsext.http2.server` and :mod:`~trio_wsext.http2.client`: the roles,
  and :class:`Http2Pool`.

HTTP/2 needs the optional h2 package (``pip install trio_wsext[http2]``);
this package imports without it, and a server without it serves HTTP/1.1
only. See ``docs/http2.md``.
"""

from __future__ import annotations

from .client import Http2Pool
from .settings import Http2Options, StaticResponse, h2_available

__all__ = ["Http2Options", "Http2Pool", "StaticResponse", "h2_available"]
