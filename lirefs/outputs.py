"""Output folders that never mix two runs.

Every command (and API call) that writes a folder of results writes it through
:func:`output_folder`:

- a non-empty folder lirefs did not write is refused before any work (``OutputFolderError``), so
  a typo never scatters a report among a user's own files;
- each folder lirefs writes carries a small manifest, :data:`MANIFEST` (``kind``, lirefs version,
  the files written), which marks it as lirefs' own;
- a rerun into lirefs' own folder replaces the previous outputs as one unit: the new files are
  written into a temporary sibling folder, then the old folder is renamed away, the new one
  renamed in, and the old one deleted. No stale file of the earlier run (a ``transfer.json``, a
  per-layer plot of another layer) survives beside the new ones, and a crash before the swap
  leaves the earlier run as it was.

A folder of another kind (``lirefs report`` into a ``lirefs demo`` folder) is refused too: its
files may be the very inputs of the new run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError
from .store import (
    folder_mode,
    fsync_path,
    remove_leftovers,
    sigterm_as_interrupt,
    version,
    write_errors,
)

__all__ = [
    "LEGACY_FILES",
    "MANIFEST",
    "OutputFolderError",
    "Staging",
    "check_output_folder",
    "output_folder",
    "read_manifest",
]

#: The manifest file lirefs writes into each output folder.
MANIFEST = ".lirefs-outputs.json"

#: Per kind, the files that mark a folder lirefs wrote before manifests existed (each records
#: a lirefs version: ``report.json``, ``transfer.json``, ``result.json``, the header of an
#: evaluation's ``records.jsonl``). Such a folder is lirefs' own: a rerun replaces (or, for an
#: evaluation, resumes) it. An evaluation's folder also holds only ``records.jsonl`` while its run
#: appends to it.
LEGACY_FILES: dict[str, tuple[str, ...]] = {
    "demo": ("report.json",),
    "report": ("report.json",),
    "transfer": ("transfer.json",),
    "evaluation": ("result.json", "records.jsonl"),
}


class OutputFolderError(DataError):
    """An output folder holds files lirefs did not write, or another command's outputs."""


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of ``folder`` as a dict, or ``None`` when it has none (or an unreadable one)."""
    path = Path(folder) / MANIFEST
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("kind"), str) else None


def _legacy(folder: Path, kind: str) -> bool:
    """Whether ``folder`` holds one of ``kind``'s :data:`LEGACY_FILES` that records a lirefs
    version."""
    for name in LEGACY_FILES.get(kind, ()):
        with contextlib.suppress(OSError), open(folder / name, "rb") as fh:
            if b'"lirefs_version"' in fh.read(1 << 20):
                return True
    return False


def _is_empty(folder: Path) -> bool:
    return not any(folder.iterdir())


def check_output_folder(folder: str | os.PathLike[str], kind: str) -> bool:
    """Refuse an output folder lirefs may not write into; return whether it holds a run already.

    Args:
        folder: the output folder (it need not exist).
        kind: what writes it (``"demo"``, ``"report"``, ``"transfer"``, ``"evaluation"``).

    Returns:
        ``True`` when ``folder`` holds an earlier run of ``kind`` (it will be replaced or
        resumed), ``False`` when it is missing or empty.

    Raises:
        OutputFolderError: ``folder`` is non-empty without a lirefs manifest, or holds another
            kind's outputs (one line, naming the folder and the fix).
        NotADirectoryError: ``folder`` is a file.
    """
    target = Path(folder)
    if not target.exists():
        return False
    if not target.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(target))
    if _is_empty(target):
        return False
    manifest = read_manifest(target)
    if manifest is None and _legacy(target, kind):
        return True
    if manifest is None:
        found = _files(target)
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise OutputFolderError(
            f"{target} holds files lirefs did not write ({shown}); choose an empty folder or "
            "remove them"
        )
    if manifest["kind"] != kind:
        raise OutputFolderError(
            f"{target} holds the outputs of lirefs {manifest['kind']}, not {kind}; choose another "
            "folder (its files may be this run's inputs)"
        )
    listed = manifest.get("files")
    extra = [f for f in _files(target) if not isinstance(listed, list) or f not in listed]
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise OutputFolderError(
            f"{target} holds files its earlier lirefs {kind} run did not write ({shown}); move "
            "them out or choose another folder (a rerun replaces the whole folder)"
        )
    return True


@dataclass
class Staging:
    """Where a run writes its folder before it replaces the old one.

    Attributes:
        path: the temporary folder to write every file into.
        target: the folder the files end up in.
    """

    path: Path
    target: Path

    def final(self, path: str | os.PathLike[str]) -> Path:
        """Where ``path`` (a file under :attr:`path`) lies once the folder is swapped in."""
        return self.target / Path(path).relative_to(self.path)


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (relative paths), but the manifest and lirefs' temporaries
    (``.<name>.<pid>.<random>.tmp``, left by a killed write)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file()
        and p.name != MANIFEST
        and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    )


def _write_manifest(folder: Path, kind: str) -> None:
    manifest = {"kind": kind, "lirefs_version": version(), "files": _files(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _swap(stage: Path, target: Path) -> None:
    """Put ``stage`` in ``target``'s place: the old folder is renamed away, then deleted."""
    if not target.exists():
        os.replace(stage, target)
        return
    if _is_empty(target):  # keep the folder itself (its mode, a mount point, a shell's cwd)
        for entry in stage.iterdir():
            os.replace(entry, target / entry.name)
        stage.rmdir()
        return
    old = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    )
    os.replace(target, old)  # onto the empty placeholder
    try:
        os.replace(stage, target)
    except BaseException:
        os.replace(old, target)  # put the earlier run back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def output_folder(
    folder: str | os.PathLike[str],
    kind: str,
    *,
    keep: Iterable[str] = (),
) -> Iterator[Staging]:
    """Write an output folder as one unit: yield a :class:`Staging`, swap it in on success.

    The caller writes every file into ``staging.path``; when the ``with`` body ends without an
    exception the manifest is added and the staging folder replaces ``folder`` (see the module
    docstring). On an exception the staging folder is removed and ``folder`` is untouched.

    Args:
        folder: the output folder.
        kind: what writes it; a folder of another kind is refused.
        keep: names of files of the earlier run to carry into the new folder when the body has
            not written them (``records.jsonl``, the resumable records of an evaluation).

    Raises:
        OutputFolderError: see :func:`check_output_folder` (checked before the body runs).
    """
    target = Path(folder).absolute()
    had_run = check_output_folder(target, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    # ``.<name>.<pid>.<random>.tmp``: a killed run's leftovers go with the next run
    # (``store.remove_leftovers``)
    stage = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    )
    os.chmod(stage, folder_mode())  # mkdtemp makes 0700; respect the user's umask instead
    try:
        with sigterm_as_interrupt(), write_errors(target):
            yield Staging(stage, Path(folder))
            for name in keep if had_run else ():
                old, new = target / name, stage / name
                if old.is_file() and not new.exists():
                    new.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(old, new)
            _write_manifest(stage, kind)
            for item in [stage, *stage.rglob("*")]:
                if item.is_file():
                    fsync_path(item)
            _swap(stage, target)
            fsync_path(target.parent)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
