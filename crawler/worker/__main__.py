"""``python -m crawler.worker``: the command line lives in ``crawler.cli.worker``; a stop
signal while it is being imported: ``cli.startup``."""

from crawler.cli.startup import interrupt_on_stop_signals, interrupted

interrupt_on_stop_signals()
try:
    from crawler.cli.worker import run_module  # after the handlers, on purpose
except KeyboardInterrupt:
    interrupted(None)  # it had nothing yet: nothing to say (its master may be stopping it)

run_module()
