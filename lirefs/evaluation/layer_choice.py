"""Causal layer choice: the source layer whose direction, when steered, most moves the gold answer.

The held-out AUROC rule (``lirefs.layer_report``) picks the layer where the direction best
*separates* the two classes; that need not be the layer where steering along it *does* most. This
rule measures the effect directly, on held-out direction-set questions only (never a benchmark),
as refusal_direction selects its direction:

For each candidate residual index ``l`` (default: every ``l >= 1`` with a non-zero direction), with
the unit direction of layer ``l`` and one small fixed ``alpha`` in the given mode:

* ``delta_reasoning[l]``: mean over the held-out reasoning questions of
  ``log p(answer | prompt)`` steered minus unsteered (``gold_logprobs``; the gold text is the
  question's own answer, tokenized alone and appended to ``"Q: ...\\nA: "``);
* ``delta_memory[l]``: the same over the held-out memory questions;
* ``score[l] = delta_reasoning[l] - delta_memory[l]``: how much the edit favours reasoning answers
  over recall answers (the paper's claim predicts a positive score for ``alpha > 0``);
* ``kl[l]``: the damage filter, mean over neutral prompts of ``KL(p_0 || p_l)`` between the
  unsteered and steered next-token distributions.

Rule (recorded as ``settings.layer_rule = "causal"`` in the direction's metadata): the layer with
the highest ``score`` among those with ``kl <= max_kl``; ties go to the earliest layer. When no
layer passes the filter the choice fails with a clear error instead of picking a damaging layer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..checks import residual_index
from ..console import progress_bar
from ..data import QuestionSets, format_prompt
from ..direction import Direction
from ..errors import DataError, DirectionError, LayerError
from ..steer import get_mode
from .outcomes import gold_logprobs, next_token_logprobs

__all__ = [
    "CAUSAL_RULE",
    "NEUTRAL_PROMPTS",
    "CausalLayerChoice",
    "causal_layer_choice",
]

#: The ``settings.layer_rule`` value this choice records.
CAUSAL_RULE = "causal"

#: Plain text with no question in it (project-written): the damage filter's prompts.
NEUTRAL_PROMPTS = (
    "The weather in the mountains changes quickly, so hikers",
    "She opened the window and looked at the garden, where",
    "The library closes at six on weekdays and",
    "After the meeting, the team walked to the station and",
    "Fresh bread is best when it is eaten",
    "The river runs through the old town before it",
    "He put the keys on the table and",
    "In the evening the streets were quiet, and the shops",
)


@dataclass(frozen=True)
class CausalLayerChoice:
    """What the causal rule measured at each candidate layer, and the layer it chose.

    Attributes:
        best_layer: the chosen residual index.
        layers: candidate residual indices, in order.
        delta_reasoning / delta_memory / score / kl: one float per candidate (see the module
            docstring).
        eligible: ``kl <= max_kl`` per candidate.
        settings: alpha, mode, max_kl, item counts, the rule in words.
    """

    best_layer: int
    layers: list[int]
    delta_reasoning: list[float]
    delta_memory: list[float]
    score: list[float]
    kl: list[float]
    eligible: list[bool]
    settings: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per candidate layer (for tables and JSON)."""
        return [
            {
                "layer": layer,
                "delta_reasoning": self.delta_reasoning[i],
                "delta_memory": self.delta_memory[i],
                "score": self.score[i],
                "kl": self.kl[i],
                "eligible": self.eligible[i],
            }
            for i, layer in enumerate(self.layers)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"best_layer": self.best_layer, "settings": self.settings, "layers": self.rows()}

    def annotate(self, direction: Direction) -> Direction:
        """A copy of ``direction`` whose metadata records this choice as its chosen layer.

        ``settings.best_layer`` becomes ``best_layer``, ``settings.layer_rule`` becomes
        ``"causal"`` (the AUROC choice, if any, is kept as ``settings.auroc_best_layer``) and
        ``settings.causal_layer_choice`` holds the per-layer measurements.
        """
        meta = dict(direction.metadata)
        settings = dict(meta.get("settings") or {})
        if settings.get("best_layer") is not None and settings.get("layer_rule") != CAUSAL_RULE:
            settings["auroc_best_layer"] = settings["best_layer"]
        settings["best_layer"] = int(self.best_layer)
        settings["layer_rule"] = CAUSAL_RULE
        settings["layer_choice"] = self.settings["rule"]
        settings["causal_layer_choice"] = self.to_dict()
        meta["settings"] = settings
        return dataclasses.replace(direction, metadata=meta)


def _kl(base: torch.Tensor, steered: torch.Tensor) -> float:
    """Mean over rows of ``KL(base || steered)`` for ``[n, vocab]`` log-probabilities."""
    b, s = base.to(torch.float64), steered.to(torch.float64)
    return float((b.exp() * (b - s)).sum(-1).mean())


def _answered(questions: Sequence[Any], limit: int | None, what: str) -> list[Any]:
    out = [q for q in questions if q.answer]
    if not out:
        raise DataError(f"no held-out {what} question has an answer; the causal rule needs them")
    return out[:limit] if limit is not None else out


