"""Interop tests: trio_wsext against independently written WebSocket peers."""
