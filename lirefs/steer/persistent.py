"""Persistent steering: a copy of the model whose every trace and generate call is steered."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

import tracers

from ..direction import Direction
from ..errors import SteeringError
from .modes import Mode
from .plan import Positions, SteeringPlan, renamed_blocks
from .plan import plan as build_plan

__all__ = ["Steered", "applied", "steered"]

#: The alpha ``steered`` uses when none is given (modes that take one).
DEFAULT_ALPHA = 0.1


class Steered:
    """A steered copy of a model: every trace or generate call of ``.model`` carries the edit.

    Built with nnsight's ``model.edit()`` on a shallow copy, so the original model is never
    changed. ``remove()`` (or leaving the ``with`` block) drops the stored edit: ``.model`` then
    behaves exactly like the original.

    Example::

        with lirefs.steered(model, liref, layer=15, alpha=-0.1) as steered_model:
            a = lirefs.generate(steered_model, prompts)      # steered
            b = lirefs.generate(steered_model, more_prompts) # steered
        # steered_model is plain again; `model` was never touched
    """

    def __init__(self, model: Any, steering: SteeringPlan) -> None:
        self.plan = steering
        self.original = model
        edit = steering.tracer_kwargs()
        with model.edit() as (tracer, edited):
            if edit["unit"] is not None:
                for step in tracer.all():
                    tracers.apply_edit(edited, step=step, **edit)
        self.model = edited
        self.active = True

    def remove(self) -> None:
        """Drop the edit; ``.model`` is plain afterwards (calling twice is harmless)."""
        self.model.clear_edits()
        self.active = False

    def __enter__(self) -> Any:
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.remove()


def steered(
    model: Any,
    direction: Direction | torch.Tensor | SteeringPlan | None = None,
    *,
    layer: int | None = None,
    alpha: float | None = None,
    mode: str | Mode = "project",
    positions: Positions = "all",
    blocks: Sequence[int] | None = None,
    layers: Sequence[int] | None = None,
    plan: SteeringPlan | None = None,
) -> Steered:
    """A persistently steered copy of ``model`` (``with steered(...) as m:`` restores on exit).

    Give the steering as ``plan=`` (a ``SteeringPlan``; also accepted in ``direction``'s place)
    or as keywords that mean what they mean in ``generate`` (``alpha`` default 0.1; ``"ablate"``
    takes none; ``blocks``: decoder block numbers, ``layers=`` is its deprecated old name). The
    edit applies to every forward pass of ``.model``: each step of ``model.generate`` (steps
    counted per call) and each ``model.trace``.
    """
    if isinstance(direction, SteeringPlan):
        direction, plan = None, direction if plan is None else plan
    if plan is not None:
        if not isinstance(plan, SteeringPlan) or direction is not None or alpha is not None:
            raise SteeringError(
                "steered takes a SteeringPlan (plan=) or the steering keywords, not both"
            )
        return Steered(model, plan)
    blocks = renamed_blocks(blocks, layers, "lirefs.steered")
    if alpha is None and mode != "ablate" and getattr(mode, "name", None) != "ablate":
        alpha = DEFAULT_ALPHA
    return Steered(model, build_plan(model, direction, layer, alpha, mode, positions, blocks))


@contextmanager
def applied(model: Any, steering: SteeringPlan) -> Iterator[Any]:
    """Steer ``model`` itself (not a copy) for the ``with`` block, then restore it.

    The edit is stored on ``model`` with nnsight's ``model.edit(inplace=True)``, so every trace or
    ``generate`` of it inside the block is steered; on exit (also when the body raises) the edits
    the model carried before are put back exactly. ``Direction.apply`` builds the plan and calls
    this; ``steered`` is the variant that leaves ``model`` untouched.

    Yields:
        ``model``.
    """
    edit = steering.tracer_kwargs()
    before = list(getattr(model, "_edits", None) or [])
    try:
        if edit["unit"] is not None:
            with model.edit(inplace=True) as tracer:
                for step in tracer.all():
                    tracers.apply_edit(model, step=step, **edit)
        yield model
    finally:
        model._edits = before
