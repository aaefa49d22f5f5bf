"""The version of sktelescope: the one place it is written.

``pyproject.toml`` reads it at build time (``[tool.setuptools.dynamic]``) and
``sktelescope.__version__`` re-exports it, so the two cannot disagree.
"""

__version__ = "0.1.0.dev0"
