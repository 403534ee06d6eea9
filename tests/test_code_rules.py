"""The code's own rules, checked on every run: import contracts, lint, and sizes.

- ``lint-imports``: the layers (cli -> master -> report | worker -> shared modules), a
  worker never importing master or report code, no cycles (contracts in pyproject.toml);
- ``ruff check`` and ``ruff format --check`` with the project's rules;
- no module of the package over 300 lines, no function over 50;
- no import inside a function (a cycle hidden that way would pass import-linter);
- no ``queue.SimpleQueue`` waited on with a timeout: on CPython 3.11 and 3.12 such a
  wait, woken by a signal once its time is up, waits for good (``worker.pacing``);
- nothing committed at the top of the checkout beyond the design card's layout (a test
  run's captured output was once committed there by accident).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "crawler"
BIN = Path(sys.executable).parent
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
# The design card's layout, and the project's own files beside it.
TOP_LEVEL = frozenset(
    {"crawler", "urls", "downloads", "tests", "setup.cfg", "README.md"}
    | {"bench", "docs", ".ci", ".gitignore", "pyproject.toml"}
)


def modules() -> list[Path]:
    found = sorted(PACKAGE.rglob("*.py"))
    assert len(found) > 30, found  # the package is really there
    return found


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / command[0]
    assert tool.exists(), f"{tool} is not installed: pip install -e '.[test]'"
    return subprocess.run(
        [str(tool), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_are_kept() -> None:
    result = run_tool("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "command", [("ruff", "check", "."), ("ruff", "format", "--check", ".")], ids=" ".join
)
def test_ruff(command: tuple[str, ...]) -> None:
    result = run_tool(*command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_modules_are_at_most_300_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    return [node for node in ast.walk(tree) if isinstance(node, kinds)]


def test_functions_are_at_most_50_lines() -> None:
    long = {
        f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name}": n
        for path in modules()
        for fn in _functions(path)
        if (n := (fn.end_lineno or fn.lineno) - fn.lineno + 1) > MAX_FUNCTION_LINES
    }
    assert long == {}


def test_no_imports_inside_functions() -> None:
    inside = [
        f"{path.relative_to(ROOT)}:{node.lineno} in {fn.name}"
        for path in modules()
        for fn in _functions(path)
        for node in ast.walk(fn)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert inside == []


def _simple_queues(tree: ast.AST) -> set[str]:
    """The names (variables, arguments, attributes) a module gives a ``SimpleQueue``:
    annotated as one, made as one, or given one of those names' values; "SimpleQueue"
    itself under any name it is imported as."""
    kinds = {"SimpleQueue"} | {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name == "SimpleQueue" and alias.asname
    }
    names = set(kinds)

    def named(node: ast.AST) -> str | None:
        return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)

    def is_one(node: ast.AST | None) -> bool:  # a type or a call that names one
        return node is not None and bool(set(re.findall(r"\w+", ast.unparse(node))) & kinds)

    while True:  # until no name is added: ``a = b`` before ``b = SimpleQueue()`` too
        before = len(names)
        for node in ast.walk(tree):
            if isinstance(node, ast.arg | ast.AnnAssign) and is_one(node.annotation):
                names.add(str(node.arg if isinstance(node, ast.arg) else named(node.target)))
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target, value in _pairs(targets, node.value):
                    made = isinstance(value, ast.Call) and is_one(value.func)
                    if (made or named(value) in names) and named(target):
                        names.add(str(named(target)))
        if len(names) == before:
            return names


def _pairs(targets: list[ast.expr], value: ast.expr) -> list[tuple[ast.expr, ast.expr]]:
    """(target, value) of an assignment, ``a, b = x, y`` taken pairwise."""
    pairs = []
    for target in targets:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            pairs += zip(target.elts, value.elts, strict=False)
        else:
            pairs.append((target, value))
    return pairs


def _timed_simple_queue_gets(path: Path) -> list[str]:
    """Where a module calls ``get`` on one of its SimpleQueues (or on one it makes right
    there) with a timeout."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    queues = _simple_queues(tree)

    def receiver(node: ast.expr) -> str | None:
        if isinstance(node, ast.Call):  # ``queue.SimpleQueue().get(...)``
            node = node.func
        return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)

    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and (len(node.args) >= 2 or any(k.arg == "timeout" for k in node.keywords))
        and receiver(node.func.value) in queues
    ]


def test_no_simple_queue_is_waited_on_with_a_timeout() -> None:
    assert [hit for path in modules() for hit in _timed_simple_queue_gets(path)] == []


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The size and import checks are not vacuous: they flag a function that breaks them."""
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def big() -> None:\n    import os\n{body}\n", encoding="utf-8")
    [fn] = _functions(sample)
    assert (fn.end_lineno or 0) - fn.lineno + 1 > MAX_FUNCTION_LINES
    assert any(isinstance(node, ast.Import) for node in ast.walk(fn))
    waits = tmp_path / "waits.py"
    waits.write_text(
        "import queue\n"
        "class A:\n"
        "    def __init__(self, done: queue.SimpleQueue[int]) -> None:\n"
        "        self._done, self._n = done, 1\n"
        "        self._other = queue.SimpleQueue()\n"
        "    def wait(self) -> None:\n"
        "        self._done.get(timeout=1)\n"
        "        self._other.get(True, 1)\n"
        "        self._other.get()\n"
        "        queue.SimpleQueue().get(timeout=1)\n"
        "from queue import SimpleQueue as SQ\n"
        "a = b\n"
        "b = SQ()\n"
        "a.get(timeout=2)\n",
        encoding="utf-8",
    )
    assert sorted(_timed_simple_queue_gets(waits)) == [f"waits.py:{n}" for n in (10, 14, 7, 8)]


def test_nothing_stray_at_the_top_of_the_checkout() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split("\0")
    top = {name.split("/", 1)[0] for name in listed if name}
    assert "crawler" in top  # the listing really is the checkout's
    assert top - TOP_LEVEL == set()


@pytest.mark.parametrize(
    ("prog", "module"),
    [("crawler-master", "crawler.master"), ("crawler-worker", "crawler.worker"),
     ("crawler-export", "crawler.export"), ("crawler-report", "crawler.report")],
)  # fmt: skip
def test_the_readme_shows_each_commands_help_as_it_is(prog: str, module: str) -> None:
    """The README's help blocks are the commands' ``--help`` at 80 columns, word for word."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(rf"```\n(usage: {prog} .*?)```", readme, re.S)
    assert block is not None, f"no help block for {prog} in the README"
    env = {**os.environ, "COLUMNS": "80"}
    shown = subprocess.run(
        [sys.executable, "-m", module, "--help"], env=env, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout  # fmt: skip
    assert shown.strip() == block[1].strip()
