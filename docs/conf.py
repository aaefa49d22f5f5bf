"""Sphinx configuration of the sktelescope documentation.

Build it from the repository root (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery runs ``examples/*.py`` in their ``--fast`` mode, as CI does; set
``SKTELESCOPE_DOCS_FULL=1`` to run them in full for a release build (minutes to hours).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document this checkout (not some other installed copy), and let sphinx-gallery import
# the hooks in sktelescope_docs by name.
sys.path[:0] = [str(ROOT), str(DOCS)]

import sktelescope_docs  # noqa: E402

import sktelescope  # noqa: E402

project = "sktelescope"
author = "sktelescope developers"
copyright = "2026, sktelescope developers"  # noqa: A001
release = sktelescope.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax from the build's own _static/mathjax (a bundled copy), not from a CDN, so that
    # math renders offline; sktelescope_docs.check_built_pages fails the build on any remote
    # script.
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext"}  # Markdown only through explicit includes
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**/*.codeobj.json"]
default_role = "code"  # `x` is literal text, not a broken cross-reference

# SKTELESCOPE_DOCS_NITPICKY=1 reports every cross-reference to an sktelescope name that does
# not resolve (a renamed function, a private module); references to other projects are
# ignored, as the build has no network for their inventories.
nitpicky = os.environ.get("SKTELESCOPE_DOCS_NITPICKY", "") not in ("", "0")
nitpick_ignore_regex = [(r"py:.*", r"(?!~?sktelescope\b).*")]

# -- API reference: autosummary over each public module's __all__ --------------------------

autosummary_generate = True
autodoc_typehints = "none"  # types are in the numpydoc docstrings
autodoc_member_order = "groupwise"
add_module_names = False
numpydoc_show_class_members = False  # the class template lists members with autodoc
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Members that come from scikit-learn's base classes are scikit-learn's to document (``score``
# among them: its docstring links into scikit-learn's own guide), except these two.
_INHERITED_KEPT = {"get_params", "set_params"}


def _skip_foreign_member(app, what, name, obj, skip, options):
    """Skip inherited members defined outside sktelescope (metadata routing, tags...)."""
    if skip or what != "class" or name in _INHERITED_KEPT:
        return None
    target = getattr(obj, "fget", obj)
    module = getattr(target, "__module__", None) or ""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if module and not module.startswith("sktelescope"):
        return True
    return None


# -- gallery: examples/ ------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/[^_/][^/]*\.py$",  # run every example, not only plot_*.py
    "ignore_pattern": r"(^|/)_[^/]*\.py$",  # helper modules such as examples/_common.py
    "reset_argv": "sktelescope_docs.reset_argv",
    "within_subsection_order": "sktelescope_docs.example_order",
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "capture_repr": (),
    "min_reported_time": 0,
    "show_signature": False,
    # No sg_execution_times pages: their table loads jQuery and DataTables from CDNs.
    "write_computation_times": False,
    # sphinx-gallery reruns only the examples whose source changed; after switching
    # between fast and full mode every example is rerun instead.
    "run_stale_examples": sktelescope_docs.gallery_mode_changed(DOCS / "auto_examples"),
}

# -- output ------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sktelescope {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["sktelescope.css"]  # long API titles wrap instead of being clipped


def setup(app) -> None:
    app.connect("config-inited", sktelescope_docs.write_api_pages)
    app.connect("source-read", sktelescope_docs.plain_docstring_as_text)
    app.connect("autodoc-skip-member", _skip_foreign_member)
    # After the pages are written (and MathJax copied): no CDN script, no build-machine path.
    app.connect("build-finished", sktelescope_docs.check_built_pages)
