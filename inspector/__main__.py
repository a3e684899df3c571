"""``python -m inspector`` is the ``checkpoint-inspector`` command."""

import sys

from inspector.cli import main

sys.exit(main())
