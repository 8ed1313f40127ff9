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
evaluation data itself, which leaks; see docs/method.md section 3).

``layer_report`` is a short composition of named steps, each usable alone: ``check_report_inputs``
(the held-out and train states, lengths and settings), ``length_baseline``, ``direction_geometry``
(norms and ``cos_prev``), ``score_layer`` (one layer's AUROC, Cohen's d, shuffled baseline, train
and length-matched AUROC), ``probe_accuracy``, ``choose_best_layer`` and ``report_metadata``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..checks import renamed_keywords
from ..console import progress_bar
from ..direction import Direction
from ..errors import DataError, DirectionError
from ..store import check_metadata, make_metadata, write_json
from .lengths import LengthBaseline, Lengths, check_lengths, length_baseline
from .states import check_direction, check_states, hash_states
from .stats import (
    auroc,
    class_labels,
    cohens_d,
    probe_accuracy,
    shuffled_baseline,
    shuffled_labels,
)

__all__ = [
    "PER_LAYER_FIELDS",
    "LayerReport",
    "ReportInputs",
    "check_report_inputs",
    "choose_best_layer",
    "decode_float",
    "direction_geometry",
    "encode_float",
    "format_float",
    "layer_report",
    "report_metadata",
    "score_layer",
]

#: Per-layer list fields of ``LayerReport`` (one float per residual index ``l = 0..L``).
PER_LAYER_FIELDS = (
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

#: The per-layer fields that use the direction (NaN where it is all zeros).
_SEPARATION_FIELDS = (
    "auroc",
    "effect_size",
    "shuffled_auroc",
    "shuffled_auroc_p5",
    "shuffled_auroc_p95",
    "permutation_p",
)

_NAN = float("nan")


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
            if f.name in PER_LAYER_FIELDS:
                out[f.name] = [encode_float(v) for v in value]
            elif isinstance(value, float):
                out[f.name] = encode_float(value)
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
            if f.name in PER_LAYER_FIELDS:
                kwargs[f.name] = [decode_float(v) for v in value]
            elif f.name in ("length_auroc", "length_auroc_oriented", "length_matched_length_auroc"):
                kwargs[f.name] = None if value is None else decode_float(value)
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
                "AUROC": format_float(self.auroc[layer], 3),
                "shuffled p95": format_float(self.shuffled_auroc_p95[layer], 3),
                "p": format_float(self.permutation_p[layer], 3),
                "Cohen's d": format_float(self.effect_size[layer], 2),
            }
            if self.probe_accuracy:
                row["probe acc"] = format_float(self.probe_accuracy[layer], 3)
            if self.length_matched_auroc:
                row["matched AUROC"] = format_float(self.length_matched_auroc[layer], 3)
            if self.train_auroc:
                row["train AUROC"] = format_float(self.train_auroc[layer], 3)
            row["||r||"] = format_float(self.direction_norm[layer], 3)
            row["cos prev"] = format_float(self.cos_prev[layer], 3)
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
# the steps
# ---------------------------------------------------------------------------------------------


class ReportInputs(NamedTuple):
    """The checked inputs of a layer report.

    Attributes:
        states: ``[n_r + n_m, L + 1, d_model]`` float64 held-out states, reasoning rows first.
        labels: ``[n_r + n_m]`` int64, 1 = reasoning.
        n_reasoning: ``n_r``.
        n_memory: ``n_m``.
        train: ``([n_r', L + 1, d], [n_m', L + 1, d])`` float64 training states, or ``None``.
        lengths: ``([n_r], [n_m])`` float64 prompt lengths, or ``None``.
        test_hash: ``hash_states`` of both held-out classes (names the test set in the metadata).
    """

    states: np.ndarray
    labels: np.ndarray
    n_reasoning: int
    n_memory: int
    train: tuple[np.ndarray, np.ndarray] | None
    lengths: tuple[np.ndarray, np.ndarray] | None
    test_hash: str


