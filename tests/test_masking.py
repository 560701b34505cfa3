"""Tests of trio_wsext.masking: every backend masks exactly as a bytewise XOR does.

Each backend that loads here is tested, the pure-Python one always (numpy's
when numpy is installed, as the ``test`` extra installs it), whichever one
the module chose; and the frame codec is run on each.
"""

from __future__ import annotations

import itertools
import operator
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given, settings, strategies as st

from trio_wsext import frames, masking
from trio_wsext.frames import Frame, FrameParser, Opcode, serialize_frame
from trio_wsext.masking import Backend

ROOT: Final = Path(__file__).resolve().parent.parent

#: The masking key of the examples in RFC 6455 §5.7.
RFC_KEY: Final = b"\x37\xfa\x21\x3d"

#: Every backend that loads here, by name; ``"python"`` is always one.
BACKENDS: Final = masking.available_backends()

HAVE_NUMPY: Final = "numpy" in BACKENDS

#: Payload sizes around every edge: the first words, the backends' integer-path
#: bounds (1 KiB, 8 KiB), the pure-Python block (64 KiB), odd lengths, 70,000.
SIZES: Final = sorted(
    {0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 33, 1000, 4097, 70000}
    | {edge + delta for edge in (1024, 8192, 65536) for delta in (-5, -1, 0, 1, 3)}
)

#: Where the slice to mask starts in its buffer: every alignment modulo 8 and beyond.
STARTS: Final = (0, 1, 2, 3, 4, 5, 6, 7, 8, 13, 14)


def reference(data: bytes, key: bytes) -> bytes:
    """Return ``data`` XOR ``key`` repeated, byte by byte: obviously right, and slow."""
    return bytes(map(operator.xor, data, itertools.cycle(key)))


