"""Sphinx configuration of trio_wsext's documentation site.

``nox -s docs`` builds it with warnings as errors (``-W --keep-going``) and in
nitpicky mode (``-n``: every cross-reference must resolve), then runs every
code block of the pages (tests/test_docs.py).

The pages are Markdown (MyST), written so that they also read well on GitHub:
plain fenced code blocks, relative links between pages.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from pygments.lexers.configs import IniLexer
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.intersphinx import missing_reference

import trio_wsext

HERE = Path(__file__).parent

project = "trio_wsext"
author = "The trio_wsext contributors"
copyright = "2026, The trio_wsext contributors"
version = release = trio_wsext.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]

# -- MyST ---------------------------------------------------------------------------------------

#: Anchors for headings down to ###, so that ``[text](page.md#a-heading)`` links work on
#: the site as they do on GitHub.
myst_heading_anchors = 3

# -- HTML ---------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"trio_wsext {release}"
html_show_sourcelink = False

# -- autodoc ------------------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"show-inheritance": True}
autodoc_preserve_defaults = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- intersphinx --------------------------------------------------------------------------------

# The inventories are kept in the repository (docs/_inventories, see its README.md), so the
# build needs no network: the links still point at the published documentation.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(HERE / "_inventories" / "python.inv")),
    "trio": ("https://trio.readthedocs.io/en/stable", str(HERE / "_inventories" / "trio.inv")),
}

# -- nitpicky -----------------------------------------------------------------------------------

nitpicky = True

#: Names that no inventory documents, each for a reason.
nitpick_ignore = [
    # Undocumented in Python's library reference (the proxy bypass rules of urllib).
    ("py:func", "urllib.request.proxy_bypass"),
]

#: Where Python documents a class under another module than the one that defines it.
STDLIB_ALIASES = {"unittest.case.SkipTest": "unittest.SkipTest"}

_MISSING = object()


def _lookup(dotted: str) -> tuple[str, bool] | None:
    """Find ``dotted`` in the code: return the name it is documented under, and whether it is ours.

    The documented name is the one under the module that defines the object
    (``trio_wsext.WebSocketConnection.aclose`` is documented as
    ``trio_wsext.connection.WebSocketConnection.aclose``). ``None`` when no
    module has such an attribute.
    """
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        head = getattr(module, parts[split], _MISSING)
        if head is _MISSING:
            return None
        rest = parts[split + 1 :]
        owner = getattr(head, "__module__", None)
        if (inspect.isclass(head) or inspect.isfunction(head)) and isinstance(owner, str):
            return ".".join([owner, head.__qualname__, *rest]), owner.startswith("trio_wsext")
        return ".".join([module_name, parts[split], *rest]), module_name.startswith("trio_wsext")
    return None


def _has_attribute(module_name: str, owner: str, name: str) -> bool:
    """Whether class ``owner`` of module ``module_name`` has an attribute ``name`` (dotted)."""
    try:
        found: object = importlib.import_module(module_name)
    except ImportError:
        return False
    for part in [*owner.split("."), *name.split(".")]:
        found = getattr(found, part, _MISSING)
        if found is _MISSING:
            return False
    return True


def _resolve_python_name(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.TextElement
) -> nodes.Element | None:
    """Resolve a Python reference that Sphinx could not, the way the code would.

    A docstring names things as its module sees them: ``Endpoint`` in
    trio_wsext/connection.py, a re-export such as ``trio_wsext.WebSocketRequest``,
    a private helper. Each name is looked up in the docstring's module, then as
    written. A name documented under its defining module gets that link; a name
    of trio_wsext's that exists but has no entry of its own (a private helper, an
    internal module) stays plain text; a name that exists nowhere is left to
    Sphinx, which reports it.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    found: tuple[str, bool] | None
    if target in STDLIB_ALIASES:
        found = (STDLIB_ALIASES[target], False)
    else:
        context = node.get("py:module") or ""
        owner = node.get("py:class") or ""
        candidates = [target]
        if context:
            candidates.insert(0, f"{context}.{target}")
            if owner and _has_attribute(context, owner, target):
                # A method named from its class's docstring: ``_receive``.
                candidates.insert(0, f"{context}.{owner}.{target}")
        found = next((hit for hit in map(_lookup, candidates) if hit is not None), None)
    if found is None:
        # A name imported only for type checking (``Endpoint``, or
        # ``WebSocketConnection.aclose``): the one object of that name that is
        # documented, or else that a module of trio_wsext defines.
        first, dot, rest = target.partition(".")
        documented = [
            name
            for name in env.get_domain("py").objects  # type: ignore[attr-defined]
            if name.startswith("trio_wsext.") and name.endswith(f".{first}")
        ]
        if len(documented) == 1:
            found = (documented[0] + dot + rest, True)
        else:
            defined = {
                f"{module_name}.{first}"
                for module_name, module in list(sys.modules.items())
                if module_name.startswith("trio_wsext")
                and getattr(getattr(module, first, None), "__module__", None) == module_name
            }
            if len(defined) == 1:
                found = (defined.pop() + dot + rest, True)
    if found is None:
        return None
    name, ours = found
    domain = env.get_domain("py")
    refdoc = node.get("refdoc", "")
    for reftype in (node["reftype"], "obj"):
        resolved = domain.resolve_xref(env, refdoc, app.builder, reftype, name, node, contnode)
        if resolved is not None:
            return resolved
    if not ours:
        renamed = node.deepcopy()
        renamed["reftarget"] = name
        return missing_reference(app, env, renamed, contnode)
    return contnode


