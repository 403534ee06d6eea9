"""``python -m crawler.master``: ``cli.startup.master`` (a stop signal before the command
has its own handlers), then the command line of ``crawler.cli.master``."""

from crawler.cli.startup import master

master()
