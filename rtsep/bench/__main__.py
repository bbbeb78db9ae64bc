"""``python -m rtsep.bench``: the same as ``rtsep bench``."""

from .runner import main

raise SystemExit(main())
