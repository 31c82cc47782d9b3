"""The house rules of `shared/`: no import circles (counting the lazy imports inside functions and the ones only
type checkers see), every module importable on its own, and no module grown past about 400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
MAX_MODULE_LINES = 425  # "about 400": room for a small addition, not for a second module's worth
# The two circles issue 15 named; each module now reaches the other only in one direction, if at all.
ONCE_CIRCULAR = (
    ("shared.adapters.agents.factory", "shared.adapters.agents.llm.providers"),
    ("shared.adapters.health", "shared.bootstrap"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def shared_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(SHARED.rglob("*.py"))}


def imported_modules(path: Path, known: Mapping[str, Path]) -> set[str]:
    """Every `shared` module `path` imports anywhere (top level, functions, `if TYPE_CHECKING:`); `from a import b`
    counts `a.b` too when b is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    modules = shared_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a set of modules importing each
    other around a loop; a module importing itself counts too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1 or module in graph[module]:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def reaches(graph: Mapping[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for imported in graph[todo.pop()]:
            if imported == goal:
                return True
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return False


def test_the_circle_finder_finds_a_circle_and_ignores_a_chain() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert circles({"a": {"a"}}) == [["a"]]


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    graph = import_graph()
    # bootstrap imports health only inside a method, factory imports providers only lazily / for type checking.
    assert "shared.adapters.health" in graph["shared.bootstrap"]
    assert "shared.adapters.agents.llm.providers" in graph["shared.adapters.agents.factory"]


def test_no_module_of_shared_is_part_of_an_import_circle() -> None:
    assert circles(import_graph()) == []


@pytest.mark.parametrize(("first", "second"), ONCE_CIRCULAR)
def test_the_once_circular_modules_import_one_way_only(first: str, second: str) -> None:
    graph = import_graph()
    assert not (reaches(graph, first, second) and reaches(graph, second, first))


def each_module() -> Iterator[str]:
    yield from (name for name in shared_modules() if ".migrations." not in name)


def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    # One interpreter per module would take a minute; one per module *first* is what catches a circle that only
    # bites when that module is imported before the others, so each import runs in a fresh `sys.modules`.
    names = list(each_module())
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    before = set(sys.modules)\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "    for loaded in set(sys.modules) - before:\n"
        "        if loaded == 'shared' or loaded.startswith('shared.'):\n"
        "            del sys.modules[loaded]\n"
        "print('\\n'.join(failed))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_no_module_of_shared_has_grown_past_about_400_lines() -> None:
    too_long = {
        name: lines
        for name, path in shared_modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, "split these along what they hold, keeping the old import paths"
