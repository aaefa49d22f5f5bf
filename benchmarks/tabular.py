"""Cross-validated tabular benchmark: a thin wrapper around ``sktelescope bench``.

Run ``python benchmarks/tabular.py --help`` for the options, e.g.::

    python benchmarks/tabular.py --data-dir ../shared/data/tabular --budget 5 --splits 3
"""

import sys

from sktelescope.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
