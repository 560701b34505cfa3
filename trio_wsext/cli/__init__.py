"""The command line, ``python -m trio_wsext`` (or ``trio-wsext``): its parser and subcommands.

:mod:`~trio_wsext.cli.main` parses arguments and runs one subcommand;
:mod:`~trio_wsext.cli.echo` is ``serve``'s echo server,
:mod:`~trio_wsext.cli.console` ``connect``'s interactive client,
:mod:`~trio_wsext.cli.demo` the compression demo, :mod:`~trio_wsext.cli.bench`
the benchmark, and :mod:`~trio_wsext.cli.samples` the messages both measure
with. None of it is needed to use the library.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
