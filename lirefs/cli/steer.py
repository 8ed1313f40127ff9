"""``lirefs steer``: greedy generations side by side, one column per alpha."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ..console import out_console
from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    ModelArgs,
    calibration_entry,
    check_text,
    deprecated_spelling,
    echo_json,
    handle_errors,
    json_option,
    load_calibration,
    model_options,
    parse_alpha_list,
    parse_index_list,
    read_texts,
)

__all__ = ["command"]


def _positions(value: str) -> str | list[int]:
    if value in ("all", "prompt", "generated"):
        return value
    try:
        return [int(p) for p in value.split(",")]
    except ValueError:
        raise DataError(
            f"--positions {value!r} is not all, prompt, generated or a comma list of negative ints"
        ) from None


def _blocks(value: str | None, flag: str = "--blocks") -> list[int] | None:
    return parse_index_list(value, flag, "10-20 or 3,4,5", "decoder block numbers 0..L-1")


def _mode_help() -> str:
    from ..steer import MODES

    return "; ".join(f"{m.name}: {m.summary}" for m in MODES.values()) + "."


def _mode_names() -> list[str]:
    from ..steer import MODES

    return list(MODES)


@click.command("steer", context_settings=CONTEXT_SETTINGS)
@click.argument("questions", nargs=-1)
@click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Questions, one per line, or JSONL with a 'question' field.",
)
@click.option(
    "--direction",
    "-d",
    "direction_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A direction file from `lirefs direction` (.safetensors).",
)
@click.option(
    "--layer",
    "-l",
    type=int,
    help="Residual index whose direction is used (0..L; default: the layer the direction file records).",
)
@click.option(
    "--alpha",
    "-a",
    "alpha",
    multiple=True,
    help="Scale; repeat it or give a comma list. Default 0,0.1 (plain next to steered). With "
    "--calibration also calibrated, -calibrated or either divided by a number (calibrated/2).",
)
@click.option(
    "--calibration",
    "calibration_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A file from `lirefs calibrate` of this model, direction, layer and mode: gives the "
    "numbers of --alpha calibrated, -calibrated, calibrated/2.",
)
@click.option(
    "--mode",
    type=click.Choice(_mode_names()),
    default="project",
    show_default=True,
    help=_mode_help(),
)
@click.option(
    "--positions",
    default="all",
    show_default=True,
    help="all, prompt, generated, or negative prompt-token indices like -1,-2.",
)
@click.option(
    "--blocks",
    "blocks",
    default=None,
    help="Decoder blocks (0..L-1) the projection modes edit, e.g. 10-20 (default all).",
)
@click.option(
    "--layers",
    "old_blocks",
    default=None,
    hidden=True,
    help="Deprecated old name of --blocks.",
)
@click.option(
    "--max-new-tokens",
    "-n",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Generation length limit (rows also stop at end-of-sequence).",
)
@click.option(
    "--stop",
    "stops",
    multiple=True,
    help="End a row once its text contains this string (repeatable), e.g. --stop $'\\nQ:'.",
)
@click.option("--raw", is_flag=True, help="Use the questions as given, without 'Q: ...\\nA: '.")
@click.option(
    "--chat-template",
    is_flag=True,
    help="Wrap each question in the model's chat template instead of 'Q: ...\\nA: '.",
)
@model_options
@json_option
@handle_errors
def command(
    questions: tuple[str, ...],
    file: Path | None,
    direction_path: Path | None,
    layer: int | None,
    alpha: tuple[str, ...],
    calibration_path: Path | None,
    mode: str,
    positions: str,
    blocks: str | None,
    old_blocks: str | None,
    max_new_tokens: int,
    stops: tuple[str, ...],
    raw: bool,
    chat_template: bool,
    model_args: ModelArgs,
    as_json: bool,
) -> None:
    """Generate greedily with and without steering, side by side.

    Each alpha is one column; alpha 0 is plain generation (in every mode: with --mode ablate,
    0 is the plain column and -1 the ablated one). In the paper's mode the component along the
    direction compounds over the L blocks to about (1 + alpha)^L, printed below the table.

    \b
    Examples:
      lirefs steer "What is 17 * 23?" -d liref.safetensors -l 15 -a -0.1,0,0.1
      lirefs steer -f questions.jsonl -d liref.safetensors -l 15 --mode ablate --json
      lirefs steer "Who wrote Hamlet?" -d liref.safetensors -l 15 \\
          --mode project-calibrated -a 0.5 -n 32 --blocks 10-20
    """
    from ..data import format_prompt
    from ..direction import Direction
    from ..models import model_info
    from ..steer import get_mode

    steer_mode = get_mode(mode)
    texts = _questions(questions, file, stops)
    cal = (
        load_calibration(calibration_path, direction_path, layer, steer_mode.name)
        if calibration_path is not None
        else None
    )
    given = parse_alpha_list(alpha, cal)  # calibrated names become numbers before the model loads
    alphas = list(
        dict.fromkeys(given or ([0.0] if direction_path is None else steer_mode.default_alphas))
    )
    for a in alphas:
        steer_mode.check_alpha(a)
    where = _positions(positions)
    chosen_blocks = _chosen_blocks(blocks, old_blocks)
    if raw and chat_template:
        raise DataError("--raw and --chat-template exclude each other: pick one prompt format")
    nn_model = model_args.load(direction_path)
    if cal is not None:
        cal.check(nn_model)
    tok = nn_model.tokenizer
    prompts = (
        texts
        if raw
        else [format_prompt(q, chat_template=chat_template, tokenizer=tok) for q in texts]
    )
    direction = Direction.load(direction_path, model=nn_model) if direction_path else None
    if direction is not None and any(a != 0.0 for a in alphas):
        layer = direction.resolve_layer(layer)  # the given layer or the chosen one, checked
    settings: dict[str, Any] = {
        "positions": where,
        "blocks": chosen_blocks,
        "max_new_tokens": max_new_tokens,
        "stop": list(stops),
        "remote": model_args.remote,
        "batch_size": model_args.batch_size,
    }
    runs = _generate_columns(nn_model, prompts, alphas, direction, layer, steer_mode, settings)
    columns = [(f"alpha {a:g}", a, runs[a]) for a in alphas]
    info = model_info(nn_model)
    n_edited = info.n_layers if chosen_blocks is None else len(chosen_blocks)
    scales: dict[str, float | None] = {
        label: 1.0 if a == 0.0 else steer_mode.effective_scale(a, n_edited)
        for label, a, _ in columns
    }
    entry = (
        calibration_entry(cal, calibration_path, alpha, alphas)
        if cal is not None and calibration_path is not None
        else None
    )
    if as_json:
        head = {"model": info.name, "mode": steer_mode.name, "layer": layer, "positions": where}
        head.update(blocks=chosen_blocks, max_new_tokens=max_new_tokens)
        echo_json(
            {**head, **({"calibration": entry} if entry else {}), "runs": _runs(columns, scales)}
        )
        return
    title = f"{info.name}: mode {steer_mode.name}" + (
        f", direction of layer {layer}" if direction else ""
    )
    _print_table(title, texts, columns, scales, steer_mode, n_edited)
    if cal is not None and entry is not None:
        names = ", ".join(f"{k} = {v:+.5g}" for k, v in entry["resolved"].items())
        out_console.print(
            f"calibration {calibration_path} (mean next-token KL <= {cal.max_kl:g})"
            + (f": {names}" if names else ""),
            markup=False,
        )


def _questions(questions: tuple[str, ...], file: Path | None, stops: tuple[str, ...]) -> list[str]:
    """The questions from the arguments and ``--file``, each checked (and the stop strings)."""
    texts = list(questions) + (
        read_texts(file, "question", "questions") if file is not None else []
    )
    if not texts:
        raise DataError("no questions: pass them as arguments or with --file")
    for number, text in enumerate(texts, 1):
        check_text(text, f"question {number}")
        if not text.strip():
            raise DataError(
                f"question {number} is {text!r}, an empty question; give the text to ask"
            )
    for stop in stops:
        check_text(stop, "--stop")
    return texts


def _chosen_blocks(blocks: str | None, old_blocks: str | None) -> list[int] | None:
    """``--blocks`` as block numbers; ``--layers`` is its old name (one deprecation line)."""
    if old_blocks is None:
        return _blocks(blocks)
    if blocks is not None:
        raise DataError("--layers is the deprecated old name of --blocks: give only --blocks")
    deprecated_spelling("--layers", f"use --blocks {old_blocks} (block numbers 0..L-1)")
    return _blocks(old_blocks, "--layers")


def _generate_columns(
    nn_model: Any,
    prompts: list[str],
    alphas: list[float],
    direction: Any,
    layer: int | None,
    steer_mode: Any,
    settings: dict[str, Any],
) -> dict[float, Any]:
    """One generation per alpha. Alpha 0 is the plain column in every mode (as in ``lirefs
    evaluate``: no direction, no edit); ablate takes no alpha (its one column is alpha -1)."""
    from ..steer import GENERATE_BATCH_SIZE, generate, sweep
    from ..steer import plan as steering_plan

    common = {**settings, "batch_size": settings["batch_size"] or GENERATE_BATCH_SIZE}
    runs: dict[float, Any] = {}
    if 0.0 in alphas:
        runs[0.0] = generate(nn_model, prompts, **{**common, "blocks": None})
    steered = [a for a in alphas if a != 0.0]
    if steered and steer_mode.name == "ablate":
        where, blocks = common["positions"], common["blocks"]
        ablation = steering_plan(
            nn_model, direction, layer, None, "ablate", positions=where, blocks=blocks
        )
        keep = {k: v for k, v in common.items() if k not in ("positions", "blocks")}
        runs.update(sweep(nn_model, prompts, [ablation], **keep))
    elif steered:
        runs.update(
            sweep(
                nn_model,
                prompts,
                steered,
                direction=direction,
                layer=layer,
                mode=steer_mode.name,
                **common,
            )
        )
    return runs


def _runs(columns: list[tuple[str, float, Any]], scales: dict[str, float | None]) -> list[Any]:
    """The ``runs`` entry of ``--json``: each column's settings and outputs."""
    return [
        {
            "label": label,
            "alpha": a,
            "effective_scale": _json_number(scales[label]),
            "settings": out.settings,
            "outputs": [
                {"prompt": p, "text": t, "token_ids": ids, "stopped": s}
                for p, t, ids, s in zip(
                    out.prompts, out.texts, out.token_ids, out.stopped, strict=True
                )
            ],
        }
        for label, a, out in columns
    ]


def _print_table(
    title: str,
    texts: list[str],
    columns: list[tuple[str, float, Any]],
    scales: dict[str, float | None],
    steer_mode: Any,
    n_edited: int,
) -> None:
    """The questions and one column per alpha, then the effective scale of each column."""
    table = Table(title=title, show_lines=True)
    table.add_column("question", style="bold", overflow="fold")
    for label, _, _ in columns:
        table.add_column(label, overflow="fold")
    for row, question in enumerate(texts):
        table.add_row(question, *[out.texts[row].strip() for _, _, out in columns])
    out_console.print(table)
    shown = {label: s for label, s in scales.items() if s is not None}
    if any(a != 0.0 for _, a, _ in columns) and len(shown) == len(scales):
        what = steer_mode.scale_formula.format(n=n_edited)
        parts = ", ".join(f"{label}: {s:.3g}" for label, s in shown.items())
        out_console.print(f"effective scale of the r̂ component, {what}: {parts}")


def _json_number(value: float | None) -> float | str | None:
    """A float for JSON; ``inf`` (an overflowing effective scale) as the string ``"inf"``."""
    if value is None or math.isfinite(value):
        return value
    return "inf" if value > 0 else "-inf"
