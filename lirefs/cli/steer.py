"""``lirefs steer``: greedy generations side by side, one column per alpha."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import DataError
from ._common import (
    CONTEXT_SETTINGS,
    check_text,
    echo_json,
    handle_errors,
    json_option,
    load,
    model_options,
    parse_alpha_list,
    remote_value,
)

__all__ = ["command"]


def _read_file(path: Path) -> list[str]:
    """Questions from a text file (one per line) or JSONL (a ``"question"`` field per line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} holds no questions; write one per line or JSONL with 'question'")
    if not lines[0].lstrip().startswith("{"):
        return lines
    out = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise DataError(f'{path} line {number} has no string "question" field')
        out.append(row["question"])
    return out


def _positions(value: str) -> str | list[int]:
    if value in ("all", "prompt", "generated"):
        return value
    try:
        return [int(p) for p in value.split(",")]
    except ValueError:
        raise DataError(
            f"--positions {value!r} is not all, prompt, generated or a comma list of negative ints"
        ) from None


def _blocks(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        if "-" in value.strip("-") and "," not in value:
            lo, hi = value.split("-")
            return list(range(int(lo), int(hi) + 1))
        return [int(p) for p in value.split(",")]
    except ValueError:
        raise DataError(
            f"--layers {value!r} must look like 10-20 or 3,4,5 (block numbers)"
        ) from None


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
    help="Scale; repeat it or give a comma list. Default 0,0.1 (plain next to steered).",
)
@click.option(
    "--mode",
    type=click.Choice(["project", "project-calibrated", "add", "ablate"]),
    default="project",
    show_default=True,
    help="project: the paper (every block); project-calibrated: alpha is the total scale; "
    "add: x + alpha r̂ at --layer; ablate: remove r̂ everywhere.",
)
@click.option(
    "--positions",
    default="all",
    show_default=True,
    help="all, prompt, generated, or negative prompt-token indices like -1,-2.",
)
@click.option("--layers", "blocks", default=None, help="Blocks to edit, e.g. 10-20 (default all).")
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
    mode: str,
    positions: str,
    blocks: str | None,
    max_new_tokens: int,
    stops: tuple[str, ...],
    raw: bool,
    chat_template: bool,
    model: str,
    device: str | None,
    dtype: str | None,
    device_map: str | None,
    remote: bool,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Generate greedily with and without steering, side by side.

    Each alpha is one column; alpha 0 is plain generation. In the paper's mode the component along
    the direction compounds over the L blocks to about (1 + alpha)^L, printed below the table.

    \b
    Examples:
      lirefs steer "What is 17 * 23?" -d liref.safetensors -l 15 -a -0.1,0,0.1
      lirefs steer -f questions.jsonl -d liref.safetensors -l 15 --mode ablate --json
      lirefs steer "Who wrote Hamlet?" -d liref.safetensors -l 15 \\
          --mode project-calibrated -a 0.5 -n 32
    """
    from ..data import format_prompt
    from ..direction import Direction
    from ..models import model_info
    from ..steer import GENERATE_BATCH_SIZE, effective_scale, generate

    texts = list(questions) + (_read_file(file) if file is not None else [])
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
    alphas = parse_alpha_list(alpha) or ([0.0] if direction_path is None else [0.0, 0.1])
    where = _positions(positions)
    chosen_blocks = _blocks(blocks)

    if raw and chat_template:
        raise DataError("--raw and --chat-template exclude each other: pick one prompt format")
    nn_model = load(model, device, dtype, device_map, remote)
    tok = nn_model.tokenizer
    prompts = (
        texts
        if raw
        else [format_prompt(q, chat_template=chat_template, tokenizer=tok) for q in texts]
    )
    direction = Direction.load(direction_path, model=nn_model) if direction_path else None
    if layer is None and direction is not None:
        layer = direction.chosen_layer  # None still raises a clear error in generate
    info = model_info(nn_model)
    common: dict[str, Any] = {
        "direction": direction,
        "layer": layer,
        "positions": where,
        "layers": chosen_blocks,
        "max_new_tokens": max_new_tokens,
        "stop": list(stops),
        "remote": remote_value(remote),
        "batch_size": batch_size if batch_size is not None else GENERATE_BATCH_SIZE,
    }
    columns: list[tuple[str, float, Any]] = []
    if mode == "ablate":
        plain = generate(nn_model, prompts, **{**common, "direction": None, "layer": None})
        columns.append(("plain", 0.0, plain))
        columns.append(("ablate", -1.0, generate(nn_model, prompts, mode="ablate", **common)))
    else:
        swept = generate(nn_model, prompts, alpha=alphas, mode=mode, **common)
        columns.extend((f"alpha {a:g}", a, out) for a, out in swept.items())

    n_edited = info.n_layers if chosen_blocks is None else len(chosen_blocks)
    scales = {}
    for label, a, _ in columns:
        if mode == "project":
            scales[label] = effective_scale(a, n_edited)
        elif mode == "project-calibrated":
            scales[label] = 1.0 + a
        elif mode == "ablate":
            scales[label] = 1.0 if label == "plain" else 0.0

    if as_json:
        echo_json(
            {
                "model": info.name,
                "mode": mode,
                "layer": layer,
                "positions": where,
                "layers": chosen_blocks,
                "max_new_tokens": max_new_tokens,
                "runs": [
                    {
                        "label": label,
                        "alpha": a,
                        "effective_scale": scales.get(label),
                        "settings": out.settings,
                        "outputs": [
                            {"prompt": p, "text": t, "token_ids": ids, "stopped": s}
                            for p, t, ids, s in zip(
                                out.prompts, out.texts, out.token_ids, out.stopped, strict=True
                            )
                        ],
                    }
                    for label, a, out in columns
                ],
            }
        )
        return

    title = f"{info.name}: mode {mode}" + (f", direction of layer {layer}" if direction else "")
    table = Table(title=title, show_lines=True)
    table.add_column("question", style="bold", overflow="fold")
    for label, _, _ in columns:
        table.add_column(label, overflow="fold")
    for row, question in enumerate(texts):
        table.add_row(question, *[out.texts[row].strip() for _, _, out in columns])
    out_console = Console()
    out_console.print(table)
    if scales and mode != "ablate":
        what = "(1 + alpha)^" + str(n_edited) if mode == "project" else "1 + alpha (calibrated)"
        parts = ", ".join(f"{label}: {s:.3g}" for label, s in scales.items())
        out_console.print(f"effective scale of the r̂ component, {what}: {parts}")
