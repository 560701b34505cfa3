"""Development sessions: ``nox -l`` lists them; ``nox`` runs tests, lint and typecheck.

Some sessions install programs outside Python: ``interop`` Node's ``ws`` (npm)
and Debian's ``chromium`` (apt-get), ``proxy`` Debian's nginx, haproxy,
redis-server, tinyproxy and dante-server (apt-get). Each says so in a log line
before it installs anything. ``TRIO_WSEXT_NO_SYSTEM_INSTALL=1`` skips those
installs, and the tests that need a missing program then skip; under CI
(``CI=true``) the variable is ignored, so that CI runs every peer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
NODE_DIR = ROOT / "tests" / "interop" / "node"

#: The Pythons that ``matrix`` tests on: every version pyproject.toml supports that is released.
PYTHONS: Final = ["3.11", "3.12", "3.13"]

#: Set to 1 to skip the installs outside Python (npm, apt-get); ignored under CI.
NO_SYSTEM_INSTALL: Final = "TRIO_WSEXT_NO_SYSTEM_INSTALL"

#: What ``tests`` runs unless posargs say otherwise: everything but the real-peer, deployment
#: and documentation tests (sessions interop, proxy and docs).
UNIT_TESTS: Final = [
    "tests",
    "--ignore=tests/interop",
    "--ignore=tests/deploy",
    "--ignore=tests/test_docs.py",
]


def _pyenv_pythons() -> None:
    """Let nox find pyenv's installed Pythons for ``matrix``, where pyenv's shims cannot run them.

    pyenv puts a ``python3.12`` shim on PATH for every installed version, but the
    shim runs only the versions that ``pyenv global``/``local`` select, and nox
    would take the shim. A link to each installed interpreter, in a directory put
    first on PATH, lets every installed version be found. Without pyenv this does
    nothing.
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    links = ROOT / ".nox" / "pythons"
    for version in PYTHONS:
        name = f"python{version}"
        found = shutil.which(name)
        if found is not None and Path(found).parent != pyenv / "shims":
            continue
        installed = sorted(
            pyenv.glob(f"versions/{version}.*/bin/{name}"),
            key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
        )
        if not installed:
            continue
        links.mkdir(parents=True, exist_ok=True)
        link = links / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(installed[-1])
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"


_pyenv_pythons()


@nox.session
def tests(session: nox.Session) -> None:
    """Run the unit, in-memory and loopback tests, measuring branch coverage.

    Coverage's settings, ``fail_under`` included, are pyproject.toml's
    ``[tool.coverage]``. With posargs (a subset of the tests), coverage is
    reported but not enforced.
    """
    session.install("-e", ".[test]")
    coverage = ["--cov", "--cov-branch", "--cov-report=term-missing:skip-covered"]
    if session.posargs:
        coverage.append("--cov-fail-under=0")
    session.run("pytest", *coverage, *(session.posargs or UNIT_TESTS))


@nox.session(python=PYTHONS)
def matrix(session: nox.Session) -> None:
    """Run the unit tests on every supported Python installed here (``matrix-3.12`` for one).

    A version that is not installed is skipped (under CI, nox fails instead).
    Not a CI session: CI runs ``tests`` on one Python.
    """
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or UNIT_TESTS))


