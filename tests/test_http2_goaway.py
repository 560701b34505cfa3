"""GoAwayFilter and serialize_goaway: GOAWAY frames taken out of the byte stream before h2."""

from __future__ import annotations

import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, PingFrame, SettingsFrame

from trio_wsext.http2.goaway import GoAway, GoAwayFilter, serialize_goaway
from trio_wsext.http2.selection import PREFACE


def _frames() -> tuple[bytes, bytes, bytes]:
    data = DataFrame(1, data=b"hello", flags=["END_STREAM"]).serialize()
    goaway = GoAwayFrame(0, last_stream_id=7, error_code=0, additional_data=b"bye").serialize()
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    return data, goaway, ping


def test_serialize_goaway_matches_hyperframe() -> None:
    """Our GOAWAY is byte for byte hyperframe's."""
    expected = GoAwayFrame(0, last_stream_id=5, error_code=2, additional_data=b"x").serialize()
    assert serialize_goaway(5, 2, b"x") == expected


def test_filter_removes_goaway_between_frames() -> None:
    """A GOAWAY between two frames is reported; the two frames pass in order."""
    data, goaway, ping = _frames()
    passed, goaways = GoAwayFilter(server=False).feed(data + goaway + ping)
    assert passed == data + ping
    assert goaways == [GoAway(7, 0, b"bye")]


@pytest.mark.parametrize("piece", [1, 2, 5, 9, 10, 17])
def test_filter_handles_any_split(piece: int) -> None:
    """Frames cut into pieces of any size give the same bytes and the same GOAWAY."""
    data, goaway, ping = _frames()
    stream = PREFACE + SettingsFrame(0).serialize() + data + goaway + ping
    flt = GoAwayFilter(server=True)
    passed = b""
    goaways: list[GoAway] = []
    for start in range(0, len(stream), piece):
        out, found = flt.feed(stream[start : start + piece])
        passed += out
        goaways += found
    assert passed == PREFACE + SettingsFrame(0).serialize() + data + ping
    assert goaways == [GoAway(7, 0, b"bye")]


def test_filter_server_passes_preface_untouched() -> None:
    """The server side never reads the preface as a frame header."""
    passed, goaways = GoAwayFilter(server=True).feed(PREFACE)
    assert passed == PREFACE
    assert goaways == []


def test_filter_reports_short_goaway_as_malformed() -> None:
    """RFC 9113 §6.8: a GOAWAY shorter than 8 octets is a connection error."""
    frame = b"\x00\x00\x04\x07\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x01"
    _, goaways = GoAwayFilter(server=False).feed(frame)
    assert goaways == [GoAway(0, 1, malformed=True)]


def test_filter_reports_goaway_on_a_stream_as_malformed() -> None:
    """RFC 9113 §6.8: a GOAWAY with a stream identifier other than 0 is a connection error."""
    frame = bytearray(serialize_goaway(3))
    frame[8] = 1  # stream 1
    _, goaways = GoAwayFilter(server=False).feed(bytes(frame))
    assert goaways[0].malformed
