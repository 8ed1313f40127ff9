"""Self-describing artifacts on disk: metadata, hashing, atomic writes, checks on load.

Every file lirefs writes (directions, activation caches, reports, evaluation records) carries a
metadata dict with the same core keys::

    {"lirefs_version": "...", "kind": "direction", "layer_convention": LAYER_CONVENTION,
     "model": {...ModelInfo...}, "data": {"hash": "...", ...}, "settings": {...}, "created": "..."}

Loading compares that dict with what the caller has (model fingerprint, layer convention, data hash)
and raises ``MetadataMismatchError`` with a message that says what differs and what to do.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .errors import LockError, MetadataMismatchError, Terminated

__all__ = [
    "LAYER_CONVENTION",
    "MAX_JSON_DEPTH",
    "atomic_folder",
    "atomic_path",
    "atomic_write_text",
    "check_json_depth",
    "check_metadata",
    "file_mode",
    "folder_mode",
    "fsync_path",
    "hash_texts",
    "load_tensors",
    "loads_json",
    "lock",
    "make_metadata",
    "os_error_of",
    "raise_terminated",
    "remove_leftovers",
    "save_tensors",
    "sigterm_as_interrupt",
    "version",
    "write_errors",
]

#: Deepest nesting of lists/objects any JSON lirefs reads may have: far beyond any file lirefs
#: writes (metadata is a few levels deep), far below what overflows a recursive reader.
MAX_JSON_DEPTH = 64

#: Written into every artifact; loading refuses files made under another convention.
LAYER_CONVENTION = "hf_hidden_states: l=0 embeddings, l=1..L-1 block inputs, l=L final norm output"


def version() -> str:
    """The installed lirefs version."""
    from ._version import __version__

    return __version__


def hash_texts(texts: Iterable[str], *extra: str) -> str:
    """A stable sha256 (hex, first 16 chars) of an ordered sequence of strings.

    Used as the data hash of prompt sets: the same prompts in the same order (and the same
    ``extra`` settings) give the same hash on every machine.
    """
    h = hashlib.sha256()
    for part in (*extra, "\x1e", *texts):
        b = part.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:16]


def make_metadata(
    kind: str,
    *,
    model: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata dict every artifact carries (JSON-serialisable)."""
    return {
        "lirefs_version": version(),
        "kind": kind,
        "layer_convention": LAYER_CONVENTION,
        "model": dict(model) if model is not None else None,
        "data": dict(data) if data is not None else None,
        "settings": dict(settings) if settings is not None else {},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def check_metadata(
    meta: Mapping[str, Any],
    *,
    what: str,
    kind: str | None = None,
    model: Mapping[str, Any] | None = None,
    data_hash: str | None = None,
) -> None:
    """Refuse an artifact made under another convention, for another model or other data.

    Args:
        meta: the artifact's metadata as read from disk.
        what: how to name the artifact in messages (e.g. the file path).
        kind: expected ``meta["kind"]``.
        model: the current model's info dict (``ModelInfo.to_dict()``); compared by fingerprint,
            and by ``d_model``/``n_layers`` when the fingerprints differ.
        data_hash: expected ``meta["data"]["hash"]``.

    Raises:
        MetadataMismatchError: with what differs and how to fix it.
    """
    if meta.get("layer_convention") != LAYER_CONVENTION:
        raise MetadataMismatchError(
            f"{what} uses layer convention {meta.get('layer_convention')!r}, expected "
            f"{LAYER_CONVENTION!r}; recreate it with this lirefs version"
        )
    if kind is not None and meta.get("kind") != kind:
        raise MetadataMismatchError(f"{what} holds a {meta.get('kind')!r}, expected a {kind!r}")
    saved = meta.get("model") or {}
    if not isinstance(saved, Mapping):
        raise MetadataMismatchError(
            f"{what} records model {saved!r}, not a model description; recreate it"
        )
    if model is not None and saved and saved.get("fingerprint") != model.get("fingerprint"):
        raise MetadataMismatchError(
            f"{what} was made with model {saved.get('name')!r} "
            f"(fingerprint {saved.get('fingerprint')}), but the model in use is "
            f"{model.get('name')!r} (fingerprint {model.get('fingerprint')}); "
            "use the matching model, or recompute it for this one"
        )
    if data_hash is not None:
        data = meta.get("data") or {}
        saved_hash = data.get("hash") if isinstance(data, Mapping) else None
        if saved_hash != data_hash:
            raise MetadataMismatchError(
                f"{what} was made from data with hash {saved_hash}, but the data given now hashes "
                f"to {data_hash}; use a fresh location or the original data"
            )


def os_error_of(exc: BaseException, path: str | os.PathLike[str]) -> OSError | None:
    """The ``OSError`` (naming ``path``) a failed write really was, or ``None`` if it was not one.

    Libraries report a full disk in their own words: safetensors (and transformers through it)
    as ``SafetensorError("... (os error 28)")``, torch as ``RuntimeError("... file write
    failed")``, and Python's own writes as an ``OSError`` that names no file. Each becomes an
    ``OSError`` with its errno and ``path``, which the command line reports as one line.
    """
    if isinstance(exc, OSError):
        if exc.filename is None and exc.errno is not None:
            return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))
        return None
    text = str(exc)
    found = re.search(r"os error (\d+)", text)
    if found is not None:
        code = int(found.group(1))
    elif "No space left on device" in text:
        code = errno.ENOSPC
    elif "file write failed" in text or "PytorchStreamWriter failed" in text:
        try:
            full = shutil.disk_usage(Path(path).parent).free < 16 * 1024 * 1024
        except OSError:
            full = False
        code = errno.ENOSPC if full else errno.EIO
    else:
        return None
    return OSError(code, os.strerror(code), str(path))


