"""NDIF request plumbing: trace options, the API key and host, versions, retries, payload checks.

Models (remote ones included) are built by ``lirefs.models``; this module only sends their traces,
and imports ``models``, never the reverse. Every lirefs function that runs a trace takes ``remote``:

* ``None`` (the default where it is accepted): the model's own setting, :func:`resolve_remote`
  (``True`` for a model from ``load_model(..., remote=True)``, else ``False``);
* ``False``: run locally;
* ``True``: send the trace to NDIF (key: ``NDIF_API_KEY`` or nnsight's config; host: ``NDIF_HOST``,
  default ``https://api.ndif.us``);
* ``"local"``: nnsight's in-process remote path (serialises the request like a real one, runs it
  here): what the tests use.

Rules, in the order a remote run meets them:

1. **Key.** ``remote=True`` needs an NDIF API key: ``NDIF_API_KEY`` in the environment, or one saved
   with ``nnsight.CONFIG.set_default_api_key(key)`` (``nnsight login``). The one exception is a host
   on the loopback interface (``http://127.0.0.1:...``, ``http://localhost:...``, ``http://[::1]:...``):
   that is a local NDIF server (``scripts/ndif``), which runs without authentication when it has no
   user database, so no key is asked for. The key is never printed, logged or written into
   artifacts: every message that could echo it passes through :func:`redact`.
2. **Trace code travels by value.** The ``tracers`` package (the only code that runs inside trace
   bodies) is registered with ``nnsight.register`` so its source is shipped with each request: the
   NDIF server does not have lirefs installed, and nnsight only ships editable (source-tree)
   installs on its own.
3. **Versions.** On the first request to a host, the client's ``nnsight``, ``torch`` and
   ``transformers`` versions and its Python version are compared with the server's (``GET /env``,
   what ``nnsight.compare()`` reads); a difference is a :class:`RemoteVersionWarning` (a differing
   nnsight can make NDIF reject or misread requests).
4. **Results load weights-only.** nnsight 0.8 loads what the server sends with
   ``torch.load(weights_only=False)``, which runs any code a hostile (or spoofed) server puts in the
   pickle. While lirefs runs a remote trace (:func:`run_remote`), nnsight's two loaders are
   replaced by :func:`load_result`, an unpickler that resolves only the globals of
   :data:`RESULT_GLOBALS` (how torch writes tensors, and nnsight's ``Status`` enum): tensors,
   containers, numbers and strings load, anything else is refused with one line.
5. **No clear text off this machine.** A plain ``http://`` host that is not on the loopback
   interface is refused (the key and the results would cross the network unencrypted) unless
   ``LIREFS_ALLOW_HTTP=1`` says so.
6. **Failures.** :func:`run_remote` wraps each remote trace: network failures and server
   unavailability are retried with exponential backoff (3 retries by default), then become one
   :class:`~lirefs.errors.RemoteError` line; a job refused for its size (or out of memory) says to
   lower ``--batch-size``; any other server-side error is reported at once, without retry.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import ipaddress
import os
import random
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlparse

from .checks import check_remote
from .errors import RemoteError, RemoteVersionWarning
from .models import remote_setting

__all__ = [
    "ALLOW_HTTP_ENV",
    "DEFAULT_HOST",
    "DEFAULT_MAX_RESULT_BYTES",
    "MAX_RESULT_BYTES_ENV",
    "RESULT_GLOBALS",
    "TRACE_MODULES",
    "RemoteVersionWarning",
    "api_key",
    "check_remote",
    "check_versions",
    "classify",
    "clean_text",
    "host",
    "is_local_host",
    "load_result",
    "max_result_bytes",
    "prepare_remote",
    "redact",
    "register_trace_modules",
    "resolve_remote",
    "run_remote",
    "safe_backend",
    "safe_results",
    "trace_kwargs",
]

T = TypeVar("T")

#: NDIF's public API (nnsight's default host).
DEFAULT_HOST = "https://api.ndif.us"

#: Set to ``1`` to accept a plain ``http://`` NDIF host that is not on the loopback interface.
ALLOW_HTTP_ENV = "LIREFS_ALLOW_HTTP"

#: Environment variable: the most bytes one remote result may take, downloaded or decompressed.
MAX_RESULT_BYTES_ENV = "LIREFS_MAX_RESULT_BYTES"

#: Default cap on one remote result (4 GiB): far above what a lirefs batch saves (per-layer states
#: of a few prompts), far below what exhausts a workstation.
DEFAULT_MAX_RESULT_BYTES = 4 * 1024**3

#: Modules whose functions run inside trace bodies: shipped by value with every remote request.
#: A module added here must import only torch, math and the standard library (tests/test_remote.py
#: checks every module listed).
TRACE_MODULES: tuple[str, ...] = ("tracers",)

#: Packages whose version must match between client and server.
_CRITICAL_PACKAGES = ("nnsight", "torch", "transformers")

_KEY_HELP = (
    "create a key by logging in at https://login.ndif.us, then either export NDIF_API_KEY=<key> "
    "or run once in Python: nnsight.CONFIG.set_default_api_key('<key>')"
)

_lock = threading.Lock()
_registered: set[str] = set()
_checked_hosts: set[str] = set()


# ---------------------------------------------------------------------------------------------
# key and host


def host() -> str:
    """The NDIF API base URL: ``$NDIF_HOST``, else nnsight's configured host (``DEFAULT_HOST``)."""
    env = os.environ.get("NDIF_HOST", "").strip()
    if env:
        return env.rstrip("/")
    from nnsight import CONFIG

    return str(CONFIG.API.HOST or DEFAULT_HOST).rstrip("/")


