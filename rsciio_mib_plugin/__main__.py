"""``python -m rsciio_mib_plugin``: the ``rsciio-mib`` command line."""

import sys

from .cli import main

sys.exit(main())
