"""``python -m trio_wsext``: the command line of :mod:`trio_wsext.cli`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
