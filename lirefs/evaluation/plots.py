"""The accuracy-against-alpha figure of an evaluation run (``accuracy_vs_alpha.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..figures import figure, save_figure

if TYPE_CHECKING:
    from .result import EvalResult

__all__ = ["plot_accuracy"]


def plot_accuracy(result: EvalResult, path: str | Path) -> Path:
    """Accuracy against alpha with 95% error bars (evenly spaced alphas), written as a PNG.

    Raises:
        PlotsUnavailableError: matplotlib is not installed (an ``ImportError``).
    """
    order = sorted(result.alphas)
    acc = np.array([result.accuracy[a] for a in order])
    low = acc - np.array([result.ci[a][0] for a in order])
    high = np.array([result.ci[a][1] for a in order]) - acc
    fig = figure(6.0, 4.0)
    ax = fig.add_subplot()
    # evenly spaced alphas: the ablation (-1) would squash the paper's +-0.05..0.15 sweep
    xs = np.arange(len(order))
    ax.errorbar(xs, acc, yerr=[low, high], fmt="o-", capsize=4, label="strict")
    if result.flexible_accuracy:
        flex = np.array([result.flexible_accuracy[a] for a in order])
        f_low = flex - np.array([result.flexible_ci[a][0] for a in order])
        f_high = np.array([result.flexible_ci[a][1] for a in order]) - flex
        ax.errorbar(
            xs + 0.08, flex, yerr=[f_low, f_high], fmt="s--", capsize=3, alpha=0.8,
            label="flexible",
        )  # fmt: skip
        ax.legend(fontsize=8)
    ax.set_xticks(xs, [f"{a:+g}" + (" (ablate)" if a == -1.0 else "") for a in order])
    if 0.0 in result.accuracy:
        ax.axhline(result.accuracy[0.0], color="grey", linestyle=":", linewidth=1)
    mode = result.metadata.get("settings", {}).get("mode")
    layer = f", layer {result.layer}" if result.layer is not None else ""
    ax.set_title(f"{result.benchmark} ({result.n_items} items{layer}, mode {mode})", fontsize=10)
    ax.set_xlabel("alpha")
    ax.set_ylabel("accuracy (95% Clopper-Pearson CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
