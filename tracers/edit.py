"""Tracer blocks that edit the residual stream inside a ``with model.trace()/generate()`` body.

Two levels:

* tensor edits, pure functions of a ``[batch, tokens, d_model]`` tensor that return the edited
  tensor: ``scale_component`` (``x + alpha (x·u) u``), ``remove_component`` (``alpha = -1``) and
  ``add_vector`` (``x + c v``);
* model-level blocks that read a module value, edit it and assign it back, touching modules in
  forward order: ``add`` (one residual index), ``scale_projection`` (residual indices),
  ``paper_project`` (the paper's intervention: in every chosen block, the block input, then the first
  element of the attention output tuple, then the MLP output) and ``ablate`` (``paper_project`` with
  ``alpha = -1``); ``apply_edit`` runs one of them by name (``EDITS``), which is how
  ``lirefs.steer`` applies a steering plan inside any trace.

Layer words: ``layer``/``layers`` are residual indices ``0..L`` (``l == HF hidden_states[l]``);
``blocks`` are decoder block numbers ``0..L-1`` (block ``b`` reads residual index ``b``).

Positions. ``positions`` is ``"all"``, ``"prompt"``, ``"generated"`` or a list of token indices.
Which tokens a forward pass carries depends on the pass, so each edit takes the ``step`` of the
generation loop (``for step in tracer.all():`` hands it out; the cache makes step 0 the prompt pass
over every prompt token and each later step a pass over the one token generated last).
``step=None`` means a plain ``model.trace`` pass, treated like the prompt pass:

============  ============================  ==================================
positions     prompt pass (step 0 / None)   generated steps (step >= 1)
============  ============================  ==================================
"all"         every token                   the new token
"prompt"      every token                   nothing
"generated"   nothing                       the new token
[i, j, ...]   tokens i, j (index the        nothing
              token axis; negative counts
              from the end)
============  ============================  ==================================

Under left padding the last prompt token is index ``-1`` in every row. The last generated token is
never fed back, so it is never edited. Pad positions are edited like any other (the attention mask
hides them), as in the paper's code.

Directions are cast to each activation's dtype and device at every edit (a ``device_map`` puts
blocks on different devices). ``unit_vector`` computes the paper's ``r / (||r|| + 1e-8)`` in
float64. Imports only torch, math and the standard library; never calls ``.save()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from .residual import (
    Layout,
    ShapeError,
    TracerError,
    block,
    check_layer,
    final_norm,
    layout_of,
    n_layers,
    submodule,
)

__all__ = [
    "EDITS",
    "POSITIONS",
    "PositionError",
    "ablate",
    "add",
    "add_vector",
    "apply_edit",
    "paper_project",
    "position_mask",
    "remove_component",
    "scale_component",
    "scale_projection",
    "unit_vector",
]

#: Named position sets; an explicit list of token indices is the fourth option.
POSITIONS = ("all", "prompt", "generated")

Positions = str | Sequence[int]


#: Names ``apply_edit`` accepts: the model-level block each steering mode drives.
EDITS = ("paper_project", "add")


class PositionError(TracerError, ValueError):
    """``positions`` is not ``"all"``, ``"prompt"``, ``"generated"`` or valid token indices."""


# ---------------------------------------------------------------------------------------------
# vectors and positions


def unit_vector(vector: torch.Tensor) -> torch.Tensor:
    """The paper's unit direction ``r / (||r|| + 1e-8)``, computed in float64.

    Args:
        vector: ``[d_model]`` direction, any float dtype.

    Returns:
        ``[d_model]`` float64 on the vector's device.

    Raises:
        ShapeError: ``vector`` is not 1-D.
    """
    if not isinstance(vector, torch.Tensor) or vector.dim() != 1:
        raise ShapeError(
            f"expected a [d_model] direction vector, got {getattr(vector, 'shape', type(vector))}"
        )
    r = vector.to(torch.float64)
    return r / (r.norm() + 1e-8)


def position_mask(
    tokens: int, positions: Positions, step: int | None = None
) -> torch.Tensor | None:
    """Which of a pass's ``tokens`` an edit touches.

    Args:
        tokens: length of the pass's token axis.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or a list of token indices.
        step: generation step from ``for step in tracer.all():`` (0 = prompt pass), or ``None`` for
            a plain trace (treated as the prompt pass).

    Returns:
        ``None`` when every token is edited, else a ``[tokens]`` bool tensor (on the CPU; all
        ``False`` when nothing is edited in this pass).

    Raises:
        PositionError: unknown name, or an index outside ``-tokens..tokens - 1``.
    """
    prompt_pass = step is None or step == 0
    if isinstance(positions, str):
        if positions == "all":
            return None
        if positions == "prompt":
            return None if prompt_pass else torch.zeros(tokens, dtype=torch.bool)
        if positions == "generated":
            return torch.zeros(tokens, dtype=torch.bool) if prompt_pass else None
        raise PositionError(
            f"positions {positions!r} is not one of {POSITIONS} nor a list of token indices"
        )
    mask = torch.zeros(tokens, dtype=torch.bool)
    if not prompt_pass:
        return mask
    for i in positions:
        if isinstance(i, bool) or int(i) != i or not -tokens <= int(i) < tokens:
            raise PositionError(
                f"position {i!r} is outside this pass's {tokens} tokens (valid: {-tokens}.."
                f"{tokens - 1}); use negative indices to count from the end of left-padded prompts"
            )
        mask[int(i)] = True
    return mask


def _check(x: torch.Tensor, vector: torch.Tensor) -> None:
    """``ShapeError`` unless ``x`` is ``[batch, tokens, d_model]`` and ``vector`` ``[d_model]``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ShapeError(
            f"expected a [batch, tokens, d_model] activation, got {getattr(x, 'shape', type(x))}"
        )
    if not isinstance(vector, torch.Tensor) or vector.dim() != 1 or vector.shape[0] != x.shape[-1]:
        raise ShapeError(
            f"direction is {tuple(getattr(vector, 'shape', ()))}, the activation's d_model is "
            f"{x.shape[-1]}: pass a [{x.shape[-1]}] vector"
        )


