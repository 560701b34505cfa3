"""The checks on reserved bits: declared as used, and no clash with the rest of a chain.

Strategy: RFC 6455 §5.2 lets an extension give meaning to RSV1-3, and the
library refuses to activate two extensions that declare the same bit
(:attr:`Extension.rsv_bits <trio_wsext.extensions.base.Extension.rsv_bits>`).
That protection holds only if the declaration is true, so ``rsv_bits``
parses the frames on the wire of a connection where the extension runs
alone, where every bit set is the extension's, and compares them with the
declaration. In a chain the wire shows every extension's bits at once; there
the observers (:mod:`.probes`) attribute each change of a bit to the
``encode`` or ``decode`` that made it: an extension may set and clear only
its own bits, and must leave the others' as they are.

Two partners make the chains: permessage-deflate, which trio_wsext offers by
default and which uses RSV1, and :class:`MarkerExtension`, which sets a bit
the extension under test does not declare on every data frame and fails the
connection if that bit is gone when it decodes. Each runs before and after
the extension under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

from ..exceptions import NegotiationError, ProtocolError
from ..extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameter,
    ServerExtensionFactory,
)
from ..extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from ..frames import Frame, Opcode
from .diagnosis import require_active
from .failures import CheckNotApplicable, ExtensionCheckFailed
from .flow import standard_traffic
from .harness import CheckRun, open_pair, unwrap, wire_frames
from .probes import SIDES, frame_bits, rsv_names

__all__ = [
    "MARKER_NAME",
    "MarkerClientFactory",
    "MarkerExtension",
    "MarkerServerFactory",
    "check_chained_with_deflate",
    "check_chained_with_marker",
    "check_rsv_bits",
    "marker_class",
]

#: The marker's extension name (``x-`` for a private, unregistered name).
MARKER_NAME: Final = "x-trio-wsext-marker"

#: What the marker XORs each payload byte with, so that a payload it did not
#: decode (or decoded twice) is visibly wrong.
_MARKER_XOR: Final = bytes(b ^ 0x5A for b in range(256))

_DATA_OPCODES: Final = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})

_DECLARE_FIX: Final = (
    "declare every reserved bit the extension sets, as a class attribute: "
    "rsv_bits = frozenset({...}) (1, 2, 3 for RSV1-RSV3). The handshake uses the "
    "declaration to refuse two extensions that claim one bit; an undeclared bit "
    "silently collides with permessage-deflate's RSV1 or another extension's."
)


class MarkerExtension(Extension):
    """A chain partner: XORs every data frame's payload and marks it with one reserved bit.

    Its ``decode`` fails the connection (1002) when a data frame arrives
    without the bit: an extension between the two markers cleared a bit it
    does not own. Build it with :func:`marker_class`, which picks the bit.
    """

    #: The bit it sets (1-3), or ``None`` to set none (and only XOR).
    bit: ClassVar[int | None] = None

    def __init__(self) -> None:
        super().__init__(MARKER_NAME)

    def encode(self, frame: Frame) -> Frame:
        """XOR a data frame's payload and set the marker's bit; control frames pass."""
        if frame.opcode not in _DATA_OPCODES:
            return frame
        data = frame.data.translate(_MARKER_XOR)
        if self.bit is None:
            return frame.replace(data=data)
        return frame.replace(data=data, **{f"rsv{self.bit}": True})

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        """Check and clear the marker's bit on a data frame, and XOR its payload back.

        Raises:
            ProtocolError: the bit is missing.
        """
        if frame.opcode not in _DATA_OPCODES:
            return frame
        if self.bit is None:
            return frame.replace(data=frame.data.translate(_MARKER_XOR))
        if self.bit not in frame_bits(frame):
            raise ProtocolError(f"{MARKER_NAME}: RSV{self.bit} was cleared by another extension")
        return frame.replace(data=frame.data.translate(_MARKER_XOR), **{f"rsv{self.bit}": False})


_MARKER_CLASSES: dict[int | None, type[MarkerExtension]] = {}


def marker_class(bit: int | None) -> type[MarkerExtension]:
    """Return the :class:`MarkerExtension` subclass that sets ``bit`` (declared in rsv_bits)."""
    cls = _MARKER_CLASSES.get(bit)
    if cls is None:
        bits = frozenset() if bit is None else frozenset({bit})
        name = "MarkerExtension" if bit is None else f"MarkerExtensionRsv{bit}"
        cls = _MARKER_CLASSES[bit] = type(name, (MarkerExtension,), {"bit": bit, "rsv_bits": bits})
    return cls


class MarkerClientFactory(ClientExtensionFactory):
    """Offers the marker without parameters.

    Args:
        bit: the reserved bit it sets (1-3), or ``None``.
    """

    def __init__(self, bit: int | None) -> None:
        super().__init__(MARKER_NAME)
        self.bit = bit

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        """Build the marker; refuse an answer with parameters."""
        if parameters:
            raise NegotiationError(f"{MARKER_NAME} takes no parameters")
        return marker_class(self.bit)()


class MarkerServerFactory(ServerExtensionFactory):
    """Accepts the marker offered without parameters.

    Args:
        bit: the reserved bit it sets (1-3), or ``None``.
    """

    def __init__(self, bit: int | None) -> None:
        super().__init__(MARKER_NAME)
        self.bit = bit

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """Accept an offer without parameters."""
        if parameters:
            raise NegotiationError(f"{MARKER_NAME} takes no parameters")
        return [], marker_class(self.bit)()


def _declared(run: CheckRun, extension: Extension, side: str) -> frozenset[int]:
    """Return ``extension.rsv_bits``; fail the check unless it is a set of 1, 2, 3."""
    bits = getattr(extension, "rsv_bits", None)
    owner = type(extension).__name__
    if not isinstance(bits, frozenset | set) or not all(
        type(bit) is int and 1 <= bit <= 3 for bit in bits
    ):
        run.fail(
            f"the {side}'s {owner}.rsv_bits is {bits!r}",
            "rsv_bits must be a frozenset of the reserved bits the extension uses: "
            "1, 2 and 3 for RSV1, RSV2 and RSV3 (frozenset() for none).",
        )
    return frozenset(bits)


async def _negotiate_alone(run: CheckRun) -> frozenset[int]:
    """Negotiate the extension alone; return the bits its two objects declare."""
    run.step = "negotiating the extension alone"
    async with open_pair(run, [run.client()], [run.server()]) as pair:
        client, server = require_active(run, pair.client.extensions, pair.server.extensions)
        return _declared(run, client, "client") | _declared(run, server, "server")


def _check_bit_usage(run: CheckRun, context: str = "") -> None:
    """Fail if an observed encode or decode changed a reserved bit it does not declare."""
    prefix = f"{context}: " if context else ""
    for probe in run.probes.extensions:
        declared = _declared(run, probe.extension, probe.side)
        for method, records in (("encode", probe.encoded), ("decode", probe.decoded)):
            for record in records:
                set_bits = record.bits_out - record.bits_in - declared
                cleared = record.bits_in - record.bits_out - declared
                where = f"a {record.size_in}-byte {record.opcode.name} frame"
                declaration = f"its rsv_bits declares {rsv_names(declared)}"
                if set_bits:
                    run.fail(
                        f"{prefix}{probe.label}.{method} set {rsv_names(set_bits)} on "
                        f"{where}, but {declaration}",
                        _DECLARE_FIX,
                    )
                if cleared:
                    run.fail(
                        f"{prefix}{probe.label}.{method} cleared {rsv_names(cleared)} on "
                        f"{where}, a bit it does not declare ({declaration}): another "
                        "extension of the chain set it",
                        "leave the reserved bits you do not declare as they are: return "
                        "frame.replace(data=...) rather than a new Frame(opcode, data, "
                        "fin), which clears the bits other extensions of the chain set.",
                    )


def _check_wire_bits(run: CheckRun, allowed: frozenset[int], context: str) -> None:
    """Fail if any frame on any wire of this check carries a bit outside ``allowed``."""
    for wire in run.wires:
        for side in SIDES:
            for frame in wire_frames(run, wire, side):
                extra = frame_bits(frame) - allowed
                if extra:
                    run.fail(
                        f"{context}: the {side} sent a {len(frame.data)}-byte "
                        f"{frame.opcode.name} frame with {rsv_names(extra)} set, but the "
                        f"connection's extensions declare {rsv_names(allowed)} in rsv_bits",
                        _DECLARE_FIX,
                    )


async def check_rsv_bits(run: CheckRun) -> None:
    """The reserved bits on the wire are the ones the extension declares (rsv_bits)."""
    declared = await _negotiate_alone(run)

    def expect(client: Sequence[Extension], server: Sequence[Extension]) -> None:
        require_active(run, client, server)

    context = "with the extension alone on the connection"
    try:
        await standard_traffic(run, [run.client()], [run.server()], expect)
    except BaseException as exc:
        # An undeclared bit that decode leaves set fails the traffic (1002):
        # report the bit, not the close code.
        if isinstance(unwrap(exc), ExtensionCheckFailed):
            _check_wire_bits(run, declared, context)
            _check_bit_usage(run)
        raise
    _check_wire_bits(run, declared, context)
    _check_bit_usage(run)


def _expect_chain(
    run: CheckRun, names: list[str], client: Sequence[Extension], server: Sequence[Extension]
) -> None:
    for side, extensions in (("client", client), ("server", server)):
        active = [extension.name for extension in extensions]
        if active != names:
            refusals = "; ".join(f"the {s} refused {o!r}: {e}" for s, o, e in run.probes.refusals)
            run.fail(
                f"offered the chain {names}, the {side} runs {active}"
                + (f" ({refusals})" if refusals else ""),
                "an extension must be negotiable beside others: a name of its own, "
                "reserved bits no other extension declares, and factories that accept "
                "their offer whatever else is offered (accepted_extensions lists the "
                "extensions accepted before).",
            )


async def _run_chains(
    run: CheckRun,
    declared: frozenset[int],
    partner: tuple[ClientExtensionFactory, ServerExtensionFactory],
    partner_bits: frozenset[int],
) -> None:
    client_partner, server_partner = partner
    for first in (True, False):
        client_factories = [run.client(), client_partner]
        server_factories = [run.server(), server_partner]
        if not first:
            client_factories.reverse()
        names = [factory.name for factory in client_factories]
        label = f"in the chain {names}"

        def expect(
            client: Sequence[Extension], server: Sequence[Extension], names: list[str] = names
        ) -> None:
            _expect_chain(run, names, client, server)

        try:
            await standard_traffic(run, client_factories, server_factories, expect, label)
        except BaseException as exc:
            # A bit cleared on the way fails the traffic: report the bit.
            if isinstance(unwrap(exc), ExtensionCheckFailed):
                _check_bit_usage(run, label)
            raise
        _check_bit_usage(run, label)
        _check_wire_bits(run, declared | partner_bits, label)


async def check_chained_with_deflate(run: CheckRun) -> None:
    """No reserved bit in common with permessage-deflate; runs before and after it."""
    if run.extension_name == PerMessageDeflate.name:
        raise CheckNotApplicable(
            "permessage-deflate cannot be chained with itself (chained_with_marker "
            "covers chaining it)"
        )
    declared = await _negotiate_alone(run)
    clash = declared & PerMessageDeflate.rsv_bits
    if clash:
        run.fail(
            f"the extension declares {rsv_names(clash)}, which permessage-deflate also "
            "declares: the two can never be active on one connection (the server declines "
            "whichever is offered second, and trio_wsext offers permessage-deflate by "
            "default)",
            "use a reserved bit that no extension you combine it with uses (RSV2 or "
            "RSV3); if the extension is never used with permessage-deflate, skip this "
            "check (skip={'chained_with_deflate'}).",
        )
    partner = (ClientPerMessageDeflateFactory(), ServerPerMessageDeflateFactory())
    await _run_chains(run, declared, partner, PerMessageDeflate.rsv_bits)


async def check_chained_with_marker(run: CheckRun) -> None:
    """Chained with an extension that marks data frames with another bit, that bit survives."""
    declared = await _negotiate_alone(run)
    bit = next((bit for bit in (3, 2) if bit not in declared), None)
    partner = (MarkerClientFactory(bit), MarkerServerFactory(bit))
    await _run_chains(run, declared, partner, marker_class(bit).rsv_bits)
