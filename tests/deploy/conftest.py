"""Locate Debian's servers for the deployment tests, and find free ports on 127.0.0.1.

``nox -s proxy`` installs the servers (nginx, haproxy, redis-server, tinyproxy,
dante-server) with apt-get. Outside CI a missing one skips its tests with the
reason; under CI (``CI=true``) it fails them, so that a green CI run means every
server really ran.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import Final, NoReturn

import pytest

IN_CI: Final = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}

#: Where Debian puts daemons, which a non-root PATH often lacks.
_SBIN: Final = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin"])


def missing(what: str, hint: str) -> NoReturn:
    """Fail under CI, else skip, because the server ``what`` describes is not installed."""
    if IN_CI:
        pytest.fail(
            f"{what} ({hint}; CI=true: every deployment peer must be present)", pytrace=False
        )
    pytest.skip(f"{what} ({hint})")


def require_program(program: str, package: str) -> str:
    """Return the path of ``program``, or skip (fail under CI) naming the Debian ``package``."""
    path = shutil.which(program) or shutil.which(program, path=_SBIN)
    if path is None:
        missing(f"{program} is not installed", f"`nox -s proxy` installs Debian's {package}")
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
