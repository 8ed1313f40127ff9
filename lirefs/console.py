"""Console output shared by the API and the CLI: the two consoles, stage lines and progress.

Streams follow the Unix convention: results (tables, summaries) go to ``out_console`` (stdout), so
``lirefs report ... > table.txt`` or ``lirefs evaluate --list-benchmarks | grep gsm`` work;
everything else (stage lines, progress, warnings, errors, "wrote ..." lines) goes to ``console``
(stderr), so ``--json`` output on stdout stays machine-readable.

Every loop of lirefs reports its progress through ``progress_bar``:

* one *stage line* on stderr when it starts (e.g. ``collecting train reasoning: 385 prompts``);
* on a terminal, a rich bar that says what it counts;
* not on a terminal (a pipe, a log file, nohup, CI, a notebook), no bar but a short *periodic
  line* every 10% of the work or every 30 s (``  collecting train reasoning: 128/385, 41 s``).

``LIREFS_PROGRESS`` decides: unset, bars on a terminal and periodic lines elsewhere; ``1``, bars
even when stderr is not a terminal; ``0`` (what the test suite sets), quiet: no bars, no periodic
lines and no stage lines (warnings, errors and results still appear). ``progress=False`` on a call
is quiet the same way for that loop (lirefs passes it to loops nested in another one);
``progress=True`` forces the bar.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["console", "out_console", "progress_bar", "stage"]

#: Seconds between two periodic lines of a loop when stderr is not a terminal (at the latest).
PERIODIC_SECONDS = 30.0
#: Share of a loop's work between two periodic lines (at the latest).
PERIODIC_STEP = 0.1


def _make_console(stderr: bool) -> Console:
    # Piped or logged output gets a wide fixed width (tables stay readable in log files); a
    # terminal keeps its own width; COLUMNS still wins when the user sets it.
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, width=160)


#: The console for logs, stage lines, progress, warnings and errors (stderr).
console = _make_console(stderr=True)
#: The console for results: tables and summaries (stdout).
out_console = _make_console(stderr=False)


def _env() -> str | None:
    return os.environ.get("LIREFS_PROGRESS")


def _quiet(progress: bool | None) -> bool:
    """No stage line and no periodic lines: ``progress=False`` or ``LIREFS_PROGRESS=0``."""
    if progress is not None:
        return not progress
    env = _env()
    return env is not None and env in ("0", "false", "no", "")


def _bar_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    env = _env()
    if env is not None:
        return env not in ("0", "false", "no", "")
    return console.is_terminal


def stage(message: str, progress: bool | None = None) -> None:
    """Print one stage line (what a step is about to do) on stderr, unless quiet.

    Quiet means ``progress=False`` or ``LIREFS_PROGRESS=0`` (see the module docstring).
    """
    if not _quiet(progress):
        console.print(message, markup=False, highlight=False, soft_wrap=True)


class _Bar:
    """What a loop advances: a rich bar, periodic lines, or nothing."""

    def __init__(self, progress: Progress | None, task: Any, lines: _Lines | None = None) -> None:
        self._progress, self._task, self._lines = progress, task, lines

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)
        if self._lines is not None:
            self._lines.advance(n)


class _Lines:
    """Periodic progress lines for a loop whose stderr is not a terminal."""

    def __init__(self, description: str, total: int) -> None:
        self.description, self.total, self.done = description, total, 0
        self.start = self.last_time = time.monotonic()
        self.last_done = 0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        step = max(1.0, PERIODIC_STEP * self.total)
        if self.done >= self.total or (
            self.done - self.last_done < step and now - self.last_time < PERIODIC_SECONDS
        ):
            return
        self.last_done, self.last_time = self.done, now
        stage(f"  {self.description}: {self.done}/{self.total}, {now - self.start:.0f} s")


@contextmanager
def progress_bar(
    description: str, total: int, progress: bool | None = None, *, start: str | None = None
) -> Iterator[_Bar]:
    """Progress of a loop over ``total`` items; ``bar.advance(n)`` as work completes.

    Prints the stage line ``start`` (default ``"<description>: <total> items"``) first, then
    shows a rich bar called ``description`` on a terminal, or periodic lines elsewhere (see the
    module docstring for ``progress`` and ``LIREFS_PROGRESS``). ``description`` should say what
    is counted (``"collecting train reasoning"``, not ``"collecting activations"``).
    """
    stage(start if start is not None else f"{description}: {total} items", progress)
    if not _bar_enabled(progress):
        yield _Bar(None, None, None if _quiet(progress) else _Lines(description, total))
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield _Bar(prog, task)
