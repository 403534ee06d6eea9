"""``python -m crawler.master``: the command line lives in ``crawler.cli.master``; a stop
signal while it is being imported: ``cli.startup``."""

from crawler.cli.startup import interrupt_on_stop_signals, interrupted

interrupt_on_stop_signals()
try:
    from crawler.cli.master import run_module  # after the handlers, on purpose
except KeyboardInterrupt:
    interrupted("crawler-master")

run_module()