def api_key() -> str | None:
    """The NDIF API key (``$NDIF_API_KEY``, else nnsight's config), or ``None``. Never print it."""
    env = os.environ.get("NDIF_API_KEY", "").strip()
    if env:
        return env
    from nnsight import CONFIG

    key = CONFIG.API.APIKEY
    return str(key).strip() or None if key else None


def is_local_host(url: str) -> bool:
    """``True`` for a URL on the loopback interface (a local NDIF server, no key needed)."""
    parsed = urlparse(url if "://" in url else f"http://{url}")
    name = (parsed.hostname or "").strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def redact(text: str) -> str:
    """``text`` with the NDIF API key (if set and present) replaced by ``***``."""
    key = api_key()
    if key and len(key) >= 4:
        text = text.replace(key, "***")
    return text


def resolve_remote(model: Any, remote: object = None) -> bool | str:
    """The ``remote`` a call runs with: an explicit argument wins, ``None`` takes the model's own.

    A model from ``load_model(..., remote=True)`` remembers it (``models.remote_setting``), so
    ``collect_activations(model, prompts)`` runs on NDIF without repeating ``remote=True``, while
    ``remote=False`` still runs locally (which a meta model cannot do: the trace then fails).

    Raises:
        RemoteError: ``remote`` is not ``None``, ``False``, ``True`` or ``"local"``.
    """
    if remote is None:
        return remote_setting(model)
    return check_remote(remote)


# ---------------------------------------------------------------------------------------------
# preparing a remote run


def register_trace_modules() -> list[str]:
    """Register every module of :data:`TRACE_MODULES` for pickling by value (idempotent).

    Returns the names registered. Without this, a pip-installed (non-editable) lirefs sends trace
    bodies that ask the server to ``import tracers``, which it cannot.
    """
    import importlib

    import nnsight

    with _lock:
        for name in TRACE_MODULES:
            if name not in _registered:
                nnsight.register(importlib.import_module(name))
                _registered.add(name)
        return sorted(_registered)


def _sync_nnsight_config(url: str, key: str | None) -> None:
    """Point nnsight's config at ``url``/``key`` for this process (nothing is written to disk).

    nnsight reads ``NDIF_HOST``/``NDIF_API_KEY`` once at import; a value set later (or by a test)
    would otherwise be ignored.
    """
    from nnsight import CONFIG

    CONFIG.API.HOST = url
    if key:
        CONFIG.API.APIKEY = key


