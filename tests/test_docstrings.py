"""Every public name is documented: each module's ``__all__``, and the public classes' members.

Functions and classes must carry their own docstring. Module-level values
(constants, type aliases) cannot, so theirs is the attribute docstring that
Sphinx reads: a ``#:`` comment right above the assignment, or a string right
below it, in the module that defines the name (followed through re-exports).
A method or property of a public class needs a docstring of its own, unless it
overrides a documented method of a base class (``inspect.getdoc`` then finds
that one, as help() and Sphinx do).

Whether the top-level ``__all__`` holds API.md's names is
``tests/test_exports.py``'s job.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import trio_wsext

#: Every module of the package, by dotted name (``__main__`` is the CLI; it imports cleanly).
MODULES = sorted(
    [trio_wsext.__name__]
    + [info.name for info in pkgutil.walk_packages(trio_wsext.__path__, "trio_wsext.")]
)


def module_all(name: str) -> list[str]:
    """Return the ``__all__`` of module ``name`` (empty if it has none)."""
    return list(getattr(importlib.import_module(name), "__all__", []))


#: Names known to lack a docstring, in a module that another helper is editing
#: (``frames.py``, for performance); the lead adds a ``#:`` comment to each.
UNDOCUMENTED: frozenset[tuple[str, str]] = frozenset(
    {("trio_wsext.frames", "CONTROL_OPCODES"), ("trio_wsext.frames", "DATA_OPCODES")}
)


#: (module, name) for every name of every ``__all__``.
PUBLIC_NAMES = [(module, name) for module in MODULES for name in module_all(module)]

#: The names that test_public_name_has_docstring checks.
CHECKED_NAMES = [pair for pair in PUBLIC_NAMES if pair not in UNDOCUMENTED]


def public_classes() -> dict[str, type]:
    """Return every class named in an ``__all__``, by qualified name, once each."""
    classes: dict[str, type] = {}
    for module, name in PUBLIC_NAMES:
        value = getattr(importlib.import_module(module), name)
        if inspect.isclass(value):
            classes[f"{value.__module__}.{value.__qualname__}"] = value
    return classes


PUBLIC_CLASSES = public_classes()


@functools.cache
def module_tree(name: str) -> ast.Module:
    """Parse the source of module ``name``."""
    module = importlib.import_module(name)
    assert module.__file__ is not None
    return ast.parse(Path(module.__file__).read_text(encoding="utf-8"))


@functools.cache
def module_lines(name: str) -> list[str]:
    """Return the source lines of module ``name``."""
    module = importlib.import_module(name)
    assert module.__file__ is not None
    return Path(module.__file__).read_text(encoding="utf-8").splitlines()


def _assigns(statement: ast.stmt, name: str) -> bool:
    if isinstance(statement, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in statement.targets)
    if isinstance(statement, ast.AnnAssign):
        return isinstance(statement.target, ast.Name) and statement.target.id == name
    return False


def _resolve_import(module: ModuleType, node: ast.ImportFrom) -> str:
    if not node.level:
        assert node.module is not None
        return node.module
    package = (
        module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    )
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def has_attribute_docstring(module_name: str, name: str) -> bool:
    """Tell whether the module-level value ``name`` has a ``#:`` comment or a string below it.

    A name that the module imports is looked up in the module it comes from.
    """
    module = importlib.import_module(module_name)
    body = module_tree(module_name).body
    lines = module_lines(module_name)
    for index, statement in enumerate(body):
        if _assigns(statement, name):
            above = lines[statement.lineno - 2].strip() if statement.lineno > 1 else ""
            below = body[index + 1] if index + 1 < len(body) else None
            string_below = (
                isinstance(below, ast.Expr)
                and isinstance(below.value, ast.Constant)
                and isinstance(below.value.value, str)
            )
            return above.startswith("#:") or string_below
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if (alias.asname or alias.name) == name:
                    return has_attribute_docstring(_resolve_import(module, statement), alias.name)
    raise AssertionError(f"{module_name} neither defines nor imports {name}")


@pytest.mark.parametrize("module_name", MODULES)
def test_module_has_docstring(module_name: str) -> None:
    """Each module opens with a docstring."""
    assert inspect.getdoc(importlib.import_module(module_name))


@pytest.mark.parametrize(
    ("module_name", "name"), CHECKED_NAMES, ids=[f"{m}.{n}" for m, n in CHECKED_NAMES]
)
def test_public_name_has_docstring(module_name: str, name: str) -> None:
    """Each name of an ``__all__`` is documented: its own docstring, or an attribute docstring."""
    value = getattr(importlib.import_module(module_name), name)
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismethod(value):
        assert (value.__doc__ or "").strip()
    else:
        assert has_attribute_docstring(module_name, name)


#: What counts as a method or property besides a plain function.
DESCRIPTORS = (property, classmethod, staticmethod, functools.cached_property)


def public_members(cls: type) -> list[str]:
    """Return the public methods and properties that ``cls`` itself defines."""
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, DESCRIPTORS) or inspect.isfunction(value):
            members.append(name)
    return sorted(members)


MEMBERS = [
    (qualname, member)
    for qualname, cls in PUBLIC_CLASSES.items()
    for member in public_members(cls)
]


@pytest.mark.parametrize(("qualname", "member"), MEMBERS, ids=[f"{q}.{m}" for q, m in MEMBERS])
def test_public_member_has_docstring(qualname: str, member: str) -> None:
    """Each public method and property of a public class is documented, or overrides one so."""
    cls = PUBLIC_CLASSES[qualname]
    assert inspect.getdoc(getattr(cls, member)), f"{qualname}.{member} has no docstring"


def test_the_checks_see_the_whole_api() -> None:
    """The tables above are not empty by accident: they hold the classes API.md names."""
    assert {"WebSocketConnection", "PerMessageDeflate", "Protocol", "ServerHandshake"} <= {
        cls.__name__ for cls in PUBLIC_CLASSES.values()
    }
    assert ("trio_wsext.connection.WebSocketConnection", "send_message") in MEMBERS
    assert len(PUBLIC_NAMES) > 100
    assert set(PUBLIC_NAMES) >= UNDOCUMENTED
