"""Control directions for a steering result: what any direction of the same size would do.

A steering effect is evidence about the direction only if a direction that carries no
reasoning/memory information does less. Two kinds of control, each a ``[d_model]`` float64 vector
used exactly like the real direction (same mode, layer, alphas, items):

* ``random_directions(d_model, n, seed)``: ``n`` unit vectors drawn uniformly on the sphere
  (normalised standard Gaussians from ``torch.Generator().manual_seed(seed)``; control ``i`` is
  the ``i``-th draw, so the same seed gives the same controls, and ``n = 3`` starts with the two of
  ``n = 2``).
* ``shuffled_direction(reasoning_acts, memory_acts, layer, seed)``: the difference of class means at
  ``layer`` after the class labels have been permuted at random (class sizes kept): a direction
  built by the same recipe from the same prompts, with the labels' information removed.

In projection modes the edit ``x + alpha (x·u) u`` only depends on ``u``'s direction; in ``"add"``
mode ``alpha`` is the added length, so unit controls are matched in size too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch

from ..checks import residual_index
from ..errors import ActivationError, DataError

__all__ = [
    "ControlDirection",
    "control_directions",
    "random_directions",
    "shuffled_direction",
    "unit_hash",
]


@dataclass(frozen=True)
class ControlDirection:
    """One control: its name, ``[d_model]`` float64 vector and how it was made (for metadata).

    Attributes:
        name: ``"random-0"``, ``"random-1"``, ... or ``"shuffled"``.
        vector: ``[d_model]`` float64 (unit length for random controls; a raw mean difference for
            the shuffled-label control, normalised where it is applied, like the real one).
        recipe: ``{"kind": "random" | "shuffled", "seed": ..., "index"/"layer": ...,
            "unit_hash": ...}``.
    """

    name: str
    vector: torch.Tensor
    recipe: dict[str, Any]


def unit_hash(vector: torch.Tensor) -> str:
    """First 16 hex digits of the sha256 of ``vector / ||vector||`` in float64 (identifies a
    direction in metadata, whatever its length)."""
    v = vector.detach().to("cpu", torch.float64)
    v = v / v.norm()
    return hashlib.sha256(v.numpy().tobytes()).hexdigest()[:16]


def random_directions(d_model: int, n: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` seeded random unit vectors ``[d_model]`` (float64), uniform on the sphere.

    Raises:
        DataError: ``d_model < 1`` or ``n < 0``.
    """
    if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
        raise DataError(f"d_model must be an int >= 1, got {d_model!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"the number of random controls must be an int >= 0, got {n!r}")
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(n):
        v = torch.randn(d_model, generator=g, dtype=torch.float64)
        out.append(v / v.norm())
    return out


def shuffled_direction(
    reasoning_acts: torch.Tensor, memory_acts: torch.Tensor, layer: int, seed: int = 0
) -> torch.Tensor:
    """Difference of class means at ``layer`` after permuting the class labels (sizes kept).

    Args:
        reasoning_acts: ``[n_r, L + 1, d_model]`` activations of the reasoning prompts.
        memory_acts: ``[n_m, L + 1, d_model]`` activations of the memory prompts.
        layer: residual index ``0..L`` (the real direction's source layer).
        seed: seed of the permutation.

    Returns:
        ``[d_model]`` float64: ``mean(pseudo-reasoning) - mean(pseudo-memory)``.

    Raises:
        ActivationError: shapes that are not ``[n, L + 1, d_model]`` or do not match each other,
            or fewer than two prompts in a class.
        LayerError: ``layer`` outside ``0..L``.
    """
    for name, acts in (("reasoning_acts", reasoning_acts), ("memory_acts", memory_acts)):
        if not isinstance(acts, torch.Tensor) or acts.dim() != 3:
            raise ActivationError(
                f"{name} must be a [n_prompts, n_layers + 1, d_model] tensor, got "
                f"{getattr(acts, 'shape', type(acts).__name__)}"
            )
        if acts.shape[0] < 2:
            raise ActivationError(f"{name} has {acts.shape[0]} prompts; a shuffle needs >= 2")
    if reasoning_acts.shape[1:] != memory_acts.shape[1:]:
        raise ActivationError(
            f"reasoning_acts {tuple(reasoning_acts.shape)} and memory_acts "
            f"{tuple(memory_acts.shape)} differ in layers or width"
        )
    layer = residual_index(layer, int(reasoning_acts.shape[1]) - 1, "these states have")
    pooled = torch.cat([reasoning_acts[:, layer], memory_acts[:, layer]]).to(torch.float64)
    n_r = int(reasoning_acts.shape[0])
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(pooled.shape[0], generator=g)
    return pooled[perm[:n_r]].mean(0) - pooled[perm[n_r:]].mean(0)


def control_directions(
    d_model: int,
    n_random: int,
    *,
    seed: int = 0,
    activations: tuple[torch.Tensor, torch.Tensor] | None = None,
    layer: int | None = None,
) -> list[ControlDirection]:
    """The controls of one evaluation: ``n_random`` random unit vectors, plus the shuffled-label
    direction at ``layer`` when ``activations`` ``(reasoning_acts, memory_acts)`` are given.

    Raises:
        DataError: ``activations`` given without ``layer``, or not a pair.
    """
    out = [
        ControlDirection(
            f"random-{i}",
            v,
            {"kind": "random", "seed": int(seed), "index": i, "unit_hash": unit_hash(v)},
        )
        for i, v in enumerate(random_directions(d_model, n_random, seed))
    ]
    if activations is not None:
        if not isinstance(activations, (tuple, list)) or len(activations) != 2:
            raise DataError(
                "control_activations must be a pair (reasoning_acts, memory_acts), got "
                f"{type(activations).__name__}"
            )
        if layer is None:
            raise DataError("a shuffled-label control needs the real direction's layer")
        v = shuffled_direction(activations[0], activations[1], layer, seed)
        if v.shape != (d_model,):
            raise ActivationError(
                f"control_activations have width {v.shape[0]}, the model's d_model is {d_model}"
            )
        recipe = {
            "kind": "shuffled",
            "seed": int(seed),
            "layer": int(layer),
            "n_reasoning": int(activations[0].shape[0]),
            "n_memory": int(activations[1].shape[0]),
            "unit_hash": unit_hash(v),
        }
        out.append(ControlDirection("shuffled", v, recipe))
    return out