@nox.session
def lint(session: nox.Session) -> None:
    """Check formatting and lint with ruff; check spelling with codespell."""
    session.install("ruff", "codespell")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    # Its settings (the words that are right, the paths to skip) are pyproject.toml's.
    session.run("codespell")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site, warnings as errors, then run every code block of the pages.

    sphinx-build runs nitpicky (``-n``: every cross-reference must resolve) with
    ``-W --keep-going`` (every warning is reported, and fails the build), from a
    fresh environment (``-E``). The site is docs/_build/html. Then
    tests/test_docs.py runs the Python blocks of README.md and docs/*.md against
    a real local server, doctests the ``pycon`` blocks, and checks the command
    lines; posargs go to that pytest.
    """
    # http2: autodoc imports trio_wsext.http2's modules, which need h2.
    session.install("-e", ".[docs,http2]", "pytest>=8", "pytest-trio>=0.8", "trustme>=1.1")
    build = ROOT / "docs" / "_build"
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html",
        "-d", str(build / "doctrees"), "docs", str(build / "html"),
    )  # fmt: skip
    session.run("pytest", "tests/test_docs.py", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """Run mypy --strict on the package, tests, examples, benchmarks, docs and this file."""
    session.install(
        "-e", ".[test,interop,deploy,docs]", "mypy", "nox", "aiohttp", "picows",
        "types-docutils", "types-Pygments",
    )  # fmt: skip
    session.run("mypy")


def _in_ci() -> bool:
    """Return whether this runs under CI (``CI=true``), where every interop peer must run."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _system_installs_skipped(session: nox.Session, what: str) -> bool:
    """Return whether ``TRIO_WSEXT_NO_SYSTEM_INSTALL=1`` skips installing ``what`` (not in CI)."""
    if os.environ.get(NO_SYSTEM_INSTALL, "").strip() not in {"1", "true", "yes"}:
        return False
    if _in_ci():
        session.log(f"{NO_SYSTEM_INSTALL} is ignored under CI: every peer must run")
        return False
    session.warn(f"{NO_SYSTEM_INSTALL}: not installing {what}; the tests that need it skip")
    return True


def _missing_peer(session: nox.Session, message: str) -> None:
    """Stop the session under CI; elsewhere warn (pytest then skips that peer's tests)."""
    if _in_ci():
        session.error(message)
    session.warn(f"{message}; its interop tests will be skipped")


def _install_node_ws(session: nox.Session) -> None:
    """Install Node's ``ws`` (tests/interop/node/package.json) with the machine's npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        _missing_peer(session, "interop needs node and npm on PATH (Node's ws is a peer)")
        return
    if _system_installs_skipped(session, "Node's ws (npm)"):
        return
    session.log(f"installing Node's ws with npm into {NODE_DIR.relative_to(ROOT)}/node_modules")
    session.run(
        "npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(NODE_DIR),
        external=True,
    )  # fmt: skip


def _install_chromium(session: nox.Session) -> None:
    """Install Debian's chromium with apt-get when it is missing."""
    if shutil.which("chromium"):
        return
    if _system_installs_skipped(session, "Debian's chromium (apt-get)"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        _missing_peer(session, "chromium is missing and apt-get cannot install it here")
        return
    session.log("installing Debian packages: chromium (apt-get, as root)")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", "chromium", external=True, env=env)


#: Debian's servers that the ``proxy`` session runs the deployment tests against.
DEPLOY_PACKAGES: Final = {
    "nginx": "nginx",
    "haproxy": "haproxy",
    "redis-server": "redis-server",
    "tinyproxy": "tinyproxy",
    "danted": "dante-server",
}


def _apt_install(session: nox.Session, programs: dict[str, str]) -> None:
    """Install the Debian packages whose programs (``{program: package}``) are missing.

    Debian's packages start their service on installation; a ``policy-rc.d``
    that answers 101 stops that for the install (nothing may listen beyond
    127.0.0.1, and the tests start each server with a configuration of their own).
    """
    missing = sorted({package for program, package in programs.items() if not _which(program)})
    if not missing:
        return
    if _system_installs_skipped(session, f"Debian's {', '.join(missing)} (apt-get)"):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        _missing_peer(
            session, f"{', '.join(missing)} missing and apt-get cannot install them here"
        )
        return
    session.log(f"installing Debian packages: {' '.join(missing)} (apt-get, as root)")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        session.run("apt-get", "update", "-qq", external=True, env=env)
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True, env=env)
    finally:
        if made_policy:
            policy.unlink()


def _which(program: str) -> str | None:
    """Find ``program`` on PATH or in the sbin directories, where Debian puts daemons."""
    return shutil.which(program) or shutil.which(
        program, path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin"])
    )


@nox.session
def proxy(session: nox.Session) -> None:
    """Test deployments with real servers: nginx, HAProxy, Redis, an HTTP and a SOCKS5 proxy.

    Installs Debian's nginx, haproxy, redis-server, tinyproxy and dante-server when
    missing (as root, with apt-get; their services are not started), then runs
    tests/deploy, whose fixtures start each server on 127.0.0.1 with the
    configuration files of tests/deploy. Under CI (CI=true) a server that cannot be
    installed fails the session.
    """
    session.install("-e", ".[test,deploy]")
    _apt_install(session, DEPLOY_PACKAGES)
    session.run("pytest", *(session.posargs or ["tests/deploy"]))


@nox.session
def interop(session: nox.Session) -> None:
    """Test against real peers: websockets, trio-websocket, Node's ws, headless chromium.

    Installs Node's ws into tests/interop/node and Debian's chromium when missing; under CI
    (CI=true) a peer that cannot be installed fails the session and its tests.
    """
    session.install("-e", ".[interop]")
    _install_node_ws(session)
    _install_chromium(session)
    session.run("pytest", *(session.posargs or ["tests/interop"]))


@nox.session
def examples(session: nox.Session) -> None:
    """Run every program in examples/ and check that each exits 0 within its timeout."""
    session.install("-e", ".[test]")
    session.run("pytest", "tests/test_examples.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark trio_wsext side by side with other Python WebSocket libraries."""
    session.install("-e", ".", "websockets", "trio-websocket", "aiohttp", "picows")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """Load and attack trio_wsext's, websockets' and websockets.trio's echo servers side by side.

    Posargs go to ``python -m benchmarks.load``, e.g. ``nox -s load -- --quick``
    (a small version, 1-2 minutes). The full run takes about 10 minutes, so it
    is not a default session.
    """
    session.install("-e", ".", "websockets")
    session.run("python", "-m", "benchmarks.load", *session.posargs)


AUTOBAHN_DIR = ROOT / "tests" / "autobahn"


def _find_python27() -> str | None:
    """Return a Python 2.7 interpreter: ``$AUTOBAHN_PYTHON27``, python2.7 on PATH, or pyenv's.

    Each candidate is run once, since a pyenv shim is on PATH even when it cannot run.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("AUTOBAHN_PYTHON27"),
        shutil.which("python2.7"),
        shutil.which("python2"),
        *(str(path) for path in sorted(pyenv_root.glob("versions/2.7.*/bin/python2.7"))),
    ]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (2, 7))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