#: Attribute docstrings as written, between the two handlers below.
_ATTRIBUTE_DOCSTRINGS: dict[tuple[str, str], list[str]] = {}


def _save_attribute_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Keep an attribute's docstring as written, before napoleon rewrites it.

    napoleon reads "Summary: more" in an attribute docstring as "type:
    description"; this project's attribute docstrings open with a sentence that
    often holds a colon, and their types come from the annotations.
    """
    if what in {"attribute", "data", "property"}:
        _ATTRIBUTE_DOCSTRINGS[what, name] = list(lines)


def _restore_attribute_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: Any, lines: list[str]
) -> None:
    """Put back the docstring that _save_attribute_docstring kept."""
    saved = _ATTRIBUTE_DOCSTRINGS.pop((what, name), None)
    if saved is not None:
        lines[:] = saved


TOCTREE_ENTRY = re.compile(r"^([\w./-]+)$", re.MULTILINE)


def _list_every_page(app: Sphinx, docname: str, source: list[str]) -> None:
    """Add the pages that index.md does not list to a last table of contents, "More".

    Pages are written by several people at once; a page that lands without an
    entry in index.md is still reachable (and does not fail the build).
    """
    if docname != root_doc:
        return
    listed = set()
    for block in re.findall(r"```\{toctree\}(.*?)```", source[0], flags=re.DOTALL):
        listed.update(TOCTREE_ENTRY.findall(block))
    others = sorted(
        page.stem
        for page in HERE.glob("*.md")
        if page.stem != root_doc and page.stem not in listed
    )
    if others:
        entries = "\n".join(others)
        source[0] += f"\n```{{toctree}}\n:caption: More\n:maxdepth: 1\n\n{entries}\n```\n"


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the name resolver, the docstring fix-up and the lexers Pygments lacks."""
    app.connect("missing-reference", _resolve_python_name)
    app.connect("source-read", _list_every_page)
    # Around napoleon's own handler (priority 500).
    app.connect("autodoc-process-docstring", _save_attribute_docstring, priority=400)
    app.connect("autodoc-process-docstring", _restore_attribute_docstring, priority=600)
    # HAProxy's configuration reads close enough to INI (sections, key-value lines, #).
    app.add_lexer("haproxy", IniLexer)
    return {"parallel_read_safe": True}
