"""Every code block of the documentation runs: README.md and docs/*.md.

``nox -s docs`` runs this module after building the site. What a block is
decides what is done with it, and an HTML comment right before a Python block
(invisible on GitHub and on the site) says how it runs:

- ``python`` with no comment: a whole program. It runs in a process of its own,
  in a temporary directory that holds ``cert.pem``, ``key.pem`` (a certificate for
  127.0.0.1 and localhost) and ``ca.pem``, and must exit with status 0. Port 8765
  in it is replaced by the port of a real echo server
  (``python -m trio_wsext serve --port 0``) that this module starts.
- ``<!-- test: server [/path] [tls] [push] [sigterm] -->``: a program that
  serves on port 8765 until it is stopped. It runs on a free port instead; a
  client connects (to ``/path``, over TLS with ``ca.pem`` when ``tls`` is
  given), sends a message and must get it back, or, for a server that sends
  messages of its own and does not echo (``push``), must receive one; then the
  program gets SIGINT, or SIGTERM after which it must exit with status 0
  (``sigterm``). A program that catches ``KeyboardInterrupt`` must exit with
  status 0 and no traceback after SIGINT.
- ``<!-- test: NAME.py -->`` (with any of the others): the block is also a
  module, saved as ``NAME.py`` beside every block of its page, which may import it.
- ``<!-- test: fragment -->``: statements, run inside ``async def`` with these
  names bound: ``ws`` (an open client connection to the echo server), ``url``
  (that server's URL), ``handler`` (an echo handler), ``ssl_context`` (a server
  context with ``cert.pem``), ``trio``, ``trio_wsext`` and everything
  ``from trio_wsext import *`` gives. They must finish within 30 s. Two proxies
  run for them: ``proxy.internal:3128`` (HTTP) and ``proxy.internal:8443``
  (HTTPS, with ``cert.pem``) become the addresses of proxies that open
  ``CONNECT`` tunnels to 127.0.0.1. Comment lines ``# $ export NAME=value``
  set those environment variables while the block runs; the environment's
  own proxy variables are unset meanwhile.
- ``<!-- test: serving fragment -->``: the same, for statements that serve
  forever (``await serve_websocket(...)``): they must still be serving after a
  second, when they are cancelled. Port numbers in ``serve_websocket`` calls
  become 0 and ``"0.0.0.0"`` becomes ``"127.0.0.1"``.
- ``pycon``: a doctest (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE`` on).
- ``console`` and ``sh``: command lines. Every ``python -m trio_wsext ...`` must
  parse with the command line's own parser, and every ``nox -s NAME`` must name
  a session of noxfile.py.
- Configuration files and output (``text``, ``nginx``, ``haproxy``, ...): shown,
  not run. A block without a language fails: say what it is.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

import trio_wsext
from trio_wsext.cli.main import build_parser
from trio_wsext.server import WebSocketRequest

ROOT = Path(__file__).parent.parent

#: Pages whose Python blocks are not marked yet, so that they are not run (their
#: commands and doctests are checked all the same). Remove a page once its blocks run.
PYTHON_NOT_RUN: frozenset[str] = frozenset()

#: Languages of blocks that are shown and not run: configuration files and output.
SHOWN_ONLY = frozenset({"text", "nginx", "haproxy", "ini", "toml", "json", "http", "diff"})

#: The port that blocks use for the echo server (``python -m trio_wsext serve``'s default).
DOC_PORT = "8765"

#: How long a program block may take.
PROGRAM_TIMEOUT = 60

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<words>[^>]*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    text: str
    marker: tuple[str, ...]

    @property
    def id(self) -> str:
        """The test id: page and line."""
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """Return README.md and every Markdown page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_of(path: Path) -> Iterator[Block]:
    """Yield the fenced code blocks of a Markdown page (not MyST directives)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(ROOT).as_posix()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        info = opening["info"].strip()
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = MARKER.match(previous)
        if not info.startswith("{"):
            yield Block(
                page=page,
                line=index + 1,
                language=info.split()[0] if info else "",
                text="\n".join(body) + "\n",
                marker=tuple(marker["words"].split()) if marker else (),
            )
        index = end + 1


ALL_BLOCKS = [block for path in pages() for block in blocks_of(path)]


def select(*languages: str, run: bool = False) -> list[Any]:
    """Return pytest params for the blocks in ``languages``, with their ids."""
    chosen = [
        block
        for block in ALL_BLOCKS
        if block.language in languages and not (run and block.page in PYTHON_NOT_RUN)
    ]
    return [pytest.param(block, id=block.id) for block in chosen]


def mode(block: Block) -> str:
    """Return how a Python block runs: program, server, fragment or serving fragment."""
    words = [word for word in block.marker if not word.endswith(".py")]
    if not words:
        return "program"
    if words[:2] == ["serving", "fragment"]:
        return "serving fragment"
    return words[0]


def module_files(page: str) -> dict[str, str]:
    """Return the blocks of ``page`` that other blocks import: ``{file name: text}``."""
    return {
        word: block.text
        for block in ALL_BLOCKS
        if block.page == page
        for word in block.marker
        if word.endswith(".py")
    }


def python_blocks(*modes: str) -> list[Any]:
    """Return pytest params for the Python blocks to run in one of ``modes``."""
    return [param for param in select("python", run=True) if mode(param.values[0]) in modes]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with cert.pem, key.pem (127.0.0.1, localhost) and ca.pem."""
    directory = tmp_path_factory.mktemp("certificates")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.private_key_pem.write_to_path(str(directory / "key.pem"))
    issued.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(directory / "cert.pem"), append=True)
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return directory


