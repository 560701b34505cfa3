"""The load and fault harness: each library's echo server under load and attack, side by side.

Run ``python -m benchmarks.load`` (or ``nox -s load``); ``--help`` lists the
options and ``--quick`` runs a small version. Seven scenarios run against a
fresh server process of each library in turn (:mod:`benchmarks.load.scenarios`):
many compressed connections whose every echo is checked, the same with
hostile clients among them, newcomers during the load, connect/close churn,
slowloris, a client that never reads, and fourteen protocol violations. The
clients are raw-socket asyncio processes (:mod:`benchmarks.load.agent`), far
cheaper per message than the servers, so that the servers are what is
measured.
"""
