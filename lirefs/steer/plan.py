"""One steering setting, checked once: ``SteeringPlan`` and ``plan``.

Every engine (``generate``/``sweep``, the evaluation's shared-prefix path, teacher-forced
scoring, persistent steering) takes a ``SteeringPlan``; the keyword form of those functions
(``direction=, layer=, alpha=, mode=, ...``) only builds one here. ``SteeringPlan.none(model)``
is the unsteered baseline: it edits nothing.

Alpha rules, the same for every engine:

* alpha 0 means "no edit" in every mode that takes an alpha (``"project"``,
  ``"project-calibrated"``, ``"add"``): the plan runs plain forward passes;
* ``"ablate"`` takes no alpha: it always removes the ``r̂`` component. An alpha of 0 or -1 passed
  with it (the old spelling) still ablates, with a ``DeprecationWarning``; any other alpha is
  refused. ``lirefs evaluate`` and ``lirefs steer`` list the columns of an ablation run as alphas
  ``0`` (the unsteered baseline, ``SteeringPlan.none``) and ``-1`` (the ablation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

import tracers

from ..checks import block_indices, residual_index
from ..direction import Direction
from ..errors import ArchitectureError, DirectionError, LayerError, SteeringError, deprecated
from ..models import model_info, model_layout
from .modes import Mode, get_mode

__all__ = ["Positions", "SteeringPlan", "check_positions", "plan", "renamed_blocks", "unit_of"]

Positions = str | Sequence[int]

#: The alpha an ablation plan records (its per-edit scale): ablation takes no alpha of its own.
ABLATE_ALPHA = -1.0


@dataclass(frozen=True)
class SteeringPlan:
    """One validated steering setting, ready for any engine or trace body.

    Attributes:
        mode: the ``MODES`` row.
        alpha: alpha as given.
        per_edit: the scale each edit applies (``mode.per_edit(alpha, n_blocks)``).
        unit: ``[d_model]`` float64 unit direction, or ``None`` when nothing is edited (no
            direction, or a per-edit scale of 0: plain generation exactly).
        layer: residual index ``0..L`` of the direction (and where ``"add"`` adds it).
        blocks: block numbers the projection modes edit (``None`` = all).
        n_blocks: how many blocks the projection modes edit.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or a tuple of negative indices.
        layout: the model's ``tracers.Layout``.

    Inside a trace of your own, pass ``tracer_kwargs()`` to ``tracers.apply_edit`` (plain values:
    it works locally, with ``remote="local"`` and on NDIF, where ``lirefs`` is not installed)::

        steering = lirefs.steer.plan(model, liref, layer=15, alpha=-0.1, mode="project")
        kw = steering.tracer_kwargs()
        with model.trace(inputs, **lirefs.ndif.trace_kwargs(remote)):
            tracers.apply_edit(model, step=None, **kw)   # step=None: a plain (prompt) pass
            logits = model.output.logits.save()
    """

    mode: Mode
    alpha: float
    per_edit: float
    unit: torch.Tensor | None
    layer: int | None
    blocks: list[int] | None
    n_blocks: int
    positions: Positions
    layout: tracers.Layout

    @property
    def edits(self) -> bool:
        """Whether the plan edits anything (``False``: plain forward passes)."""
        return self.unit is not None

    @property
    def effective_scale(self) -> float | None:
        """About how much the ``r̂`` component is multiplied overall (``None`` for ``"add"``)."""
        if not self.edits:
            return 1.0
        return self.mode.effective_scale(self.alpha, self.n_blocks)

    def tracer_kwargs(self) -> dict[str, Any]:
        """Arguments of ``tracers.apply_edit`` but ``model`` and ``step``, as plain values."""
        return {
            "edit": self.mode.edit,
            "unit": self.unit,
            "alpha": self.per_edit,
            "layer": self.layer,
            "blocks": self.blocks,
            "positions": self.positions,
            "layout": self.layout,
        }

    def settings(self) -> dict[str, Any]:
        """The setting as JSON-ready values (for output metadata)."""
        return {
            "mode": self.mode.name,
            "alpha": self.alpha,
            "alpha_per_edit": self.per_edit if self.edits else 0.0,
            "layer": self.layer,
            "blocks": self.blocks,
            "positions": self.positions
            if isinstance(self.positions, str)
            else list(self.positions),
        }

    @classmethod
    def none(cls, model: Any) -> SteeringPlan:
        """The unsteered baseline for ``model``: no direction, no edit (plain forward passes)."""
        n = model_info(model).n_layers
        return cls(get_mode("project"), 0.0, 0.0, None, None, None, n, "all", model_layout(model))

    @classmethod
    def build(
        cls,
        model: Any,
        direction: Direction | torch.Tensor | None,
        layer: int | None = None,
        alpha: float | None = None,
        mode: str | Mode = "project",
        positions: Positions = "all",
        blocks: Sequence[int] | None = None,
    ) -> SteeringPlan:
        """The same as ``lirefs.steer.plan`` (see there)."""
        return plan(model, direction, layer, alpha, mode, positions, blocks)


def check_positions(positions: Any) -> Positions:
    """``positions`` as ``"all"``/``"prompt"``/``"generated"`` or a tuple of negative ints."""
    if isinstance(positions, str):
        if positions not in tracers.POSITIONS:
            raise SteeringError(
                f"positions {positions!r} is not one of {tracers.POSITIONS} nor a list of negative "
                "token indices (e.g. [-1] for the last prompt token)"
            )
        return positions
    try:
        idx = list(positions)
    except TypeError:
        raise SteeringError(
            f"positions must be 'all', 'prompt', 'generated' or a list of ints, got {positions!r}"
        ) from None
    bad = [i for i in idx if isinstance(i, bool) or not isinstance(i, int) or i >= 0]
    if not idx or bad:
        raise SteeringError(
            f"explicit positions must be a non-empty list of negative ints counted from the end of "
            f"each prompt (left padding makes other indices differ per batch), got {positions!r}"
        )
    return tuple(idx)


def unit_of(direction: Direction | torch.Tensor, layer: int | None, model: Any) -> torch.Tensor:
    """``[d_model]`` float64 unit vector of ``direction`` at ``layer`` (a ``Direction``: the given
    layer or its chosen one, ``Direction.resolve_layer``), checked against ``model``."""
    info = model_info(model)
    if isinstance(direction, Direction):
        direction.check_model(model)
        layer = direction.resolve_layer(layer)
        vector = direction.vector(layer)
    elif isinstance(direction, torch.Tensor):
        if direction.dim() != 1 or direction.shape[0] != info.d_model:
            raise DirectionError(
                f"a direction tensor must be [d_model] = [{info.d_model}] for model "
                f"{info.name!r}, got {tuple(direction.shape)}"
            )
        vector = direction.detach().to("cpu", torch.float64)
    else:
        raise DirectionError(
            f"direction must be a lirefs.Direction or a [d_model] tensor, got "
            f"{type(direction).__name__}"
        )
    norm = float(vector.norm())
    if not math.isfinite(norm) or norm == 0.0:
        where = f" at layer {layer}" if layer is not None else ""
        raise DirectionError(
            f"the direction{where} has norm {norm}: it cannot be normalised; choose another layer"
        )
    return tracers.unit_vector(vector)


def renamed_blocks(
    blocks: Sequence[int] | None, layers: Sequence[int] | None, where: str
) -> Sequence[int] | None:
    """``blocks`` from the new keyword or (deprecated, with a warning) the old ``layers=``."""
    if layers is None:
        return blocks
    if blocks is not None:
        raise SteeringError(f"{where}: pass blocks= only (layers= is its deprecated old name)")
    deprecated(
        f"{where}(layers=...)",
        "these are block numbers 0..L-1, pass blocks=... (layers= means residual indices 0..L "
        "everywhere else)",
        stacklevel=4,
    )
    return layers


def _mode_alpha(row: Mode, alpha: Any) -> float:
    """The checked alpha of ``row``: ``None`` is 0 (no edit), or the ablation's fixed -1."""
    if row.name != "ablate":
        return 0.0 if alpha is None else row.check_alpha(alpha)
    if alpha is None:
        return ABLATE_ALPHA
    value = row.check_alpha(alpha)
    deprecated(
        f"mode='ablate' with alpha={value:g}",
        "ablation takes no alpha (it always removes the component); drop alpha= (for the "
        "unsteered baseline use lirefs.steer.SteeringPlan.none(model))",
        stacklevel=5,
    )
    return value


