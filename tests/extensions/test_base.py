"""Tests of the extension framework: Extension, the factories, ExtensionChain, keyword passing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from trio_wsext.exceptions import PayloadTooBig
from trio_wsext.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionChain,
    ExtensionParameter,
    ServerExtensionFactory,
    accepts_keyword,
    accepts_positional,
)
from trio_wsext.extensions.permessage_deflate import PerMessageDeflate
from trio_wsext.frames import Frame, Opcode


class Tagging(Extension):
    """Appends its tag on the way out, strips it on the way in, and logs the calls."""

    def __init__(self, tag: bytes, log: list[str]) -> None:
        super().__init__(f"x-tag-{tag.decode()}")
        self.tag = tag
        self.log = log

    def encode(self, frame: Frame) -> Frame:
        self.log.append(f"encode {self.tag.decode()}")
        return frame.replace(data=frame.data + self.tag)

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.log.append(f"decode {self.tag.decode()} max_size={max_size}")
        if not frame.data.endswith(self.tag):
            raise AssertionError(f"{self.tag!r} is not the last tag of {frame.data!r}")
        return frame.replace(data=frame.data[: -len(self.tag)])


class SeedStyle(Extension):
    """Written the seed's way: one-argument encode and decode, no keywords at all."""

    def __init__(self) -> None:
        super().__init__("x-seed")
        self.calls: list[tuple[str, Frame]] = []

    def encode(self, frame: Frame) -> Frame:
        self.calls.append(("encode", frame))
        return frame

    def decode(self, frame: Frame) -> Frame:  # type: ignore[override]
        self.calls.append(("decode", frame))
        return frame


class Keywords(Extension):
    """Takes the keywords through **kwargs, as a generic wrapper would."""

    def __init__(self) -> None:
        super().__init__("x-kwargs")
        self.seen: list[dict[str, Any]] = []

    def encode(self, frame: Frame, **kwargs: Any) -> Frame:
        self.seen.append(kwargs)
        return frame

    def decode(self, frame: Frame, **kwargs: Any) -> Frame:
        self.seen.append(kwargs)
        return frame


def test_extension_passes_frames_through_unchanged() -> None:
    """The base class is concrete: encode and decode return the frame itself."""
    extension = Extension("x-plain")
    frame = Frame(Opcode.TEXT, b"data", rsv2=True)
    assert extension.encode(frame) is frame
    assert extension.decode(frame, max_size=0) is frame
    assert extension.name == "x-plain"
    assert repr(extension) == "Extension(name='x-plain')"
    assert Extension.rsv_bits == frozenset()


def test_extension_release_idle_memory_is_a_no_op_every_extension_has() -> None:
    """The hook exists on every extension, seed-style ones too, and the base one does nothing."""
    log: list[str] = []
    extensions = [Extension("x-plain"), SeedStyle(), Tagging(b"a", log)]
    for extension in extensions:
        extension.release_idle_memory()
    frame = Frame(Opcode.BINARY, b"data")
    assert ExtensionChain(extensions).encode(frame).data == b"dataa"
    assert log == ["encode a"]


def test_subclass_repr_names_its_class() -> None:
    """repr uses the subclass's name, as the seed's does."""
    assert repr(SeedStyle()) == "SeedStyle(name='x-seed')"


def test_chain_encodes_in_order_and_decodes_in_reverse() -> None:
    """ExtensionChain: encode a then b, decode b then a, so the data comes back."""
    log: list[str] = []
    chain = ExtensionChain([Tagging(b"a", log), Tagging(b"b", log)])
    sent = chain.encode(Frame(Opcode.BINARY, b"data"))
    assert sent.data == b"dataab"
    assert chain.decode(sent, max_size=7).data == b"data"
    assert log == ["encode a", "encode b", "decode b max_size=7", "decode a max_size=7"]


def test_chain_of_nothing_is_the_identity() -> None:
    """No negotiated extension: frames go through untouched."""
    chain = ExtensionChain([])
    frame = Frame(Opcode.PING, b"")
    assert chain.encode(frame, compress=False) is frame
    assert chain.decode(frame, max_size=None) is frame
    assert len(chain) == 0


def test_chain_calls_seed_style_methods_without_keywords() -> None:
    """decode(self, frame) and encode(self, frame) work: no max_size, no compress passed."""
    seed = SeedStyle()
    chain = ExtensionChain([seed])
    frame = Frame(Opcode.TEXT, b"x")
    chain.encode(frame, compress=False)
    chain.decode(frame, max_size=10)
    assert seed.calls == [("encode", frame), ("decode", frame)]


def test_chain_passes_keywords_to_methods_taking_kwargs() -> None:
    """A method with **kwargs receives compress= and max_size= as the caller gave them."""
    wrapper = Keywords()
    chain = ExtensionChain([wrapper])
    frame = Frame(Opcode.TEXT, b"x")
    chain.encode(frame, compress=True)
    chain.decode(frame, max_size=3)
    chain.decode(frame)
    assert wrapper.seen == [{"compress": True}, {"max_size": 3}, {"max_size": None}]


def test_chain_passes_max_size_to_deflate_so_it_stays_bounded() -> None:
    """Through the chain, a seed-style extension beside deflate does not lift deflate's bound."""
    sender = ExtensionChain([SeedStyle(), PerMessageDeflate(True)])
    receiver = ExtensionChain([SeedStyle(), PerMessageDeflate(False)])
    frame = sender.encode(Frame(Opcode.BINARY, b"\x00" * 100_000))
    assert len(frame.data) < 1000
    with pytest.raises(PayloadTooBig):
        receiver.decode(frame, max_size=99_999)
    receiver = ExtensionChain([SeedStyle(), PerMessageDeflate(False)])
    assert receiver.decode(frame, max_size=100_000).data == b"\x00" * 100_000


