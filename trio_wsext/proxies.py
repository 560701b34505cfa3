"""Connecting through a proxy: HTTP CONNECT on h11, SOCKS through python-socks, the environment.

Strategy: a proxy turns "open a TCP stream to host:port" into "open a stream
to the proxy, then ask it for a tunnel"; everything after (TLS to the target,
the opening handshake) runs over the tunnel as over a direct stream, so
:func:`open_tunnel` returns a plain :class:`trio.abc.Stream` and the client
wraps TLS around it with the target's name for SNI and the certificate check.

- **Which proxy**: :func:`get_proxy` reads the environment as websockets
  does (``wss_proxy``/``ws_proxy``, then a SOCKS proxy, then ``https_proxy``
  for both schemes and ``http_proxy`` for ``ws`` only), then ``all_proxy``
  (curl's fallback), all through :func:`urllib.request.getproxies`, whose
  rules are the ones Python users already have (lower case wins over upper
  case; an empty lower-case value unsets). ``no_proxy`` is checked first,
  with :func:`urllib.request.proxy_bypass`. :func:`parse_proxy` checks a
  proxy URL: ``http://``, ``https://`` (TLS to the proxy itself),
  ``socks5h://`` (the proxy resolves the target's name), ``socks5://`` (we
  resolve it), ``socks4a://`` and ``socks4://``.
- **HTTP CONNECT** (:rfc:`9110#section-9.3.6`) is ours, sans-I/O on h11 as
  the opening handshake is: :class:`HTTPConnect` builds the request (with
  ``Proxy-Authorization: Basic`` from the proxy URL's user information) and
  reads the answer; :func:`http_connect` runs it over any stream.
- **SOCKS** goes through `python-socks`_ (the ``socks`` extra,
  ``pip install 'trio_wsext[socks]'``). It is the library websockets uses for
  the same job, so a proxy URL means the same to both; it is maintained,
  typed, has no dependencies of its own, and its trio backend connects with
  trio's sockets, so a cancellation (our ``connect_timeout``) stops it
  cleanly. SOCKS (:rfc:`1928`, :rfc:`1929`) is small enough to write, but a
  second implementation of it would buy nothing a user can see. Without the
  extra, asking for a SOCKS proxy raises :class:`ImportError` naming it,
  before any I/O.

Errors name the proxy (never its credentials) and what it said:
:class:`ProxyError` when the proxy cannot be reached or fails,
:class:`ProxyStatusError` when an HTTP proxy answers CONNECT with a status
other than 2xx (407 when it wants credentials; 500, 502 or 503 when it cannot
reach the target), and a SOCKS reply code in the message when a SOCKS proxy
refuses.

.. _python-socks: https://pypi.org/project/python-socks/
"""

from __future__ import annotations

import base64
import http
import math
import ssl
import urllib.parse
import urllib.request
from typing import Final, final

import attrs
import h11
import trio

from .exceptions import ProxyError, ProxyStatusError
from .handshake import DEFAULT_MAX_HEADER_BYTES, DEFAULT_USER_AGENT, MAX_REJECTION_BODY
from .headers import build_host

__all__ = [
    "PROXY_SCHEMES",
    "SOCKS_EXTRA",
    "HTTPConnect",
    "Proxy",
    "ProxyError",
    "ProxyStatusError",
    "check_socks_support",
    "get_proxy",
    "http_connect",
    "open_tunnel",
    "parse_proxy",
]

#: The proxy URL schemes understood, with the port each means when the URL has
#: none: 80 and 443 as urllib and websockets take them for HTTP proxies, and
#: 1080 for SOCKS, its IANA-registered port (curl's default too).
PROXY_SCHEMES: Final = {
    "http": 80,
    "https": 443,
    "socks5h": 1080,
    "socks5": 1080,
    "socks4a": 1080,
    "socks4": 1080,
}

#: The extra that installs python-socks, named in the ImportError without it.
SOCKS_EXTRA: Final = "trio_wsext[socks]"

#: The answers to CONNECT that are about the proxy's credentials: RFC 9110
#: §15.5.8's 407, and 401, which tinyproxy sends for wrong credentials.
_AUTHENTICATION_STATUSES: Final = frozenset(
    {http.HTTPStatus.PROXY_AUTHENTICATION_REQUIRED, http.HTTPStatus.UNAUTHORIZED}
)

#: Bytes asked of the stream per read while the proxy's answer arrives.
RECEIVE_SIZE: Final = 65536


