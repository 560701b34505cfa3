"""Benchmarks: trio_wsext side by side with the other Python WebSocket libraries.

Run ``python -m benchmarks`` (or ``nox -s bench``); ``--help`` lists the
options. ``benchmarks.adapters`` holds one module per library,
``benchmarks.workloads`` one per workload, ``benchmarks.harness`` runs them
interleaved in child processes and ``benchmarks.report`` prints the table.
``python -m benchmarks.profile`` profiles trio_wsext's server and client
with py-spy on the same workloads.
"""