def payload(size: int) -> bytes:
    """Return ``size`` deterministic bytes with every byte value (so every table entry is hit)."""
    return bytes((i * 7 + i // 256) & 0xFF for i in range(size))


def rotated(key: bytes, phase: int) -> bytes:
    """Return the key as seen from byte ``phase`` of a payload: a split payload resumes so."""
    return key[phase:] + key[:phase]


@pytest.fixture(params=sorted(BACKENDS), ids=str)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend that loads here."""
    return BACKENDS[request.param]


def test_reference_matches_the_rfc_example() -> None:
    """The reference masks "Hello" with RFC 6455 §5.7's key into its bytes: it is right."""
    assert reference(b"Hello", RFC_KEY) == bytes.fromhex("7f9f4d5158")


def test_python_is_always_available_and_the_choice_is_one_of_them() -> None:
    """The pure-Python backend always loads; the module uses one that loads."""
    assert BACKENDS["python"].name == "python"
    assert masking.BACKEND in BACKENDS
    assert BACKENDS[masking.BACKEND].small_below == masking.SMALL_BELOW


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_masked_matches_the_reference(backend: Backend, size: int) -> None:
    """A masked copy is the bytewise XOR, from bytes, bytearray and offset memoryviews."""
    data = payload(size + 7)
    for start in STARTS[:8]:
        piece = data[start : start + size]
        expected = reference(piece, RFC_KEY)
        assert bytes(backend.masked(piece, RFC_KEY)) == expected
        assert bytes(backend.masked(bytearray(piece), RFC_KEY)) == expected
        assert bytes(backend.masked(memoryview(data)[start : start + size], RFC_KEY)) == expected


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_mask_in_place_matches_the_reference(backend: Backend, size: int) -> None:
    """Masking ``buf[start:stop]`` changes exactly those bytes, key byte 0 at ``start``."""
    data = payload(size)
    expected = reference(data, RFC_KEY)
    for start in STARTS:
        before, after = b"\xaa" * start, b"\x55" * 11
        buf = bytearray(before + data + after)
        backend.mask_in_place(buf, start, start + size, RFC_KEY)
        assert buf == before + expected + after


@pytest.mark.parametrize("shift", range(1, 9), ids=str)
def test_mask_in_place_after_the_buffer_start_moves(backend: Backend, shift: int) -> None:
    """Deleting a bytearray's first bytes moves its start address; masking stays right."""
    data = payload(4100)
    buf = bytearray(b"\xee" * shift + data)
    del buf[:shift]  # as FrameParser drops consumed bytes
    backend.mask_in_place(buf, 0, len(buf), RFC_KEY)
    assert buf == reference(data, RFC_KEY)


@pytest.mark.parametrize("size", [3, 1027, 8195, 70000], ids=str)
@pytest.mark.parametrize("phase", range(4), ids=lambda phase: f"phase-{phase}")
def test_a_split_payload_masks_with_the_rotated_key(
    backend: Backend, size: int, phase: int
) -> None:
    """Masking from byte ``cut`` with the key rotated by ``cut % 4`` continues the whole mask."""
    data = payload(size)
    expected = reference(data, RFC_KEY)
    for cut in {phase, phase + 4 * (size // 8), size - (size - phase) % 4}:
        if cut > size:
            continue
        first = backend.masked(data[:cut], RFC_KEY)
        rest = backend.masked(data[cut:], rotated(RFC_KEY, cut % 4))
        assert bytes(first) + bytes(rest) == expected
        buf = bytearray(data)
        backend.mask_in_place(buf, cut, size, rotated(RFC_KEY, cut % 4))
        backend.mask_in_place(buf, 0, cut, RFC_KEY)
        assert buf == expected


@pytest.mark.parametrize("size", [0, 5, 1024, 8192, 70000], ids=str)
def test_masked_types(backend: Backend, size: int) -> None:
    """A masked copy is ``bytes`` below the backend's integer-path bound, else a ``bytearray``."""
    result = backend.masked(payload(size), RFC_KEY)
    assert type(result) is (bytes if size < backend.small_below else bytearray)


@pytest.mark.parametrize("size", [0, 7, 1025, 65537], ids=str)
def test_masking_twice_is_the_identity(backend: Backend, size: int) -> None:
    """Masking and unmasking are the same operation, in a copy and in place."""
    data = payload(size)
    key = b"\x00\xff\x81\x7e"
    assert bytes(backend.masked(backend.masked(data, key), key)) == data
    buf = bytearray(b"-" + data)
    backend.mask_in_place(buf, 1, size + 1, key)
    assert size < 4 or buf[1:] != data
    backend.mask_in_place(buf, 1, size + 1, key)
    assert buf == b"-" + data


@st.composite
def slices(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """A buffer and a slice of it: any length up to past the numpy bound, any start."""
    data = draw(st.binary(max_size=3000))
    start = draw(st.integers(0, len(data)))
    stop = draw(st.integers(start, len(data)))
    return data, start, stop


@settings(max_examples=300, deadline=None)
@given(slices(), st.binary(min_size=4, max_size=4), st.sampled_from(sorted(BACKENDS)))
def test_property_every_backend_is_a_bytewise_xor(
    sliced: tuple[bytes, int, int], key: bytes, name: str
) -> None:
    """For any data, slice and key: both functions give the bytewise XOR, and undo themselves."""
    data, start, stop = sliced
    backend = BACKENDS[name]
    expected = reference(data[start:stop], key)
    assert bytes(backend.masked(memoryview(data)[start:stop], key)) == expected
    buf = bytearray(data)
    backend.mask_in_place(buf, start, stop, key)
    assert buf == data[:start] + expected + data[stop:]
    backend.mask_in_place(buf, start, stop, key)
    assert buf == data


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=20000), st.binary(min_size=4, max_size=4))
def test_property_numpy_and_python_agree(data: bytes, key: bytes) -> None:
    """Every backend gives the pure-Python one's bytes, on payloads up to 20,000 bytes."""
    expected = bytes(BACKENDS["python"].masked(data, key))
    for backend in BACKENDS.values():
        assert bytes(backend.masked(data, key)) == expected


# -- choosing the backend ----------------------------------------------------------


def backend_in_subprocess(environment: dict[str, str]) -> str:
    """Return ``masking.BACKEND`` as a fresh interpreter with ``environment`` chooses it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(masking.BACKEND_ENV, None)
    result = subprocess.run(
        [sys.executable, "-c", "from trio_wsext import masking; print(masking.BACKEND)"],
        env=env | environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.mark.parametrize("value", ["python", " Python "])
def test_environment_variable_forces_python(value: str) -> None:
    """TRIO_WSEXT_MASK_BACKEND=python chooses pure Python, numpy installed or not."""
    assert backend_in_subprocess({"TRIO_WSEXT_MASK_BACKEND": value}) == "python"


@pytest.mark.skipif(not HAVE_NUMPY, reason="numpy is not installed (pip install trio_wsext[fast])")
def test_numpy_is_the_default_when_installed() -> None:
    """Without the variable, an interpreter that has numpy masks with it."""
    assert backend_in_subprocess({}) == "numpy"


def test_python_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """When numpy does not import, only the pure-Python backend loads, and it is chosen."""
    monkeypatch.delenv(masking.BACKEND_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "numpy", None)
    assert masking._load_numpy() is None
    assert list(masking.available_backends()) == ["python"]
    assert masking._choose_backend().name == "python"


# -- the frame codec on each backend -----------------------------------------------


def test_frames_use_the_chosen_backend() -> None:
    """frames.py masks with the chosen backend's functions and its integer-path bound."""
    imported = vars(frames)  # names frames.py imports for itself, not re-exported
    assert imported["_mask_in_place"] is masking.mask_in_place
    assert imported["_masked"] is masking.masked
    assert frames._TRANSLATE_MASK_FROM == masking.SMALL_BELOW


@pytest.fixture
def frames_on(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """Make frames.py mask with ``backend``, as if it had been chosen at import."""
    monkeypatch.setattr(frames, "_mask_in_place", backend.mask_in_place)
    monkeypatch.setattr(frames, "_masked", backend.masked)
    monkeypatch.setattr(frames, "_TRANSLATE_MASK_FROM", backend.small_below)
    return backend


@pytest.mark.parametrize("size", [0, 125, 1023, 1024, 8191, 8192, 65536, 70001], ids=str)
def test_masked_frames_round_trip_on_each_backend(frames_on: Backend, size: int) -> None:
    """A masked frame carries the reference-masked payload and parses back, whole or in pieces."""
    data = payload(size)
    wire = serialize_frame(Frame(Opcode.BINARY, data), mask=True, key=RFC_KEY)
    assert wire.endswith(RFC_KEY + reference(data, RFC_KEY))
    for step in (len(wire) or 1, 4099, 1001):
        parser = FrameParser(require_mask=True)
        for i in range(0, len(wire), step):
            parser.feed(wire[i : i + step])
        frame = parser.next_frame()
        assert frame is not None
        assert frame.data == data