@contextlib.contextmanager
def write_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Within: a failed write is re-raised as the ``OSError`` naming ``path`` (:func:`os_error_of`).

    :func:`atomic_path` and :func:`atomic_folder` apply it to what runs inside them.
    """
    try:
        yield
    except Exception as exc:
        error = os_error_of(exc, path)
        if error is None:
            raise
        raise error from None


def _temp_prefix(target: Path) -> str:
    """``.<name>.<pid>.``: the writer's pid in the name lets a later run tell a live writer's
    temporary from one a killed writer left (see :func:`remove_leftovers`)."""
    return f".{target.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: leave its files alone
    return True


def remove_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries a killed writer of ``target`` left beside it; return them.

    :func:`atomic_path` and :func:`atomic_folder` write ``.<name>.<pid>.<random>.tmp`` beside
    ``target``. A writer stopped by ``kill -9`` (or a power cut) cannot remove its own, which may
    be as large as a model; the next writer of the same ``target`` removes every one whose pid no
    longer runs on this machine. A running writer's temporary is left alone.
    """
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.[A-Za-z0-9_]+\.tmp$")
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def raise_terminated(signum: int, frame: Any) -> None:
    """A signal handler: raise :class:`~lirefs.errors.Terminated` (a ``KeyboardInterrupt``)."""
    raise Terminated(f"terminated by signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within: ``SIGTERM`` raises :class:`~lirefs.errors.Terminated`, a ``KeyboardInterrupt``.

    ``timeout``, schedulers and container stops send ``SIGTERM``, whose default action ends the
    process without running ``finally`` blocks, leaving a writer's temporary (up to a model's
    size) behind. Raising instead lets every writer clean up. Only in the main thread and only
    where no other handler was installed; the previous handler is restored on exit.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        before = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - no signals here
        yield
        return
    if before not in (signal.SIG_DFL, None):
        yield  # someone (the CLI, or the caller) handles it already
        return
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place atomically.

    On any exception the temporary file is removed and ``path`` is untouched, so a crash or a bad
    input never leaves a partial file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    # mkstemp opens with O_EXCL, so it never follows a link planted at the temporary name
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with sigterm_as_interrupt(), write_errors(target):
            yield tmp_path
            # The data reaches the disk before the name does: after a crash or power loss the path
            # holds the old file or the whole new one, never a torn one.
            fsync_path(tmp_path)
            os.chmod(tmp_path, file_mode())  # mkstemp makes 0600; respect the user's umask instead
            os.replace(tmp_path, target)
            fsync_path(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success move it into place as ``path``.

    ``path`` must not exist or be an empty folder (the caller checks, before any work). On any
    exception the temporary folder is removed and ``path`` is untouched. Files and folders in it
    get the modes the user's umask gives (``tempfile`` makes them private).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        with sigterm_as_interrupt(), write_errors(target):
            yield tmp
            for item in [tmp, *tmp.rglob("*")]:
                os.chmod(item, folder_mode() if item.is_dir() else file_mode())
                if item.is_file():
                    fsync_path(item)
            if target.exists():
                target.rmdir()  # empty: checked by the caller before writing
            os.replace(tmp, target)
            fsync_path(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def folder_mode() -> int:
    """The mode a plain ``os.mkdir(path)`` would give a new folder under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk; a no-op where unsupported."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


#: Key of the JSON metadata in the header of every safetensors file lirefs writes.
SAFETENSORS_META_KEY = "lirefs"


def save_tensors(
    path: str | os.PathLike[str], tensors: Mapping[str, Any], meta: Mapping[str, Any]
) -> Path:
    """Write ``tensors`` as one safetensors file with ``meta`` as JSON in its header, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    contiguous = {name: t.contiguous() for name, t in tensors.items()}
    with atomic_path(path) as tmp:
        try:
            save_file(contiguous, str(tmp), metadata={SAFETENSORS_META_KEY: json.dumps(dict(meta))})
        except Exception as exc:  # safetensors reports a failed write as its own error type
            found = re.search(r"os error (\d+)", str(exc))
            if found is None:
                raise
            code = int(found.group(1))
            raise OSError(code, os.strerror(code), str(path)) from None
    return path


def load_tensors(
    path: str | os.PathLike[str],
    *,
    required: Iterable[str],
    error: type[Exception],
    what: str,
    hint: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a file written by ``save_tensors``: ``(tensors, metadata)``.

    Args:
        required: tensor names the file must hold.
        error: exception type raised for a missing, corrupt or foreign file.
        what: how to name the file's kind in messages (e.g. ``"direction"``).
        hint: appended to the "does not exist" message (how to make one).
    """
    from safetensors import safe_open

    if path is None or not isinstance(path, (str, os.PathLike)):
        raise error(f"{what} path must be a file path, got {path!r}{hint}")
    path = Path(path)
    if path.is_dir():
        raise error(f"{what} path {str(path)!r} is a folder; pass the file itself")
    if not path.is_file():
        raise error(f"{what} file {str(path)!r} does not exist{hint}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises several types for corrupt files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise error(f"{path} is not a safetensors file: {first}") from None
    if SAFETENSORS_META_KEY not in header or set(required) - set(tensors):
        raise error(f"{path} is a safetensors file but not a lirefs {what}")
    check_json_depth(header[SAFETENSORS_META_KEY], what=f"{path}'s lirefs header", error=error)
    try:
        meta = json.loads(header[SAFETENSORS_META_KEY])
    except ValueError:
        raise error(
            f"{path} has a lirefs header that is not JSON (edited by hand?); recreate the file"
        ) from None
    if not isinstance(meta, dict):
        raise error(
            f"{path} has a lirefs header that is a {type(meta).__name__}, not a JSON object; "
            "recreate the file"
        )
    return tensors, meta


_JSON_STRING = re.compile(r'"(?:[^"\\\\]|\\\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def check_json_depth(
    text: str, *, what: str, error: type[Exception] = ValueError, max_depth: int = MAX_JSON_DEPTH
) -> None:
    """Refuse JSON ``text`` nested deeper than ``max_depth`` without parsing it (brackets inside
    strings do not count). :func:`loads_json` and the JSONL readers call it before ``json.loads``.

    Raises:
        error: ``{what} is nested more than {max_depth} levels deep ...``, one line.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return  # too few openers to be that deep: no scan needed
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > max_depth:
                raise error(
                    f"{what} is nested more than {max_depth} levels deep, which no lirefs file "
                    "is; check that it is the right file"
                )


def loads_json(
    text: str | bytes,
    *,
    what: str,
    error: type[Exception] = ValueError,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """``json.loads(text)``, with its nesting checked first: the one JSON reader for foreign input.

    A document nested deeper than ``max_depth`` (:data:`MAX_JSON_DEPTH`) is refused before it is
    parsed, so no reader (here, or code walking the result) can hit a ``RecursionError``; text that
    is not JSON is ``error`` too, naming ``what`` in one line.

    Raises:
        error: not JSON, or nested deeper than ``max_depth``.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    check_json_depth(text, what=what, error=error, max_depth=max_depth)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise error(f"{what} is not valid JSON ({detail}{where})") from None


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(
        path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    )


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dump_jsonl_line(fh: IO[str], obj: Any) -> None:
    """Append one JSON record to an open file and flush it to disk."""
    fh.write(json.dumps(obj, ensure_ascii=False, default=_json_default) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


@contextlib.contextmanager
def lock(
    path: str | os.PathLike[str], *, what: str = "", fix: str = "", remove: bool = False
) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (a folder or an output file) for one run.

    The lock is ``<folder>/.lirefs.lock`` for a folder and ``<path>.lock`` beside a file; it is an
    OS lock (``flock``) on that file, so it is released when the holder exits or is killed,
    whatever state it left. A second run on the same path gets one line instead of doing the
    same work at the same time. Where ``fcntl`` is missing (Windows) no lock is taken.

    Args:
        path: the cache folder or output file the run writes.
        what: how to name ``path`` in the message (default: the path itself).
        fix: the end of the message (default: wait, or write elsewhere).
        remove: delete the lock file (still held) when the run ends, so no file is left beside
            an output; a run that starts in that instant may then lock a fresh file, which is
            harmless for a guard against doing the same work twice. A run that fails to take
            the lock leaves the holder's file alone.

    Raises:
        LockError: another process holds the lock.
    """
    target = Path(path)
    lock_path = (
        target / ".lirefs.lock" if target.is_dir() else target.with_name(target.name + ".lock")
    )
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield lock_path
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    existed = lock_path.exists()
    # O_NOFOLLOW: a symbolic link planted at the lock path must not make this run truncate (and
    # write its pid into) the file it points to. Not O_EXCL: an existing lock file is normal (the
    # OS lock, not the file, says whether a run holds it, so a killed holder leaves nothing
    # stale). Not the ``filelock`` package, measured with filelock 4.3.2: it refuses a planted
    # symbolic link too (ELOOP) and a killed holder leaves no stale lock, but a held lock raises
    # its ``Timeout`` ("could not be acquired") over an empty lock file, so the holder's pid that
    # the message below quotes (and that tests/test_locks.py checks) would be lost.
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or lock_path.is_symlink():
            raise LockError(
                f"the lock file {lock_path} is a symbolic link, which lirefs will not follow (it "
                "would overwrite what it points to); remove the link and rerun"
            ) from None
        raise
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise LockError(
                f"another run (pid {holder}) holds the lock on {what or target}; "
                f"{fix or 'wait for it to finish, or write somewhere else'}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        held = True
        try:
            yield lock_path
        finally:
            if remove:
                lock_path.unlink(missing_ok=True)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        if remove and not held and not existed:  # made here, then refused (e.g. a full disk)
            lock_path.unlink(missing_ok=True)
