"""A worker's own shortage (memory, descriptors, threads) is no failure of the URL.

``failures.host_trouble`` finds it in an exception or what it was raised from; the
pipeline then reports ``disk_error``, the worker's own trouble (it takes no more work,
its URLs go to other workers, a rerun tries them again). Until 2026-12-01 a valid image
decoded short of memory was ``corrupt`` for good, a connect short of descriptors the
origin's ``connection_error`` (a fresh user's). The shortages here are real: a child
process under a lowered rlimit.
"""

from __future__ import annotations

import io
import subprocess
import sys

from PIL import Image

from crawler.config import Policy
from crawler.exceptions import VerifyFailure
from crawler.worker import verify
from crawler.worker.failures import host_trouble

SHORT_OF_MEMORY = """
import io, resource, sys
from PIL import Image
from crawler.config import Policy
from crawler.exceptions import VerifyFailure
from crawler.worker import verify
from crawler.worker.failures import host_trouble

out = io.BytesIO()
Image.new("RGB", (6000, 6000), (10, 20, 30)).save(out, "PNG")  # 108 MB decoded
body, policy = out.getvalue(), Policy(max_pixels=50_000_000)
verify.configure(policy)
size = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1])
resource.setrlimit(resource.RLIMIT_AS, ((size << 10) + (40 << 20), resource.RLIM_INFINITY))
try:
    verify.inspect(body, policy)
    print("decoded")
except VerifyFailure as failure:
    print(failure.status, "|", host_trouble(failure))  # (words, stop)
"""

# The real fetch boundary (``fetch._bounded``) and robots.txt's (``load_verdict``), with
# every descriptor taken: no socket can be made, so nothing is ever sent (the port is
# loopback's discard port, never dialled).
SHORT_OF_DESCRIPTORS = """
import resource, socket
from crawler.config import Policy
from crawler.exceptions import FetchFailure
from crawler.worker.deadline import make_session
from crawler.worker.failures import host_trouble
from crawler.worker.fetch import fetch
from crawler.worker.robots import load_verdict

policy = Policy(retries=0, block_private=False)
session = make_session(policy)
resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
held = []
try:
    while True:
        held.append(socket.socket())
except OSError:
    pass
for host in ("127.0.0.1", "localhost"):  # a name: getaddrinfo says no errno of it
    try:
        fetch(session, f"http://{host}:9/a.png", policy)
    except FetchFailure as failure:
        print("fetch", failure.status, host_trouble(failure))
    try:
        print("robots verdict", load_verdict(f"http://{host}:9/robots.txt", session, policy))
    except FetchFailure as failure:
        print("robots", failure.status, host_trouble(failure))
"""


def child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_decode_short_of_memory_is_the_hosts_trouble_but_stops_nothing() -> None:
    """Memory may be the image's doing (large, within --max-pixels): the URL fails, and
    the worker goes on (one image must not stop every worker that tries it)."""
    status, trouble = child(SHORT_OF_MEMORY).split(" | ")
    assert "ran out of memory" in trouble and trouble.endswith("False)"), (status, trouble)


def test_a_connect_short_of_descriptors_is_the_hosts_trouble_and_stops_it() -> None:
    """Until 2026-12-03 the fetch boundary raised its failure ``from None``, so the
    shortage was not found: the origin's ``connection_error`` (a resource-limits
    trial's), and a robots.txt fetch the origin's "unavailable" verdict, shared; a host
    name's lookup failed with no errno at all (a review's)."""
    said = child(SHORT_OF_DESCRIPTORS).splitlines()
    assert len(said) == 4, said
    for line, what in zip(said, ("fetch", "robots") * 2, strict=True):
        assert line.startswith(f"{what} connection_error"), line
        assert "ran out of file descriptors" in line and line.endswith("True)"), line


def test_a_damaged_image_is_not() -> None:
    out = io.BytesIO()
    Image.new("RGB", (40, 30)).save(out, "PNG")
    policy = Policy()
    verify.configure(policy)
    try:
        verify.inspect(out.getvalue()[:-20], policy)
    except VerifyFailure as failure:
        assert failure.status == "corrupt" and host_trouble(failure) is None
    else:
        raise AssertionError("a cut PNG was ok")
