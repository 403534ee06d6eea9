"""``python -m crawler.master``: the command line lives in ``crawler.cli.master``."""

import sys

from crawler.cli.master import main

sys.exit(main())
