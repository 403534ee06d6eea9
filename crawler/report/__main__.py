"""``python -m crawler.report``: the command line lives in ``crawler.cli.report``."""

import sys

from crawler.cli.report import main

sys.exit(main())
