"""What workers say of themselves at hello, checked: a master and a worker work together
only when they speak the same protocol (``protocol.PROTOCOL``), and one host id names
one folder of images.

The worker of "another version" is a real copy of the crawler package with its
``WIRE_VERSION`` changed, run as its own process against a real master; the older
worker, which sends no protocol at all, is a real manager connection saying hello as
workers did before the protocol was exchanged.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import (
    KEY,
    RUN_TIMEOUT,
    assert_no_traceback,
    cli_env,
    free_port,
    read_rows,
    run_cli,
    start_cli,
)
from imageserver import ImageServer, make_image
from test_cli_errors import QUICK, one_error_line, serve_list, worker_args

import crawler
from crawler import protocol
from crawler._compat import nodelay_serializer
from crawler.config import Policy
from crawler.master.endpoints import ResultQueue, RunControl, TaskQueue
from crawler.worker.channel import WorkerManager


def other_version(tmp_path: Path) -> dict[str, str]:
    """The environment of a crawler copied from this one with another WIRE_VERSION."""
    root = tmp_path / "other-crawler"
    shutil.copytree(
        Path(crawler.__file__).parent,
        root / "crawler",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    module = root / "crawler" / "protocol.py"
    text, count = re.subn(r"(?m)^WIRE_VERSION = \d+$", "WIRE_VERSION = 999", module.read_text())
    assert count == 1
    module.write_text(text)
    return cli_env(PYTHONPATH=str(root), PYTHONSAFEPATH="1")


def test_a_worker_of_another_version_is_turned_away_and_the_run_goes_on(
    tmp_path: Path,
    image_server: ImageServer,
    routes: dict[str, str],
    reaper: list[subprocess.Popen[str]],
) -> None:
    master, port, out = serve_list(tmp_path, [routes["png"]], reaper)
    env = other_version(tmp_path)
    for wait in ([], ["--wait"]):  # a worker serving every run stops too: it never could
        result = run_cli("worker", *worker_args(port, out), *wait, env=env, timeout=QUICK)
        line = one_error_line(result, "crawler-worker")
        assert f"the master at 127.0.0.1:{port} runs crawler {crawler.__version__} " in line
        assert f"(protocol {protocol.PROTOCOL}), this worker runs crawler" in line
        assert "(protocol 999." in line and line.endswith("install the same crawler on every host")
    assert image_server.total_hits() == 0

    right = run_cli("worker", *worker_args(port, out), "--threads", "1")
    assert right.returncode == 0, right.stderr
    master_out, master_err = master.communicate(timeout=RUN_TIMEOUT)
    assert master.returncode == 0, master_err
    assert_no_traceback(master_out, master_err)
    turned = [line for line in master_err.splitlines() if "turned away worker" in line]
    assert len(turned) == 2, master_err  # one line per worker turned away
    assert all("it runs crawler" in line and "(protocol 999." in line for line in turned)
    assert [row["status"] for row in read_rows(out / "manifest.jsonl")] == ["ok"]


@pytest.mark.parametrize("info", [{"host": "old"}, {"host": "odd", "protocol": ["x"]}, None])
def test_a_worker_that_names_no_protocol_gets_no_usable_policy(
    tmp_path: Path, info: object, reaper: list[subprocess.Popen[str]]
) -> None:
    """What a worker from before the exchange (or any other peer) receives: no policy a
    worker of any version would work with. It is turned away, not registered."""
    master, port, _ = serve_list(tmp_path, [f"http://127.0.0.1:{free_port()}/never.png"], reaper)
    manager = WorkerManager(
        address=("127.0.0.1", port),
        authkey=KEY.encode(),
        serializer=nodelay_serializer(protocol.SERIALIZER),
    )
    manager.connect()
    answer = manager.get_run_control().hello("old-worker", info)
    assert answer["protocol"] == protocol.PROTOCOL
    with pytest.raises(ValueError, match="policy is not a JSON object"):
        Policy.from_json(answer["policy"])
    master.terminate()
    _, master_err = master.communicate(timeout=RUN_TIMEOUT)
    assert "turned away worker old-worker" in master_err
    assert "an older crawler (no protocol at hello)" in master_err


@pytest.mark.parametrize("host_ids", [None, ("a", "b")])
def test_two_folders_under_one_host_id_are_warned_of(
    tmp_path: Path,
    image_server: ImageServer,
    routes: dict[str, str],
    reaper: list[subprocess.Popen[str]],
    host_ids: tuple[str, str] | None,
) -> None:
    """Two workers on one machine with their own --output but the default --host-id:
    a rerun would trust that host's images, which one folder lacks, and fetch them again
    into it. The master says so once; with a --host-id each, it says nothing."""
    # The slow image keeps the run open until both workers have said hello.
    slow = image_server.add("/slow.png", make_image("PNG", 8, 8, seed=1), delay=1.5)
    master, port, _ = serve_list(tmp_path, [*routes.values(), slow], reaper)
    workers = []
    for n in range(2):
        ident = ["--host-id", host_ids[n]] if host_ids else []
        args = [*worker_args(port, tmp_path / f"out{n}"), "--threads", "1", *ident]
        workers.append(start_cli("worker", *args))
    reaper.extend(workers)
    _, master_err = master.communicate(timeout=RUN_TIMEOUT)
    assert master.returncode in (0, 4), master_err  # the routes hold failures on purpose
    clashes = [line for line in master_err.splitlines() if "both say they are host" in line]
    assert len(clashes) == (0 if host_ids else 1), master_err
    if not host_ids:
        assert str(tmp_path / "out0") in clashes[0] and str(tmp_path / "out1") in clashes[0]


@pytest.mark.parametrize(
    ("kind", "endpoint"), [("task", TaskQueue), ("result", ResultQueue), ("control", RunControl)]
)
def test_the_endpoints_take_the_parameters_the_protocol_names(kind: str, endpoint: type) -> None:
    """``protocol.CALLS`` is part of the identity: a parameter added to an endpoint and not
    there would let a newer worker's call fail on an older master (a RemoteError
    mid-run) instead of both refusing each other at hello."""
    for method, params in protocol.CALLS[kind].items():
        signature = inspect.signature(getattr(endpoint, method))
        assert tuple(signature.parameters)[1:] == params, (kind, method)
    exposed = {name for name in vars(endpoint) if not name.startswith("_")}
    assert exposed >= set(protocol.CALLS[kind])
