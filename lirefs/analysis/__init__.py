"""Analysis of a direction on held-out data: the layer report, its baselines, geometry and plots.

Data flow: data -> collect -> ``Direction`` -> **analysis** -> steer / evaluation. Modules:

* ``report``: ``LayerReport`` and ``layer_report`` (held-out AUROC per layer, the layer choice).
* ``stats``: AUROC, label-shuffling baselines, Cohen's d, logistic-probe accuracy.
* ``lengths``: the prompt-length confound (length alone, length-matched pairs).
* ``geometry``: 2-D PCA, layer-to-layer cosines, principal components vs the direction.
* ``plots``: every report figure (drawn with ``lirefs.figures``: ``figure`` / ``save_figure``).
* ``transfer``: ``transfer_report``, every direction scored on every test source.
* ``splits``: ``ActivationSplit`` (a set's train and test states) and ``split_report`` on it. The
  orchestration that makes splits and directions (``collect_split``, ``find_direction``,
  ``split_transfer``) lives in ``lirefs.pipeline``; those names still resolve here.
* ``html``: one self-contained ``report.html`` of all of it (``write_html_report``).
* ``states``: the checks of states given to any of these.
"""

from __future__ import annotations

from typing import Any

from ..batching import token_lengths
from .geometry import PCAProjection, cosine_matrix, pc_cosines, pca_2d
from .html import EvaluationSummary, load_evaluation, write_html_report
from .lengths import LengthBaseline, length_baseline, length_matched_pairs
from .plots import (
    PlotsUnavailableError,
    figure,
    plot_cosine_matrix,
    plot_layer_auroc,
    plot_pc_cosines,
    plot_pca,
    plot_scores,
    plot_transfer,
    plot_transfer_layers,
    save_figure,
    write_report_plots,
)
from .report import LayerReport, choose_best_layer, layer_report
from .splits import MOVED_TO_PIPELINE, ActivationSplit, split_report
from .stats import ShuffledBaseline, auroc, cohens_d, permuted_aurocs, probe_accuracy
from .transfer import TransferReport, transfer_report

__all__ = [
    "ActivationSplit",
    "EvaluationSummary",
    "LayerReport",
    "LengthBaseline",
    "PCAProjection",
    "PlotsUnavailableError",
    "ShuffledBaseline",
    "TransferReport",
    "auroc",
    "choose_best_layer",
    "cohens_d",
    "cosine_matrix",
    "figure",
    "layer_report",
    "length_baseline",
    "length_matched_pairs",
    "load_evaluation",
    "pc_cosines",
    "pca_2d",
    "permuted_aurocs",
    "plot_cosine_matrix",
    "plot_layer_auroc",
    "plot_pc_cosines",
    "plot_pca",
    "plot_scores",
    "plot_transfer",
    "plot_transfer_layers",
    "probe_accuracy",
    "save_figure",
    "split_report",
    "token_lengths",
    "transfer_report",
    "write_html_report",
    "write_report_plots",
]


def __getattr__(name: str) -> Any:
    """``collect_split``, ``find_direction`` and ``split_transfer``, now in ``lirefs.pipeline``."""
    if name in MOVED_TO_PIPELINE:
        from .. import pipeline  # the one import upward: these names' old home

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
