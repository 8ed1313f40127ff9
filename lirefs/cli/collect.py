"""``lirefs collect``: residual states of a question set's train and test halves."""

from __future__ import annotations

from pathlib import Path

import click

from ..console import console
from ._common import (
    CONTEXT_SETTINGS,
    LIMIT,
    ModelArgs,
    check_output,
    check_split_size,
    echo_json,
    handle_errors,
    holds_output_lock,
    json_option,
    model_options,
    split_options,
)


@click.command("collect", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--set",
    "data_set",
    default="builtin",
    show_default=True,
    help="'builtin', 'reasoning-gym', or a JSONL/CSV file with question and label columns.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Activation file to write (.safetensors).",
)
@split_options
@click.option(
    "--limit",
    type=LIMIT,
    default=None,
    help="Use at most this many questions per class (quick runs; the held-out half needs 5 per "
    "class, 16 with the built-in set and the default --test-fraction).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Stream chunks here; a rerun resumes where it stopped.",
)
@click.option(
    "--chat-template", is_flag=True, help="Wrap questions in the tokenizer's chat template."
)
@click.option(
    "--read",
    default="last",
    show_default=True,
    help="Where each prompt's state is read: 'last' (the paper), 'question_end' (the token before "
    "the suffix every prompt shares, e.g. a chat template's closing tokens) or 'mean-last-K' (mean "
    "of the last K tokens, e.g. mean-last-4).",
)
@model_options
@json_option
@handle_errors
@holds_output_lock
def command(
    data_set: str,
    out: Path,
    test_fraction: float,
    seed: int,
    limit: int | None,
    cache_dir: Path | None,
    chat_template: bool,
    read: str,
    model_args: ModelArgs,
    as_json: bool,
) -> None:
    """Collect last-token residual states at every layer (l == HF hidden_states[l]).

    \b
    Example:
      lirefs collect --set builtin --out acts.safetensors
      lirefs collect --set builtin --chat-template --read question_end -o acts.safetensors
      lirefs collect --set my_questions.jsonl --model meta-llama/Llama-3.1-70B --remote -o acts.safetensors
    """
    from .. import data
    from ..pipeline import collect_split
    from ..reading import parse_read

    check_output(out)
    parse_read(read)  # a bad spelling fails before the model loads
    sets = data.load(data_set)
    check_split_size(sets, test_fraction=test_fraction, seed=seed, limit=limit)
    if limit is not None:
        sets = sets.subset(limit, seed=seed)
    lm = model_args.load()
    split = collect_split(
        lm,
        sets,
        test_fraction=test_fraction,
        seed=seed,
        batch_size=model_args.batch_size,
        remote=model_args.remote,
        cache_dir=cache_dir,
        chat_template=chat_template,
        read=read,
    )
    split.save(out)
    counts = split.metadata["data"]["counts"]
    if as_json:
        echo_json(
            {"out": str(out), "counts": counts, "shape": list(split.train_reasoning.shape[1:])}
        )
        return
    console.print(
        f"wrote [bold]{out}[/]: {counts} states of shape "
        f"[L + 1, d_model] = {list(split.train_reasoning.shape[1:])}"
    )
