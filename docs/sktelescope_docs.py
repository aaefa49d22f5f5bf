"""Helpers of the documentation build: API pages from ``__all__``, gallery hooks.

``conf.py`` imports this module by name (sphinx-gallery resolves its hooks from a dotted
name, which keeps the configuration picklable for Sphinx's environment cache).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import sys
import textwrap
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parent

#: The public modules, in the order the API reference lists them, with their page titles.
#: A name exported by several of them is documented once, under the first.
PUBLIC_MODULES: dict[str, str] = {
    "sktelescope": "estimators and stages",
    "sktelescope.lens": "the paper's measurements",
    "sktelescope.trees": "boosted trees through the lens",
    "sktelescope.bench": "the tabular benchmark",
    "sktelescope.datasets": "tabular data",
    "sktelescope.exceptions": "warnings and errors",
}

#: Set to 1 to run the gallery's examples in full (a release build) instead of ``--fast``.
FULL_ENV = "SKTELESCOPE_DOCS_FULL"

# Values whose repr is longer than this are not printed on the API page.
_MAX_VALUE_REPR = 240


# --------------------------------------------------------------------------- API pages


def public_objects(module_name: str) -> list[tuple[str, str, object]]:
    """``(kind, name, object)`` for each name of the module's ``__all__``.

    ``kind`` is ``"class"``, ``"function"`` or ``"data"``; submodules and dunder names
    (``__version__``) are left out: they are pages or text of their own.
    """
    module = importlib.import_module(module_name)
    rows = []
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType) or name.startswith("__"):
            continue
        if inspect.isclass(obj):
            kind = "class"
        elif inspect.isroutine(obj):
            kind = "function"
        else:
            kind = "data"
        rows.append((kind, name, obj))
    return rows


def _module_page(module_name: str, title: str, seen: dict[int, str]) -> str:
    heading = f"``{module_name}``: {title}"
    lines = [heading, "=" * len(heading), "", f".. automodule:: {module_name}", "   :no-members:"]
    lines += ["", f".. currentmodule:: {module_name}", ""]
    rows = public_objects(module_name)
    again = [(name, seen[id(obj)]) for _, name, obj in rows if id(obj) in seen]
    sections = (("class", "Classes"), ("function", "Functions"), ("data", "Constants"))
    for kind, label in sections:
        names = [n for k, n, obj in rows if k == kind and id(obj) not in seen]
        if not names:
            continue
        lines += [label, "-" * len(label), ""]
        if kind == "data":
            for name in names:
                lines += _data_entry(module_name, name)
            continue
        lines += [".. autosummary::", "   :toctree: generated/", ""]
        lines += [f"   {name}" for name in names] + [""]
    if again:
        lines += ["Also exported here", "------------------", ""]
        lines += [f"- ``{name}``: see :obj:`{home}.{name}`" for name, home in again] + [""]
    for _, name, obj in rows:
        seen.setdefault(id(obj), module_name)
    return "\n".join(lines) + "\n"


def _data_entry(module_name: str, name: str) -> list[str]:
    """A ``py:data`` entry: the ``#:`` comment where the constant is defined, its value."""
    value = getattr(importlib.import_module(module_name), name)
    lines = [f".. py:data:: {name}", f"   :type: {type(value).__name__}"]
    if len(repr(value)) <= _MAX_VALUE_REPR:
        lines.append(f"   :value: {value!r}")
    doc = _comment_doc(module_name, name, value)
    if not doc:
        doc = [f"A ``{type(value).__name__}`` of {len(value)} entries."]
        if isinstance(value, dict):
            doc[0] += " Keys: " + ", ".join(f"``{key!r}``" for key in value) + "."
    return lines + [""] + [f"   {line}" for line in doc] + [""]


def _comment_doc(module_name: str, name: str, value: object) -> list[str]:
    """The ``#:`` comment above ``name = ...`` in whichever of the package's modules binds it."""
    from sphinx.pycode import ModuleAnalyzer

    for modname, module in sorted(sys.modules.items()):
        if modname != module_name and not modname.startswith(module_name + "."):
            continue
        if getattr(module, name, None) is not value:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # no source available
            continue
        if ("", name) in docs:
            return [line for line in docs["", name] if line.strip()]
    return []


def write_api_pages(app=None, config=None) -> list[Path]:
    """Write ``api/<module>.rst`` for every public module; return the paths written.

    Run at ``config-inited``, before Sphinx looks for source files and autosummary
    generates the per-object pages, so a name added to a module's ``__all__`` appears in
    the reference without an edit here.
    Files are rewritten only when their text changes, so incremental builds stay cheap.
    """
    seen: dict[int, str] = {}
    written = []
    for module_name, title in PUBLIC_MODULES.items():
        path = DOCS / "api" / f"{module_name}.rst"
        text = _module_page(module_name, title, seen)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


# --------------------------------------------------------------------------- gallery hooks