def _select(
    x: torch.Tensor, edited: torch.Tensor, positions: Positions, step: int | None
) -> torch.Tensor:
    mask = position_mask(x.shape[1], positions, step)
    if mask is None:
        return edited
    return torch.where(mask.to(x.device)[None, :, None], edited, x)


# ---------------------------------------------------------------------------------------------
# tensor edits


def scale_component(
    x: torch.Tensor,
    unit: torch.Tensor,
    alpha: float,
    positions: Positions = "all",
    step: int | None = None,
) -> torch.Tensor:
    """Projection scaling ``x + alpha (x·u) u``: the component along ``u`` times ``1 + alpha``.

    Args:
        x: ``[batch, tokens, d_model]`` activation.
        unit: ``[d_model]`` unit direction (any dtype/device; cast to ``x``'s).
        alpha: scale; ``-1`` removes the component.
        positions, step: which tokens (see the module docstring).

    Returns:
        ``[batch, tokens, d_model]``, ``x``'s dtype and device; unselected tokens are ``x`` exactly.
    """
    _check(x, unit)
    u = unit.to(device=x.device, dtype=x.dtype)
    edited = x + alpha * (x @ u).unsqueeze(-1) * u
    return _select(x, edited, positions, step)


def remove_component(
    x: torch.Tensor, unit: torch.Tensor, positions: Positions = "all", step: int | None = None
) -> torch.Tensor:
    """Directional ablation ``x - (x·u) u`` (``scale_component`` with ``alpha = -1``)."""
    return scale_component(x, unit, -1.0, positions, step)


def add_vector(
    x: torch.Tensor,
    vector: torch.Tensor,
    coeff: float,
    positions: Positions = "all",
    step: int | None = None,
) -> torch.Tensor:
    """Additive steering ``x + coeff * v`` at the selected tokens.

    Args:
        x: ``[batch, tokens, d_model]`` activation.
        vector: ``[d_model]`` steering vector (a unit vector makes ``coeff`` a length).
        coeff: multiplier.
        positions, step: which tokens (see the module docstring).

    Returns:
        ``[batch, tokens, d_model]``, ``x``'s dtype and device.
    """
    _check(x, vector)
    v = vector.to(device=x.device, dtype=x.dtype)
    return _select(x, x + coeff * v, positions, step)


# ---------------------------------------------------------------------------------------------
# model-level blocks


