"""``python -m crawler.master``: the command line lives in ``crawler.cli.master``."""

from crawler.cli.master import run_module

run_module()
