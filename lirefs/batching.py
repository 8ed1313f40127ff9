"""Turning prompts into model inputs: tokenize, sort by length, group into batches, left-pad.

Every module that sends prompts through a model (collection, steered generation, evaluation) batches
them here, so padding, position ids and the token budget mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import DataError

__all__ = [
    "DEFAULT_TOKEN_BUDGET",
    "Batch",
    "group_batches",
    "input_device",
    "pad_id",
    "pad_left",
    "prompt_batches",
    "token_lengths",
    "tokenize",
]

#: Padded tokens per batch when no batch size is given (``batch_size=None``). On CPU, SmolLM2 on
#: the built-in prompts ran fastest at 512-1,024 (``benchmarks/NOTES.md``); on a GPU a larger
#: budget keeps the device busier.
DEFAULT_TOKEN_BUDGET = 1024


@dataclass(frozen=True)
class Batch:
    """One batch of prompts, ready for a trace.

    Attributes:
        index: positions of these prompts in the caller's list, ``[b]``.
        inputs: ``input_ids``, ``attention_mask`` and ``position_ids``, each ``[b, t]``, left-padded.
    """

    index: list[int]
    inputs: dict[str, torch.Tensor]


def tokenize(model: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt, special tokens included, as the model's tokenizer makes them."""
    tok = model.tokenizer
    return [list(ids) for ids in tok(list(prompts), add_special_tokens=True)["input_ids"]]


def token_lengths(model: Any, prompts: Sequence[str]) -> list[int]:
    """Token count of each prompt as the model's tokenizer sees it (with special tokens).

    Args:
        model: a model from ``lirefs.load_model`` (anything with ``.tokenizer``) or a tokenizer.
        prompts: ``[n]`` texts exactly as they enter the model.

    Returns:
        ``[n]`` token counts, for the layer report's length baselines.
    """
    tok = getattr(model, "tokenizer", model)
    if not callable(tok):
        raise DataError(
            f"expected a model with .tokenizer or a tokenizer, got {type(model).__name__}"
        )
    if isinstance(prompts, str):
        raise DataError("prompts must be a list of strings, got a single string; wrap it in a list")
    return [len(ids) for ids in tok(list(prompts), add_special_tokens=True)["input_ids"]]


def pad_id(model: Any) -> int:
    """The id left padding uses: the tokenizer's pad token, else its EOS, else 0."""
    pid = model.tokenizer.pad_token_id
    if pid is None:
        pid = model.tokenizer.eos_token_id or 0
    return int(pid)


def pad_left(ids: list[list[int]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Left-pad token lists into ``input_ids``/``attention_mask``/``position_ids``, each ``[b, t]``.

    Position ids count real tokens only (``mask.cumsum - 1``), so a padded row sees the same
    positions as it would alone: this matters for absolute position embeddings (GPT-2) and keeps
    RoPE models within rounding of the unpadded result.
    """
    t = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), t), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), t), dtype=torch.long)
    for row, x in enumerate(ids):
        if x:
            input_ids[row, t - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[row, t - len(x) :] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids}


def prompt_batches(
    model: Any,
    prompts: Sequence[str],
    batch_size: int | None,
    *,
    token_ids: list[list[int]] | None = None,
    sort_by_length: bool = True,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    max_rows: int | None = None,
) -> Iterator[Batch]:
    """Split ``prompts`` into left-padded batches, longest first when ``sort_by_length``.

    Sorting by token length keeps padding (wasted compute) low; ``Batch.index`` maps rows back.
    With ``batch_size=None`` a batch takes as many prompts as fit in ``token_budget`` padded tokens
    (rows x longest row), so short prompts go in large batches and long ones in small batches,
    and never more than ``max_rows`` prompts.
    """
    ids = token_ids if token_ids is not None else tokenize(model, prompts)
    order = list(range(len(ids)))
    if sort_by_length:
        order.sort(key=lambda i: -len(ids[i]))
    pid = pad_id(model)
    for idx in group_batches(order, ids, batch_size, token_budget, max_rows):
        yield Batch(idx, pad_left([ids[i] for i in idx], pid))


def group_batches(
    order: list[int],
    ids: list[list[int]],
    batch_size: int | None,
    token_budget: int,
    max_rows: int | None = None,
) -> Iterator[list[int]]:
    """Indices of ``order`` grouped into batches: ``batch_size`` each, or by padded-token budget.

    With ``batch_size=None`` a group grows while ``rows x longest row <= token_budget`` and it has
    fewer than ``max_rows`` rows; ``order`` should be longest first so the longest row is known.
    """
    if batch_size is not None:
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]
        return
    batch: list[int] = []
    longest = 0
    for i in order:
        width = max(longest, len(ids[i]))
        full = max_rows is not None and len(batch) >= max_rows
        if batch and (full or width * (len(batch) + 1) > token_budget):
            yield batch
            batch, width = [], len(ids[i])
        batch.append(i)
        longest = width
    if batch:
        yield batch


def input_device(model: Any) -> torch.device:
    """The device a trace's inputs go to: the first parameter's, or CPU for meta / no parameters."""
    try:
        device = next(model._module.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")
    return torch.device("cpu") if device.type == "meta" else device
