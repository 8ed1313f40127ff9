"""``lirefs demo``: the whole pipeline on the offline default model and the built-in questions."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..console import console
from ._common import CONTEXT_SETTINGS, echo_json, handle_errors, json_option, load, model_options


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
    type=click.IntRange(min=4),
    default=None,
    help="At most this many questions per class (default: all).",
)
@click.option("--test-fraction", default=0.3, show_default=True, type=click.FloatRange(0.05, 0.95))
@click.option("--seed", default=0, show_default=True)
@click.option("--permutations", default=200, show_default=True, type=click.IntRange(min=0))
@click.option("--save-activations", is_flag=True, help="Also write activations.safetensors.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (no matplotlib needed).")
@model_options
@json_option
@handle_errors
def command(
    out: Path,
    data_set: str,
    limit: int | None,
    test_fraction: float,
    seed: int,
    permutations: int,
    save_activations: bool,
    no_plots: bool,
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
    baselines, and writes direction.safetensors, report.json and PNG plots to OUT.

    \b
    Example:
      lirefs demo
      lirefs demo --limit 100 --out quick-report/
    """
    from .. import data
    from ..analysis import collect_split, find_direction
    from .report import print_layer_table

    start = time.perf_counter()
    sets = data.load(data_set)
    if limit is not None:
        sets = sets.subset(limit, seed=seed)
    lm = load(model, device, dtype, device_map, remote)
    split = collect_split(
        lm, sets, test_fraction=test_fraction, seed=seed, batch_size=batch_size, remote=remote
    )
    liref, report = find_direction(split, n_permutations=permutations, seed=seed)

    out.mkdir(parents=True, exist_ok=True)
    written = [liref.save(out / "direction.safetensors")]
    report.save(out / "report.json")
    written.append(out / "report.json")
    if save_activations:
        written.append(split.save(out / "activations.safetensors"))
    if not no_plots:
        from ..analysis import write_report_plots

        written += write_report_plots(report, liref, split.test_reasoning, split.test_memory, out)
    seconds = time.perf_counter() - start
    if as_json:
        echo_json(
            {
                "out": str(out),
                "best_layer": report.best_layer,
                "seconds": round(seconds, 1),
                "files": [str(p) for p in written],
                "report": report.to_dict(),
            }
        )
        return
    counts = split.metadata["data"]["counts"]
    console.print(f"[bold]{liref!r}[/]\ntrain/test counts: {counts}")
    print_layer_table(report)
    console.print(f"\nwrote {len(written)} files to [bold]{out}/[/] in {seconds:.0f} s:")
    for path in written:
        console.print(f"  {path}")
