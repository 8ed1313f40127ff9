"""Remote execution (NDIF) without a network: what travels, what it asks the server to import, errors.

* Static: the modules that run inside trace bodies (``tracers``) import only torch, math and the
  standard library; trace bodies in lirefs reference nothing that the server would have to import.
* Payload: the request nnsight builds for each public trace (collect; generate in every mode and
  evaluate once they exist), made from a NON-editable install of the repository, loads with
  ``lirefs`` and ``tracers`` unimportable, and ``remote="local"`` gives the same numbers as local.
* ``lirefs.ndif``: key and host rules, key redaction, retries with backoff, clear errors.

The real-server suite is tests/ndif (``bash scripts/ndif/run_suite.sh``).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import lirefs
from lirefs import ndif as rm
from lirefs.errors import RemoteError

REPO = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("remote_probe.py")

#: What code inside a trace body may import: these, the standard library and relative imports
#: inside the trace package itself.
TRACE_IMPORT_WHITELIST = {"torch", "math", "__future__"}
#: Top-level modules a payload may ask the server to import (all present on an NDIF server).
SERVER_MODULES = {"torch", "nnsight", "cloudpickle", "transformers", "numpy", "builtins"}
CASES = ["collect", "generate-project", "generate-add", "generate-ablate", "evaluate"]


# ---------------------------------------------------------------------------------------------
# static checks


def _non_whitelisted_imports(source: str, package: str) -> list[str]:
    """Imports in ``source`` outside torch/math/stdlib and the package's own relative imports."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                continue  # relative: inside the package, travels with it
            names = [node.module or ""]
        for name in names:
            root = name.split(".")[0]
            if root == package:
                continue
            if root in TRACE_IMPORT_WHITELIST or root in sys.stdlib_module_names:
                continue
            bad.append(f"line {node.lineno}: import {name}")
    return bad


def _trace_modules() -> list[Path]:
    files: list[Path] = []
    for name in rm.TRACE_MODULES:
        module = __import__(name)
        root = Path(module.__file__).parent
        files.extend(sorted(root.rglob("*.py")))
    return files


def test_trace_modules_are_the_tracers_package() -> None:
    assert rm.TRACE_MODULES == ("tracers",)
    assert _trace_modules(), "no trace-side module files found"


@pytest.mark.parametrize("path", _trace_modules(), ids=lambda p: p.name)
def test_trace_side_module_imports_only_torch_math_stdlib(path: Path) -> None:
    assert _non_whitelisted_imports(path.read_text(), package=path.parent.name) == []


def test_import_check_catches_a_non_whitelisted_package() -> None:
    source = (
        "import math\nimport torch.nn\nfrom collections import abc\nfrom . import residual\n"
        "import numpy as np\nfrom safetensors.torch import save_file\n"
        "def f():\n    import einops\n"
    )
    assert _non_whitelisted_imports(source, "tracers") == [
        "line 5: import numpy",
        "line 6: import safetensors.torch",
        "line 8: import einops",
    ]


_TRACE_CALLS = {"trace", "generate", "session"}
_BODY_ALLOWED_MODULES = {"torch", "math", "tracers"}


