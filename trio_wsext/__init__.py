"""trio_wsext: WebSocket client and server for trio, with composable extensions."""

from __future__ import annotations
