"""Where a residual index sits in other programs: HF ``hidden_states``, llama.cpp's control-vector
tensors and lm-eval's ``steered`` hookpoints.

Residual index ``l`` (``l == hidden_states[l]``) is the output of block ``l - 1``; ``l = 0`` is the
embeddings, which no block outputs, and ``l = L`` the final norm's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tracers

from .errors import ArchitectureError

__all__ = ["layer_map", "lm_eval_hookpoint"]

_BASE_PREFIX = {"gpt2": "transformer", "gpt_neox": "gpt_neox"}


def lm_eval_hookpoint(architecture: str | None, layer: int, n_layers: int) -> str:
    """The module name (inside ``model.base_model``) whose output is residual index ``layer``."""
    layout = tracers.ARCHITECTURES.get(str(architecture))
    if layout is None:
        known = ", ".join(sorted(tracers.ARCHITECTURES))
        raise ArchitectureError(
            f"architecture {architecture!r} has no known module names for lm-eval (known: "
            f"{known}); the direction's metadata must name the model it was built on"
        )
    prefix = _BASE_PREFIX.get(str(architecture), "model") + "."
    path = layout.final_norm if layer == n_layers else f"{layout.blocks}.{layer - 1}"
    return path[len(prefix) :] if path.startswith(prefix) else path


def layer_map(n_layers: int, layers: Sequence[int], architecture: str | None) -> dict[int, Any]:
    """Where each residual index ``l`` sits in other programs: ``hidden_states[l]``, the output of
    block ``l - 1`` (``None`` for the embeddings), llama.cpp's control-vector tensor
    ``direction.{l-1}`` and lm-eval's ``steered`` hookpoint (``None`` for an unknown family)."""
    out: dict[int, Any] = {}
    for layer in layers:
        try:
            hook: str | None = lm_eval_hookpoint(architecture, layer, n_layers) if layer else None
        except ArchitectureError:
            hook = None
        out[int(layer)] = {
            "hidden_states": int(layer),
            "block_output": int(layer) - 1 if layer else None,
            "llama_cpp_tensor": f"direction.{layer - 1}" if layer else None,
            "lm_eval_hookpoint": hook,
        }
    return out
