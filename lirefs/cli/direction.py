"""``lirefs direction``: the reasoning direction from the train half, its layer from the test half."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..console import console, out_console
from ._common import (
    CONTEXT_SETTINGS,
    FiniteFloat,
    ModelArgs,
    check_output,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    model_options,
    permutations_option,
)


@click.command("direction", context_settings=CONTEXT_SETTINGS)
@click.argument("activations", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Direction file to write (.safetensors).",
)
@permutations_option
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
@click.option(
    "--causal-alpha",
    default=0.05,
    show_default=True,
    type=FiniteFloat(nonzero=True),
    help="Steering strength at which --layer-rule causal compares the layers.",
)
@click.option(
    "--max-kl",
    default=0.1,
    show_default=True,
    type=FiniteFloat(positive=True),
    help="Damage budget of --layer-rule causal: mean next-token KL on neutral prompts, in nats.",
)
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
    model_args: ModelArgs,
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
    from .. import pipeline
    from ..analysis import ActivationSplit

    check_output(out)
    split = ActivationSplit.load(activations)
    pipeline.check_held_out(split, where=f"{activations} holds")
    test = pipeline.held_out_questions(split, set_name) if layer_rule == "causal" else None
    liref, report = pipeline.find_direction(split, n_permutations=permutations)
    best = report.best_layer
    summary: dict[str, Any] = {"out": str(out), "layer_rule": "auroc", "best_layer": best}
    summary["auroc"] = report.auroc[best]
    choice = None
    if layer_rule == "causal":
        assert test is not None
        choice = pipeline.causal_choice(
            model_args.load(activations),
            liref,
            test,
            alpha=causal_alpha,
            max_kl=max_kl,
            limit=causal_limit,
            batch_size=model_args.batch_size,
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
