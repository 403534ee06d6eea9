"""``python -m crawler.master``: the command line lives in ``crawler.cli.master``; a stop
signal before the command has its own handlers: ``cli.startup``."""

from crawler.cli.startup import exit_on_stop_signals

exit_on_stop_signals("crawler-master")

from crawler.cli.master import run_module  # noqa: E402 (after the handlers, on purpose)

run_module()
