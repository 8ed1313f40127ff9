"""``lirefs direction``: the reasoning direction from the train half, its layer from the test half."""

from __future__ import annotations

from pathlib import Path

import click

from ..console import console
from ._common import CONTEXT_SETTINGS, echo_json, handle_errors, json_option


@click.command("direction", context_settings=CONTEXT_SETTINGS)
@click.argument("activations", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Direction file to write (.safetensors).",
)
@click.option(
    "--permutations",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="Label shuffles for the permutation baseline.",
)
@json_option
@handle_errors
def command(activations: Path, out: Path, permutations: int, as_json: bool) -> None:
    """Build the direction (diff of class means, float64, every layer) and choose its layer.

    The direction comes from the train half of ACTIVATIONS only; the layer is the one with the
    highest held-out AUROC on the test half, and is stored in the file's metadata.

    \b
    Example:
      lirefs direction acts.safetensors --out liref.safetensors
    """
    from ..analysis import ActivationSplit, find_direction

    split = ActivationSplit.load(activations)
    liref, report = find_direction(split, n_permutations=permutations)
    liref.save(out)
    best = report.best_layer
    if as_json:
        echo_json({"out": str(out), "best_layer": best, "auroc": report.auroc[best]})
        return
    console.print(f"wrote [bold]{out}[/]: {liref!r}")
    console.print(f"chosen layer {best} (held-out AUROC {report.auroc[best]:.3f})")
