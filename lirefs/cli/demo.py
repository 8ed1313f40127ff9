"""``lirefs demo``: the whole pipeline on the offline default model and the built-in questions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..console import console, out_console
from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    check_output,
    check_split_size,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    load,
    model_options,
)

#: The smallest ``--limit``: the built-in sets' held-out halves reach ``MIN_HELD_OUT`` questions
#: per class at 16 with the default ``--test-fraction`` 0.3 (smaller fractions are checked too).
DEMO_MIN_LIMIT = 16

#: The sets the demo scores its direction on when present: same surface form in both classes.
DEFAULT_TRANSFER_SETS = ("builtin-matched",)


def transfer_on_sets(
    lm: Any,
    base: str,
    split: Any,
    direction: Any,
    names: Sequence[str],
    *,
    required: bool,
    limit: int | None,
    test_fraction: float,
    seed: int,
    batch_size: int | None,
    remote: bool,
    permutations: int,
) -> tuple[Any, dict[str, Any], list[str]]:
    """The direction of ``base`` and of each set in ``names``, each scored on every set's test half.

    Each other set is split and collected like ``base``; its own direction is found on its train
    half. A set that ``lirefs.data.load`` does not know is an error when ``required``, otherwise a
    note (the returned report is then ``None`` if no other set is left).

    Returns:
        ``(report, directions, notes)``: the ``TransferReport`` (or ``None``), the directions by
        set name, and one line per skipped set.
    """
    from .. import data
    from ..analysis import collect_split, split_transfer

    splits = {base: split}
    notes: list[str] = []
    for name in names:
        if name == base or name in splits:
            continue
        try:
            sets = data.load(name)
        except DataError as exc:
            if required:
                raise
            notes.append(f"transfer test on {name!r} skipped: {exc}")
            continue
        check_split_size(sets, test_fraction=test_fraction, seed=seed, limit=limit)
        if limit is not None:
            sets = sets.subset(limit, seed=seed)
        splits[name] = collect_split(
            lm, sets, test_fraction=test_fraction, seed=seed, batch_size=batch_size, remote=remote
        )
    if len(splits) < 2:
        return None, {base: direction}, notes
    directions, report = split_transfer(
        splits, {base: direction}, n_permutations=permutations, seed=seed
    )
    return report, directions, notes


@click.command("demo", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("lirefs-report"),
    show_default=True,
    help="Report folder to write.",
)
@click.option(
    "--set",
    "data_set",
    default="builtin",
    show_default=True,
    help="'builtin' or a JSONL/CSV file with question and label columns.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=DEMO_MIN_LIMIT),
    default=None,
    help="At most this many questions per class (default: all; the held-out half needs 5 per "
    "class, which the built-in set reaches at 16 with the default --test-fraction).",
)
@click.option("--test-fraction", default=0.3, show_default=True, type=click.FloatRange(0.05, 0.95))
@click.option("--seed", default=0, show_default=True)
@click.option("--permutations", default=200, show_default=True, type=click.IntRange(min=0))
@click.option("--save-activations", is_flag=True, help="Also write activations.safetensors.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (no matplotlib needed).")
@click.option(
    "--transfer-set",
    "transfer_sets",
    multiple=True,
    metavar="NAME",
    help="Also find a direction on this set and score every direction on every set's held-out "
    "half (repeatable) [default: builtin-matched, when this lirefs has it].",
)
@click.option("--no-transfer", is_flag=True, help="Skip the cross-source transfer test.")
@click.option("--no-html", is_flag=True, help="Skip the self-contained report.html.")
@model_options
@json_option
@handle_errors
@holds_output_lock
def command(
    out: Path,
    data_set: str,
    limit: int | None,
    test_fraction: float,
    seed: int,
    permutations: int,
    save_activations: bool,
    no_plots: bool,
    transfer_sets: tuple[str, ...],
    no_transfer: bool,
    no_html: bool,
    model: str,
    device: str | None,
    dtype: str | None,
    device_map: str | None,
    remote: bool,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Find the reasoning direction end to end and write a report folder.

    Loads the model (default: SmolLM2-135M-Instruct, offline), reads the last-token states of the
    built-in reasoning and memory questions, builds the direction from the train half, measures
    per-layer separability on the held-out half against shuffled-label and prompt-length
    baselines, and writes direction.safetensors, report.json and PNG plots to OUT. Then the
    honest test: the direction is scored on a set whose reasoning and memory questions share one
    surface form (builtin-matched, when present), beside that set's own direction
    (transfer.json, transfer.png).

    \b
    Example:
      lirefs demo
      lirefs demo --limit 100 --out quick-report/
    """
    from .. import data
    from ..analysis import collect_split, find_direction
    from .report import print_layer_table
    from .transfer import print_transfer_table, write_transfer

    start = time.perf_counter()
    check_output(out, folder=True)
    sets = data.load(data_set)
    check_split_size(sets, test_fraction=test_fraction, seed=seed, limit=limit)
    if limit is not None:
        sets = sets.subset(limit, seed=seed)
    lm = load(model, device, dtype, device_map, remote)
    split = collect_split(
        lm, sets, test_fraction=test_fraction, seed=seed, batch_size=batch_size, remote=remote
    )
    liref, report = find_direction(split, n_permutations=permutations, seed=seed)
    transfer: Any = None
    notes: list[str] = []
    directions: dict[str, Any] = {}
    if not no_transfer:
        transfer, directions, notes = transfer_on_sets(
            lm,
            data_set,
            split,
            liref,
            list(transfer_sets) or list(DEFAULT_TRANSFER_SETS),
            required=bool(transfer_sets),
            limit=limit,
            test_fraction=test_fraction,
            seed=seed,
            batch_size=batch_size,
            remote=remote,
            permutations=permutations,
        )

    out.mkdir(parents=True, exist_ok=True)
    written = [liref.save(out / "direction.safetensors")]
    plots: list[Path] = []
    transfer_plots: list[Path] = []
    report.save(out / "report.json")
    written.append(out / "report.json")
    if save_activations:
        written.append(split.save(out / "activations.safetensors"))
    if not no_plots:
        from ..analysis import write_report_plots

        plots = write_report_plots(report, liref, split.test_reasoning, split.test_memory, out)
        written += plots
    if transfer is not None:
        for name, other in directions.items():
            if name != data_set:
                written.append(other.save(out / f"direction-{_file_part(name)}.safetensors"))
        transfer_files = write_transfer(transfer, out, plots=not no_plots)
        transfer_plots = [p for p in transfer_files if p.suffix == ".png"]
        written += transfer_files
    if not no_html:
        from ..analysis import write_html_report

        written.append(
            write_html_report(
                out / "report.html",
                report,
                liref,
                plots=plots,
                transfer=transfer,
                transfer_plots=transfer_plots,
                title=f"lirefs demo: {lm_name(lm)} on {data_set}",
            )
        )
    seconds = time.perf_counter() - start
    if as_json:
        echo_json(
            {
                "out": str(out),
                "best_layer": report.best_layer,
                "seconds": round(seconds, 1),
                "files": [str(p) for p in written],
                "report": report.to_dict(),
                "transfer": transfer.to_dict() if transfer is not None else None,
                "notes": notes,
            }
        )
        return
    counts = split.metadata["data"]["counts"]
    out_console.print(f"[bold]{liref!r}[/]\ntrain/test counts: {counts}")
    print_layer_table(report)
    if transfer is not None:
        print_transfer_table(transfer)
    for note in notes:
        console.print(f"[yellow]{note}[/]", soft_wrap=True)
    console.print(f"\nwrote {len(written)} files to [bold]{out}/[/] in {seconds:.0f} s:")
    for path in written:
        console.print(f"  {path}")


def lm_name(lm: Any) -> str:
    """The model's name as lirefs records it."""
    from ..models import model_info

    return str(model_info(lm).name)


def _file_part(name: str) -> str:
    """A set name (or a file path given as a set) as a safe part of a file name."""
    stem = Path(name).stem if ("/" in name or "." in name) else name
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in stem) or "set"
