"""Analysis of a direction on held-out data: the layer report, its baselines, geometry and plots.

Data flow: data -> collect -> ``Direction`` -> **analysis** -> steer / evaluation. Modules:

* ``report``: ``LayerReport`` and ``layer_report`` (held-out AUROC per layer, the layer choice).
* ``stats``: AUROC, label-shuffling baselines, Cohen's d, logistic-probe accuracy.
* ``lengths``: the prompt-length confound (length alone, length-matched pairs).
* ``geometry``: 2-D PCA, layer-to-layer cosines, principal components vs the direction.
* ``plots``: every figure, and the generic ``figure`` / ``save_figure`` helpers.
* ``splits``: the held-out split pipeline (``collect_split``, ``find_direction``, ``split_report``,
  ``ActivationSplit``).
* ``states``: the checks of states given to any of these.
"""

from __future__ import annotations

from ..batching import token_lengths
from .geometry import PCAProjection, cosine_matrix, pc_cosines, pca_2d
from .lengths import LengthBaseline, length_baseline, length_matched_pairs
from .plots import (
    PlotsUnavailableError,
    figure,
    plot_cosine_matrix,
    plot_layer_auroc,
    plot_pc_cosines,
    plot_pca,
    plot_scores,
    save_figure,
    write_report_plots,
)
from .report import LayerReport, choose_best_layer, layer_report
from .splits import ActivationSplit, collect_split, find_direction, split_report
from .stats import ShuffledBaseline, auroc, cohens_d, permuted_aurocs, probe_accuracy

__all__ = [
    "ActivationSplit",
    "LayerReport",
    "LengthBaseline",
    "PCAProjection",
    "PlotsUnavailableError",
    "ShuffledBaseline",
    "auroc",
    "choose_best_layer",
    "cohens_d",
    "collect_split",
    "cosine_matrix",
    "figure",
    "find_direction",
    "layer_report",
    "length_baseline",
    "length_matched_pairs",
    "pc_cosines",
    "pca_2d",
    "permuted_aurocs",
    "plot_cosine_matrix",
    "plot_layer_auroc",
    "plot_pc_cosines",
    "plot_pca",
    "plot_scores",
    "probe_accuracy",
    "save_figure",
    "split_report",
    "token_lengths",
    "write_report_plots",
]