def test_chain_passes_compress_false_to_deflate() -> None:
    """send_message(..., compress=False) reaches deflate through the chain: RSV1 stays clear."""
    chain = ExtensionChain([PerMessageDeflate(True), SeedStyle()])
    assert chain.encode(Frame(Opcode.TEXT, b"hello"), compress=False).rsv1 is False
    assert chain.encode(Frame(Opcode.TEXT, b"hello")).rsv1 is True


def test_chain_repr_lists_extensions() -> None:
    """repr shows the extensions in chain order."""
    chain = ExtensionChain([SeedStyle(), Extension("x-b")])
    assert repr(chain) == "ExtensionChain([SeedStyle(name='x-seed'), Extension(name='x-b')])"
    assert len(chain) == 2


def _positional_only(frame: Frame, max_size: int | None = None, /) -> Frame:
    return frame


def _keyword_only(frame: Frame, *, max_size: int | None = None) -> Frame:
    return frame


def _positional_or_keyword(frame: Frame, max_size: int | None = None) -> Frame:
    return frame


def _var_keyword(frame: Frame, **kwargs: Any) -> Frame:
    return frame


def _without(frame: Frame) -> Frame:
    return frame


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (_keyword_only, True),
        (_positional_or_keyword, True),
        (_var_keyword, True),
        (_positional_only, False),
        (_without, False),
        (functools.partial(_keyword_only), True),
    ],
    ids=[
        "keyword-only",
        "positional-or-keyword",
        "var-keyword",
        "positional-only",
        "absent",
        "partial",
    ],
)
def test_accepts_keyword_follows_signature(function: Callable[..., Any], expected: bool) -> None:
    """A keyword is passed only where the signature can take it by name."""
    assert accepts_keyword(function, "max_size") is expected


class _Factories:
    def one(self, parameters: Sequence[ExtensionParameter]) -> None: ...

    def two(
        self, parameters: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> None: ...

    def optional(
        self, parameters: Sequence[ExtensionParameter], accepted: Sequence[Extension] = ()
    ) -> None: ...

    def star(self, *args: Any) -> None: ...

    def keyword(self, parameters: Sequence[ExtensionParameter], *, accepted: Any = ()) -> None: ...


@pytest.mark.parametrize(
    ("name", "expected"),
    [("one", False), ("two", True), ("optional", True), ("star", True), ("keyword", False)],
)
def test_accepts_positional_counts_bound_method_arguments(name: str, expected: bool) -> None:
    """accepted_extensions goes only to methods with a second positional parameter."""
    assert accepts_positional(getattr(_Factories(), name), 2) is expected


def test_factories_are_abstract() -> None:
    """The seed's `raise NotImplementedError` methods are abstract: a factory must define them."""
    with pytest.raises(TypeError, match=r"abstract"):
        ClientExtensionFactory("x")  # type: ignore[abstract]
    with pytest.raises(TypeError, match=r"abstract"):
        ServerExtensionFactory("x")  # type: ignore[abstract]


class SeedClientFactory(ClientExtensionFactory):
    """The seed's client factory shape: parameters given to the base class."""

    def __init__(self, key: str) -> None:
        super().__init__("x-seed", [("key", key)])

    def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
        return SeedStyle()


class SeedServerFactory(ServerExtensionFactory):
    """The seed's server factory shape: echo the parameters."""

    def __init__(self) -> None:
        super().__init__("x-seed")

    def process_request_params(
        self, parameters: Sequence[ExtensionParameter]
    ) -> tuple[list[ExtensionParameter], Extension]:
        return list(parameters), SeedStyle()


def test_seed_style_factories_negotiate() -> None:
    """get_request_params returns the parameters given; both sides build their extension."""
    client = SeedClientFactory("secret")
    assert client.get_request_params() == [("key", "secret")]
    response, extension = SeedServerFactory().process_request_params(client.get_request_params())
    assert response == [("key", "secret")]
    assert isinstance(extension, SeedStyle)
    assert isinstance(client.process_response_params(response), SeedStyle)


def test_client_factory_without_parameters_offers_none() -> None:
    """parameters=None means an offer with no parameters."""

    class Bare(ClientExtensionFactory):
        def process_response_params(self, parameters: Sequence[ExtensionParameter]) -> Extension:
            return Extension(self.name)

    assert Bare("x-bare").get_request_params() == []
    assert Bare("x-bare", None).name == "x-bare"


class _Callable:
    """A callable object that cannot be hashed (it defines __eq__ only)."""

    def __eq__(self, other: object) -> bool:
        return other is self

    def __call__(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        return frame


class _ClassMethods:
    @classmethod
    def one(cls, parameters: Sequence[ExtensionParameter]) -> None: ...

    @classmethod
    def two(
        cls, parameters: Sequence[ExtensionParameter], accepted: Sequence[Extension]
    ) -> None: ...


def test_signatures_of_unhashable_callables_and_class_methods_are_read_right() -> None:
    assert accepts_keyword(_Callable(), "max_size") is True
    assert accepts_positional(_ClassMethods.one, 2) is False
    assert accepts_positional(_ClassMethods.two, 2) is True


def test_a_signature_is_built_once_per_function_not_per_connection() -> None:
    """Each connection builds a chain; inspect.signature runs once per method's function."""
    from trio_wsext.extensions import base

    log: list[str] = []
    ExtensionChain([Tagging(b"a", log), SeedStyle()])
    before = base._signature_parameters.cache_info()
    for _ in range(10):
        ExtensionChain([Tagging(b"a", log), SeedStyle()])
    after = base._signature_parameters.cache_info()
    assert after.misses == before.misses
    assert after.hits >= before.hits + 40