def _trace_body_problems(source: str, module: str) -> list[str]:
    """What a trace body in ``source`` would make the NDIF server import.

    A trace body is the body of a ``with`` whose context is ``<x>.trace(...)``, ``.generate(...)``
    or ``.session(...)``. Inside it: no import statement; and no name that the module binds by
    importing anything but torch/math/tracers/stdlib, or by a module-level ``def``/``class``
    (those would be pickled by reference as ``lirefs.<module>.<name>``).
    """
    tree = ast.parse(source)
    imported: dict[str, str] = {}
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                imported[(a.asname or a.name).split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            for a in node.names:
                imported[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
    problems = []
    mutators = {"append", "extend", "insert", "update", "add", "setdefault", "__setitem__"}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.With, ast.AsyncWith)):
            continue
        opens_trace = any(
            isinstance(item.context_expr, ast.Call)
            and isinstance(item.context_expr.func, ast.Attribute)
            and item.context_expr.func.attr in _TRACE_CALLS
            for item in node.items
        )
        if not opens_trace:
            continue
        bound = _bound_names(node.body)
        for stmt in node.body:
            for sub in ast.walk(stmt):
                where = f"{module}:{sub.lineno}" if hasattr(sub, "lineno") else module
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    problems.append(f"{where}: import inside a trace body")
                # On NDIF the body runs on a copy of every outside object: changing a container
                # made before the block changes the server's copy, and nothing comes back.
                # Results must be assigned to a name (``x = value.save()``).
                if (
                    isinstance(sub, ast.Call)
                    and isinstance(sub.func, ast.Attribute)
                    and sub.func.attr in mutators
                    and isinstance(sub.func.value, ast.Name)
                    and sub.func.value.id not in bound
                    and sub.func.value.id not in imported
                ):
                    problems.append(
                        f"{where}: {sub.func.value.id}.{sub.func.attr}(...) changes an object made "
                        "outside the trace body (lost on NDIF); assign `name = value.save()`"
                    )
                if isinstance(sub, (ast.Assign, ast.AugAssign)):
                    targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                    for t in targets:
                        if (
                            isinstance(t, ast.Subscript)
                            and isinstance(t.value, ast.Name)
                            and t.value.id not in bound
                        ):
                            problems.append(
                                f"{where}: {t.value.id}[...] = ... changes an object made outside "
                                "the trace body (lost on NDIF); assign `name = value.save()`"
                            )
                if not isinstance(sub, ast.Name) or not isinstance(sub.ctx, ast.Load):
                    continue
                if sub.id in defined:
                    problems.append(f"{where}: module-level {sub.id!r} used in a trace body")
                elif sub.id in imported:
                    target = imported[sub.id]
                    root = target.split(".")[0]
                    ok = not target.startswith(".") and (
                        root in _BODY_ALLOWED_MODULES or root in sys.stdlib_module_names
                    )
                    if not ok:
                        problems.append(f"{where}: {sub.id!r} ({target}) used in a trace body")
    return problems


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a block binds itself (assignment, ``for`` or ``with ... as`` targets)."""
    names: set[str] = set()
    for stmt in body:
        for sub in ast.walk(stmt):
            targets: list[ast.expr] = []
            if isinstance(sub, ast.Assign):
                targets = list(sub.targets)
            elif isinstance(sub, (ast.AnnAssign, ast.For)):
                targets = [sub.target]
            elif isinstance(sub, ast.With):
                targets = [i.optional_vars for i in sub.items if i.optional_vars is not None]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _lirefs_sources() -> list[Path]:
    return sorted((REPO / "lirefs").rglob("*.py"))


def test_lirefs_has_trace_bodies_to_check() -> None:
    sources = "\n".join(p.read_text() for p in _lirefs_sources())
    assert ".trace(" in sources


@pytest.mark.parametrize("path", _lirefs_sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_trace_bodies_reference_only_what_travels(path: Path) -> None:
    assert _trace_body_problems(path.read_text(), path.stem) == []


def test_trace_body_check_catches_a_growing_import() -> None:
    source = """
import numpy as np
import torch
import tracers
from .store import hash_texts

def helper(x):
    return x

def run(model, inputs):
    with torch.inference_mode(), model.trace(inputs) as tr:
        import json
        a = tracers.last_token(model, [0]).save()
        b = np.zeros(3)
        c = helper(a)
        d = hash_texts(["x"])
        e = torch.zeros(2)
        tr.stop()
"""
    assert _trace_body_problems(source, "m") == [
        "m:12: import inside a trace body",
        "m:14: 'np' (numpy) used in a trace body",
        "m:15: module-level 'helper' used in a trace body",
        "m:16: 'hash_texts' (.store.hash_texts) used in a trace body",
    ]


def test_trace_body_check_catches_results_kept_in_outside_containers() -> None:
    source = """
import torch

def run(model, inputs):
    got = []
    out = {}
    states = None
    with model.trace(inputs) as tr:
        mine = []
        mine.append(1)
        got.append(model.output.save())
        out["x"] = model.output.save()
        states = model.output.save()
