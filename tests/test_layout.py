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
    for source, target in UPWARD | COMPAT_UPWARD:
        assert target in graph[source], f"{source} -> {target} is gone: drop it from the set"
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


# -- no module imports its own parent package's __init__ ---------------------------------------

#: A package's ``__main__`` runs the package as a script (``python -m lirefs.cli``): calling the
#: entry point its ``__init__`` defines is its one job, so it is the one module allowed to.
ENTRY_POINTS = {"lirefs.cli.__main__"}


def _ancestors(module: str) -> list[str]:
    """The packages above ``module``: ``["lirefs.analysis", "lirefs"]`` for
    ``lirefs.analysis.plots``, ``["lirefs"]`` for the package ``lirefs.analysis`` itself."""
    parts = module.split(".")[:-1]
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _parent_init_imports(module: str) -> list[str]:
    """Imports of a name defined in an enclosing package's ``__init__`` (not a submodule of it)."""
    above = set(_ancestors(module))
    found = []
    for node in _runtime_imports(ast.parse(MODULES[module].read_text())):
        for source, name in _targets(module, node):
            if source not in above:
                continue
            if name is None or f"{source}.{name}" not in MODULES:
                found.append(f"{module} imports {source}{'.' + name if name else ''}")
    return found


def test_no_module_imports_its_parent_package_init() -> None:
    offenders = [
        line
        for module in MODULES
        if module not in ENTRY_POINTS
        for line in _parent_init_imports(module)
    ]
    assert offenders == []


