"""The dose-response figure of an evaluation run (``dose_response.png``, ``lirefs evaluate --plot``).

Three panels against alpha (evenly spaced, ablation labelled), each with the real direction as a
line with 95% intervals and, when the run has controls, the controls' range per alpha shaded (alpha
0 is the same unsteered run for every direction):

1. accuracy (strict; flexible dashed when the run has it),
2. the run's continuous outcome (``EvalResult.outcome``): for benchmarks whose exemplars show
   working, the mean log-probability of the gold answer after the model's own working (an alpha
   where no output reached the answer phrase has no point); else the gold text's right after
   the prompt,
3. share of degenerate outputs.

The top axis gives the effective scale of each alpha: ``(1 + alpha)^L`` in ``"project"`` mode
(``L`` edited blocks), ``1 + alpha`` in ``"project-calibrated"``, 0 for the ablation; in ``"add"``
mode alpha is an added length and the top axis is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..figures import figure, save_figure
from ..steer import get_mode

__all__ = ["effective_scales", "plot_dose_response"]


def effective_scales(alphas: list[float], mode: str, n_blocks: int) -> list[float] | None:
    """The factor each alpha multiplies the direction's component by overall (``None`` for add).

    From the mode's row of ``lirefs.steer.MODES``; alpha 0 is the unsteered baseline (factor 1)
    in every mode, as ``evaluate`` runs it.
    """
    row = get_mode(mode)
    if row.effective_scale(0.0, n_blocks) is None:
        return None
    return [1.0 if a == 0.0 else float(row.effective_scale(a, n_blocks) or 0.0) for a in alphas]


def _band(ax: Any, xs: np.ndarray, controls: list[dict[float, float]], order: list[float]) -> None:
    if not controls:
        return
    # [n_controls, n_alphas]; an alpha without a value (no output reached the answer) is a gap
    values = np.array([[c.get(a, np.nan) for a in order] for c in controls], dtype=np.float64)
    if len(controls) == 1:  # a range of one is a line
        ax.plot(xs, values[0], "--", color="tab:grey", label="control")
        return
    ax.fill_between(
        xs, values.min(0), values.max(0), color="tab:grey", alpha=0.25, linewidth=0,
        label=f"controls ({len(controls)}), range",
    )  # fmt: skip


def _line(
    ax: Any,
    xs: np.ndarray,
    values: dict[float, float],
    ci: dict[float, tuple[float, float]] | None,
    order: list[float],
    **style: Any,
) -> None:
    y = np.array([values.get(a, np.nan) for a in order], dtype=np.float64)
    fmt = style.pop("fmt", "o-")
    if ci:
        low = np.array([ci[a][0] if a in ci else np.nan for a in order], dtype=np.float64)
        high = np.array([ci[a][1] if a in ci else np.nan for a in order], dtype=np.float64)
        err = [y - low, high - y]
        ax.errorbar(xs, y, yerr=err, fmt=fmt, capsize=3, **style)
    else:
        ax.plot(xs, y, fmt, **style)


def plot_dose_response(result: Any, path: str | Path) -> Path:
    """Accuracy, gold log-probability and degeneration against alpha, controls shaded.

    Args:
        result: an ``EvalResult`` (with ``gold_logprob`` and ``degenerate``; ``controls`` and
            ``flexible_accuracy`` are drawn when present).
        path: the PNG to write.

    Raises:
        PlotsUnavailableError: matplotlib is not installed (an ``ImportError``).
    """
    order = sorted(result.alphas)
    xs = np.arange(len(order), dtype=np.float64)
    controls = list((getattr(result, "controls", None) or {}).values())
    fig = figure(7.0, 9.0)
    axes = fig.subplots(3, 1, sharex=True)
    ax = axes[0]
    _band(ax, xs, [c.accuracy for c in controls], order)
    _line(ax, xs, result.accuracy, result.ci, order, fmt="o-", label="accuracy (strict)")
    flexible = getattr(result, "flexible_accuracy", None)
    if flexible:
        _line(ax, xs + 0.06, flexible, getattr(result, "flexible_ci", None), order, fmt="s--",
              alpha=0.8, label="accuracy (flexible)")  # fmt: skip
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_ylim(-0.02, 1.02)
    ax = axes[1]
    key = getattr(result, "outcome", "gold_logprob")
    values, label = getattr(result, key, None), "mean gold log-prob"
    if key == "answer_logprob":
        label = "mean answer log-prob after own working"
    if values:
        bands = [getattr(c, key, None) for c in controls]
        _band(ax, xs, [b for b in bands if b], order)
        _line(ax, xs, values, getattr(result, f"{key}_ci", None), order, fmt="o-",
              color="tab:green", label=label)  # fmt: skip
    ax.set_ylabel(("answer" if key == "answer_logprob" else "gold") + " log p (nats, 95% CI)")
    ax = axes[2]
    _band(ax, xs, [c.degenerate for c in controls if c.degenerate], order)
    if result.degenerate:
        _line(ax, xs, result.degenerate, None, order, fmt="o-", color="tab:red",
              label="degenerate outputs")  # fmt: skip
    ax.set_ylabel("share degenerate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(xs, [f"{a:+g}" + (" (ablate)" if a == -1.0 else "") for a in order])
    ax.set_xlabel("alpha")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    settings = result.metadata.get("settings", {})
    mode = settings.get("mode", "project")
    n_blocks = int((result.metadata.get("model") or {}).get("n_layers") or 0)
    scales = effective_scales(order, mode, n_blocks) if n_blocks else None
    if scales is not None:
        top = axes[0].secondary_xaxis("top")
        top.set_xticks(xs, [f"x{s:.3g}" for s in scales])
        top.set_xlabel(
            f"effective scale of the r̂ component ({mode}, {n_blocks} blocks)", fontsize=8
        )
    layer = f", layer {result.layer}" if result.layer is not None else ""
    fig.suptitle(f"{result.benchmark} ({result.n_items} items{layer}, mode {mode})", fontsize=10)
    return save_figure(fig, path)
