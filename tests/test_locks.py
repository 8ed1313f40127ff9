"""store.lock: one run per cache folder or output file; a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lirefs.errors import LockError
from lirefs.store import lock

HOLDER = (
    "import sys, time\nfrom lirefs.store import lock\n"
    "with lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n"
)


def _hold(tmp_path: Path, target: Path) -> subprocess.Popen[str]:
    script = tmp_path / "hold.py"
    script.write_text(HOLDER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_second_run_on_an_output_file_gets_one_line(tmp_path: Path) -> None:
    out = tmp_path / "acts.safetensors"
    child = _hold(tmp_path, out)
    try:
        with (
            pytest.raises(
                LockError, match=f"another run \\(pid {child.pid}\\) holds the lock"
            ) as err,
            lock(out),
        ):
            pass
        assert "\n" not in str(err.value) and str(out) in str(err.value)
        assert not out.exists()
    finally:
        child.kill()
        child.wait()


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    child = _hold(tmp_path, folder)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with lock(folder) as path:
        assert path == folder / ".lirefs.lock"
        assert path.read_text().strip() == str(os.getpid())


def test_the_lock_is_released_after_the_run(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with lock(out):
        pass
    with lock(out):  # taken again at once
        pass


@pytest.mark.parametrize("remove", [False, True])
def test_a_symlink_at_the_lock_path_is_not_followed(tmp_path: Path, remove: bool) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".ev.lock").symlink_to(victim)
    with (
        pytest.raises(LockError, match="symbolic link") as err,
        lock(tmp_path / ".ev", remove=remove),
    ):
        pass
    assert victim.read_text() == "precious\n"
    assert "\n" not in str(err.value)


def test_a_symlinked_lock_stops_the_cli_before_it_truncates(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lirefs.cli import main

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".ev.lock").symlink_to(victim)
    acts = tmp_path / "acts.safetensors"
    acts.write_bytes(b"not read")
    result = CliRunner().invoke(main, ["direction", str(acts), "--out", str(tmp_path / "ev")])
    assert victim.read_text() == "precious\n"
    assert result.exit_code == 2 and "symbolic link" in result.output