def reset_argv(gallery_conf: dict, script_vars: dict) -> list[str]:
    """Arguments each example runs with: ``--fast`` unless ``SKTELESCOPE_DOCS_FULL=1``.

    sphinx-gallery runs an example without ``__file__`` and with an empty ``__doc__``.
    Our examples use both, as ``python examples/x.py`` provides them: ``__file__`` to
    write figures to ``examples/output/`` and ``__doc__`` for their ``--help`` text. This
    hook is the one that sees the example's globals before it runs, so it restores them.
    """
    src = Path(script_vars["src_file"])
    example_globals = script_vars.get("example_globals")
    if example_globals is not None:
        example_globals["__file__"] = str(src)
        example_globals["__doc__"] = ast.get_docstring(ast.parse(src.read_text()), clean=False)
    return [] if full_mode() else ["--fast"]


def full_mode() -> bool:
    """Whether the gallery runs the examples in full (``SKTELESCOPE_DOCS_FULL=1``)."""
    return os.environ.get(FULL_ENV, "") not in ("", "0")


def gallery_mode_changed(gallery_dir: Path) -> bool:
    """Record this build's mode in the gallery folder; True if the last build's differed."""
    stamp = gallery_dir / ".sktelescope-mode"
    mode = "full" if full_mode() else "fast"
    previous = stamp.read_text() if stamp.exists() else mode
    gallery_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(mode)
    return previous != mode


def example_order(filename: str) -> tuple[bool, str]:
    """Gallery order: the quick start first, then the examples by file name."""
    return (filename != "quickstart.py", filename)


# The label sphinx-gallery puts before an example's docstring, and the comment after it.
_EXAMPLE_LABEL = re.compile(r"^\.\. _sphx_glr_[\w.-]+\.py:\n", flags=re.M)
_FIRST_CODE = "\n.. GENERATED FROM PYTHON SOURCE LINES"
_TITLE = re.compile(r"\A(?:([=\-~^\"'`#*+])\1+\n)?[^\n]+\n([=\-~^\"'`#*+])\2{2,}[ \t]*\n")


def plain_docstring_as_text(app, docname: str, source: list[str]) -> None:
    """Render an example whose docstring is plain text (no reST title) verbatim.

    An example's docstring is the top of its gallery page, so it should be reST with a
    title. One that is plain text would make a page without a title (no link in the
    gallery) and may trip reST markup (``|x|`` is a substitution). Such a docstring
    becomes a title (its first paragraph) and a literal block (the rest), which shows it
    as ``python examples/x.py --help`` would.
    """
    if not docname.startswith("auto_examples/"):
        return
    text = source[0]
    label = _EXAMPLE_LABEL.search(text)
    end = text.find(_FIRST_CODE, label.end()) if label else -1
    if end < 0:
        return
    intro = text[label.end() : end].strip("\n")
    if not intro or _TITLE.match(intro + "\n"):
        return
    first, _, rest = intro.partition("\n\n")
    title = re.sub(r"([\\`*|_<>])", r"\\\1", " ".join(first.split()))
    body = f"::\n\n{textwrap.indent(rest, '    ')}\n" if rest.strip() else ""
    page = f"\n{title}\n{'=' * len(title)}\n\n{body}"
    source[0] = text[: label.end()] + page + text[end:]


# --------------------------------------------------------------------------- built pages

_SCRIPT_SRC = re.compile(r"<script\b[^>]*?\bsrc=[\"']([^\"']+)[\"']", flags=re.I)
_LINK_HREF = re.compile(r"<link\b[^>]*?\bhref=[\"']([^\"']+)[\"']", flags=re.I)
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", flags=re.I)


def machine_paths(root: Path = DOCS.parent) -> list[str]:
    """Folders of the machine that builds the docs, none of which a page may show: the
    repository's parent (the checkout and ``../shared`` beside it), the Python environment
    and the home folder."""
    paths = {str(root.resolve().parent), sys.prefix, sys.base_prefix, str(Path.home())}
    return sorted(p.rstrip(os.sep) + os.sep for p in paths if len(Path(p).parts) > 1)


def built_page_problems(html_dir: Path, forbidden: list[str]) -> list[str]:
    """What is wrong with the built HTML pages under ``html_dir`` (``_static/`` holds
    templates and assets, not pages): a script or stylesheet loaded from another host (a
    CDN: the page then needs a network, and math shows as raw LaTeX offline), a local
    script that is not in the build, or one of the ``forbidden`` paths (the build machine's
    folders) in the page's text."""
    problems = []
    for page in sorted(Path(html_dir).rglob("*.html")):
        name = page.relative_to(html_dir).as_posix()
        if name.startswith("_static/"):
            continue
        text = page.read_text(encoding="utf-8", errors="replace")
        for src in _SCRIPT_SRC.findall(text):
            if _REMOTE.match(src):
                problems.append(f"{name}: loads the script {src} from another host")
            elif not (page.parent / src.split("?")[0].split("#")[0]).is_file():
                problems.append(f"{name}: loads the script {src}, which is not in the build")
        problems += [f"{name}: loads the stylesheet {href} from another host"
                     for href in _LINK_HREF.findall(text) if _REMOTE.match(href)]  # fmt: skip
        problems += [f"{name}: shows the build machine's path {p}" for p in forbidden if p in text]
    return problems


def check_built_pages(app, exception) -> None:
    """Sphinx ``build-finished`` hook: a warning (an error under ``-W``) per problem of
    :func:`built_page_problems` in the HTML just built."""
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    for problem in built_page_problems(Path(app.outdir), machine_paths()):
        logger.warning(problem)
