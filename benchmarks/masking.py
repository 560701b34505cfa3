"""Measure WebSocket masking: the pure-Python code against compiled candidates.

Run from the repository's root::

    python -m benchmarks.masking              # the throughput table (about a minute)
    python -m benchmarks.masking --quick      # fewer, shorter runs
    python -m benchmarks.masking --crossover  # also: where the bulk paths overtake the int XOR

Strategy: every candidate masks the same random payloads with the same key,
in two ways: a masked copy of a ``bytes`` payload, and in place into a
``bytearray`` at the offset where :func:`trio_wsext.frames.serialize_frame`
puts the payload (after a 4- or 10-byte header and the 4-byte key, so the
payload is not 8-byte aligned). A candidate without an in-place function
masks a copy and writes it back, as a caller would have to. Each figure is the
median of ``--repeat`` runs; the runs of all candidates are interleaved, so
that a burst of load on the shared machine hurts them alike. Every
candidate's result is checked against the pure-Python one first.

The candidates:

- ``python``: :mod:`trio_wsext.masking`'s pure-Python backend (the fallback);
- ``numpy``: its numpy backend, when numpy is installed;
- ``wsaccel``: ``wsaccel.xormask.createXorMasker(key).process(data)``;
- ``websockets``: ``websockets.speedups.apply_mask``, for comparison only;
- ``tornado``: ``tornado.speedups.websocket_mask``, for comparison only.

A candidate that is not installed is listed as such, and the rest still run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Final

import attrs

from trio_wsext import masking

SIZES: Final = ((4096, "4 KiB"), (65536, "64 KiB"), (2**20, "1 MiB"), (2**24, "16 MiB"))
"""The payload sizes of the throughput table."""

CROSSOVER_SIZES: Final = (64, 256, 512, 768, 1024, 1536, 2048, 4096, 8192, 16384)
"""The payload sizes of the crossover table, around the backends' small-payload bounds."""

KEY: Final = b"\x37\xfa\x21\x3d"
"""The masking key (RFC 6455 §5.7's example key)."""

COPY: Final = "copy"
"""The operation that returns a masked copy of a ``bytes`` payload."""

IN_PLACE: Final = "in place"
"""The operation that masks a slice of a ``bytearray`` in place."""

Masked = Callable[[masking.Buffer, bytes], bytes | bytearray]
"""Return a masked copy: ``(data, key)``."""

InPlace = Callable[[bytearray, int, int, bytes], None]
"""Mask ``buf[start:stop]`` in place: ``(buf, start, stop, key)``."""


@attrs.frozen
class Candidate:
    """One masking implementation under test."""

    name: str
    masked: Masked
    in_place: InPlace
    version: str


def payload_offset(size: int) -> int:
    """Return where ``serialize_frame`` puts a ``size``-byte payload: after header and key."""
    return (2 if size < 126 else 4 if size < 65536 else 10) + 4


def write_back(masked: Masked, *, needs_bytes: bool = False) -> InPlace:
    """Return an in-place function built from a copying one: mask a slice, assign it back.

    ``needs_bytes``: the function takes ``bytes`` only, so the slice is copied
    first. The result is written through a memoryview: assigning ``bytes`` to
    a slice of a ``bytearray`` copies them into a temporary ``bytearray``
    first (CPython 3.11), which for a large payload costs more than masking.
    Beware the large figures of ``needs_bytes`` candidates: two large
    temporaries freed per call make glibc return the memory to the system,
    so that every call page-faults it back in.
    """

    def in_place(buf: bytearray, start: int, stop: int, key: bytes) -> None:
        with memoryview(buf) as view, view[start:stop] as part:
            view[start:stop] = masked(bytes(part) if needs_bytes else part, key)

    return in_place


def _version(distribution: str) -> str:
    """Return the installed version of ``distribution``."""
    return metadata.version(distribution)


