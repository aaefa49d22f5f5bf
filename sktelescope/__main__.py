"""``python -m sktelescope ...``: the same as the ``sktelescope`` command."""

import sys

from sktelescope.cli import main

if __name__ == "__main__":
    sys.exit(main())
