"""``lirefs demo``: the whole pipeline on the offline default model and the built-in questions."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..console import console, out_console
from ..outputs import check_output_folder
from ..pipeline import DEFAULT_TRANSFER_SETS, DEMO_MIN_LIMIT, transfer_on_sets
from ._common import (
    CONTEXT_SETTINGS,
    LIMIT,
    ModelArgs,
    check_output,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    model_options,
    permutations_option,
    split_options,
)

__all__ = ["DEFAULT_TRANSFER_SETS", "DEMO_MIN_LIMIT", "command", "transfer_on_sets"]


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
    type=LIMIT,
    default=None,
    help="At most this many questions per class (default: all; the held-out half needs 5 per "
    f"class, which the built-in set reaches at {DEMO_MIN_LIMIT} with the default --test-fraction).",
)
@split_options
@permutations_option
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
    model_args: ModelArgs,
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
    from .. import pipeline
    from .report import print_layer_table
    from .transfer import print_transfer_table

    start = time.perf_counter()
    check_output(out, folder=True)
    check_output_folder(out, "demo")  # before any work: a foreign folder is refused
    sets = pipeline.prepare_sets(data_set, limit=limit, test_fraction=test_fraction, seed=seed)
    lm = model_args.load()
    result = pipeline.run_demo(
        lm,
        data_set,
        sets=sets,
        limit=limit,
        test_fraction=test_fraction,
        seed=seed,
        permutations=permutations,
        transfer_sets=transfer_sets,
        transfer=not no_transfer,
        batch_size=model_args.batch_size,
        remote=model_args.remote,
    )
    written = result.save(out, plots=not no_plots, html=not no_html, activations=save_activations)
    report, transfer = result.report, result.transfer
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
                "notes": result.notes,
            }
        )
        return
    counts = result.split.metadata["data"]["counts"]
    out_console.print(f"[bold]{result.direction!r}[/]\ntrain/test counts: {counts}")
    print_layer_table(report)
    if transfer is not None:
        print_transfer_table(transfer)
    for note in result.notes:
        console.print(f"[yellow]{note}[/]", soft_wrap=True)
    console.print(f"\nwrote {len(written)} files to [bold]{out}/[/] in {seconds:.0f} s:")
    for path in written:
        console.print(f"  {path}")
