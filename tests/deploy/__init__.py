"""Deployment tests (``nox -s proxy``): real nginx, HAProxy, Redis and client proxies."""