def causal_layer_choice(
    model: Any,
    direction: Direction,
    heldout: QuestionSets,
    *,
    alpha: float = 0.05,
    mode: str = "project",
    layers: Sequence[int] | None = None,
    neutral_prompts: Sequence[str] = NEUTRAL_PROMPTS,
    max_kl: float = 0.1,
    limit: int | None = 16,
    batch_size: int | None = None,
    remote: bool | str | None = None,
    progress: bool | None = None,
) -> CausalLayerChoice:
    """Choose the direction's source layer by its steering effect on held-out questions.

    Args:
        model: the model the direction was built on.
        direction: a ``Direction`` (every layer's candidate).
        heldout: held-out direction-set questions (e.g. the test half of ``sets.split()``),
            never an evaluation benchmark.
        alpha: the fixed small steering strength (per edit in ``"project"`` mode).
        mode: a steering mode (``"project"``, ``"project-calibrated"``, ``"add"``).
        layers: candidate residual indices (default: every ``l >= 1`` with a non-zero direction).
        neutral_prompts: prompts for the KL damage filter.
        max_kl: largest mean next-token KL (nats) a candidate may cause.
        limit: questions per class (the first ones with an answer); ``None`` for all.
        batch_size, remote, progress: as in ``gold_logprobs``.

    Returns:
        A ``CausalLayerChoice``; ``.annotate(direction)`` records it in a copy of the direction.

    Raises:
        DirectionError: the direction belongs to another model.
        LayerError: a candidate outside ``1..L`` or with an all-zero direction.
        DataError: no held-out question with an answer, ``alpha`` 0 or not finite, no candidate
            within ``max_kl`` (the message lists the smallest KL seen).
    """
    if not isinstance(direction, Direction):
        raise DirectionError(
            f"direction must be a lirefs.Direction, got {type(direction).__name__}"
        )
    direction.check_model(model)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise DataError(f"alpha must be a finite number, got {alpha!r}")
    if alpha == 0.0:
        raise DataError("alpha=0 steers nothing; pass a small alpha such as 0.05")
    if not get_mode(mode).accepts(float(alpha)):
        raise DataError(
            f"the causal rule steers at alpha={alpha}, which mode {mode!r} does not take "
            f"({get_mode(mode).accepted}); use mode 'project' or 'add'"
        )
    n = direction.n_layers
    norms = direction.vectors.norm(dim=1)
    if layers is None:
        candidates = [layer for layer in range(1, n + 1) if float(norms[layer]) > 0.0]
    else:
        candidates = [residual_index(layer, n, "this direction has") for layer in layers]
        zero = [layer for layer in candidates if float(norms[layer]) == 0.0]
        if zero:
            raise LayerError(f"the direction is all zeros at layers {zero}; leave them out")
    if not candidates:
        raise LayerError("no candidate layer: the direction is all zeros at every layer >= 1")
    reasoning = _answered(heldout.reasoning, limit, "reasoning")
    memory = _answered(heldout.memory, limit, "memory")
    prompts = [format_prompt(q.text) for q in (*reasoning, *memory)]
    golds = [q.answer for q in (*reasoning, *memory)]
    n_r = len(reasoning)
    kw: dict[str, Any] = {"batch_size": batch_size, "remote": remote}
    base = gold_logprobs(model, prompts, golds, progress=False, **kw)
    base_next = next_token_logprobs(model, list(neutral_prompts), **kw)
    d_r, d_m, score, kl = [], [], [], []
    with progress_bar("causal layer choice", len(candidates), progress) as bar:
        for layer in candidates:
            unit = direction.unit(layer)
            steering = {"direction": unit, "alpha": float(alpha), "mode": mode}
            if not get_mode(mode).projects:  # add: at the candidate layer itself
                steering["layer"] = layer
            lp = gold_logprobs(model, prompts, golds, steering=steering, progress=False, **kw)
            diffs = [a - b for a, b in zip(lp, base, strict=True)]
            d_r.append(sum(diffs[:n_r]) / n_r)
            d_m.append(sum(diffs[n_r:]) / (len(diffs) - n_r))
            score.append(d_r[-1] - d_m[-1])
            steered = next_token_logprobs(model, list(neutral_prompts), steering=steering, **kw)
            kl.append(_kl(base_next, steered))
            bar.advance(1)
    eligible = [k <= max_kl for k in kl]
    if not any(eligible):
        raise DataError(
            f"no candidate layer keeps the neutral-prompt KL <= {max_kl} at alpha={alpha} "
            f"(smallest {min(kl):.3g} at layer {candidates[kl.index(min(kl))]}); use a smaller "
            "alpha or a larger max_kl"
        )
    best_i = max((i for i in range(len(candidates)) if eligible[i]), key=lambda i: (score[i], -i))
    rule = (
        f"argmax over layers of the held-out gold log-prob change (reasoning minus memory) at "
        f"alpha={alpha:g} ({mode}) among layers with neutral next-token KL <= {max_kl:g}; ties -> "
        "earliest; held-out direction-set questions only, never a benchmark"
    )
    return CausalLayerChoice(
        best_layer=candidates[best_i],
        layers=candidates,
        delta_reasoning=d_r,
        delta_memory=d_m,
        score=score,
        kl=kl,
        eligible=eligible,
        settings={
            "rule": rule,
            "alpha": float(alpha),
            "mode": mode,
            "max_kl": float(max_kl),
            "n_reasoning": n_r,
            "n_memory": len(memory),
            "n_neutral": len(neutral_prompts),
            "heldout": heldout.name,
            "heldout_hash": heldout.hash(),
        },
    )