def plan(
    model: Any,
    direction: Direction | torch.Tensor | None,
    layer: int | None = None,
    alpha: float | None = None,
    mode: str | Mode = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
) -> SteeringPlan:
    """Check one steering setting against ``model`` and return it as a ``SteeringPlan``.

    Args:
        model: the nnsight model the plan will edit.
        direction: a ``Direction`` (checked against the model), a ``[d_model]`` tensor, or
            ``None`` (then only a setting without any edit is valid).
        layer: residual index ``0..L`` whose direction is used (``"add"``: also where it is
            added); default: the layer the direction recorded as chosen.
        alpha: the scale, read as ``mode`` reads it; ``None`` (default): 0, no edit. Not for
            ``"ablate"``, which takes none (0 or -1 still work, with a ``DeprecationWarning``).
        mode: a name in ``MODES`` or a ``Mode``.
        positions: ``"all"``, ``"prompt"``, ``"generated"`` or negative prompt-token indices.
        blocks: block numbers ``0..L-1`` the projection modes edit (default all).

    Raises:
        SteeringError: unknown mode or positions, an alpha the mode does not accept, no direction
            where one is needed, ``blocks`` with ``"add"``.
        LayerError: ``layer`` outside ``0..L`` or missing, bad ``blocks``.
        DirectionError / MetadataMismatchError: the direction does not fit the model.
    """
    row = get_mode(mode)
    alpha = _mode_alpha(row, alpha)
    where = check_positions(positions)
    n = model_info(model).n_layers
    layer = None if layer is None else residual_index(layer, n)
    if row.projects:
        chosen = block_indices(blocks, n, "blocks")
    else:
        if blocks is not None:
            raise SteeringError(
                f"blocks= applies to the projection modes; {row.name!r} edits the one "
                "residual index layer="
            )
        if layer is None and direction is not None:
            raise LayerError(
                f"mode {row.name!r} needs layer=: the residual index 0..{n} to add r̂ at"
            )
        chosen = None
    n_blocks = n if chosen is None else len(chosen)
    per_edit = row.per_edit(alpha, n_blocks)
    layout = model_layout(model)
    missing = [kind for kind in ("attn", "mlp") if getattr(layout, kind) is None]
    if row.projects and per_edit != 0.0 and missing:
        raise ArchitectureError(
            f"mode {row.name!r} edits each block's attention and MLP outputs, but this model's "
            f"layout has no {' or '.join(missing)} sub-module whose output is [batch, tokens, "
            "d_model] (OPT runs its MLP on a flattened view); use mode='add'"
        )
    if direction is None:
        if per_edit != 0.0:
            raise SteeringError(
                f"mode {row.name!r} with alpha={alpha} needs direction= (a lirefs.Direction with "
                "layer=, or a [d_model] tensor)"
            )
        return SteeringPlan(row, alpha, 0.0, None, layer, chosen, n_blocks, where, layout)
    unit = unit_of(direction, layer, model)
    # a per-edit scale of 0: no edit at all, exactly plain generation
    unit_or_none = None if per_edit == 0.0 else unit
    return SteeringPlan(row, alpha, per_edit, unit_or_none, layer, chosen, n_blocks, where, layout)
