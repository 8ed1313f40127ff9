"""The steering modes as a table of values: how each edits, its per-edit alpha, its scale.

Modes (``r̂ = r / (||r|| + 1e-8)`` in float64, cast to each activation's dtype and device) are the
rows of ``MODES`` (``get_mode(name)``); see the package docstring (``lirefs.steer``) for what each
row does. ``effective_scale`` and ``calibrated_alpha`` give the compounding of the paper's edits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..checks import check_alpha
from ..errors import SteeringError

__all__ = [
    "MODES",
    "Mode",
    "calibrated_alpha",
    "effective_scale",
    "get_mode",
    "power",
    "scale_table",
]

# ---------------------------------------------------------------------------------------------
# compounding


def power(base: float, n: float) -> float:
    """``base ** n`` as a float; ``±inf`` where it overflows instead of ``OverflowError``."""
    try:
        return float(base**n)
    except OverflowError:
        odd = float(n).is_integer() and int(n) % 2 == 1
        return -math.inf if base < 0 and odd else math.inf


def effective_scale(alpha: float, n_layers: int) -> float:
    """``(1 + alpha)^n_layers``: roughly how much paper mode multiplies the ``r̂`` component.

    Each block's input edit multiplies the component the residual stream carries by ``1 + alpha``
    (the attention and MLP edits scale what those sub-layers add by the same factor), so after
    ``k`` blocks the stream's component is about ``(1 + alpha)^k`` times the unsteered one.
    SmolLM2-135M (30 blocks): ``effective_scale(0.1, 30)`` is about 17.4. A factor beyond the
    float range is ``inf`` (never ``OverflowError``).
    """
    return power(1.0 + alpha, n_layers)


def calibrated_alpha(total: float, n_layers: int) -> float:
    """Per-edit scale ``(1 + total)^(1 / n_layers) - 1`` whose compounding is ``1 + total``.

    Raises:
        SteeringError: ``total < -1`` (no real per-layer scale compounds to a negative factor) or
            ``n_layers < 1``.
    """
    if n_layers < 1:
        raise SteeringError(f"n_layers must be >= 1, got {n_layers}")
    if not math.isfinite(total) or total < -1.0:
        raise SteeringError(
            f"the calibrated total scale alpha={total!r} must be a finite number >= -1 (the "
            "component is multiplied by 1 + alpha overall); use alpha=-1 to remove it"
        )
    return power(1.0 + total, 1.0 / n_layers) - 1.0


# ---------------------------------------------------------------------------------------------
# the modes table


@dataclass(frozen=True)
class Mode:
    """One steering mode: a row of ``MODES``.

    Attributes:
        name: the mode's name (``mode=`` and ``--mode``).
        summary: one line for help texts.
        projects: ``True`` for the projection modes, which edit the chosen blocks (block input,
            attention output, MLP output; ``blocks=`` applies); ``False`` for ``"add"``, which
            edits the one residual index ``layer``.
        edit: the ``tracers.apply_edit`` block that runs it (one of ``tracers.EDITS``).
        per_edit: ``(alpha, n_blocks) -> float``, the scale each edit applies (``n_blocks``: the
            number of edited blocks).
        effective_scale: ``(alpha, n_blocks) -> float | None``, about how much the ``r̂``
            component is multiplied overall (``inf`` beyond the float range); ``None`` where the
            mode does not scale it (``"add"`` shifts it).
        scale_formula: the effective scale in words, ``{n}`` standing for ``n_blocks``.
        accepts: ``alpha -> bool``, whether the mode gives that alpha a meaning.
        accepted: what ``accepts`` allows, in words (for messages).
        default_alphas: the alphas ``lirefs steer`` shows when none are given (0 = plain).
    """

    name: str
    summary: str
    projects: bool
    edit: str
    per_edit: Callable[[float, int], float]
    effective_scale: Callable[[float, int], float | None]
    scale_formula: str
    accepts: Callable[[float], bool]
    accepted: str
    default_alphas: tuple[float, ...] = (0.0, 0.1)

    def check_alpha(self, alpha: Any) -> float:
        """``alpha`` as a float if this mode accepts it, else ``SteeringError`` naming it."""
        value = check_alpha(alpha)
        if not self.accepts(value):
            raise SteeringError(
                f"mode {self.name!r} does not accept alpha={alpha!r}: it takes {self.accepted}"
            )
        return value


def _same(alpha: float, n_blocks: int) -> float:
    return alpha


def _any_finite(alpha: float) -> bool:
    return math.isfinite(alpha)


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode(
            name="project",
            summary="the paper: x + alpha (x·r̂) r̂ in every block (compounds to (1 + alpha)^L)",
            projects=True,
            edit="paper_project",
            per_edit=_same,
            effective_scale=effective_scale,
            scale_formula="(1 + alpha)^{n}",
            accepts=_any_finite,
            accepted="any finite number",
        ),
        Mode(
            name="project-calibrated",
            summary="the paper's edits, alpha = the TOTAL scale: 1 + alpha over all edited blocks",
            projects=True,
            edit="paper_project",
            per_edit=calibrated_alpha,
            effective_scale=lambda alpha, n_blocks: 1.0 + alpha,
            scale_formula="1 + alpha (calibrated over {n} blocks)",
            accepts=lambda alpha: math.isfinite(alpha) and alpha >= -1.0,
            accepted="a finite total scale >= -1 (-1 removes the component)",
        ),
        Mode(
            name="add",
            summary="x + alpha r̂ at the residual index --layer only",
            projects=False,
            edit="add",
            per_edit=_same,
            effective_scale=lambda alpha, n_blocks: None,
            scale_formula="none (adds alpha r̂, does not scale the component)",
            accepts=_any_finite,
            accepted="any finite number",
        ),
        Mode(
            name="ablate",
            summary="remove the r̂ component everywhere the paper edits (alpha 0 or -1)",
            projects=True,
            edit="paper_project",
            per_edit=lambda alpha, n_blocks: -1.0,
            effective_scale=lambda alpha, n_blocks: 0.0,
            scale_formula="0 (removed)",
            accepts=lambda alpha: alpha in (0.0, -1.0),
            accepted="alpha 0 or -1 only: ablation removes the component whatever its size, so "
            "other values would be ignored (evaluate/steer read 0 as the unsteered baseline)",
            default_alphas=(0.0, -1.0),
        ),
    )
}


def get_mode(name: str | Mode) -> Mode:
    """The ``MODES`` row called ``name`` (a ``Mode`` is returned as it is).

    Raises:
        SteeringError: an unknown name; the message lists the known ones.
    """
    if isinstance(name, Mode):
        return name
    if not isinstance(name, str) or name not in MODES:
        raise SteeringError(f"mode {name!r} is not one of {', '.join(MODES)}")
    return MODES[name]


def scale_table(
    alphas: Sequence[float], n_layers: int, *, mode: str = "project"
) -> list[dict[str, float]]:
    """Per-block compounding: row ``k`` is the factor after block ``k``'s input edit.

    Args:
        alphas: alpha values (one column each).
        n_layers: number of edited blocks ``L``.
        mode: a projection mode: ``"project"`` (factor ``(1 + alpha)^(k + 1)``),
            ``"project-calibrated"`` (``(1 + a)^(k + 1)`` with ``a = calibrated_alpha(alpha, L)``,
            ending at ``1 + alpha``) or ``"ablate"`` (0).

    Returns:
        ``L`` dicts ``{"block": k, "<alpha>": factor, ...}`` (``inf`` beyond the float range).
    """
    row_mode = get_mode(mode)
    if not row_mode.projects:
        names = [m.name for m in MODES.values() if m.projects]
        raise SteeringError(
            f"scale_table mode must be a projection mode ({', '.join(names)}), not {mode!r}: "
            f"{row_mode.name!r} does not scale the component"
        )
    per = [row_mode.per_edit(a, n_layers) for a in alphas]
    rows = []
    for k in range(n_layers):
        row: dict[str, float] = {"block": float(k)}
        for a, p in zip(alphas, per, strict=True):
            row[f"{a:g}"] = power(1.0 + p, k + 1)
        rows.append(row)
    return rows
