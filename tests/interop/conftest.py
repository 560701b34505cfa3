"""Locate the external peers: Node with its ``ws`` package, and Debian's chromium.

Outside CI a missing peer skips its tests with the reason; under CI (``CI=true``) it fails
them, so that a green CI run means every peer really ran.
"""

from __future__ import annotations

import os
import shutil
from typing import Final, NoReturn

import pytest

from .processes import NODE_DIR

IN_CI: Final = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(what: str, hint: str) -> NoReturn:
    """Fail under CI, else skip, because the peer ``what`` describes is not installed."""
    if IN_CI:
        pytest.fail(f"{what} ({hint}; CI=true: every interop peer must be present)", pytrace=False)
    pytest.skip(f"{what} ({hint})")


@pytest.fixture(scope="session")
def node() -> str:
    """Return the path of ``node`` once Node's ``ws`` is installed under tests/interop/node."""
    executable = shutil.which("node")
    if executable is None:
        missing("node is not on PATH", "install Node.js and npm, e.g. apt-get install nodejs npm")
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").is_file():
        missing(
            f"Node's ws is not installed in {NODE_DIR / 'node_modules'}",
            "`nox -s interop` installs it with npm",
        )
    return executable


@pytest.fixture(scope="session")
def chromium() -> str:
    """Return the path of Debian's ``chromium``."""
    executable = shutil.which("chromium")
    if executable is None:
        missing("chromium is not on PATH", "`nox -s interop` installs it with apt-get as root")
    return executable