def _wsaccel() -> Candidate:
    """Return wsaccel's masker, which keeps no state across calls when made per call."""
    xormask = importlib.import_module("wsaccel.xormask")
    create = xormask.createXorMasker

    def masked(data: masking.Buffer, key: bytes) -> bytes:
        result: bytes = create(key).process(data)
        return result

    return Candidate("wsaccel", masked, write_back(masked), _version("wsaccel"))


def _websockets() -> Candidate:
    """Return websockets' C ``apply_mask``."""
    apply_mask = importlib.import_module("websockets.speedups").apply_mask

    def masked(data: masking.Buffer, key: bytes) -> bytes:
        result: bytes = apply_mask(data, key)
        return result

    return Candidate("websockets", masked, write_back(masked), _version("websockets"))


def _tornado() -> Candidate:
    """Return tornado's C ``websocket_mask``, whose arguments come key first."""
    websocket_mask = importlib.import_module("tornado.speedups").websocket_mask

    def masked(data: masking.Buffer, key: bytes) -> bytes:
        result: bytes = websocket_mask(key, data)
        return result

    return Candidate("tornado", masked, write_back(masked, needs_bytes=True), _version("tornado"))


def _trio_wsext(name: str) -> Candidate:
    """Return :mod:`trio_wsext.masking`'s backend ``name``; ``KeyError`` when it is missing."""
    backend = masking.available_backends()[name]
    version = _version("numpy") if name == "numpy" else platform.python_version()
    return Candidate(name, backend.masked, backend.mask_in_place, version)


LOADERS: Final[dict[str, Callable[[], Candidate]]] = {
    "python": lambda: _trio_wsext("python"),
    "numpy": lambda: _trio_wsext("numpy"),
    "wsaccel": _wsaccel,
    "websockets": _websockets,
    "tornado": _tornado,
}
"""Every candidate's loader, in the table's column order."""


def load_candidates() -> tuple[list[Candidate], list[str]]:
    """Return the candidates that load, and the names of those that do not."""
    found: list[Candidate] = []
    missing: list[str] = []
    for name, load in LOADERS.items():
        try:
            found.append(load())
        except (ImportError, KeyError, AttributeError):
            missing.append(name)
    return found, missing


def bulk_candidates() -> list[Candidate]:
    """Return the pure-Python and numpy bulk paths, and the integer XOR, each at every size.

    For the crossover table: the backends as shipped switch to the integer
    XOR below their bound, so they cannot show where that bound should be.
    """

    def python_masked(data: masking.Buffer, key: bytes) -> bytearray:
        out = bytearray(data)
        masking.python_mask_in_place(out, 0, len(out), key)
        return out

    def int_in_place(buf: bytearray, start: int, stop: int, key: bytes) -> None:
        buf[start:stop] = masking.xor_as_int(memoryview(buf)[start:stop], key)

    version = platform.python_version()
    found = [
        Candidate("int XOR", masking.xor_as_int, int_in_place, version),
        Candidate("translate", python_masked, masking.python_mask_in_place, version),
    ]
    numpy_backend = masking._load_numpy(small_below=0)
    if numpy_backend is not None:
        found.append(
            Candidate(
                "numpy bulk", numpy_backend.masked, numpy_backend.mask_in_place, _version("numpy")
            )
        )
    return found


def _timed(step: Callable[[], object], min_time: float) -> float:
    """Call ``step`` in doubling batches until ``min_time`` has passed; return calls per second."""
    calls = 0
    batch = 1
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            step()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return calls / elapsed
        batch *= 2


def _step(candidate: Candidate, operation: str, data: bytes) -> Callable[[], object]:
    """Return one call of ``operation`` by ``candidate`` on ``data``, ready to time."""
    key = KEY
    if operation == COPY:
        masked = candidate.masked
        return lambda: masked(data, key)
    start = payload_offset(len(data))
    stop = start + len(data)
    buf = bytearray(start) + data
    in_place = candidate.in_place
    # Masking twice restores the payload, so the buffer stays the same random bytes.
    return lambda: in_place(buf, start, stop, key)


