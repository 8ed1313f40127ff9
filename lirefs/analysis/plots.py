"""Figures for a layer report: AUROC by layer, score histograms, 2-D PCA, direction geometry.

matplotlib is an optional extra (``pip install 'lirefs[plots]'``); it is imported only when a plot is
drawn. Every figure is made and written with the generic helpers of ``lirefs.figures`` (re-exported
here as ``figure`` and ``save_figure``): an Agg canvas, no pyplot state, atomic PNG writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import renamed_keywords, residual_index
from ..direction import Direction
from ..errors import ActivationError, PlotsUnavailableError
from ..figures import figure, save_figure
from .geometry import cosine_matrix, pc_cosines, pca_2d
from .report import LayerReport
from .states import check_states
from .stats import auroc, class_labels, cohens_d
from .transfer import TransferReport

__all__ = [
    "MEMORY_COLOR",
    "REASONING_COLOR",
    "PlotsUnavailableError",
    "figure",
    "plot_cosine_matrix",
    "plot_layer_auroc",
    "plot_pc_cosines",
    "plot_pca",
    "plot_scores",
    "plot_transfer",
    "plot_transfer_layers",
    "save_figure",
    "write_report_plots",
]

#: Class colours used in every figure (colour-blind safe pair).
REASONING_COLOR = "#d55e00"
MEMORY_COLOR = "#0072b2"


def plot_layer_auroc(report: LayerReport, path: str | Path) -> Path:
    """AUROC of the held-out scores per layer against the chance band and the length baseline.

    Draws the held-out AUROC by residual index, the 5th-95th percentile band of AUROCs with
    shuffled labels, the probe accuracy (when the report has it), the length-matched AUROC and the
    in-sample train AUROC (when present), prompt length alone as a horizontal line, and marks the
    best layer.

    Args:
        report: from ``lirefs.layer_report``.
        path: the PNG to write.
    """
    fig = figure(10.0, 4.8)
    ax = fig.add_subplot()
    layers = np.arange(report.n_layers + 1)
    ax.fill_between(
        layers,
        _arr(report.shuffled_auroc_p5),
        _arr(report.shuffled_auroc_p95),
        color="0.8",
        label="shuffled labels (5-95th pct)",
        step=None,
    )
    ax.axhline(0.5, color="0.55", lw=0.8, ls=":")
    if report.length_auroc is not None:
        ax.axhline(
            report.length_auroc,
            color="#7f7f7f",
            ls="--",
            lw=1.4,
            label=f"prompt length alone ({report.length_auroc:.2f})",
        )
    if report.train_auroc:
        ax.plot(
            layers,
            _arr(report.train_auroc),
            color="#999999",
            lw=1.2,
            label="train AUROC (in-sample)",
        )
    if report.probe_accuracy:
        ax.plot(
            layers,
            _arr(report.probe_accuracy),
            color="#009e73",
            lw=1.2,
            ls="-.",
            label="logistic probe accuracy (CV)",
        )
    if report.length_matched_auroc:
        ax.plot(
            layers,
            _arr(report.length_matched_auroc),
            color="#cc79a7",
            marker="s",
            ms=3,
            lw=1.2,
            label=f"AUROC, length-matched ({report.length_matched_pairs} pairs)",
        )
    ax.plot(
        layers,
        _arr(report.auroc),
        color="black",
        marker="o",
        ms=3.5,
        lw=1.8,
        label="held-out AUROC",
    )
    b = report.best_layer
    ax.plot([b], [report.auroc[b]], marker="*", ms=16, color=REASONING_COLOR, zorder=5, ls="none",
            label=f"best layer {b} (AUROC {report.auroc[b]:.3f})")  # fmt: skip
    ax.axvline(b, color=REASONING_COLOR, lw=0.8, alpha=0.6)
    low = np.nanmin([0.3, *_finite(report.auroc), *_finite(report.shuffled_auroc_p5)])
    ax.set_ylim(max(0.0, low - 0.05), 1.02)
    ax.set_xlim(-0.5, report.n_layers + 0.5)
    ax.set_xlabel("residual index l (0 = embeddings, L = final norm output)")
    ax.set_ylabel("AUROC (reasoning = positive) / accuracy")
    ax.set_title(
        f"Held-out separation by layer ({report.n_reasoning} reasoning / {report.n_memory} memory)"
    )
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    n = len(labels)
    order = [n - 2, n - 1, *range(n - 2)]  # the held-out AUROC and best layer (drawn last) first
    fig.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="outside right upper",
        fontsize=8,
        framealpha=0.9,
    )
    return save_figure(fig, path)


@renamed_keywords(liref="direction")
def plot_scores(
    direction: Direction, acts_r: torch.Tensor, acts_m: torch.Tensor, layer: int, path: str | Path
) -> Path:
    """Histograms of the reasoning scores ``h_l · r̂_l`` of both classes at one layer.

    Args:
        direction: the direction.
        acts_r: ``[n_r, L + 1, d_model]`` (or ``[n_r, d_model]`` at ``layer``) reasoning states.
        acts_m: ``[n_m, L + 1, d_model]`` (or ``[n_m, d_model]``) memory states.
        layer: residual index ``l``.
        path: the PNG to write.
    """
    s_r = direction.scores(acts_r, layer).numpy()
    s_m = direction.scores(acts_m, layer).numpy()
    _check_finite(s_r, "acts_r")
    _check_finite(s_m, "acts_m")
    labels = class_labels(len(s_r), len(s_m))
    both = np.concatenate([s_r, s_m])
    fig = figure(7.0, 4.2)
    ax = fig.add_subplot()
    bins = np.histogram_bin_edges(both, bins=min(30, max(8, len(both) // 4)))
    ax.hist(s_m, bins=bins, alpha=0.55, color=MEMORY_COLOR, label=f"memory (n={len(s_m)})")
    ax.hist(s_r, bins=bins, alpha=0.55, color=REASONING_COLOR, label=f"reasoning (n={len(s_r)})")
    ax.axvline(s_m.mean(), color=MEMORY_COLOR, ls="--", lw=1.5, label="class means")
    ax.axvline(s_r.mean(), color=REASONING_COLOR, ls="--", lw=1.5)
    title = f"Reasoning scores at layer {layer}"
    if len(s_r) > 1 and len(s_m) > 1:
        title += f": AUROC {auroc(labels, both):.3f}, Cohen's d {cohens_d(s_r, s_m):.2f}"
    ax.set_title(title)
    ax.set_xlabel(rf"score $h_{{{layer}}} \cdot \hat{{r}}_{{{layer}}}$")
    ax.set_ylabel("prompts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return save_figure(fig, path)


def plot_pca(acts_r: torch.Tensor, acts_m: torch.Tensor, layer: int, path: str | Path) -> Path:
    """2-D PCA scatter of both classes' states at one layer, with the logistic decision boundary.

    Args:
        acts_r: ``[n_r, L + 1, d_model]`` reasoning states.
        acts_m: ``[n_m, L + 1, d_model]`` memory states.
        layer: residual index ``l``.
        path: the PNG to write.
    """
    proj = pca_2d(acts_r, acts_m, layer)
    xy, lab = proj.coords, proj.labels
    w1, w2, b = proj.boundary
    acc = float(((xy @ np.array([w1, w2]) + b > 0).astype(int) == lab).mean())
    fig = figure(6.0, 5.2)
    ax = fig.add_subplot()
    ax.scatter(*xy[lab == 0].T, s=22, c=MEMORY_COLOR, alpha=0.8, label="memory", edgecolors="none")
    ax.scatter(*xy[lab == 1].T, s=22, c=REASONING_COLOR, alpha=0.8, label="reasoning", marker="^",
               edgecolors="none")  # fmt: skip
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    if abs(w2) > 1e-12 and abs(w2) >= abs(w1) * 1e-6:
        xs = np.linspace(x0, x1, 200)
        ax.plot(xs, -(w1 * xs + b) / w2, color="black", lw=1.3, ls="--", label="logistic boundary")
    elif abs(w1) > 1e-12:
        ax.axvline(-b / w1, color="black", lw=1.3, ls="--", label="logistic boundary")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    evr = proj.explained_variance_ratio
    ax.set_xlabel(f"PC1 ({100 * evr[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * evr[1]:.1f}% of variance)")
    ax.set_title(f"PCA of states at layer {layer}: 2-D logistic accuracy {acc:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return save_figure(fig, path)


@renamed_keywords(liref="direction")
def plot_cosine_matrix(direction: Direction, path: str | Path) -> Path:
    """Heatmap of the cosine between every pair of layers' unit directions ``r̂_i · r̂_j``.

    Layers whose direction is all zeros are blank (NaN).
    """
    cos = cosine_matrix(direction).numpy()
    n = cos.shape[0]
    fig = figure(6.4, 5.4)
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(cos), cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
    step = max(1, math.ceil(n / 16))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("residual index j")
    ax.set_ylabel("residual index i")
    ax.set_title("Cosine between layers' reasoning directions")
    fig.colorbar(im, ax=ax, label=r"$\cos(\hat{r}_i, \hat{r}_j)$", shrink=0.85)
    return save_figure(fig, path)


@renamed_keywords(liref="direction")
def plot_pc_cosines(
    direction: Direction, acts: torch.Tensor, layer: int, path: str | Path, k: int = 5
) -> Path:
    """Bar chart of ``|cos|`` between ``r̂_l`` and the top-``k`` principal components of the states.

    Absolute values because a principal component's sign is arbitrary; the dashed line is the
    typical ``|cos|`` of a random direction, ``sqrt(2 / (pi * d_model))``.

    Args:
        direction: the direction.
        acts: ``[n, L + 1, d_model]`` states (both classes together).
        layer: residual index ``l``.
        path: the PNG to write.
        k: number of components.
    """
    cos = pc_cosines(direction, acts, layer, k=k).numpy()
    fig = figure(6.0, 4.0)
    ax = fig.add_subplot()
    idx = np.arange(1, len(cos) + 1)
    bars = ax.bar(idx, cos, color="#56b4e9", edgecolor="black", lw=0.6)
    for rect, v in zip(bars, cos, strict=True):
        ax.annotate(f"{v:.2f}", (rect.get_x() + rect.get_width() / 2, v), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")  # fmt: skip
    rand = math.sqrt(2.0 / (math.pi * direction.d_model))
    ax.axhline(rand, color="0.4", ls="--", lw=1.0, label=f"random direction (~{rand:.3f})")
    ax.set_xticks(idx, [f"PC{i}" for i in idx])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(rf"$|\cos(\hat{{r}}_{{{layer}}}, \mathrm{{PC}})|$")
    ax.set_xlabel("principal component of the states (decreasing variance)")
    ax.set_title(f"Reasoning direction vs top principal components, layer {layer}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=9)
    return save_figure(fig, path)


def plot_transfer(report: TransferReport, path: str | Path) -> Path:
    """Heatmap of ``report.auroc[train][test]``: directions as rows, test sources as columns.

    Each cell shows the AUROC at the direction's layer and the test set's shuffled-label 95th
    percentile; cells not above it are hatched. The column labels carry each test set's
    length-alone AUROC when lengths were given. The colour scale is centred on chance (0.5).

    Args:
        report: from ``lirefs.transfer_report``.
        path: the PNG to write.
    """
    grid = np.array(
        [[report.auroc[t][s] for s in report.tests] for t in report.directions], dtype=np.float64
    )
    n_rows, n_cols = grid.shape
    fig = figure(max(5.0, 1.9 * n_cols + 3.0), max(3.0, 1.0 * n_rows + 2.2))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", vmin=0.0, vmax=1.0, aspect="auto")
    for i, train in enumerate(report.directions):
        for j, test in enumerate(report.tests):
            auc, p95 = report.auroc[train][test], report.shuffled_auroc_p95[train][test]
            text = "-" if not math.isfinite(auc) else f"{auc:.3f}"
            text += f"\nchance p95 {p95:.2f}" if math.isfinite(p95) else ""
            dark = math.isfinite(auc) and abs(auc - 0.5) > 0.3
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")  # fmt: skip
            if not report.above_chance(train, test):
                ax.add_patch(_hatch(fig, j, i))
    columns = []
    for test in report.tests:
        label = f"{test}\n(n = {report.n_reasoning[test]} / {report.n_memory[test]}"
        length = report.length_auroc[test]
        label += f",\nlength alone {length:.2f})" if length is not None else ")"
        columns.append(label)
    ax.set_xticks(range(n_cols), columns, fontsize=8)
    ax.set_yticks(
        range(n_rows), [f"{t}\n(layer {report.layer[t]})" for t in report.directions], fontsize=8
    )
    ax.set_xlabel("test source (held-out states); hatched: not above the shuffled-label p95")
    ax.set_ylabel("direction built on")
    ax.set_title("Cross-source transfer: held-out AUROC at each direction's layer")
    fig.colorbar(im, ax=ax, label="AUROC (reasoning = positive)", shrink=0.85)
    return save_figure(fig, path)


def plot_transfer_layers(report: TransferReport, path: str | Path) -> Path:
    """AUROC by residual index of every direction on every test source, one panel per direction.

    Each test source is one line, its shuffled-label 95th percentile a dotted line of the same
    colour; the direction's chosen layer is marked.

    Args:
        report: from ``lirefs.transfer_report``.
        path: the PNG to write.
    """
    n = len(report.directions)
    fig = figure(9.0, 3.2 * n + 0.6)
    colors = ["#000000", "#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"]
    for k, train in enumerate(report.directions):
        ax = fig.add_subplot(n, 1, k + 1)
        for j, test in enumerate(report.tests):
            color = colors[j % len(colors)]
            values = _arr(report.auroc_by_layer[train][test])
            ax.plot(np.arange(len(values)), values, color=color, marker="o", ms=2.5, lw=1.4,
                    label=test)  # fmt: skip
            p95 = _arr(report.shuffled_auroc_p95_by_layer[train][test])
            ax.plot(np.arange(len(p95)), p95, color=color, lw=0.8, ls=":")
        ax.axvline(report.layer[train], color="0.4", lw=0.8, ls="--",
                   label=f"chosen layer {report.layer[train]}")  # fmt: skip
        ax.axhline(0.5, color="0.6", lw=0.6)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("AUROC")
        ax.set_title(f"direction built on {train!r} (dotted: shuffled-label 95th percentile)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("residual index l (0 = embeddings, L = final norm output)")
    return save_figure(fig, path)


def _hatch(fig: Any, x: float, y: float) -> Any:
    """A hatched unit square centred on cell ``(x, y)``: marks a cell not above chance."""
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1.0, 1.0, fill=False, hatch="///", edgecolor="0.45",
                     lw=0.0)  # fmt: skip


@renamed_keywords(liref="direction")
def write_report_plots(
    report: LayerReport,
    direction: Direction,
    test_r: torch.Tensor,
    test_m: torch.Tensor,
    folder: str | Path,
    layer: int | None = None,
) -> list[Path]:
    """Write every report figure into ``folder``.

    Files: ``layer_auroc.png``, ``scores_layer{l}.png``, ``pca_layer{l}.png``,
    ``cosine_matrix.png`` and ``pc_cosines_layer{l}.png``, where ``l`` is ``layer`` or, by default,
    ``report.best_layer``.

    Args:
        report: from ``lirefs.layer_report`` on ``test_r``/``test_m``.
        direction: the direction the report scored.
        test_r: ``[n_r, L + 1, d_model]`` held-out reasoning states.
        test_m: ``[n_m, L + 1, d_model]`` held-out memory states.
        folder: created if missing.
        layer: the layer for the per-layer figures (default: the report's best layer).

    Returns:
        The written paths, in the order above.
    """
    folder = Path(folder)
    if report.n_layers != direction.n_layers:
        raise ActivationError(
            f"the report covers layers 0..{report.n_layers} but the direction 0..{direction.n_layers}; "
            "pass the direction the report was made with"
        )
    l = (  # noqa: E741
        report.best_layer
        if layer is None
        else residual_index(layer, direction.n_layers, "this direction has")
    )
    check_states(test_r, "test_r", direction)
    check_states(test_m, "test_m", direction)
    both = torch.cat([test_r, test_m])  # [n_r + n_m, L + 1, d_model]
    k = min(5, both.shape[0], direction.d_model)
    return [
        plot_layer_auroc(report, folder / "layer_auroc.png"),
        plot_scores(direction, test_r, test_m, l, folder / f"scores_layer{l}.png"),
        plot_pca(test_r, test_m, l, folder / f"pca_layer{l}.png"),
        plot_cosine_matrix(direction, folder / "cosine_matrix.png"),
        plot_pc_cosines(direction, both, l, folder / f"pc_cosines_layer{l}.png", k=k),
    ]


def _arr(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def _check_finite(scores: np.ndarray, name: str) -> None:
    if not np.isfinite(scores).all():
        raise ActivationError(f"{name} gives NaN/inf scores; recollect the states")