def prepare_remote(remote: bool | str) -> None:
    """Everything a trace needs before it goes to NDIF (or nnsight's local remote path).

    * ``"local"``: registers the trace modules by value (so the local path exercises what NDIF gets).
    * ``True``: also checks the key (see the module docstring for the loopback rule), points
      nnsight at the host, and compares versions with the server once per host.

    Raises:
        RemoteError: ``remote`` is invalid, or no API key is set for a non-local host.
    """
    remote = check_remote(remote)
    if remote is False:
        return
    register_trace_modules()
    if remote != "local":
        url = host()
        key = api_key()
        if not url.startswith(("http://", "https://")):
            raise RemoteError(
                f"NDIF_HOST={url!r} is not an http(s) URL; set it like https://api.ndif.us"
            )
        if key is None and not is_local_host(url):
            raise RemoteError(f"remote=True needs an NDIF API key and none is set: {_KEY_HELP}")
        if url.startswith("http://") and not is_local_host(url) and not _http_allowed():
            raise RemoteError(
                f"NDIF_HOST={url!r} is plain http to another machine: the API key and the results "
                f"would travel unencrypted; use https://, or set {ALLOW_HTTP_ENV}=1 to accept that"
            )
        _sync_nnsight_config(url, key)
        if url not in _checked_hosts:
            check_versions()
            _checked_hosts.add(url)


def _http_allowed() -> bool:
    return os.environ.get(ALLOW_HTTP_ENV, "").strip().lower() in ("1", "true", "yes")


def trace_kwargs(remote: bool | str, model: Any = None) -> dict[str, Any]:
    """Keyword arguments for ``model.trace``/``model.generate``/``model.session`` for ``remote``.

    Going remote (``True`` or ``"local"``) first runs :func:`prepare_remote`. For ``True`` the
    arguments carry a :func:`safe_backend` (not nnsight's own ``remote=True`` backend), so results
    load with :func:`load_result`, within :func:`max_result_bytes`, from ``https`` URLs only, in
    any trace opened with them: ``model.trace(inputs, **trace_kwargs(remote))`` is safe as written.
    A ``model.session(...)`` holds no model of its own, so pass ``model=`` for one.
    """
    remote = check_remote(remote)
    if remote is False:
        return {}
    prepare_remote(remote)
    if remote == "local":
        return {"remote": remote}
    return {"backend": safe_backend(model)}


def check_versions(url: str | None = None, *, timeout: float = 30.0) -> dict[str, tuple[str, str]]:
    """Compare this client's nnsight/torch/transformers/Python with the NDIF server's.

    Reads the server's ``GET /env`` (what ``nnsight.compare()`` shows) and warns with
    :class:`RemoteVersionWarning` for every difference. A server that does not answer is also a
    warning here (the request itself will then fail with a clear :class:`RemoteError`).

    Returns:
        ``{package: (local, remote)}`` for each package (and ``"python"``) that differs.
    """
    import httpx

    url = (url or host()).rstrip("/")
    try:
        response = httpx.get(f"{url}/env", timeout=httpx.Timeout(5.0, read=timeout))
        response.raise_for_status()
        env = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        warnings.warn(
            redact(
                f"could not compare versions with the NDIF server at {url} ({_short(exc)}); "
                "requests from an nnsight version the server does not run can be rejected"
            ),
            RemoteVersionWarning,
            stacklevel=2,
        )
        return {}
    remote_packages = env.get("packages", {}) if isinstance(env, dict) else {}
    if not isinstance(remote_packages, dict):
        remote_packages = {}
    diffs: dict[str, tuple[str, str]] = {}
    for package in _CRITICAL_PACKAGES:
        try:
            local = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            local = "-"
        theirs = clean_text(remote_packages.get(package, "-"), 60)
        if theirs != "-" and _base_version(theirs) != _base_version(local):
            diffs[package] = (local, theirs)
    local_py = sys.version.split()[0]
    remote_py = (
        (clean_text(env.get("python_version", "-"), 60).split() or ["-"])[0]
        if isinstance(env, dict)
        else "-"
    )
    if remote_py != "-" and remote_py.rsplit(".", 1)[0] != local_py.rsplit(".", 1)[0]:
        diffs["python"] = (local_py, remote_py)
    if diffs:
        listed = ", ".join(f"{p} {a} here vs {b} on the server" for p, (a, b) in diffs.items())
        fix = (
            f"pip install 'nnsight=={diffs['nnsight'][1]}'"
            if "nnsight" in diffs
            else "match these versions if results differ from a local run"
        )
        warnings.warn(
            f"NDIF at {url} runs other versions: {listed}; {fix}",
            RemoteVersionWarning,
            stacklevel=2,
        )
    return diffs