def check(candidate: Candidate, data: bytes) -> None:
    """Fail unless ``candidate`` masks ``data`` exactly as the pure-Python backend does."""
    expected = bytes(masking.python_masked(data, KEY))
    if bytes(candidate.masked(data, KEY)) != expected:
        raise AssertionError(f"{candidate.name}: wrong masked copy of {len(data)} bytes")
    start = payload_offset(len(data))
    buf = bytearray(start) + data
    candidate.in_place(buf, start, start + len(data), KEY)
    if buf[start:] != expected:
        raise AssertionError(f"{candidate.name}: wrong in-place mask of {len(data)} bytes")


def measure(
    candidates: Sequence[Candidate], sizes: Sequence[int], repeat: int, min_time: float
) -> dict[tuple[str, str, int], float]:
    """Return the median MB/s of every (candidate, operation, size), runs interleaved."""
    samples: dict[tuple[str, str, int], list[float]] = {}
    for size in sizes:
        data = os.urandom(size)
        for candidate in candidates:
            check(candidate, data)
        for _ in range(repeat):
            for operation in (COPY, IN_PLACE):
                for candidate in candidates:
                    rate = _timed(_step(candidate, operation, data), min_time)
                    samples.setdefault((candidate.name, operation, size), []).append(
                        rate * size / 1e6
                    )
    return {key: statistics.median(rates) for key, rates in samples.items()}


def _label(size: int) -> str:
    """Return ``size`` as the table writes it: ``64 B``, ``4 KiB``, ``16 MiB``."""
    for unit, name in ((2**20, "MiB"), (2**10, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


def _cell(rate: float, base: float) -> str:
    """Return one table cell: MB/s and the ratio to the first column's."""
    return f"{rate:,.0f} ({rate / base:.2f}x)"


def table(
    names: Sequence[str],
    missing: Sequence[str],
    sizes: Sequence[int],
    rates: dict[tuple[str, str, int], float],
) -> str:
    """Return the Markdown table: one row per operation and size, one column per candidate.

    Each cell is MB/s and, in brackets, the ratio to the first candidate's.
    """
    header = ["operation", "size", *names, *missing]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for operation in (COPY, IN_PLACE):
        for size in sizes:
            base = rates[(names[0], operation, size)]
            cells = [_cell(rates[(name, operation, size)], base) for name in names]
            cells += ["not installed"] * len(missing)
            lines.append("| " + " | ".join([operation, _label(size), *cells]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the throughput table (and with ``--crossover`` the crossover table) as Markdown."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.masking", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="3 short runs per figure")
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median)")
    parser.add_argument("--crossover", action="store_true", help="also the small-size table")
    args = parser.parse_args(argv)
    repeat, min_time = (3, 0.02) if args.quick else (args.repeat, 0.05)
    candidates, missing = load_candidates()
    version = sys.version.split()[0]
    print(f"Python {version} on {platform.machine()}, {os.cpu_count()} CPUs; ", end="")
    print(f"trio_wsext.masking.BACKEND = {masking.BACKEND!r}; medians of {repeat} runs; MB/s\n")
    print(", ".join(f"{c.name} {c.version}" for c in candidates), end="")
    print("".join(f"; {name}: not installed" for name in missing), "\n")
    sizes = [size for size, _ in SIZES]
    rates = measure(candidates, sizes, repeat, min_time)
    print(table([c.name for c in candidates], missing, sizes, rates))
    if args.crossover:
        bulk = bulk_candidates()
        print("\nThe bulk paths at every size, against the integer XOR (the small path):\n")
        rates = measure(bulk, CROSSOVER_SIZES, repeat, min_time)
        print(table([c.name for c in bulk], [], CROSSOVER_SIZES, rates))


if __name__ == "__main__":
    main()
