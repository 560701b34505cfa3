"""Write an intersphinx inventory of trio's documented objects from trio's documentation sources.

trio's published objects.inv cannot be fetched where the documentation is
built (no network), so ``trio.inv`` beside this file is made from a checkout of
trio's repository, for the trio release the project is tested with::

    python docs/_inventories/make_trio_inventory.py \
        TRIO_CHECKOUT/docs/source docs/_inventories/trio.inv 0.35

Each ``.. autofunction::``, ``.. autoclass::`` (with its ``:members:``, read
from the installed trio), ``.. function::`` and the like of a
``reference-*.rst`` page becomes an entry that links to that page, under the
module that ``.. module::``/``.. currentmodule::`` set, as Sphinx itself
would have named it.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import zlib
from pathlib import Path

DIRECTIVE = re.compile(
    r"^(\s*)\.\. (auto)?(function|class|exception|data|attribute|method|module|"
    r"currentmodule|interface|decorator)::\s*(\S+)"
)
ROLE = {
    "function": "function",
    "class": "class",
    "exception": "exception",
    "data": "data",
    "attribute": "attribute",
    "method": "method",
    "interface": "class",
    "decorator": "function",
}
MEMBER_KINDS = ("method", "attribute", "function", "data", "decorator")


def resolve(dotted: str) -> object | None:
    """Import the object that ``dotted`` names, or return ``None``."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                value = getattr(value, part)
        except AttributeError:
            return None
        return value
    return None


def members(full: str, spec: str) -> list[tuple[str, str]]:
    """Return ``(role, name)`` for the ``:members:`` of an autoclass."""
    owner = resolve(full)
    if owner is None:
        return []
    names = [name.strip() for name in spec.split(",") if name.strip()] or [
        name
        for name, value in vars(owner).items()
        if not name.startswith("_") and getattr(value, "__doc__", None)
    ]
    found = []
    for name in names:
        value = inspect.getattr_static(owner, name, None)
        role = "method" if callable(value) and not isinstance(value, property) else "attribute"
        found.append((role, f"{full}.{name}"))
    return found


def entries_of(rst: Path) -> dict[str, str]:
    """Return ``{"py:role name": uri}`` for the objects documented on one page."""
    page = rst.stem + ".html"
    module = "trio"
    classes: list[tuple[int, str]] = []
    entries: dict[str, str] = {}
    lines = rst.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        match = DIRECTIVE.match(line)
        if match is None:
            continue
        indent, auto, kind = len(match[1]), match[2], match[3]
        name = match[4].split("(")[0]
        if kind in ("module", "currentmodule"):
            module = name
            if kind == "module":
                entries.setdefault(f"py:module {name}", f"{page}#module-{name}")
            continue
        while classes and classes[-1][0] >= indent:
            classes.pop()
        if classes and kind in MEMBER_KINDS and "." not in name:
            full = f"{classes[-1][1]}.{name}"
        elif name.startswith(("trio.", module + ".")):
            full = name
        else:
            full = f"{module}.{name}"
        role = "method" if kind == "function" and classes else ROLE[kind]
        entries.setdefault(f"py:{role} {full}", f"{page}#{full}")
        if kind in ("class", "exception", "interface"):
            classes.append((indent, full))
            options = []
            for following in lines[number + 1 : number + 12]:
                if not following.strip().startswith(":"):
                    if following.strip():
                        break
                    continue
                options.append(following.strip())
            spec = next(
                (o[len(":members:") :] for o in options if o.startswith(":members:")), None
            )
            if auto and spec is not None:
                for member_role, member in members(full, spec):
                    entries.setdefault(f"py:{member_role} {member}", f"{page}#{member}")
    return entries


def main(source: Path, out: Path, version: str) -> None:
    """Write the inventory of every page of ``source`` to ``out``."""
    entries: dict[str, str] = {}
    for rst in sorted(source.glob("*.rst")):
        for key, uri in entries_of(rst).items():
            entries.setdefault(key, uri)
    body = []
    for key, uri in sorted(entries.items()):
        role, name = key.split(" ", 1)
        body.append(f"{name} {role} 1 {uri.replace('#' + name, '#$')} -")
    header = (
        "# Sphinx inventory version 2\n# Project: Trio\n"
        f"# Version: {version}\n# The remainder of this file is compressed using zlib.\n"
    )
    out.write_bytes(header.encode() + zlib.compress(("\n".join(body) + "\n").encode()))
    print(f"{len(body)} entries written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
