"""The three commands (master, worker, report): a thin layer over the library.

The library never imports this package. ``python -m crawler.master``, ``crawler.worker``
and ``crawler.report`` (and the console scripts ``crawler-master`` and so on) call
``main`` in ``cli.master``, ``cli.worker`` and ``cli.report``; each turns its flags
(``flags``) into one configuration object and hands it to the core. ``edge`` is where
the crawler's own errors become one clear line on stderr and an exit code. A worker's
command imports nothing of the master or the report.
"""