def _base_version(version: str) -> str:
    """``"2.13.0+cpu"`` -> ``"2.13.0"``: local build tags do not matter for compatibility."""
    return version.split("+", 1)[0].strip()


# ---------------------------------------------------------------------------------------------
# loading what the server sends


#: Globals a remote result may name besides torch's dtypes and storage types: how ``torch.save``
#: writes tensors and containers, and nnsight's status enum. Nothing here runs code of the
#: sender's choosing.
RESULT_GLOBALS: tuple[str, ...] = (
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.Size",
    "torch.device",
    "collections.OrderedDict",
    "builtins.set",
    "builtins.frozenset",
    "builtins.bytearray",
    "builtins.complex",
    "builtins.slice",
    "_codecs.encode",
    "nnsight.schema.response.Status",
)


def _allowed_global(module: str, name: str) -> Any:
    """The object ``module.name`` if a result may name it, else ``pickle.UnpicklingError``."""
    import importlib
    import pickle

    import torch

    module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if f"{module}.{name}" not in RESULT_GLOBALS:
        raise pickle.UnpicklingError(f"it names {module}.{name}")
    return getattr(importlib.import_module(module), name)


def _result_pickle_module() -> Any:
    """A ``pickle_module`` for ``torch.load`` whose unpickler resolves only allowed globals.

    ``torch.load(weights_only=True)`` would do the same but cannot read the protocol-4 pickles
    nnsight's server writes (its unpickler lacks the ``FRAME`` opcode), hence this allowlist.
    """
    import pickle
    import types

    class ResultUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return _allowed_global(module, name)

    def load(file: Any, **kwargs: Any) -> Any:
        return ResultUnpickler(file, **kwargs).load()

    module = types.ModuleType("lirefs_result_pickle")
    module.Unpickler = ResultUnpickler  # type: ignore[attr-defined]
    module.load = load  # type: ignore[attr-defined]
    module.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return module


def load_result(content: bytes) -> Any:
    """Unpickle bytes from an NDIF server the safe way: only tensors, containers and plain values.

    What lirefs' traces save (tensors, and dicts/lists/tuples of them, numbers, strings) and
    nnsight's status responses (plus their ``Status`` enum) load; a pickle that names any other
    global (``os.system``, ``builtins.exec``, a class from some package) is refused before
    anything in it runs (see :data:`RESULT_GLOBALS`).

    Raises:
        RemoteError: the bytes name a global outside the allowlist, or are not a torch pickle.
    """
    import io

    import torch

    try:
        return torch.load(
            io.BytesIO(content),
            map_location="cpu",
            weights_only=False,
            pickle_module=_result_pickle_module(),
        )
    except Exception as exc:  # torch.load raises many types for bytes it cannot read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RemoteError(
            redact(
                f"the NDIF server at {host()} sent a result lirefs will not load "
                f"({clean_text(first, 200)}; "
                "only tensors, numbers, strings and containers are accepted); check that "
                "NDIF_HOST points at a server you trust"
            )
        ) from None


def _safe_finalize(self: Any, content: bytes) -> Any:
    """``RemoteBackend.finalize`` with :func:`load_result` in place of ``torch.load``, bounded."""
    return _result_bytes(content, bool(getattr(self, "compress", False)))


def _safe_unpickle(cls: Any, data: bytes) -> Any:
    """``ResponseModel.unpickle`` with :func:`load_result` in place of ``torch.load``."""
    loaded = _result_bytes(data, False)
    try:
        if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
            raise TypeError("not a dict of fields")
        return cls(**loaded)
    except (TypeError, ValueError):  # pydantic's ValidationError is a ValueError
        raise RemoteError(
            f"the NDIF server at {host()} sent a response that is not a status record; check "
            "NDIF_HOST points at a server you trust"
        ) from None


def _safe_download(self: Any, url: Any) -> Any:
    """``RemoteBackend.download_result`` with the https rule and the size cap."""
    if isinstance(url, (bytes, bytearray)):
        return self.finalize(bytes(url))
    if not url:
        return None
    if not isinstance(url, str):
        raise RemoteError(
            f"the NDIF server at {host()} sent a {type(url).__name__} where a result or its URL "
            "belongs; check that NDIF_HOST points at a server you trust"
        )
    return self.finalize(_download(url, max_result_bytes()))


