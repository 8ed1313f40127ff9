"""``lirefs transfer``: every direction scored on every test source's held-out states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..console import console, out_console
from ..errors import DataError
from ..outputs import check_output_folder
from ..pipeline import write_transfer
from ._common import (
    CONTEXT_SETTINGS,
    SEED,
    check_output,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    permutations_option,
)

__all__ = ["command", "named_paths", "print_transfer_table", "write_transfer"]


def print_transfer_table(report: Any) -> None:
    """Rich tables of ``report.table_rows()`` and ``report.baseline_rows()``, then the summary."""
    from rich.table import Table

    table = Table(title="held-out AUROC: direction (rows) on test source (columns)")
    rows = report.table_rows()
    for key in rows[0]:
        table.add_column(key, justify="left" if key == "direction" else "right")
    for row in rows:
        table.add_row(*row.values())
    out_console.print(table)
    baselines = Table(title="baselines of each test source")
    b_rows = report.baseline_rows()
    for key in b_rows[0]:
        baselines.add_column(key, justify="left" if key == "test" else "right")
    for row in b_rows:
        baselines.add_row(*row.values())
    out_console.print(baselines)
    out_console.print(report.summary(), soft_wrap=True)


def named_paths(values: tuple[str, ...], option: str) -> dict[str, Path]:
    """``NAME=PATH`` (or a bare ``PATH``, named by its parent folder and stem) -> ``{name: path}``.

    Raises:
        DataError: an empty name or path, or the same name twice.
    """
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            p = Path(value)
            name, path = (f"{p.parent.name}/{p.stem}" if p.parent.name else p.stem), value
        if not name or not path:
            raise DataError(
                f"{option} {value!r} must be NAME=PATH, e.g. {option} builtin=acts.safetensors"
            )
        if name in out:
            raise DataError(f"{option} name {name!r} is given twice; give each source its own name")
        out[name] = Path(path)
    return out


@click.command("transfer", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--direction",
    "-d",
    "direction_args",
    multiple=True,
    required=True,
    metavar="NAME=PATH",
    help="A direction file (from `lirefs direction` or `lirefs demo`); repeat for each source.",
)
@click.option(
    "--test",
    "-t",
    "test_args",
    multiple=True,
    required=True,
    metavar="NAME=PATH",
    help="An activation file (from `lirefs collect`); its held-out half is scored. Repeatable.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("transfer"),
    show_default=True,
    help="Folder for transfer.json and the heatmap PNGs.",
)
@permutations_option
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the label shuffles.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (no matplotlib needed).")
@json_option
@handle_errors
@holds_output_lock
def command(
    direction_args: tuple[str, ...],
    test_args: tuple[str, ...],
    out: Path,
    permutations: int,
    seed: int,
    no_plots: bool,
    as_json: bool,
) -> None:
    """Held-out AUROC of each direction on each test source, with each test's baselines.

    Each direction is scored at the layer chosen when it was built, and at every layer; each test
    source brings its shuffled-label chance band and its prompt-length baselines. A direction that
    keeps its AUROC on a source of another topic or format reads more than the surface form.

    \b
    Example:
      lirefs collect --set builtin -o builtin-acts.safetensors
      lirefs collect --set matched.jsonl -o matched-acts.safetensors
      lirefs direction builtin-acts.safetensors -o builtin.safetensors
      lirefs direction matched-acts.safetensors -o matched.safetensors
      lirefs transfer -d builtin=builtin.safetensors -d matched=matched.safetensors \\
        -t builtin=builtin-acts.safetensors -t matched=matched-acts.safetensors -o transfer/
    """
    from ..analysis import ActivationSplit
    from ..direction import Direction
    from ..pipeline import transfer_between

    check_output(out, folder=True)
    check_output_folder(out, "transfer")  # before any work: a foreign folder is refused
    directions = {
        name: Direction.load(path)
        for name, path in named_paths(direction_args, "--direction").items()
    }
    splits = {
        name: ActivationSplit.load(path) for name, path in named_paths(test_args, "--test").items()
    }
    report = transfer_between(directions, splits, n_permutations=permutations, seed=seed)
    written = write_transfer(report, out, plots=not no_plots)
    if as_json:
        echo_json({"report": report.to_dict(), "files": [str(p) for p in written]})
        return
    print_transfer_table(report)
    console.print(f"wrote {', '.join(str(p) for p in written)}")
