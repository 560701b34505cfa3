"""The fuzz harnesses keep working: each one_input passes its seeds and random bytes.

These run without atheris, in the ordinary test session, so that a change to
a parser or to a harness that breaks the harness (or a seed that no longer
parses as intended) shows up in CI and not only in ``nox -s fuzz``.
"""

from __future__ import annotations

import importlib
import random
from pathlib import Path
from types import ModuleType
from typing import Final

import pytest
from campaign import HARNESSES, parse_log
from fuzzing import Reader, cut_points, pieces, write_seeds

#: Random inputs per harness: enough to reach each mode, few enough for CI.
RANDOM_INPUTS: Final = 200


def harness(name: str) -> ModuleType:
    """Import harness module ``name``."""
    return importlib.import_module(name)


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_accepts_its_seeds(name: str) -> None:
    """Every seed of a harness passes its own contract checks."""
    module = harness(name)
    seeds = module.seeds()
    assert seeds
    for seed in seeds:
        module.one_input(seed)


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_accepts_random_and_mutated_bytes(name: str) -> None:
    """Random bytes, and seeds with a few bytes changed, pass the contract checks."""
    module = harness(name)
    rng = random.Random(name)
    for _ in range(RANDOM_INPUTS):
        module.one_input(rng.randbytes(rng.randrange(0, 400)))
    for seed in module.seeds():
        mutated = bytearray(seed)
        for _ in range(3):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        module.one_input(bytes(mutated))


def test_harness_accepts_empty_input() -> None:
    """The empty input is valid for every harness (libFuzzer starts with it)."""
    for name in HARNESSES:
        harness(name).one_input(b"")


def test_reader_gives_zeros_once_the_input_is_used_up() -> None:
    """A short input still reads as settings: zeros and empty bytes."""
    reader = Reader(b"\x05ab")
    assert (reader.choice(4), reader.take(5), reader.byte(), reader.flag()) == (1, b"ab", 0, False)
    assert (reader.remaining(), reader.rest()) == (0, b"")


@pytest.mark.parametrize("seed", [0, 1, 7, 200, 255])
def test_pieces_cut_data_into_non_empty_parts_in_order(seed: int) -> None:
    """Whatever the seed, the pieces are non-empty and join back to the data."""
    data = bytes(range(100))
    parts = list(pieces(data, seed))
    assert b"".join(parts) == data
    assert all(parts)
    assert len(parts) == len(cut_points(seed, len(data))) + 1


def test_write_seeds_names_files_by_content(tmp_path: Path) -> None:
    """Seeds are written once each, named by their SHA-1, as libFuzzer does."""
    write_seeds(tmp_path / "corpus", [b"a", b"b", b"a"])
    names = sorted(path.name for path in (tmp_path / "corpus").iterdir())
    assert names == [
        "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8",
        "e9d71f5ee7c92d6dc9e92ffdad17b8bd49418f98",
    ]


def test_campaign_reads_runs_and_coverage_from_a_libfuzzer_log() -> None:
    """The report takes the executed units and the last status line's cov and ft."""
    log = (
        "#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n"
        "#4096\tpulse  cov: 120 ft: 400 corp: 9/90b lim: 4 exec/s: 2048 rss: 31Mb\n"
        "#5000\tDONE   cov: 123 ft: 456 corp: 10/99b lim: 4 exec/s: 2500 rss: 31Mb\n"
        "stat::number_of_executed_units: 5001\n"
    )
    assert parse_log(log) == (5001, 123, 456)
    assert parse_log("") == (0, 0, 0)
