"""``lirefs direction``: the reasoning direction from the train half, its layer from the test half."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..console import console, out_console
from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    FiniteFloat,
    check_held_out_size,
    check_output,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    load,
    model_options,
)

if TYPE_CHECKING:
    from ..analysis import ActivationSplit
    from ..data import QuestionSets
    from ..direction import Direction
    from ..evaluation.layer_choice import CausalLayerChoice


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
@click.option(
    "--layer-rule",
    type=click.Choice(["auroc", "causal"]),
    default="auroc",
    show_default=True,
    help="auroc: highest held-out AUROC. causal: the layer whose direction most moves the "
    "held-out gold answers' log-probability at --causal-alpha, among layers whose neutral-prompt "
    "KL stays <= --max-kl (loads the model).",
)
@click.option(
    "--set",
    "set_name",
    default=None,
    help="Question set the activations came from, to rebuild the held-out half for "
    "--layer-rule causal [default: the name recorded in ACTIVATIONS].",
)
@click.option("--causal-alpha", default=0.05, show_default=True, type=FiniteFloat(nonzero=True))
@click.option("--max-kl", default=0.1, show_default=True, type=FiniteFloat(positive=True))
@click.option(
    "--causal-limit",
    default=16,
    show_default=True,
    type=click.IntRange(min=1),
    help="Held-out questions per class for --layer-rule causal.",
)
@model_options
@json_option
@handle_errors
@holds_output_lock
def command(
    activations: Path,
    out: Path,
    permutations: int,
    layer_rule: str,
    set_name: str | None,
    causal_alpha: float,
    max_kl: float,
    causal_limit: int,
    model: str,
    device: str | None,
    dtype: str | None,
    device_map: str | None,
    remote: bool,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Build the direction (diff of class means, float64, every layer) and choose its layer.

    The direction comes from the train half of ACTIVATIONS only; the layer is chosen on the test
    half only (highest held-out AUROC, or with --layer-rule causal the strongest steering effect
    on held-out questions) and is stored in the file's metadata with the rule that chose it.

    \b
    Examples:
      lirefs direction acts.safetensors --out liref.safetensors
      lirefs direction acts.safetensors --out liref.safetensors --layer-rule causal
    """
    from ..analysis import ActivationSplit, find_direction

    check_output(out)
    split = ActivationSplit.load(activations)
    check_held_out_size(
        int(split.test_reasoning.shape[0]),
        int(split.test_memory.shape[0]),
        f"{activations} holds",
        "collect again with a larger --limit (or none) or a larger --test-fraction",
    )
    test = _held_out(split, set_name) if layer_rule == "causal" else None  # before any work
    liref, report = find_direction(split, n_permutations=permutations)
    best = report.best_layer
    summary: dict[str, Any] = {"out": str(out), "layer_rule": "auroc", "best_layer": best}
    summary["auroc"] = report.auroc[best]
    choice = None
    if layer_rule == "causal":
        assert test is not None
        choice = _causal(
            test,
            liref,
            causal_alpha,
            max_kl,
            causal_limit,
            batch_size,
            load(model, device, dtype, device_map, remote),
        )
        liref = choice.annotate(liref)
        summary.update(layer_rule="causal", best_layer=choice.best_layer, auroc_best_layer=best)
        summary["causal"] = choice.to_dict()
    liref.save(out)
    if as_json:
        echo_json(summary)
        return
    console.print(f"wrote [bold]{out}[/]: {liref!r}")
    if choice is None:
        out_console.print(f"chosen layer {best} (held-out AUROC {report.auroc[best]:.3f})")
        return
    from rich.table import Table

    table = Table(title="causal layer choice (held-out questions)")
    for col in ("layer", "Δ log p reasoning", "Δ log p memory", "score", "KL", "kept"):
        table.add_column(col, justify="right")
    for row in choice.rows():
        mark = "[bold]" if row["layer"] == choice.best_layer else ""
        table.add_row(
            f"{mark}{row['layer']}",
            f"{row['delta_reasoning']:+.3f}",
            f"{row['delta_memory']:+.3f}",
            f"{row['score']:+.3f}",
            f"{row['kl']:.3g}",
            "yes" if row["eligible"] else "no",
        )
    out_console.print(table)
    out_console.print(
        f"chosen layer {choice.best_layer} (causal rule; the held-out AUROC rule chose {best}, "
        f"AUROC {report.auroc[best]:.3f})"
    )


def _held_out(split: ActivationSplit, set_name: str | None) -> QuestionSets:
    """The held-out half of the question set ``split`` was collected from, rebuilt and checked.

    Runs before any work and before the model loads: a collection whose held-out half cannot be
    rebuilt (one made with ``--limit`` samples its questions) fails in one line at once.
    """
    from .. import data

    meta = split.metadata or {}
    recorded = meta.get("data") or {}
    settings = meta.get("settings") or {}
    name = set_name or recorded.get("name")
    if not name:
        raise DataError("ACTIVATIONS records no question set name; pass --set (e.g. builtin)")
    if set_name is None and re.search(r"/subset\d+$", str(name)):
        raise DataError(
            f"ACTIVATIONS holds {name!r}, a sample collected with --limit, whose held-out half "
            "the causal rule cannot rebuild; collect the whole set (no --limit) for "
            "--layer-rule causal, or use --layer-rule auroc"
        )
    sets = data.load(name)
    _, test = sets.split(
        test_fraction=settings.get("test_fraction", 0.3), seed=settings.get("seed", 0)
    )
    if recorded.get("test_hash") not in (None, test.hash()):
        raise DataError(
            f"the held-out half of {name!r} (hash {test.hash()}) is not the one ACTIVATIONS was "
            f"split into (hash {recorded.get('test_hash')}): --layer-rule causal needs a "
            "collection of the whole set, made without --limit, and the --set it came from"
        )
    return test


def _causal(
    test: QuestionSets,
    liref: Direction,
    alpha: float,
    max_kl: float,
    limit: int,
    batch_size: int | None,
    model: Any,
) -> CausalLayerChoice:
    """Run the causal rule on the held-out questions (from :func:`_held_out`)."""
    from ..evaluation.layer_choice import causal_layer_choice

    return causal_layer_choice(
        model, liref, test, alpha=alpha, max_kl=max_kl, limit=limit, batch_size=batch_size
    )
