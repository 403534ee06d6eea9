"""``python -m crawler.worker``: the command line lives in ``crawler.cli.worker``."""

import sys

from crawler.cli.worker import main

sys.exit(main())
