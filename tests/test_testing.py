"""trio_wsext.testing: the extension checks pass on good extensions and catch each fault.

permessage-deflate (several parameter sets) and every extension of
``examples/`` pass every check that applies; each extension of
``tests/extension_faults.py`` breaks one rule, and the check for that rule
fails with its own message (while the checks it does not break pass).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import io
import re
import unittest
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import attrs
import extension_faults as faults
import pytest
from helpers import SimpleEncryptionClientFactory, SimpleEncryptionServerFactory

from trio_wsext.exceptions import NegotiationError
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from trio_wsext.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
    enable_client_permessage_deflate,
    enable_server_permessage_deflate,
)
from trio_wsext.testing import (
    CHECK_NAMES,
    CheckNotApplicable,
    ExtensionCheckFailed,
    check_extension,
    run_check,
)
from trio_wsext.testing.corpus import ROUND_TRIP_SIZES, round_trip_messages, text_message

EXAMPLES: Final = Path(__file__).resolve().parent.parent / "examples"

Factories = tuple[ClientExtensionFactory, ServerExtensionFactory]


@functools.cache
def example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what the examples' extensions print for every frame."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# -- permessage-deflate ------------------------------------------------------------------------

#: permessage-deflate's factory pairs: the defaults, the settings of
#: enable_*_permessage_deflate, no context takeover both ways, the smallest
#: windows, a threshold (small messages uncompressed), and
#: examples/advanced_compression.py's custom client against its default server.
DEFLATE: Final[dict[str, Callable[[], Factories]]] = {
    "defaults": lambda: (ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory()),
    "enable_defaults": lambda: (
        enable_client_permessage_deflate(None)[0],
        enable_server_permessage_deflate(None)[0],
    ),
    "no_context_takeover": lambda: (
        ClientPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True
        ),
        ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True
        ),
    ),
    "small_windows": lambda: (
        ClientPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=8),
        ServerPerMessageDeflateFactory(server_max_window_bits=8, client_max_window_bits=9),
    ),
    "threshold": lambda: (
        ClientPerMessageDeflateFactory(threshold=1024),
        ServerPerMessageDeflateFactory(threshold=1024),
    ),
    "advanced_example": lambda: (
        ClientPerMessageDeflateFactory(
            server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 6}
        ),
        enable_server_permessage_deflate(None)[0],
    ),
}


@pytest.mark.parametrize("settings", DEFLATE)
def test_permessage_deflate_passes_every_check(settings: str) -> None:
    """Every check passes on permessage-deflate; chaining it with itself is skipped."""
    client, server = DEFLATE[settings]()
    results = check_extension(client, server)
    assert [result.name for result in results] == list(CHECK_NAMES)
    outcomes = {result.name: result.outcome for result in results}
    assert outcomes == {
        name: "skipped" if name == "chained_with_deflate" else "passed" for name in CHECK_NAMES
    }


def test_deflate_with_small_windows_negotiates_them() -> None:
    """The small-window pair really runs with 8- and 9-bit windows (the check is not vacuous)."""
    client, server = DEFLATE["small_windows"]()
    made = server.process_request_params(client.get_request_params())[1]
    assert repr(made).startswith(
        "PerMessageDeflate(is_server=True, server_max_window_bits=8, client_max_window_bits=8"
    )


# -- the examples' extensions ------------------------------------------------------------------

#: Every extension of examples/ with factories to negotiate it: the module and
#: a function of it that returns the pair.
EXAMPLE_PAIRS: Final[dict[str, tuple[str, Callable[[Any], Factories]]]] = {
    "SimpleEncryptionExtension": (
        "custom_extension",
        lambda m: (
            m.SimpleEncryptionClientFactory("a password"),
            m.SimpleEncryptionServerFactory("a password"),
        ),
    ),
    "DebugExtension": (
        "debug_extension",
        lambda m: (m.DebugClientFactory(), m.DebugServerFactory()),
    ),
    "CompressionExtension": (
        "extension_chain",
        lambda m: (
            m.ChainClientFactory("simple-compress", m.CompressionExtension),
            m.ChainServerFactory("simple-compress", m.CompressionExtension),
        ),
    ),
    "LoggingExtension": (
        "extension_chain",
        lambda m: (
            m.ChainClientFactory("logger", m.LoggingExtension),
            m.ChainServerFactory("logger", m.LoggingExtension),
        ),
    ),
}

#: The (extension, check) pairs that fail on purpose, tested on their own below.
EXAMPLE_FAILURES: Final = {("CompressionExtension", "chained_with_deflate")}


def example_factories(name: str) -> Factories:
    """Build the factory pair of the example extension ``name``."""
    module, make = EXAMPLE_PAIRS[name]
    return make(example(module))


def test_every_example_extension_is_checked() -> None:
    """Each Extension subclass defined in examples/*.py is in EXAMPLE_PAIRS."""
    found = set()
    for path in EXAMPLES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id == "Extension" for base in node.bases
            ):
                found.add(node.name)
    assert found == set(EXAMPLE_PAIRS)


@pytest.mark.parametrize(
    ("extension", "check"),
    [
        (extension, check)
        for extension in EXAMPLE_PAIRS
        for check in CHECK_NAMES
        if (extension, check) not in EXAMPLE_FAILURES
    ],
)
def test_example_extension_passes(extension: str, check: str) -> None:
    """Each example extension passes each check (but the failures tested on their own)."""
    client, server = example_factories(extension)
    with quiet():
        result = run_check(check, client, server)
    assert (result.name, result.outcome) == (check, "passed")


def test_compression_example_clashes_with_deflate() -> None:
    """extension_chain.py's CompressionExtension uses RSV1, as permessage-deflate does."""
    client, server = example_factories("CompressionExtension")
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("chained_with_deflate", client, server)
    assert info.value.problem.startswith(
        "the extension declares RSV1, which permessage-deflate also declares: the two can "
        "never be active on one connection"
    )
    assert "skip={'chained_with_deflate'}" in info.value.fix


def test_helpers_encryption_server_crashes_on_a_key_that_is_not_base64() -> None:
    """helpers.py's SimpleEncryptionServerFactory raises binascii.Error, not NegotiationError.

    examples/custom_extension.py had the same bug, which the kit found; it now
    declines with NegotiationError (test_example_extension_passes).
    """
    client = SimpleEncryptionClientFactory("a password")
    server = SimpleEncryptionServerFactory("a password")
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("declines", client, server)
    assert re.match(
        r"an offer with key=x: the server's SimpleEncryptionServerFactory"
        r"\.process_request_params raised binascii\.Error\('Invalid base64-encoded string",
        info.value.problem,
    )
    assert info.value.fix.startswith(
        "process_request_params must build the extension, or raise NegotiationError"
    )


# -- one fault per rule ------------------------------------------------------------------------


@attrs.frozen
class Fault:
    """A faulty extension, the check it fails, how, and checks it still passes."""

    make: Callable[[], Factories]
    check: str
    problem: str
    fix: str
    passes: tuple[str, ...] = ()


FAULTS: Final[dict[str, Fault]] = {
    "empty message gains a byte": Fault(
        lambda: faults.factories(faults.ChecksumExtension),
        "round_trip",
        r"client → server: an empty text message arrived as a 1-byte text message, "
        r"different from byte 0 on \(sent b'', received b'\\x00'\)",
        r"decode must return exactly the payload encode was given",
        passes=("negotiation", "control_frames"),
    ),
    "continuation frames not decoded": Fault(
        lambda: faults.factories(faults.ContinuationBlindExtension),
        "fragments",
        r"server → client: a text message split inside its multi-byte characters "
        r"\(8 frames\): a 29-byte text message arrived as a 29-byte text message",
        r"decode must handle CONT frames \(opcode 0\)",
        passes=("round_trip", "control_frames"),
    ),
    "control frames scrambled on the wire": Fault(
        lambda: faults.factories(faults.ControlScramblingExtension),
        "control_frames",
        r"control frame 2 from the client crossed the wire as a PING frame of b'y' with "
        r"no bit set; the application sent a PING of b'x'",
        r"encode must return PING, PONG and CLOSE frames unchanged",
        passes=("round_trip", "fragments"),
    ),
    "reserved bit undeclared": Fault(
        lambda: faults.factories(faults.UndeclaredBitExtension),
        "rsv_bits",
        r"with the extension alone on the connection: the client sent a 0-byte TEXT frame "
        r"with RSV2 set, but the connection's extensions declare no bit in rsv_bits",
        r"declare every reserved bit the extension sets, as a class attribute",
        passes=("round_trip", "fragments"),
    ),
    "reserved bit of permessage-deflate": Fault(
        lambda: faults.factories(faults.Rsv1Extension),
        "chained_with_deflate",
        r"the extension declares RSV1, which permessage-deflate also declares",
        r"use a reserved bit that no extension you combine it with uses",
        passes=("rsv_bits", "chained_with_marker"),
    ),
    "other extensions' bits dropped (deflate)": Fault(
        lambda: faults.factories(faults.FrameRebuildingExtension),
        "chained_with_deflate",
        r"in the chain \['permessage-deflate', 'x-rebuild'\]: the client's "
        r"FrameRebuildingExtension\.encode cleared RSV1 on a 1-byte TEXT frame, a bit it "
        r"does not declare",
        r"return frame\.replace\(data=\.\.\.\) rather than a new Frame\(opcode, data, fin\)",
        passes=("round_trip", "rsv_bits"),
    ),
    "other extensions' bits dropped (marker)": Fault(
        lambda: faults.factories(faults.FrameRebuildingExtension),
        "chained_with_marker",
        r"in the chain \['x-trio-wsext-marker', 'x-rebuild'\]: the client's "
        r"FrameRebuildingExtension\.encode cleared RSV3",
        r"leave the reserved bits you do not declare as they are",
    ),
    "server factory crashes on an odd offer": Fault(
        lambda: (faults.LevelClientFactory(), faults.CrashingLevelServerFactory()),
        "declines",
        r"an offer without its parameters: the server's CrashingLevelServerFactory"
        r"\.process_request_params raised KeyError\('level'\) for the offer 'x-level'",
        r"raise NegotiationError \(trio_wsext\.exceptions\) to decline an offer",
        passes=("negotiation",),
    ),
    "client factory crashes on an odd answer": Fault(
        lambda: (faults.CrashingLevelClientFactory(), faults.LevelServerFactory()),
        "declines",
        r"an answer without its parameters: the client's CrashingLevelClientFactory"
        r"\.process_response_params raised KeyError\('level'\) for the answer 'x-level'",
        r"raise NegotiationError \(trio_wsext\.exceptions\) for an answer it cannot accept",
    ),
    "decode ignores max_size": Fault(
        lambda: faults.factories(faults.UnboundedInflateExtension),
        "max_size",
        r"server → client, max_message_size=65536: a compressible binary message one byte "
        r"over the limit: the client's UnboundedInflateExtension\.decode\(frame\) does not "
        r"take max_size, and it expanded a \d+-byte BINARY frame to 65537 bytes when 65536 "
        r"were left of the limit",
        r"accept the keyword: decode\(self, frame, \*, max_size=None\)",
        passes=("round_trip", "fragments"),
    ),
    "decode refuses exactly max_size": Fault(
        lambda: faults.factories(faults.OffByOneInflateExtension),
        "max_size",
        r"client → server, max_message_size=65536: a 65536-byte binary message \(exactly the "
        r"limit\): the server's OffByOneInflateExtension\.decode raised "
        r"PayloadTooBig\('65536 bytes'\)",
        r"raise PayloadTooBig only when the decoded output would be larger than max_size",
    ),
    "decode raises the wrong error past max_size": Fault(
        lambda: faults.factories(faults.WrongErrorInflateExtension),
        "max_size",
        r"server → client, max_message_size=65536: a compressible binary message one byte "
        r"over the limit: the client closed the connection with 1011 \(INTERNAL_ERROR\) "
        r".*, not 1009 "
        r"\(message too big\) \(WrongErrorInflateExtension\.decode raised "
        r"ValueError\('too big'\)\)",
        r"raise trio_wsext\.exceptions\.PayloadTooBig \(close code 1009\)",
    ),
    "encode and decode share a buffer": Fault(
        lambda: faults.factories(faults.SharedScratchExtension),
        "threads",
        r"(client → server|server → client), while messages flow both ways: ",
        r"keep the send side's state \(touched only by encode\) apart from the receive side's",
        passes=("round_trip",),
    ),
    "one extension object for every connection": Fault(
        lambda: (
            faults.PlainClientFactory("x-singleton", lambda: Extension("x-singleton")),
            faults.SingletonServerFactory(),
        ),
        "negotiation",
        r"the server factory returned the same Extension object to two connections",
        r"SingletonServerFactory\.process_request_params must build a new Extension for "
        r"every connection",
        passes=("round_trip",),
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_faulty_extension_fails_its_check(fault: str) -> None:
    """The check for the broken rule fails, saying what went wrong and what to fix."""
    case = FAULTS[fault]
    client, server = case.make()
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check(case.check, client, server)
    assert info.value.check == case.check
    assert re.match(case.problem, info.value.problem), info.value.problem
    assert re.search(case.fix, info.value.fix), info.value.fix
    assert str(info.value) == f"[{case.check}] {info.value.problem}\nTo fix: {info.value.fix}"


def test_failure_chains_the_exception_the_extension_raised() -> None:
    """The factory's own exception is the failure's __cause__, with its traceback."""
    client, server = faults.LevelClientFactory(), faults.CrashingLevelServerFactory()
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("declines", client, server)
    cause = info.value.__cause__
    assert isinstance(cause, KeyError)
    assert cause.__traceback__ is not None


@pytest.mark.parametrize(
    ("fault", "check"), [(name, check) for name, case in FAULTS.items() for check in case.passes]
)
def test_faulty_extension_passes_the_checks_it_does_not_break(fault: str, check: str) -> None:
    """Each check tests its own rule: a fault elsewhere does not fail it."""
    client, server = FAULTS[fault].make()
    assert run_check(check, client, server).outcome == "passed"


# -- the handshake's failures ------------------------------------------------------------------


class _DecliningServerFactory(ServerExtensionFactory):
    """Declines every offer."""

    def __init__(self, name: str) -> None:
        super().__init__(name)

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        raise NegotiationError("this server never accepts")


class _NotAnExtensionClientFactory(faults.PlainClientFactory):
    """Returns a string instead of an extension."""

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        return "not an extension"  # type: ignore[return-value]


class _BadBitsExtension(Extension):
    """Declares RSV4, which does not exist."""

    rsv_bits = frozenset({4})


def test_negotiation_fails_when_the_server_declines_its_own_client() -> None:
    """A server factory that declines its client factory's offer fails, with its reason."""
    client = faults.PlainClientFactory("x-a", lambda: Extension("x-a"), [("p", "1")])
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("negotiation", client, _DecliningServerFactory("x-a"))
    assert info.value.problem == (
        "the server factory declined the client factory's offer 'x-a; p=1': "
        "this server never accepts"
    )


def test_negotiation_fails_when_the_factories_have_different_names() -> None:
    """Factories of two names never negotiate; the check says so."""
    client = faults.PlainClientFactory("x-a", lambda: Extension("x-a"))
    server = faults.PlainServerFactory("x-b", lambda: Extension("x-b"))
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("round_trip", client, server)
    assert info.value.problem == (
        "the client factory offers 'x-a' but the server factory is named 'x-b', "
        "so the server never considers the offer"
    )


def test_negotiation_fails_when_a_factory_returns_no_extension() -> None:
    """A client factory that returns something else than an Extension is named."""
    client = _NotAnExtensionClientFactory("x-a", lambda: Extension("x-a"))
    server = faults.PlainServerFactory("x-a", lambda: Extension("x-a"))
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("negotiation", client, server)
    assert info.value.problem == (
        "the client's _NotAnExtensionClientFactory.process_response_params raised "
        "TypeError(\"returned 'not an extension', not an Extension\") for the answer 'x-a'"
    )


def test_rsv_bits_fails_on_a_bit_that_does_not_exist() -> None:
    """rsv_bits must hold 1, 2 or 3."""
    client, server = faults.factories(lambda: _BadBitsExtension("x-bad-bits"))
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("rsv_bits", client, server)
    assert re.match(
        r"the (client|server)'s _BadBitsExtension\.rsv_bits is frozenset\(\{4\}\)$",
        info.value.problem,
    )


def test_a_blocked_check_fails_at_its_timeout() -> None:
    """An extension that blocks makes the check fail at the timeout, naming the step."""
    client, server = faults.factories(lambda: faults.SlowPingExtension(0.6))
    with pytest.raises(ExtensionCheckFailed) as info:
        run_check("control_frames", client, server, timeout=0.3)
    assert re.match(
        r"no progress for 0\.3 s while the server was waiting for the client's ping\(b''\)$",
        info.value.problem,
    )


# -- the entry points --------------------------------------------------------------------------


def test_check_extension_runs_the_chosen_checks_in_order() -> None:
    """checks= chooses, skip= leaves out; results come in CHECK_NAMES' order."""
    client, server = DEFLATE["defaults"]()
    results = check_extension(
        client, server, checks=["fragments", "negotiation", "rsv_bits"], skip=["rsv_bits"]
    )
    assert [(r.name, r.outcome) for r in results] == [
        ("negotiation", "passed"),
        ("fragments", "passed"),
    ]
    assert results[1].detail == (
        "Messages sent in fragments (CONT frames) arrive whole and unchanged, both ways."
    )


def test_check_extension_reports_every_failure() -> None:
    """The first failure is raised; the others are in its notes."""
    client, server = faults.factories(faults.ChecksumExtension)
    with pytest.raises(ExtensionCheckFailed) as info:
        check_extension(client, server, checks=["round_trip", "fragments", "control_frames"])
    assert info.value.check == "round_trip"
    assert [note.split("\n")[0][:25] for note in info.value.__notes__] == [
        "also failed: [fragments] "
    ]


def test_run_check_skips_what_does_not_apply() -> None:
    """Chaining permessage-deflate with itself is skipped, as a unittest.SkipTest."""
    client, server = DEFLATE["defaults"]()
    with pytest.raises(CheckNotApplicable, match=r"^permessage-deflate cannot be chained"):
        run_check("chained_with_deflate", client, server)
    assert issubclass(CheckNotApplicable, unittest.SkipTest)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"checks": ["nope"]}, ValueError, r"^unknown checks \['nope'\]; the checks are \["),
        ({"skip": "threads"}, TypeError, r"^checks and skip take a collection of names"),
        ({"timeout": 0}, ValueError, r"^timeout must be a positive number of seconds, not 0$"),
    ],
)
def test_check_extension_refuses_bad_options(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Unknown checks, a bare string, a bad timeout: refused before anything runs."""
    client, server = DEFLATE["defaults"]()
    with pytest.raises(error, match=message):
        check_extension(client, server, **arguments)


def test_check_extension_refuses_a_factory_class() -> None:
    """Passing the class instead of an instance is a TypeError that says so."""
    with pytest.raises(
        TypeError,
        match=r"^client_factory must be a ClientExtensionFactory "
        r"instance, not the class ClientPerMessageDeflateFactory$",
    ):
        check_extension(ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory())  # type: ignore[arg-type]


async def test_check_extension_refuses_to_run_inside_trio() -> None:
    """From an async test, it says to call it from a synchronous one."""
    client, server = DEFLATE["defaults"]()
    with pytest.raises(RuntimeError, match=r"call them from a synchronous test"):
        check_extension(client, server)


# -- the corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ROUND_TRIP_SIZES)
def test_text_messages_have_their_size_in_utf8_bytes(size: int) -> None:
    """A text message of n bytes is n bytes of UTF-8, non-ASCII from 2 bytes up."""
    message = text_message(size)
    assert len(message.encode("utf-8")) == size
    assert size < 2 or not message.isascii()


def test_round_trip_covers_both_kinds_at_every_size() -> None:
    """Text and binary at 0, 1, 125, 126, 65535, 65536 bytes and 1 MiB, among others."""
    sizes = {
        (isinstance(m, str), len(m.encode() if isinstance(m, str) else m))
        for m in round_trip_messages()
    }
    for size in (0, 1, 125, 126, 65535, 65536, 2**20):
        assert (True, size) in sizes
        assert (False, size) in sizes