def check_report_inputs(
    direction: Any,
    test_reasoning_acts: Any,
    test_memory_acts: Any,
    *,
    train_reasoning_acts: Any = None,
    train_memory_acts: Any = None,
    test_reasoning_lengths: Lengths | None = None,
    test_memory_lengths: Lengths | None = None,
    n_permutations: Any = 200,
    cv_folds: int = 5,
    probe: bool = True,
    length_caliper: float = 0.1,
) -> ReportInputs:
    """Step 1: check every input of ``layer_report`` (see its Raises) and convert the states."""
    check_direction(direction)
    r_np = check_states(test_reasoning_acts, "test_reasoning_acts", direction)
    m_np = check_states(test_memory_acts, "test_memory_acts", direction)
    if (train_reasoning_acts is None) != (train_memory_acts is None):
        raise DataError(
            "give both train_reasoning_acts and train_memory_acts, or neither; got only "
            f"{'train_reasoning_acts' if train_memory_acts is None else 'train_memory_acts'}"
        )
    train: tuple[np.ndarray, np.ndarray] | None = None
    if train_reasoning_acts is not None and train_memory_acts is not None:
        train = (
            check_states(train_reasoning_acts, "train_reasoning_acts", direction),
            check_states(train_memory_acts, "train_memory_acts", direction),
        )
    if (
        isinstance(n_permutations, bool)
        or int(n_permutations) != n_permutations
        or n_permutations < 1
    ):
        raise DataError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    n_r, n_m = r_np.shape[0], m_np.shape[0]
    if probe and (int(cv_folds) != cv_folds or cv_folds < 2 or min(n_r, n_m) < cv_folds):
        raise DataError(
            f"the probe's {cv_folds}-fold cross-validation needs cv_folds >= 2 and at least "
            f"cv_folds prompts per class, got {n_r} reasoning and {n_m} memory; lower cv_folds "
            "or pass probe=False"
        )
    if not 0.0 <= length_caliper < 1.0:
        raise DataError(f"length_caliper must be in [0, 1), got {length_caliper!r}")
    lengths = check_lengths(test_reasoning_lengths, test_memory_lengths, n_r, n_m)
    return ReportInputs(
        states=np.concatenate([r_np, m_np], axis=0),
        labels=class_labels(n_r, n_m),
        n_reasoning=n_r,
        n_memory=n_m,
        train=train,
        lengths=lengths,
        test_hash=hash_states(r_np, m_np),
    )