@pytest.fixture
def workdir(tmp_path: Path, certificates: Path, block: Block) -> Path:
    """A temporary working directory: the certificates, and the modules of the block's page."""
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (tmp_path / name).write_bytes((certificates / name).read_bytes())
    for name, text in module_files(block.page).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """The port of a real echo server: ``python -m trio_wsext serve --port 0``."""
    server = subprocess.Popen(
        [sys.executable, "-m", "trio_wsext", "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        first = server.stderr.readline()
        found = re.search(r"ws://127\.0\.0\.1:(\d+)", first)
        assert found, f"the echo server did not say where it listens: {first!r}"
        # Keep reading its log, so that a full pipe never blocks it.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        yield int(found[1])
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def failure(block: Block, what: str, output: str = "") -> str:
    """Describe a failed block: where it is, what went wrong, and its output."""
    shown = f"\n--- output ---\n{output.strip()}" if output.strip() else ""
    return f"{block.id}: {what}\n--- block ---\n{block.text.rstrip()}{shown}"


# -- every block is of a kind this module knows ----------------------------------------------


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in ALL_BLOCKS])
def test_block_has_a_known_language(block: Block) -> None:
    """Every block says what it holds, and that is something this module runs or shows."""
    known = {"python", "pycon", "console", "sh"} | SHOWN_ONLY
    assert block.language in known, failure(block, f"unknown language {block.language!r}")
    if block.marker:
        assert block.language == "python", failure(block, "only Python blocks take a marker")
        assert mode(block) in {"program", "server", "fragment", "serving fragment"}, failure(
            block, f"unknown marker {block.marker!r}"
        )


# -- Python --------------------------------------------------------------------------------


