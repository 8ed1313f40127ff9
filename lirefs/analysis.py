"""How well the direction separates held-out prompts, layer by layer, and which layer to use.

``layer_report`` scores held-out reasoning and memory states with the direction at every residual
index ``l = 0..L`` (score ``h_l · r̂_l``) and reports, per layer:

* ``auroc``: the AUROC of the score, reasoning = positive class (0.5 = chance, 1 = perfect).
* ``effect_size``: Cohen's d of the scores (difference of class means over the pooled sd).
* ``shuffled_auroc`` / ``shuffled_auroc_p5`` / ``shuffled_auroc_p95`` / ``permutation_p``: the
  same AUROC with the class labels shuffled ``n_permutations`` times (mean, 5th and 95th
  percentile) and the permutation p-value of the real AUROC.
* ``probe_accuracy``: cross-validated accuracy of a logistic-regression probe on the states
  themselves (no direction involved): an upper reference for what is linearly decodable there.
* ``direction_norm`` (``||r_l||``) and ``cos_prev`` (cosine between ``r̂_l`` and ``r̂_{l-1}``).

Direction-based numbers are NaN where the direction is all zeros (typically ``l = 0``: every
prompt ends in the same token, so the embedding states of the two classes are identical).

Confound control: reasoning prompts tend to be longer than recall prompts, so a direction could
encode length. With prompt lengths given, the report adds ``length_auroc`` (length alone as the
classifier) and the AUROC per layer on a length-matched subset of the held-out prompts.

The best layer is the held-out AUROC argmax over ``l >= 1``. It is chosen on this held-out split of
the direction set only, never on an evaluation benchmark (the official code sweeps layers on the
evaluation data itself, which leaks; see METHOD.md section 3).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .batching import token_lengths
from .checks import residual_index
from .console import progress_bar
from .direction import Direction
from .errors import ActivationError, DataError, DirectionError, LayerError
from .store import check_metadata, make_metadata, write_json

__all__ = [
    "LayerReport",
    "PCAProjection",
    "cosine_matrix",
    "layer_report",
    "length_matched_pairs",
    "pc_cosines",
    "pca_2d",
    "token_lengths",
]

#: Prompt lengths: a list or 1-D array of numbers, one per prompt.
Lengths = Sequence[float] | np.ndarray

#: Per-layer list fields of ``LayerReport`` (one float per residual index ``l = 0..L``).
_PER_LAYER = (
    "auroc",
    "effect_size",
    "probe_accuracy",
    "shuffled_auroc",
    "shuffled_auroc_p5",
    "shuffled_auroc_p95",
    "permutation_p",
    "direction_norm",
    "cos_prev",
    "train_auroc",
    "length_matched_auroc",
    "length_matched_shuffled_p95",
)


# ---------------------------------------------------------------------------------------------
# the report object
# ---------------------------------------------------------------------------------------------


@dataclass
class LayerReport:
    """Per-layer separation of held-out reasoning vs memory states by the direction.

    Every per-layer list has ``L + 1`` floats, index ``l`` == residual index ``l``
    (``HF output_hidden_states[l]``); NaN where the number does not exist (zero direction, or
    ``cos_prev`` at ``l = 0``).

    Attributes:
        auroc: AUROC of the held-out scores ``h_l · r̂_l``, reasoning = positive class.
        effect_size: Cohen's d of the held-out scores, ``(mean_r - mean_m) / pooled_sd`` with the
            pooled sd ``sqrt(((n_r-1) s_r² + (n_m-1) s_m²) / (n_r + n_m - 2))``.
        probe_accuracy: mean accuracy of a logistic-regression probe on the held-out states at
            layer ``l`` (standardized features, L2 penalty C=1, ``cv_folds``-fold stratified CV);
            independent of the direction. Empty list when the report ran with ``probe=False``.
        shuffled_auroc: mean AUROC of the same scores over ``n_permutations`` label shufflings.
        shuffled_auroc_p5: 5th percentile of the shuffled AUROCs.
        shuffled_auroc_p95: 95th percentile of the shuffled AUROCs: a real AUROC above it is
            unlikely (p < 0.05) to be chance.
        permutation_p: ``(1 + #{shuffled >= real}) / (1 + n_permutations)``.
        direction_norm: ``||r_l||`` (0 where the direction is all zeros).
        cos_prev: cosine between ``r̂_l`` and ``r̂_{l-1}`` (NaN at ``l = 0``).
        best_layer: argmax over ``l >= 1`` with a non-zero direction of ``auroc`` (ties: earliest),
            chosen on this held-out data only.
        n_reasoning: held-out reasoning prompts.
        n_memory: held-out memory prompts.
        train_auroc: in-sample AUROC on the prompts that built the direction (empty list when no
            training states were given); far above ``auroc`` means the direction overfits.
        length_auroc: AUROC of prompt length alone as the classifier, in its better orientation
            (``max(auc, 1 - auc)``), or ``None`` without lengths.
        length_auroc_oriented: the same with "longer = reasoning" (no orientation chosen).
        length_matched_auroc: per-layer AUROC on the length-matched subset (empty list without
            lengths or with fewer than 2 matched pairs).
        length_matched_shuffled_p95: 95th percentile of shuffled AUROCs on that subset.
        length_matched_pairs: number of (reasoning, memory) pairs in the length-matched subset.
        length_matched_length_auroc: length-alone AUROC (better orientation) on the matched subset:
            near 0.5 means the matching removed the length difference.
        metadata: ``make_metadata("report", ...)``: model, data (class sizes, a hash of the held-out
            states, the direction's data), settings.
    """

    auroc: list[float]
    effect_size: list[float]
    probe_accuracy: list[float]
    shuffled_auroc: list[float]
    shuffled_auroc_p5: list[float]
    shuffled_auroc_p95: list[float]
    permutation_p: list[float]
    direction_norm: list[float]
    cos_prev: list[float]
    best_layer: int
    n_reasoning: int
    n_memory: int
    train_auroc: list[float] = field(default_factory=list)
    length_auroc: float | None = None
    length_auroc_oriented: float | None = None
    length_matched_auroc: list[float] = field(default_factory=list)
    length_matched_shuffled_p95: list[float] = field(default_factory=list)
    length_matched_pairs: int = 0
    length_matched_length_auroc: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- convenience ---------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """``L``: residual indices run ``0..L``."""
        return len(self.auroc) - 1

    @property
    def best_auroc(self) -> float:
        """Held-out AUROC at ``best_layer``."""
        return self.auroc[self.best_layer]

    # -- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: NaN becomes ``None``, infinities the strings ``"inf"``/``"-inf"``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _PER_LAYER:
                out[f.name] = [_encode(v) for v in value]
            elif isinstance(value, float):
                out[f.name] = _encode(value)
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> LayerReport:
        """Inverse of ``to_dict``."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in obj:
                continue
            value = obj[f.name]
            if f.name in _PER_LAYER:
                kwargs[f.name] = [_decode(v) for v in value]
            elif f.name in ("length_auroc", "length_auroc_oriented", "length_matched_length_auroc"):
                kwargs[f.name] = None if value is None else _decode(value)
            else:
                kwargs[f.name] = value
        return cls(**kwargs)

    def save(self, path: str | Path) -> Path:
        """Write the report as indented JSON, atomically. Returns ``path``."""
        path = Path(path)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | Path) -> LayerReport:
        """Read a report written by ``save``.

        Raises:
            DataError: the file is missing or not a lirefs layer report.
            MetadataMismatchError: the report was made under another layer convention.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"report file {str(path)!r} does not exist; write one with report.save")
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{path} is not a JSON file ({exc}); expected a lirefs report"
            ) from None
        if not isinstance(obj, dict) or "auroc" not in obj or "metadata" not in obj:
            raise DataError(f"{path} is JSON but not a lirefs layer report (no auroc/metadata)")
        check_metadata(obj["metadata"], what=str(path), kind="report")
        return cls.from_dict(obj)

    # -- text ----------------------------------------------------------------------------------

    def table_rows(self) -> list[dict[str, str]]:
        """One dict per layer, column name -> formatted cell, for a rich (or any) table.

        Columns: ``layer`` (with ``*`` at the best layer), ``AUROC``, ``shuffled p95``, ``p``,
        ``Cohen's d``, ``probe acc`` (when run), ``matched AUROC`` (with lengths), ``train AUROC``
        (with training states), ``||r||`` and ``cos prev``.
        """
        rows = []
        for layer in range(self.n_layers + 1):
            row = {
                "layer": f"{layer}{' *' if layer == self.best_layer else ''}",
                "AUROC": _fmt(self.auroc[layer], 3),
                "shuffled p95": _fmt(self.shuffled_auroc_p95[layer], 3),
                "p": _fmt(self.permutation_p[layer], 3),
                "Cohen's d": _fmt(self.effect_size[layer], 2),
            }
            if self.probe_accuracy:
                row["probe acc"] = _fmt(self.probe_accuracy[layer], 3)
            if self.length_matched_auroc:
                row["matched AUROC"] = _fmt(self.length_matched_auroc[layer], 3)
            if self.train_auroc:
                row["train AUROC"] = _fmt(self.train_auroc[layer], 3)
            row["||r||"] = _fmt(self.direction_norm[layer], 3)
            row["cos prev"] = _fmt(self.cos_prev[layer], 3)
            rows.append(row)
        return rows

    def summary(self) -> str:
        """One paragraph: the best layer, its AUROC against chance and against prompt length."""
        b = self.best_layer
        auc, p95 = self.auroc[b], self.shuffled_auroc_p95[b]
        n_perm = (self.metadata.get("settings") or {}).get("n_permutations", "?")
        parts = [
            f"Best layer {b} of 0..{self.n_layers}, chosen by held-out AUROC on "
            f"{self.n_reasoning} reasoning / {self.n_memory} memory prompts (never on an "
            f"evaluation benchmark): AUROC {auc:.3f} against {p95:.3f} at the 95th percentile of "
            f"{n_perm} label shufflings (p = {self.permutation_p[b]:.3g}), Cohen's d "
            f"{self.effect_size[b]:.2f}"
        ]
        if self.probe_accuracy:
            parts[-1] += f", logistic-probe accuracy {self.probe_accuracy[b]:.3f}"
        parts[-1] += "."
        significant = auc > p95
        if not significant:
            parts.append(
                "At its best layer the direction does not separate the held-out classes beyond "
                "chance; collect more or cleaner data before steering with it."
            )
            return " ".join(parts)
        if self.length_auroc is None:
            parts.append(
                "No prompt lengths were given, so a length artefact is not ruled out; pass "
                "test_reasoning_lengths/test_memory_lengths to check."
            )
            return " ".join(parts)
        beats_length = auc > self.length_auroc
        parts.append(
            f"Prompt length alone reaches AUROC {self.length_auroc:.3f} (better of its two "
            f"orientations), so the direction {'beats' if beats_length else 'does not beat'} "
            "length as a classifier."
        )
        if self.length_matched_auroc:
            m_auc = self.length_matched_auroc[b]
            m_p95 = self.length_matched_shuffled_p95[b]
            small = " (a small subset: read it with care)" if self.length_matched_pairs < 10 else ""
            m_len = self.length_matched_length_auroc
            parts.append(
                f"On {self.length_matched_pairs} length-matched pairs{small}, where length alone "
                f"gives AUROC {m_len:.3f}, layer {b} reaches AUROC {m_auc:.3f} against a shuffled "
                f"95th percentile of {m_p95:.3f}."
            )
            if m_auc > m_p95:
                parts.append(
                    "The direction is more than a length artefact: it still separates prompts "
                    "of matched length."
                )
            else:
                parts.append(
                    "The direction may be a length artefact: it does not separate prompts of "
                    "matched length beyond chance."
                )
        elif beats_length:
            parts.append(
                f"No length-matched subset could be formed ({self.length_matched_pairs} pairs), "
                "so the evidence against a length artefact rests on beating length alone."
            )
        else:
            parts.append(
                f"No length-matched subset could be formed ({self.length_matched_pairs} pairs) "
                "and length alone separates as well: the direction may be a length artefact; "
                "add reasoning and memory prompts of similar length."
            )
        return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


def layer_report(
    liref: Direction,
    test_reasoning_acts: torch.Tensor,
    test_memory_acts: torch.Tensor,
    *,
    train_reasoning_acts: torch.Tensor | None = None,
    train_memory_acts: torch.Tensor | None = None,
    test_reasoning_lengths: Lengths | None = None,
    test_memory_lengths: Lengths | None = None,
    n_permutations: int = 200,
    cv_folds: int = 5,
    seed: int = 0,
    probe: bool = True,
    length_caliper: float = 0.1,
    progress: bool | None = None,
) -> LayerReport:
    """Score held-out states with the direction at every layer and choose the best layer.

    Args:
        liref: the direction, built from a training split of the direction set.
        test_reasoning_acts: ``[n_r, L + 1, d_model]`` held-out reasoning states (not used to build
            ``liref``).
        test_memory_acts: ``[n_m, L + 1, d_model]`` held-out memory states.
        train_reasoning_acts: optional ``[n_r', L + 1, d_model]`` states that built ``liref``;
            adds the in-sample ``train_auroc`` (an overfitting gauge).
        train_memory_acts: optional ``[n_m', L + 1, d_model]``; give both train tensors or neither.
        test_reasoning_lengths: optional ``[n_r]`` prompt lengths (tokens or characters; same unit
            for both classes) for the length baselines.
        test_memory_lengths: optional ``[n_m]`` prompt lengths.
        n_permutations: label shufflings for the chance baseline (>= 1; p-values resolve
            ``1 / (n_permutations + 1)``).
        cv_folds: folds of the stratified cross-validation of the probe (each class needs at
            least this many held-out prompts).
        seed: seeds the shuffles and the CV split; the same inputs and seed give the same report.
        probe: run the logistic-regression probe (the slowest part on wide models).
        length_caliper: two prompts are length-matched when their lengths differ by at most this
            fraction of the longer one.
        progress: show a progress bar over layers (default: when stderr is a terminal).

    Returns:
        A ``LayerReport``.

    Raises:
        DataError: a class is empty or has fewer than 2 prompts, a length list does not match its
            states, too few prompts for ``cv_folds``, or bad settings.
        ActivationError: states that are not ``[n, L + 1, d_model]`` tensors, or contain NaN/inf.
        DirectionError: states whose ``[L + 1, d_model]`` differs from the direction's, or a
            direction that is zero at every layer ``l >= 1``.
    """
    if not isinstance(liref, Direction):
        raise DirectionError(
            f"liref must be a lirefs.Direction, got {type(liref).__name__}; build one with "
            "Direction.from_activations or Direction.load"
        )
    r_np = _states(test_reasoning_acts, "test_reasoning_acts", liref)
    m_np = _states(test_memory_acts, "test_memory_acts", liref)
    if (train_reasoning_acts is None) != (train_memory_acts is None):
        raise DataError(
            "give both train_reasoning_acts and train_memory_acts, or neither; got only "
            f"{'train_reasoning_acts' if train_memory_acts is None else 'train_memory_acts'}"
        )
    train: tuple[np.ndarray, np.ndarray] | None = None
    if train_reasoning_acts is not None and train_memory_acts is not None:
        train = (
            _states(train_reasoning_acts, "train_reasoning_acts", liref),
            _states(train_memory_acts, "train_memory_acts", liref),
        )
    if (
        isinstance(n_permutations, bool)
        or int(n_permutations) != n_permutations
        or n_permutations < 1
    ):
        raise DataError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    n_permutations = int(n_permutations)
    n_r, n_m = r_np.shape[0], m_np.shape[0]
    if probe and (int(cv_folds) != cv_folds or cv_folds < 2 or min(n_r, n_m) < cv_folds):
        raise DataError(
            f"the probe's {cv_folds}-fold cross-validation needs cv_folds >= 2 and at least "
            f"cv_folds prompts per class, got {n_r} reasoning and {n_m} memory; lower cv_folds "
            "or pass probe=False"
        )
    if not 0.0 <= length_caliper < 1.0:
        raise DataError(f"length_caliper must be in [0, 1), got {length_caliper!r}")
    lengths = _lengths(test_reasoning_lengths, test_memory_lengths, n_r, n_m)

    n_layers = liref.n_layers
    units = liref.units().numpy()  # [L + 1, d]
    norms = liref.vectors.norm(dim=1).numpy()  # [L + 1]
    nonzero = norms > 0
    labels = np.concatenate([np.ones(n_r, dtype=np.int64), np.zeros(n_m, dtype=np.int64)])
    states = np.concatenate([r_np, m_np], axis=0)  # [n, L + 1, d]
    rng = np.random.default_rng(seed)
    perms = _permutations(rng, labels, n_permutations)  # [P, n]

    matched: np.ndarray | None = None  # indices into the concatenated test set
    report_len: dict[str, Any] = {}
    if lengths is not None:
        len_r, len_m = lengths
        all_len = np.concatenate([len_r, len_m])
        oriented = _auroc(labels, all_len)
        report_len["length_auroc_oriented"] = oriented
        report_len["length_auroc"] = max(oriented, 1.0 - oriented)
        pairs = length_matched_pairs(len_r, len_m, caliper=length_caliper)
        report_len["length_matched_pairs"] = len(pairs)
        if len(pairs) >= 2:
            matched = np.array([i for i, _ in pairs] + [n_r + j for _, j in pairs])
            m_auc = _auroc(labels[matched], all_len[matched])
            report_len["length_matched_length_auroc"] = max(m_auc, 1.0 - m_auc)
    matched_perms = (
        _permutations(rng, labels[matched], n_permutations) if matched is not None else None
    )

    nan = float("nan")
    out: dict[str, list[float]] = {name: [] for name in _PER_LAYER}
    with progress_bar("layer report", n_layers + 1, progress) as bar:
        for layer in range(n_layers + 1):
            x = states[:, layer]  # [n, d]
            out["direction_norm"].append(float(norms[layer]))
            prev_ok = layer > 0 and nonzero[layer] and nonzero[layer - 1]
            out["cos_prev"].append(
                float(np.dot(units[layer], units[layer - 1])) if prev_ok else nan
            )
            if probe:
                out["probe_accuracy"].append(_probe_accuracy(x, labels, cv_folds, seed))
            if not nonzero[layer]:
                for name in ("auroc", "effect_size", "shuffled_auroc", "shuffled_auroc_p5",
                             "shuffled_auroc_p95", "permutation_p"):  # fmt: skip
                    out[name].append(nan)
                if train is not None:
                    out["train_auroc"].append(nan)
                if matched is not None:
                    out["length_matched_auroc"].append(nan)
                    out["length_matched_shuffled_p95"].append(nan)
                bar.advance()
                continue
            scores = x @ units[layer]  # [n]
            auc = _auroc(labels, scores)
            null = _permuted_aurocs(scores, perms)  # [P]
            out["auroc"].append(auc)
            out["effect_size"].append(_cohens_d(scores[:n_r], scores[n_r:]))
            out["shuffled_auroc"].append(float(null.mean()))
            out["shuffled_auroc_p5"].append(float(np.percentile(null, 5)))
            out["shuffled_auroc_p95"].append(float(np.percentile(null, 95)))
            out["permutation_p"].append(float((1 + np.sum(null >= auc - 1e-12)) / (1 + len(null))))
            if train is not None:
                tr_scores = np.concatenate([train[0][:, layer], train[1][:, layer]]) @ units[layer]
                tr_labels = np.concatenate(
                    [
                        np.ones(len(train[0]), dtype=np.int64),
                        np.zeros(len(train[1]), dtype=np.int64),
                    ]
                )
                out["train_auroc"].append(_auroc(tr_labels, tr_scores))
            if matched is not None and matched_perms is not None:
                out["length_matched_auroc"].append(_auroc(labels[matched], scores[matched]))
                m_null = _permuted_aurocs(scores[matched], matched_perms)
                out["length_matched_shuffled_p95"].append(float(np.percentile(m_null, 95)))
            bar.advance()

    candidates = [l for l in range(1, n_layers + 1) if nonzero[l]]  # noqa: E741
    if not candidates:
        raise DirectionError(
            f"the direction is all zeros at every layer 1..{n_layers}: the two classes have the "
            "same mean states; check that reasoning and memory prompts differ"
        )
    best = max(candidates, key=lambda l: (out["auroc"][l], -l))  # noqa: E741

    data = {
        "n_reasoning": n_r,
        "n_memory": n_m,
        "test_states_hash": _hash_arrays(r_np, m_np),
        "direction_data": liref.metadata.get("data"),
        "lengths_given": lengths is not None,
        "train_given": train is not None,
    }
    settings = {
        "n_permutations": n_permutations,
        "cv_folds": cv_folds if probe else None,
        "seed": seed,
        "probe": probe,
        "probe_model": "StandardScaler + LogisticRegression(C=1.0, lbfgs), StratifiedKFold"
        if probe
        else None,
        "length_caliper": length_caliper,
        "score": "h_l . r_hat_l at the last prompt token",
        "best_layer_rule": "argmax held-out AUROC over l >= 1 with a non-zero direction; ties -> "
        "earliest",
    }
    meta = make_metadata("report", model=liref.metadata.get("model"), data=data, settings=settings)
    return LayerReport(
        auroc=out["auroc"],
        effect_size=out["effect_size"],
        probe_accuracy=out["probe_accuracy"],
        shuffled_auroc=out["shuffled_auroc"],
        shuffled_auroc_p5=out["shuffled_auroc_p5"],
        shuffled_auroc_p95=out["shuffled_auroc_p95"],
        permutation_p=out["permutation_p"],
        direction_norm=out["direction_norm"],
        cos_prev=out["cos_prev"],
        best_layer=best,
        n_reasoning=n_r,
        n_memory=n_m,
        train_auroc=out["train_auroc"],
        length_matched_auroc=out["length_matched_auroc"],
        length_matched_shuffled_p95=out["length_matched_shuffled_p95"],
        metadata=meta,
        **report_len,
    )


def length_matched_pairs(
    reasoning_lengths: Lengths, memory_lengths: Lengths, *, caliper: float = 0.1
) -> list[tuple[int, int]]:
    """Pair reasoning and memory prompts of similar length, one to one.

    Two prompts match when ``|a - b| <= caliper * max(a, b)``. Both lists are walked in length
    order and each prompt is paired with the nearest unused partner inside the caliper; in one
    dimension this greedy walk finds the largest possible set of matched pairs.

    Args:
        reasoning_lengths: ``[n_r]`` lengths.
        memory_lengths: ``[n_m]`` lengths (same unit).
        caliper: allowed relative length difference.

    Returns:
        ``(i, j)`` pairs: reasoning index ``i`` matched with memory index ``j``.
    """
    r = np.asarray(reasoning_lengths, dtype=np.float64)
    m = np.asarray(memory_lengths, dtype=np.float64)
    r_order, m_order = np.argsort(r, kind="stable"), np.argsort(m, kind="stable")
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < len(r_order) and j < len(m_order):
        a, b = r[r_order[i]], m[m_order[j]]
        if abs(a - b) <= caliper * max(abs(a), abs(b)):
            pairs.append((int(r_order[i]), int(m_order[j])))
            i += 1
            j += 1
        elif a < b:
            i += 1
        else:
            j += 1
    return pairs


# ---------------------------------------------------------------------------------------------
# geometry: PCA view, layer-to-layer cosines, direction vs principal components
# ---------------------------------------------------------------------------------------------


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

    x_r, x_m = _layer_states(acts_r, acts_m, layer)
    x = np.concatenate([x_r, x_m])
    if x.shape[0] < 3:
        raise DataError(f"PCA needs at least 3 states in all, got {x.shape[0]}")
    labels = np.concatenate([np.ones(len(x_r), dtype=np.int64), np.zeros(len(x_m), dtype=np.int64)])
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


def cosine_matrix(liref: Direction) -> torch.Tensor:
    """Cosine similarity between the unit directions of every pair of layers.

    Returns:
        ``[L + 1, L + 1]`` float64, entry ``[i, j] = r̂_i · r̂_j``; rows and columns of layers
        whose direction is all zeros are NaN.
    """
    if not isinstance(liref, Direction):
        raise DirectionError(f"liref must be a lirefs.Direction, got {type(liref).__name__}")
    units = liref.units()
    cos = (units @ units.T).clamp(-1.0, 1.0)
    zero = liref.vectors.norm(dim=1) == 0
    cos[zero, :] = float("nan")
    cos[:, zero] = float("nan")
    return cos


def pc_cosines(liref: Direction, acts: torch.Tensor, layer: int, k: int = 5) -> torch.Tensor:
    """``|cos|`` between ``r̂_l`` and each of the top-``k`` principal components of the states.

    The sign of a principal component is arbitrary (PCA returns ``v`` or ``-v`` at random), so
    only the absolute cosine is meaningful. For comparison, a random unit vector in ``d_model``
    dimensions has ``|cos|`` about ``sqrt(2 / (pi * d_model))`` with any fixed axis.

    Args:
        liref: the direction.
        acts: ``[n, L + 1, d_model]`` states (e.g. both classes' held-out states together) or
            ``[n, d_model]`` states already taken at ``layer``.
        layer: residual index ``l``.
        k: number of components (at most ``min(n, d_model)``).

    Returns:
        ``[k]`` float64, entry ``i`` is ``|r̂_l · pc_i|``, PCs in decreasing variance order.
    """
    from sklearn.decomposition import PCA

    if not isinstance(liref, Direction):
        raise DirectionError(f"liref must be a lirefs.Direction, got {type(liref).__name__}")
    unit = liref.unit(layer).numpy()
    x = _one_layer(acts, "acts", liref, layer)
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= min(x.shape):
        raise DataError(
            f"k={k!r} principal components need 1 <= k <= min(n_states, d_model) = {min(x.shape)}"
        )
    pca = PCA(n_components=int(k), svd_solver="full").fit(x)
    return torch.from_numpy(np.abs(pca.components_ @ unit))


# ---------------------------------------------------------------------------------------------
# internals
# ---------------------------------------------------------------------------------------------


def _states(acts: Any, name: str, liref: Direction) -> np.ndarray:
    """Check ``[n, L + 1, d_model]`` states against the direction; float64 numpy copy."""
    if not isinstance(acts, torch.Tensor):
        raise ActivationError(
            f"{name} must be a torch.Tensor [n, L + 1, d_model], got {type(acts).__name__}"
        )
    if acts.dim() != 3:
        raise ActivationError(
            f"{name} must be [n, L + 1, d_model] = [n, {liref.n_layers + 1}, {liref.d_model}], "
            f"got shape {tuple(acts.shape)}"
        )
    if tuple(acts.shape[1:]) != tuple(liref.vectors.shape):
        raise DirectionError(
            f"{name} {tuple(acts.shape)} does not match the direction's [L + 1, d_model] = "
            f"{tuple(liref.vectors.shape)}; use states collected with the model the direction "
            "was built on, at all layers"
        )
    if acts.shape[0] < 2:
        raise DataError(
            f"{name} has {acts.shape[0]} prompt(s); each class needs at least 2 held-out prompts "
            "(empty or one-class test data cannot be scored)"
        )
    if not torch.isfinite(acts).all():
        raise ActivationError(f"{name} contains NaN or inf; recollect it (try dtype='float32')")
    return acts.detach().to("cpu", torch.float64).numpy()


def _one_layer(acts: Any, name: str, liref: Direction, layer: int) -> np.ndarray:
    """``[n, d_model]`` float64 states at ``layer`` from 3-D or 2-D input."""
    if not isinstance(acts, torch.Tensor):
        raise ActivationError(f"{name} must be a torch.Tensor, got {type(acts).__name__}")
    if acts.dim() == 3:
        if tuple(acts.shape[1:]) != tuple(liref.vectors.shape):
            raise DirectionError(
                f"{name} {tuple(acts.shape)} does not match the direction's [L + 1, d_model] = "
                f"{tuple(liref.vectors.shape)}"
            )
        acts = acts[:, layer]
    if acts.dim() != 2 or acts.shape[1] != liref.d_model:
        raise ActivationError(
            f"{name} must be [n, {liref.n_layers + 1}, {liref.d_model}] or [n, {liref.d_model}], "
            f"got {tuple(acts.shape)}"
        )
    if acts.shape[0] == 0:
        raise DataError(f"{name} is empty: pass at least one state")
    if not torch.isfinite(acts).all():
        raise ActivationError(f"{name} contains NaN or inf; recollect it")
    return acts.detach().to("cpu", torch.float64).numpy()


def _layer_states(acts_r: Any, acts_m: Any, layer: int | None) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name, acts in (("acts_r", acts_r), ("acts_m", acts_m)):
        if not isinstance(acts, torch.Tensor):
            raise ActivationError(f"{name} must be a torch.Tensor, got {type(acts).__name__}")
        if acts.dim() == 3:
            if layer is None:
                raise LayerError(
                    f"{name} is [n, L + 1, d_model]: pass layer= (0..{acts.shape[1] - 1})"
                )
            acts = acts[:, residual_index(layer, acts.shape[1] - 1, "these states have")]
        if acts.dim() != 2:
            raise ActivationError(
                f"{name} must be [n, L + 1, d_model] or [n, d_model], got {tuple(acts.shape)}"
            )
        if acts.shape[0] == 0:
            raise DataError(f"{name} is empty: each class needs at least one state")
        if not torch.isfinite(acts).all():
            raise ActivationError(f"{name} contains NaN or inf; recollect it")
        out.append(acts.detach().to("cpu", torch.float64).numpy())
    if out[0].shape[1] != out[1].shape[1]:
        raise ActivationError(
            f"acts_r has d_model {out[0].shape[1]} but acts_m has {out[1].shape[1]}; use states of "
            "the same model"
        )
    return out[0], out[1]


def _lengths(
    len_r: Lengths | None, len_m: Lengths | None, n_r: int, n_m: int
) -> tuple[np.ndarray, np.ndarray] | None:
    if len_r is None and len_m is None:
        return None
    if len_r is None or len_m is None:
        raise DataError(
            "give both test_reasoning_lengths and test_memory_lengths, or neither; got only one"
        )
    out = []
    for name, values, n in (
        ("test_reasoning_lengths", len_r, n_r),
        ("test_memory_lengths", len_m, n_m),
    ):
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{name} must be numbers (one length per prompt), got {values!r:.80}"
            ) from None
        if arr.shape != (n,):
            raise DataError(
                f"{name} has shape {arr.shape}, expected ({n},): one length per held-out prompt"
            )
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise DataError(f"{name} must be finite non-negative numbers")
        out.append(arr)
    return out[0], out[1]


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC with ``labels == 1`` as the positive class (ties count one half)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _permutations(rng: np.random.Generator, labels: np.ndarray, n: int) -> np.ndarray:
    """``[n, len(labels)]`` bool: shuffled copies of ``labels == 1``."""
    return np.stack([rng.permutation(labels) == 1 for _ in range(n)])


def _permuted_aurocs(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` under each row of ``positive`` (``[P, n]`` bool): ``[P]``.

    Mann-Whitney form with average ranks for ties, equal to ``roc_auc_score`` for every row.
    """
    from scipy.stats import rankdata

    ranks = rankdata(scores)  # [n], average ranks
    n_pos = positive.sum(axis=1)  # [P]
    n_neg = positive.shape[1] - n_pos
    rank_sum = positive.astype(np.float64) @ ranks
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """``(mean(a) - mean(b)) / pooled_sd`` (sample variances, ddof = 1)."""
    n_a, n_b = len(a), len(b)
    pooled = ((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2)
    diff = float(a.mean() - b.mean())
    if pooled <= 0:
        return float("nan") if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(pooled)


def _probe_accuracy(x: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> float:
    """Mean held-out accuracy of a standardized logistic-regression probe, stratified k-fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, x, labels, cv=cv, scoring="accuracy").mean())


def _hash_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _encode(v: float) -> float | str | None:
    v = float(v)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _decode(v: Any) -> float:
    if v is None:
        return float("nan")
    return float(v)  # float("inf") / float("-inf") parse the encoded strings


def _fmt(v: float, digits: int) -> str:
    return "-" if math.isnan(v) else f"{v:.{digits}f}"
