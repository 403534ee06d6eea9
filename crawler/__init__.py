"""crawler: a distributed image-harvesting crawler.

A master reads URL lists and serves a task queue and a result queue over
``multiprocessing.managers``; workers on any number of hosts download the URLs
with requests, verify them with Pillow, store them, and report one status per
URL. The master accounts for every URL in a JSON Lines manifest.
"""

__version__ = "0.1.0"