@pytest.mark.parametrize("block", python_blocks("program"))
def test_program_runs(block: Block, workdir: Path, echo_port: int) -> None:
    """A whole program exits 0, against the real echo server where it names port 8765."""
    script = workdir / "block.py"
    script.write_text(block.text.replace(DOC_PORT, str(echo_port)), encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=PROGRAM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(failure(block, f"still running after {PROGRAM_TIMEOUT} s", output or ""))
    assert done.returncode == 0, failure(
        block, f"exit status {done.returncode}", done.stdout + done.stderr
    )


#: What the client of a serving program sends, and must get back unless the server pushes.
HELLO = "hello from the documentation test"


async def _first_reply(url: str, ca: Path | None, *, send: bool) -> str | bytes:
    """Connect to ``url``, send one message if ``send``, and return the first that comes."""
    context = None
    if ca is not None:
        context = ssl.create_default_context(cafile=str(ca))
    with trio.fail_after(15):
        async with trio_wsext.open_websocket_url(url, context, proxy=None) as ws:
            if send:
                await ws.send_message(HELLO)
            return await ws.get_message()


@pytest.mark.parametrize("block", python_blocks("server"))
def test_server_serves(block: Block, workdir: Path) -> None:
    """A serving program answers a real client on its port, then is stopped."""
    options = block.marker[1:]
    path = next((word for word in options if word.startswith("/")), "/")
    tls = "tls" in options
    push = "push" in options
    port = free_port()
    script = workdir / "block.py"
    script.write_text(block.text.replace(DOC_PORT, str(port)), encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reply: str | bytes | None = None
        url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}{path}"
        error: BaseException | None = None
        for _ in range(150):
            if server.poll() is not None:
                break
            try:
                ca = workdir / "ca.pem" if tls else None
                reply = trio.run(partial(_first_reply, url, ca, send=not push))
                break
            except trio_wsext.HandshakeError as exc:
                error = exc
                if not isinstance(exc.__cause__, OSError):  # not "not listening yet"
                    break
                trio.run(trio.sleep, 0.1)
        still_running = server.poll() is None
    finally:
        server.send_signal(signal.SIGTERM if "sigterm" in options else signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert still_running, failure(block, "the program ended before it was stopped", output)
    if push:
        assert reply is not None, failure(
            block, f"no message from {url} (last error: {error!r})", output
        )
    else:
        assert reply == HELLO, failure(
            block, f"no echo from {url} (last error: {error!r})", output
        )
    if "sigterm" in options:
        assert server.returncode == 0, failure(
            block, f"exit status {server.returncode} after SIGTERM", output
        )
    elif re.search(r"except\*? *KeyboardInterrupt", block.text):
        assert server.returncode == 0, failure(
            block, f"exit status {server.returncode} after SIGINT", output
        )
        assert "Traceback" not in output, failure(block, "a traceback after SIGINT", output)


async def _echo_handler(request: WebSocketRequest) -> None:
    """Echo every message: the ``handler`` that fragments see."""
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


def _fragment_function(block: Block, replacements: dict[str, str]) -> str:
    """Return the source of an ``async def`` whose body is the fragment.

    ``replacements`` maps what the page says (port 8765, a proxy's name) to what
    the test runs (the echo server's port, a proxy's address).
    """
    text = block.text
    for written, meant in replacements.items():
        text = text.replace(written, meant)
    if mode(block) == "serving fragment":
        text = re.sub(r"(serve_websocket\(\s*\w+,\s*\"[^\"]*\",\s*)\d+", r"\g<1>0", text)
        text = text.replace('"0.0.0.0"', '"127.0.0.1"')
    return "async def __fragment__(ws, url, handler, ssl_context):\n" + textwrap.indent(
        text, "    "
    )


#: The proxies that fragments name, and whether each speaks TLS to its clients.
DOC_PROXIES = {"proxy.internal:3128": False, "proxy.internal:8443": True}

#: A fragment's ``# $ export NAME=value`` lines: the environment it runs in.
EXPORT = re.compile(r"^\s*# \$ export (?P<name>\w+)=(?P<value>\S*)\s*$", re.MULTILINE)


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream, scope: trio.CancelScope) -> None:
    """Copy ``source`` to ``sink`` until either ends, then end the tunnel."""
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    scope.cancel()


async def _proxy_connection(client: trio.abc.Stream) -> None:
    """Answer one ``CONNECT`` request, to 127.0.0.1 only, and carry the tunnel."""
    async with client:
        head = b""
        while b"\r\n\r\n" not in head:
            data = await client.receive_some(4096)
            if not data:
                return
            head += data
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
        host, _, port = target.decode("ascii").rpartition(":")
        if method != b"CONNECT" or host != "127.0.0.1":
            await client.send_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        async with await trio.open_tcp_stream(host, int(port)) as server:
            await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, client, server, nursery.cancel_scope)
                nursery.start_soon(_pump, server, client, nursery.cancel_scope)


async def _start_proxy(nursery: trio.Nursery, tls: ssl.SSLContext | None) -> int:
    """Start an HTTP proxy on 127.0.0.1 (over TLS with ``tls``) and return its port."""
    listeners: list[Any] = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port: int = listeners[0].socket.getsockname()[1]
    if tls is not None:
        listeners = [trio.SSLListener(listener, tls) for listener in listeners]
    nursery.start_soon(trio.serve_listeners, _proxy_connection, listeners)
    return port


