"""The built documentation works offline and names no folder of the machine that built it:
``docs/sktelescope_docs.check_built_pages`` warns (fails a ``-W`` build) on a CDN script, a
script missing from the build, or the build machine's paths in a page."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import ROOT

pytest.importorskip("sphinx")
_spec = importlib.util.spec_from_file_location(
    "sktelescope_docs", ROOT / "docs" / "sktelescope_docs.py"
)
docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs)


def _page(folder, name: str, body: str):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><head>{body}</head><body><p>text</p></body></html>")
    return path


def test_a_clean_build_has_no_problem(tmp_path):
    _page(tmp_path, "_static/mathjax/tex-chtml.js", "")
    _page(tmp_path, "_static/macros.html", '<script src="{{ pathto(x) }}"></script>')  # a template
    _page(tmp_path, "api/page.html", '<script defer="defer" src="../_static/mathjax/tex-chtml.js'
          '?v=1"></script><a href="https://example.org/">a link is fine</a>')  # fmt: skip
    assert docs.built_page_problems(tmp_path, ["/home/builder/"]) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>',
         "loads the script https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js from "
         "another host"),
        ("<script async src='//cdn.example/x.js'></script>", "from another host"),
        ('<link href="https://cdn.example/b.css" rel="stylesheet" />',
         "loads the stylesheet https://cdn.example/b.css from another host"),
        ('<script src="_static/missing.js"></script>', "_static/missing.js, which is not in"),
        ("<pre>wrote /home/builder/repo/examples/output/x.png</pre>",
         "shows the build machine's path /home/builder/"),
    ],
)  # fmt: skip
def test_each_problem_is_named_with_its_page(tmp_path, body, problem):
    _page(tmp_path, "auto_examples/x.html", body)
    (found,) = docs.built_page_problems(tmp_path, ["/home/builder/"])
    assert found.startswith("auto_examples/x.html: ") and problem in found


def test_the_machine_paths_are_the_checkout_the_environment_and_home():
    paths = docs.machine_paths(ROOT)
    assert str(ROOT.parent) + "/" in paths and sys.prefix.rstrip("/") + "/" in paths
    assert "/" not in paths  # the file system root would match every page
