"""``python -m crawler.worker``: the command line lives in ``crawler.cli.worker``; a stop
signal before the command has its own handlers: ``cli.startup``."""

from crawler.cli.startup import exit_on_stop_signals

exit_on_stop_signals(None)  # it has nothing yet: nothing to say (its master may be stopping it)

from crawler.cli.worker import run_module  # noqa: E402 (after the handlers, on purpose)

run_module()
