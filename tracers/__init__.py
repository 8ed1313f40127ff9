"""tracers: small nnsight tracer blocks for the residual stream.

Use them INSIDE a ``with model.trace(...)`` or ``with model.generate(...)`` body of your own::

    import tracers

    with model.trace(prompts) as tr:
        states = tracers.last_token(model, range(tracers.n_layers(model) + 1)).save()
        tr.stop()

Residual index convention: ``l == HF output_hidden_states[l]`` (0 = embeddings, L = final norm).
The package imports only torch, math and the standard library, so it can be sent to an NDIF server
by value; blocks never call ``.save()`` except ``save_last_token``, whose name says it.
"""

from __future__ import annotations

from .edit import (
    EDITS,
    POSITIONS,
    PositionError,
    ablate,
    add,
    add_vector,
    apply_edit,
    paper_project,
    position_mask,
    remove_component,
    scale_component,
    scale_projection,
    unit_vector,
)
from .read import last_token, mean_last, save_last_token, token_states
from .residual import (
    ARCHITECTURES,
    LayerOutOfRangeError,
    Layout,
    ShapeError,
    TracerError,
    UnsupportedArchitectureError,
    block,
    blocks,
    check_layer,
    final_norm,
    layout_of,
    n_layers,
    residual,
    submodule,
)

#: Marker that lets lirefs tell this package from an unrelated PyPI package also named ``tracers``.
LIREFS_TRACERS = True

__all__ = [
    "ARCHITECTURES",
    "EDITS",
    "LIREFS_TRACERS",
    "POSITIONS",
    "LayerOutOfRangeError",
    "Layout",
    "PositionError",
    "ShapeError",
    "TracerError",
    "UnsupportedArchitectureError",
    "ablate",
    "add",
    "add_vector",
    "apply_edit",
    "block",
    "blocks",
    "check_layer",
    "final_norm",
    "last_token",
    "layout_of",
    "mean_last",
    "n_layers",
    "paper_project",
    "position_mask",
    "remove_component",
    "residual",
    "save_last_token",
    "scale_component",
    "scale_projection",
    "submodule",
    "token_states",
    "unit_vector",
]