@final
@attrs.frozen
class Proxy:
    """A proxy's address, as :func:`parse_proxy` reads it from a URL."""

    scheme: str
    """``"http"``, ``"https"``, ``"socks5h"``, ``"socks5"``, ``"socks4a"`` or ``"socks4"``."""
    host: str
    """The proxy's host name or IP address (without brackets)."""
    port: int
    """The proxy's port (the scheme's default when the URL has none)."""
    username: str | None = None
    """The user name of the URL's user information, percent-decoded."""
    password: str | None = attrs.field(default=None, repr=False)
    """The password of the URL's user information, percent-decoded."""

    @property
    def address(self) -> str:
        """``host:port``, an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_socks(self) -> bool:
        """Whether this is a SOCKS proxy (else an HTTP one)."""
        return self.scheme.startswith("socks")

    def __str__(self) -> str:
        """The proxy as a URL without its credentials, for messages and logs."""
        return f"{self.scheme}://{self.address}"


def parse_proxy(url: str) -> Proxy:
    """Read a proxy URL: ``scheme://[user:password@]host[:port][/]``.

    Args:
        url: for example ``"http://proxy.example:3128"``,
            ``"https://user:secret@proxy.example"`` or
            ``"socks5h://127.0.0.1:1080"``.

    Returns:
        The :class:`Proxy`.

    Raises:
        ValueError: another scheme, no host, a bad port, a path, query or
            fragment, or a user name without a password. The message shows
            the URL without its password.
    """
    if not isinstance(url, str):
        raise TypeError(f"proxy must be a URL string, True or None, not {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    shown = _without_password(url, parts)
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        known = ", ".join(f"{name}://" for name in PROXY_SCHEMES)
        raise ValueError(f"proxy URL scheme must be one of {known}, not {shown!r}")
    if not parts.hostname:
        raise ValueError(f"proxy URL has no host: {shown!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"proxy URL has an invalid port: {shown!r}") from None
    if port == 0:
        raise ValueError(f"proxy URL has an invalid port: {shown!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"proxy URL must not have a path, query or fragment: {shown!r}")
    username = password = None
    if parts.username is not None:
        if parts.password is None:
            raise ValueError(f"proxy URL has a user name but no password: {shown!r}")
        username = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password)
    return Proxy(scheme, parts.hostname, port or PROXY_SCHEMES[scheme], username, password)


def _without_password(url: str, parts: urllib.parse.SplitResult) -> str:
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


def get_proxy(host: str, port: int, *, secure: bool) -> str | None:
    """Return the proxy URL the environment sets for a WebSocket server, or ``None``.

    As websockets reads it: ``None`` when ``no_proxy`` (or the system's
    bypass list) names the server; else the first of ``wss_proxy``
    (``ws_proxy`` for ``ws``), a SOCKS proxy of the system, ``https_proxy``
    (for ``ws`` as well, as :rfc:`6455#section-4.1` suggests a client use an
    HTTPS proxy), ``http_proxy`` (``ws`` only), and last ``all_proxy``.
    Each variable may also be spelled in upper case and may name a proxy of
    any kind (``https_proxy=socks5h://...`` works).

    Args:
        host: the server's host name or IP address.
        port: the server's port.
        secure: whether the connection is ``wss``.
    """
    name = f"[{host}]" if ":" in host else host
    if urllib.request.proxy_bypass(f"{name}:{port}"):
        return None
    proxies = urllib.request.getproxies()
    order = ("wss", "socks", "https", "all") if secure else ("ws", "socks", "https", "http", "all")
    for scheme in order:
        proxy = proxies.get(scheme)
        if proxy:
            # The system's settings (macOS, Windows) give a SOCKS proxy as
            # {"socks": "http://host:port"}: an address, not an HTTP proxy.
            if scheme == "socks" and proxy.startswith("http://"):
                proxy = "socks5h://" + proxy[len("http://") :]
            return proxy
    return None


def _connect_authority(host: str, port: int) -> str:
    """``host:port`` for CONNECT: :rfc:`9112#section-3.2.3` wants the port even when default."""
    # build_host leaves out the scheme's default port; name a scheme whose default it is not.
    return build_host(host, port, secure=port == 80)


@final
class HTTPConnect:
    """The client's side of an HTTP CONNECT exchange (:rfc:`9110#section-9.3.6`), sans-I/O.

    The request is made at construction; send :meth:`request_bytes`, then
    feed what arrives to :meth:`receive_data` until it returns ``True`` (the
    tunnel is open) or raises.

    Args:
        proxy: the HTTP proxy; its credentials become ``Proxy-Authorization``.
        host: the target's host name or IP address.
        port: the target's port.
        user_agent: the ``User-Agent`` value, or ``None`` to send none.

    Raises:
        ValueError: ``host`` or ``port`` cannot make a request.
    """

    def __init__(
        self, proxy: Proxy, host: str, port: int, *, user_agent: str | None = DEFAULT_USER_AGENT
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"port must be an int from 1 to 65535, not {port!r}")
        self.proxy: Final = proxy
        """The proxy asked."""
        self.target: Final = _connect_authority(host, port)
        """The tunnel's target, ``host:port``."""
        # RFC 9110 §9.3.6: "A client sending a CONNECT request MUST send the
        # authority form of request-target"; RFC 9112 §3.2: "A client MUST
        # send a Host header field in all HTTP/1.1 request messages."
        headers = [(b"Host", self.target.encode("ascii"))]
        if user_agent is not None:
            headers.append((b"User-Agent", user_agent.encode("ascii")))
        if proxy.username is not None:
            credentials = f"{proxy.username}:{proxy.password or ''}".encode()
            value = b"Basic " + base64.b64encode(credentials)
            headers.append((b"Proxy-Authorization", value))
        self._connection = h11.Connection(
            h11.CLIENT, max_incomplete_event_size=DEFAULT_MAX_HEADER_BYTES
        )
        self._request = self._connection.send(
            h11.Request(method="CONNECT", target=self.target.encode("ascii"), headers=headers)
        )
        self._connection.send(h11.EndOfMessage())
        self._eof = False
        self._done = False
        self._response: h11.Response | None = None
        self._body = bytearray()

    def request_bytes(self) -> bytes:
        """Return the request to send."""
        return self._request

    def receive_data(self, data: bytes) -> bool:
        """Feed bytes received from the proxy; ``b""`` means EOF.

        Returns:
            ``True`` once a 2xx answer opened the tunnel, ``False`` while the
            answer is incomplete.

        Raises:
            ProxyStatusError: the proxy answered with a status other than 2xx;
                raised once its body is read (through ``Content-Length``,
                chunks or EOF; at most 64 KiB of it is kept).
            ProxyError: the answer is not valid HTTP, is too large, the proxy
                closed before it was complete, or it sent bytes behind a 2xx
                head (nothing may come through the tunnel before we speak:
                both a WebSocket server and a TLS server wait for the client).
        """
        if self._done:
            raise RuntimeError("the CONNECT exchange is over")
        if not data:
            self._eof = True
        self._connection.receive_data(data)
        try:
            return self._process_events()
        except BaseException:
            self._done = True
            raise

    def _process_events(self) -> bool:
        while True:
            try:
                event = self._connection.next_event()
            except h11.RemoteProtocolError as exc:
                if self._eof and self._response is not None:
                    raise self._refused() from exc  # the body was cut short
                if exc.error_status_hint == 431:
                    detail = f"an answer head over {DEFAULT_MAX_HEADER_BYTES} bytes"
                elif self._eof:
                    detail = "no whole answer before closing the connection"
                else:  # h11's own words would speak of a "request line"
                    detail = "an answer that is not valid HTTP"
                raise ProxyError(
                    f"proxy {self.proxy} sent {detail} to CONNECT {self.target}", self.proxy
                ) from exc
            if event is h11.NEED_DATA:
                return False
            if event is h11.PAUSED:
                # h11 switches protocols after a 2xx answer to CONNECT, and
                # ignores its Content-Length as RFC 9110 §9.3.6 asks.
                self._done = True
                extra = self._connection.trailing_data[0]
                if extra:
                    raise ProxyError(
                        f"proxy {self.proxy} sent {len(extra)} bytes through the tunnel to"
                        f" {self.target} before the client spoke",
                        self.proxy,
                    )
                return True
            if isinstance(event, h11.InformationalResponse):
                continue  # RFC 9110 §15.2: a client MUST be able to parse 1xx before the final
            if isinstance(event, h11.Response):
                self._response = event
            elif isinstance(event, h11.Data):
                room = MAX_REJECTION_BODY - len(self._body)
                self._body += event.data[:room]
                if len(event.data) >= room:
                    raise self._refused()
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                raise self._refused()
            else:  # pragma: no cover - h11 gives nothing else in a response
                raise ProxyError(f"unexpected HTTP event from proxy: {event!r}", self.proxy)

    def _refused(self) -> ProxyStatusError:
        response = self._response
        assert response is not None  # only called after the Response event
        reason = response.reason.decode("latin-1")
        message = (
            f"proxy {self.proxy} refused to open a tunnel to {self.target}:"
            f" HTTP {response.status_code} {reason}".rstrip()
        )
        # A proxy asks for credentials with 407; tinyproxy answers wrong ones
        # with 401, which, to a CONNECT, can only be the proxy's word too.
        if response.status_code in _AUTHENTICATION_STATUSES:
            if self.proxy.username is None:
                message += " (give credentials in the proxy URL: scheme://user:password@host)"
            else:
                message += f" (the credentials of user {self.proxy.username!r} were refused)"
        return ProxyStatusError(
            message,
            self.proxy,
            status_code=response.status_code,
            reason=reason,
            headers=list(response.headers),
            body=bytes(self._body),
        )


async def http_connect(stream: trio.abc.Stream, exchange: HTTPConnect) -> None:
    """Run a CONNECT exchange over ``stream`` (already connected to the proxy).

    Returns once the tunnel is open: what is sent on ``stream`` next goes to
    the target. Cancellation leaves the stream in an unknown state; close it.

    Raises:
        ProxyStatusError, ProxyError: as :meth:`HTTPConnect.receive_data`; a
            broken stream (a reset, a failed TLS handshake with an
            ``https://`` proxy) is a :class:`ProxyError` too.
    """
    try:
        await stream.send_all(exchange.request_bytes())
        while not exchange.receive_data(bytes(await stream.receive_some(RECEIVE_SIZE))):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        detail = exc.__cause__ or exc
        raise ProxyError(
            f"connection to proxy {exchange.proxy} broke before the tunnel to"
            f" {exchange.target} was open: {detail}",
            exchange.proxy,
        ) from exc


def check_socks_support(proxy: Proxy) -> None:
    """Check that a SOCKS ``proxy`` can be used: python-socks must be installed.

    Raises:
        ImportError: ``proxy`` is SOCKS and python-socks is missing; the
            message names the extra that installs it.
    """
    if not proxy.is_socks:
        return
    try:
        import python_socks.async_.trio  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"a {proxy.scheme}:// proxy needs python-socks: pip install '{SOCKS_EXTRA}'"
        ) from exc


