"""The package's shape: imports point one way, and no private name crosses a module boundary.

Read from the source with ``ast`` (nothing is imported), so the test holds for imports inside
functions too; imports under ``if TYPE_CHECKING:`` are type hints only and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("lirefs", "tracers")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (anywhere), skipping ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    walk(orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            walk(child)

    walk(tree)
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for each name the statement binds."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    if node.level:
        base = module.split(".")
        if MODULES[module].name != "__init__.py":
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    return [(source, alias.name) for alias in node.names]


def _own(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


#: Imports that point up on purpose, each a convenience method over a module built on the caller:
#: ``Direction.apply`` steers with the direction (``lirefs.steer`` builds on ``lirefs.direction``).
UPWARD = {("lirefs.direction", "lirefs.steer")}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for node in _runtime_imports(ast.parse(path.read_text())):
            for source, name in _targets(module, node):
                target = _own(f"{source}.{name}" if name else source) or _own(source)
                if target and target != module and not module.startswith(target + "."):
                    graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    graph = _graph()
    for source, target in UPWARD:
        assert target in graph[source], f"{source} -> {target} is gone: drop it from UPWARD"
        graph[source].discard(target)
    assert _cycles(graph) == []


def test_tracers_never_import_lirefs() -> None:
    graph = _graph()
    offenders = {m: sorted(graph[m]) for m in graph if m.startswith("tracers")}
    assert all(not t.startswith("lirefs") for targets in offenders.values() for t in targets)


def test_no_private_name_is_imported_across_modules() -> None:
    crossings = []
    for module, path in MODULES.items():
        for node in _runtime_imports(ast.parse(path.read_text())):
            for source, name in _targets(module, node):
                if name and name.startswith("_") and not name.startswith("__") and _own(source):
                    crossings.append(f"{module} imports {source}.{name}")
    assert crossings == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
