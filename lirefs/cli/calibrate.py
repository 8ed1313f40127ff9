"""``lirefs calibrate``: the largest steering alpha within a damage budget, per sign."""

from __future__ import annotations

from pathlib import Path

import click

from ..console import console, out_console
from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    ModelArgs,
    check_output,
    direction_option,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    layer_option,
    model_options,
    read_texts,
    resolve_direction,
)

__all__ = ["command"]

_MODES = ("project", "project-calibrated", "add", "ablate")


@click.command("calibrate", context_settings=CONTEXT_SETTINGS)
@direction_option(required=True, positional=True)
@click.option(
    "--out", "-o", "out", type=click.Path(path_type=Path), help="Write the calibration (JSON)."
)
@click.option(
    "--max-kl",
    default=0.1,
    show_default=True,
    type=float,
    help="Damage budget: mean next-token KL(unsteered || steered) in nats on neutral text.",
)
@layer_option(
    "Residual index of the direction (0..L; default: the layer the direction file records)."
)
@click.option(
    "--mode",
    type=click.Choice(_MODES),
    default="project",
    show_default=True,
    help="Steering mode; 'ablate' reports the ablation's damage (no alpha to choose).",
)
@click.option(
    "--prompts",
    "prompts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Neutral prompts, one per line or JSONL with 'text' (default: the shipped neutral set).",
)
@click.option("--start", type=float, help="First |alpha| of the grid (default per mode).")
@click.option("--factor", default=2.0, show_default=True, type=float, help="Grid ratio (> 1).")
@click.option(
    "--rtol",
    default=0.02,
    show_default=True,
    type=float,
    help="Bisection resolution: stop when hi - lo <= rtol * lo.",
)
@click.option("--plot", type=click.Path(path_type=Path), help="Also draw damage and shift (PNG).")
@model_options(
    batch_help="Prompts per forward pass [default: batches of up to 512 padded tokens].",
    model_help="Built-in alias, local HF folder, .gguf file, or Hub id [default: the direction's "
    "model].",
)
@json_option
@handle_errors
@holds_output_lock
def command(
    direction_path: Path | None,
    legacy_direction: Path | None,
    out: Path | None,
    max_kl: float,
    layer: int | None,
    mode: str,
    prompts_file: Path | None,
    start: float | None,
    factor: float,
    rtol: float,
    plot: Path | None,
    model_args: ModelArgs,
    as_json: bool,
) -> None:
    """Find the largest positive and most negative alpha whose damage stays within --max-kl.

    Damage: the mean over every (prompt, position) of the neutral prompts of
    KL(unsteered || steered) of the next-token distributions (float64, teacher-forced). For each
    sign a geometric grid (--start, x --factor) runs until an alpha exceeds the budget, then
    bisection narrows it to --rtol. Each alpha tried also gets the perplexity ratio, the shift of
    the direction's score on held-out questions (in pooled SDs) and the mode's effective scale.

    \b
    Examples:
      lirefs calibrate -d liref.safetensors -o cal.json
      lirefs calibrate -d liref.safetensors --max-kl 0.05 --mode project-calibrated --json
      lirefs calibrate -d liref.safetensors --mode ablate
      lirefs calibrate -d liref.safetensors -l 15 --prompts neutral.txt -o cal.json --plot cal.png
    """
    from ..calibrate import calibrate
    from ..direction import Direction

    direction_file = resolve_direction(direction_path, legacy_direction, "calibrate")
    if out is not None:
        check_output(out)
    if plot is not None:
        check_output(plot)
    prompts = read_texts(prompts_file, "text", "prompts") if prompts_file is not None else None
    recorded = Direction.load(direction_file)
    name = model_args.model or (recorded.metadata.get("model") or {}).get("name")
    if not name:
        raise DataError(
            f"{direction_file} records no model; pass --model (the model it was built on)"
        )
    nn_model = model_args.load(name=name)
    direction = Direction.load(direction_file, model=nn_model)
    cal = calibrate(
        nn_model,
        direction,
        layer=layer,
        mode=mode,
        prompts=prompts,
        max_kl=max_kl,
        start=start,
        factor=factor,
        rtol=rtol,
        batch_size=model_args.batch_size,
        remote=model_args.remote,
    )
    if out is not None:
        cal.save(out)
    if plot is not None:
        cal.plot(plot)
    if as_json:
        echo_json(cal.to_dict())
        return
    out_console.print(cal.table())  # the table on stdout, messages on stderr
    if out is not None:
        console.print(f"wrote {out}")
    if plot is not None:
        console.print(f"wrote {plot}")
