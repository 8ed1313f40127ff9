"""Tracer blocks that read residual states inside a ``with model.trace(...)`` body.

Imports only torch and the standard library (the blocks travel to the NDIF server by value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .residual import Layout, ShapeError, check_layer, layout_of, n_layers, residual

__all__ = ["last_token", "mean_last", "save_last_token", "token_states"]


def _take(hidden: torch.Tensor, index: torch.Tensor | int) -> torch.Tensor:
    """``hidden[b, index[b], :]`` for each row: ``[batch, tokens, d] -> [batch, d]``.

    Raises:
        ShapeError: ``hidden`` is not 3-D, or ``index`` is neither an int nor a ``[batch]`` tensor.
    """
    if hidden.dim() != 3:
        raise ShapeError(
            f"expected a [batch, tokens, d_model] residual, got shape {tuple(hidden.shape)}; "
            "pass a layout whose blocks take the residual stream as their first input"
        )
    if isinstance(index, int):
        return hidden[:, index, :]
    if not isinstance(index, torch.Tensor) or index.dim() != 1 or index.shape[0] != hidden.shape[0]:
        got = tuple(index.shape) if isinstance(index, torch.Tensor) else repr(type(index))
        raise ShapeError(
            f"index must be an int or a [batch] tensor of {hidden.shape[0]} token positions, "
            f"got {got}"
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

    Raises:
        LayerOutOfRangeError: a layer outside ``0..L``.
        ShapeError: a repeated layer, a residual that is not ``[batch, tokens, d_model]``, or an
            ``index`` that is not an int or a ``[batch]`` tensor.
    """
    lay = layout_of(model, layout)
    n = n_layers(model, lay)
    wanted = [check_layer(layer, n) for layer in layers]
    if len(set(wanted)) != len(wanted):
        raise ShapeError(f"layers {list(layers)} repeat an index; ask for each layer once")
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
    ``device_map`` are moved there). Raises what ``token_states`` raises, and ``ShapeError`` for an
    empty ``layers``. Does not call ``.save()``: the caller decides what comes back
    (on NDIF, only saved values travel).

    Example::

        with model.trace(prompts) as tr:
            states = tracers.last_token(model, range(L + 1)).save()
            tr.stop()   # nothing after the final norm (e.g. the LM head) is computed
    """
    parts = token_states(model, layers, index, layout)
    if not parts:
        raise ShapeError("layers is empty; ask for at least one residual index 0..L")
    device = parts[0].device
    return torch.stack([p.to(device) for p in parts], dim=1)


def save_last_token(
    model: Any,
    layers: Sequence[int],
    index: torch.Tensor | int = -1,
    layout: Layout | None = None,
) -> torch.Tensor:
    """``last_token(...)`` marked with ``.save()`` so it is available after the trace exits."""
    return last_token(model, layers, index, layout).save()  # type: ignore[attr-defined]


def mean_last(
    model: Any,
    layers: Sequence[int],
    k: int,
    mask: torch.Tensor,
    layout: Layout | None = None,
) -> torch.Tensor:
    """Mean residual state over each row's last ``k`` real tokens: ``[batch, len(layers), d_model]``.

    Meant for left-padded batches (a row's real tokens are its last ones); positions where
    ``mask`` is 0 are never averaged, so a row with fewer than ``k`` real tokens averages only
    those it has (callers that need exactly ``k`` check prompt lengths first). The sum runs in
    float32 and the result comes back in the layer's dtype, on the first requested layer's
    device. Does not call ``.save()``.

    Args:
        model: the nnsight model whose trace is open.
        layers: residual indices ``l`` (``hidden_states[l]``), any order, no repeats.
        k: tokens to average, a whole number >= 1.
        mask: the batch's ``attention_mask``, ``[batch, tokens]`` (1 = real token, 0 = pad).
        layout: module paths for an architecture ``tracers`` does not know.

    Raises:
        LayerOutOfRangeError: a layer outside ``0..L``.
        ShapeError: an empty or repeated ``layers``, ``k`` not a whole number >= 1 or longer than
            the batch, or a ``mask`` whose shape is not the residual's ``[batch, tokens]``.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ShapeError(f"k must be a whole number of tokens >= 1, got {k!r}")
    lay = layout_of(model, layout)
    n = n_layers(model, lay)
    wanted = [check_layer(layer, n) for layer in layers]
    if not wanted:
        raise ShapeError("layers is empty; ask for at least one residual index 0..L")
    if len(set(wanted)) != len(wanted):
        raise ShapeError(f"layers {list(layers)} repeat an index; ask for each layer once")
    got: dict[int, torch.Tensor] = {}
    for layer in sorted(wanted):  # modules must be touched in forward order
        hidden = residual(model, layer, lay)
        if hidden.dim() != 3:
            raise ShapeError(
                f"expected a [batch, tokens, d_model] residual, got shape {tuple(hidden.shape)}"
            )
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(hidden.shape[:2]):
            got_shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask)
            raise ShapeError(
                f"mask must be the batch's [batch, tokens] attention mask "
                f"{tuple(hidden.shape[:2])}, got {got_shape}"
            )
        if k > hidden.shape[1]:
            raise ShapeError(f"k={k} is longer than the batch's {hidden.shape[1]} tokens")
        weight = mask[:, -k:].to(device=hidden.device, dtype=torch.float32).unsqueeze(-1)
        total = (hidden[:, -k:, :].to(torch.float32) * weight).sum(dim=1)
        got[layer] = (total / weight.sum(dim=1).clamp_min(1.0)).to(hidden.dtype)
    device = got[wanted[0]].device
    return torch.stack([got[layer].to(device) for layer in wanted], dim=1)