_safe_depth = 0


@contextlib.contextmanager
def safe_results() -> Iterator[None]:
    """Within: nnsight loads every remote result and status with :func:`load_result`.

    Replaces ``RemoteBackend.finalize`` and ``ResponseModel.unpickle`` (the two places nnsight 0.8
    calls ``torch.load(weights_only=False)`` on server bytes) and restores them on exit; nested and
    concurrent uses share one installation. :func:`run_remote` runs every remote trace inside it.
    """
    global _safe_depth
    from nnsight.intervention.backends.remote import RemoteBackend
    from nnsight.schema.response import ResponseModel

    with _lock:
        if _safe_depth == 0:
            _originals["finalize"] = RemoteBackend.__dict__["finalize"]
            _originals["unpickle"] = ResponseModel.__dict__["unpickle"]
            _originals["download_result"] = RemoteBackend.__dict__["download_result"]
            setattr(RemoteBackend, "finalize", _safe_finalize)  # noqa: B010
            setattr(RemoteBackend, "download_result", _safe_download)  # noqa: B010
            setattr(ResponseModel, "unpickle", classmethod(_safe_unpickle))  # noqa: B010
        _safe_depth += 1
    try:
        yield
    finally:
        with _lock:
            _safe_depth -= 1
            if _safe_depth == 0:
                setattr(RemoteBackend, "finalize", _originals.pop("finalize"))  # noqa: B010
                setattr(ResponseModel, "unpickle", _originals.pop("unpickle"))  # noqa: B010
                setattr(  # noqa: B010
                    RemoteBackend, "download_result", _originals.pop("download_result")
                )


_originals: dict[str, Any] = {}


# ---------------------------------------------------------------------------------------------
# bounded results and the safe backend


def clean_text(text: object, limit: int = 300) -> str:
    """``text`` as one printable line: control characters (ANSI escapes, NUL, ``\\r``, bidi
    overrides) dropped, newlines and tabs made spaces, trimmed to ``limit`` characters.

    Everything a server says (error text, version strings) passes through this before it reaches a
    terminal, so a hostile server cannot move the cursor, rewrite earlier lines or hide text.
    """
    import unicodedata

    out = []
    for ch in str(text):
        if ch in "\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch != " ":
            continue
        else:
            out.append(ch)
    line = "".join(out).strip()
    return line if len(line) <= limit else line[: max(0, limit - 3)] + "..."