async def _open_socks_tunnel(proxy: Proxy, host: str, port: int) -> trio.SocketStream:
    """Ask a SOCKS proxy for a TCP connection to ``host:port``, through python-socks."""
    check_socks_support(proxy)
    from python_socks import ProxyConnectionError, ProxyError as SocksError, ProxyType
    from python_socks.async_.trio import Proxy as SocksProxy

    kind = ProxyType.SOCKS5 if proxy.scheme[5] == "5" else ProxyType.SOCKS4
    socks = SocksProxy(
        kind,
        proxy.host,
        proxy.port,
        proxy.username,
        proxy.password,
        rdns=proxy.scheme.endswith(("h", "a")),  # socks5h, socks4a: the proxy resolves names
    )
    target = _connect_authority(host, port)
    try:
        # The caller's deadline bounds the whole connection: no second timeout here.
        sock = await socks.connect(host, port, timeout=math.inf)
    except ProxyConnectionError as exc:
        detail = exc.__cause__ or exc
        raise ProxyError(f"could not connect to proxy {proxy.address}: {detail}", proxy) from exc
    except SocksError as exc:
        code = exc.error_code
        reply = "" if code is None else f" (SOCKS reply {code:#04x})"
        said = str(exc) or "no valid SOCKS answer"  # an answer cut short has no text
        raise ProxyError(
            f"proxy {proxy} refused to open a tunnel to {target}: {said}{reply}", proxy
        ) from exc
    except OSError as exc:  # resolving the target's name for socks5:// or socks4://
        raise ProxyError(
            f"cannot open a tunnel to {target} through proxy {proxy}: {exc}", proxy
        ) from exc
    return trio.SocketStream(sock)


