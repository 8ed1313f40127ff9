"""Every CLI failure is one red line and a non-zero exit code, never a traceback.

The unit tests drive ``handle_errors`` with the exceptions a command can meet; the last tests go
through the installed ``lirefs`` console script, as a user's shell does.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lirefs.cli._common import CONTEXT_SETTINGS, DEBUG_ENV, handle_errors
from lirefs.errors import DataError


def _command(exc: BaseException) -> click.Command:
    @click.command(context_settings=CONTEXT_SETTINGS)
    @handle_errors
    def command() -> None:
        raise exc

    return command


def _one_line(exc: BaseException, code: int = 2) -> str:
    result = CliRunner().invoke(_command(exc), [], catch_exceptions=False)
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("err", "fragment"),
    [
        (errno.ENOSPC, "free some disk space"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission"),
        (errno.ENOTDIR, "is a file, not a folder"),
        (errno.EISDIR, "is a folder"),
    ],
)
def test_file_system_errors_are_one_line_naming_the_path(err: int, fragment: str) -> None:
    line = _one_line(OSError(err, os.strerror(err), "/some/where/out.json"))
    assert "/some/where/out.json" in line
    assert fragment in line


def test_package_errors_keep_their_message() -> None:
    assert "bad thing; fix it" in _one_line(DataError("bad thing; fix it"))


def test_undecodable_text_is_one_line() -> None:
    exc = UnicodeDecodeError("utf-8", b"\xff\xfe", 0, 1, "invalid start byte")
    assert "UTF-8" in _one_line(exc)


def test_unexpected_errors_are_one_line_with_exit_code_1() -> None:
    line = _one_line(OverflowError("math range error"), code=1)
    assert "OverflowError" in line and "math range error" in line and DEBUG_ENV in line


def test_debug_env_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(OverflowError):
        CliRunner().invoke(_command(OverflowError("x")), [], catch_exceptions=False)


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("lirefs")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lirefs.cli"]


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIREFS_PROGRESS": "0", "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run(
        [*_console_script(), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.script
def test_console_script_input_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("not a folder")
    out = tmp_path / "liref.safetensors"
    proc = _run_cli(
        "direction", str(tmp_path / "plain.txt" / "acts.safetensors"), "-o", str(out), cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not out.exists()


@pytest.mark.script
def test_console_script_bad_utf8_argument_is_one_line(tmp_path: Path) -> None:
    bad = os.fsdecode(b"acts-\xff.safetensors")
    proc = _run_cli("direction", bad, "-o", str(tmp_path / "x.safetensors"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_top_level_help_examples_name_files_the_commands_write() -> None:
    from lirefs.cli import main

    text = CliRunner().invoke(main, ["--help"]).output
    assert "--out acts.safetensors" in text and "acts/" not in text


@pytest.mark.parametrize("value", ["", " ", ",", " , "])
def test_an_empty_alpha_is_an_error_not_the_defaults(value: str) -> None:
    from lirefs.cli._common import parse_alpha_list

    with pytest.raises(DataError, match="gives no number"):
        parse_alpha_list((value,))


def test_alpha_lists_still_parse() -> None:
    from lirefs.cli._common import parse_alpha_list

    assert parse_alpha_list(("0,0.1", "-0.0", "1e-2,")) == [0.0, 0.1, 0.0, 0.01]


def test_a_second_run_on_the_same_output_is_one_line(tmp_path: Path) -> None:
    from lirefs.cli import main
    from lirefs.store import lock

    out = tmp_path / "liref.safetensors"
    with lock(tmp_path / ".liref.safetensors"):  # what a first `lirefs direction -o out` holds
        result = CliRunner().invoke(
            main, ["direction", str(tmp_path / "acts.safetensors"), "-o", str(out)]
        )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "another run" in lines[0] and str(out) in lines[0], result.stderr
    assert not out.exists()
    # once the first run is gone the lock is free: the command gets as far as its own input check
    result = CliRunner().invoke(
        main, ["direction", str(tmp_path / "acts.safetensors"), "-o", str(out)]
    )
    assert result.exit_code == 2 and "another run" not in result.stderr