def direction_geometry(direction: Direction) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Step 2: the direction's unit vectors ``[L + 1, d]``, norms ``[L + 1]`` and ``cos_prev``.

    ``cos_prev[l] = r̂_l · r̂_{l-1}``, NaN at ``l = 0`` and next to an all-zero layer.
    """
    units = direction.units().numpy()  # [L + 1, d]
    norms = direction.vectors.norm(dim=1).numpy()  # [L + 1]
    nonzero = norms > 0
    cos_prev = [_NAN] + [
        float(np.dot(units[layer], units[layer - 1]))
        if nonzero[layer] and nonzero[layer - 1]
        else _NAN
        for layer in range(1, len(norms))
    ]
    return units, norms, cos_prev


def score_layer(
    scores: np.ndarray,
    labels: np.ndarray,
    n_reasoning: int,
    perms: np.ndarray,
    *,
    train_scores: tuple[np.ndarray, np.ndarray] | None = None,
    matched: np.ndarray | None = None,
    matched_perms: np.ndarray | None = None,
) -> dict[str, float]:
    """Step 3: every direction-based number of one layer.

    Args:
        scores: ``[n]`` held-out scores ``h_l · r̂_l``, reasoning rows first.
        labels: ``[n]`` 1 = reasoning.
        n_reasoning: number of reasoning rows.
        perms: ``[P, n]`` shuffled labels (``stats.shuffled_labels``).
        train_scores: training scores of both classes, for the in-sample AUROC.
        matched: indices of the length-matched subset, with ``matched_perms`` its ``[P, m]``
            shuffled labels.

    Returns:
        Field name -> value for ``auroc``, ``effect_size``, the shuffled baseline
        (``shuffled_auroc``, ``_p5``, ``_p95``, ``permutation_p``) and, when their inputs are
        given, ``train_auroc``, ``length_matched_auroc`` and ``length_matched_shuffled_p95``.
    """
    auc = auroc(labels, scores)
    null = shuffled_baseline(scores, perms, auc)
    out = {
        "auroc": auc,
        "effect_size": cohens_d(scores[:n_reasoning], scores[n_reasoning:]),
        "shuffled_auroc": null.mean,
        "shuffled_auroc_p5": null.p5,
        "shuffled_auroc_p95": null.p95,
        "permutation_p": null.p,
    }
    if train_scores is not None:
        tr_r, tr_m = train_scores
        out["train_auroc"] = auroc(class_labels(len(tr_r), len(tr_m)), np.concatenate(train_scores))
    if matched is not None and matched_perms is not None:
        m_auc = auroc(labels[matched], scores[matched])
        out["length_matched_auroc"] = m_auc
        out["length_matched_shuffled_p95"] = shuffled_baseline(
            scores[matched], matched_perms, m_auc
        ).p95
    return out


def choose_best_layer(auroc_by_layer: list[float], nonzero: np.ndarray) -> int:
    """Step 4: the held-out AUROC argmax over ``l >= 1`` with a non-zero direction; ties: earliest.

    Layer 0 (the embedding output) is never chosen: it carries only the last token's identity.

    Raises:
        DirectionError: the direction is all zeros at every layer ``l >= 1``.
    """
    n_layers = len(auroc_by_layer) - 1
    candidates = [l for l in range(1, n_layers + 1) if nonzero[l]]  # noqa: E741
    if not candidates:
        raise DirectionError(
            f"the direction is all zeros at every layer 1..{n_layers}: the two classes have the "
            "same mean states; check that reasoning and memory prompts differ"
        )
    return max(candidates, key=lambda l: (auroc_by_layer[l], -l))  # noqa: E741


def report_metadata(
    direction: Direction,
    inputs: ReportInputs,
    *,
    n_permutations: int,
    cv_folds: int,
    seed: int,
    probe: bool,
    length_caliper: float,
) -> dict[str, Any]:
    """Step 5: ``make_metadata("report", ...)`` with the test set's description and every setting."""
    data = {
        "n_reasoning": inputs.n_reasoning,
        "n_memory": inputs.n_memory,
        "test_states_hash": inputs.test_hash,
        "direction_data": direction.metadata.get("data"),
        "lengths_given": inputs.lengths is not None,
        "train_given": inputs.train is not None,
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
    return make_metadata(
        "report", model=direction.metadata.get("model"), data=data, settings=settings
    )


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


@renamed_keywords(liref="direction")
def layer_report(
    direction: Direction,
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
        direction: the direction, built from a training split of the direction set (the old
            keyword ``liref=`` still works for one release, with a DeprecationWarning).
        test_reasoning_acts: ``[n_r, L + 1, d_model]`` held-out reasoning states (not used to build
            ``direction``).
        test_memory_acts: ``[n_m, L + 1, d_model]`` held-out memory states.
        train_reasoning_acts: optional ``[n_r', L + 1, d_model]`` states that built ``direction``;
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
    inputs = check_report_inputs(
        direction,
        test_reasoning_acts,
        test_memory_acts,
        train_reasoning_acts=train_reasoning_acts,
        train_memory_acts=train_memory_acts,
        test_reasoning_lengths=test_reasoning_lengths,
        test_memory_lengths=test_memory_lengths,
        n_permutations=n_permutations,
        cv_folds=cv_folds,
        probe=probe,
        length_caliper=length_caliper,
    )
    n_permutations = int(n_permutations)
    labels, n_r = inputs.labels, inputs.n_reasoning
    rng = np.random.default_rng(seed)
    perms = shuffled_labels(rng, labels, n_permutations)  # [P, n]
    lengths: LengthBaseline | None = None
    matched_perms: np.ndarray | None = None
    if inputs.lengths is not None:
        lengths = length_baseline(*inputs.lengths, caliper=length_caliper)
        if lengths.matched is not None:
            matched_perms = shuffled_labels(rng, labels[lengths.matched], n_permutations)
    matched = lengths.matched if lengths is not None else None

    units, norms, cos_prev = direction_geometry(direction)
    nonzero = norms > 0
    out: dict[str, list[float]] = {name: [] for name in PER_LAYER_FIELDS}
    out["direction_norm"] = [float(v) for v in norms]
    out["cos_prev"] = cos_prev
    with progress_bar("layer report", direction.n_layers + 1, progress) as bar:
        for layer in range(direction.n_layers + 1):
            x = inputs.states[:, layer]  # [n, d]
            if probe:
                out["probe_accuracy"].append(probe_accuracy(x, labels, cv_folds, seed))
            if nonzero[layer]:
                unit = units[layer]
                train_scores = (
                    (inputs.train[0][:, layer] @ unit, inputs.train[1][:, layer] @ unit)
                    if inputs.train is not None
                    else None
                )
                row = score_layer(
                    x @ unit,
                    labels,
                    n_r,
                    perms,
                    train_scores=train_scores,
                    matched=matched,
                    matched_perms=matched_perms,
                )
            else:
                row = _blank_layer_row(train=inputs.train is not None, matched=matched is not None)
            for name, value in row.items():
                out[name].append(value)
            bar.advance()

    best = choose_best_layer(out["auroc"], nonzero)
    meta = report_metadata(
        direction,
        inputs,
        n_permutations=n_permutations,
        cv_folds=cv_folds,
        seed=seed,
        probe=probe,
        length_caliper=length_caliper,
    )
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
        train_auroc=out["train_auroc"],
        length_matched_auroc=out["length_matched_auroc"],
        length_matched_shuffled_p95=out["length_matched_shuffled_p95"],
        best_layer=best,
        n_reasoning=n_r,
        n_memory=inputs.n_memory,
        metadata=meta,
        **_length_fields(lengths),
    )


def _blank_layer_row(*, train: bool, matched: bool) -> dict[str, float]:
    """NaN for every direction-based number the report fills, for a layer where the direction
    is zero: the separation fields, plus ``train_auroc`` with train states and the
    length-matched fields when prompts were length-matched."""
    names = list(_SEPARATION_FIELDS)
    names += ["train_auroc"] if train else []
    names += ["length_matched_auroc", "length_matched_shuffled_p95"] if matched else []
    return dict.fromkeys(names, _NAN)


def _length_fields(lengths: LengthBaseline | None) -> dict[str, Any]:
    """The ``LayerReport`` fields of the length baseline (none without prompt lengths)."""
    if lengths is None:
        return {}
    fields: dict[str, Any] = {
        "length_auroc_oriented": lengths.auroc_oriented,
        "length_auroc": lengths.auroc,
        "length_matched_pairs": lengths.pairs,
    }
    if lengths.matched_length_auroc is not None:
        fields["length_matched_length_auroc"] = lengths.matched_length_auroc
    return fields


# ---------------------------------------------------------------------------------------------
# numbers in files and tables
# ---------------------------------------------------------------------------------------------


def encode_float(v: float) -> float | str | None:
    """A float for strict JSON: NaN -> ``None``, infinities -> ``"inf"`` / ``"-inf"``."""
    v = float(v)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def decode_float(v: Any) -> float:
    """Inverse of ``encode_float``."""
    if v is None:
        return float("nan")
    return float(v)  # float("inf") / float("-inf") parse the encoded strings


def format_float(v: float, digits: int) -> str:
    """``v`` with ``digits`` decimals for a table cell; ``"-"`` for NaN."""
    return "-" if math.isnan(v) else f"{v:.{digits}f}"
