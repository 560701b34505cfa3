"""Each server the deployment tests use is installed and runs."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import require_program

# (program, Debian package, arguments that print its version and exit 0)
SERVERS = [
    ("nginx", "nginx", ["-v"]),
    ("haproxy", "haproxy", ["-v"]),
    ("redis-server", "redis-server", ["--version"]),
    ("tinyproxy", "tinyproxy", ["-v"]),
    ("danted", "dante-server", ["-v"]),
]


@pytest.mark.parametrize(("program", "package", "arguments"), SERVERS)
def test_server_runs(program: str, package: str, arguments: list[str]) -> None:
    path = require_program(program, package)
    done = subprocess.run([path, *arguments], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).strip()
