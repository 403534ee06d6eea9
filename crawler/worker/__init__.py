"""The worker process: tasks from the master in, one result per URL out.

A task flows through it as: ``channel`` (from the master) -> ``run`` (a download
thread) -> ``pipeline`` -> ``robots`` (opt-outs) -> ``fetch`` (``netguard`` on every
connection) -> ``verify`` (Pillow) -> ``storage`` -> ``channel`` (the result back).
``service`` is the command: one run, or every run with ``--wait``. It imports nothing
from ``crawler.master`` or ``crawler.report``: it runs on hosts that are never master.
"""
