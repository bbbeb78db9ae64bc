"""``python -m rtsep`` is the ``rtsep`` command."""

import sys

from .cli import main

sys.exit(main())
