"""Cross-source transfer: does a direction built on one question set separate another one?

On the built-in sets, topic and format are confounded with the label (every reasoning prompt is an
arithmetic word problem, every memory prompt a short question about a fact), so a direction could
read "maths story vs short question" instead of "reasoning vs recall". ``transfer_report`` scores
every direction on the held-out states of every test source, at the direction's own chosen layer
and at every layer, beside the baselines of each test set: the AUROC of the same scores with
shuffled labels, and prompt length alone as the classifier (with lengths given). A direction that
keeps its AUROC on a format-matched set (``lirefs.data.load("builtin-matched")``) reads more than
the surface form.

Read the diagonal with care: a direction's layer was chosen on its own source's held-out states, so
the in-source AUROC at that layer carries the selection; the off-diagonal cells do not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..direction import Direction
from ..errors import DataError, DirectionError, LayerError, MetadataMismatchError
from ..store import check_metadata, make_metadata, write_json
from .lengths import Lengths, check_lengths, length_baseline
from .report import decode_float, encode_float, format_float
from .states import check_direction, check_states, hash_states
from .stats import auroc, class_labels, shuffled_baseline, shuffled_labels

__all__ = ["TransferReport", "transfer_report"]

#: ``{train: {test: float}}`` fields of ``TransferReport``.
_MATRICES = ("auroc", "shuffled_auroc_p95", "permutation_p", "length_matched_auroc")
#: ``{train: {test: [float] * (L + 1)}}`` fields.
_BY_LAYER = ("auroc_by_layer", "shuffled_auroc_p95_by_layer")


@dataclass
class TransferReport:
    """Held-out AUROC of every direction (train source) on every test source.

    ``auroc[train][test]`` is the AUROC of the scores ``h_l · r̂_l`` of ``test``'s held-out states
    with ``l = layer[train]`` (the direction's chosen layer), reasoning = positive class. Every
    per-layer list has ``L + 1`` floats, index ``l`` == residual index ``l``; NaN where the
    direction is all zeros.

    Attributes:
        directions: the train-source names, in the order given.
        tests: the test-source names, in the order given.
        layer: ``{train: l}``, the layer each direction is scored at.
        auroc: ``{train: {test: AUROC at layer[train]}}``.
        shuffled_auroc_p95: ``{train: {test: 95th percentile}}`` of the AUROC of the same scores
            with the test set's labels shuffled: a cell above it is unlikely to be chance.
        permutation_p: ``{train: {test: p}}``, ``(1 + #{shuffled >= real}) / (1 + n_permutations)``.
        auroc_by_layer: ``{train: {test: [AUROC at l = 0..L]}}``.
        shuffled_auroc_p95_by_layer: ``{train: {test: [p95 at l = 0..L]}}``.
        length_auroc: ``{test: AUROC of prompt length alone}`` (better orientation,
            ``max(auc, 1 - auc)``), ``None`` for tests given without lengths.
        length_matched_pairs: ``{test: number of length-matched pairs}`` (0 without lengths).
        length_matched_auroc: ``{train: {test: AUROC on the length-matched subset}}`` at
            ``layer[train]``, NaN where fewer than 2 pairs exist or no lengths were given.
        n_reasoning: ``{test: held-out reasoning prompts}``.
        n_memory: ``{test: held-out memory prompts}``.
        metadata: ``make_metadata("transfer", ...)``: model, each direction's data, each test
            set's sizes and states hash, settings.
    """

    directions: list[str]
    tests: list[str]
    layer: dict[str, int]
    auroc: dict[str, dict[str, float]]
    shuffled_auroc_p95: dict[str, dict[str, float]]
    permutation_p: dict[str, dict[str, float]]
    auroc_by_layer: dict[str, dict[str, list[float]]]
    shuffled_auroc_p95_by_layer: dict[str, dict[str, list[float]]]
    length_auroc: dict[str, float | None]
    length_matched_pairs: dict[str, int]
    length_matched_auroc: dict[str, dict[str, float]]
    n_reasoning: dict[str, int]
    n_memory: dict[str, int]
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- reading -------------------------------------------------------------------------------

    def above_chance(self, train: str, test: str) -> bool:
        """Whether ``auroc[train][test]`` lies above its shuffled-label 95th percentile."""
        auc, p95 = self.auroc[train][test], self.shuffled_auroc_p95[train][test]
        return math.isfinite(auc) and auc > p95

    def table_rows(self) -> list[dict[str, str]]:
        """One dict per direction: ``direction`` (with its layer) and one cell per test source.

        A cell is the AUROC at the direction's layer, with ``" (chance)"`` appended when it does
        not exceed the shuffled-label 95th percentile.
        """
        rows = []
        for train in self.directions:
            row = {"direction": f"{train} (layer {self.layer[train]})"}
            for test in self.tests:
                cell = format_float(self.auroc[train][test], 3)
                if not self.above_chance(train, test):
                    cell += " (chance)"
                row[test] = cell
            rows.append(row)
        return rows

    def baseline_rows(self) -> list[dict[str, str]]:
        """One dict per test source: its size and baselines.

        Columns: ``test``, ``reasoning`` / ``memory`` (prompts), ``shuffled p95`` (the highest
        over the directions, at their layers), ``length alone`` and ``matched pairs``.
        """
        rows = []
        for test in self.tests:
            p95 = [self.shuffled_auroc_p95[t][test] for t in self.directions]
            finite = [v for v in p95 if math.isfinite(v)]
            length = self.length_auroc[test]
            rows.append(
                {
                    "test": test,
                    "reasoning": str(self.n_reasoning[test]),
                    "memory": str(self.n_memory[test]),
                    "shuffled p95": format_float(max(finite), 3) if finite else "-",
                    "length alone": "-" if length is None else format_float(length, 3),
                    "matched pairs": str(self.length_matched_pairs[test]),
                }
            )
        return rows

    def summary(self) -> str:
        """One sentence per direction: its AUROC on each test source against that set's baselines."""
        lines = []
        for train in self.directions:
            cells = []
            for test in self.tests:
                auc = self.auroc[train][test]
                text = (
                    f"{test} {format_float(auc, 3)} (shuffled p95 "
                    f"{format_float(self.shuffled_auroc_p95[train][test], 3)}"
                )
                length = self.length_auroc[test]
                if length is not None:
                    text += f", length alone {length:.3f}"
                text += ")" if self.above_chance(train, test) else "; not above chance)"
                cells.append(text)
            lines.append(
                f"Direction {train!r} at layer {self.layer[train]}: " + "; ".join(cells) + "."
            )
        return "\n".join(lines)

    # -- files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: NaN becomes ``None``, infinities ``"inf"``/``"-inf"``."""
        out: dict[str, Any] = {
            "directions": list(self.directions),
            "tests": list(self.tests),
            "layer": dict(self.layer),
        }
        for name in _MATRICES:
            matrix = getattr(self, name)
            out[name] = {
                t: {s: encode_float(v) for s, v in row.items()} for t, row in matrix.items()
            }
        for name in _BY_LAYER:
            matrix = getattr(self, name)
            out[name] = {
                t: {s: [encode_float(v) for v in values] for s, values in row.items()}
                for t, row in matrix.items()
            }
        out["length_auroc"] = {
            s: None if v is None else encode_float(v) for s, v in self.length_auroc.items()
        }
        out["length_matched_pairs"] = dict(self.length_matched_pairs)
        out["n_reasoning"] = dict(self.n_reasoning)
        out["n_memory"] = dict(self.n_memory)
        out["metadata"] = self.metadata
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> TransferReport:
        """Inverse of ``to_dict``."""
        kwargs: dict[str, Any] = {
            "directions": list(obj["directions"]),
            "tests": list(obj["tests"]),
            "layer": {k: int(v) for k, v in obj["layer"].items()},
        }
        for name in _MATRICES:
            kwargs[name] = {
                t: {s: decode_float(v) for s, v in row.items()} for t, row in obj[name].items()
            }
        for name in _BY_LAYER:
            kwargs[name] = {
                t: {s: [decode_float(v) for v in values] for s, values in row.items()}
                for t, row in obj[name].items()
            }
        kwargs["length_auroc"] = {
            s: None if v is None else decode_float(v) for s, v in obj["length_auroc"].items()
        }
        kwargs["length_matched_pairs"] = {k: int(v) for k, v in obj["length_matched_pairs"].items()}
        kwargs["n_reasoning"] = {k: int(v) for k, v in obj["n_reasoning"].items()}
        kwargs["n_memory"] = {k: int(v) for k, v in obj["n_memory"].items()}
        kwargs["metadata"] = dict(obj.get("metadata") or {})
        return cls(**kwargs)

    def save(self, path: str | Path) -> Path:
        """Write the report as indented strict JSON, atomically. Returns ``path``."""
        path = Path(path)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str | Path) -> TransferReport:
        """Read a report written by ``save``.

        Raises:
            DataError: the file is missing, not JSON, or not a lirefs transfer report.
            MetadataMismatchError: it was made under another layer convention.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"transfer report {str(path)!r} does not exist; write one with report.save"
            )
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{path} is not a JSON file ({exc}); expected a lirefs transfer report"
            ) from None
        needed = ("directions", "tests", "auroc", "metadata", *_BY_LAYER)
        if not isinstance(obj, dict) or any(key not in obj for key in needed):
            raise DataError(f"{path} is JSON but not a lirefs transfer report")
        check_metadata(obj["metadata"], what=str(path), kind="transfer")
        try:
            return cls.from_dict(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{path} is a damaged transfer report ({exc!r})") from None


def transfer_report(
    directions: Mapping[str, Direction],
    tests: Mapping[str, tuple[Any, Any]],
    *,
    lengths: Mapping[str, tuple[Lengths, Lengths]] | None = None,
    layers: Mapping[str, int] | None = None,
    n_permutations: int = 200,
    seed: int = 0,
    length_caliper: float = 0.1,
) -> TransferReport:
    """Score every direction on every test source's held-out states, with each test's baselines.

    Args:
        directions: ``{train-source name: Direction}``; each is scored at ``layers[name]`` or, by
            default, the layer recorded when it was built (``Direction.chosen_layer``, written by
            ``lirefs direction`` / ``lirefs demo`` / ``find_direction``).
        tests: ``{test-source name: (reasoning_acts, memory_acts)}``, each ``[n, L + 1, d_model]``
            held-out states of the same model (e.g. the test halves of ``ActivationSplit`` files);
            none of them may have built a direction they are scored with, except its own source's
            held-out half (the diagonal).
        lengths: optional ``{test name: (reasoning_lengths [n_r], memory_lengths [n_m])}`` prompt
            lengths, for the length-alone and length-matched baselines of those tests.
        layers: optional ``{train name: residual index}`` overriding the chosen layers.
        n_permutations: label shufflings for the chance baseline (>= 1); the same shufflings of a
            test set are used for every direction.
        seed: seeds the shufflings; the same inputs and seed give the same report.
        length_caliper: relative length difference allowed within a length-matched pair.

    Returns:
        A ``TransferReport``; ``report.auroc[train][test]`` at ``report.layer[train]``.

    Raises:
        DataError: no directions or tests, a test that is not a pair of tensors, a test with one
            class (fewer than 2 prompts in a class), lengths that do not match their test, or bad
            settings.
        DirectionError: not a ``Direction``, a direction without a chosen layer (pass ``layers=``),
            or states whose ``[L + 1, d_model]`` differs from a direction's.
        MetadataMismatchError: directions built on different models.
        ActivationError: states that are not ``[n, L + 1, d_model]`` tensors, or contain NaN/inf.
        LayerError: a layer outside ``0..L``.
    """
    names, chosen = _check_directions(directions, layers)
    test_names = _check_test_names(tests, lengths)
    if (
        isinstance(n_permutations, bool)
        or int(n_permutations) != n_permutations
        or n_permutations < 1
    ):
        raise DataError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    n_permutations = int(n_permutations)
    if not 0.0 <= length_caliper < 1.0:
        raise DataError(f"length_caliper must be in [0, 1), got {length_caliper!r}")
    first = directions[names[0]]
    prepared = {
        test: _prepare_test(
            test,
            tests[test],
            (lengths or {}).get(test),
            directions,
            n_permutations=n_permutations,
            seed=seed,
            length_caliper=length_caliper,
        )
        for test in test_names
    }
    cells = {
        name: {
            test: _score_pair(directions[name], chosen[name], prepared[test]) for test in test_names
        }
        for name in names
    }

    def matrix(key: str) -> dict[str, dict[str, Any]]:
        return {name: {test: cells[name][test][key] for test in test_names} for name in names}

    meta = make_metadata(
        "transfer",
        model=first.metadata.get("model"),
        data={
            "directions": {name: directions[name].metadata.get("data") for name in names},
            "tests": {
                test: {
                    "n_reasoning": t.n_reasoning,
                    "n_memory": t.n_memory,
                    "states_hash": t.states_hash,
                    "lengths_given": t.length_auroc is not None,
                }
                for test, t in prepared.items()
            },
        },
        settings={
            "layers": dict(chosen),
            "n_permutations": n_permutations,
            "seed": seed,
            "length_caliper": length_caliper,
            "score": "h_l . r_hat_l at the last prompt token",
        },
    )
    return TransferReport(
        directions=list(names),
        tests=list(test_names),
        layer=dict(chosen),
        auroc=matrix("auroc"),
        shuffled_auroc_p95=matrix("shuffled_auroc_p95"),
        permutation_p=matrix("permutation_p"),
        auroc_by_layer=matrix("auroc_by_layer"),
        shuffled_auroc_p95_by_layer=matrix("shuffled_auroc_p95_by_layer"),
        length_auroc={test: t.length_auroc for test, t in prepared.items()},
        length_matched_pairs={test: t.length_matched_pairs for test, t in prepared.items()},
        length_matched_auroc=matrix("length_matched_auroc"),
        n_reasoning={test: t.n_reasoning for test, t in prepared.items()},
        n_memory={test: t.n_memory for test, t in prepared.items()},
        metadata=meta,
    )


class _TestSet(NamedTuple):
    """One test source, checked and ready to score: its states, labels, shuffles and lengths."""

    states: np.ndarray  # [n_r + n_m, L + 1, d] float64, reasoning rows first
    labels: np.ndarray  # [n_r + n_m] int64
    n_reasoning: int
    n_memory: int
    perms: np.ndarray  # [P, n] shuffled labels, shared by every direction
    matched: np.ndarray | None  # indices of the length-matched subset
    length_auroc: float | None
    length_matched_pairs: int
    states_hash: str


def _prepare_test(
    test: str,
    pair: tuple[Any, Any],
    lengths: tuple[Lengths, Lengths] | None,
    directions: Mapping[str, Direction],
    *,
    n_permutations: int,
    seed: int,
    length_caliper: float,
) -> _TestSet:
    """Check one test source against every direction and draw its label shufflings."""
    names = list(directions)
    where = f"tests[{test!r}] {{}} states (scored by direction {names[0]!r})"
    r_np = check_states(pair[0], where.format("reasoning"), directions[names[0]])
    m_np = check_states(pair[1], where.format("memory"), directions[names[0]])
    for name in names[1:]:
        expected = tuple(directions[name].vectors.shape)
        if r_np.shape[1:] != expected:
            raise DirectionError(
                f"tests[{test!r}] states are [n, {r_np.shape[1]}, {r_np.shape[2]}] but "
                f"direction {name!r} is [L + 1, d_model] = {list(expected)}; score a "
                "direction only on states of the model it was built on, at all layers"
            )
    n_r, n_m = len(r_np), len(m_np)
    labels = class_labels(n_r, n_m)
    perms = shuffled_labels(np.random.default_rng(seed), labels, n_permutations)  # [P, n]
    checked = None
    if lengths is not None:
        names_ = (f"lengths[{test!r}][0]", f"lengths[{test!r}][1]")
        checked = check_lengths(lengths[0], lengths[1], n_r, n_m, names=names_)
    baseline = length_baseline(*checked, caliper=length_caliper) if checked is not None else None
    return _TestSet(
        states=np.concatenate([r_np, m_np]),
        labels=labels,
        n_reasoning=n_r,
        n_memory=n_m,
        perms=perms,
        matched=baseline.matched if baseline is not None else None,
        length_auroc=baseline.auroc if baseline is not None else None,
        length_matched_pairs=baseline.pairs if baseline is not None else 0,
        states_hash=hash_states(r_np, m_np),
    )


def _score_pair(direction: Direction, layer: int, test: _TestSet) -> dict[str, Any]:
    """One direction on one test source: AUROC and shuffled baseline per layer and at ``layer``."""
    units = direction.units().numpy()  # [L + 1, d]
    nonzero = direction.vectors.norm(dim=1).numpy() > 0
    by_layer, p95_by_layer, p_by_layer = [], [], []
    for l in range(units.shape[0]):  # noqa: E741
        if not nonzero[l]:
            by_layer.append(math.nan)
            p95_by_layer.append(math.nan)
            p_by_layer.append(math.nan)
            continue
        scores = test.states[:, l] @ units[l]  # [n]
        auc = auroc(test.labels, scores)
        null = shuffled_baseline(scores, test.perms, auc)
        by_layer.append(auc)
        p95_by_layer.append(null.p95)
        p_by_layer.append(null.p)
    matched_auroc = math.nan
    if test.matched is not None and nonzero[layer]:
        scores = test.states[test.matched, layer] @ units[layer]
        matched_auroc = auroc(test.labels[test.matched], scores)
    return {
        "auroc": by_layer[layer],
        "shuffled_auroc_p95": p95_by_layer[layer],
        "permutation_p": p_by_layer[layer],
        "auroc_by_layer": by_layer,
        "shuffled_auroc_p95_by_layer": p95_by_layer,
        "length_matched_auroc": matched_auroc,
    }


def _check_directions(
    directions: Any, layers: Mapping[str, int] | None
) -> tuple[list[str], dict[str, int]]:
    """The direction names and the layer each is scored at."""
    if not isinstance(directions, Mapping) or not directions:
        raise DataError(
            "directions must be a non-empty mapping {name: lirefs.Direction}, got "
            f"{type(directions).__name__}"
        )
    layers = dict(layers or {})
    unknown = sorted(set(layers) - set(directions))
    if unknown:
        raise DataError(f"layers= names {unknown} that are not in directions {list(directions)}")
    names = [str(name) for name in directions]
    chosen: dict[str, int] = {}
    fingerprints: dict[str, str] = {}
    for name in names:
        direction = check_direction(directions[name], f"directions[{name!r}]")
        layer = layers.get(name)
        if layer is None and direction.chosen_layer is None:
            raise DirectionError(
                f"direction {name!r} records no chosen layer; pass layers={{{name!r}: l}} or build "
                "it with `lirefs direction` / lirefs.analysis.find_direction, which choose one on "
                "held-out data"
            )
        try:
            chosen[name] = direction.resolve_layer(layer)  # the given layer or the chosen one
        except LayerError as exc:
            raise LayerError(f"direction {name!r}: {exc}") from None
        fingerprint = (direction.metadata.get("model") or {}).get("fingerprint")
        if fingerprint:
            fingerprints[name] = str(fingerprint)
    if len(set(fingerprints.values())) > 1:
        raise MetadataMismatchError(
            f"the directions come from different models (fingerprints {fingerprints}); a transfer "
            "report compares sources on one model: build every direction with the same model"
        )
    return names, chosen


def _check_test_names(tests: Any, lengths: Mapping[str, Any] | None) -> list[str]:
    """The test names, after checking each entry is a (reasoning, memory) pair."""
    if not isinstance(tests, Mapping) or not tests:
        raise DataError(
            "tests must be a non-empty mapping {name: (reasoning_acts, memory_acts)}, got "
            f"{type(tests).__name__}"
        )
    for name, pair in tests.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError(
                f"tests[{name!r}] must be a pair (reasoning_acts, memory_acts) of "
                f"[n, L + 1, d_model] tensors, got {type(pair).__name__}"
            )
    unknown = sorted(set(lengths or {}) - set(tests))
    if unknown:
        raise DataError(f"lengths= names {unknown} that are not in tests {list(tests)}")
    for name, pair in (lengths or {}).items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError(
                f"lengths[{name!r}] must be a pair (reasoning_lengths, memory_lengths), got "
                f"{type(pair).__name__}"
            )
    return [str(name) for name in tests]