def add(
    model: Any,
    layer: int,
    vector: torch.Tensor,
    coeff: float,
    positions: Positions = "all",
    step: int | None = None,
    layout: Layout | None = None,
) -> None:
    """``hidden_states[layer] += coeff * vector`` inside the open trace.

    ``layer`` is a residual index: ``l < L`` edits the input of block ``l``; ``l == L`` edits the
    final norm's output.

    Example::

        with model.generate(max_new_tokens=20, do_sample=False) as tr:
            with tr.invoke(inputs):
                for step in tr.all():
                    tracers.add(model, 12, r_hat, 4.0, positions="generated", step=step)
            with tr.invoke():
                tokens = tr.result.save()
    """
    lay = layout_of(model, layout)
    n = n_layers(model, lay)
    layer = check_layer(layer, n)
    if layer == n:
        norm = final_norm(model, lay)
        norm.output = add_vector(norm.output, vector, coeff, positions, step)
    else:
        blk = block(model, layer, lay)
        blk.input = add_vector(blk.input, vector, coeff, positions, step)


def scale_projection(
    model: Any,
    unit: torch.Tensor,
    alpha: float,
    layers: Sequence[int] | None = None,
    positions: Positions = "all",
    step: int | None = None,
    layout: Layout | None = None,
) -> None:
    """``x <- x + alpha (x·r̂) r̂`` on the residual stream at residual indices ``layers``.

    Only ``hidden_states[l]`` is edited (block inputs, or the final norm's output for ``l == L``);
    ``paper_project`` also edits the attention and MLP outputs.

    Args:
        model: the nnsight model whose trace is open.
        unit: ``[d_model]`` unit direction.
        alpha: scale of the component (``-1`` removes it).
        layers: residual indices ``0..L`` (default: every block input ``0..L-1``).
        positions, step: which tokens (see the module docstring).
        layout: module paths for an architecture ``tracers`` does not know.
    """
    lay = layout_of(model, layout)
    n = n_layers(model, lay)
    wanted = range(n) if layers is None else [check_layer(layer, n) for layer in layers]
    for layer in sorted(set(wanted)):  # forward order
        if layer == n:
            norm = final_norm(model, lay)
            norm.output = scale_component(norm.output, unit, alpha, positions, step)
        else:
            blk = block(model, layer, lay)
            blk.input = scale_component(blk.input, unit, alpha, positions, step)


def _check_blocks(blocks_: Sequence[int] | None, n: int) -> list[int]:
    if blocks_ is None:
        return list(range(n))
    out = []
    for i in blocks_:
        if isinstance(i, bool) or int(i) != i or not 0 <= int(i) < n:
            raise TracerError(f"block {i!r} is out of range: this model has blocks 0..{n - 1}")
        out.append(int(i))
    return sorted(set(out))


def _renamed_blocks(
    blocks_: Sequence[int] | None, layers: Sequence[int] | None, where: str
) -> Sequence[int] | None:
    """``blocks`` from the new keyword or (deprecated, with a warning) the old ``layers=``."""
    if layers is None:
        return blocks_
    if blocks_ is not None:
        raise TracerError(f"{where}: pass blocks= only (layers= is its deprecated old name)")
    warnings.warn(
        f"{where}(layers=...) is deprecated: these are block numbers 0..L-1, pass blocks=... "
        "(layers= means residual indices 0..L everywhere else); layers= goes in the next release",
        DeprecationWarning,
        stacklevel=3,
    )
    return layers


