"""Console output shared by the API and the CLI: one rich console (stderr) and progress bars.

Progress bars go to stderr so ``--json`` output on stdout stays machine-readable. They are off when
``progress=False`` is passed, when stderr is not a terminal and ``LIREFS_PROGRESS`` is unset, or
when ``LIREFS_PROGRESS=0``.
"""

from __future__ import annotations

import os
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

__all__ = ["console", "progress_bar"]


def _make_console() -> Console:
    # Piped or logged output gets a wide fixed width (tables stay readable in log files); a
    # terminal keeps its own width; COLUMNS still wins when the user sets it.
    probe = Console(stderr=True)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=True, width=160)


#: The one console lirefs prints human-facing output to (stderr).
console = _make_console()


def _enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    env = os.environ.get("LIREFS_PROGRESS")
    if env is not None:
        return env not in ("0", "false", "no", "")
    return console.is_terminal


class _Bar:
    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


@contextmanager
def progress_bar(description: str, total: int, progress: bool | None = None) -> Iterator[_Bar]:
    """A rich progress bar over ``total`` items; ``bar.advance(n)`` as work completes."""
    if not _enabled(progress):
        yield _Bar(None, None)
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
