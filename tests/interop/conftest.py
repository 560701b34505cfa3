"""Locate the external peers: Node with its ``ws`` package, and Debian's chromium.

Outside CI a missing peer skips its tests with the reason; under CI (``CI=true``) it fails
them, so that a green CI run means every peer really ran.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final, NoReturn

import pytest

NODE_DIR: Final = Path(__file__).parent / "node"
IN_CI: Final = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
INSTALL_HINT: Final = "`nox -s interop` installs it"


def missing(what: str) -> NoReturn:
    """Fail under CI, else skip, because the peer ``what`` describes is not installed."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: every interop peer must be present)", pytrace=False)
    pytest.skip(f"{what}; {INSTALL_HINT}")


@pytest.fixture(scope="session")
def node() -> str:
    """Return the path of ``node`` once Node's ``ws`` is installed under tests/interop/node."""
    executable = shutil.which("node")
    if executable is None:
        missing("node is not on PATH")
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").is_file():
        missing(f"Node's ws is not installed in {NODE_DIR / 'node_modules'}")
    return executable


@pytest.fixture(scope="session")
def chromium() -> str:
    """Return the path of Debian's ``chromium``."""
    executable = shutil.which("chromium")
    if executable is None:
        missing("chromium is not on PATH")
    return executable