@pytest.mark.parametrize("block", python_blocks("fragment", "serving fragment"))
async def test_fragment_runs(
    block: Block, echo_port: int, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statements run inside a connection to the echo server (or serve until cancelled)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(workdir / "cert.pem"), str(workdir / "key.pem"))
    url = f"ws://127.0.0.1:{echo_port}/"
    old = Path.cwd()
    os.chdir(workdir)
    try:
        async with trio.open_nursery() as proxies:
            replacements = {DOC_PORT: str(echo_port)}
            for name, tls in DOC_PROXIES.items():
                if name in block.text:
                    port = await _start_proxy(proxies, context if tls else None)
                    replacements[name] = f"127.0.0.1:{port}"
            source = _fragment_function(block, replacements)
            for variable in list(os.environ):
                if variable.lower().endswith("_proxy"):
                    monkeypatch.delenv(variable)
            for export in EXPORT.finditer(source):
                monkeypatch.setenv(export["name"], export["value"])
            namespace: dict[str, Any] = {}
            exec("import trio\nimport trio_wsext\nfrom trio_wsext import *\n", namespace)
            exec(compile(source, block.id, "exec"), namespace)
            async with trio_wsext.open_websocket_url(url, proxy=None) as ws:
                arguments = (ws, url, _echo_handler, context)
                if mode(block) == "serving fragment":
                    with trio.move_on_after(1) as scope:
                        await namespace["__fragment__"](*arguments)
                    assert scope.cancelled_caught, failure(block, "stopped serving within 1 s")
                else:
                    with trio.fail_after(30):
                        await namespace["__fragment__"](*arguments)
            proxies.cancel_scope.cancel()
    finally:
        os.chdir(old)


# -- doctests and command lines ---------------------------------------------------------------


@pytest.mark.parametrize("block", select("pycon"))
def test_doctest_passes(block: Block) -> None:
    """A ``>>>`` session gives the output shown."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.text, {}, block.id, block.page, block.line)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, failure(block, "doctest failed", "".join(report))


def _commands(block: Block) -> Iterator[list[str]]:
    """Yield the command lines of a console or sh block, split into words."""
    lines = block.text.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            yield shlex.split(line)


def _nox_sessions() -> set[str]:
    """Return the session names of noxfile.py, from its source."""
    source = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    named = re.findall(r"@nox\.session\([^)]*name=\"([\w-]+)\"", source)
    functions = re.findall(r"@nox\.session(?:\([^)]*\))?\s*\ndef (\w+)", source)
    return set(named) | set(functions)


@pytest.mark.parametrize("block", select("console", "sh"))
def test_commands_are_current(block: Block) -> None:
    """``python -m trio_wsext`` command lines parse; ``nox -s`` names existing sessions."""
    sessions = _nox_sessions()
    for words in _commands(block):
        for index, word in enumerate(words):
            if word in {"&&", "||", "|", ";"}:
                continue
            rest = words[index + 1 :]
            if word.endswith(("python", "python3")) and rest[:2] == ["-m", "trio_wsext"]:
                arguments = _until_operator(rest[2:])
                try:
                    build_parser().parse_args(arguments)
                except SystemExit as exc:  # --help and --version exit with status 0
                    if exc.code not in (0, None):
                        what = f"{shlex.join(arguments)!r} does not parse: {exc}"
                        pytest.fail(failure(block, what))
            if word.endswith("nox") and rest[:1] == ["-s"]:
                for name in _until_operator(rest[1:]):
                    if name.startswith("-"):
                        break
                    base = re.sub(r"-\d+\.\d+$", "", name)
                    assert base in sessions, failure(block, f"no nox session named {name!r}")


def _until_operator(words: list[str]) -> list[str]:
    """Return the words up to the next shell operator."""
    taken: list[str] = []
    for word in words:
        if word in {"&&", "||", "|", ";"}:
            break
        taken.append(word)
    return taken


# -- the API reference ----------------------------------------------------------------------------


def test_api_reference_lists_every_module() -> None:
    """docs/api.md has an entry (``automodule`` or ``py:module``) for every public module."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\.\. (?:automodule|py:module):: (\S+)", text, re.MULTILINE))
    package = ROOT / "trio_wsext"
    modules = set()
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            modules.add(".".join(parts))
    assert sorted(modules - listed) == [], "modules that docs/api.md does not list"


# -- the set-up commands -------------------------------------------------------------------------


def _setup_commands(page: str) -> list[str]:
    """Return the lines of the first ``sh`` block of ``page`` that runs ``python3 -m venv``."""
    for block in ALL_BLOCKS:
        if block.page == page and block.language == "sh" and "python3 -m venv" in block.text:
            return block.text.strip().splitlines()
    pytest.fail(f"{page} has no set-up commands")


def test_setup_commands_agree() -> None:
    """README's two set-up commands are Contributing's, and the second is what .ci/run runs."""
    readme = _setup_commands("README.md")
    assert len(readme) == 2
    assert _setup_commands("docs/contributing.md") == readme
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert script[-1] == readme[1]