async def open_tunnel(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    proxy_ssl_context: ssl.SSLContext | None = None,
    user_agent: str | None = DEFAULT_USER_AGENT,
) -> trio.abc.Stream:
    """Open a stream to ``host:port`` through ``proxy``.

    The stream carries bytes to and from the target, as a TCP stream to it
    would: wrap it in :class:`trio.SSLStream` for ``wss``. An ``https://``
    proxy is reached over TLS first, checked against the proxy's own name.

    Args:
        proxy: the proxy.
        host: the target's host name or IP address.
        port: the target's port.
        proxy_ssl_context: the TLS context for an ``https://`` proxy;
            ``None`` means :func:`ssl.create_default_context` (which honours
            ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``).
        user_agent: the ``User-Agent`` of a CONNECT request, or ``None``.

    Returns:
        The tunnel, as a stream.

    Raises:
        ProxyError: the proxy cannot be reached (``could not connect to proxy
            host:port``), broke, or refused (:class:`ProxyStatusError` for an
            HTTP status; the SOCKS reply code in the message).
        ImportError: a SOCKS proxy without python-socks installed (before any I/O).

    No deadline of its own: bound it with a cancel scope. Cancellation, or
    any failure, closes what was opened.
    """
    if proxy.is_socks:
        return await _open_socks_tunnel(proxy, host, port)
    exchange = HTTPConnect(proxy, host, port, user_agent=user_agent)
    try:
        stream: trio.abc.Stream = await trio.open_tcp_stream(proxy.host, proxy.port)
    except OSError as exc:
        raise ProxyError(f"could not connect to proxy {proxy.address}: {exc}", proxy) from exc
    try:
        if proxy.scheme == "https":
            context = proxy_ssl_context or ssl.create_default_context()
            stream = trio.SSLStream(stream, context, server_hostname=proxy.host)
        await http_connect(stream, exchange)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream
