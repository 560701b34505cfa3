"""What every harness in tests/fuzz shares: reading the input, seeding, running libFuzzer.

Strategy: a harness is a module with a ``one_input(data: bytes) -> None``
function that checks a parser's documented contract on ``data`` (and raises
``AssertionError`` or lets an undocumented exception escape when it does
not), a ``seeds() -> list[bytes]`` function that builds its starting corpus
from valid inputs, and a ``main()`` that hands both to :func:`run`.

Nothing here imports atheris at module level: the harnesses stay importable
(for mypy, and for the pytest in ``test_harnesses.py`` that runs each
``one_input`` over its seeds) where atheris is not installed. Inputs are read
with :class:`Reader` rather than atheris' ``FuzzedDataProvider`` for the same
reason; it also makes a crash file replayable with nothing but pytest.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

#: The most pieces one input is cut into: enough to split every header
#: field of a few frames, few enough to keep each run fast.
MAX_PIECES: Final = 16


class Reader:
    """Consume a fuzzer's input from the front: settings first, the payload last.

    Every method returns a value even when the input ran out (zeros, empty
    bytes), so a short input is still a valid one: libFuzzer never wastes
    runs on inputs a harness rejects.

    Args:
        data: the fuzzer's input.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        """Take one byte (0 once the input is used up)."""
        if self._pos >= len(self._data):
            return 0
        value = self._data[self._pos]
        self._pos += 1
        return value

    def choice(self, count: int) -> int:
        """Take one byte and return it reduced to ``range(count)``."""
        return self.byte() % count

    def flag(self) -> bool:
        """Take one byte and return its low bit."""
        return bool(self.byte() & 1)

    def take(self, size: int) -> bytes:
        """Take up to ``size`` bytes."""
        piece = self._data[self._pos : self._pos + size]
        self._pos += len(piece)
        return piece

    def remaining(self) -> int:
        """Return how many bytes are left."""
        return len(self._data) - self._pos

    def rest(self) -> bytes:
        """Take everything that is left."""
        return self.take(len(self._data) - self._pos)


def cut_points(seed: int, size: int) -> list[int]:
    """Return sorted cut positions in ``range(1, size)`` derived from ``seed``.

    ``seed`` 0 gives no cut (one piece); others a deterministic spread, from
    every byte apart to a few large pieces, so the fuzzer can steer the
    splitting with one byte.
    """
    if seed == 0 or size < 2:
        return []
    step = seed % 7 + 1
    count = min(seed % MAX_PIECES + 1, size - 1)
    cuts = {(i * step * 37 + seed) % (size - 1) + 1 for i in range(count)}
    return sorted(cuts)


def pieces(data: bytes, seed: int) -> Iterator[bytes]:
    """Yield ``data`` cut at :func:`cut_points` ``(seed, len(data))``; never an empty piece."""
    start = 0
    for cut in [*cut_points(seed, len(data)), len(data)]:
        if cut > start:
            yield data[start:cut]
            start = cut


def write_seeds(directory: Path, seeds: Sequence[bytes]) -> None:
    """Write each seed into ``directory`` under its SHA-1, as libFuzzer names corpus files."""
    directory.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


#: The packages whose code is instrumented for coverage: trio_wsext, and h11
#: under the handshakes. Instrumenting everything loaded (``instrument_all``)
#: costs most of a minute at every start and guides mutations through the
#: standard library instead.
INSTRUMENTED: Final = ("trio_wsext", "h11")


def run(harness: str, seeds: Callable[[], Sequence[bytes]], argv: Sequence[str]) -> None:
    """Run libFuzzer with atheris on the ``one_input`` of module ``harness``; never returns.

    Every argument starting with ``-`` goes to libFuzzer (``-max_total_time=60``,
    ``-artifact_prefix=...``). The first other argument is the corpus
    directory: the seeds are written into it when it is empty, so each run
    starts from valid inputs. Without one, a temporary directory is used.

    The harness runs as ``__main__``, with trio_wsext already imported
    uninstrumented; so the packages of :data:`INSTRUMENTED` are dropped from
    ``sys.modules`` and the harness module is imported again, by name, under
    ``atheris.instrument_imports``: its ``one_input`` then calls instrumented
    code, and coverage guides the mutations.
    """
    # Imported here, by name: only running a harness needs atheris (and it has no types).
    atheris = importlib.import_module("atheris")
    args = list(argv)
    options = [arg for arg in args[1:] if arg.startswith("-")]
    directories = [arg for arg in args[1:] if not arg.startswith("-")]
    if not directories:
        directories = [tempfile.mkdtemp(prefix="trio_wsext-fuzz-")]
    corpus = Path(directories[0])
    if not corpus.is_dir() or not any(corpus.iterdir()):
        write_seeds(corpus, seeds())
    for name in list(sys.modules):
        if name.partition(".")[0] in INSTRUMENTED:
            del sys.modules[name]
    with atheris.instrument_imports(include=list(INSTRUMENTED)):
        module = importlib.import_module(harness)
    atheris.Setup([args[0], *options, *directories], module.one_input)
    atheris.Fuzz()
