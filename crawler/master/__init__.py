"""The master process: lists in, leases out, results journalled in the manifest.

A URL flows through it as: ``lists`` (read and normalised) -> ``plan`` (a task in the
``taskstore``, or a per-line row) -> ``frontier`` and ``leases`` (handed to a worker,
``politeness`` permitting) -> ``server``/``endpoints`` (over the wire) -> ``results``
(checked) -> ``journal`` (the manifest row). ``launch`` listens and starts the local
workers before planning; ``run`` drives the rest; ``summary`` and the
report close the run. Run it as ``python -m crawler.master`` (see ``crawler.cli``).
"""
