"""``python -m xdsi``: the same as the ``xdsi`` command."""

from __future__ import annotations

import sys

from xdsi.cli import main

if __name__ == "__main__":
    sys.exit(main())
