"""``python -m crawler.export``: hands over to the CLI."""

import sys

from crawler.cli.export import main

sys.exit(main())
