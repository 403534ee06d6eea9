"""``python -m crawler.worker``: the command line lives in ``crawler.cli.worker``."""

from crawler.cli.worker import run_module

run_module()