@nox.session
def autobahn(session: nox.Session) -> None:
    """Run the Autobahn|Testsuite against trio_wsext's and websockets' echo servers.

    Posargs go to tests/autobahn/run.py, e.g. ``nox -s autobahn -- --cases "12.*,13.*"``.
    wstest (autobahntestsuite 25.10.1) is Python 2.7 code whose wheel declares no
    dependencies, so it gets a Python 2.7 virtualenv of its own in this session's
    directory, made by the last virtualenv that can make one (20.21), with the pins of
    tests/autobahn/requirements-wstest.txt. A full run takes long: not a default session.
    """
    session.install("-e", ".", "websockets", "virtualenv<20.22")
    python27 = _find_python27()
    if python27 is None:
        session.error("wstest needs Python 2.7: set AUTOBAHN_PYTHON27 or put python2.7 on PATH")
    wstest_env = Path(session.virtualenv.location) / "wstest-py27"
    if not (wstest_env / "bin" / "python").exists():
        session.run("virtualenv", "--quiet", "--python", python27, str(wstest_env))
    session.run(
        str(wstest_env / "bin" / "python"), "-m", "pip", "install", "--quiet",
        "--disable-pip-version-check", "-r", str(AUTOBAHN_DIR / "requirements-wstest.txt"),
        external=True,
    )  # fmt: skip
    session.run(
        "python", str(AUTOBAHN_DIR / "run.py"), "--wstest", str(wstest_env / "bin" / "wstest"),
        *session.posargs,
    )  # fmt: skip


FUZZ_DIR = ROOT / "tests" / "fuzz"


@nox.session
def fuzz(session: nox.Session) -> None:
    """Fuzz each parser with atheris (libFuzzer), one harness after the other.

    Each harness of tests/fuzz runs for a bounded time (60 s unless posargs say
    otherwise, e.g. ``nox -s fuzz -- --seconds 900`` or ``-- --only fuzz_frames``)
    from a fresh corpus under this session's tmp directory; one line per harness
    gives its CPU time, runs, coverage and any crash file. Fails if a harness
    finds something. Takes minutes: not a default session.
    """
    session.install("-e", ".", "atheris")
    out = Path(session.create_tmp()) / "fuzz"
    session.run("python", str(FUZZ_DIR / "campaign.py"), "--out", str(out), *session.posargs)
