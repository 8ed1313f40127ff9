"""Geometry of the direction and the states: 2-D PCA view, layer-to-layer cosines, PCs vs r̂.

These are descriptive views of where the reasoning/memory distinction lives; none of them feeds the
layer choice.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..checks import renamed_keywords
from ..direction import Direction
from ..errors import DataError
from .states import check_direction, class_states, one_layer_states
from .stats import class_labels

__all__ = ["PCAProjection", "cosine_matrix", "pc_cosines", "pca_2d"]


class PCAProjection(NamedTuple):
    """2-D PCA of one layer's states with a logistic decision boundary (the paper's figure).

    Attributes:
        coords: ``[n_r + n_m, 2]`` float64 PCA coordinates, reasoning rows first.
        labels: ``[n_r + n_m]`` int64, 1 = reasoning, 0 = memory.
        explained_variance_ratio: ``[2]`` share of variance of PC1 and PC2.
        boundary: ``(w1, w2, b)``: the logistic boundary is ``w1 * pc1 + w2 * pc2 + b = 0`` and
            ``> 0`` predicts reasoning.
    """

    coords: np.ndarray
    labels: np.ndarray
    explained_variance_ratio: np.ndarray
    boundary: tuple[float, float, float]


def pca_2d(
    acts_r: torch.Tensor, acts_m: torch.Tensor, layer: int | None = None, *, seed: int = 0
) -> PCAProjection:
    """Project both classes' states at ``layer`` on their top two principal components.

    PCA is fit on the pooled states of both classes (centered, not scaled); a logistic regression
    (L2, C=1) is then fit on the 2-D coordinates to draw the decision boundary.

    Args:
        acts_r: ``[n_r, L + 1, d_model]`` (with ``layer``) or ``[n_r, d_model]`` reasoning states.
        acts_m: ``[n_m, L + 1, d_model]`` or ``[n_m, d_model]`` memory states.
        layer: residual index to take from 3-D states; leave ``None`` for 2-D states.
        seed: ``random_state`` of the PCA solver.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    x_r, x_m = class_states(acts_r, acts_m, layer)
    x = np.concatenate([x_r, x_m])
    if x.shape[0] < 3:
        raise DataError(f"PCA needs at least 3 states in all, got {x.shape[0]}")
    labels = class_labels(len(x_r), len(x_m))
    pca = PCA(n_components=2, random_state=seed)
    coords = pca.fit_transform(x)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(coords, labels)
    w = clf.coef_[0]
    return PCAProjection(
        coords=coords,
        labels=labels,
        explained_variance_ratio=np.asarray(pca.explained_variance_ratio_, dtype=np.float64),
        boundary=(float(w[0]), float(w[1]), float(clf.intercept_[0])),
    )


@renamed_keywords(liref="direction")
def cosine_matrix(direction: Direction) -> torch.Tensor:
    """Cosine similarity between the unit directions of every pair of layers.

    Returns:
        ``[L + 1, L + 1]`` float64, entry ``[i, j] = r̂_i · r̂_j``; rows and columns of layers
        whose direction is all zeros are NaN.
    """
    check_direction(direction)
    units = direction.units()
    cos = (units @ units.T).clamp(-1.0, 1.0)
    zero = direction.vectors.norm(dim=1) == 0
    cos[zero, :] = float("nan")
    cos[:, zero] = float("nan")
    return cos


@renamed_keywords(liref="direction")
def pc_cosines(direction: Direction, acts: torch.Tensor, layer: int, k: int = 5) -> torch.Tensor:
    """``|cos|`` between ``r̂_l`` and each of the top-``k`` principal components of the states.

    The sign of a principal component is arbitrary (PCA returns ``v`` or ``-v`` at random), so
    only the absolute cosine is meaningful. For comparison, a random unit vector in ``d_model``
    dimensions has ``|cos|`` about ``sqrt(2 / (pi * d_model))`` with any fixed axis.

    Args:
        direction: the direction.
        acts: ``[n, L + 1, d_model]`` states (e.g. both classes' held-out states together) or
            ``[n, d_model]`` states already taken at ``layer``.
        layer: residual index ``l``.
        k: number of components (at most ``min(n, d_model)``).

    Returns:
        ``[k]`` float64, entry ``i`` is ``|r̂_l · pc_i|``, PCs in decreasing variance order.
    """
    from sklearn.decomposition import PCA

    check_direction(direction)
    unit = direction.unit(layer).numpy()
    x = one_layer_states(acts, "acts", direction, layer)
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= min(x.shape):
        raise DataError(
            f"k={k!r} principal components need 1 <= k <= min(n_states, d_model) = {min(x.shape)}"
        )
    pca = PCA(n_components=int(k), svd_solver="full").fit(x)
    return torch.from_numpy(np.abs(pca.components_ @ unit))
