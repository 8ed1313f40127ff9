"""Checked inputs of the analysis: held-out states against a direction, per class or per layer.

Each check turns a user's ``torch.Tensor`` into a float64 numpy copy or raises the package's own
error naming the tensor, the shape expected and the fix.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from ..checks import residual_index
from ..direction import Direction
from ..errors import ActivationError, DataError, DirectionError, LayerError

__all__ = ["check_direction", "check_states", "class_states", "hash_states", "one_layer_states"]


def check_direction(direction: Any, name: str = "direction") -> Direction:
    """``direction`` itself if it is a ``lirefs.Direction``, else ``DirectionError``."""
    if not isinstance(direction, Direction):
        raise DirectionError(
            f"{name} must be a lirefs.Direction, got {type(direction).__name__}; build one with "
            "Direction.from_activations or Direction.load"
        )
    return direction


def check_states(acts: Any, name: str, direction: Direction) -> np.ndarray:
    """Check ``[n, L + 1, d_model]`` states (n >= 2) against the direction; float64 numpy copy."""
    if not isinstance(acts, torch.Tensor):
        raise ActivationError(
            f"{name} must be a torch.Tensor [n, L + 1, d_model], got {type(acts).__name__}"
        )
    if acts.dim() != 3:
        raise ActivationError(
            f"{name} must be [n, L + 1, d_model] = [n, {direction.n_layers + 1}, "
            f"{direction.d_model}], got shape {tuple(acts.shape)}"
        )
    if tuple(acts.shape[1:]) != tuple(direction.vectors.shape):
        raise DirectionError(
            f"{name} {tuple(acts.shape)} does not match the direction's [L + 1, d_model] = "
            f"{tuple(direction.vectors.shape)}; use states collected with the model the direction "
            "was built on, at all layers"
        )
    if acts.shape[0] < 2:
        raise DataError(
            f"{name} has {acts.shape[0]} prompt(s); each class needs at least 2 held-out prompts "
            "(empty or one-class test data cannot be scored)"
        )
    if not torch.isfinite(acts).all():
        raise ActivationError(f"{name} contains NaN or inf; recollect it (try dtype='float32')")
    return acts.detach().to("cpu", torch.float64).numpy()


def one_layer_states(acts: Any, name: str, direction: Direction, layer: int) -> np.ndarray:
    """``[n, d_model]`` float64 states at ``layer`` from ``[n, L + 1, d_model]`` or ``[n, d_model]``."""
    if not isinstance(acts, torch.Tensor):
        raise ActivationError(f"{name} must be a torch.Tensor, got {type(acts).__name__}")
    if acts.dim() == 3:
        if tuple(acts.shape[1:]) != tuple(direction.vectors.shape):
            raise DirectionError(
                f"{name} {tuple(acts.shape)} does not match the direction's [L + 1, d_model] = "
                f"{tuple(direction.vectors.shape)}"
            )
        acts = acts[:, layer]
    if acts.dim() != 2 or acts.shape[1] != direction.d_model:
        raise ActivationError(
            f"{name} must be [n, {direction.n_layers + 1}, {direction.d_model}] or "
            f"[n, {direction.d_model}], got {tuple(acts.shape)}"
        )
    if acts.shape[0] == 0:
        raise DataError(f"{name} is empty: pass at least one state")
    if not torch.isfinite(acts).all():
        raise ActivationError(f"{name} contains NaN or inf; recollect it")
    return acts.detach().to("cpu", torch.float64).numpy()


def class_states(acts_r: Any, acts_m: Any, layer: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Both classes' ``[n, d_model]`` float64 states at ``layer`` (no direction needed).

    Args:
        acts_r: ``[n_r, L + 1, d_model]`` (with ``layer``) or ``[n_r, d_model]`` reasoning states.
        acts_m: ``[n_m, L + 1, d_model]`` or ``[n_m, d_model]`` memory states.
        layer: residual index to take from 3-D states; ``None`` for 2-D states.
    """
    out = []
    for name, acts in (("acts_r", acts_r), ("acts_m", acts_m)):
        if not isinstance(acts, torch.Tensor):
            raise ActivationError(f"{name} must be a torch.Tensor, got {type(acts).__name__}")
        if acts.dim() == 3:
            if layer is None:
                raise LayerError(
                    f"{name} is [n, L + 1, d_model]: pass layer= (0..{acts.shape[1] - 1})"
                )
            acts = acts[:, residual_index(layer, acts.shape[1] - 1, "these states have")]
        if acts.dim() != 2:
            raise ActivationError(
                f"{name} must be [n, L + 1, d_model] or [n, d_model], got {tuple(acts.shape)}"
            )
        if acts.shape[0] == 0:
            raise DataError(f"{name} is empty: each class needs at least one state")
        if not torch.isfinite(acts).all():
            raise ActivationError(f"{name} contains NaN or inf; recollect it")
        out.append(acts.detach().to("cpu", torch.float64).numpy())
    if out[0].shape[1] != out[1].shape[1]:
        raise ActivationError(
            f"acts_r has d_model {out[0].shape[1]} but acts_m has {out[1].shape[1]}; use states of "
            "the same model"
        )
    return out[0], out[1]


def hash_states(*arrays: np.ndarray) -> str:
    """16 hex digits of SHA-256 over the arrays' shapes and float64 bytes: names a test set."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
