"""WebSocket masking (:rfc:`6455#section-5.3`): XOR a payload with a 4-byte key, repeated.

Strategy: masking and unmasking are the same operation, and no Python code
runs per byte in either backend. Two backends implement the same two
functions, :func:`mask_in_place` and :func:`masked`:

- ``"numpy"``, when the ``numpy`` package is installed (``pip install
  trio_wsext[fast]``): the payload is viewed as 8-byte words, aligned to an
  8-byte address, and XORed with the key repeated twice in one vectorized
  call; the few bytes before the first aligned word and after the last one
  are XORed as integers. Unaligned words would run about three times slower.
- ``"python"``, always available: each 64 KiB block is split into four
  strided slices, one per key byte, each translated through that byte's
  256-byte XOR table by ``bytes.translate``.

Below a size that depends on the backend (:data:`SMALL_BELOW`), both XOR the
payload as one big integer instead: a vectorized call costs a microsecond or
two before it masks anything, and ``int.from_bytes`` does not.

The backend is chosen when this module is imported: numpy when it imports,
else pure Python. Setting the environment variable
``TRIO_WSEXT_MASK_BACKEND=python`` before the import keeps pure Python even
when numpy is installed, to compare the two or to test the fallback.
:data:`BACKEND` names the one in use.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Final

import attrs

__all__ = [
    "BACKEND",
    "BACKEND_ENV",
    "SMALL_BELOW",
    "Backend",
    "available_backends",
    "mask_in_place",
    "masked",
]

#: What :func:`masked` accepts: any contiguous buffer of bytes.
Buffer = bytes | bytearray | memoryview

#: The environment variable that chooses the backend: ``python`` keeps the
#: pure-Python one even when numpy is installed.
BACKEND_ENV: Final = "TRIO_WSEXT_MASK_BACKEND"


@attrs.frozen
class Backend:
    """One implementation of masking, with the size from which its bulk path pays.

    Attributes:
        name: ``"numpy"`` or ``"python"``.
        mask_in_place: XOR ``buf[start:stop]`` with the key, key byte 0 at ``start``.
        masked: a masked copy of ``data``: ``bytes`` below ``small_below``,
            a new ``bytearray`` from there on.
        small_below: payloads shorter than this are XORed as one integer.
    """

    name: str
    mask_in_place: Callable[[bytearray, int, int, bytes], None]
    masked: Callable[[Buffer, bytes], bytes | bytearray]
    small_below: int


def xor_as_int(data: Buffer, key: bytes) -> bytes:
    """Return ``data`` XOR ``key`` repeated, computed as one big integer.

    The fastest way for short payloads: a few C calls, whatever the length,
    and no table or array to set up.
    """
    n = len(data)
    repeated = key * (n // 4 + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
    return value.to_bytes(n, "little")


# The pure-Python backend.

#: Below this many bytes, the pure-Python backend XORs as one integer: from
#: here on, byte translation is faster (measured: equal near 4-8 KiB; at
#: 1 MiB ~950 MB/s against ~360 MB/s, CPython 3.11 on x86_64).
_PYTHON_SMALL_BELOW: Final = 8192

#: The pure-Python backend masks in blocks of this many bytes (a multiple of 4,
#: so that every block starts at key byte 0), each block's four strided passes
#: staying in the CPU cache (measured, in place, process time: 64 KiB 1220
#: MB/s, 1 MiB 786 MB/s against 595 MB/s in one pass, 16 MiB 582 against 359).
_PYTHON_BLOCK: Final = 65536

_IDENTITY: Final = int.from_bytes(bytes(range(256)), "big")


def _xor_table(key_byte: int) -> bytes:
    """Return the 256-byte translation table for "XOR with ``key_byte``", built in C."""
    return (_IDENTITY ^ int.from_bytes(bytes((key_byte,)) * 256, "big")).to_bytes(256, "big")


def python_mask_in_place(buf: bytearray, start: int, stop: int, key: bytes) -> None:
    """XOR ``buf[start:stop]`` with ``key`` repeated, ``key[0]`` at ``start``, in pure Python.

    Per block, four strided slices, each translated by one key byte's table
    and written back. Slicing a bytearray in place saves the copy that a bytes
    source would need, and measures faster than reading a bytes object.
    """
    tables = [_xor_table(key_byte) for key_byte in key]
    for block in range(start, stop, _PYTHON_BLOCK):
        end = min(block + _PYTHON_BLOCK, stop)
        for i in range(4):
            buf[block + i : end : 4] = buf[block + i : end : 4].translate(tables[i])


def python_masked(data: Buffer, key: bytes) -> bytes | bytearray:
    """Return ``data`` XOR ``key`` in pure Python: new bytes (small) or a new bytearray (large)."""
    n = len(data)
    if n < _PYTHON_SMALL_BELOW:
        return xor_as_int(data, key)
    out = bytearray(data)
    python_mask_in_place(out, 0, n, key)
    return out


_PYTHON: Final = Backend("python", python_mask_in_place, python_masked, _PYTHON_SMALL_BELOW)


# The numpy backend.

#: Below this many bytes, the numpy backend XORs as one integer: from here on,
#: the vectorized call is faster in spite of its fixed cost of about 1.5 us
#: (measured with ``python -m benchmarks.masking --crossover``: at 1 KiB 1.1x
#: for a copy, 1.6x in place; at 768 B 0.9x and 1.2x; at 4 KiB 3.2x and 4x).
_NUMPY_SMALL_BELOW: Final = 1024


def _load_numpy(small_below: int = _NUMPY_SMALL_BELOW) -> Backend | None:
    """Return the numpy backend, or ``None`` when numpy does not import.

    ``small_below``: the bound of its integer path (low in the benchmark that
    measures where the bound should be); at least 16, so that the word path
    always has an aligned word to XOR.
    """
    small_below = max(small_below, 16)
    try:
        import numpy as np
    except ImportError:
        return None
    uint64 = np.dtype(np.uint64)
    frombuffer, bitwise_xor = np.frombuffer, np.bitwise_xor
    byteorder = sys.byteorder

    def mask_in_place(buf: bytearray, start: int, stop: int, key: bytes) -> None:
        n = stop - start
        if n < small_below:
            buf[start:stop] = xor_as_int(memoryview(buf)[start:stop], key)
            return
        # The bytes before the first 8-byte aligned address (``head``) and
        # after the last whole word (from ``tail``) are XORed as integers.
        head = -ctypes.addressof(ctypes.c_char.from_buffer(buf, start)) & 7
        words = (n - head) >> 3
        body = start + head
        tail = body + 8 * words
        # The head shifts the key's phase for the words and the tail: rotate it.
        rotated = key[head & 3 :] + key[: head & 3]
        if head:
            buf[start:body] = xor_as_int(memoryview(buf)[start:body], key)
        view = frombuffer(buf, uint64, words, body)
        # The key repeated twice, read as a word in the CPU's byte order, as
        # numpy reads the buffer's words.
        bitwise_xor(view, int.from_bytes(rotated * 2, byteorder), out=view)
        if tail < stop:
            buf[tail:stop] = xor_as_int(memoryview(buf)[tail:stop], rotated)

    def masked(data: Buffer, key: bytes) -> bytes | bytearray:
        if len(data) < small_below:
            return xor_as_int(data, key)
        # A copy, then masked in place where its words are aligned: faster
        # than one XOR pass from a source that may be unaligned.
        out = bytearray(data)
        mask_in_place(out, 0, len(out), key)
        return out

    mask_in_place.__doc__ = "XOR ``buf[start:stop]`` with ``key`` repeated, with numpy."
    masked.__doc__ = "Return ``data`` XOR ``key`` repeated, with numpy."
    return Backend("numpy", mask_in_place, masked, small_below)


def available_backends() -> dict[str, Backend]:
    """Return every backend that loads here, by name, fastest first; ``"python"`` is always one.

    For tests and benchmarks: the module's own functions use :data:`BACKEND`'s.
    """
    found: dict[str, Backend] = {}
    numpy_backend = _load_numpy()
    if numpy_backend is not None:
        found[numpy_backend.name] = numpy_backend
    found[_PYTHON.name] = _PYTHON
    return found


def _choose_backend() -> Backend:
    """Return the fastest backend that loads, unless ``BACKEND_ENV`` says ``python``."""
    if os.environ.get(BACKEND_ENV, "").strip().lower() == _PYTHON.name:
        return _PYTHON
    return next(iter(available_backends().values()))


_BACKEND: Final = _choose_backend()

#: The masking backend in use: ``"numpy"`` (numpy is installed) or ``"python"``.
BACKEND: Final = _BACKEND.name

#: Payloads shorter than this are masked as one integer by the backend in use;
#: callers that inline that path for small payloads use the same bound.
SMALL_BELOW: Final = _BACKEND.small_below

#: XOR ``buf[start:stop]`` in place with the 4-byte ``key`` repeated, ``key[0]``
#: at ``start``: the backend in use's function.
mask_in_place: Final = _BACKEND.mask_in_place

#: Return ``data`` XOR the 4-byte ``key`` repeated: ``bytes`` when shorter than
#: :data:`SMALL_BELOW`, else a new ``bytearray``; the backend in use's function.
masked: Final = _BACKEND.masked
