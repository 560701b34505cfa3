"""Tests of trio_wsext.cli.samples: the demo's and the benchmark's messages."""

from __future__ import annotations

import json
import zlib

import pytest

from trio_wsext.cli.samples import MESSAGE_SIZES, sample_message


def test_message_sizes_are_the_seeds() -> None:
    """The four sizes are the lengths of the seed's performance-test messages."""
    seed = ["Hello" * 20, "Test message " * 100, "Data " * 2000, "Content " * 10000]
    assert [size for _, size in MESSAGE_SIZES] == [len(message) for message in seed]
    assert [name for name, _ in MESSAGE_SIZES] == ["Small", "Medium", "Large", "Huge"]


@pytest.mark.parametrize("size", [0, 1, 2, 99, 100, 1_300, 80_000], ids=str)
def test_sample_message_has_exact_ascii_length(size: int) -> None:
    """A sample message is exactly ``size`` characters, all ASCII."""
    message = sample_message(size)
    assert len(message) == size
    assert message.isascii()


def test_sample_message_is_deterministic_per_seed() -> None:
    """The same size and seed give the same text; another seed another text."""
    assert sample_message(1_300) == sample_message(1_300)
    assert sample_message(1_300, seed=1) != sample_message(1_300)


def test_sample_message_is_a_cut_json_array_of_records() -> None:
    """The text is a JSON array of records, cut at the size."""
    message = sample_message(10_000)
    complete = message[: message.rindex("},") + 1] + "]"
    records = json.loads(complete)
    assert len(records) > 10
    assert set(records[0]) == {"id", "event", "user", "city", "amount", "ts", "ok"}


def test_sample_message_compresses_like_real_json_not_like_repeated_words() -> None:
    """Deflate shrinks a sample 3 to 10 times, not 100 times as the seed's text."""
    message = sample_message(80_000).encode()
    ratio = len(message) / len(zlib.compress(message))
    assert 3 < ratio < 10
    assert len(b"Content " * 10000) / len(zlib.compress(b"Content " * 10000)) > 100


def test_sample_message_refuses_negative_size() -> None:
    """A negative size is a ValueError naming it."""
    with pytest.raises(ValueError, match=r"^size must be >= 0, not -1$"):
        sample_message(-1)