def test_the_parent_init_check_finds_one(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store.py"
    store.write_text("def version():\n    from . import __version__\n    return __version__\n")
    monkeypatch.setitem(MODULES, "lirefs.fake_store", store)
    assert _parent_init_imports("lirefs.fake_store") == [
        "lirefs.fake_store imports lirefs.__version__"
    ]
    store.write_text("from . import data\nfrom ._version import __version__\n")
    assert _parent_init_imports("lirefs.fake_store") == []


# -- the floors: each imports only what lies below it --------------------------------------------

#: The ground floor: exception types, input checks, files, output folders, batching, row readers,
#: console, figures, version. It imports nothing else of lirefs.
GROUND = {
    "lirefs._version",
    "lirefs.batching",
    "lirefs.checks",
    "lirefs.console",
    "lirefs.errors",
    "lirefs.figures",
    "lirefs.inputs",
    "lirefs.outputs",
    "lirefs.store",
    "lirefs.tables",
}

#: ``tracing`` (where a call's traces run, the one batched-trace loop) stands on the ground floor
#: and the NDIF plumbing (``ndif``, which reads the model's remote setting in ``models``) only.
TRACING_MAY_IMPORT = GROUND | {"lirefs.ndif", "lirefs.models"}

#: Upward imports kept on purpose: ``lirefs.analysis`` resolves the names that moved to
#: ``lirefs.pipeline`` (``collect_split``, ``find_direction``, ``split_transfer``) for existing
#: imports, lazily. Remove these when no caller imports them from ``lirefs.analysis`` any more.
COMPAT_UPWARD = {
    ("lirefs.analysis", "lirefs.pipeline"),
    ("lirefs.analysis.splits", "lirefs.pipeline"),
}


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _upward(graph: dict[str, set[str]]) -> list[str]:
    rules = [
        (lambda m: m in GROUND, lambda t: _in(t, "lirefs") and t not in GROUND, "ground floor"),
        (
            lambda m: m == "lirefs.tracing",
            lambda t: _in(t, "lirefs") and t not in TRACING_MAY_IMPORT,
            "tracing",
        ),
        (
            lambda m: _in(m, "lirefs.analysis") or _in(m, "lirefs.evaluation"),
            lambda t: _in(t, "lirefs.pipeline") or _in(t, "lirefs.cli"),
            "analysis/evaluation",
        ),
        (lambda m: _in(m, "lirefs.pipeline"), lambda t: _in(t, "lirefs.cli"), "pipeline"),
    ]
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if (module, target) in UPWARD | COMPAT_UPWARD:
                continue
            for applies, above, floor in rules:
                if applies(module) and above(target):
                    found.append(f"{module} ({floor}) imports {target}")
    return found


def test_every_floor_imports_only_below_it() -> None:
    assert _upward(_graph()) == []


def test_the_floor_check_finds_an_upward_import() -> None:
    graph = {
        "lirefs.store": {"lirefs.errors", "lirefs.data"},
        "lirefs.tracing": {"lirefs.ndif", "lirefs.collect"},
        "lirefs.analysis.report": {"lirefs.pipeline"},
        "lirefs.pipeline": {"lirefs.cli._common", "lirefs.analysis"},
        "lirefs.cli.demo": {"lirefs.pipeline"},
    }
    assert _upward(graph) == [
        "lirefs.analysis.report (analysis/evaluation) imports lirefs.pipeline",
        "lirefs.pipeline (pipeline) imports lirefs.cli._common",
        "lirefs.store (ground floor) imports lirefs.data",
        "lirefs.tracing (tracing) imports lirefs.collect",
    ]


# -- sizes: short functions, few parameters for private helpers ----------------------------------

MAX_BODY_LINES = 100
MAX_PRIVATE_PARAMS = 8

#: Functions over the limits (code lines, the docstring not counted), kept until the modules that
#: hold them are split up; each entry is "module:function". New code must meet the limits, and an
#: entry that meets them fails the test below: the list only shrinks.
SIZE_ALLOWED: set[str] = set()


def _functions(tree: ast.AST) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method, named ``Class.method`` / ``outer.inner`` where nested."""
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return found


def _size_problems(module: str, source: str) -> list[str]:
    problems = []
    for name, fn in _functions(ast.parse(source)):
        # the code's lines: a leading docstring (what, why, tensor shapes) is not counted
        code = fn.body[1:] if ast.get_docstring(fn) is not None and len(fn.body) > 1 else fn.body
        body_lines = (fn.end_lineno or fn.lineno) - code[0].lineno + 1
        if body_lines > MAX_BODY_LINES:
            problems.append(f"{module}:{name} body has {body_lines} lines")
        own = fn.name
        if own.startswith("_") and not (own.startswith("__") and own.endswith("__")):
            args = fn.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
            params += [a for a in (args.vararg, args.kwarg) if a is not None]
            n = len([p for p in params if p.arg not in ("self", "cls")])
            if n > MAX_PRIVATE_PARAMS:
                problems.append(f"{module}:{name} (private) takes {n} parameters")
    return problems


def test_functions_are_short_and_private_helpers_take_few_parameters() -> None:
    problems = [
        problem
        for module, path in sorted(MODULES.items())
        for problem in _size_problems(module, path.read_text())
        if problem.split(" ")[0] not in SIZE_ALLOWED
    ]
    assert problems == []
    found = {
        problem.split(" ")[0]
        for module, path in MODULES.items()
        for problem in _size_problems(module, path.read_text())
    }
    assert found >= SIZE_ALLOWED, (
        f"meet the limits now, drop from SIZE_ALLOWED: {SIZE_ALLOWED - found}"
    )


def test_the_size_check_finds_a_long_function_and_a_wide_helper() -> None:
    long_body = "def long():\n" + "    x = 1\n" * (MAX_BODY_LINES + 1)
    wide = "def _wide(a, b, c, d, e, f, g, h, *, i):\n    return a\n"
    fine = "class C:\n    def _ok(self, a, b, c, d, e, f, g, h):\n        return a\n"
    assert _size_problems("m", long_body + wide + fine) == [
        f"m:long body has {MAX_BODY_LINES + 1} lines",
        "m:_wide (private) takes 9 parameters",
    ]


def test_no_test_folder_shadows_a_package() -> None:
    """pytest puts tests/ on sys.path: a folder there named like a shipped package (``tracers``,
    ``lirefs``) would be imported instead of it, as a namespace package."""
    tests = Path(__file__).resolve().parent
    shipped = {"lirefs", "tracers", "benchmarks"}
    clashes = sorted(p.name for p in tests.iterdir() if p.is_dir() and p.name in shipped)
    assert not clashes, f"rename these test folders: {clashes}"
