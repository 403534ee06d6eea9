"""``python -m crawler.worker``: ``cli.startup.worker`` (a stop signal before the command
has its own handlers), then the command line of ``crawler.cli.worker``."""

from crawler.cli.startup import worker

worker()