"""
    problems = _trace_body_problems(source, "m")
    assert len(problems) == 2
    assert problems[0].startswith("m:11: got.append(...) changes an object made outside")
    assert problems[1].startswith("m:12: out[...] = ... changes an object made outside")


# ---------------------------------------------------------------------------------------------
# payloads from a non-editable install


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository built as a wheel and installed into ``<tmp>/site-packages`` (not editable)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "repo"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy(REPO / name, src / name)
    for package in ("lirefs", "tracers"):
        shutil.copytree(
            REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(tmp / "dist"), "./repo"],
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list((tmp / "dist").glob("lirefs-*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site-packages"
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(site), str(wheels[0])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (site / "lirefs" / "__init__.py").is_file() and (site / "tracers").is_dir()
    return site


@pytest.fixture(scope="module")
def probe_report(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run tests/remote_probe.py from the installed wheel (own process: remote="local" leaks state)."""
    tmp = tmp_path_factory.mktemp("probe")
    script = tmp / PROBE.name
    shutil.copy(PROBE, script)
    env = {**os.environ, "PYTHONPATH": str(installed), "LIREFS_PROGRESS": "0"}
    env.pop("NDIF_API_KEY", None)
    out = subprocess.run(
        [sys.executable, str(script), "--expect-prefix", str(installed), *CASES],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _case(report: dict[str, Any], case: str) -> dict[str, Any]:
    got = report["cases"][case]
    if "skipped" in got:
        pytest.skip(f"{case}: {got['skipped']}")
    assert got["n_payloads"] >= 1
    return got


@pytest.mark.remote
@pytest.mark.slow
def test_probe_ran_from_the_installed_wheel(probe_report: dict[str, Any], installed: Path) -> None:
    for path in probe_report["where"].values():
        assert path.startswith(str(installed))


@pytest.mark.remote
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_payload_does_not_import_lirefs_or_tracers(probe_report: dict[str, Any], case: str) -> None:
    got = _case(probe_report, case)
    by_reference = [g for g in got["globals"] if g.split(".")[0] in ("lirefs", "tracers")]
    assert by_reference == []
    assert not {"lirefs", "tracers"} & {s.split(".")[0] for s in got["subimports"]}
    assert got["load_errors"] == []


@pytest.mark.remote
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_payload_imports_only_what_the_server_has(probe_report: dict[str, Any], case: str) -> None:
    got = _case(probe_report, case)
    roots = {g.split(".")[0] for g in got["globals"]} | {s.split(".")[0] for s in got["subimports"]}
    foreign = sorted(
        r for r in roots if r not in SERVER_MODULES and r not in sys.stdlib_module_names
    )
    assert foreign == []


@pytest.mark.remote
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_remote_local_matches_local(probe_report: dict[str, Any], case: str) -> None:
    got = _case(probe_report, case)
    assert got["same_as_local"], f"max abs diff {got['max_abs_diff']}"


@pytest.mark.remote
@pytest.mark.slow
def test_payload_carries_no_bytecode(probe_report: dict[str, Any]) -> None:
    got = _case(probe_report, "collect")
    assert got["bytecode_functions"] == []


# ---------------------------------------------------------------------------------------------
# lirefs.ndif: key, host, versions


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No key or host from the environment or nnsight's config; fresh per-process state."""
    from nnsight import CONFIG

    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.delenv("NDIF_HOST", raising=False)
    monkeypatch.setattr(CONFIG.API, "APIKEY", None)
    monkeypatch.setattr(CONFIG.API, "HOST", rm.DEFAULT_HOST)
    monkeypatch.setattr(rm, "_checked_hosts", set())
    return monkeypatch


def test_missing_key_is_one_clear_line(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(RemoteError) as err:
        rm.trace_kwargs(True)
    message = str(err.value)
    assert "\n" not in message
    assert "NDIF_API_KEY" in message
    assert "set_default_api_key" in message
    assert "login.ndif.us" in message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8001", "http://localhost:8001", "http://[::1]:8001", "http://127.9.9.9"],
)
def test_loopback_host_needs_no_key(clean_env: pytest.MonkeyPatch, url: str) -> None:
    clean_env.setenv("NDIF_HOST", url)
    clean_env.setattr(rm, "check_versions", lambda *a, **k: {})
    assert set(rm.trace_kwargs(True)) == {"backend"}
    from nnsight import CONFIG

    assert url == CONFIG.API.HOST


@pytest.mark.parametrize("url", ["https://api.ndif.us", "http://10.0.0.5:8001", "http://ndif.lan"])
def test_non_loopback_host_needs_a_key(clean_env: pytest.MonkeyPatch, url: str) -> None:
    clean_env.setenv("NDIF_HOST", url)
    assert not rm.is_local_host(url)
    with pytest.raises(RemoteError, match="needs an NDIF API key"):
        rm.trace_kwargs(True)


def test_key_from_env_or_config(clean_env: pytest.MonkeyPatch) -> None:
    from nnsight import CONFIG

    assert rm.api_key() is None
    clean_env.setattr(CONFIG.API, "APIKEY", "from-config-1234")
    assert rm.api_key() == "from-config-1234"
    clean_env.setenv("NDIF_API_KEY", "from-env-5678")
    assert rm.api_key() == "from-env-5678"


def test_bad_host_and_bad_remote_values(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NDIF_HOST", "api.ndif.us")
    clean_env.setenv("NDIF_API_KEY", "k" * 20)
    with pytest.raises(RemoteError, match="not an http"):
        rm.trace_kwargs(True)
    for bad in ("yes", 1.5, "remote"):
        with pytest.raises(RemoteError, match="remote must be False, True or 'local'"):
            rm.trace_kwargs(bad)  # type: ignore[arg-type]
    assert rm.trace_kwargs(False) == {}
    assert rm.trace_kwargs(None) == {}  # type: ignore[arg-type]


def test_local_remote_registers_tracers_by_value(clean_env: pytest.MonkeyPatch) -> None:
    from cloudpickle.cloudpickle import _PICKLE_BY_VALUE_MODULES

    assert rm.trace_kwargs("local") == {"remote": "local"}
    assert "tracers" in _PICKLE_BY_VALUE_MODULES
    assert "lirefs" not in _PICKLE_BY_VALUE_MODULES


def test_version_check_runs_once_per_host(clean_env: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    clean_env.setenv("NDIF_HOST", "http://127.0.0.1:1")
    clean_env.setattr(rm, "check_versions", lambda *a, **k: calls.append("x") or {})
    rm.trace_kwargs(True)
    rm.trace_kwargs(True)
    assert calls == ["x"]


class _FakeResponse:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict[str, Any]:
        return self.payload


def _fake_env(versions: dict[str, str], python: str) -> Any:
    def get(url: str, timeout: Any = None) -> _FakeResponse:
        assert url.endswith("/env")
        return _FakeResponse({"python_version": python, "packages": versions})

    return get


def test_version_mismatch_warns_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    import httpx

    mine = sys.version.split()[0]
    torch_version = importlib.metadata.version("torch")
    tf_version = importlib.metadata.version("transformers")
    monkeypatch.setattr(
        httpx,
        "get",
        _fake_env({"nnsight": "0.5.0", "torch": torch_version, "transformers": tf_version}, mine),
    )
    with pytest.warns(rm.RemoteVersionWarning, match=r"nnsight .* vs 0\.5\.0 .*nnsight==0\.5\.0"):
        diffs = rm.check_versions("http://127.0.0.1:1")
    assert set(diffs) == {"nnsight"}


def test_matching_versions_do_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    import httpx

    same = {p: importlib.metadata.version(p) for p in ("nnsight", "torch", "transformers")}
    same["torch"] = same["torch"].split("+")[0] + "+cu128"  # build tags do not matter
    monkeypatch.setattr(httpx, "get", _fake_env(same, sys.version))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rm.check_versions("http://127.0.0.1:1") == {}


def test_unreachable_server_version_check_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    def refuse(url: str, timeout: Any = None) -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(httpx, "get", refuse)
    with pytest.warns(rm.RemoteVersionWarning, match="could not compare versions"):
        assert rm.check_versions("http://127.0.0.1:1") == {}


# ---------------------------------------------------------------------------------------------
# lirefs.ndif: failures and retries


def _nnsight_remote_error(text: str) -> Exception:
    from nnsight.intervention.backends.remote import RemoteError as NNsightRemoteError

    return NNsightRemoteError(text)


class Flaky:
    """A callable that fails ``n`` times with ``exc`` and then returns ``"ok"``."""

    def __init__(self, n: int, exc: Exception) -> None:
        self.n, self.exc, self.calls = n, exc, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.n:
            raise self.exc
        return "ok"


@pytest.fixture
def keyed(clean_env: pytest.MonkeyPatch) -> str:
    key = "sk-test-0123456789abcdef"
    clean_env.setenv("NDIF_API_KEY", key)
    return key


def test_transient_failures_are_retried_with_exponential_backoff(keyed: str) -> None:
    waits: list[float] = []
    fn = Flaky(3, ConnectionRefusedError(111, "Connection refused"))
    with pytest.warns(RuntimeWarning, match="retry 1/3"):
        assert rm.run_remote(fn, retries=3, base_delay=1.0, sleep=waits.append) == "ok"
    assert fn.calls == 4
    assert len(waits) == 3
    for got, base in zip(waits, [1.0, 2.0, 4.0], strict=True):
        assert base <= got <= base * 1.1


def test_backoff_is_capped(keyed: str) -> None:
    waits: list[float] = []
    fn = Flaky(4, TimeoutError("timed out"))
    with pytest.warns(RuntimeWarning):
        rm.run_remote(fn, retries=4, base_delay=10.0, max_delay=15.0, sleep=waits.append)
    assert waits[0] < 11.0
    assert all(w <= 15.0 * 1.1 for w in waits)


def test_retries_are_bounded_then_one_clear_line(keyed: str) -> None:
    waits: list[float] = []
    fn = Flaky(10, _nnsight_remote_error("Failed to send request: [Errno 111] Connection refused"))
    with pytest.warns(RuntimeWarning), pytest.raises(RemoteError) as err:
        rm.run_remote(fn, retries=2, sleep=waits.append, what="batch 1/4 (8 prompts)")
    assert fn.calls == 3 and len(waits) == 2
    message = str(err.value)
    assert "\n" not in message
    assert "after 3 attempts" in message and "batch 1/4 (8 prompts)" in message
    assert "Connection refused" in message


def test_size_rejection_says_lower_batch_size(keyed: str) -> None:
    for text in (
        "Failed to send request: 413 Request Entity Too Large",
        "Traceback ...\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20 GiB",
        "Your job exceeded the execution timeout of 3600s.",
    ):
        fn = Flaky(1, _nnsight_remote_error(text))
        with pytest.raises(RemoteError) as err:
            rm.run_remote(fn, batch_size=32, sleep=lambda s: None)
        assert fn.calls == 1, "a size rejection is not retried"
        message = str(err.value)
        assert "lower --batch-size 32 (e.g. 16)" in message
        assert "\n" not in message


def test_refused_key_is_not_retried_and_not_echoed(keyed: str) -> None:
    fn = Flaky(1, _nnsight_remote_error(f"Failed to send request: Invalid API key. ({keyed})"))
    with pytest.raises(RemoteError) as err:
        rm.run_remote(fn, sleep=lambda s: None)
    assert fn.calls == 1
    assert keyed not in str(err.value)
    assert "***" in str(err.value) and "NDIF_API_KEY" in str(err.value)


def test_server_job_error_is_reported_once(keyed: str) -> None:
    fn = Flaky(1, _nnsight_remote_error("Traceback:\n  ...\nIndexError: index 99 is out of bounds"))
    with pytest.raises(RemoteError, match="failed the request: Traceback:") as err:
        rm.run_remote(fn, sleep=lambda s: None)
    assert fn.calls == 1 and "\n" not in str(err.value)


def test_other_errors_propagate_unchanged(keyed: str) -> None:
    fn = Flaky(1, KeyError("not NDIF's doing"))
    with pytest.raises(KeyError):
        rm.run_remote(fn, sleep=lambda s: None)
    assert fn.calls == 1
    own = Flaky(1, lirefs.LayerError("layer 99 is out of range"))
    with pytest.raises(lirefs.LayerError):
        rm.run_remote(own, sleep=lambda s: None)


def test_local_and_remote_local_are_not_retried(keyed: str) -> None:
    for remote in (False, "local"):
        fn = Flaky(1, ConnectionRefusedError(111, "Connection refused"))
        with pytest.raises(ConnectionRefusedError):
            rm.run_remote(fn, remote=remote, sleep=lambda s: None)
        assert fn.calls == 1


def test_key_never_appears_in_retry_messages(keyed: str) -> None:
    fn = Flaky(5, ConnectionError(f"cannot reach https://x?key={keyed}"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RemoteError) as err:
            rm.run_remote(fn, retries=1, sleep=lambda s: None)
    assert caught and all(keyed not in str(w.message) for w in caught)
    assert keyed not in str(err.value)


def test_redact() -> None:
    os.environ["NDIF_API_KEY"] = "abcd-secret-9"
    try:
        assert rm.redact("x abcd-secret-9 y") == "x *** y"
    finally:
        del os.environ["NDIF_API_KEY"]
    assert rm.redact("nothing here") == "nothing here"


def test_load_remote_model_refuses_a_non_hub_id() -> None:
    with pytest.raises(RemoteError, match="Hub ids like"):
        lirefs.models.load_remote_model("./some/folder")


def test_only_delivery_failures_and_preemption_are_retried(keyed: str) -> None:
    waits: list[float] = []
    fn = Flaky(1, _nnsight_remote_error("Failed to send request: Service temporarily unavailable"))
    with pytest.warns(RuntimeWarning, match="retry 1/3"):
        assert rm.run_remote(fn, sleep=waits.append) == "ok"
    fn = Flaky(1, _nnsight_remote_error("Your job was cancelled or preempted by the server."))
    with pytest.warns(RuntimeWarning, match="retry 1/3"):
        assert rm.run_remote(fn, sleep=waits.append) == "ok"
    for text in (
        "Traceback:\n  ...\nIndexError: index 503 is out of bounds",  # a 503 in a job's error
        "Failed to send request: Client nnsight version 0.4 is below the minimum supported 0.5",
    ):
        fn = Flaky(1, _nnsight_remote_error(text))
        with pytest.raises(RemoteError, match="failed the request"):
            rm.run_remote(fn, sleep=waits.append)
        assert fn.calls == 1
    assert len(waits) == 2


# ---------------------------------------------------------------------------------------------
# lirefs.ndif: what a server sends is loaded weights-only; no clear text off this machine


class _Payload:
    """Unpickling this runs code: it writes ``marker`` (what a hostile server would send)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _torch_bytes(obj: Any) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_protocol=4)
    return buffer.getvalue()


def _backend() -> Any:
    from nnsight.intervention.backends.remote import RemoteBackend

    backend = RemoteBackend("{}", host="http://127.0.0.1:1")
    backend.compress = False
    return backend


def test_the_hostile_payload_would_run_under_plain_torch_load(tmp_path: Path) -> None:
    import io

    import torch

    marker = tmp_path / "ran"
    torch.load(io.BytesIO(_torch_bytes({"x": _Payload(marker)})), weights_only=False)
    assert marker.exists()  # so the tests below can fail: this is what nnsight 0.8.1 does


def test_a_hostile_result_does_not_run_in_a_remote_call(keyed: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    blob = _torch_bytes({"states": _Payload(marker)})
    with pytest.raises(RemoteError, match="will not load") as err:
        rm.run_remote(lambda: _backend().finalize(blob), sleep=lambda s: None)
    assert not marker.exists()
    assert "\n" not in str(err.value) and keyed not in str(err.value)


def test_a_hostile_status_frame_does_not_run_in_a_remote_call(keyed: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    frame = _torch_bytes({"id": "j", "status": "COMPLETED", "data": _Payload(marker)})
    with pytest.raises(RemoteError, match="will not load"):
        rm.run_remote(lambda: _backend().parse(frame), sleep=lambda s: None)
    assert not marker.exists()


def test_a_hostile_compressed_result_does_not_run(keyed: str, tmp_path: Path) -> None:
    import zstandard as zstd

    marker = tmp_path / "ran"
    blob = zstd.ZstdCompressor().compress(_torch_bytes([_Payload(marker)]))
    backend = _backend()
    backend.compress = True
    with pytest.raises(RemoteError, match="will not load"):
        rm.run_remote(lambda: backend.finalize(blob), sleep=lambda s: None)
    assert not marker.exists()


def test_what_traces_save_still_loads(keyed: str) -> None:
    import torch
    from nnsight.schema.response import ResponseModel, Status

    saved = {"states": torch.randn(2, 3, 4, dtype=torch.bfloat16), "ids": [[1, 2], [3]], "n": 2}
    got = rm.run_remote(lambda: _backend().finalize(_torch_bytes(saved)), sleep=lambda s: None)
    assert torch.equal(got["states"], saved["states"]) and got["ids"] == saved["ids"]
    frame = ResponseModel(id="j", status=Status.COMPLETED, data=b"blob", meta={"s": 1.5}).pickle()
    response = rm.run_remote(lambda: _backend().parse(frame), sleep=lambda s: None)
    assert (response.status, response.data, response.meta) == (
        Status.COMPLETED,
        b"blob",
        {"s": 1.5},
    )


def test_nnsights_loaders_are_restored_after_a_remote_call(keyed: str) -> None:
    from nnsight.intervention.backends.remote import RemoteBackend
    from nnsight.schema.response import ResponseModel

    before = (RemoteBackend.__dict__["finalize"], ResponseModel.__dict__["unpickle"])
    with rm.safe_results():
        with rm.safe_results():
            assert RemoteBackend.__dict__["finalize"] is not before[0]
        assert RemoteBackend.__dict__["finalize"] is not before[0]
    assert (RemoteBackend.__dict__["finalize"], ResponseModel.__dict__["unpickle"]) == before


@pytest.mark.parametrize("url", ["http://10.0.0.5:8001", "http://ndif.lan", "http://api.ndif.us"])
def test_plain_http_off_this_machine_is_refused(keyed: str, url: str) -> None:
    os.environ.pop(rm.ALLOW_HTTP_ENV, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NDIF_HOST", url)
        mp.setattr(rm, "check_versions", lambda *a, **k: {})
        with pytest.raises(RemoteError, match="plain http") as err:
            rm.trace_kwargs(True)
        assert "\n" not in str(err.value) and rm.ALLOW_HTTP_ENV in str(err.value)
        mp.setenv(rm.ALLOW_HTTP_ENV, "1")
        assert set(rm.trace_kwargs(True)) == {"backend"}


# ---------------------------------------------------------------------------------------------
# lirefs.ndif: failures that are not NDIF's


def test_an_offline_hub_is_not_retried_as_an_ndif_failure(keyed: str) -> None:
    from huggingface_hub.errors import OfflineModeIsEnabled

    waits: list[float] = []
    fn = Flaky(5, OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/models/x/y"))
    with pytest.raises(RemoteError, match="Hugging Face Hub did not answer") as err:
        rm.run_remote(fn, sleep=waits.append, what="a batch of 2 prompts")
    assert fn.calls == 1 and waits == []
    assert "\n" not in str(err.value) and "NDIF at" not in str(err.value)


def test_an_unsupported_architecture_on_the_remote_path_is_one_error(
    tmp_path: Path, smollm2_dir: Path
) -> None:
    """A Hub id whose config (read from the offline HF cache) names an architecture lirefs lacks."""
    from transformers import CTRLConfig

    commit = "0" * 40
    snapshot = tmp_path / "hub" / "models--org--odd" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (tmp_path / "hub" / "models--org--odd" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--odd" / "refs" / "main").write_text(commit)
    CTRLConfig(n_layer=2, n_embd=64, n_head=4, vocab_size=49152).save_pretrained(snapshot)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(smollm2_dir / name, snapshot / name)
    script = tmp_path / "load.py"
    script.write_text(
        "import lirefs\ntry:\n    lirefs.load_model('org/odd', remote=True)\n"
        "except lirefs.LirefsError as exc:\n    print(type(exc).__name__, '|', exc)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    kind, _, message = done.stdout.strip().partition(" | ")
    assert kind == "ArchitectureError", done.stdout + done.stderr[-2000:]
    assert "ctrl" in message.lower() and "\n" not in message
