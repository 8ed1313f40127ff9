"""``lirefs report``: per-layer separability on held-out data, baselines, and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..console import console, out_console
from ..outputs import check_output_folder
from ._common import (
    CONTEXT_SETTINGS,
    check_output,
    direction_option,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    layer_option,
    permutations_option,
    resolve_direction,
)


def print_layer_table(report: Any, title: str = "held-out separability per layer") -> None:
    """A rich table of ``report.table_rows()`` with the chosen layer highlighted."""
    from rich.table import Table

    rows = report.table_rows()
    table = Table(title=title, header_style="bold")
    for key in rows[0]:
        table.add_column(str(key), justify="right")
    for row in rows:
        style = "bold green" if row.get("layer") == report.best_layer else None
        table.add_row(*[_fmt(v) for v in row.values()], style=style)
    out_console.print(table)
    out_console.print(report.summary(), soft_wrap=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}"
    return str(value)


def _inputs(direction: Path | None, paths: tuple[Path, ...]) -> tuple[Path, Path]:
    """``(direction, activations)`` from ``-d DIRECTION ACTIVATIONS`` or the old spelling
    ``DIRECTION ACTIVATIONS`` (both positional; one deprecation line)."""
    if direction is None and len(paths) == 2:
        return resolve_direction(None, paths[0], "report"), paths[1]
    if len(paths) != 1:
        raise click.UsageError(
            "give the direction with -d/--direction and one ACTIVATIONS file, e.g. "
            "lirefs report -d liref.safetensors acts.safetensors"
        )
    return resolve_direction(direction, None, "report"), paths[0]


@click.command("report", context_settings=CONTEXT_SETTINGS)
@direction_option(required=True)
@click.argument(
    "paths", nargs=-1, metavar="ACTIVATIONS", type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for report.json and the PNG plots.",
)
@permutations_option
@layer_option("Layer for the score/PCA plots (default: the chosen layer).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (no matplotlib needed).")
@click.option(
    "--html",
    "html_path",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PATH]",
    help="Also write one self-contained HTML page (default path: OUT/report.html).",
)
@click.option(
    "--eval",
    "eval_folders",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FOLDER",
    help="An evaluation folder (`lirefs evaluate --out`) of this direction to show in the HTML "
    "page; repeatable.",
)
@click.option(
    "--transfer",
    "transfer_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="A transfer.json of this direction (as `lirefs demo` writes) to show in the HTML page: "
    "its format-matched test goes into the summary, with transfer.png / transfer_layers.png "
    "from beside it.",
)
@json_option
@handle_errors
@holds_output_lock
def command(
    direction_path: Path | None,
    paths: tuple[Path, ...],
    out: Path,
    permutations: int,
    layer: int | None,
    no_plots: bool,
    html_path: str | None,
    eval_folders: tuple[Path, ...],
    transfer_path: Path | None,
    as_json: bool,
) -> None:
    """Per-layer AUROC, probe accuracy, effect size and baselines on the held-out half.

    \b
    Example:
      lirefs report -d liref.safetensors acts.safetensors --out report/
      lirefs report -d liref.safetensors acts.safetensors --out report/ --html --eval eval/
      lirefs report -d demo/direction.safetensors demo/activations.safetensors --out report/ \\
          --html --transfer demo/transfer.json --eval eval/
    """
    from ..analysis import ActivationSplit, TransferReport, split_report
    from ..analysis.html import check_evaluation, load_evaluation, transfer_base
    from ..checks import residual_index
    from ..direction import Direction
    from ..errors import DataError
    from ..pipeline import write_layer_report

    direction, activations = _inputs(direction_path, paths)
    check_output(out, folder=True)
    check_output_folder(out, "report")  # before any work: a foreign folder is refused
    split = ActivationSplit.load(activations)
    # with the activations' model: a direction that records none ("model": null) is refused
    liref = Direction.load(direction, model=split.metadata.get("model") or None)
    if layer is not None:  # refuse before any work, so no report.json is left behind
        residual_index(layer, liref.n_layers, "this direction has")
    if (eval_folders or transfer_path is not None) and html_path is None:
        raise DataError("--eval and --transfer results are shown in the HTML page; add --html")
    page = None if html_path is None else (Path(html_path) if html_path else out / "report.html")
    if page is not None and page.is_dir():  # refuse before any work, so nothing is half written
        raise DataError(
            f"HTML path {str(page)!r} is an existing folder; give a file path such as "
            f"{str(page / 'report.html')!r}"
        )
    if page is not None:
        check_output(page)
    evaluations = [load_evaluation(folder) for folder in eval_folders]
    for summary in evaluations:
        check_evaluation(summary, liref)
    transfer = None if transfer_path is None else TransferReport.load(transfer_path)
    transfer_plots: list[Path] = []
    if transfer is not None and transfer_path is not None:
        transfer_base(transfer, liref)
        beside = [transfer_path.with_name(n) for n in ("transfer.png", "transfer_layers.png")]
        transfer_plots = [p for p in beside if p.is_file()]
    report = split_report(liref, split, n_permutations=permutations)
    _, plots, page = write_layer_report(
        out,
        report,
        liref,
        split,
        plots=not no_plots,
        layer=layer,
        html=page,
        evaluations=evaluations,
        transfer=transfer,
        transfer_plots=transfer_plots,
    )
    if as_json:
        echo_json(
            {
                "report": report.to_dict(),
                "plots": [str(p) for p in plots],
                "html": None if page is None else str(page),
            }
        )
        return
    print_layer_table(report)
    console.print(f"wrote {out / 'report.json'} and {len(plots)} plots in {out}/")
    if page is not None:
        console.print(f"wrote {page}")
