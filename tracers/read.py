"""Tracer blocks that read residual states inside a ``with model.trace(...)`` body.

Imports only torch and the standard library (the blocks travel to the NDIF server by value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .residual import Layout, check_layer, layout_of, n_layers, residual

__all__ = ["last_token", "save_last_token", "token_states"]


def _take(hidden: torch.Tensor, index: torch.Tensor | int) -> torch.Tensor:
    """``hidden[b, index[b], :]`` for each row: ``[batch, tokens, d] -> [batch, d]``."""
    assert hidden.dim() == 3, (
        f"expected a [batch, tokens, d_model] residual, got {tuple(hidden.shape)}"
    )
    if isinstance(index, int):
        return hidden[:, index, :]
    assert index.dim() == 1 and index.shape[0] == hidden.shape[0], (
        f"index must be [batch]={hidden.shape[0]}, got {tuple(index.shape)}"
    )
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, index.to(hidden.device), :]


def token_states(
    model: Any,
    layers: Sequence[int],
    index: torch.Tensor | int = -1,
    layout: Layout | None = None,
) -> list[torch.Tensor]:
    """Residual states at one token per row, for each requested layer.

    Args:
        model: the nnsight model whose trace is open.
        layers: residual indices ``l`` (``hidden_states[l]``), any order, no repeats.
        index: token position per row: an int for all rows (``-1``, the last token, is right for
            left-padded batches) or a ``[batch]`` LongTensor (e.g. the last real token of a
            right-padded batch, ``attention_mask.sum(1) - 1``).
        layout: module paths for an architecture ``tracers`` does not know.

    Returns:
        One ``[batch, d_model]`` tensor per entry of ``layers``, in the order given, on the device
        (and in the dtype) of that layer.
    """
    lay = layout_of(model, layout)
    n = n_layers(model, lay)
    wanted = [check_layer(layer, n) for layer in layers]
    assert len(set(wanted)) == len(wanted), f"repeated layers in {list(layers)}"
    got: dict[int, torch.Tensor] = {}
    for layer in sorted(wanted):  # modules must be touched in forward order
        got[layer] = _take(residual(model, layer, lay), index)
    return [got[layer] for layer in wanted]


def last_token(
    model: Any,
    layers: Sequence[int],
    index: torch.Tensor | int = -1,
    layout: Layout | None = None,
) -> torch.Tensor:
    """Stacked residual states at the last real token: ``[batch, len(layers), d_model]``.

    The stack lives on the device of the first requested layer (layers split across GPUs by a
    ``device_map`` are moved there). Does not call ``.save()``: the caller decides what comes back
    (on NDIF, only saved values travel).

    Example::

        with model.trace(prompts) as tr:
            states = tracers.last_token(model, range(L + 1)).save()
            tr.stop()   # nothing after the final norm (e.g. the LM head) is computed
    """
    parts = token_states(model, layers, index, layout)
    device = parts[0].device
    stacked = torch.stack([p.to(device) for p in parts], dim=1)
    assert stacked.dim() == 3 and stacked.shape[1] == len(parts)
    return stacked


def save_last_token(
    model: Any,
    layers: Sequence[int],
    index: torch.Tensor | int = -1,
    layout: Layout | None = None,
) -> torch.Tensor:
    """``last_token(...)`` marked with ``.save()`` so it is available after the trace exits."""
    return last_token(model, layers, index, layout).save()  # type: ignore[attr-defined]
