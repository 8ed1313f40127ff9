"""Atomic writes: a killed writer leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
