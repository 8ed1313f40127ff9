"""Atomic writes: a killed writer leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from lirefs.store import atomic_write_text

SIZE = 4_000_000  # large enough that a write takes a few milliseconds

WRITER = textwrap.dedent(
    """
    import sys
    from lirefs.store import atomic_write_text
    target, size = sys.argv[1], int(sys.argv[2])
    print("ready", flush=True)
    i = 0
    while True:
        atomic_write_text(target, "AB"[i % 2] * size)
        i += 1
    """
)


def test_a_writer_killed_mid_write_leaves_a_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "A" * SIZE)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for delay in (0.0, 0.003, 0.011, 0.027, 0.05, 0.08, 0.13):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(target), str(SIZE)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = target.read_text()
        assert len(text) == SIZE and text in ("A" * SIZE, "B" * SIZE), (delay, len(text))


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    from lirefs.store import atomic_path

    target = tmp_path / "keep.txt"
    target.write_text("old")
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


# --------------------------------------------------------------------------------------------
# SIGTERM and kill -9 while writing: nothing left behind, or the next run removes it

_WRITER = """
import sys, time
from lirefs.store import {kind}
with {kind}(sys.argv[1]) as tmp:
    if "{kind}" == "atomic_folder":
        (tmp / "weights.bin").write_bytes(b"x" * 100000)
    else:
        tmp.write_bytes(b"x" * 100000)
    print("writing", flush=True)
    time.sleep(120)
"""


def _writer(tmp_path: Path, target: Path, kind: str) -> Any:
    import subprocess
    import sys

    script = tmp_path / f"{kind}.py"
    script.write_text(_WRITER.format(kind=kind))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, str(script), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    return child


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["atomic_folder", "atomic_path"])
def test_sigterm_while_writing_leaves_nothing(tmp_path: Path, kind: str) -> None:
    import signal

    out = tmp_path / "out"
    out.mkdir()
    child = _writer(tmp_path, out / "model", kind)
    assert _hidden(out)  # the temporary is there while it writes
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=30)
    assert _hidden(out) == [] and not (out / "model").exists()
    assert child.returncode != 0


@pytest.mark.parametrize("kind", ["atomic_folder", "atomic_path"])
def test_the_next_run_removes_what_a_killed_writer_left(tmp_path: Path, kind: str) -> None:
    import signal

    from lirefs.store import atomic_folder, atomic_path

    out = tmp_path / "out"
    out.mkdir()
    child = _writer(tmp_path, out / "model", kind)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert len(_hidden(out)) == 1  # kill -9 runs no cleanup
    writer = atomic_folder if kind == "atomic_folder" else atomic_path
    with writer(out / "model") as tmp:
        if kind == "atomic_folder":
            (tmp / "a").write_text("a")
        else:
            tmp.write_text("a")
    assert _hidden(out) == [] and (out / "model").exists()


def test_a_live_writers_temporary_is_left_alone(tmp_path: Path) -> None:
    from lirefs.store import atomic_folder

    out = tmp_path / "out"
    out.mkdir()
    child = _writer(tmp_path, out / "model", "atomic_folder")
    try:
        with atomic_folder(out / "other") as tmp:
            (tmp / "a").write_text("a")
        with pytest.raises(Exception), atomic_folder(out / "model") as tmp:  # noqa: B017
            raise RuntimeError("stop")
        assert len(_hidden(out)) == 1  # still the live writer's
    finally:
        child.kill()
        child.wait()