def max_result_bytes() -> int:
    """The most bytes one remote result may take: ``$LIREFS_MAX_RESULT_BYTES`` or 4 GiB.

    Both the download and the decompressed bytes are held to it, so a small compressed answer
    cannot expand into all of this machine's memory.

    Raises:
        RemoteError: the variable is set but is not a positive whole number of bytes.
    """
    raw = os.environ.get(MAX_RESULT_BYTES_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_RESULT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise RemoteError(
            f"{MAX_RESULT_BYTES_ENV}={clean_text(raw, 40)!r} is not a positive number of bytes; "
            f"set it like {MAX_RESULT_BYTES_ENV}={DEFAULT_MAX_RESULT_BYTES}"
        )
    return value


def _too_big(what: str, limit: int) -> RemoteError:
    return RemoteError(
        f"the NDIF server at {host()} sent {what} over {limit:,} bytes; lirefs refused it (raise "
        f"{MAX_RESULT_BYTES_ENV} if you trust the server and expect results this large)"
    )


def _bounded_decompress(content: bytes, limit: int) -> bytes:
    """zstd-decompress ``content`` but never hold more than ``limit`` bytes of its output."""
    import io

    import zstandard as zstd

    out = io.BytesIO()
    try:
        with zstd.ZstdDecompressor().stream_reader(io.BytesIO(content)) as reader:
            while True:
                chunk = reader.read(1 << 20)
                if not chunk:
                    break
                if out.tell() + len(chunk) > limit:
                    raise _too_big("a result that decompresses to", limit)
                out.write(chunk)
    except zstd.ZstdError as exc:
        raise RemoteError(
            f"the NDIF server at {host()} sent a result that is not valid zstd "
            f"({clean_text(exc, 120)}); check that NDIF_HOST points at a server you trust"
        ) from None
    return out.getvalue()


def _check_download_url(url: str) -> None:
    """A URL the server names for a download obeys the rule of ``NDIF_HOST``: https, or plain
    http on the loopback interface (or with ``LIREFS_ALLOW_HTTP=1``)."""
    shown = clean_text(url, 120)
    if not url.startswith(("http://", "https://")):
        raise RemoteError(
            f"the NDIF server at {host()} named {shown!r} to download the result from, which is "
            "not an http(s) URL; check that NDIF_HOST points at a server you trust"
        )
    if url.startswith("http://") and not is_local_host(url) and not _http_allowed():
        raise RemoteError(
            f"the NDIF server at {host()} named plain-http {shown!r} to download the result "
            f"from: it would travel unencrypted; lirefs refused it (set {ALLOW_HTTP_ENV}=1 to "
            "accept that)"
        )


def _download(url: str, limit: int) -> bytes:
    """GET ``url`` in chunks, refusing once more than ``limit`` bytes arrive (or are announced)."""
    import io

    import httpx

    _check_download_url(url)
    buffer = io.BytesIO()
    timeout = httpx.Timeout(10.0, read=600.0)
    with httpx.Client(timeout=timeout) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        announced = response.headers.get("Content-Length", "")
        if announced.strip().isdigit() and int(announced) > limit:
            raise _too_big("a result announced as", limit)
        for chunk in response.iter_bytes(chunk_size=128 * 1024):
            if buffer.tell() + len(chunk) > limit:
                raise _too_big("a download of", limit)
            buffer.write(chunk)
    return buffer.getvalue()


def _result_bytes(content: bytes, compressed: bool) -> Any:
    """Bytes from the server (compressed or not) -> loaded result, within :func:`max_result_bytes`."""
    limit = max_result_bytes()
    if len(content) > limit:
        raise _too_big("a result of", limit)
    if compressed:
        content = _bounded_decompress(content, limit)
    return load_result(content)


def _check_saves(result: Any) -> Any:
    """A trace's result must be the ``{name: value}`` dict nnsight saves; else one line."""
    if result is not None and not (
        isinstance(result, dict) and all(isinstance(k, str) for k in result)
    ):
        raise RemoteError(
            f"the NDIF server at {host()} sent a {type(result).__name__} where the trace's saved "
            "values (a dict of names) belong; check that NDIF_HOST points at a server you trust"
        )
    return result


def safe_backend(model: Any = None) -> Any:
    """An nnsight remote backend that loads what the server sends the safe way.

    It is nnsight's ``RemoteBackend`` with: results and status frames loaded by
    :func:`load_result` (never ``torch.load(weights_only=False)``), downloads and decompression
    held to :func:`max_result_bytes`, download URLs held to the ``https`` rule of ``NDIF_HOST``,
    and a result that is not a dict of saved values refused with one line. The model is taken
    from the trace that runs it when ``model`` is ``None`` (``model.trace``/``model.generate``);
    a ``model.session`` needs ``model``.
    """
    from nnsight.intervention.backends.remote import RemoteBackend
    from nnsight.schema.response import ResponseModel

    class SafeRemoteBackend(RemoteBackend):
        """nnsight's remote backend with lirefs' safe, bounded result loading."""

        def __call__(self, tracer: Any = None) -> Any:
            if getattr(self, "model_key", None) is None:
                envoy = getattr(tracer, "envoy", None)
                if envoy is None:
                    raise RemoteError(
                        "a remote model.session needs its model: "
                        "model.session(**lirefs.ndif.trace_kwargs(remote, model=model))"
                    )
                self.model_key = envoy.to_model_key()
                self.env = envoy._remoteable_get_env()
                try:
                    return _check_saves(super().__call__(tracer))
                finally:
                    self.model_key = None
            return _check_saves(super().__call__(tracer))

        @staticmethod
        def parse(message: str | bytes) -> Any:
            if isinstance(message, (bytes, bytearray)):
                return _safe_unpickle(ResponseModel, bytes(message))
            return ResponseModel.model_validate_json(message)

        def download_result(self, url: Any) -> Any:
            return _safe_download(self, url)

        def finalize(self, content: bytes) -> Any:
            return _result_bytes(content, bool(getattr(self, "compress", False)))

    key = None
    env: dict[str, Any] = {}
    if model is not None:
        key = model.to_model_key()
        env = model._remoteable_get_env()
    return SafeRemoteBackend(key, host=host(), api_key=api_key(), env=env)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# failures and retries

# Failures to deliver a request ("Failed to send request: ...") that mean "try again later":
# the connection itself, or a gateway/overload answer.
_TRANSIENT_SEND_TEXT = (
    "connection refused",
    "connection reset",
    "connection aborted",
    "connecterror",
    "remote end closed",
    "timed out",
    "timeout",
    "temporarily unavailable",
    "service unavailable",
    "bad gateway",
    "gateway time",
    "502",
    "503",
    "504",
    "try again",
)
# Job outcomes (after delivery) that are not the request's fault and may run on a retry.
_TRANSIENT_JOB_TEXT = (
    "preempted",
    "connection to remote host was lost",
    "socket is already closed",
)
# Text fragments of errors that mean "this request is too big for the server".
_SIZE_TEXT = (
    "413",
    "too large",
    "entity too large",
    "payload too",
    "request size",
    "out of memory",
    "outofmemoryerror",
    "exceeded the execution timeout",
)
_AUTH_TEXT = ("401", "403", "invalid api key", "unauthorized", "api key")


def _short(exc: BaseException) -> str:
    """First line of an exception's text (class name when empty), key redacted, trimmed."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if not text or len(line) < 8:
        line = f"{type(exc).__name__}: {line}" if text else line
    return clean_text(redact(line), 300)


def _is_network_error(exc: BaseException) -> bool:
    """Raised by the transport itself (socket, HTTP client, websocket), not by the server."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        import httpx

        if isinstance(exc, httpx.TransportError):
            return True
    except ImportError:  # pragma: no cover - httpx comes with nnsight
        pass
    try:
        import websocket

        if isinstance(exc, websocket.WebSocketException):
            return True
    except ImportError:  # pragma: no cover - websocket-client comes with nnsight
        pass
    return isinstance(exc, OSError) and exc.errno is not None


def _is_hub_error(exc: BaseException) -> bool:
    """Raised by ``huggingface_hub`` (offline mode, unknown or gated repo): not NDIF's doing.

    nnsight asks the Hub for a model's canonical id before its first request; an offline Hub
    raises a ``ConnectionError`` subclass there, which must not be retried as an NDIF failure.
    """
    return any(t.__module__.startswith("huggingface_hub") for t in type(exc).__mro__)


def _is_nnsight_remote_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "RemoteError" and type(exc).__module__.startswith("nnsight")


def classify(exc: BaseException) -> str:
    """Sort a failure of a remote trace: ``"transient"``, ``"size"``, ``"auth"``, ``"server"``,
    ``"hub"``, ``"fatal"``.

    ``"transient"``: the request did not get through (network, 5xx) or the job was preempted: retry.
    ``"size"``: refused or failed for its size. ``"auth"``: the key was refused. ``"server"``: any other
    NDIF job error (e.g. the traced code failed there). ``"hub"``: the Hugging Face Hub (asked for
    the model's id before the request) did not answer: not retried. ``"fatal"``: not an NDIF error at all (a bug
    here); it propagates unchanged.
    """
    text = str(exc).lower()
    if _is_hub_error(exc):
        return "hub"
    if _is_network_error(exc):
        return "transient"
    if not _is_nnsight_remote_error(exc):
        return "fatal"
    sending = text.startswith("failed to send request")
    if any(t in text for t in _SIZE_TEXT):
        return "size"
    if sending and any(t in text for t in _AUTH_TEXT):
        return "auth"
    if sending and any(t in text for t in _TRANSIENT_SEND_TEXT):
        return "transient"
    if any(t in text for t in _TRANSIENT_JOB_TEXT):
        return "transient"
    return "server"


@contextlib.contextmanager
def _quiet_status() -> Iterator[None]:
    """Silence nnsight's per-job status lines (written to stdout) for one lirefs request.

    lirefs shows its own progress bar, and stdout must stay clean for ``--json`` output. Set
    ``LIREFS_REMOTE_LOG=1`` to see NDIF's job ids and states.
    """
    from nnsight import CONFIG

    if os.environ.get("LIREFS_REMOTE_LOG", "") not in ("", "0"):
        yield
        return
    before = CONFIG.APP.REMOTE_LOGGING
    CONFIG.APP.REMOTE_LOGGING = False
    try:
        yield
    finally:
        CONFIG.APP.REMOTE_LOGGING = before


def run_remote(
    fn: Callable[[], T],
    *,
    remote: bool | str = True,
    retries: int = 3,
    base_delay: float = 2.0,
    max_delay: float = 60.0,
    batch_size: int | None = None,
    what: str = "the request",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one remote trace (``fn`` opens and closes it) with retries and clear errors.

    ``fn`` must build the whole trace each time it is called (a retry sends it again). With
    ``remote`` ``False`` or ``"local"`` it is called once and its errors pass through unchanged.

    With ``remote=True``:

    * a network failure, a gateway/overload answer or a preempted job is retried up to ``retries``
      times, waiting ``base_delay * 2**attempt`` seconds (capped at ``max_delay``, with up to 10%
      jitter), then raises ``RemoteError`` naming the host, the attempts and the last cause;
    * a job refused for its size (HTTP 413, out of memory, execution timeout) raises at once a
      ``RemoteError`` that says to lower ``--batch-size``;
    * a refused key raises at once (no retry), saying how to set a valid one;
    * any other NDIF job error raises at once a ``RemoteError`` with the server's first line;
    * an error of another kind (e.g. a bug in the traced code) propagates unchanged.

    The API key never appears in these messages. nnsight's per-job status lines (stdout) are
    silenced while ``fn`` runs unless ``LIREFS_REMOTE_LOG=1``.

    Args:
        fn: a zero-argument callable that runs the trace and returns its result.
        remote: the ``remote`` setting of the caller.
        retries: retries after the first attempt for transient failures (``>= 0``).
        base_delay: first wait in seconds; doubles each retry.
        max_delay: cap on one wait in seconds.
        batch_size: the batch size in use, quoted by the size-rejection message.
        what: what ``fn`` sends, for messages (e.g. ``"batch 3/12 (8 prompts)"``).
        sleep: the wait function (tests pass a fake).
    """
    remote = check_remote(remote)
    if remote is not True:
        return fn()
    if retries < 0:
        raise RemoteError(f"retries must be >= 0, got {retries}; pass retries=3")
    attempt = 0
    while True:
        try:
            with _quiet_status(), safe_results():
                return fn()
        except RemoteError:
            raise
        except Exception as exc:
            kind = classify(exc)
            url = host()
            if kind == "fatal":
                raise
            if kind == "size":
                size = f"--batch-size {batch_size}" if batch_size is not None else "--batch-size"
                smaller = f" (e.g. {max(1, batch_size // 2)})" if batch_size else ""
                raise RemoteError(
                    f"NDIF at {url} refused {what} as too large ({_short(exc)}); lower "
                    f"{size}{smaller} so each request carries fewer prompts"
                ) from None
            if kind == "hub":
                raise RemoteError(
                    f"the Hugging Face Hub did not answer before {what} could go to NDIF "
                    f"({_short(exc)}): nnsight asks it for the model's id; check the network, or "
                    "unset HF_HUB_OFFLINE (the request was not sent, so it was not retried)"
                ) from None
            if kind == "auth":
                raise RemoteError(
                    f"NDIF at {url} refused the API key ({_short(exc)}); {_KEY_HELP}"
                ) from None
            if kind == "server":
                raise RemoteError(
                    f"NDIF at {url} failed {what}: {_short(exc)} (set NNSIGHT_DEBUG=1 for the "
                    "server's full traceback)"
                ) from None
            if attempt >= retries:
                raise RemoteError(
                    f"NDIF at {url} could not run {what} after {attempt + 1} attempts "
                    f"({_short(exc)}); check the network and NDIF_HOST, see https://ndif.us for "
                    "the service status, and rerun (collection with a cache_dir resumes)"
                ) from None
            delay = min(max_delay, base_delay * (2**attempt))
            delay *= 1.0 + 0.1 * random.random()
            attempt += 1
            warnings.warn(
                f"NDIF at {url}: {what} failed ({_short(exc)}); retry {attempt}/{retries} in "
                f"{delay:.1f} s",
                RuntimeWarning,
                stacklevel=2,
            )
            sleep(delay)