def paper_project(
    model: Any,
    unit: torch.Tensor,
    alpha: float,
    blocks: Sequence[int] | None = None,
    positions: Positions = "all",
    step: int | None = None,
    layout: Layout | None = None,
    *,
    layers: Sequence[int] | None = None,
) -> None:
    """The paper's intervention: ``x <- x + alpha (x·r̂) r̂`` three times in every chosen block.

    In each block, in forward order: the block input, then the first element of the attention
    sub-module's output tuple, then the MLP output. Over ``L`` blocks the component along ``r̂``
    compounds to about ``(1 + alpha)^L``.

    Args:
        model: the nnsight model whose trace (or generation loop step) is open.
        unit: ``[d_model]`` unit direction (``unit_vector(r)`` is the paper's).
        alpha: per-edit scale (the paper sweeps ``±0.05, ±0.10, ±0.15``).
        blocks: block numbers ``0..L-1`` to edit (default: all, as in the paper).
        positions, step: which tokens (see the module docstring).
        layout: module paths for an architecture ``tracers`` does not know.
        layers: deprecated old name of ``blocks`` (warns; removed in the next release).

    Example::

        with model.generate(max_new_tokens=20, do_sample=False) as tr:
            with tr.invoke(inputs):
                for step in tr.all():
                    tracers.paper_project(model, r_hat, 0.1, step=step)
            with tr.invoke():
                tokens = tr.result.save()
    """
    chosen = _renamed_blocks(blocks, layers, "tracers.paper_project")
    lay = layout_of(model, layout)
    for i in _check_blocks(chosen, n_layers(model, lay)):
        blk = block(model, i, lay)
        blk.input = scale_component(blk.input, unit, alpha, positions, step)
        attn = submodule(blk, "attn", lay)
        out = attn.output
        if isinstance(out, tuple):
            attn.output = (scale_component(out[0], unit, alpha, positions, step), *out[1:])
        else:
            attn.output = scale_component(out, unit, alpha, positions, step)
        mlp = submodule(blk, "mlp", lay)
        mlp.output = scale_component(mlp.output, unit, alpha, positions, step)


def ablate(
    model: Any,
    unit: torch.Tensor,
    blocks: Sequence[int] | None = None,
    positions: Positions = "all",
    step: int | None = None,
    layout: Layout | None = None,
    *,
    layers: Sequence[int] | None = None,
) -> None:
    """Remove the ``r̂`` component everywhere ``paper_project`` edits (``alpha = -1``).

    Block inputs, attention outputs and MLP outputs of every chosen block (block numbers
    ``0..L-1``; ``layers=`` is the deprecated old name) lose their component along ``r̂``, so (for
    blocks without norms after their sub-modules, e.g. Llama, GPT-2, NeoX) the residual stream
    carries none of it. Gemma-2 normalises the sub-module outputs before adding them, which brings
    a component back until the next block input is edited.
    """
    chosen = _renamed_blocks(blocks, layers, "tracers.ablate")
    paper_project(model, unit, -1.0, chosen, positions, step, layout)


def apply_edit(
    model: Any,
    edit: str,
    unit: torch.Tensor | None,
    alpha: float,
    layer: int | None = None,
    blocks: Sequence[int] | None = None,
    positions: Positions = "all",
    step: int | None = None,
    layout: Layout | None = None,
) -> None:
    """Run the model-level block named ``edit`` (one of ``EDITS``) inside the open trace.

    The one block behind every steering mode: ``"paper_project"`` edits the chosen ``blocks``
    (block input, attention output, MLP output) with per-edit scale ``alpha``; ``"add"`` adds
    ``alpha * unit`` to residual index ``layer``. ``unit=None`` (or ``alpha == 0`` for ``"add"``)
    edits nothing, so a plain pass stays exactly plain. ``lirefs.steer.SteeringPlan.tracer_kwargs``
    holds every argument but ``model`` and ``step``, as plain values that travel to NDIF.

    Args:
        model: the nnsight model (or ``model.edit()`` envoy) whose trace is open.
        edit: ``"paper_project"`` or ``"add"``.
        unit: ``[d_model]`` unit direction, or ``None`` for no edit.
        alpha: per-edit scale (``"paper_project"``) or added multiple (``"add"``).
        layer: residual index ``0..L`` for ``"add"``; ignored by ``"paper_project"``.
        blocks: block numbers ``0..L-1`` for ``"paper_project"`` (default all).
        positions, step: which tokens (see the module docstring); ``step=None`` in a plain trace.
        layout: module paths for an architecture ``tracers`` does not know.

    Example (teacher-forced log-probabilities under steering)::

        kw = lirefs.steer.plan(model, liref, 15, -0.1, "project").tracer_kwargs()
        with model.trace(inputs):
            tracers.apply_edit(model, **kw)
            logits = model.output.logits.save()

    Raises:
        TracerError: unknown ``edit``, ``"add"`` without ``layer``, a block out of range.
    """
    if edit not in EDITS:
        raise TracerError(f"edit {edit!r} is not one of {EDITS}")
    if unit is None:
        return
    if edit == "add":
        if layer is None:
            raise TracerError("edit 'add' needs layer=: the residual index 0..L to add at")
        add(model, layer, unit, alpha, positions, step, layout)
    else:
        paper_project(model, unit, alpha, blocks, positions, step, layout)
