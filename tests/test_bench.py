"""Tests of trio_wsext.cli.bench: the measurement behind ``python -m trio_wsext bench``."""

from __future__ import annotations

import json

import pytest
import trio

from trio_wsext.cli.bench import BenchResult, format_bench_table, results_as_json, run_bench


async def test_run_bench_measures_each_size_off_then_deflate() -> None:
    """Every size is measured with compression off, then on, for the iterations asked."""
    calls: list[tuple[int, int, str]] = []
    with trio.fail_after(20):
        results = await run_bench(
            iterations=3,
            sizes=[("Tiny", 10), ("Big", 50_000)],
            progress=lambda done, total, label: calls.append((done, total, label)),
        )
    assert [(r.size_name, r.compression, r.round_trips) for r in results] == [
        ("Tiny", "off", 3),
        ("Tiny", "deflate", 3),
        ("Big", "off", 3),
        ("Big", "deflate", 3),
    ]
    assert calls == [
        (0, 4, "Tiny (10 B), compression off"),
        (1, 4, "Tiny (10 B), compression deflate"),
        (2, 4, "Big (50,000 B), compression off"),
        (3, 4, "Big (50,000 B), compression deflate"),
        (4, 4, "done"),
    ]
    tiny_off, _, big_off, big_deflate = results
    # Sent and echoed: twice the message per round trip.
    assert big_off.app_bytes == big_deflate.app_bytes == 3 * 2 * 50_000
    # Uncompressed, the wire adds a 2-byte header (+4 mask one way) per 10-byte message.
    assert tiny_off.wire_bytes == 3 * (12 + 16)
    assert big_deflate.wire_bytes < big_off.wire_bytes / 2


async def test_run_bench_runs_each_case_for_the_duration_when_no_iterations() -> None:
    """Without ``iterations`` a case runs until ``duration`` has passed."""
    with trio.fail_after(20):
        results = await run_bench(duration=0.05, sizes=[("Tiny", 10)])
    assert [result.round_trips > 0 for result in results] == [True, True]
    assert all(result.seconds >= 0.05 for result in results)


def test_bench_result_figures() -> None:
    """Round trips/s, MB/s and the wire ratio follow from the counts."""
    result = BenchResult("deflate", "Large", 10_000, 50, 0.5, 1_000_000, 250_000)
    assert result.round_trips_per_second == 100
    assert result.mb_per_second == 2.0
    assert result.wire_ratio == 0.25


def test_bench_result_figures_are_zero_without_time_or_bytes() -> None:
    """A case that took no measurable time or moved no bytes reports zeros, not errors."""
    result = BenchResult("off", "Small", 100, 0, 0.0, 0, 0)
    assert (result.round_trips_per_second, result.mb_per_second, result.wire_ratio) == (0, 0, 0)


def test_format_bench_table() -> None:
    """The table has a header, a rule and one aligned row per result."""
    results = [
        BenchResult("off", "Small", 100, 1000, 0.25, 200_000, 212_000),
        BenchResult("deflate", "Huge", 80_000, 10, 0.5, 1_600_000, 300_000),
    ]
    assert format_bench_table(results) == (
        "Size       Message Compression Round trips/s     MB/s Wire/app\n"
        "--------------------------------------------------------------\n"
        "Small        100 B off                 4,000     0.80     1.06\n"
        "Huge      80,000 B deflate                20     3.20     0.19"
    )


def test_results_as_json_gives_the_duration_only_without_iterations() -> None:
    """The duration asked is recorded only when it decided how long each case ran."""
    data = results_as_json([], server="ws://h/", duration=2.0)
    assert (data["iterations"], data["duration"], data["results"]) == (None, 2.0, [])
    assert results_as_json([], server="ws://h/", iterations=3, duration=2.0)["duration"] is None


def test_results_as_json_names_the_setup() -> None:
    """The JSON form holds the versions, the server and every figure."""
    result = BenchResult("off", "Small", 100, 4, 0.5, 800, 848)
    data = json.loads(json.dumps(results_as_json([result], server="in-process", iterations=4)))
    assert data["server"] == "in-process"
    assert data["trio"] == trio.__version__
    assert (data["iterations"], data["duration"]) == (4, None)
    assert data["results"] == [
        {
            "compression": "off",
            "size_name": "Small",
            "message_bytes": 100,
            "round_trips": 4,
            "seconds": 0.5,
            "app_bytes": 800,
            "wire_bytes": 848,
            "round_trips_per_second": 8.0,
            "mb_per_second": pytest.approx(0.0016),
            "wire_ratio": 1.06,
        }
    ]
