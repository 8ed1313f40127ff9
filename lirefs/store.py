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
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .errors import LockError, MetadataMismatchError

__all__ = [
    "LAYER_CONVENTION",
    "atomic_folder",
    "atomic_path",
    "atomic_write_text",
    "check_metadata",
    "file_mode",
    "folder_mode",
    "fsync_path",
    "hash_texts",
    "load_tensors",
    "lock",
    "make_metadata",
    "save_tensors",
    "version",
]

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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place atomically.

    On any exception the temporary file is removed and ``path`` is untouched, so a crash or a bad
    input never leaves a partial file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
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
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
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
