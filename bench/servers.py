"""HTTP servers for the benchmark, all on 127.0.0.1, all stopped by the harness (or by themselves).

* ``start_static``: nginx from Debian (``nginx-light``) with its own config, prefix, pid and
  log files in a scratch folder (``daemon off``, one worker, sendfile, keep-alive); when
  nginx is missing and cannot be installed, a Python ``ThreadingHTTPServer`` instead,
  and the caller is told so (``Running.fallback``).
* ``start_delay``: an asyncio server that answers every request after a fixed delay,
  from memory, for the latency-bound run; ``probe`` measures what it can serve.

The Python servers run in child processes (``python bench/servers.py static|delay``)
that exit when their stdin closes, i.e. when the harness is gone, however it ended;
nginx gets a small guard process (``python bench/servers.py guard PID``) doing the same.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import grp
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.1"
MAX_LIFETIME = 6 * 3600  # seconds: a server child never outlives this, whatever happens
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
APT_BUDGET = 150  # seconds for all apt-get steps together
Say = Callable[[str], None]


@dataclass
class Running:
    """A server the harness started; ``stop`` ends it and everything it started."""

    name: str
    base_url: str
    proc: subprocess.Popen
    helpers: list[subprocess.Popen] = field(default_factory=list)
    fallback: str | None = None  # why this is not nginx, when it is not
    scratch: Path | None = None

    def stop(self) -> None:
        for proc in [*self.helpers, self.proc]:  # a guard first: it stops what it guards
            stop_process(proc)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Close its stdin, SIGTERM its process group, SIGKILL it after ``grace`` seconds."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # started with start_new_session: pgid == pid
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- nginx ---
def find_nginx(allow_install: bool, say: Say) -> tuple[str | None, str]:
    """The nginx binary (installing nginx-light when allowed and root), or None and why not."""
    return find_binary("nginx", "nginx-light", allow_install, say)


def find_binary(name: str, package: str, allow_install: bool, say: Say) -> tuple[str | None, str]:
    """The ``name`` binary (installing Debian's ``package`` when allowed and root), or None
    and why not."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path:
        return path, "installed"
    if not allow_install:
        return None, f"{name} is not installed (and --no-install)"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, f"{name} is not installed and this is not root with apt-get"
    say(f"{name} missing: apt-get install -y {package} ...")
    deadline = time.monotonic() + APT_BUDGET
    if not _apt(deadline, "install", "-y", package):
        say("install failed; apt-get update, then again ...")
        if not (_apt(deadline, "update") and _apt(deadline, "install", "-y", package)):
            return None, f"apt-get install {package} failed"
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    return (path, "installed now") if path else (None, f"{name} not found after install")


def _apt(deadline: float, *args: str) -> bool:
    """Run one apt-get step within what is left of the budget; True if it worked."""
    left = deadline - time.monotonic()
    if left <= 1:
        return False
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(
            ["apt-get", *args], env=env, capture_output=True, timeout=left, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def nginx_version(path: str) -> str:
    done = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"nginx/(\S+)", done.stderr + done.stdout)
    return f"nginx/{match.group(1)}" if match else "nginx"


def nginx_config(scratch: Path, root: Path, port: int) -> str:
    user = ""
    if os.geteuid() == 0:  # workers drop to nobody; Debian's nobody has no 'nobody' group
        group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        user = f"user nobody {group};"
    temps = "\n".join(
        f"    {kind}_temp_path {scratch}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    types = " ".join(f"{ctype} {ext};" for ext, ctype in CONTENT_TYPES.items())
    return f"""{user}
daemon off;
worker_processes 1;
pid {scratch}/nginx.pid;
error_log {scratch}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    types {{ {types} }}
    default_type application/octet-stream;
{temps}
    server {{
        listen {HOST}:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(path: str, root: Path, probe_path: str) -> Running:
    """nginx serving ``root``; raises RuntimeError when it does not come up."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    os.chmod(scratch, 0o755)
    error = "?"
    for _ in range(3):  # a free port can be taken between the probe and nginx's bind
        port = free_port()
        conf = scratch / "nginx.conf"
        conf.write_text(nginx_config(scratch, root, port))
        proc = subprocess.Popen(
            [path, "-p", str(scratch), "-c", str(conf), "-e", str(scratch / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        base = f"http://{HOST}:{port}"
        if wait_http(base + probe_path, proc, 10):
            guard = _spawn_self("guard", str(proc.pid))
            return Running(nginx_version(path), base, proc, [guard], scratch=scratch)
        stop_process(proc)
        error = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
    shutil.rmtree(scratch, ignore_errors=True)
    raise RuntimeError(f"nginx did not start: {error[-300:]}")


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    """True once ``url`` answers 200; False if ``proc`` exits or ``timeout`` passes."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return True
        time.sleep(0.05)
    return False


# --- Python servers, run as children of the harness ---
def _spawn_self(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _read_port(proc: subprocess.Popen, timeout: float) -> int:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode() if ready else ""
    match = re.fullmatch(r"PORT (\d+)\s*", line)
    if not match:
        stop_process(proc)
        raise RuntimeError(f"server child did not report its port (got {line!r})")
    return int(match.group(1))


def start_python_static(root: Path, reason: str) -> Running:
    proc = _spawn_self("static", str(root))
    port = _read_port(proc, 30)
    name = "Python ThreadingHTTPServer (FALLBACK: not nginx)"
    return Running(name, f"http://{HOST}:{port}", proc, fallback=reason)


def start_static(root: Path, probe_path: str, mode: str, allow_install: bool, say: Say) -> Running:
    """nginx if possible (``mode`` auto or nginx), else the Python fallback, saying why."""
    reason = "--server python"
    if mode != "python":
        path, why = find_nginx(allow_install, say)
        if path is None:
            reason = why
        else:
            try:
                return start_nginx(path, root, probe_path)
            except RuntimeError as exc:
                reason = str(exc)
        if mode == "nginx":
            raise RuntimeError(f"--server nginx: {reason}")
    say(f"WARNING: serving with the Python fallback server, not nginx ({reason})")
    return start_python_static(root, reason)


def start_delay(root: Path, names: list[str], delay: float) -> Running:
    listing = Path(tempfile.mkstemp(prefix="bench-delay-", suffix=".json")[1])
    listing.write_text(json.dumps(names))
    try:
        proc = _spawn_self("delay", str(root), str(listing), str(delay))
        port = _read_port(proc, 60)
    finally:
        listing.unlink()
    return Running(f"asyncio delay server ({delay * 1000:.0f} ms)", f"http://{HOST}:{port}", proc)


class _Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like nginx
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve_static(root: str) -> None:
    handler = functools.partial(_Quiet, directory=root)
    with ThreadingHTTPServer((HOST, 0), handler) as httpd:
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        print(f"PORT {httpd.server_address[1]}", flush=True)
        _wait_for_parent()
        httpd.shutdown()


def _wait_for_parent() -> None:
    """Block until stdin closes (the harness is gone) or MAX_LIFETIME passes."""
    ready, _, _ = select.select([sys.stdin], [], [], MAX_LIFETIME)
    if ready:
        sys.stdin.buffer.read()
    # then return: the caller stops serving


def _guard(pid: int) -> None:
    """Stop nginx (process group ``pid``) when the harness is gone."""
    _wait_for_parent()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)


async def _delay_main(root: str, listing: str, delay: float) -> None:
    names = json.loads(Path(listing).read_text())
    bodies = {f"/img/{n}": (Path(root) / "img" / n).read_bytes() for n in names}
    handler = functools.partial(_answer, bodies=bodies, delay=delay)
    server = await asyncio.start_server(handler, HOST, 0, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _wait_for_parent)
    server.close()


async def _answer(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    bodies: dict[str, bytes],
    delay: float,
) -> None:
    """Serve keep-alive requests on one connection, each after ``delay`` seconds."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, *_ = [*head.split(b"\r\n", 1)[0].split(b" "), b"", b""]
            await asyncio.sleep(delay)
            path = path.split(b"?", 1)[0]  # ?copy=N: more distinct URLs than files
            body = bodies.get(path.decode("latin-1"))
            writer.write(_response(body, path.decode("latin-1")))
            if body is not None and method == b"GET":
                writer.write(body)
            await writer.drain()
            if b"connection: close" in head.lower():
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


def _response(body: bytes | None, path: str) -> bytes:
    if body is None:
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    ctype = CONTENT_TYPES.get(path.rsplit(".", 1)[-1], "application/octet-stream")
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()


# --- How much a server can serve ---
def probe(base_url: str, paths: list[str], connections: int, per_connection: int) -> dict:
    """Requests/s the server at ``base_url`` serves to ``connections`` keep-alive clients."""
    return asyncio.run(_probe(base_url, paths, connections, per_connection))


async def _probe(base_url: str, paths: list[str], connections: int, per_connection: int) -> dict:
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    jobs = [
        _client(host, int(port), [paths[(i * per_connection + k) % len(paths)]
                                  for k in range(per_connection)])
        for i in range(connections)
    ]  # fmt: skip
    done = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), timeout=60)
    elapsed = time.monotonic() - started
    served = sum(d for d in done if isinstance(d, int))
    return {"requests": served, "errors": len(done) * per_connection - served, "seconds": elapsed,
            "requests_per_s": served / elapsed}  # fmt: skip


async def _client(host: str, port: int, paths: list[str]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    served = 0
    try:
        for path in paths:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            served += head.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()
    return served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("static", "delay", "guard"))
    parser.add_argument("args", nargs="*")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if args.mode == "static":
        _serve_static(args.args[0])
    elif args.mode == "delay":
        root, listing, delay = args.args
        asyncio.run(_delay_main(root, listing, float(delay)))
    else:
        _guard(int(args.args[0]))


if __name__ == "__main__":
    main()
