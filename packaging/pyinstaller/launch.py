"""Entry point of the frozen app: the same command line as ``checkpoint-inspector``."""

import sys

from inspector.cli import main

if __name__ == "__main__":
    sys.exit(main())
